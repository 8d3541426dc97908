# SPDX-License-Identifier: ISC
# bash completion for plcat (installed as "plcat" in bash-completion's completions directory).
#
# Completes options; --backend's names, --keys' directories, -e's commands, -s/--type's default
# type; and the operand (an instance to connect to) from the peers paired in the keystore
# (plcat --list-paired: no network, unlike browsing), its \DDD escapes undone.
# shellcheck shell=bash

_plcat() {
	local cur prev words cword
	if declare -F _init_completion >/dev/null; then
		_init_completion || return
	else # without bash-completion: split on blanks only
		cur=${COMP_WORDS[COMP_CWORD]}
		prev=${COMP_WORDS[COMP_CWORD - 1]}
		words=("${COMP_WORDS[@]}")
		cword=$COMP_CWORD
	fi

	case $prev in
	--backend)
		mapfile -t COMPREPLY < <(compgen -W 'avahi mdns list' -- "$cur")
		return
		;;
	--keys)
		mapfile -t COMPREPLY < <(compgen -d -- "$cur")
		compopt -o filenames 2>/dev/null
		return
		;;
	--code-file)
		mapfile -t COMPREPLY < <(compgen -f -- "$cur")
		compopt -o filenames 2>/dev/null
		return
		;;
	-s | --type)
		mapfile -t COMPREPLY < <(compgen -W '_peerlink._tcp' -- "$cur")
		return
		;;
	-e | --exec)
		mapfile -t COMPREPLY < <(compgen -c -- "$cur")
		return
		;;
	-n | -p | -T | -w | -c | --sh-exec | --code | --resume | --address | --max-attempts | --pair-window | --forget | --forget-id | --as)
		return # a value of the user's own
		;;
	esac

	if [[ $cur == -* ]]; then
		mapfile -t COMPREPLY < <(compgen -W '-l -b -n -s --type -p -T -k -w -t --terminate -a --all -N
			--send-only --recv-only -v --verbose -q --quiet -e --exec -c --sh-exec --json --code --code-file --keys
			--backend --resume --address --max-attempts --pair-window --keep-pairing --list-paired --forget --forget-id --as -h --help -V --version' -- "$cur")
		return
	fi

	# The operand: an instance name, from the responders paired with (of the keystore --keys names,
	# if given); an initiator's name is only what it called itself, and cannot be dialled.
	local i keys=() name
	for ((i = 1; i < cword - 1; i++)); do
		[[ ${words[i]} == --keys ]] && keys=(--keys "${words[i + 1]}")
	done
	COMPREPLY=()
	while IFS=$'\t' read -r name _ _ role; do
		[[ $role == initiator ]] && continue
		name=$(_plcat_unescape "$name")
		[[ -n $name && $name == "$cur"* ]] && COMPREPLY+=("$(printf '%q' "$name")")
	done < <("${words[0]}" --list-paired "${keys[@]}" 2>/dev/null)
}

# plcat's escapes (\DDD, decimal: control characters and the backslash) back to the bytes.
_plcat_unescape() {
	local s=$1 out=
	while [[ $s =~ ^([^\\]*)\\([0-9][0-9][0-9])(.*)$ ]]; do
		out+=${BASH_REMATCH[1]}$(printf "\\$(printf '%03o' "$((10#${BASH_REMATCH[2]}))")")
		s=${BASH_REMATCH[3]}
	done
	printf '%s' "$out$s"
}

complete -F _plcat plcat
