#!/bin/bash
# SPDX-License-Identifier: ISC
# examples: the accessory and the client of examples/ against each other and
# against independent peers, through a real avahi-daemon.
#  1. The accessory publishes itself: avahi-browse resolves it with its TXT
#     attribute.
#  2. The client, without a code and never paired, is refused (not paired).
#  3. The client pairs with the code and sends lines (messages), some larger
#     than the accessory's 16 KiB send limit and far more in all: every echo
#     comes back byte for byte, and the accessory paused for Acks
#     (backpressure) and ended the session cleanly.
#  4. A restarted accessory (same keystore) and the client without the code:
#     both authenticate with the keys they stored when pairing.
#  5. plcat sends 16 MiB in bulk while it reads the echoes: every byte comes
#     back in order and both exit 0 (the flow-control pattern cannot deadlock:
#     a paused session still reads the peer's Acks).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
pl_enter_sandbox "$@"
ACCESSORY=$top_builddir/examples/accessory
CLIENT=$top_builddir/examples/client
pl_require_prog "$PLCAT" "$ACCESSORY" "$CLIENT"
pl_avahi_start

CODE=314159
KA=$PL_TMP/keys-accessory KC=$PL_TMP/keys-client

# accessory LABEL NAME [ARGS...]: start an accessory that exits after its
# first session, and wait until it is published.
accessory() {
	local label=$1 name=$2
	shift 2
	pl_start "$label" null "$ACCESSORY" -1 -n "$name" "$@"
	pl_wait_for_line "$(pl_err "$label")" "^accessory: published \"$name\"\$" 15 >/dev/null
}

# client WANT_STATUS ARGS...: run the client with stdin from $PL_TMP/lines.
client() {
	local want=$1 rc=0
	shift
	pl_run 60 "$CLIENT" "$@" <"$PL_TMP/lines" >"$PL_TMP/client.out" 2>"$PL_TMP/client.err" || rc=$?
	if [ "$rc" != "$want" ]; then
		pl_dump "$PL_TMP/client.err"
		pl_fail "client $*: exit status $rc, expected $want (124: it hung)"
	fi
	pl_log "client $* -> $rc: $(tr '\n' '|' <"$PL_TMP/client.err")"
}

# Lines of growing size up to 26 KiB, then one of 128 KiB: 2.7 MB in all.
for i in $(seq 1 200); do
	head -c $((i * 100)) /dev/urandom | base64 -w 0
	echo
done >"$PL_TMP/lines"
head -c 98304 /dev/urandom | base64 -w 0 >>"$PL_TMP/lines"
echo >>"$PL_TMP/lines"

pl_log "step 1: the accessory is published with its TXT attribute"
accessory a1 Lamp --code "$CODE" --keys "$KA" --send-limit 16384
pl_avahi_resolved "$PL_TYPE" Lamp 15 '"model=peerlink-accessory"' >/dev/null

pl_log "step 2: without a code, a client that never paired is refused"
client 1 --keys "$KC" Lamp
grep -q 'not paired' "$PL_TMP/client.err" || pl_fail "the client did not say it is not paired"

pl_log "step 3: pair with the code; every echo comes back, with backpressure"
client 0 --keys "$KC" --code "$CODE" Lamp
grep -qx 'client: paired with "Lamp"' "$PL_TMP/client.err" || pl_fail "the client did not pair"
cmp "$PL_TMP/lines" "$PL_TMP/client.out" || pl_fail "the echoes differ from the lines sent"
pl_expect_exit a1 0 15
grep -q '^accessory: paired with ' "$(pl_err a1)" || pl_fail "the accessory did not report the pairing"
grep -qx 'accessory: session ended cleanly' "$(pl_err a1)" || pl_fail "the accessory's session did not end cleanly"
pauses=$(sed -nE 's/^accessory: paused ([0-9]+) times$/\1/p' "$(pl_err a1)")
pl_log "the accessory paused ${pauses:-?} times"
[ "${pauses:-0}" -gt 0 ] || pl_fail "the accessory never paused: backpressure was not exercised"

pl_log "step 4: after a restart, the client authenticates with stored keys, no code"
accessory a2 Lamp --keys "$KA" --send-limit 16384
client 0 --keys "$KC" Lamp hello
grep -qx 'client: authenticated "Lamp"' "$PL_TMP/client.err" || pl_fail "the client did not use its stored keys"
[ "$(cat "$PL_TMP/client.out")" = hello ] || pl_fail "echo of hello: $(cat "$PL_TMP/client.out")"
pl_expect_exit a2 0 15
grep -q '^accessory: authenticated ' "$(pl_err a2)" || pl_fail "the accessory did not use its stored keys"
grep -q 'pairing code' "$(pl_err a2)" || pl_fail "the accessory, given no code, printed no generated one"

pl_log "step 5: plcat sends 16 MiB in bulk and reads the echoes at once"
head -c $((16 * 1024 * 1024)) /dev/urandom >"$PL_TMP/data"
accessory a3 Echo --code "$CODE" --keys "$PL_TMP/keys-echo" --send-limit 16384
# By address (discovery is steps 1 to 4's): plcat alone is the independent peer here.
port=$(sed -nE 's/^accessory: listening on port ([0-9]+)$/\1/p' "$(pl_err a3)")
rc=0
pl_run 120 "$PLCAT" --keys "$PL_TMP/keys-plcat" --code "$CODE" --address "127.0.0.1:$port" Echo \
	<"$PL_TMP/data" >"$PL_TMP/echoed" 2>"$PL_TMP/plcat.err" || rc=$?
[ "$rc" = 0 ] || { pl_dump "$PL_TMP/plcat.err"; pl_fail "plcat exited with status $rc (124: it hung)"; }
pl_expect_exit a3 0 15
cmp "$PL_TMP/data" "$PL_TMP/echoed" || pl_fail "the echo ($(stat -c %s "$PL_TMP/echoed") bytes) differs from the 16 MiB sent"
grep -qx 'accessory: session ended cleanly' "$(pl_err a3)" || pl_fail "the accessory's session did not end cleanly"
pauses=$(sed -nE 's/^accessory: paused ([0-9]+) times$/\1/p' "$(pl_err a3)")
[ "${pauses:-0}" -gt 0 ] || pl_fail "the accessory never paused under bulk: the pattern was not exercised"
pl_log "16 MiB echoed intact; the accessory paused $pauses times"
