#!/bin/sh
# SPDX-License-Identifier: ISC
# plcat --backend nan (the experimental Wi-Fi Aware backend) where no NAN-capable
# wpa_supplicant is: no control socket at all, and a stand-in for a wpa_supplicant
# 2.10 (Debian 12's: "GET_CAPABILITY nan" fails, tests/helpers/wpas-standin.py).
# plcat must fail at once with a line that says what is missing; no radio is used.
set -u
plcat=${top_builddir:-.}/examples/plcat
standin=${top_srcdir:-.}/tests/helpers/wpas-standin.py
tmp=$(mktemp -d "${TMPDIR:-/tmp}/pl-nan.XXXXXX") || exit 1
pid=
cleanup() {
	[ -z "$pid" ] || { echo quit >&3; wait "$pid"; }
	rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "nan_plcat: $*"; exit 1; }

"$plcat" --backend list | grep -q ',nan$' || fail "plcat --backend list: $("$plcat" --backend list)"

# No socket where PEERLINK_NAN_CTRL points: one line; PEERLINK_DEBUG=1 adds the cause.
PEERLINK_NAN_CTRL=$tmp/wlan0 "$plcat" -b --backend nan -w 1 _peerlink._tcp >"$tmp/out" 2>"$tmp/err"
rc=$?
[ "$rc" = 1 ] || fail "no socket: exit status $rc, not 1: $(cat "$tmp/err")"
[ ! -s "$tmp/out" ] || fail "no socket: wrote to stdout: $(cat "$tmp/out")"
[ "$(cat "$tmp/err")" = "plcat: discovery: backend nan: discovery daemon unreachable" ] ||
	fail "no socket: not the one line expected: $(cat "$tmp/err")"
PEERLINK_DEBUG=1 PEERLINK_NAN_CTRL=$tmp/wlan0 "$plcat" -b --backend nan -w 1 _peerlink._tcp >"$tmp/out" 2>"$tmp/err"
grep -q "^plcat: info: nan: cannot reach wpa_supplicant's control socket $tmp/wlan0: No such file or directory (PEERLINK_NAN_CTRL names it" "$tmp/err" ||
	fail "no socket, PEERLINK_DEBUG=1: the cause is not given: $(cat "$tmp/err")"

# A wpa_supplicant without NAN USD: one line that says what is needed.
[ -x /usr/bin/python3 ] || { echo "nan_plcat: /usr/bin/python3 is missing"; exit 77; }
mkfifo "$tmp/in"
/usr/bin/python3 "$standin" "$tmp/wlan0" --no-nan <"$tmp/in" >"$tmp/standin.out" &
pid=$!
exec 3>"$tmp/in"
i=0
until grep -q '^ready$' "$tmp/standin.out"; do
	i=$((i + 1))
	[ $i -lt 300 ] || fail "the stand-in did not start"
	sleep 0.1
done
PEERLINK_NAN_CTRL=$tmp/wlan0 "$plcat" -b --backend nan -w 1 _peerlink._tcp >"$tmp/out" 2>"$tmp/err"
rc=$?
[ "$rc" = 1 ] || fail "no NAN USD: exit status $rc, not 1: $(cat "$tmp/err")"
[ "$(cat "$tmp/err")" = "plcat: discovery: backend nan: Wi-Fi Aware unavailable (wpa_supplicant 2.11+ with NAN USD needed)" ] ||
	fail "no NAN USD: not the one line expected: $(cat "$tmp/err")"
grep -q '^cmd GET_CAPABILITY nan -> FAIL$' "$tmp/standin.out" || fail "plcat did not ask: $(cat "$tmp/standin.out")"
PEERLINK_DEBUG=1 PEERLINK_NAN_CTRL=$tmp/wlan0 "$plcat" -b --backend nan -w 1 _peerlink._tcp >"$tmp/out" 2>"$tmp/err"
grep -q "^plcat: info: nan: wpa_supplicant at $tmp/wlan0 has no NAN USD (GET_CAPABILITY nan: FAIL): Wi-Fi Aware needs wpa_supplicant 2.11 or later built with CONFIG_NAN_USD=y" "$tmp/err" ||
	fail "no NAN USD, PEERLINK_DEBUG=1: the cause is not given: $(cat "$tmp/err")"
echo "nan_plcat: --backend nan without a socket and without NAN USD: one line each, exit 1; PEERLINK_DEBUG=1 gives the cause"
