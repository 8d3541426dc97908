#!/bin/bash
# plcat_transfer: 10 MiB go through plcat intact, connector -> listener and
# listener -> connector, and both sides exit 0.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
pl_enter_sandbox "$@"
pl_require_prog "$PLCAT"
pl_avahi_start

SIZE=10485760
head -c "$SIZE" /dev/urandom >"$PL_TMP/data"
head -c "$SIZE" /dev/urandom >"$PL_TMP/data2"

# pl_same A B: fail unless files A and B have the same SHA-256.
pl_same() {
	local a b
	a=$(sha256sum <"$1" | cut -d' ' -f1)
	b=$(sha256sum <"$2" | cut -d' ' -f1)
	[ "$a" = "$b" ] || pl_fail "$2 ($(stat -c %s "$2") bytes) differs from $1 ($(stat -c %s "$1") bytes)"
	pl_log "$(basename "$2") matches $(basename "$1"): sha256 $a"
}

pl_log "step: connector sends to listener"
pl_start sink null "$PLCAT" -l -n Sink
pl_wait_for_line "$(pl_err sink)" '^plcat: published "Sink" \(_peerlink\._tcp\) on port [0-9]+$' 15 >/dev/null
rc=0
pl_run 30 "$PLCAT" -w 10 Sink <"$PL_TMP/data" >"$PL_TMP/send.out" 2>"$PL_TMP/send.err" || rc=$?
if [ "$rc" != 0 ]; then
	pl_dump "$PL_TMP/send.err"
	pl_fail "plcat -w 10 Sink exited with status $rc"
fi
pl_expect_exit sink 0 15
pl_same "$PL_TMP/data" "$(pl_out sink)"
[ ! -s "$PL_TMP/send.out" ] || pl_fail "sender received unexpected data"

pl_log "step: listener sends to connector"
pl_start source "$PL_TMP/data2" "$PLCAT" -l -n Source
pl_wait_for_line "$(pl_err source)" '^plcat: published "Source" \(_peerlink\._tcp\) on port [0-9]+$' 15 >/dev/null
rc=0
pl_run 30 "$PLCAT" -w 10 Source </dev/null >"$PL_TMP/out2" 2>"$PL_TMP/recv.err" || rc=$?
if [ "$rc" != 0 ]; then
	pl_dump "$PL_TMP/recv.err"
	pl_fail "plcat -w 10 Source exited with status $rc"
fi
pl_expect_exit source 0 15
pl_same "$PL_TMP/data2" "$PL_TMP/out2"
[ ! -s "$(pl_out source)" ] || pl_fail "listener received unexpected data"
pl_log "PASS"
