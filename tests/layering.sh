#!/bin/sh
# SPDX-License-Identifier: ISC
# The sans-I/O layer calls no operating system and reads no clock: the
# objects of lib/core (protocol engine, session policy, codecs, crypto)
# and the built-in mDNS engine's core (lib/mdns/engine.c, publish.c,
# input.c, browse.c, dns.c) may refer only to the C
# library's memory and string functions, libsodium (and libcrypto's EVP
# AEAD, where the record layer uses it), protobuf-c and each other - never to sockets, files, time, threads or the layers above
# (session.c, loop.c, keystore.c...). Checked on the compiled objects, as
# tests/exports.sh checks the exports.
set -eu
b=$top_builddir
objs=
for src in lib/core/buf lib/core/txt lib/core/frame lib/core/hkdf lib/core/cpace lib/core/record \
	lib/core/engine lib/core/handshake lib/core/stream lib/core/policy lib/core/peerlink.pb-c \
	lib/mdns/dns lib/mdns/engine lib/mdns/publish lib/mdns/input lib/mdns/browse; do
	dir=$(dirname "$src") base=$(basename "$src")
	o=$b/$dir/.libs/libplcore_la-$base.o
	[ -f "$o" ] || o=$b/$dir/libplcore_la-$base.o
	[ -f "$o" ] || { echo "layering: $src: object not found under $b (not built?)"; exit 1; }
	objs="$objs $o"
done
# What the sans-I/O objects define: the only pl_ symbols they may use.
defined=$(nm --defined-only $objs | awk 'NF == 3 && $2 ~ /^[TDBRC]$/ {print $3}' | sort -u)
allowed='^(mem[a-z]*|str[a-z]*|malloc|calloc|realloc|free|qsort|snprintf|__assert_fail|_GLOBAL_OFFSET_TABLE_|__stack_chk_fail|__asan_.*|__ubsan_.*|__sanitizer_.*|__sancov_.*|crypto_.*|sodium_.*|randombytes_.*|EVP_.*|protobuf_c_.*|peerlink__.*)$'
bad=
for o in $objs; do
	for s in $(nm -u "$o" | awk '{print $2}'); do
		case $s in
		pl_*) printf '%s\n' "$defined" | grep -qx "$s" || bad="$bad $(basename "$o"):$s" ;;
		*) printf '%s\n' "$s" | grep -Eq "$allowed" || bad="$bad $(basename "$o"):$s" ;;
		esac
	done
done
if [ -n "$bad" ]; then
	echo "layering: the sans-I/O objects refer to what they must not (OS, clock, upper layers):"
	printf '  %s\n' $bad
	exit 1
fi
echo "layering: $(echo $objs | wc -w) sans-I/O objects refer only to libc memory/string functions, libsodium, libcrypto's EVP, protobuf-c and each other"
