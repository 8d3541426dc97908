#!/bin/bash
# SPDX-License-Identifier: ISC
# shared_keystore: the README's two terminals on one machine, one user,
# one default keystore ($HOME/.local/share/peerlink): a plcat listener and
# a plcat dialler that share it pair with a code, then the dialler
# reconnects without one, again and again, from a fresh keystore in each
# trial. Both processes have the same identity, so each stores the other
# under one id (the listener an initiator, the dialler a responder): the
# two entries must not replace each other, whichever process writes last.
# Then a keystore directory that others can write is refused.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
pl_enter_sandbox "$@"
pl_require_prog "$PLCAT"
pl_avahi_start

TRIALS=4

# plcat_home HOME ARGS...: plcat with the default keystore of that home.
plcat_home() {
	local home=$1
	shift
	env -u XDG_DATA_HOME HOME="$home" "$PLCAT" "$@"
}

# connect HOME NAME EXPECTED_STATUS [ARGS...]: a dialler with no terminal.
connect() {
	local home=$1 name=$2 want=$3 rc=0
	shift 3
	setsid -w timeout -k 2 30 env -u XDG_DATA_HOME HOME="$home" "$PLCAT" -w 10 "$@" "$name" \
		</dev/null >"$PL_TMP/conn.out" 2>"$PL_TMP/conn.err" || rc=$?
	if [ "$rc" != "$want" ]; then
		pl_dump "$PL_TMP/conn.err"
		pl_fail "plcat $* $name (HOME=$home): exit status $rc, expected $want"
	fi
}

for t in $(seq "$TRIALS"); do
	pl_log "trial $t: pair, then reconnect twice without a code, one keystore for both"
	home=$PL_TMP/home$t
	mkdir -p "$home"
	pl_start "l$t" null env -u XDG_DATA_HOME HOME="$home" "$PLCAT" -l -k -n "Shared $t" --code 246810
	pl_wait_for_line "$(pl_err "l$t")" '^plcat: published ' 15 >/dev/null
	connect "$home" "Shared $t" 0 --code 246810
	grep -q '^plcat: paired with "Shared '"$t"'"' "$PL_TMP/conn.err" || pl_fail "trial $t: the dialler did not pair"
	for r in 1 2; do
		connect "$home" "Shared $t" 0
		grep -q '^plcat: authenticated "Shared '"$t"'"' "$PL_TMP/conn.err" ||
			pl_fail "trial $t, reconnect $r: not authenticated with the stored keys"
	done
	pl_stop "l$t"
	# One identity, two entries: the listener's for the dialler, the dialler's for "Shared t".
	plcat_home "$home" --list-paired >"$PL_TMP/paired.txt"
	grep -q "^Shared $t	" "$PL_TMP/paired.txt" || pl_fail "trial $t: --list-paired lacks \"Shared $t\": $(cat "$PL_TMP/paired.txt")"
	[ "$(wc -l <"$PL_TMP/paired.txt")" = 2 ] || pl_fail "trial $t: expected 2 entries: $(cat "$PL_TMP/paired.txt")"
	ids=$(cut -f3 "$PL_TMP/paired.txt" | sort -u | wc -l)
	[ "$ids" = 1 ] || pl_fail "trial $t: the two entries should share one id: $(cat "$PL_TMP/paired.txt")"
done

pl_log "a keystore directory that others can write is refused, with the path and the reason"
home=$PL_TMP/home1
chmod 0777 "$home/.local/share/peerlink"
rc=0
plcat_home "$home" --list-paired >/dev/null 2>"$PL_TMP/lax.err" || rc=$?
[ "$rc" != 0 ] || pl_fail "a keystore directory with mode 0777 was used"
grep -q 'writable by group or others' "$PL_TMP/lax.err" || pl_fail "no reason given: $(cat "$PL_TMP/lax.err")"
chmod 0700 "$home/.local/share/peerlink"
plcat_home "$home" --list-paired >/dev/null || pl_fail "the keystore is not usable again at mode 0700"
pl_log "shared_keystore: ok"
