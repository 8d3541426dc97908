#!/bin/bash
# SPDX-License-Identifier: ISC
# mdns_legacy_offlink: the built-in mDNS engine answers a legacy unicast
# query (source port not 5353, RFC 6762 6.7) from an address on the link's
# subnet, and stays silent for the same query from an address that is not:
# such an answer goes by unicast to the query's source, so a 38-byte query
# spoofed from anywhere would make the responder an amplifier (RFC 6762 11).
# Host A (this sandbox, 192.0.2.1/24 on pl0) publishes; host B (a namespace
# on the other end of the veth pair) queries from 192.0.2.2 (on the subnet)
# and from 198.51.100.7 (an extra address on B, off A's subnets; A is given a
# route to it, so that an answer would arrive). Nothing leaves the sandbox.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
pl_enter_sandbox "$@"
pl_require_prog "$PL_PROBE"
command -v /usr/bin/python3 >/dev/null || pl_skip "/usr/bin/python3 not found"
NS=plhostb
ADDR_B=192.0.2.2
OFFLINK=198.51.100.7
pl_netns_peer "$NS" "$ADDR_B"
ip netns exec "$NS" ip addr add "$OFFLINK/32" dev "$PL_IFACE_PEER"
ip route add "$OFFLINK/32" dev "$PL_IFACE"
export PEERLINK_MDNS_INTERFACES=$PL_IFACE

cat >"$PL_TMP/legacy.py" <<'PY'
# A legacy one-shot query (as dig or nslookup send it): PTR for sys.argv[2],
# from sys.argv[1] and an ephemeral port, to the mDNS group; prints
# "answer N" with the size of what comes back within 3 s, or "silence".
import select, socket, struct, sys
src, name = sys.argv[1], sys.argv[2]
qname = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
query = struct.pack(">HHHHHH", 0x2BAD, 0, 1, 0, 0, 0) + qname + struct.pack(">HH", 12, 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((src, 0))
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(src))
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
s.sendto(query, ("224.0.0.251", 5353))
ready, _, _ = select.select([s], [], [], 3)
if ready:
    data, _ = s.recvfrom(9000)
    print("answer", len(data), "for a query of", len(query))
else:
    print("silence")
PY

pl_start probe_a fifo "$PL_PROBE" --backend mdns publish "Host A" "$PL_TYPE" 4001 k=a
pl_wait_for_line "$(pl_out probe_a)" '^established Host A$' 15 >/dev/null

pl_log "step: a legacy query from the link's subnet is answered"
on=$(pl_run 10 ip netns exec "$NS" /usr/bin/python3 "$PL_TMP/legacy.py" "$ADDR_B" "$PL_TYPE.local")
pl_log "from $ADDR_B: $on"
case $on in answer*) ;; *) pl_fail "no answer to a legacy query from $ADDR_B (on the subnet): $on" ;; esac

pl_log "step: the same query from off the subnet gets nothing"
off=$(pl_run 10 ip netns exec "$NS" /usr/bin/python3 "$PL_TMP/legacy.py" "$OFFLINK" "$PL_TYPE.local")
pl_log "from $OFFLINK: $off"
[ "$off" = silence ] || pl_fail "a legacy query from $OFFLINK (off the subnet) was answered: $off"

pl_send probe_a quit
pl_expect_exit probe_a 0 10
pl_log "PASS"
