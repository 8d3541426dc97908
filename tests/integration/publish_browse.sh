#!/bin/bash
# SPDX-License-Identifier: ISC
# publish_browse: an instance published through the library (pl-probe) is seen
# by plcat -b --json as add, then update after its TXT record is replaced,
# then remove after it is withdrawn; avahi-browse sees it with its TXT record.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
pl_enter_sandbox "$@"
pl_require_prog "$PLCAT" "$PL_PROBE"
pl_avahi_start

NAME="Test Svc"
BR=$(pl_out browse)

pl_start browse null "$PLCAT" -b -s "$PL_TYPE" --json
pl_start probe fifo "$PL_PROBE" publish "$NAME" "$PL_TYPE" 4242 a=1 flag
pl_wait_for_line "$(pl_out probe)" "^established $NAME\$" 15 >/dev/null

pl_log "step: browser reports the new instance"
add=$(pl_wait_for_json "$BR" 15 '
    e["event"] == "add" and e["name"] == "Test Svc" and e["type"] == "_peerlink._tcp"
    and e["domain"] == "local" and e["host"] == "pltest.local" and e["port"] == 4242
    and len(e["addresses"]) > 0 and e["txt"].get("a") == "1" and e["txt"].get("flag") is True')
pl_wait_for_json "$BR" 10 '
    e["event"] in ("add", "update") and e["name"] == "Test Svc"
    and "192.0.2.1" in e["addresses"]' >/dev/null
if [ "$PL_HAVE_IPV6" = 1 ]; then
	pl_log "step: browser reports the link-local IPv6 address with its interface"
	pl_wait_for_json "$BR" 10 '
	    e["event"] in ("add", "update") and e["name"] == "Test Svc"
	    and any(a.startswith("fe80:") and a.endswith("%pl0") for a in e["addresses"])' >/dev/null
fi

pl_log "step: avahi-browse sees the instance and its TXT record"
lines=$(pl_avahi_resolved "$PL_TYPE" "$NAME" 10 ';4242;.*"a=1"')
printf '%s\n' "$lines" | grep -q '"flag"' || pl_fail "avahi-browse: no \"flag\" in TXT: $lines"
printf '%s\n' "$lines" | grep -q ';192\.0\.2\.1;4242;' || pl_fail "avahi-browse: no IPv4 address: $lines"

pl_log "step: replace the TXT record"
pl_send probe "txt a=2 b=x"
pl_wait_for_line "$(pl_out probe)" '^txt-updated$' 10 >/dev/null
upd=$(pl_wait_for_json "$BR" 15 '
    e["event"] == "update" and e["name"] == "Test Svc" and e["port"] == 4242
    and e["txt"].get("a") == "2" and e["txt"].get("b") == "x" and "flag" not in e["txt"]' "$add")
lines=$(pl_avahi_resolved "$PL_TYPE" "$NAME" 10 '"a=2"')
printf '%s\n' "$lines" | grep -q '"b=x"' || pl_fail "avahi-browse: no \"b=x\" in TXT: $lines"
if printf '%s\n' "$lines" | grep -q -e '"flag"' -e '"a=1"'; then
	pl_fail "avahi-browse: old TXT strings still there: $lines"
fi

pl_log "step: withdraw"
pl_send probe quit
pl_expect_exit probe 0 10
pl_wait_for_json "$BR" 15 'e["event"] == "remove" and e["name"] == "Test Svc"' "$upd" >/dev/null
pl_avahi_absent "$PL_TYPE" "$NAME" 10

pl_alive browse || pl_fail "plcat -b exited early"
pl_log "PASS"
