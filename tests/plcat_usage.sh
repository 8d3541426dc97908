#!/bin/sh
# SPDX-License-Identifier: ISC
# plcat's usage habits, as nc's and the GNU tools': --help on standard
# output with status 0; a usage error is what is wrong plus "Try 'plcat
# --help'" on standard error, status 2, under the program's short name.
set -u
plcat=${top_builddir:-.}/examples/plcat
tmp=$(mktemp -d "${TMPDIR:-/tmp}/pl-usage.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
fail() { echo "plcat_usage: $*"; exit 1; }

"$plcat" --help >"$tmp/out" 2>"$tmp/err"
rc=$?
[ "$rc" = 0 ] || fail "--help exited with $rc"
grep -q '^usage: plcat -l ' "$tmp/out" || fail "--help did not print the usage on stdout: $(cat "$tmp/out")"
[ ! -s "$tmp/err" ] || fail "--help wrote to stderr: $(cat "$tmp/err")"

"$plcat" --bogus >"$tmp/out" 2>"$tmp/err"
rc=$?
[ "$rc" = 2 ] || fail "an unknown option exited with $rc, not 2"
[ ! -s "$tmp/out" ] || fail "a usage error wrote to stdout"
[ "$(wc -l <"$tmp/err")" = 2 ] || fail "a usage error is not two lines: $(cat "$tmp/err")"
head -n 1 "$tmp/err" | grep -q "^plcat: unrecognized option '--bogus'$" || fail "first line: $(head -n 1 "$tmp/err")"
tail -n 1 "$tmp/err" | grep -qx "Try 'plcat --help' for more information." || fail "second line: $(tail -n 1 "$tmp/err")"

"$plcat" -l -b >"$tmp/out" 2>"$tmp/err"
rc=$?
[ "$rc" = 2 ] || fail "-l -b exited with $rc, not 2"
head -n 1 "$tmp/err" | grep -q '^plcat: -l, -b' || fail "first line: $(head -n 1 "$tmp/err")"
# -w means nothing to a listener: refused, never silently ignored.
"$plcat" -l -w 5 >"$tmp/out" 2>"$tmp/err"
rc=$?
[ "$rc" = 2 ] || fail "-l -w exited with $rc, not 2"
head -n 1 "$tmp/err" | grep -q '^plcat: -w goes with -b or with connecting' || fail "-l -w: $(head -n 1 "$tmp/err")"
# Options of one mode given to another are refused, never silently ignored.
for args in "-t NAME" "-b -N" "-b -e cat" "--send-only --recv-only NAME" "-v -q NAME" "-b -a _x._tcp" "-b -T a=b" \
	"--list-paired -T a=b"; do
	# shellcheck disable=SC2086  # split on purpose
	"$plcat" $args >"$tmp/out" 2>"$tmp/err"
	rc=$?
	[ "$rc" = 2 ] || fail "$args exited with $rc, not 2"
	[ "$(wc -l <"$tmp/err")" = 2 ] || fail "$args: not a one-line usage error: $(cat "$tmp/err")"
done
# The code is given once, and a code file that is missing, empty or too long is refused.
printf '' >"$tmp/empty"
head -c 40 /dev/zero | tr '\0' 7 >"$tmp/long"
for args in "--code 1 --code-file $tmp/empty NAME" "--code-file $tmp/missing NAME" "--code-file $tmp/empty NAME" \
	"--code-file $tmp/long NAME"; do
	# shellcheck disable=SC2086  # split on purpose
	"$plcat" $args >"$tmp/out" 2>"$tmp/err"
	rc=$?
	[ "$rc" = 2 ] || fail "$args exited with $rc, not 2"
	grep -q "^Try 'plcat --help'\|^plcat: --code-file .*: No such file" "$tmp/err" || fail "$args: $(cat "$tmp/err")"
done
# Pairing and naming options out of range or out of place; an id that is not 64 hex digits.
hex63=$(printf '%063d' 0)
for args in "-l --pair-window 86401" "--pair-window 5 NAME" "--keep-pairing NAME" "-l --as Me" \
	"--forget-id abc" "--forget-id 0x$(printf '%062d' 0)" "--forget-id ${hex63}g" "--forget-id ${hex63}00"; do
	# shellcheck disable=SC2086  # split on purpose
	"$plcat" --keys "$tmp/keys" $args >"$tmp/out" 2>"$tmp/err"
	rc=$?
	[ "$rc" = 2 ] || fail "$args exited with $rc, not 2"
	[ "$(wc -l <"$tmp/err")" = 2 ] || fail "$args: not a one-line usage error: $(cat "$tmp/err")"
done
# --address: an address that is not one, an IPv6 address without brackets, a link-local one
# without its interface (or with one that does not exist), a zone on a global address.
for addr in "192.0.2.1" "192.0.2.1:0" "192.0.2.1:65536" "x:4242" "fe80::1:4242" "[fe80::1:4242" \
	"[fe80::1]:4242" "[fe80::1%]:4242" "[fe80::1%pl-no-such-if]:4242" "[fe80::1%9999999]:4242" \
	"[2001:db8::1%lo]:4242" "[192.0.2.1]:4242"; do
	"$plcat" --keys "$tmp/keys" --address "$addr" NAME >"$tmp/out" 2>"$tmp/err" </dev/null
	rc=$?
	[ "$rc" = 2 ] || fail "--address $addr exited with $rc, not 2"
	[ "$(wc -l <"$tmp/err")" = 2 ] && head -n 1 "$tmp/err" | grep -q '^plcat: --address' ||
		fail "--address $addr: $(cat "$tmp/err")"
done
"$plcat" --keys "$tmp/keys" --as "" NAME >"$tmp/out" 2>"$tmp/err"
rc=$?
[ "$rc" = 2 ] || fail "--as '' exited with $rc, not 2"
grep -q '^plcat: --as takes a name' "$tmp/err" || fail "--as '': $(cat "$tmp/err")"
# A backend this build lacks: one line that names it and the ones there are, status 2.
"$plcat" --backend bogus -b >"$tmp/out" 2>"$tmp/err"
rc=$?
[ "$rc" = 2 ] || fail "--backend bogus exited with $rc, not 2"
[ "$(wc -l <"$tmp/err")" = 1 ] && grep -q '"bogus".*mdns' "$tmp/err" || fail "--backend bogus: $(cat "$tmp/err")"
echo "plcat_usage: --help on stdout (0); usage errors: one line and a pointer to --help on stderr (2)"
