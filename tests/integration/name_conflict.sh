#!/bin/bash
# SPDX-License-Identifier: ISC
# name_conflict: two publishers of the same name on one daemon; the second
# is renamed (Avahi's alternative name) and both instances are browsable.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
pl_enter_sandbox "$@"
pl_require_prog "$PLCAT" "$PL_PROBE"
pl_avahi_start

BR=$(pl_out browse)
P1=$(pl_out probe1)
P2=$(pl_out probe2)

pl_start browse null "$PLCAT" -b -s "$PL_TYPE" --json
pl_start probe1 fifo "$PL_PROBE" publish Twin "$PL_TYPE" 4250
pl_wait_for_line "$P1" '^established Twin$' 15 >/dev/null

pl_log "step: second publisher of the same name"
pl_start probe2 fifo "$PL_PROBE" publish Twin "$PL_TYPE" 4251
first=$(pl_wait_for_line "$P2" '^(renamed|established|failed) ' 15)
case $first in
"renamed "*) new=${first#renamed } ;;
*) pl_fail "pl-probe #2: expected \"renamed NEW\" first, got \"$first\"" ;;
esac
if [ -z "$new" ] || [ "$new" = Twin ]; then
	pl_fail "pl-probe #2 renamed to \"$new\""
fi
pl_log "second publisher renamed to \"$new\""
pl_wait_for_line "$P2" '^established ' 15 >/dev/null
est=$(grep -m1 '^established ' "$P2")
[ "$est" = "established $new" ] ||
	pl_fail "pl-probe #2: expected \"established $new\", got \"$est\""

pl_log "step: the browser sees two distinct instances"
pl_wait_for_json "$BR" 15 'e["event"] == "add" and e["name"] == "Twin" and e["port"] == 4250' >/dev/null
export PL_NEW=$new
pl_wait_for_json "$BR" 15 '
    e["event"] == "add" and e["name"] == __import__("os").environ["PL_NEW"] and e["port"] == 4251' >/dev/null
pl_avahi_resolved "$PL_TYPE" Twin 10 ';4250;' >/dev/null
pl_avahi_resolved "$PL_TYPE" "$new" 10 ';4251;' >/dev/null

pl_log "step: the first publisher kept its name"
if grep -q -v '^established Twin$' "$P1"; then
	pl_fail "pl-probe #1 printed more than \"established Twin\": $(cat "$P1")"
fi
pl_alive probe1 || pl_fail "pl-probe #1 exited"
pl_alive probe2 || pl_fail "pl-probe #2 exited"

pl_send probe2 quit
pl_expect_exit probe2 0 10
pl_send probe1 quit
pl_expect_exit probe1 0 10
pl_log "PASS"
