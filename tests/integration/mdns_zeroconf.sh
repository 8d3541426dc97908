#!/bin/bash
# SPDX-License-Identifier: ISC
# mdns_zeroconf: interoperability of the built-in mDNS engine with an
# independent implementation, python3-zeroconf (run with /usr/bin/python3).
# zeroconf runs in this sandbox bound to pl0 (192.0.2.1); the engine runs in
# a network namespace made here, on pl1.  zeroconf publishes a service with
# TXT that `plcat -b --backend mdns` discovers, and browses (and resolves)
# the one `plcat -l --backend mdns` publishes.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
pl_enter_sandbox "$@"
pl_require_prog "$PLCAT"
"$PL_PYTHON" -c 'import zeroconf' 2>/dev/null || pl_skip "python3-zeroconf is not installed for $PL_PYTHON"
NS=plengine
pl_netns_peer "$NS" 192.0.2.2
E=(ip netns exec "$NS" env PEERLINK_MDNS_INTERFACES=$PL_IFACE_PEER "$PLCAT" --backend mdns)

cat >"$PL_TMP/zc.py" <<'PY'
# Publish "Zc Side" and print every _peerlink._tcp instance zeroconf resolves, as JSON lines.
import json, socket, sys, time
from zeroconf import IPVersion, ServiceBrowser, ServiceInfo, Zeroconf

TYPE = "_peerlink._tcp.local."
zc = Zeroconf(interfaces=[sys.argv[1]], ip_version=IPVersion.V4Only)
info = ServiceInfo(TYPE, "Zc Side." + TYPE, port=5001, properties={b"k": b"v", b"bool": None},
                   server="zchost.local.", addresses=[socket.inet_aton(sys.argv[1])])
zc.register_service(info)
print(json.dumps({"event": "registered"}), flush=True)

class Listener:
    def add_service(self, zc, type_, name):
        self.show(zc, type_, name, "add")
    def update_service(self, zc, type_, name):
        self.show(zc, type_, name, "update")
    def remove_service(self, zc, type_, name):
        print(json.dumps({"event": "remove", "name": name}), flush=True)
    def show(self, zc, type_, name, ev):
        i = zc.get_service_info(type_, name, timeout=3000)
        if not i:
            print(json.dumps({"event": ev + "-unresolved", "name": name}), flush=True)
            return
        txt = {k.decode(): (v.decode() if v is not None else True) for k, v in i.properties.items()}
        print(json.dumps({"event": ev, "name": name, "port": i.port, "server": i.server,
                          "addresses": i.parsed_addresses(), "txt": txt}), flush=True)

ServiceBrowser(zc, TYPE, Listener())
try:
    time.sleep(float(sys.argv[2]))
finally:
    zc.unregister_service(info)
    zc.close()
PY

pl_log "step: zeroconf publishes, plcat -b on the engine discovers it with TXT"
ZC=$(pl_out zc)
pl_start zc null "$PL_PYTHON" "$PL_TMP/zc.py" "$PL_IPV4" 60
pl_wait_for_json "$ZC" 15 'e["event"] == "registered"' >/dev/null
BR=$PL_TMP/browse.json
rc=0
pl_run 30 "${E[@]}" -b -s "$PL_TYPE" -w 4 --json >"$BR" 2>"$PL_TMP/browse.err" || rc=$?
[ "$rc" = 0 ] || { pl_dump "$PL_TMP/browse.err"; pl_fail "plcat -b -w 4 exited with status $rc"; }
pl_wait_for_json "$BR" 0 '
    e["event"] in ("add", "update") and e["name"] == "Zc Side" and e["port"] == 5001
    and e["host"] == "zchost.local" and "192.0.2.1" in e["addresses"]
    and e["txt"] == {"k": "v", "bool": True}' >/dev/null

pl_log "step: plcat -l on the engine publishes, zeroconf browses and resolves it with TXT (and the discovery hint)"
pl_start listen fifo "${E[@]}" -l -n "Engine Side" -s "$PL_TYPE" -T k=v -T flag
line=$(pl_wait_for_line "$(pl_err listen)" \
	'^plcat: published "Engine Side" \(_peerlink\._tcp\) on port [0-9]+$' 15)
export PL_PORT=${line##* }
pl_wait_for_json "$ZC" 20 '
    e["event"] in ("add", "update") and e["name"] == "Engine Side._peerlink._tcp.local."
    and e["port"] == int(__import__("os").environ["PL_PORT"]) and "192.0.2.2" in e["addresses"]
    and {k: v for k, v in e["txt"].items() if k != "pl-hint"} == {"k": "v", "flag": True}
    and __import__("re").fullmatch("[0-9a-f]{20}", e["txt"].get("pl-hint", ""))' >/dev/null
pl_alive listen || pl_fail "plcat -l exited early"
pl_log "PASS"
