#!/bin/bash
# SPDX-License-Identifier: ISC
# browse_types: browsing every service type (RFC 6763 9, pl_browse() of
# "_services._dns-sd._udp") and the end of the initial list
# (PL_BROWSE_ALL_FOR_NOW), through both backends.  avahi-daemon runs in this
# sandbox on pl0 and publishes one type for an independent peer
# (avahi-publish); the built-in engine runs in a network namespace made here,
# on pl1, and publishes another (pl-probe).  Browsing the types with
# "avahi" here and with "mdns" there lists both, before "all-for-now"; a
# browse of each instance type lists the instance before "all-for-now", and
# `-t` makes the helper exit there, as avahi-browse -t does.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
pl_enter_sandbox "$@"
PL_BROWSE=$top_builddir/tests/helpers/pl-browse
pl_require_prog "$PL_PROBE" "$PL_BROWSE"
NS=plengine
pl_netns_peer "$NS" 192.0.2.2
pl_avahi_start
A=("$PL_BROWSE" --backend avahi -t)
E=(ip netns exec "$NS" env PEERLINK_MDNS_INTERFACES=$PL_IFACE_PEER "$PL_BROWSE" --backend mdns -t)

pl_log "step: two types published, one by avahi-publish, one by the engine"
pl_start apub null avahi-publish -s "Avahi Side" _plavahi._tcp 5000
pl_wait_for_line "$(pl_err apub)" "Established under name 'Avahi Side'" 10 >/dev/null
pl_start probe fifo ip netns exec "$NS" env PEERLINK_MDNS_INTERFACES=$PL_IFACE_PEER \
	"$PL_PROBE" --backend mdns publish "Engine Side" _plengine._tcp 4300
pl_wait_for_line "$(pl_out probe)" '^established Engine Side$' 15 >/dev/null
# avahi-daemon has the engine's instance (so its type too) before the browses start.
pl_avahi_resolved _plengine._tcp "Engine Side" 15 ';4300;' >/dev/null

# check NAME OUTPUT LINE...: every LINE is in OUTPUT before its "all-for-now", which ends it.
check() {
	local name=$1 out=$2 line
	shift 2
	[ "$(printf '%s\n' "$out" | tail -n 1)" = all-for-now ] || pl_fail "$name: does not end with all-for-now: $out"
	[ "$(printf '%s\n' "$out" | grep -c '^all-for-now$')" = 1 ] || pl_fail "$name: all-for-now twice: $out"
	for line in "$@"; do
		printf '%s\n' "$out" | grep -qxF -- "$line" || pl_fail "$name: no \"$line\" before all-for-now: $out"
	done
	pl_log "$name: $(printf '%s' "$out" | tr '\n' '|')"
}

for backend in avahi mdns; do
	if [ "$backend" = avahi ]; then B=("${A[@]}"); else B=("${E[@]}"); fi
	pl_log "step: $backend: the service types, then all-for-now"
	out=$(pl_run 20 "${B[@]}" _services._dns-sd._udp) || pl_fail "$backend: pl-browse -t _services._dns-sd._udp: status $?"
	check "$backend types" "$out" "add _plavahi._tcp 0 0" "add _plengine._tcp 0 0"
	pl_log "step: $backend: an instance of each type, then all-for-now"
	out=$(pl_run 20 "${B[@]}" _plavahi._tcp) || pl_fail "$backend: pl-browse -t _plavahi._tcp: status $?"
	printf '%s\n' "$out" | grep -qE '^add Avahi Side 5000 [1-9]' || pl_fail "$backend: Avahi Side not listed: $out"
	check "$backend _plavahi._tcp" "$out"
	out=$(pl_run 20 "${B[@]}" _plengine._tcp) || pl_fail "$backend: pl-browse -t _plengine._tcp: status $?"
	printf '%s\n' "$out" | grep -qE '^add Engine Side 4300 [1-9]' || pl_fail "$backend: Engine Side not listed: $out"
	check "$backend _plengine._tcp" "$out"
done

pl_log "step: mdns: a type withdrawn is removed"
pl_start types null ip netns exec "$NS" env PEERLINK_MDNS_INTERFACES=$PL_IFACE_PEER \
	"$PL_BROWSE" --backend mdns _services._dns-sd._udp
pl_wait_for_line "$(pl_out types)" '^all-for-now$' 15 >/dev/null
pl_send probe quit
pl_expect_exit probe 0 10
pl_wait_for_line "$(pl_out types)" '^remove _plengine\._tcp$' 15 >/dev/null
grep -q '^remove _plavahi\._tcp$' "$(pl_out types)" && pl_fail "mdns: _plavahi._tcp removed too"
pl_stop types
pl_log "PASS"
