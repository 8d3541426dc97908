#!/bin/bash
# SPDX-License-Identifier: ISC
# resume_plcat: plcat keeps a 100 MiB transfer going while a relay
# (tests/helpers/pl-relay.c) cuts, truncates and corrupts the connection:
# the listener's output has the sender's SHA-256, both exit 0, and both
# report the interruptions and resumptions.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
pl_enter_sandbox "$@"
RELAY=$top_builddir/tests/helpers/pl-relay
pl_require_prog "$PLCAT" "$RELAY"
pl_avahi_start

SIZE=$((100 * 1024 * 1024)) CODE=161803 SEED=${PL_RESUME_SEED:-7}
KA=$PL_TMP/keys-listener KB=$PL_TMP/keys-sender
head -c "$SIZE" /dev/urandom >"$PL_TMP/data"

pl_log "step: pair (directly, a few bytes)"
pl_start pair null "$PLCAT" -l -n Sink -p 4700 --keys "$KA" --code "$CODE"
pl_wait_for_line "$(pl_err pair)" '^plcat: published "Sink"' 15 >/dev/null
echo hello | pl_run 30 "$PLCAT" --keys "$KB" --code "$CODE" --address 127.0.0.1:4700 Sink >/dev/null 2>"$PL_TMP/pair-send.err" ||
	{ pl_dump "$PL_TMP/pair-send.err"; pl_fail "pairing failed"; }
pl_expect_exit pair 0 15

pl_log "step: 100 MiB through the relay (seed $SEED)"
pl_start relay null "$RELAY" --listen 4701 --target 4700 --seed "$SEED" --mean-bytes 15000000 \
	--faults cut,truncate,flip --stats "$PL_TMP/relay.stats" --no-stdin
pl_wait_for_line "$(pl_out relay)" '^port 4701$' 10 >/dev/null
pl_start sink null "$PLCAT" -l -n Sink -p 4700 --keys "$KA"
pl_wait_for_line "$(pl_err sink)" '^plcat: published "Sink"' 15 >/dev/null
rc=0
pl_run 300 "$PLCAT" --keys "$KB" --address 127.0.0.1:4701 Sink <"$PL_TMP/data" >/dev/null 2>"$PL_TMP/send.err" || rc=$?
[ "$rc" = 0 ] || { pl_dump "$PL_TMP/send.err"; pl_fail "the sender exited with status $rc"; }
pl_expect_exit sink 0 30
pl_stop relay
pl_log "relay: $(tr '\n' ' ' <"$PL_TMP/relay.stats")"

a=$(sha256sum <"$PL_TMP/data" | cut -d' ' -f1)
b=$(sha256sum <"$(pl_out sink)" | cut -d' ' -f1)
[ "$a" = "$b" ] || pl_fail "received $(stat -c %s "$(pl_out sink)") bytes with sha256 $b; sent $SIZE bytes with $a"
cuts=$(awk '$1 == "cut" || $1 == "truncate" || $1 == "flip" { n += $2 } END { print n + 0 }' "$PL_TMP/relay.stats")
[ "$cuts" -ge 1 ] || pl_fail "the relay never broke the connection"
n=$(grep -c '^plcat: resumed$' "$PL_TMP/send.err" || true)
[ "$n" -ge 1 ] || pl_fail "the sender never reported a resumption"
grep -q '^plcat: connection interrupted' "$(pl_err sink)" || pl_fail "the listener never reported an interruption"
pl_log "PASS: 100 MiB intact (sha256 $a) across $cuts broken links, $n resumptions"
