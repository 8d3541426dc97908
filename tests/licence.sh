#!/bin/sh
# SPDX-License-Identifier: ISC
# Every source file says its licence in an SPDX line near its top, and the
# licence it names is the one in LICENSE. In a git checkout the files are
# the tracked ones; in a release tarball (make distcheck), all of them.
set -u
top=${top_srcdir:-.}
fail() { echo "licence: $*"; exit 1; }
grep -q '^ISC License' "$top/LICENSE" || fail "LICENSE is not the ISC licence"
if git -C "$top" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	list() { git -C "$top" ls-files; }
else
	list() { (cd "$top" && find . -type f | sed 's|^\./||'); }
fi
missing=$(list | grep -E '\.(c|h|sh|swift|am|mk|awk|bash|ac)$|^scripts/' |
	grep -v -e '/corpus/' -e '\.pb-c\.[ch]$' -e '^autom4te' -e '^build-aux/' -e '^m4/' |
	while read -r f; do
		[ ! -f "$top/$f" ] || head -n 3 "$top/$f" | grep -q 'SPDX-License-Identifier: ISC' || printf '%s\n' "$f"
	done)
[ -z "$missing" ] || fail "no SPDX-License-Identifier: ISC line in: $missing"
echo "licence: ISC, and every source file says so"
