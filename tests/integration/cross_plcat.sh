#!/bin/bash
# SPDX-License-Identifier: ISC
# cross_plcat: a plcat built for 32-bit ARM (armhf, scripts/cross-test),
# run under qemu-user, and this machine's plcat pair on loopback and move
# 1 MiB each way with the same SHA-256 at both ends, in both roles:
#   1. ARM listener, x86-64 dialler: they pair with a code; the dialler sends.
#   2. x86-64 listener with the keystore the ARM plcat wrote, ARM dialler with
#      the keystore the x86-64 plcat wrote: they authenticate with the stored
#      keys and no code; the ARM dialler sends.
# The dialler goes straight to 127.0.0.1 (--address); the listener publishes
# through the sandbox's avahi-daemon.
#
# The ARM build: $PEERLINK_CROSS_ARMHF (a build-cross-armhf directory, set by
# scripts/quickstart so that distcheck finds it too), else
# $top_srcdir/build-cross-armhf. Without it (or without qemu-arm) the test
# skips, and under CI=true fails.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
pl_enter_sandbox "$@"
pl_require_prog "$PLCAT"

arm_build=${PEERLINK_CROSS_ARMHF:-$top_srcdir/build-cross-armhf}
# A shared-library build keeps the program in .libs (examples/plcat is then libtool's wrapper script).
arm_plcat=$arm_build/examples/.libs/plcat
[ -x "$arm_plcat" ] || arm_plcat=$arm_build/examples/plcat
[ -x "$arm_plcat" ] || pl_skip "no armhf plcat in $arm_build (make it with: scripts/cross-test --build-only armhf)"
qemu=$(command -v qemu-arm-static || command -v qemu-arm) || pl_skip "qemu-arm not found (Debian: qemu-user-static)"
# Real, or not done: the program must be 32-bit ARM, or this test proves nothing.
file -b "$arm_plcat" | grep -q '^ELF 32-bit LSB .*ARM' || pl_fail "$arm_plcat is not a 32-bit ARM program: $(file -b "$arm_plcat")"
pl_log "ARM plcat: $arm_plcat under $qemu"

# The ARM plcat, finding its own libpeerlink.so (in the guest's environment
# only; this machine's programs keep theirs).
ARM_PLCAT=("$qemu" -E "LD_LIBRARY_PATH=$arm_build/lib/.libs" "$arm_plcat")

pl_avahi_start

SIZE=1048576
head -c "$SIZE" /dev/urandom >"$PL_TMP/data"
head -c "$SIZE" /dev/urandom >"$PL_TMP/data2"

KA=$PL_TMP/keys-a KB=$PL_TMP/keys-b CODE=314159 PORT=47311
PUBLISHED='^plcat: published "Sink" \(_peerlink\._tcp\) on port 47311$'

# Generous waits: everything the ARM side does is emulated.
pl_log "step 1: ARM listener pairs with an x86-64 dialler, which sends 1 MiB"
pl_start sink null "${ARM_PLCAT[@]}" -l -n Sink -p "$PORT" --keys "$KA" --code "$CODE"
pl_wait_for_line "$(pl_err sink)" "$PUBLISHED" 120 >/dev/null
rc=0
pl_run 300 "$PLCAT" --keys "$KB" --code "$CODE" --address "127.0.0.1:$PORT" Sink \
	<"$PL_TMP/data" >"$PL_TMP/send.out" 2>"$PL_TMP/send.err" || rc=$?
if [ "$rc" != 0 ]; then
	pl_dump "$PL_TMP/send.err"
	pl_dump "$(pl_err sink)"
	pl_fail "x86-64 plcat --address 127.0.0.1:$PORT Sink exited with status $rc"
fi
pl_expect_exit sink 0 120
grep -q '^plcat: paired with "Sink"' "$PL_TMP/send.err" || pl_fail "the x86-64 dialler did not report pairing"
pl_same "$PL_TMP/data" "$(pl_out sink)"
[ ! -s "$PL_TMP/send.out" ] || pl_fail "the x86-64 dialler received unexpected data"

pl_log "step 2: x86-64 listener (keystore written on ARM), ARM dialler (keystore written on x86-64) sends 1 MiB, no code"
pl_start sink2 null "$PLCAT" -l -n Sink -p "$PORT" --keys "$KA"
pl_wait_for_line "$(pl_err sink2)" "$PUBLISHED" 30 >/dev/null
rc=0
pl_run 300 "${ARM_PLCAT[@]}" --keys "$KB" --address "127.0.0.1:$PORT" Sink \
	<"$PL_TMP/data2" >"$PL_TMP/send2.out" 2>"$PL_TMP/send2.err" || rc=$?
if [ "$rc" != 0 ]; then
	pl_dump "$PL_TMP/send2.err"
	pl_dump "$(pl_err sink2)"
	pl_fail "ARM plcat --address 127.0.0.1:$PORT Sink exited with status $rc"
fi
pl_expect_exit sink2 0 120
grep -q '^plcat: authenticated "Sink"' "$PL_TMP/send2.err" || pl_fail "the ARM dialler did not reconnect with stored keys"
pl_same "$PL_TMP/data2" "$(pl_out sink2)"
[ ! -s "$PL_TMP/send2.out" ] || pl_fail "the ARM dialler received unexpected data"
pl_log "PASS"
