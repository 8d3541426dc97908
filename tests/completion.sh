#!/bin/bash
# SPDX-License-Identifier: ISC
# plcat's bash completion (examples/plcat.bash): sourced into bash, with
# COMP_WORDS/COMP_CWORD set as bash sets them, it offers plcat's options
# after "-", the backends after --backend, directories after --keys, files
# after --code-file, and the paired peers (plcat --list-paired of the
# keystore given, \DDD escapes undone, blanks quoted) as the operand.
# Every option it offers is one the built plcat accepts. Runs once as plain
# bash and, when bash-completion is installed, once more with it loaded (its
# _init_completion splits words).
set -u
plcat=${top_builddir:-.}/examples/plcat
src=${top_srcdir:-.}/examples/plcat.bash
tmp=$(mktemp -d "${TMPDIR:-/tmp}/pl-completion.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
fail() { echo "completion: $*"; exit 1; }
[ -x "$plcat" ] || fail "$plcat is missing (not built?)"

mkdir -p "$tmp/keys one" "$tmp/keys two" "$tmp/other"
touch "$tmp/keys-file"
echo 123456 >"$tmp/code"
# A stand-in for plcat --list-paired (no keystore with paired peers is at
# hand without a network): it prints what plcat prints, NAME<TAB>TIME<TAB>ID<TAB>ROLE,
# and only for the keystore the command line names. Initiators are not offered.
cat >"$tmp/plcat" <<EOF
#!/bin/sh
[ "\$1" = --list-paired ] && [ "\$2" = --keys ] && [ "\$3" = "$tmp/keys one" ] || exit 1
printf 'Kitchen Lamp\t2026-01-01T00:00:00Z\tab12\tresponder\n'
printf 'Kiosk\\\\092A\t2026-01-01T00:00:00Z\tcd34\tresponder\n'
printf 'Kiwi phone\t2026-01-01T00:00:00Z\t9a9a\tinitiator\n'
printf 'Hall\t2026-01-01T00:00:00Z\tef56\tresponder\n'
EOF
chmod +x "$tmp/plcat"

cat >"$tmp/cases.bash" <<'EOF'
# complete WORD...: COMPREPLY for the command line WORD... (the last is the word being completed).
complete_line() {
	COMP_WORDS=("$@")
	COMP_CWORD=$(($# - 1))
	COMP_LINE="$*"
	COMP_POINT=${#COMP_LINE}
	COMPREPLY=()
	_plcat plcat "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
	printf '%s\n' "${COMPREPLY[@]}" | LC_ALL=C sort
}
expect() { # EXPECTED WORD...: the sorted replies, one a line
	local want=$1 got
	shift
	got=$(complete_line "$@")
	[ "$got" = "$want" ] || { printf 'completion: for [%s]\n  expected [%s]\n  got      [%s]\n' "$*" "$want" "$got"; exit 1; }
}
expect $'--backend' plcat --back
expect $'--recv-only\n--resume' plcat --re
expect $'avahi\nlist\nmdns' plcat --backend ''
expect $'mdns' plcat -b --backend m
expect "$TMP/keys one"$'\n'"$TMP/keys two" plcat --keys "$TMP/keys"
expect "" plcat --keys "$TMP/keys-f"
expect "$TMP/keys-file" plcat --code-file "$TMP/keys-f"
expect $'_peerlink._tcp' plcat -s _p
expect $'_peerlink._tcp' plcat --type ''
expect "" plcat --code ''
# The operand, from the paired peers of the keystore named.
expect $'Kiosk\\\\A\nKitchen\\ Lamp' "$TMP/plcat" --keys "$TMP/keys one" Ki
expect $'Hall' "$TMP/plcat" -v --keys "$TMP/keys one" H
expect "" "$TMP/plcat" --keys "$TMP/other" ''
# Every option offered, once: plcat must know it (an unknown one is reported before --no-such-option).
options=$(complete_line plcat -)
[ "$(wc -l <<<"$options")" -ge 37 ] || { echo "completion: only these options: $options"; exit 1; }
printf '%s\n' "$options" >"$TMP/options"
EOF

run() { # LABEL PRELUDE: source the completion (after PRELUDE) and run the cases
	TMP=$tmp bash --norc --noprofile -c "$2
		. '$src' || exit 1
		. '$tmp/cases.bash'" || fail "$1: the cases failed"
	echo "completion: $1: passed"
}
run "plain bash" ":"
bc=/usr/share/bash-completion/bash_completion
if [ -r "$bc" ]; then
	run "with bash-completion" ". '$bc'"
else
	echo "completion: bash-completion is not installed: its _init_completion path not tested"
fi

while read -r opt; do
	case $opt in
	-h | --help | -V | --version)
		timeout 10 "$plcat" "$opt" >/dev/null 2>&1 || fail "plcat $opt failed"
		continue
		;;
	-s | --type) args=("$opt" _peerlink._tcp) ;;
	--keys) args=("$opt" "$tmp/other") ;;
	--backend) args=("$opt" avahi) ;;
	--address) args=("$opt" 127.0.0.1:4242) ;;
	--code) args=("$opt" 123456) ;;
	--code-file) args=("$opt" "$tmp/code") ;;
	--forget-id) args=("$opt" "$(printf '%064d' 0)") ;;
	-n | -p | -T | -w | -e | --exec | -c | --sh-exec | --resume | --max-attempts | --pair-window | --forget | --as)
		args=("$opt" 1) ;;
	*) args=("$opt") ;;
	esac
	timeout 10 "$plcat" "${args[@]}" --no-such-option </dev/null >/dev/null 2>"$tmp/err"
	grep -q "no-such-option" "$tmp/err" || fail "plcat does not take $opt, which the completion offers: $(cat "$tmp/err")"
done <"$tmp/options"
echo "completion: all $(wc -l <"$tmp/options") options offered are plcat's"
