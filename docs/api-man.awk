# SPDX-License-Identifier: ISC
# One man(3) page per function, from doxygen's man page of a header
# (docs/api.mk runs it on each): `man pl_session_send` then shows that
# function alone: its name and brief, the header to include and its
# prototype, its documentation, and the header's page under SEE ALSO.
#
#   awk -v out=DIR -v see=PAGE -f docs/api-man.awk HEADER.h.3
#
# out: where NAME.3 files go; see: the name of the header's page as
# installed (e.g. peerlink_session.h). Reads what doxygen 1.9 writes: the
# prototype and brief of each function in the SYNOPSIS list of the
# "Functions" (.RI lines), and its documentation under "Function
# Documentation" (from its .SS line to the next .SS or .SH). Prints how many
# pages it wrote; fails if it found a function without a prototype.

function plain(s) {           # no font changes: the NAME line is read by whatis
	gsub(/\\f[BIRPC]/, "", s)
	return s
}
function unquote(line) {      # the argument of .RI "..." or .SS "..."
	sub(/^\.[A-Z]+ "/, "", line)
	sub(/" *$/, "", line)
	return line
}
function flush(  f, i) {
	if (fn == "")
		return
	if (!(fn in proto)) {
		print "api-man.awk: " FILENAME ": no prototype of " fn " in the synopsis" > "/dev/stderr"
		bad = 1
	}
	f = out "/" fn ".3"
	printf ".TH \"%s\" 3 %s\n.ad l\n.nh\n.SH NAME\n", fn, threst > f
	printf "%s \\- %s\n", fn, (fn in brief) ? plain(brief[fn]) : "a function of " header > f
	printf ".SH SYNOPSIS\n.nf\n\\fB#include <%s>\\fP\n.sp\n%s;\n.fi\n.SH DESCRIPTION\n", header, proto[fn] > f
	for (i = 1; i <= nbody; i++)
		print body[i] > f
	printf ".SH \"SEE ALSO\"\n\\fB%s\\fP(3)\n", see > f
	close(f)
	pages++
	fn = ""
}

NR == 1 {
	# .TH "peerlink/session.h" 3 "date" "Version x.y.z" "peerlink" ...
	header = $0
	sub(/^\.TH "/, "", header)
	sub(/".*/, "", header)
	threst = $0
	sub(/^\.TH "[^"]*" 3 /, "", threst)
}
/^\.SH/ {
	flush()
	section = $0
	list = ""
	next
}
/^\.SS/ {
	flush()
	if (section == ".SH SYNOPSIS") {
		list = $0
	} else if (section == ".SH \"Function Documentation\"") {
		s = unquote($0)
		if (match(s, /[A-Za-z_][A-Za-z0-9_]* \(/)) {
			fn = substr(s, RSTART, RLENGTH - 2)
			nbody = 0
		}
	}
	next
}
list == ".SS \"Functions\"" && /^\.ti / {
	last = ""
	next
}
list == ".SS \"Functions\"" && /^\.RI / {
	s = unquote($0)
	if (last == "" && match(s, /\\fB[A-Za-z_][A-Za-z0-9_]*\\fP \(/)) {
		last = substr(s, RSTART + 3, RLENGTH - 8)
		proto[last] = s
	} else if (last != "") {
		sub(/ +$/, "", s)
		brief[last] = s
	}
	next
}
fn != "" {
	body[++nbody] = $0
}
END {
	flush()
	print FILENAME ": " pages + 0 " function pages"
	exit bad
}
