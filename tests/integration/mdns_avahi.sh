#!/bin/bash
# SPDX-License-Identifier: ISC
# mdns_avahi: interoperability of the built-in mDNS engine with
# avahi-daemon.  avahi-daemon runs in this sandbox on pl0; the engine runs
# in a network namespace made here, on pl1 (the other end of the veth
# pair).  avahi-browse resolves what `plcat -l --backend mdns` publishes,
# TXT included, and `plcat -b --backend mdns` sees what avahi-publish
# publishes.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
pl_enter_sandbox "$@"
pl_require_prog "$PLCAT"
NS=plengine
pl_netns_peer "$NS" 192.0.2.2
pl_avahi_start
E=(ip netns exec "$NS" env PEERLINK_MDNS_INTERFACES=$PL_IFACE_PEER "$PLCAT" --backend mdns)

pl_log "step: plcat -l on the engine -> avahi-browse"
pl_start listen fifo "${E[@]}" -l -n "Engine Side" -s "$PL_TYPE" -T k=v -T flag
line=$(pl_wait_for_line "$(pl_err listen)" \
	'^plcat: published "Engine Side" \(_peerlink\._tcp\) on port [0-9]+$' 15)
port=${line##* }
lines=$(pl_avahi_resolved "$PL_TYPE" "Engine Side" 20 ";$port;")
printf '%s\n' "$lines" | grep -q '"k=v"' || pl_fail "avahi-browse: no \"k=v\" in TXT: $lines"
printf '%s\n' "$lines" | grep -q '"flag"' || pl_fail "avahi-browse: no boolean \"flag\" in TXT: $lines"
printf '%s\n' "$lines" | grep -q ';192\.0\.2\.2;' || pl_fail "avahi-browse: no IPv4 address: $lines"

pl_log "step: avahi-publish -> plcat -b on the engine"
pl_start apub null avahi-publish -s "Avahi Side" "$PL_TYPE" 5000 k=v bool
pl_wait_for_line "$(pl_err apub)" "Established under name 'Avahi Side'" 10 >/dev/null
BR=$PL_TMP/browse.json
rc=0
pl_run 30 "${E[@]}" -b -s "$PL_TYPE" -w 5 --json >"$BR" 2>"$PL_TMP/browse.err" || rc=$?
[ "$rc" = 0 ] || { pl_dump "$PL_TMP/browse.err"; pl_fail "plcat -b -w 5 exited with status $rc"; }
pl_wait_for_json "$BR" 0 '
    e["event"] in ("add", "update") and e["name"] == "Avahi Side" and e["type"] == "_peerlink._tcp"
    and e["domain"] == "local" and e["host"] == "pltest.local" and e["port"] == 5000
    and "192.0.2.1" in e["addresses"] and e["txt"] == {"k": "v", "bool": True}' >/dev/null

pl_log "step: a TXT update and the withdrawal (goodbye) on the engine reach avahi"
pl_require_prog "$PL_PROBE"
pl_start probe fifo ip netns exec "$NS" env PEERLINK_MDNS_INTERFACES=$PL_IFACE_PEER \
	"$PL_PROBE" --backend mdns publish "Probe Side" "$PL_TYPE" 4300 k=1
pl_wait_for_line "$(pl_out probe)" '^established Probe Side$' 15 >/dev/null
pl_avahi_resolved "$PL_TYPE" "Probe Side" 15 '"k=1"' >/dev/null
pl_send probe "txt k=2"
pl_avahi_resolved "$PL_TYPE" "Probe Side" 15 '"k=2"' >/dev/null
pl_send probe quit
pl_expect_exit probe 0 10
pl_avahi_absent "$PL_TYPE" "Probe Side" 10
pl_log "PASS"
