#!/bin/bash
# SPDX-License-Identifier: ISC
# mdns_two_hosts: two "hosts" (this sandbox and a network namespace made
# here, joined by the sandbox's veth pair) each run plcat on the built-in
# mDNS engine, with no daemon: each discovers the other's publication with
# TXT, sees a TXT update and the withdrawal; a connection paired with a code
# crosses over; and the same instance name published on both ends with two
# distinct names.  Nothing leaves the sandbox.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
pl_enter_sandbox "$@"
pl_require_prog "$PLCAT" "$PL_PROBE"
NS=plhostb
ADDR_B=192.0.2.2
pl_netns_peer "$NS" "$ADDR_B"
export PEERLINK_MDNS_INTERFACES=$PL_IFACE   # host A: pl0
B_ENV=(env PEERLINK_MDNS_INTERFACES=$PL_IFACE_PEER)

BRA=$(pl_out browse_a)
BRB=$(pl_out browse_b)
pl_start browse_a null "$PLCAT" --backend mdns -b -s "$PL_TYPE" --json
pl_start browse_b null ip netns exec "$NS" "${B_ENV[@]}" "$PLCAT" --backend mdns -b -s "$PL_TYPE" --json

pl_log "step: each host publishes; each discovers the other with TXT"
# (an instance is added with the address of the first interface and
# protocol it resolved on; the others may follow as updates)
pl_start probe_a fifo "$PL_PROBE" --backend mdns publish "Host A" "$PL_TYPE" 4001 k=a
pl_start probe_b fifo ip netns exec "$NS" "${B_ENV[@]}" "$PL_PROBE" --backend mdns publish "Host B" "$PL_TYPE" 4002 k=b flag
pl_wait_for_line "$(pl_out probe_a)" '^established Host A$' 15 >/dev/null
pl_wait_for_line "$(pl_out probe_b)" '^established Host B$' 15 >/dev/null
pl_wait_for_json "$BRA" 15 '
    e["event"] in ("add", "update") and e["name"] == "Host B" and e["port"] == 4002
    and "192.0.2.2" in e["addresses"] and e["txt"] == {"k": "b", "flag": True}' >/dev/null
pl_wait_for_json "$BRB" 15 '
    e["event"] in ("add", "update") and e["name"] == "Host A" and e["port"] == 4001
    and "192.0.2.1" in e["addresses"] and e["txt"] == {"k": "a"}' >/dev/null

pl_log "step: a TXT update on host A is seen on host B"
nb=$(wc -l <"$BRB")
pl_send probe_a "txt k=a2 new=1"
pl_wait_for_line "$(pl_out probe_a)" '^txt-updated$' 10 >/dev/null
pl_wait_for_json "$BRB" 15 '
    e["event"] == "update" and e["name"] == "Host A" and e["txt"] == {"k": "a2", "new": "1"}' "$nb" >/dev/null

pl_log "step: a connection from host A to a listener on host B, paired with a code"
CODE=161803
pl_start listen_b null ip netns exec "$NS" "${B_ENV[@]}" "$PLCAT" --backend mdns -l -n "Listener B" \
	--keys "$PL_TMP/keys-b" --code "$CODE"
pl_wait_for_line "$(pl_err listen_b)" '^plcat: published "Listener B"' 15 >/dev/null
printf 'across the veth pair\n' >"$PL_TMP/line"
rc=0
pl_run 30 "$PLCAT" --backend mdns -w 10 --keys "$PL_TMP/keys-a" --code "$CODE" "Listener B" \
	<"$PL_TMP/line" >"$PL_TMP/conn.out" 2>"$PL_TMP/conn.err" || rc=$?
[ "$rc" = 0 ] || { pl_dump "$PL_TMP/conn.err"; pl_fail "plcat --code \"Listener B\" exited with status $rc"; }
pl_expect_exit listen_b 0 15
grep -qx 'across the veth pair' "$(pl_out listen_b)" || pl_fail "host B did not receive the line"

pl_log "step: the same name on both hosts ends as two distinct names"
pl_start twin_a fifo "$PL_PROBE" --backend mdns publish Twin "$PL_TYPE" 4250
pl_wait_for_line "$(pl_out twin_a)" '^established Twin$' 15 >/dev/null
pl_start twin_b fifo ip netns exec "$NS" "${B_ENV[@]}" "$PL_PROBE" --backend mdns publish Twin "$PL_TYPE" 4251
first=$(pl_wait_for_line "$(pl_out twin_b)" '^(renamed|established|failed) ' 15)
[ "$first" = "renamed Twin #2" ] || pl_fail "host B's Twin: expected \"renamed Twin #2\", got \"$first\""
pl_wait_for_line "$(pl_out twin_b)" '^established Twin #2$' 15 >/dev/null
pl_wait_for_json "$BRA" 15 'e["event"] == "add" and e["name"] == "Twin" and e["port"] == 4250' >/dev/null
pl_wait_for_json "$BRA" 15 'e["event"] == "add" and e["name"] == "Twin #2" and e["port"] == 4251' >/dev/null
pl_wait_for_json "$BRB" 15 'e["event"] == "add" and e["name"] == "Twin" and e["port"] == 4250' >/dev/null
if grep -qv '^established Twin$' "$(pl_out twin_a)"; then
	pl_fail "host A's Twin printed more than \"established Twin\": $(cat "$(pl_out twin_a)")"
fi

pl_log "step: withdrawal on host A is seen on host B"
pl_send probe_a quit
pl_expect_exit probe_a 0 10
pl_wait_for_json "$BRB" 10 'e["event"] == "remove" and e["name"] == "Host A"' >/dev/null
pl_send probe_b quit
pl_expect_exit probe_b 0 10
pl_wait_for_json "$BRA" 10 'e["event"] == "remove" and e["name"] == "Host B"' >/dev/null
pl_log "PASS"
