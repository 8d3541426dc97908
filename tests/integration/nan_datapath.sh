#!/bin/bash
# SPDX-License-Identifier: ISC
# nan_datapath: a session over what a Wi-Fi Aware data path (NDP) gives an
# application: an IPv6 link-local network and the peer's fe80:: address
# and port, with no DNS-SD at all. Two network namespaces joined by a veth
# pair that has only IPv6 link-local addresses (no IPv4, no global
# address) stand in for the two devices; plcat listens in one, and in the
# other dials [fe80::...%IFACE]:PORT with --address.
#   1. They pair with a code and send 3 MiB each way in three parts. After
#      the first, the link goes down; the second part is written while it
#      is down; once both sides report the connection interrupted, the link
#      comes up again, the dialler reconnects to the same scoped address,
#      and both report the session resumed. Each side's output is exactly
#      what the other was given (SHA-256), once and in order.
#      Each side's TXT record (-T) reaches the other inside the session,
#      where no DNS-SD carries it, and is not reported again when the
#      resumed session sends it again.
#   2. A second connection, with the stored keys and no code, dials the
#      zone by interface index ([fe80::...%N]:PORT) and moves 1 MiB each way.
# The built-in mDNS engine is used, confined to each namespace's lo, so
# that the listener's publication reaches nobody: only --address finds it.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
pl_enter_sandbox "$@"
pl_require_prog "$PLCAT"
export PEERLINK_MDNS_INTERFACES=lo

NS_L=nan-listener NS_D=nan-dialler IF_L=nan0 IF_D=nan1
PORT=4242 CODE=271828
KL=$PL_TMP/keys-listener KD=$PL_TMP/keys-dialler
MIB=1048576

# ll NS IFACE: the interface's IPv6 link-local address, once it is usable
# (not tentative); empty if it has none.
ll() {
	ip netns exec "$1" ip -6 -o addr show dev "$2" scope link 2>/dev/null |
		awk '!/tentative/ { sub(/\/.*/, "", $4); print $4; exit }'
}

# wait_ll NS IFACE: wait (10 s at most) for ll NS IFACE; print it.
wait_ll() {
	local i a=
	for i in $(seq 1 100); do
		a=$(ll "$1" "$2")
		[ -z "$a" ] || break
		sleep 0.1
	done
	[ -n "$a" ] || { ip netns exec "$1" ip addr show dev "$2" >&2; pl_fail "no usable link-local address on $2 in $1"; }
	printf '%s\n' "$a"
}

# only_link_local NS IFACE: fail if the interface has an IPv4 or a global IPv6 address.
only_link_local() {
	[ -z "$(ip netns exec "$1" ip -4 -o addr show dev "$2")" ] || pl_fail "$2 in $1 has an IPv4 address"
	[ -z "$(ip netns exec "$1" ip -6 -o addr show dev "$2" scope global)" ] ||
		pl_fail "$2 in $1 has a global IPv6 address"
}

[ -d /proc/sys/net/ipv6 ] || pl_skip "this kernel has no IPv6"

pl_log "step: two namespaces, a veth pair with IPv6 link-local addresses only"
for ns in "$NS_L" "$NS_D"; do
	ip netns add "$ns" || pl_fail "cannot create network namespace $ns"
	PL_NETNS+=("$ns") # deleted on exit by lib.sh
	for k in all default; do
		# No duplicate address detection (the address is usable at once, also
		# after the link comes back up), no router advertisements (so no
		# global address), IPv6 on.
		ip netns exec "$ns" sysctl -qw "net.ipv6.conf.$k.disable_ipv6=0" 2>/dev/null || true
		ip netns exec "$ns" sysctl -qw "net.ipv6.conf.$k.accept_dad=0" 2>/dev/null || true
		ip netns exec "$ns" sysctl -qw "net.ipv6.conf.$k.accept_ra=0" 2>/dev/null || true
	done
	ip netns exec "$ns" ip link set lo up
done
ip link add "$IF_L" netns "$NS_L" type veth peer name "$IF_D" netns "$NS_D" ||
	pl_fail "cannot create a veth pair between $NS_L and $NS_D"
ip netns exec "$NS_L" ip link set "$IF_L" up
ip netns exec "$NS_D" ip link set "$IF_D" up
LL_L=$(wait_ll "$NS_L" "$IF_L")
LL_D=$(wait_ll "$NS_D" "$IF_D")
only_link_local "$NS_L" "$IF_L"
only_link_local "$NS_D" "$IF_D"
IDX_D=$(ip netns exec "$NS_D" cat "/sys/class/net/$IF_D/ifindex")
pl_log "listener $LL_L on $IF_L; dialler $LL_D on $IF_D (ifindex $IDX_D)"

for f in l1 l2 l3 d1 d2 d3 l4 d4; do
	head -c "$MIB" /dev/urandom >"$PL_TMP/$f"
done

pl_log "step: pair over [$LL_L%$IF_D]:$PORT and send 1 MiB each way"
pl_start listen fifo ip netns exec "$NS_L" "$PLCAT" -l -n Sink -p "$PORT" --backend mdns --keys "$KL" \
	--code "$CODE" --resume 120 -T model=kx1 -v
pl_wait_for_line "$(pl_err listen)" '^plcat: pairing is open' 15 >/dev/null
pl_start dial fifo ip netns exec "$NS_D" "$PLCAT" --backend mdns --keys "$KD" --code "$CODE" --resume 120 \
	-T model=phone -T rw -v --address "[$LL_L%$IF_D]:$PORT" Sink
pl_send_file dial "$PL_TMP/d1"
pl_send_file listen "$PL_TMP/l1"
pl_wait_for_size "$(pl_out listen)" "$MIB" 60
pl_wait_for_size "$(pl_out dial)" "$MIB" 60
pl_wait_for_line "$(pl_err dial)" '^plcat: paired with "Sink"' 1 >/dev/null
pl_wait_for_line "$(pl_err listen)" "^plcat: paired with .* from \\[$LL_D%$IF_L\\]:" 1 >/dev/null
pl_wait_for_line "$(pl_err dial)" "^plcat: the peer's TXT: model=kx1\$" 10 >/dev/null
pl_wait_for_line "$(pl_err listen)" "^plcat: the peer's TXT: model=phone rw\$" 10 >/dev/null

pl_log "step: the link goes down; 1 MiB more each way is written meanwhile"
ip netns exec "$NS_D" ip link set "$IF_D" down
pl_send_file dial "$PL_TMP/d2"
pl_send_file listen "$PL_TMP/l2"
# A link that carries nothing counts as broken after two keepalive periods
# (10 s); wait for both sides to say so before the link comes back.
pl_wait_for_line "$(pl_err dial)" '^plcat: connection interrupted' 60 >/dev/null
pl_wait_for_line "$(pl_err listen)" '^plcat: connection interrupted' 60 >/dev/null
pl_alive dial || pl_fail "the dialler exited while the link was down"
pl_alive listen || pl_fail "the listener exited while the link was down"

pl_log "step: the link comes up again"
ip netns exec "$NS_D" ip link set "$IF_D" up
ll_now=$(wait_ll "$NS_L" "$IF_L")
[ "$ll_now" = "$LL_L" ] || pl_fail "the listener's address changed from $LL_L to $ll_now"
wait_ll "$NS_D" "$IF_D" >/dev/null
only_link_local "$NS_L" "$IF_L"
only_link_local "$NS_D" "$IF_D"
pl_wait_for_line "$(pl_err dial)" '^plcat: resumed$' 60 >/dev/null
pl_wait_for_line "$(pl_err listen)" '^plcat: resumed$' 30 >/dev/null
pl_send_file dial "$PL_TMP/d3"
pl_send_file listen "$PL_TMP/l3"
pl_close_stdin dial
pl_close_stdin listen
pl_expect_exit dial 0 60
pl_expect_exit listen 0 60
cat "$PL_TMP/d1" "$PL_TMP/d2" "$PL_TMP/d3" >"$PL_TMP/d-all"
cat "$PL_TMP/l1" "$PL_TMP/l2" "$PL_TMP/l3" >"$PL_TMP/l-all"
pl_same "$PL_TMP/d-all" "$(pl_out listen)"
pl_same "$PL_TMP/l-all" "$(pl_out dial)"
for side in dial listen; do
	! grep -q 'resumed in a new session' "$(pl_err "$side")" || pl_fail "$side lost the session instead of resuming it"
	n=$(grep -c '^plcat: resumed$' "$(pl_err "$side")" || true)
	t=$(grep -c "^plcat: the peer's TXT:" "$(pl_err "$side")" || true)
	[ "$t" = 1 ] || pl_fail "$side reported the peer's TXT record $t times, not once"
	pl_log "$side: $n resumption(s), the peer's TXT reported once"
done

pl_log "step: the stored keys, no code; the zone given as interface index $IDX_D"
pl_start listen2 "$PL_TMP/l4" ip netns exec "$NS_L" "$PLCAT" -l -n Sink -p "$PORT" --backend mdns --keys "$KL"
pl_wait_for_line "$(pl_err listen2)" '^plcat: pairing is open' 15 >/dev/null
pl_start dial2 "$PL_TMP/d4" ip netns exec "$NS_D" "$PLCAT" --backend mdns --keys "$KD" \
	--address "[$LL_L%$IDX_D]:$PORT" Sink
pl_expect_exit dial2 0 60
pl_expect_exit listen2 0 60
pl_wait_for_line "$(pl_err dial2)" '^plcat: authenticated "Sink"' 1 >/dev/null
pl_same "$PL_TMP/d4" "$(pl_out listen2)"
pl_same "$PL_TMP/l4" "$(pl_out dial2)"
pl_log "PASS: paired, interrupted and resumed over [$LL_L%$IF_D]:$PORT with every byte once, in order; reconnected with stored keys over [$LL_L%$IDX_D]:$PORT"
