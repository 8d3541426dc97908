#!/bin/bash
# SPDX-License-Identifier: ISC
# name_squat (issue 12): a device D that both dials and listens with one
# keystore pairs with the real "Kitchen"; a guest whose host name is
# "Kitchen" pairs with D's listener "Hub". The guest's claimed name must not
# select the key D expects when it dials "Kitchen": D still reconnects to
# the real Kitchen with no code, also after the real Kitchen is renamed
# ("Kitchen #2"), and when the guest listens as "Kitchen" D refuses it
# (not paired) and sends it nothing, also while the real one is "Kitchen #2".
set -euo pipefail
. "$(dirname "$0")/lib.sh"
pl_enter_sandbox "$@"
pl_require_prog "$PLCAT"
pl_avahi_start
command -v hostname >/dev/null || pl_skip "hostname not found"
unshare -u true 2>/dev/null || pl_skip "unshare -u does not work here"

KK=$PL_TMP/keys-kitchen KD=$PL_TMP/keys-d KG=$PL_TMP/keys-guest

listener_up() { # NAME INSTANCE: wait until NAME is published as INSTANCE
	pl_wait_for_line "$(pl_err "$1")" "^plcat: published \"$2\" " 15 >/dev/null
}

# dial N EXPECTED_STATUS LINE [ARGS...]: D sends LINE to "Kitchen" with its keystore.
dial() {
	local n=$1 want=$2 line=$3 rc=0
	shift 3
	printf '%s\n' "$line" | pl_run 30 "$PLCAT" -w 10 --keys "$KD" "$@" Kitchen \
		>"$PL_TMP/d$n.out" 2>"$PL_TMP/d$n.err" || rc=$?
	if [ "$rc" != "$want" ]; then
		pl_dump "$PL_TMP/d$n.err"
		pl_fail "D's dial #$n: exit status $rc, expected $want"
	fi
	pl_log "D's dial #$n -> $rc: $(tr '\n' '|' <"$PL_TMP/d$n.err")"
}

pl_log "step: D pairs with the real Kitchen"
pl_start kitchen null "$PLCAT" -l -k -n Kitchen --keys "$KK" --code 111111
listener_up kitchen Kitchen
dial 1 0 "first line" --code 111111
grep -q '^plcat: paired with ' "$PL_TMP/d1.err" || pl_fail "D did not pair with Kitchen"

pl_log "step: a guest named Kitchen pairs with D's listener Hub"
pl_start hub null "$PLCAT" -l -n Hub --keys "$KD" --code 222222
listener_up hub Hub
rc=0
echo "hello hub" | pl_run 30 unshare -u /bin/sh -c 'hostname Kitchen && exec "$0" "$@"' \
	"$PLCAT" -w 10 --keys "$KG" --code 222222 Hub >"$PL_TMP/guest.out" 2>"$PL_TMP/guest.err" || rc=$?
[ "$rc" = 0 ] || { pl_dump "$PL_TMP/guest.err"; pl_fail "the guest could not pair with Hub (status $rc)"; }
pl_expect_exit hub 0 15
grep -qx 'hello hub' "$(pl_out hub)" || pl_fail "Hub did not get the guest's line"
"$PLCAT" --list-paired --keys "$KD" >"$PL_TMP/paired.txt"
grep -c '^Kitchen	' "$PL_TMP/paired.txt" | grep -qx 2 ||
	pl_fail "D should hold two entries named Kitchen (the responder and the guest's claim): $(cat "$PL_TMP/paired.txt")"

pl_log "step: D dials Kitchen with no code and reaches the real one"
dial 2 0 "for the real kitchen"
pl_wait_for_line "$(pl_out kitchen)" '^for the real kitchen$' 10 >/dev/null

# A listener's goodbye reaches browsers within a second; until then D could find the stopped one
# (by name or by its pl-hint) and dial a closed port.
stop_listener() { # NAME INSTANCE
	pl_stop "$1"
	pl_avahi_absent _peerlink._tcp "$2" 10
}

pl_log "step: the real Kitchen, renamed Kitchen #2, is still reached as Kitchen with no code"
stop_listener kitchen Kitchen
pl_start kitchen2 null "$PLCAT" -l -k -n "Kitchen #2" --keys "$KK"
listener_up kitchen2 "Kitchen #2"
dial 3 0 "for the renamed kitchen"
pl_wait_for_line "$(pl_out kitchen2)" '^for the renamed kitchen$' 10 >/dev/null
stop_listener kitchen2 "Kitchen #2"

pl_log "step: the guest listening as Kitchen is refused, and gets nothing"
pl_start squat null "$PLCAT" -l -k -n Kitchen --keys "$KG" --code 333333
listener_up squat Kitchen
dial 4 5 "secret for the kitchen"
grep -q 'not paired' "$PL_TMP/d4.err" || pl_fail "D: no 'not paired' message"

pl_log "step: with the guest holding Kitchen and the real one as Kitchen #2, D reaches the real one"
pl_start kitchen3 null "$PLCAT" -l -k -n "Kitchen #2" --keys "$KK"
listener_up kitchen3 "Kitchen #2"
dial 5 0 "secret for the kitchen"
pl_wait_for_line "$(pl_out kitchen3)" '^secret for the kitchen$' 10 >/dev/null
pl_alive squat || pl_fail "the guest's listener ended"
pl_stop squat
! grep -q 'secret' "$(pl_out squat)" || pl_fail "the guest got the secret"
pl_stop kitchen3
pl_log "PASS"
