#!/bin/bash
# plecho: the echo server example, which follows session.h's flow-control
# pattern (keep the refused echo and pause on PL_ERR_AGAIN, send it and
# unpause on PL_SESSION_ACKED), against plcat sending 16 MiB in bulk while it
# reads the echoes. Every byte comes back in order, both exit 0 (no
# deadlock: before, the paused server stopped reading the client's Acks),
# and the server's peak memory stays within a bound far below the data.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
pl_enter_sandbox "$@"
PLECHO=$top_builddir/examples/plecho
pl_require_prog "$PLCAT" "$PLECHO"

SIZE=$((16 * 1024 * 1024))
head -c "$SIZE" /dev/urandom >"$PL_TMP/data"
CODE=314159

# A small send limit for the echoes, so that the server meets it and
# pauses again and again; the client keeps plcat's 4 MiB.
pl_start echo null "$PLECHO" -1 -n Echo --code "$CODE" --keys "$PL_TMP/keys-echo" --send-limit 16384
line=$(pl_wait_for_line "$(pl_err echo)" '^plecho: "Echo" listening on port [0-9]+' 10)
port=$(sed -E 's/.* port ([0-9]+),.*/\1/' <<<"$line")
pl_log "plecho listens on port $port"

rc=0
pl_run 120 "$PLCAT" --keys "$PL_TMP/keys-client" --code "$CODE" --address "127.0.0.1:$port" Echo \
	<"$PL_TMP/data" >"$PL_TMP/echoed" 2>"$PL_TMP/client.err" || rc=$?
if [ "$rc" != 0 ]; then
	pl_dump "$PL_TMP/client.err"
	pl_dump "$(pl_err echo)"
	pl_fail "plcat exited with status $rc (124: it hung)"
fi
pl_expect_exit echo 0 15

a=$(sha256sum <"$PL_TMP/data" | cut -d' ' -f1)
b=$(sha256sum <"$PL_TMP/echoed" | cut -d' ' -f1)
[ "$a" = "$b" ] || pl_fail "the echo ($(stat -c %s "$PL_TMP/echoed") bytes) differs from what was sent ($SIZE bytes)"
pl_log "16 MiB echoed intact: sha256 $a"
grep -q '^plecho: session ended cleanly$' "$(pl_err echo)" || pl_fail "plecho did not report a clean end"

# What the library kept for the server's session, sampled at every event:
# the echoes the client had not acknowledged (the send limit, 16 KiB, plus
# the one message allowed past it: at most a 64 KiB chunk of plcat's) and,
# while paused, the client's messages held for the application (bounded by
# the receive limit, 4 MiB, counted as bytes plus 48 each, plus one
# message). Holding the 16 MiB stream would pass both. Peak RSS is shown
# for information only: under ASan it measures the sanitizer's quarantine.
stats=$(grep -E '^plecho: paused [0-9]+ times; at most [0-9]+ bytes held, [0-9]+ unacknowledged; peak resident memory [0-9]+ KiB$' "$(pl_err echo)") ||
	pl_fail "plecho did not report its pauses and what it kept"
pauses=$(sed -E 's/^plecho: paused ([0-9]+) times.*/\1/' <<<"$stats")
held=$(sed -E 's/.*at most ([0-9]+) bytes held.*/\1/' <<<"$stats")
unacked=$(sed -E 's/.* ([0-9]+) unacknowledged.*/\1/' <<<"$stats")
pl_log "$stats"
[ "$pauses" -gt 0 ] || pl_fail "plecho never paused: the pattern was not exercised"
[ "$held" -gt 0 ] || pl_fail "plecho never held a message while paused: the hold path was not exercised"
[ "$held" -le $((4 * 1024 * 1024 + 65536 + 48)) ] || pl_fail "plecho held $held bytes, above its 4 MiB receive limit plus one message"
[ "$unacked" -le $((16384 + 65536)) ] || pl_fail "plecho had $unacked bytes unacknowledged, above its 16 KiB send limit plus one message"
