#!/bin/bash
# SPDX-License-Identifier: ISC
# resume_relay: one session through a fault-injecting relay (tests/helpers/
# pl-relay.c) that cuts, truncates, stalls, delays and corrupts the link at
# random points drawn from a seed. Each side sends PL_RESUME_MESSAGES
# messages of varied sizes (default 50,000 each way: 100,000 in all); every
# one must arrive exactly once, in order, intact (pl-session checks index,
# length and every byte), across at least PL_RESUME_MIN_CUTS (default 200)
# cuts and truncations, and the session must end cleanly on both sides.
#
# PL_RESUME_LINKS=channel runs the same over application pipes instead of
# the library's own sockets (resume_relay_channel.sh): the helper's sockets
# reach a detached listener through pl_listener_add_channel, and the
# initiator attaches a new pipe after every break.
#
# The seed is printed; replay a failure with PL_RESUME_SEED=<seed>. A longer
# randomized run: PL_RESUME_SEED=random PL_RESUME_MESSAGES=200000 make check
# TESTS=tests/integration/resume_relay.sh
set -euo pipefail
. "$(dirname "$0")/lib.sh"
pl_enter_sandbox "$@"

SESSION=$top_builddir/tests/helpers/pl-session
RELAY=$top_builddir/tests/helpers/pl-relay
pl_require_prog "$SESSION" "$RELAY"

SEED=${PL_RESUME_SEED:-20261122}
[ "$SEED" != random ] || SEED=$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')
N=${PL_RESUME_MESSAGES:-50000}
MIN_CUTS=${PL_RESUME_MIN_CUTS:-200}
# About 1.8 KB a message and its resends: a fault every 350 kB gives some
# 500 faults, of which 4 in 7 cut or truncate the link.
MEAN=${PL_RESUME_MEAN_BYTES:-350000}
LINKS=${PL_RESUME_LINKS:-tcp}
pl_log "seed $SEED, $N messages each way over $LINKS links, a fault every $MEAN bytes on average"

# Loopback only, inside the test's own network namespace.
pl_start relay null "$RELAY" --listen 4701 --target 4700 --seed "$SEED" --mean-bytes "$MEAN" \
	--faults cut,truncate,cut,truncate,flip,stall,delay --stats "$PL_TMP/relay.stats" --no-stdin
pl_wait_for_line "$(pl_out relay)" '^port 4701$' 10 >/dev/null

rc=0
pl_run 900 "$SESSION" relay --port 4700 --relay-port 4701 --messages "$N" --seed "$SEED" --timeout 850 --links "$LINKS" \
	>"$PL_TMP/session.out" 2>"$PL_TMP/session.err" || rc=$?
pl_stop relay
grep -E '^(summary|FAIL)' "$PL_TMP/session.out" >&2 || true
if [ "$rc" != 0 ]; then
	pl_dump "$PL_TMP/session.out" 40
	pl_dump "$PL_TMP/session.err" 40
	pl_fail "pl-session relay exited with status $rc (seed $SEED)"
fi
grep -q '^summary ' "$PL_TMP/session.out" || pl_fail "no summary from pl-session"

stat() { awk -v k="$1" '$1 == k { print $2 }' "$PL_TMP/relay.stats"; }
cuts=$(($(stat cut) + $(stat truncate)))
flips=$(stat flip)
pl_log "relay: $(tr '\n' ' ' <"$PL_TMP/relay.stats")"
[ "$cuts" -ge "$MIN_CUTS" ] || pl_fail "only $cuts cuts and truncations (want >= $MIN_CUTS; seed $SEED)"
[ "$flips" -ge 1 ] || pl_fail "no bit was flipped (seed $SEED)"
pl_log "PASS: $((2 * N)) messages exactly once and in order over $LINKS links across $cuts cuts and $flips bit flips (seed $SEED)"
