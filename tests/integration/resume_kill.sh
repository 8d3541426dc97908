#!/bin/bash
# SPDX-License-Identifier: ISC
# resume_kill: the receiving peer is killed (SIGKILL) in the middle of a
# stream of numbered messages and started again with the same keystore.
# The sender's session comes back as a new one (PL_SESSION_RESUMED with
# PL_ERR_PEER_RESET: the restarted peer lost the old session) and goes on:
# the messages acknowledged before the kill are not sent again, every one
# not acknowledged is, once and in order. Then, killed and not restarted:
# the sender gives the session up when its resume window runs out.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
pl_enter_sandbox "$@"

SESSION=$top_builddir/tests/helpers/pl-session
pl_require_prog "$SESSION"
N=20000 CODE=424242
KR=$PL_TMP/keys-receiver KS=$PL_TMP/keys-sender
mkdir -p "$KR" "$KS"

pl_start recv1 null "$SESSION" listen --port 4700 --keys "$KR" --code "$CODE"
pl_wait_for_line "$(pl_out recv1)" '^listening 4700$' 10 >/dev/null
# 2,000 messages a second: the kill lands in the middle of the stream.
pl_start send null "$SESSION" send --port 4700 --keys "$KS" --code "$CODE" --messages "$N" --rate 2000
pl_wait_for_line "$(pl_out send)" '^acked ([4-9][0-9]{3}|[0-9]{5})$' 20 >/dev/null
kill -KILL "$(pl_pid recv1)"
pl_wait_exit recv1 10
pl_log "receiver killed after $(grep -c '^msg ' "$(pl_out recv1)") messages"

pl_start recv2 null "$SESSION" listen --port 4700 --keys "$KR"
pl_expect_exit send 0 60
reset=$(pl_wait_for_line "$(pl_out send)" '^resumed -26 acked [0-9]+$' 1)
A=${reset##* }
pl_wait_for_line "$(pl_out recv2)" '^closed 0$' 10 >/dev/null
pl_stop recv2
pl_log "the sender resumed in a new session with $A messages acknowledged"

# Before the kill: 0 .. (at least) A-1, in order, each once.
grep '^msg ' "$(pl_out recv1)" | awk '{ print $2 }' >"$PL_TMP/got1"
n1=$(wc -l <"$PL_TMP/got1")
[ "$n1" -ge "$A" ] || pl_fail "the first receiver has $n1 messages, but $A were acknowledged"
seq 0 $((n1 - 1)) | cmp -s - "$PL_TMP/got1" || pl_fail "the first receiver's messages are not 0..$((n1 - 1)) in order"
# After the restart: exactly A .. N-1, in order, each once.
grep '^msg ' "$(pl_out recv2)" | awk '{ print $2 }' >"$PL_TMP/got2"
seq "$A" $((N - 1)) | cmp -s - "$PL_TMP/got2" ||
	pl_fail "the restarted receiver did not get exactly messages $A..$((N - 1)) in order (first: $(head -1 "$PL_TMP/got2"), count $(wc -l <"$PL_TMP/got2"))"
pl_log "PASS: $A acknowledged messages not resent; $((N - A)) resent once, in order ($((n1 - A)) had reached the killed receiver unacknowledged)"

# The receiver killed and not restarted: the sender gives the session up
# when the resume window it set (2 s) runs out, with PL_ERR_TIMEOUT (-7).
pl_start recv3 null "$SESSION" listen --port 4700 --keys "$KR"
pl_wait_for_line "$(pl_out recv3)" '^listening 4700$' 10 >/dev/null
pl_start send2 null "$SESSION" send --port 4700 --keys "$KS" --messages "$N" --rate 2000 --resume-ms 2000
pl_wait_for_line "$(pl_out send2)" '^acked ([1-9][0-9]{3})$' 20 >/dev/null
kill -KILL "$(pl_pid recv3)"
t0=$(date +%s.%N)
pl_expect_exit send2 1 30
t1=$(date +%s.%N)
pl_wait_for_line "$(pl_out send2)" '^interrupted ' 1 >/dev/null
pl_wait_for_line "$(pl_out send2)" '^closed -7 ' 1 >/dev/null
waited=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
pl_log "the sender gave up after $waited s with the receiver gone"
awk -v w="$waited" 'BEGIN { exit !(w >= 1.9) }' || pl_fail "gave up after $waited s, before its 2 s resume window ran out"
