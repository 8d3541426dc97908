#!/bin/bash
# SPDX-License-Identifier: ISC
# resume_moved: the peer moves while the session is interrupted, and the
# dialling side finds it again through discovery. The listener publishes
# itself (built-in mDNS engine, on lo) at a relay's port; the sender finds
# it there and streams numbered messages. The relay goes away (the link
# breaks, the old address refuses), and the listener publishes again at
# its own port: the sender's session, browsing again while interrupted,
# dials the new address and resumes. Every message arrives once, in
# order, and the session ends cleanly.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
pl_enter_sandbox "$@"
SESSION=$top_builddir/tests/helpers/pl-session
RELAY=$top_builddir/tests/helpers/pl-relay
pl_require_prog "$SESSION" "$RELAY"
export PEERLINK_MDNS_INTERFACES=lo # multicast stays on this namespace's loopback
N=20000 CODE=314159
KR=$PL_TMP/keys-receiver KS=$PL_TMP/keys-sender
mkdir -p "$KR" "$KS"

pl_start relay null "$RELAY" --listen 4701 --target 4700 --seed 1 --faults none --no-stdin
pl_wait_for_line "$(pl_out relay)" '^port 4701$' 10 >/dev/null
pl_start recv fifo "$SESSION" listen --port 4700 --keys "$KR" --code "$CODE" --publish-port 4701
pl_wait_for_line "$(pl_out recv)" '^published pl-session$' 15 >/dev/null
pl_start send null "$SESSION" send --browse --keys "$KS" --code "$CODE" --messages "$N" --rate 2000
pl_wait_for_line "$(pl_out send)" '^found port 4701$' 15 >/dev/null
pl_wait_for_line "$(pl_out send)" '^acked ([3-9][0-9]{3}|[0-9]{5})$' 20 >/dev/null

pl_log "step: the relay goes, the listener moves to port 4700"
pl_stop relay
pl_send recv "republish 4700"
pl_wait_for_line "$(pl_out recv)" '^republished 4700$' 10 >/dev/null
pl_expect_exit send 0 60
pl_wait_for_line "$(pl_out send)" '^interrupted ' 1 >/dev/null
pl_wait_for_line "$(pl_out send)" '^resumed 0 acked [0-9]+$' 1 >/dev/null
pl_wait_for_line "$(pl_out recv)" '^resumed 0$' 1 >/dev/null
pl_wait_for_line "$(pl_out recv)" '^closed 0$' 10 >/dev/null
pl_stop recv

grep '^msg ' "$(pl_out recv)" | awk '{ print $2 }' >"$PL_TMP/got"
seq 0 $((N - 1)) | cmp -s - "$PL_TMP/got" ||
	pl_fail "the listener did not get messages 0..$((N - 1)) exactly once in order (count $(wc -l <"$PL_TMP/got"))"
pl_log "PASS: the session followed the listener to its new port; $N messages once, in order"
