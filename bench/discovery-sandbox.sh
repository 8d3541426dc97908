#!/usr/bin/env bash
# SPDX-License-Identifier: ISC
# Runs the discovery case of peerlink-bench inside a network namespace with
# a private dbus-daemon and avahi-daemon (the integration tests' sandbox,
# tests/integration/lib.sh), so that no multicast leaves the machine.
#
#   discovery-sandbox.sh BENCH_PROGRAM ARGS...
#
# Exit status 77 when the sandbox cannot be made (not root, no unshare,
# no avahi-daemon); the benchmark then prints a "skipped" row.
set -euo pipefail
: "${top_srcdir:=$(cd "$(dirname "$0")/.." && pwd)}"
: "${top_builddir:=$top_srcdir}"
export top_srcdir top_builddir
# shellcheck source=../tests/integration/lib.sh
. "$top_srcdir/tests/integration/lib.sh"
PL_TEST_NAME=bench-discovery
pl_enter_sandbox "$@"
pl_avahi_start
# PL_BENCH_PCAP=FILE: capture the mDNS traffic of the run (to explain a time).
if [ -n "${PL_BENCH_PCAP:-}" ] && command -v tcpdump >/dev/null; then
	pl_start tcpdump null tcpdump -i "$PL_IFACE" -U -w "$PL_BENCH_PCAP" udp port 5353
	sleep 1
fi
# PL_BENCH_DBUSMON=FILE: log the daemon's D-Bus signals with times (to explain a time).
if [ -n "${PL_BENCH_DBUSMON:-}" ] && command -v dbus-monitor >/dev/null; then
	pl_start dbusmon null sh -c 'exec dbus-monitor --system "type=signal,sender=org.freedesktop.Avahi" >"$0"' "$PL_BENCH_DBUSMON"
	sleep 1
fi
# Bounded: the benchmark times out each wait itself; this is the backstop.
pl_run 240 "$@"
