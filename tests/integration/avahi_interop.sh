#!/bin/bash
# SPDX-License-Identifier: ISC
# avahi_interop: plcat -b sees what avahi-publish publishes, and avahi-browse
# sees what plcat -l publishes, TXT records included.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
pl_enter_sandbox "$@"
pl_require_prog "$PLCAT"
pl_avahi_start

pl_log "step: avahi-publish -> plcat -b"
pl_start apub null avahi-publish -s "Avahi Side" "$PL_TYPE" 5000 k=v bool
pl_wait_for_line "$(pl_err apub)" "Established under name 'Avahi Side'" 10 >/dev/null
BR=$PL_TMP/browse.json
rc=0
pl_run 30 "$PLCAT" -b -s "$PL_TYPE" -w 5 --json >"$BR" 2>"$PL_TMP/browse.err" || rc=$?
if [ "$rc" != 0 ]; then
	pl_dump "$PL_TMP/browse.err"
	pl_fail "plcat -b -w 5 exited with status $rc"
fi
pl_wait_for_json "$BR" 0 '
    e["event"] == "add" and e["name"] == "Avahi Side" and e["type"] == "_peerlink._tcp"
    and e["domain"] == "local" and e["host"] == "pltest.local" and e["port"] == 5000
    and "192.0.2.1" in e["addresses"] and e["txt"] == {"k": "v", "bool": True}' >/dev/null

pl_log "step: plcat -l -> avahi-browse"
pl_start listen fifo "$PLCAT" -l -n "Plcat Side" -s "$PL_TYPE" -T k=v -T flag
line=$(pl_wait_for_line "$(pl_err listen)" \
	'^plcat: published "Plcat Side" \(_peerlink\._tcp\) on port [0-9]+$' 15)
port=${line##* }
lines=$(pl_avahi_resolved "$PL_TYPE" "Plcat Side" 10 ";$port;")
printf '%s\n' "$lines" | grep -q '"k=v"' || pl_fail "avahi-browse: no \"k=v\" in TXT: $lines"
printf '%s\n' "$lines" | grep -q '"flag"' || pl_fail "avahi-browse: no boolean \"flag\" in TXT: $lines"
printf '%s\n' "$lines" | grep -q ';192\.0\.2\.1;' || pl_fail "avahi-browse: no IPv4 address: $lines"
pl_alive listen || pl_fail "plcat -l exited early"
pl_log "PASS"
