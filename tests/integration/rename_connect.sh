#!/bin/bash
# SPDX-License-Identifier: ISC
# rename_connect: a listener that publishes itself (pl_listener_publish, as
# plcat -l does) and is renamed by a name conflict binds its handshakes to
# the new name by itself: a peer that finds it under "Twin #2" pairs with
# it and sends a line, while the first "Twin" is untouched.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
pl_enter_sandbox "$@"
pl_require_prog "$PLCAT"
pl_avahi_start

pl_start first null "$PLCAT" -l -k -n Twin --keys "$PL_TMP/k1" --code 111111
pl_wait_for_line "$(pl_err first)" '^plcat: published "Twin" \(_peerlink\._tcp\) on port [0-9]+$' 15 >/dev/null

pl_log "step: a second listener of the same name is renamed"
pl_start second null "$PLCAT" -l -n Twin --keys "$PL_TMP/k2" --code 222222
renamed=$(pl_wait_for_line "$(pl_err second)" '^plcat: renamed to ".*"$' 15)
new=$(sed -E 's/^plcat: renamed to "(.*)"$/\1/' <<<"$renamed")
[ "$new" != Twin ] || pl_fail "renamed to the same name"
pl_wait_for_line "$(pl_err second)" "^plcat: published \"$new\" " 15 >/dev/null
pl_log "the second listener is \"$new\" now"

pl_log "step: a peer finds \"$new\", pairs with its code and sends a line"
rc=0
echo "hello renamed" | pl_run 30 "$PLCAT" -w 10 --keys "$PL_TMP/k3" --code 222222 "$new" \
	>"$PL_TMP/peer.out" 2>"$PL_TMP/peer.err" || rc=$?
if [ "$rc" != 0 ]; then
	pl_dump "$PL_TMP/peer.err"
	pl_dump "$(pl_err second)"
	pl_fail "plcat \"$new\" exited with status $rc"
fi
grep -q "^plcat: paired with \"$new\"" "$PL_TMP/peer.err" || pl_fail "the peer did not pair with \"$new\""
pl_expect_exit second 0 15
grep -qx 'hello renamed' "$(pl_out second)" || pl_fail "the renamed listener did not get the line"
[ ! -s "$(pl_out first)" ] || pl_fail "the first listener got data"
pl_alive first || pl_fail "the first listener ended"
pl_log "PASS"
