#!/bin/bash
# SPDX-License-Identifier: ISC
# mdns_loopback: the built-in mDNS engine confined to the loopback
# interface, with no daemon at all: `plcat -l` and `plcat -b --json` find
# each other with TXT (the browser on the default backend, which falls back
# to "mdns" when no avahi-daemon answers), and a connection paired with
# --code moves data.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
pl_enter_sandbox "$@"
pl_require_prog "$PLCAT"
export PEERLINK_MDNS_INTERFACES=lo
# No avahi-daemon here: pl_avahi_start is not called.

pl_log "step: the default backend falls back to mdns"
"$PLCAT" --backend list | grep -Eqx '(avahi,)?mdns(,nan)?' || pl_fail "plcat --backend list: $("$PLCAT" --backend list)"

pl_log "step: plcat -l on the built-in engine"
KA=$PL_TMP/keys-listener KB=$PL_TMP/keys-connector CODE=314159
pl_start listen null "$PLCAT" --backend mdns -l -n "Loop Side" -T k=v -T flag --keys "$KA" --code "$CODE"
line=$(pl_wait_for_line "$(pl_err listen)" '^plcat: published "Loop Side" \(_peerlink\._tcp\) on port [0-9]+$' 15)
port=${line##* }

pl_log "step: plcat -b --json (default backend) finds it with its TXT"
BR=$PL_TMP/browse.json
rc=0
pl_run 30 "$PLCAT" -b --json -w 4 >"$BR" 2>"$PL_TMP/browse.err" || rc=$?
[ "$rc" = 0 ] || { pl_dump "$PL_TMP/browse.err"; pl_fail "plcat -b exited with status $rc"; }
export PL_PORT=$port
pl_wait_for_json "$BR" 0 '
    e["event"] == "add" and e["name"] == "Loop Side" and e["type"] == "_peerlink._tcp"
    and e["domain"] == "local" and e["port"] == int(__import__("os").environ["PL_PORT"])
    and "127.0.0.1" in e["addresses"]
    and {k: v for k, v in e["txt"].items() if k != "pl-hint"} == {"k": "v", "flag": True}
    and __import__("re").fullmatch("[0-9a-f]{20}", e["txt"].get("pl-hint", ""))' >/dev/null

pl_log "step: a connection paired with the code moves data"
head -c 262144 /dev/urandom >"$PL_TMP/data"
rc=0
pl_run 30 "$PLCAT" --backend mdns -w 10 --keys "$KB" --code "$CODE" "Loop Side" \
	<"$PL_TMP/data" >"$PL_TMP/send.out" 2>"$PL_TMP/send.err" || rc=$?
[ "$rc" = 0 ] || { pl_dump "$PL_TMP/send.err"; pl_fail "plcat --code exited with status $rc"; }
pl_expect_exit listen 0 15
a=$(sha256sum <"$PL_TMP/data" | cut -d' ' -f1)
b=$(sha256sum <"$(pl_out listen)" | cut -d' ' -f1)
[ "$a" = "$b" ] || pl_fail "the listener received other bytes than were sent"
grep -q '^plcat: paired with "Loop Side"' "$PL_TMP/send.err" || pl_fail "the connector did not report pairing"

pl_log "step: plain browse output escapes what an advertiser chose, one record a line"
pl_require_prog "$PL_PROBE"
pl_start esc fifo "$PL_PROBE" --backend mdns publish "Esc Test" "$PL_TYPE" 4321 $'e=\e[31m\tx\\'
pl_wait_for_line "$(pl_out esc)" '^established Esc Test$' 15 >/dev/null
rc=0
pl_run 30 "$PLCAT" --backend mdns -b -w 4 >"$PL_TMP/plain.out" 2>"$PL_TMP/plain.err" || rc=$?
[ "$rc" = 0 ] || { pl_dump "$PL_TMP/plain.err"; pl_fail "plcat -b exited with status $rc"; }
grep -F 'Esc Test' "$PL_TMP/plain.out" | grep -qF 'e=\027[31m\009x\092' ||
	{ pl_dump "$PL_TMP/plain.out"; pl_fail "the TXT value was not escaped as \\DDD"; }
if LC_ALL=C grep -q $'\e' "$PL_TMP/plain.out"; then
	pl_fail "an escape byte reached the terminal"
fi
pl_send esc quit
pl_expect_exit esc 0 10
pl_log "PASS"
