#!/bin/bash
# SPDX-License-Identifier: ISC
# daemon_restart: the library survives an avahi-daemon restart.  The browser
# reports remove and then add again for the instance, the publisher prints
# "established" a second time, and avahi-browse sees the instance again.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
pl_enter_sandbox "$@"
pl_require_prog "$PLCAT" "$PL_PROBE"
pl_avahi_start

NAME="Restart Svc"
BR=$(pl_out browse)
PO=$(pl_out probe)

pl_start browse null "$PLCAT" -b -s "$PL_TYPE" --json
pl_start probe fifo "$PL_PROBE" publish "$NAME" "$PL_TYPE" 4243 v=1
pl_wait_for_line "$PO" "^established $NAME\$" 15 >/dev/null
add=$(pl_wait_for_json "$BR" 15 '
    e["event"] == "add" and e["name"] == "Restart Svc" and e["port"] == 4243
    and e["txt"].get("v") == "1"')
pl_avahi_resolved "$PL_TYPE" "$NAME" 10 ';4243;.*"v=1"' >/dev/null

pl_log "step: restart avahi-daemon"
pl_avahi_restart

pl_log "step: browser reports remove, then add again"
rm_line=$(pl_wait_for_json "$BR" 20 'e["event"] == "remove" and e["name"] == "Restart Svc"' "$add")
pl_wait_for_json "$BR" 30 '
    e["event"] == "add" and e["name"] == "Restart Svc" and e["port"] == 4243
    and len(e["addresses"]) > 0 and e["txt"].get("v") == "1"' "$rm_line" >/dev/null

pl_log "step: publisher re-established the instance"
pl_wait_for_count "$PO" "^established $NAME\$" 2 30 >/dev/null
if grep -q '^failed' "$PO"; then
	pl_fail "pl-probe reported a failure: $(grep '^failed' "$PO")"
fi
pl_avahi_resolved "$PL_TYPE" "$NAME" 15 ';4243;.*"v=1"' >/dev/null

pl_alive browse || pl_fail "plcat -b did not survive the restart"
pl_alive probe || pl_fail "pl-probe did not survive the restart"

pl_log "step: withdraw after the restart"
pl_send probe quit
pl_expect_exit probe 0 10
pl_avahi_absent "$PL_TYPE" "$NAME" 10
pl_alive browse || pl_fail "plcat -b exited early"
pl_log "PASS"
