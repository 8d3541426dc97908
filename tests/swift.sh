#!/bin/sh
# SPDX-License-Identifier: ISC
# PeerLink for Swift (bindings/swift): swift build and swift test on this
# machine, against the library built in this tree, in the Swift 6 language
# mode with every warning an error. The tests run inside a network
# namespace of their own with only "lo" up, and browse with the built-in
# mDNS engine on lo only (PEERLINK_MDNS_INTERFACES=lo): no multicast leaves
# the machine. Needs the Swift toolchain (PATH, or /opt/swift/usr/bin);
# without it exit 77 (skipped), except under CI=true, where that fails.
# Run by `make check-swift` (scripts/quickstart test).
set -eu
top_srcdir=$(cd "${top_srcdir:-$(dirname "$0")/..}" && pwd)
top_builddir=$(cd "${top_builddir:-.}" && pwd)
[ -x /opt/swift/usr/bin/swift ] && PATH=/opt/swift/usr/bin:$PATH
if ! command -v swift >/dev/null 2>&1; then
	if [ "${CI:-}" = true ]; then
		echo "swift: no Swift toolchain (PATH, /opt/swift): required in CI" >&2
		exit 1
	fi
	echo "swift: skipped: no Swift toolchain"
	exit 77
fi
lib=$top_builddir/lib/.libs
[ -f "$lib/libpeerlink.so" ] || { echo "swift: $lib/libpeerlink.so not built" >&2; exit 1; }
work=$top_builddir/swift
mkdir -p "$work/pkgconfig"
# The library of this tree, as pkg-config tells SwiftPM (CPeerLink is a system library target).
cat >"$work/pkgconfig/peerlink.pc" <<PC
Name: peerlink
Description: peerlink, from the build tree $top_builddir
Version: 0
Cflags: -I$top_srcdir/include
Libs: -L$lib -lpeerlink
PC
export PKG_CONFIG_PATH=$work/pkgconfig
# SwiftPM drops -rpath from pkg-config: the tests find the library this way.
export LD_LIBRARY_PATH=$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
# The package's sources stay untouched (distcheck's are read-only): builds go to $work.
swiftpm="--package-path $top_srcdir/bindings/swift --scratch-path $work/build"
echo "swift: $(swift --version 2>&1 | head -n 1)"
# shellcheck disable=SC2086
if ! swift build $swiftpm --build-tests -Xswiftc -warnings-as-errors >"$work/build.log" 2>&1; then
	tail -n 60 "$work/build.log"
	echo "swift: build failed (the whole log: $work/build.log)" >&2
	exit 1
fi
echo "swift: built, no warnings"
if [ "$(id -u)" = 0 ] && command -v unshare >/dev/null 2>&1; then
	# shellcheck disable=SC2086
	exec unshare -n sh -c "ip link set lo up && PEERLINK_MDNS_INTERFACES=lo swift test $swiftpm --skip-build"
fi
if [ "${CI:-}" = true ]; then
	echo "swift: the browsing test needs a network namespace of its own (root): required in CI" >&2
	exit 1
fi
echo "swift: not root: the browsing test is skipped (it would multicast on this machine's network)"
# shellcheck disable=SC2086
exec swift test $swiftpm --skip-build
