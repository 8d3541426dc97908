#!/bin/sh
# SPDX-License-Identifier: ISC
# What make install installs, and that make uninstall takes it away again,
# in a DESTDIR of this test's own: the headers, libpeerlink.so and .a (as
# configured), peerlink.pc with the package's version, plcat and plcat(1),
# the licence and change log, and, built with doxygen, the API reference:
# a man(3) page for every function the headers export and the HTML index.
# First, plcat --version says the package's version (PACKAGE_VERSION, which
# configure took from include/peerlink/common.h: tests/exports.sh checks that).
#
# The install writes only into DESTDIR: make install rebuilds nothing that
# make check has built, and libtool relinks nothing on this platform
# (hardcode_action=immediate), so the tests running beside this one under
# make -j check are undisturbed.
#
# Exit status: 0 pass, 1 fail, 77 skip: configure found no doxygen, so the
# API reference was not checked (everything else was); under CI=true that
# is a failure.
set -u
top_builddir=$(cd "${top_builddir:-.}" && pwd)
top_srcdir=$(cd "${top_srcdir:-$(dirname "$0")/..}" && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/pl-install.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
dest=$tmp/root
fail() { echo "install: $*"; exit 1; }

# ---------------------------------------------------------------- the version
pv=$(sed -n 's/^#define PACKAGE_VERSION "\(.*\)"$/\1/p' "$top_builddir/config.h")
[ -n "$pv" ] || fail "no PACKAGE_VERSION in $top_builddir/config.h"
out=$("$top_builddir/examples/plcat" --version 2>&1) || fail "plcat --version failed: $out"
case $(printf '%s\n' "$out" | head -n 1) in
*" $pv") ;;
*) fail "plcat --version printed '$out', not version $pv" ;;
esac

# ---------------------------------------------------------------- install
# Not the flags of the make check around this test (-j, TESTS=...): a make of its own.
domake() { (unset MAKEFLAGS MFLAGS MAKELEVEL; make -s -C "$top_builddir" "$@" DESTDIR="$dest"); }
domake install >"$tmp/install.log" 2>&1 || { cat "$tmp/install.log"; fail "make install failed"; }

# installed FILE: the path, under DESTDIR, of the installed file whose path ends in /FILE
installed() {
	(cd "$dest" && find . ! -type d -path "*/$1") | head -n 1
}
has() { # FILE...: each is installed
	for f in "$@"; do
		[ -n "$(installed "$f")" ] || fail "make install did not install */$f"
	done
}
for h in "$top_srcdir"/include/peerlink/*.h; do
	has "include/peerlink/${h##*/}"
done
cfg=$("$top_builddir/libtool" --config)
printf '%s\n' "$cfg" | grep -qx 'build_libtool_libs=yes' && has libpeerlink.so
printf '%s\n' "$cfg" | grep -qx 'build_old_libs=yes' && has libpeerlink.a
has pkgconfig/peerlink.pc bin/plcat man1/plcat.1 peerlink/LICENSE peerlink/CHANGELOG.md
grep -qx "Version: $pv" "$dest/$(installed pkgconfig/peerlink.pc)" || fail "peerlink.pc does not say Version: $pv"

doxygen=$(sed -n 's/^DOXYGEN = //p' "$top_builddir/Makefile")
if [ -n "$doxygen" ]; then
	# A page for every function the headers export (found as tests/exports.sh finds them).
	n=0
	for f in $(sed -n 's/^PL_EXPORT [^(]*[ *]\(pl_[a-z0-9_]*\)(.*/\1/p' "$top_srcdir"/include/peerlink/*.h); do
		has "man3/$f.3"
		n=$((n + 1))
	done
	[ "$n" -gt 50 ] || fail "only $n exported functions found in the headers"
	has man3/peerlink_session.h.3 man3/pl_poll.3 api/index.html
	page=$dest/$(installed man3/pl_session_send.3)
	grep -q '^pl_session_send \\- .' "$page" || fail "pl_session_send.3 has no NAME line: $(head -n 8 "$page")"
	if command -v man >/dev/null 2>&1; then
		MANWIDTH=100 man -l "$page" >"$tmp/man.txt" 2>&1 || { cat "$tmp/man.txt"; fail "man -l $page failed"; }
		for want in 'pl_session_send - ' '#include <peerlink/session.h>' \
			'int pl_session_send (pl_session \*c, const void \*data, size_t len);' 'PL_ERR_AGAIN' 'peerlink_session.h(3)'; do
			grep -q "$want" "$tmp/man.txt" || { cat "$tmp/man.txt"; fail "man pl_session_send does not show '$want'"; }
		done
	fi
	grep -q 'pl_session_send' "$dest/$(installed api/globals_func.html)" ||
		fail "the HTML function index lacks pl_session_send"
fi

# ---------------------------------------------------------------- uninstall
files=$(cd "$dest" && find . ! -type d | wc -l)
domake uninstall >"$tmp/uninstall.log" 2>&1 || { cat "$tmp/uninstall.log"; fail "make uninstall failed"; }
left=$(cd "$dest" && find . ! -type d)
[ -z "$left" ] || fail "make uninstall left files behind: $(printf '%s\n' "$left" | head -n 20)"

if [ -z "$doxygen" ]; then
	if [ "${CI:-}" = true ]; then
		echo "install: configure found no doxygen: the API reference is required in CI"
		exit 1
	fi
	echo "install: installed and uninstalled $files files; SKIP the API reference: configure found no doxygen"
	exit 77
fi
echo "install: plcat --version says $pv; installed $files files, the API reference with $n function pages;" \
	"uninstalled every one"
