#!/bin/bash
# SPDX-License-Identifier: ISC
# pairing: plcat pairs with a code (also from PLCAT_CODE or --code-file),
# reconnects without one, needs the code again after --forget on either
# side, lists its peers with their roles and forgets one by its id, refuses
# a wrong code on both sides with its own exit status, locks a fixed code
# after too many failures (and stays locked across a restart), replaces a
# generated code, and closes pairing after the first pairing and after
# --pair-window.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
pl_enter_sandbox "$@"
pl_require_prog "$PLCAT"
pl_avahi_start

KL=$PL_TMP/keys-listener KC=$PL_TMP/keys-connector

# connect NAME EXPECTED_STATUS [ARGS...]: run a connector (no terminal, so it
# cannot prompt) with stdin from /dev/null; check its exit status.
connect() {
	local name=$1 want=$2 rc=0
	shift 2
	setsid -w timeout -k 2 30 "$PLCAT" -w 10 "$@" "$name" </dev/null >"$PL_TMP/conn.out" 2>"$PL_TMP/conn.err" || rc=$?
	if [ "$rc" != "$want" ]; then
		pl_dump "$PL_TMP/conn.err"
		pl_fail "plcat $* $name: exit status $rc, expected $want"
	fi
	pl_log "plcat $* $name -> $rc: $(tr '\n' '|' <"$PL_TMP/conn.err")"
}

listener_up() { # NAME: wait until it is published
	pl_wait_for_line "$(pl_err "$1")" '^plcat: published ' 15 >/dev/null
}

pl_log "step: a wrong code fails on both sides with the wrong-code error"
pl_start l1 null "$PLCAT" -l -n Box --keys "$KL" --code 111111
listener_up l1
connect Box 4 --keys "$KC" --code 222222
grep -qx 'plcat: pairing failed: wrong code' "$PL_TMP/conn.err" || pl_fail "connector: no 'pairing failed: wrong code' line"
pl_expect_exit l1 4 15
grep -qx 'plcat: pairing failed: wrong code' "$(pl_err l1)" || pl_fail "listener: no 'pairing failed: wrong code' line"

pl_log "step: pair with the code (PLCAT_CODE, --code-file: no command line shows it), then reconnect without it"
pl_start l2 null env PLCAT_CODE=111111 "$PLCAT" -l -k --keep-pairing -n Box --keys "$KL"
listener_up l2
! grep -q '^plcat: pairing code:' "$(pl_err l2)" || pl_fail "the listener generated a code though PLCAT_CODE was set"
sleep 1.1 # the listener pauses pairing for 1 s after a failure (not this one: a new process)
printf '111111\n' >"$PL_TMP/code"
connect Box 0 --keys "$KC" --code-file "$PL_TMP/code"
grep -q '^plcat: paired with "Box"' "$PL_TMP/conn.err" || pl_fail "connector did not pair"
connect Box 0 --keys "$KC"
grep -q '^plcat: authenticated "Box"' "$PL_TMP/conn.err" || pl_fail "connector did not reconnect with stored keys"
"$PLCAT" --list-paired --keys "$KC" >"$PL_TMP/paired.txt"
grep -q '^Box	' "$PL_TMP/paired.txt" || pl_fail "--list-paired does not show Box: $(cat "$PL_TMP/paired.txt")"

pl_log "step: after --forget on the connector the code is needed again"
"$PLCAT" --forget Box --keys "$KC" 2>/dev/null || pl_fail "--forget Box failed"
connect Box 5 --keys "$KC"
grep -q 'not paired' "$PL_TMP/conn.err" || pl_fail "connector: no 'not paired' message"
connect Box 0 --keys "$KC" --code 111111

pl_log "step: after --forget on the listener the code is needed again"
peer=$("$PLCAT" --list-paired --keys "$KL" | cut -f1 | head -n 1)
[ -n "$peer" ] || pl_fail "the listener lists no paired peer"
"$PLCAT" --forget "$peer" --keys "$KL" 2>/dev/null || pl_fail "--forget $peer failed"
connect Box 5 --keys "$KC"
connect Box 0 --keys "$KC" --code 111111

pl_log "step: --as names the dialler; --list-paired shows each entry's role; --forget-id forgets one peer"
KD=$PL_TMP/keys-laptop
connect Box 0 --keys "$KD" --code 111111 --as Laptop
pl_wait_for_line "$(pl_err l2)" '^plcat: paired with "Laptop" from ' 10 >/dev/null
"$PLCAT" --list-paired --keys "$KD" | grep -q '^Box	.*	[0-9a-f]\{64\}	responder$' ||
	pl_fail "the dialler's list: $("$PLCAT" --list-paired --keys "$KD")"
laptop=$("$PLCAT" --list-paired --keys "$KL" | awk -F'\t' '$1 == "Laptop" && $4 == "initiator" {print $3}')
[ -n "$laptop" ] || pl_fail "the listener's list: $("$PLCAT" --list-paired --keys "$KL")"
"$PLCAT" --forget-id "$laptop" --keys "$KL" 2>/dev/null || pl_fail "--forget-id $laptop failed"
! "$PLCAT" --list-paired --keys "$KL" | grep -q "$laptop" || pl_fail "--forget-id left $laptop"
connect Box 5 --keys "$KD"
connect Box 0 --keys "$KC" # the other peer is still paired
pl_stop l2

pl_log "step: a fixed code locks after --max-attempts failures, and stays locked after a restart"
K3=$PL_TMP/keys-locked
pl_start l3 null "$PLCAT" -l -k -n Lock --keys "$K3" --code 424242 --max-attempts 2
listener_up l3
connect Lock 4 --keys "$KC" --code 000000
sleep 1.1
connect Lock 4 --keys "$KC" --code 000001
sleep 1.1
connect Lock 5 --keys "$KC" --code 424242
grep -q 'pairing failed: pairing locked' "$PL_TMP/conn.err" || pl_fail "connector: not told the pairing is locked"
pl_stop l3
pl_start l4 null "$PLCAT" -l -k -n Lock --keys "$K3" --code 424242 --max-attempts 2
listener_up l4
connect Lock 5 --keys "$KC" --code 424242
grep -q 'pairing failed: pairing locked' "$PL_TMP/conn.err" || pl_fail "the lock did not survive the restart"
pl_stop l4

pl_log "step: a generated code is replaced after --max-attempts failures"
pl_start l5 null "$PLCAT" -l -k -n Gen --keys "$PL_TMP/keys-gen" --max-attempts 2
listener_up l5
code1=$(sed -n 's/^plcat: pairing code: //p' "$(pl_err l5)")
[ -n "$code1" ] || pl_fail "no pairing code printed"
wrong=$([ "$code1" = 999999 ] && echo 999998 || echo 999999)
connect Gen 4 --keys "$KC" --code "$wrong"
sleep 1.1
connect Gen 4 --keys "$KC" --code "$wrong"
line=$(pl_wait_for_line "$(pl_err l5)" 'new pairing code: [0-9]+$' 10)
code2=${line##* }
pl_log "codes: $code1 then $code2"
sleep 1.1
connect Gen 0 --keys "$KC" --code "$code2"
pl_stop l5

pl_log "step: pairing closes after the first pairing (-k keeps listening), and when --pair-window ends"
pl_start l6 null "$PLCAT" -l -k -n Once --keys "$PL_TMP/keys-once" --code 135790
listener_up l6
grep -qx 'plcat: pairing is open for 900 s, or until a peer pairs' "$(pl_err l6)" || pl_fail "l6: no window line"
connect Once 0 --keys "$PL_TMP/keys-o1" --code 135790
pl_wait_for_line "$(pl_err l6)" '^plcat: pairing closed after the first pairing' 10 >/dev/null
connect Once 5 --keys "$PL_TMP/keys-o2" --code 135790
grep -q 'pairing failed: ' "$PL_TMP/conn.err" || pl_fail "a second peer was not told that pairing is closed"
connect Once 0 --keys "$PL_TMP/keys-o1" # the paired peer still gets in
pl_stop l6
pl_start l7 null "$PLCAT" -l -k -n Brief --keys "$PL_TMP/keys-brief" --code 135790 --pair-window 1
listener_up l7
pl_wait_for_line "$(pl_err l7)" '^plcat: pairing closed \(its window is over\)' 10 >/dev/null
connect Brief 5 --keys "$PL_TMP/keys-o2" --code 135790
pl_stop l7
pl_log "PASS"
