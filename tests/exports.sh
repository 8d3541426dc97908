#!/bin/sh
# SPDX-License-Identifier: ISC
# The shared library exports the public API (pl_*) and nothing else:
# everything is built with -fvisibility=hidden and PL_EXPORT marks the API.
set -eu
lib=$top_builddir/lib/.libs/libpeerlink.so
if [ ! -f "$lib" ]; then
	echo "exports: $lib not built (static-only build); nothing to check"
	exit 77
fi
syms=$(nm -D --defined-only "$lib" | awk '$2 ~ /^[TDBR]$/ {print $3}')
[ -n "$syms" ] || { echo "exports: no symbols found in $lib"; exit 1; }
bad=$(printf '%s\n' "$syms" | grep -v '^pl_' || true)
if [ -n "$bad" ]; then
	echo "exports: symbols outside the pl_ API are exported:"
	printf '  %s\n' $bad
	exit 1
fi
# Every function declared PL_EXPORT in the public headers is exported.
missing=
for f in $(sed -n 's/^PL_EXPORT [^(]*[ *]\(pl_[a-z0-9_]*\)(.*/\1/p' "$top_srcdir"/include/peerlink/*.h); do
	printf '%s\n' "$syms" | grep -qx "$f" || missing="$missing $f"
done
[ -z "$missing" ] || { echo "exports: declared but not exported:$missing"; exit 1; }
# The static library exports the same and nothing else (where configure
# could make it so: PL_LOCALIZE_STATIC; then the archive is one object).
a=$top_builddir/lib/.libs/libpeerlink.a
if [ -f "$a" ] && [ -f "$top_builddir/lib/.libs/libpeerlink-localized.stamp" ]; then
	asyms=$(nm -g --defined-only "$a" | awk 'NF == 3 && $2 ~ /^[TDBRVW]$/ {print $3}' | sort -u)
	extra=$(printf '%s\n' "$asyms" | grep -vxF "$(printf '%s\n' "$syms")" || true)
	[ -z "$extra" ] || { echo "exports: the static library exports what the shared one does not:"; printf '  %s\n' $extra | head -20; exit 1; }
	[ "$(printf '%s\n' "$asyms" | wc -l)" = "$(printf '%s\n' "$syms" | sort -u | wc -l)" ] ||
		{ echo "exports: the static library lacks some of the shared library's symbols"; exit 1; }
	echo "exports: the static library exports the same $(printf '%s\n' "$asyms" | wc -l) symbols"
fi
# The headers' compile-time version is the package's.
h=$top_srcdir/include/peerlink/common.h
hv=$(sed -n 's/^#define PL_VERSION_MAJOR \([0-9]*\)$/\1/p' "$h").$(sed -n 's/^#define PL_VERSION_MINOR \([0-9]*\)$/\1/p' "$h").$(sed -n 's/^#define PL_VERSION_PATCH \([0-9]*\)$/\1/p' "$h")
pv=$(sed -n 's/^#define PACKAGE_VERSION "\(.*\)"$/\1/p' "$top_builddir/config.h")
[ "$hv" = "$pv" ] || { echo "exports: common.h says version $hv, configure.ac $pv"; exit 1; }
echo "exports: $(printf '%s\n' "$syms" | wc -l) symbols, all pl_, all declared ones present; headers version $hv"

