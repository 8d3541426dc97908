#!/bin/bash
# SPDX-License-Identifier: ISC
# plcat_transfer: two keystores pair with a code; 10 MiB go through plcat
# intact, connector -> listener (paired with the code) and listener ->
# connector (reconnecting with the stored keys, no code), both sides exit 0,
# and a packet capture of the transfers holds none of the plaintext.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
pl_enter_sandbox "$@"
pl_require_prog "$PLCAT"
pl_avahi_start

SIZE=10485760
head -c "$SIZE" /dev/urandom >"$PL_TMP/data"
head -c "$SIZE" /dev/urandom >"$PL_TMP/data2"

KA=$PL_TMP/keys-listener KB=$PL_TMP/keys-connector CODE=271828

command -v tcpdump >/dev/null || pl_skip "tcpdump not found"
pl_start capture null tcpdump -i any -n -U -s 0 -B 262144 -w "$PL_TMP/capture.pcap" tcp
pl_wait_for_line "$(pl_err capture)" 'listening on' 10 >/dev/null

pl_log "step: connector pairs and sends to listener"
pl_start sink null "$PLCAT" -l -n Sink --keys "$KA" --code "$CODE"
pl_wait_for_line "$(pl_err sink)" '^plcat: published "Sink" \(_peerlink\._tcp\) on port [0-9]+$' 15 >/dev/null
rc=0
pl_run 30 "$PLCAT" -w 10 --keys "$KB" --code "$CODE" Sink <"$PL_TMP/data" >"$PL_TMP/send.out" 2>"$PL_TMP/send.err" || rc=$?
if [ "$rc" != 0 ]; then
	pl_dump "$PL_TMP/send.err"
	pl_fail "plcat -w 10 Sink exited with status $rc"
fi
pl_expect_exit sink 0 15
pl_same "$PL_TMP/data" "$(pl_out sink)"
[ ! -s "$PL_TMP/send.out" ] || pl_fail "sender received unexpected data"

grep -q '^plcat: paired with "Sink"' "$PL_TMP/send.err" || pl_fail "the connector did not report pairing"

pl_log "step: listener sends to connector, which reconnects without a code"
pl_start source "$PL_TMP/data2" "$PLCAT" -l -n Sink --keys "$KA"
pl_wait_for_line "$(pl_err source)" '^plcat: published "Sink" \(_peerlink\._tcp\) on port [0-9]+$' 15 >/dev/null
rc=0
pl_run 30 "$PLCAT" -w 10 --keys "$KB" Sink </dev/null >"$PL_TMP/out2" 2>"$PL_TMP/recv.err" || rc=$?
if [ "$rc" != 0 ]; then
	pl_dump "$PL_TMP/recv.err"
	pl_fail "plcat -w 10 Sink (reconnect) exited with status $rc"
fi
grep -q '^plcat: authenticated "Sink"' "$PL_TMP/recv.err" || pl_fail "the connector did not reconnect with stored keys"

pl_expect_exit source 0 15
pl_same "$PL_TMP/data2" "$PL_TMP/out2"
[ ! -s "$(pl_out source)" ] || pl_fail "listener received unexpected data"

pl_log "step: the capture holds the transfers but none of their plaintext"
pl_stop capture
grep -qx '0 packets dropped by kernel' "$(pl_err capture)" || { pl_dump "$(pl_err capture)"; pl_fail "the capture lost packets"; }
"$PL_PYTHON" - "$PL_TMP/capture.pcap" "$PL_TMP/data" "$PL_TMP/data2" <<'PY' || pl_fail "plaintext found in the capture"
import sys
cap = open(sys.argv[1], "rb").read()
print("capture: %d bytes" % len(cap))
# Both transfers crossed loopback: at least 95 % of their bytes must be in it
# (the last segments may miss the capture as it stops).
if len(cap) < 0.95 * 2 * 10 * 1024 * 1024:
    sys.exit("capture too small to hold both transfers: %d bytes" % len(cap))
for name in sys.argv[2:]:
    data = open(name, "rb").read()
    # 200 slices of 24 bytes from all over the file; any one in clear would show.
    for i in range(200):
        off = i * (len(data) - 24) // 199
        if data[off:off + 24] in cap:
            sys.exit("%s: bytes at offset %d are in the capture" % (name, off))
print("no plaintext slice found")
PY
pl_log "PASS"
