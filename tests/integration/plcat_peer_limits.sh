#!/bin/bash
# SPDX-License-Identifier: ISC
# plcat_peer_limits: plcat sends messages no larger than the peer takes. A
# peer may announce any max_message from 1024 up (docs/PROTOCOL.md section
# 6.2); plcat read its input in 64 KiB messages whatever the peer said, so
# a valid peer announcing 65535 ended the session with "message too
# large". The peer here is the test helper pl-session (the library's
# listener, --max-message 65535); plcat dials it by address.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
pl_enter_sandbox "$@"
pl_require_prog "$PLCAT"
SESSION=$top_builddir/tests/helpers/pl-session
pl_require_prog "$SESSION"
PORT=47120

head -c 300000 /dev/urandom >"$PL_TMP/data"
pl_start peer null "$SESSION" listen --port "$PORT" --keys "$PL_TMP/keys-peer" --code 2468 --max-message 65535
pl_wait_for_line "$(pl_out peer)" '^listening ' 15 >/dev/null
rc=0
pl_run 30 "$PLCAT" -N --address "127.0.0.1:$PORT" --keys "$PL_TMP/keys-plcat" --code 2468 pl-session \
	<"$PL_TMP/data" >/dev/null 2>"$PL_TMP/plcat.err" || rc=$?
[ "$rc" = 0 ] || { pl_dump "$PL_TMP/plcat.err"; pl_fail "plcat to a peer taking 65535-byte messages exited $rc"; }
line=$(pl_wait_for_line "$(pl_out peer)" '^eof ' 10)
[ "$line" = "eof 300000 bytes, largest message 65535" ] || pl_fail "the peer got: $line"
pl_stop peer
pl_log "PASS"
