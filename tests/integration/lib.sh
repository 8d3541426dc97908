# SPDX-License-Identifier: ISC
# shellcheck shell=bash
# shellcheck disable=SC2034  # variables used by the test scripts
# Shared harness of peerlink's integration tests.
#
# Every test script does:
#
#     set -euo pipefail
#     . "$(dirname "$0")/lib.sh"
#     pl_enter_sandbox "$@"
#     pl_avahi_start
#     ...
#
# pl_enter_sandbox re-executes the script inside fresh network, mount and
# (where possible) PID namespaces made with unshare(1).  Inside, the only
# network interfaces are lo and a veth pair whose two ends both live in the
# namespace, so no multicast packet can leave the machine.  /run is a private
# tmpfs, so the host's avahi-daemon pid file and system D-Bus socket are
# neither seen nor disturbed, and concurrent tests (make -j) do not collide.
# A private dbus-daemon (system-bus style) and avahi-daemon run there; every
# process the test starts is tracked and stopped by its PID on exit.
#
# Exit status of a test: 0 pass, 77 skip, anything else fail.  Under CI=true
# a missing prerequisite is a failure, not a skip.
#
# Environment read: top_builddir, top_srcdir (absolute; set by automake),
# CI, PL_KEEP_TMP=1 (keep the temp dir for inspection).

PL_TEST_NAME=$(basename "$0" .sh)

# avahi-daemon and ip live in sbin, which a CI user's PATH may lack.
case ":$PATH:" in *:/usr/sbin:*) ;; *) PATH=$PATH:/usr/sbin ;; esac
case ":$PATH:" in *:/sbin:*) ;; *) PATH=$PATH:/sbin ;; esac

# Names and addresses used inside the sandbox.  192.0.2.0/24 is TEST-NET-1
# (RFC 5737): documentation only, never routed, and it exists only inside the
# test's own network namespace anyway.
PL_IFACE=pl0
PL_IFACE_PEER=pl1
PL_IPV4=192.0.2.1
PL_HOSTNAME=pltest
PL_TYPE=_peerlink._tcp
PL_PYTHON=/usr/bin/python3

# ---------------------------------------------------------------- logging

pl_log() {
	printf '[%s] %s: %s\n' "$(date +%H:%M:%S.%3N)" "$PL_TEST_NAME" "$*" >&2
}

# pl_fail MSG: report a failure and exit 1 (the EXIT trap cleans up).
# Inside a command substitution this ends only the subshell; the caller's
# assignment then fails and `set -e` ends the script with status 1.
PL_FAILED=
pl_fail() {
	PL_FAILED=$*
	pl_log "FAIL: $*"
	exit 1
}

# pl_skip MSG: exit 77, or 1 when CI=true (in CI a skip is a failure).
pl_skip() {
	if [ "${CI:-}" = true ]; then
		pl_log "cannot run (CI=true, so this is a failure): $*"
		exit 1
	fi
	pl_log "SKIP: $*"
	exit 77
}

# pl_dump FILE [LINES]: show the (tail of a) file on stderr; of a binary
# file, its size and first bytes in hex.
pl_dump() {
	local f=$1 n=${2:-200}
	if [ -s "$f" ] && ! grep -qI . "$f"; then
		printf -- '----- %s: binary, %s bytes; the first 64: -----\n' "$f" "$(stat -c %s "$f")" >&2
		od -A d -t x1 -N 64 "$f" >&2 || true
	elif [ -e "$f" ]; then
		printf -- '----- %s (last %s lines) -----\n' "$f" "$n" >&2
		tail -n "$n" "$f" >&2 || true
		printf -- '----- end of %s -----\n' "$f" >&2
	else
		printf -- '----- %s: no such file -----\n' "$f" >&2
	fi
}

# ---------------------------------------------------------------- prerequisites

pl__check_prereqs() {
	local c
	[ "$(id -u)" = 0 ] || pl_skip "needs root (network namespaces)"
	for c in unshare ip avahi-daemon dbus-daemon avahi-browse avahi-publish mkfifo timeout sha256sum; do
		command -v "$c" >/dev/null 2>&1 || pl_skip "$c not found"
	done
	[ -x "$PL_PYTHON" ] || pl_skip "$PL_PYTHON not found"
	unshare --net --mount true 2>/dev/null ||
		pl_skip "unshare --net --mount does not work here (no CAP_SYS_ADMIN?)"
}

# Programs under test.  Missing ones are a build problem, so they fail.
pl__set_programs() {
	: "${top_builddir:?top_builddir must be set (run through make check)}"
	PLCAT=$top_builddir/examples/plcat
	PL_PROBE=$top_builddir/tests/helpers/pl-probe
}

pl_require_prog() {
	local p
	for p in "$@"; do
		[ -x "$p" ] || pl_fail "$p is missing or not executable (not built?)"
	done
}

# ---------------------------------------------------------------- sandbox

# pl_enter_sandbox "$@": outside the sandbox, re-execute the calling script
# inside it; inside, set up the network, the temp dir, the EXIT trap and the
# private D-Bus.  Does not start avahi-daemon (see pl_avahi_start).
pl_enter_sandbox() {
	if [ "${PL_IN_SANDBOX:-}" != 1 ]; then
		pl__check_prereqs
		local self pidns=()
		self=$(readlink -f "$0")
		# A PID namespace makes sure nothing started inside outlives the
		# test: when its init (this script) exits, the kernel kills the
		# rest.  It is a safety net only; cleanup is done by PID anyway.
		if unshare --pid --fork --mount-proc true 2>/dev/null; then
			pidns=(--pid --mount-proc)
		fi
		pl_log "entering sandbox: unshare --net --mount --fork ${pidns[*]} --kill-child=SIGTERM"
		PL_IN_SANDBOX=1 unshare --net --mount --fork "${pidns[@]}" --kill-child=SIGTERM \
			-- /bin/bash "$self" "$@" &
		PL_UNSHARE_PID=$!
		# unshare blocks SIGTERM while it waits for its child, so pass a
		# SIGTERM/SIGHUP on by killing unshare: --kill-child then sends
		# SIGTERM to the script inside, whose EXIT trap cleans up.  A
		# SIGINT from the terminal reaches the script inside directly
		# (same process group); here we only keep waiting for it.
		PL_OUTER_SIG=
		trap 'PL_OUTER_SIG=143; kill -KILL "$PL_UNSHARE_PID" 2>/dev/null' TERM
		trap 'PL_OUTER_SIG=129; kill -KILL "$PL_UNSHARE_PID" 2>/dev/null' HUP
		trap 'PL_OUTER_SIG=130' INT
		# Each round ends with unshare's exit or with a signal.
		local rc i
		for i in $(seq 1 100); do
			rc=0
			wait "$PL_UNSHARE_PID" || rc=$?
			kill -0 "$PL_UNSHARE_PID" 2>/dev/null || break
		done
		if kill -0 "$PL_UNSHARE_PID" 2>/dev/null; then
			kill -KILL "$PL_UNSHARE_PID" 2>/dev/null
			wait "$PL_UNSHARE_PID" || rc=$?
		fi
		exit "${PL_OUTER_SIG:-$rc}"
	fi

	pl__set_programs
	declare -gA PL_PID=() PL_FD=()
	declare -ga PL_ORDER=() PL_NETNS=()
	PL_AVAHI_PID=
	PL_DBUS_PID=
	PL_AVAHI_STARTS=0

	PL_TMP=$(mktemp -d "${TMPDIR:-/tmp}/peerlink-$PL_TEST_NAME.XXXXXX")
	trap pl__cleanup EXIT
	trap 'pl_log "caught SIGTERM"; exit 143' TERM
	trap 'pl_log "caught SIGINT"; exit 130' INT
	trap 'pl_log "caught SIGHUP"; exit 129' HUP
	pl_log "sandbox: pid $$, temp dir $PL_TMP"
	# plcat's default keystore lives here, never in the real home.
	export XDG_DATA_HOME=$PL_TMP/xdg

	# Private /run: the host's /run/avahi-daemon/pid and
	# /run/dbus/system_bus_socket are hidden; the mount namespace is
	# private (unshare's default propagation), so the host sees nothing.
	mount -n -t tmpfs -o mode=0755 pl-run /run || pl_fail "cannot mount tmpfs on /run"
	mkdir -p /run/avahi-daemon /run/dbus /run/lock
	chmod 1777 /run/lock
	ln -s /dev/shm /run/shm 2>/dev/null || true
	# Static services of the host (/etc/avahi/services/*.service) stay out.
	if [ -d /etc/avahi/services ]; then
		mount -n -t tmpfs -o mode=0755 pl-services /etc/avahi/services ||
			pl_log "warning: cannot hide /etc/avahi/services"
	fi

	pl__setup_net
	pl__write_helpers
	pl__dbus_start
}

pl__setup_net() {
	local k i
	ip link set lo up || pl_fail "cannot bring lo up"
	# No duplicate address detection: link-local IPv6 addresses are usable
	# at once instead of staying "tentative" for a second or two.
	for k in all default; do
		sysctl -qw "net.ipv6.conf.$k.disable_ipv6=0" 2>/dev/null || true
		sysctl -qw "net.ipv6.conf.$k.accept_dad=0" 2>/dev/null || true
	done
	# avahi ignores loopback, so give it a veth pair; both ends stay in this
	# namespace.  (dummy interfaces are not available on every kernel.)
	ip link add "$PL_IFACE" type veth peer name "$PL_IFACE_PEER" ||
		pl_fail "cannot create veth pair"
	ip link set "$PL_IFACE" multicast on
	ip link set "$PL_IFACE_PEER" multicast on
	ip addr add "$PL_IPV4/24" dev "$PL_IFACE"
	ip link set "$PL_IFACE_PEER" up
	ip link set "$PL_IFACE" up
	PL_HAVE_IPV6=0
	for i in $(seq 1 30); do
		if ip -6 addr show dev "$PL_IFACE" scope link 2>/dev/null |
			grep -q 'inet6 fe80' &&
			! ip -6 addr show dev "$PL_IFACE" 2>/dev/null | grep -q tentative; then
			PL_HAVE_IPV6=1
			break
		fi
		sleep 0.1
	done
	[ "$PL_HAVE_IPV6" = 1 ] ||
		pl_log "warning: no IPv6 link-local address on $PL_IFACE; IPv4 only"
	pl_log "network: $(ip -br addr show dev "$PL_IFACE" | tr -s ' ')"
}

# Helper scripts written into the temp dir.
pl__write_helpers() {
	# jsonwait.py FILE TIMEOUT AFTER EXPR: wait until a complete line after
	# line AFTER (1-based numbering; 0 = from the start) is a JSON object for
	# which the Python expression EXPR (object bound to `e`) is true; print
	# that line's number.  Exit 1 on timeout, 2 on a line that is not JSON.
	cat >"$PL_TMP/jsonwait.py" <<'EOF'
import json, sys, time
path, timeout, after, expr = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
try:
    code = compile("(" + expr.strip() + "\n)", "<expr>", "eval")
except SyntaxError as err:
    sys.stderr.write("bad expression %r: %s\n" % (expr, err))
    sys.exit(3)
deadline = time.monotonic() + timeout
while True:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        data = b""
    lines = data.split(b"\n")[:-1]          # complete lines only
    for n, raw in enumerate(lines, 1):
        if n <= after:
            continue
        try:
            e = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as err:
            sys.stderr.write("line %d of %s is not valid JSON (%s): %r\n" % (n, path, err, raw))
            sys.exit(2)
        if not isinstance(e, dict):
            sys.stderr.write("line %d of %s is not a JSON object: %r\n" % (n, path, raw))
            sys.exit(2)
        try:
            ok = eval(code, {}, {"e": e})
        except (KeyError, TypeError, IndexError, AttributeError, ValueError):
            ok = False
        if ok:
            print(n)
            sys.exit(0)
    if time.monotonic() >= deadline:
        sys.exit(1)
    time.sleep(0.1)
EOF
}

# ---------------------------------------------------------------- D-Bus

pl__dbus_start() {
	local i
	cat >"$PL_TMP/dbus.conf" <<EOF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=$PL_TMP/dbus.sock</listen>
  <auth>EXTERNAL</auth>
  <!-- A throw-away bus inside the test's own namespaces: allow everything. -->
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow receive_sender="*"/>
    <allow eavesdrop="true"/>
  </policy>
</busconfig>
EOF
	(pl__close_fds; exec dbus-daemon --config-file="$PL_TMP/dbus.conf" \
		--nofork --nopidfile --print-address=1) \
		</dev/null >"$PL_TMP/dbus.addr" 2>"$PL_TMP/dbus.log" &
	PL_DBUS_PID=$!
	for i in $(seq 1 100); do
		[ -S "$PL_TMP/dbus.sock" ] && [ -s "$PL_TMP/dbus.addr" ] && break
		kill -0 "$PL_DBUS_PID" 2>/dev/null || { pl_dump "$PL_TMP/dbus.log"; pl_fail "dbus-daemon exited at startup"; }
		sleep 0.1
	done
	[ -S "$PL_TMP/dbus.sock" ] || { pl_dump "$PL_TMP/dbus.log"; pl_fail "dbus-daemon did not come up within 10 s"; }
	# Clients that ignore the variable find the same bus at the default path
	# (inside the private /run).
	ln -sf "$PL_TMP/dbus.sock" /run/dbus/system_bus_socket
	export DBUS_SYSTEM_BUS_ADDRESS="unix:path=$PL_TMP/dbus.sock"
	unset DBUS_SESSION_BUS_ADDRESS
	pl_log "dbus-daemon running (pid $PL_DBUS_PID), DBUS_SYSTEM_BUS_ADDRESS=$DBUS_SYSTEM_BUS_ADDRESS"
}

# ---------------------------------------------------------------- avahi-daemon

pl__write_avahi_conf() {
	cat >"$PL_TMP/avahi-daemon.conf" <<EOF
[server]
host-name=$PL_HOSTNAME
domain-name=local
use-ipv4=yes
use-ipv6=yes
allow-interfaces=$PL_IFACE
enable-dbus=yes
ratelimit-interval-usec=1000000
ratelimit-burst=1000

[wide-area]
enable-wide-area=no

[publish]
publish-hinfo=no
publish-workstation=no

[reflector]
enable-reflector=no

[rlimits]
EOF
}

# pl_avahi_start: start avahi-daemon in the background and wait (up to 15 s)
# until it has finished starting up and answers on D-Bus.
pl_avahi_start() {
	local i log=$PL_TMP/avahi-daemon.log
	[ -z "$PL_AVAHI_PID" ] || pl_fail "pl_avahi_start: avahi-daemon already running (pid $PL_AVAHI_PID)"
	[ -e "$PL_TMP/avahi-daemon.conf" ] || pl__write_avahi_conf
	rm -f /run/avahi-daemon/pid
	PL_AVAHI_STARTS=$((PL_AVAHI_STARTS + 1))
	printf -- '===== start #%s =====\n' "$PL_AVAHI_STARTS" >>"$log"
	(pl__close_fds; exec avahi-daemon --no-drop-root --no-chroot --no-rlimits \
		--no-proc-title -f "$PL_TMP/avahi-daemon.conf") \
		</dev/null >>"$log" 2>&1 &
	PL_AVAHI_PID=$!
	pl_log "avahi-daemon starting (pid $PL_AVAHI_PID)"
	for i in $(seq 1 150); do
		if ! kill -0 "$PL_AVAHI_PID" 2>/dev/null; then
			pl_dump "$log"
			PL_AVAHI_PID=
			pl_fail "avahi-daemon exited during startup"
		fi
		if [ "$(grep -c 'Server startup complete' "$log")" -ge "$PL_AVAHI_STARTS" ]; then
			break
		fi
		sleep 0.1
	done
	[ "$(grep -c 'Server startup complete' "$log")" -ge "$PL_AVAHI_STARTS" ] ||
		{ pl_dump "$log"; pl_fail "avahi-daemon did not finish starting within 15 s"; }
	for i in $(seq 1 20); do
		if (pl__close_fds; exec timeout 10 avahi-browse -a -t -p) >/dev/null 2>&1; then
			pl_log "avahi-daemon ready (pid $PL_AVAHI_PID)"
			return 0
		fi
		sleep 0.25
	done
	pl_dump "$log"
	pl_fail "avahi-daemon does not answer on D-Bus"
}

# pl_avahi_stop: SIGTERM avahi-daemon by PID and wait for it to exit.
pl_avahi_stop() {
	[ -n "$PL_AVAHI_PID" ] || return 0
	pl_log "stopping avahi-daemon (pid $PL_AVAHI_PID)"
	pl__kill_pid "$PL_AVAHI_PID" avahi-daemon
	PL_AVAHI_PID=
	rm -f /run/avahi-daemon/pid /run/avahi-daemon/socket
}

pl_avahi_restart() {
	pl_avahi_stop
	pl_avahi_start
}

# ---------------------------------------------------------------- processes

# Close, in a child about to exec, the write ends of other processes' stdin
# FIFOs, so that closing them in the test shell really delivers EOF.
pl__close_fds() {
	local fd
	for fd in ${PL_FD[@]+"${PL_FD[@]}"}; do
		exec {fd}>&-
	done
}

# pl__kill_pid PID LABEL: SIGTERM, wait up to 5 s, then SIGKILL; reap.
pl__kill_pid() {
	local pid=$1 label=$2 i
	if kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null || true
		for i in $(seq 1 50); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$pid" 2>/dev/null; then
			pl_log "$label (pid $pid) ignored SIGTERM for 5 s; sending SIGKILL"
			kill -KILL "$pid" 2>/dev/null || true
		fi
	fi
	wait "$pid" 2>/dev/null || true
}

# pl_start NAME STDIN CMD [ARG]...: run CMD in the background, tracked as
# NAME.  Its stdout goes to $PL_TMP/NAME.out and its stderr to
# $PL_TMP/NAME.err.  STDIN is `fifo` (a FIFO the test writes to with pl_send
# and closes with pl_close_stdin; the process sees no EOF until then),
# `null`, or a file name.
pl_start() {
	local name=$1 in=$2 src fd
	shift 2
	[ -z "${PL_PID[$name]:-}" ] || pl_fail "pl_start: name $name already used"
	case $in in
	fifo)
		src=$PL_TMP/$name.in
		mkfifo "$src"
		;;
	null) src=/dev/null ;;
	*) src=$in ;;
	esac
	(pl__close_fds; exec "$@") <"$src" >"$PL_TMP/$name.out" 2>"$PL_TMP/$name.err" &
	PL_PID[$name]=$!
	PL_ORDER+=("$name")
	if [ "$in" = fifo ]; then
		# Blocks until the child has opened the read end.
		exec {fd}>"$src"
		PL_FD[$name]=$fd
	fi
	pl_log "started $name (pid ${PL_PID[$name]}): $*"
}

pl_pid() { printf '%s\n' "${PL_PID[$1]}"; }
pl_out() { printf '%s\n' "$PL_TMP/$1.out"; }
pl_err() { printf '%s\n' "$PL_TMP/$1.err"; }

# pl_send NAME LINE: write LINE to NAME's stdin FIFO.
pl_send() {
	local name=$1 line=$2 fd=${PL_FD[$1]:-}
	[ -n "$fd" ] || pl_fail "pl_send: $name has no open stdin FIFO"
	pl_alive "$name" || pl_fail "pl_send: $name (pid ${PL_PID[$name]}) is not running"
	pl_log "-> $name: $line"
	# In a subshell, so that a SIGPIPE ends only the subshell.
	(printf '%s\n' "$line" >&"$fd") 2>/dev/null ||
		pl_fail "pl_send: cannot write to $name's stdin"
}

# pl_send_file NAME FILE [TIMEOUT]: write FILE's bytes to NAME's stdin FIFO;
# fails when NAME has not taken them all within TIMEOUT s (default 60).
pl_send_file() {
	local name=$1 file=$2 t=${3:-60} fd=${PL_FD[$1]:-} rc=0
	[ -n "$fd" ] || pl_fail "pl_send_file: $name has no open stdin FIFO"
	pl_alive "$name" || pl_fail "pl_send_file: $name (pid ${PL_PID[$name]}) is not running"
	pl_log "-> $name: $(basename "$file") ($(stat -c %s "$file") bytes)"
	(exec timeout -k 2 "$t" cat -- "$file") >&"$fd" 2>/dev/null || rc=$?
	[ "$rc" = 0 ] || pl_fail "pl_send_file: $name did not take $file within ${t} s (status $rc)"
}

# pl_close_stdin NAME: close NAME's stdin FIFO (the process reads EOF).
pl_close_stdin() {
	local fd=${PL_FD[$1]:-}
	[ -n "$fd" ] || return 0
	exec {fd}>&-
	unset "PL_FD[$1]"
	pl_log "closed stdin of $1"
}

# pl_alive NAME: true while NAME runs.
pl_alive() {
	kill -0 "${PL_PID[$1]}" 2>/dev/null
}

# pl_wait_exit NAME TIMEOUT: wait until NAME exits; its exit status is left
# in PL_STATUS.  Fails the test when it is still running after TIMEOUT s.
pl_wait_exit() {
	local name=$1 timeout=$2 pid=${PL_PID[$1]} i
	for i in $(seq 0 $((timeout * 10))); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		pl_dump "$PL_TMP/$name.err" 40
		pl_fail "$name (pid $pid) still running after ${timeout} s"
	fi
	PL_STATUS=0
	wait "$pid" || PL_STATUS=$?
	pl_log "$name (pid $pid) exited with status $PL_STATUS"
}

# pl_expect_exit NAME STATUS TIMEOUT
pl_expect_exit() {
	pl_wait_exit "$1" "$3"
	if [ "$PL_STATUS" != "$2" ]; then
		pl_dump "$PL_TMP/$1.err" 40
		pl_fail "$1 exited with status $PL_STATUS, expected $2"
	fi
}

# pl_stop NAME: SIGTERM (then SIGKILL) NAME by its PID.
pl_stop() {
	local name=$1
	pl_close_stdin "$name"
	pl__kill_pid "${PL_PID[$name]}" "$name"
}

# pl_run TIMEOUT CMD [ARG]...: run CMD in the foreground under timeout(1),
# with the harness's FIFO write ends closed.  Returns CMD's status (124 on
# timeout).
pl_run() {
	local t=$1
	shift
	(pl__close_fds; exec timeout -k 2 "$t" "$@")
}

# ---------------------------------------------------------------- waiting

# pl_wait_for_line FILE REGEX TIMEOUT: poll FILE until a line matches the
# extended regex REGEX; print the first matching line.  On timeout fail and
# dump the file.
pl_wait_for_line() {
	pl_wait_for_count "$1" "$2" 1 "$3"
}

# pl_wait_for_count FILE REGEX COUNT TIMEOUT: wait until at least COUNT lines
# match; print the COUNT-th matching line.
pl_wait_for_count() {
	local file=$1 re=$2 count=$3 timeout=$4 i line
	for i in $(seq 0 $((timeout * 10))); do
		if [ -e "$file" ]; then
			line=$(grep -E -- "$re" "$file" | sed -n "${count}p") || true
			if [ -n "$line" ]; then
				pl_log "matched in $(basename "$file"): $line"
				printf '%s\n' "$line"
				return 0
			fi
		fi
		sleep 0.1
	done
	pl_dump "$file"
	pl_fail "no line #$count matching /$re/ in $file within ${timeout} s"
}

# pl_wait_for_size FILE BYTES TIMEOUT: wait until FILE has at least BYTES
# bytes; fail (dumping it) when it has not within TIMEOUT s.
pl_wait_for_size() {
	local file=$1 want=$2 timeout=$3 i n=0
	for i in $(seq 0 $((timeout * 10))); do
		n=$(stat -c %s "$file" 2>/dev/null) || n=0
		[ "$n" -lt "$want" ] || return 0
		sleep 0.1
	done
	pl_dump "$file"
	pl_fail "$file has $n bytes after ${timeout} s, expected $want"
}

# pl_wait_for_json FILE TIMEOUT EXPR [AFTER]: wait until a JSON line after
# line AFTER (default 0) satisfies the Python expression EXPR (the object is
# `e`); print its line number.  Fails on timeout or on a non-JSON line.
pl_wait_for_json() {
	local file=$1 timeout=$2 expr=$3 after=${4:-0} n rc=0
	n=$("$PL_PYTHON" "$PL_TMP/jsonwait.py" "$file" "$timeout" "$after" "$expr") || rc=$?
	case $rc in
	0)
		pl_log "matched line $n of $(basename "$file"): $(sed -n "${n}p" "$file")"
		printf '%s\n' "$n"
		;;
	1)
		pl_dump "$file"
		pl_fail "no JSON line after line $after of $file satisfying [$expr] within ${timeout} s"
		;;
	*)
		pl_dump "$file"
		pl_fail "bad output in $file"
		;;
	esac
}

# pl_json_count FILE EXPR: number of JSON lines of FILE satisfying EXPR.
pl_json_count() {
	"$PL_PYTHON" - "$1" "$2" <<'EOF'
import json, sys
n = 0
with open(sys.argv[1], "rb") as f:
    for raw in f.read().split(b"\n")[:-1]:
        try:
            e = json.loads(raw.decode("utf-8"))
            if eval("(" + sys.argv[2].strip() + "\n)", {}, {"e": e}):
                n += 1
        except Exception:
            pass
print(n)
EOF
}

# pl_avahi_escape NAME: a service name as avahi-browse -p prints it
# (avahi_escape_label: "." and "\" get a backslash, [A-Za-z0-9_-] stay as
# they are, and every other byte becomes \DDD, in decimal).
pl_avahi_escape() {
	"$PL_PYTHON" - "$1" <<'EOF'
import sys
out = []
for b in sys.argv[1].encode("utf-8"):
    c = chr(b)
    if c in ".\\":
        out.append("\\" + c)
    elif c.isascii() and (c.isalnum() or c in "-_"):
        out.append(c)
    else:
        out.append("\\%03d" % b)
sys.stdout.write("".join(out))
EOF
}

# pl_same A B: fail unless files A and B have the same SHA-256.
pl_same() {
	local a b
	a=$(sha256sum <"$1" | cut -d' ' -f1)
	b=$(sha256sum <"$2" | cut -d' ' -f1)
	[ "$a" = "$b" ] || pl_fail "$2 ($(stat -c %s "$2") bytes) differs from $1 ($(stat -c %s "$1") bytes)"
	pl_log "$(basename "$2") matches $(basename "$1"): sha256 $a"
}

# pl_avahi_resolved TYPE NAME TIMEOUT [REGEX]: run `avahi-browse -rpt TYPE`
# until it shows a resolved (=) line for instance NAME that also matches
# REGEX (extended, optional); print the resolved lines for NAME.
pl_avahi_resolved() {
	local type=$1 name=$2 timeout=$3 re=${4:-} esc i out lines deadline
	esc=$(pl_avahi_escape "$name")
	deadline=$((SECONDS + timeout))
	for i in $(seq 1 $((timeout * 2 + 1))); do
		out=$(pl_run 10 avahi-browse -rpt "$type" 2>/dev/null) || true
		lines=$(printf '%s\n' "$out" | PL_ESC="$esc" awk -F';' '$1 == "=" && $4 == ENVIRON["PL_ESC"]') || true
		if [ -n "$re" ] && [ -n "$lines" ]; then
			lines=$(printf '%s\n' "$lines" | grep -E -- "$re") || true
		fi
		if [ -n "$lines" ]; then
			printf '%s\n' "$lines"
			return 0
		fi
		[ "$SECONDS" -lt "$deadline" ] || break
		sleep 0.5
	done
	pl_log "last avahi-browse -rpt $type output:"
	printf '%s\n' "$out" >&2
	pl_fail "avahi-browse did not resolve \"$name\" ($type)${re:+ matching /$re/} within ${timeout} s"
}

# pl_avahi_absent TYPE NAME TIMEOUT: wait until avahi-browse no longer lists NAME.
pl_avahi_absent() {
	local type=$1 name=$2 timeout=$3 esc i out deadline
	esc=$(pl_avahi_escape "$name")
	deadline=$((SECONDS + timeout))
	for i in $(seq 1 $((timeout * 2 + 1))); do
		out=$(pl_run 10 avahi-browse -pt "$type" 2>/dev/null) || true
		if ! printf '%s\n' "$out" | PL_ESC="$esc" awk -F';' '$1 == "+" && $4 == ENVIRON["PL_ESC"] { f = 1 } END { exit !f }'; then
			return 0
		fi
		[ "$SECONDS" -lt "$deadline" ] || break
		sleep 0.5
	done
	pl_fail "avahi-browse still lists \"$name\" after ${timeout} s"
}

# ---------------------------------------------------------------- second host (network namespace)

# pl_netns_peer NAME ADDR: a second "host" for tests of the built-in mDNS
# engine.  Makes the network namespace NAME (ip netns, inside the
# sandbox's private /run), moves $PL_IFACE_PEER (the other end of the veth
# pair whose first end, $PL_IFACE, stays here with $PL_IPV4) into it with
# ADDR/24, and brings it and its lo up.  Run commands there with
# pl_netns_exec NAME CMD... (or `pl_start X null ip netns exec NAME CMD`;
# ip netns exec keeps the PID, so pl_stop still stops it by PID).  The
# namespace is deleted on exit (pl__cleanup).  The veth pair never leaves
# the sandbox, so no multicast leaves the machine.
pl_netns_peer() {
	local ns=$1 addr=$2 i ok=0
	command -v ip >/dev/null || pl_skip "ip not found"
	ip netns add "$ns" || pl_fail "cannot create network namespace $ns"
	PL_NETNS+=("$ns")
	ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.accept_dad=0 2>/dev/null || true
	ip netns exec "$ns" sysctl -qw net.ipv6.conf.default.accept_dad=0 2>/dev/null || true
	ip link set "$PL_IFACE_PEER" netns "$ns" || pl_fail "cannot move $PL_IFACE_PEER into $ns"
	ip netns exec "$ns" ip link set lo up
	ip netns exec "$ns" ip link set "$PL_IFACE_PEER" multicast on
	ip netns exec "$ns" ip addr add "$addr/24" dev "$PL_IFACE_PEER"
	ip netns exec "$ns" ip link set "$PL_IFACE_PEER" up
	ip link set "$PL_IFACE" up
	for i in $(seq 1 50); do
		if ip netns exec "$ns" ip -6 addr show dev "$PL_IFACE_PEER" scope link 2>/dev/null | grep -q 'inet6 fe80' &&
			! ip netns exec "$ns" ip -6 addr show dev "$PL_IFACE_PEER" 2>/dev/null | grep -q tentative &&
			ip -6 addr show dev "$PL_IFACE" scope link 2>/dev/null | grep -q 'inet6 fe80' &&
			! ip -6 addr show dev "$PL_IFACE" 2>/dev/null | grep -q tentative; then
			ok=1
			break
		fi
		sleep 0.1
	done
	[ "$ok" = 1 ] || pl_log "warning: IPv6 link-local addresses not ready; IPv4 only"
	pl_log "namespace $ns: $(ip netns exec "$ns" ip -br addr show dev "$PL_IFACE_PEER" | tr -s ' ')"
}

pl_netns_exec() {
	local ns=$1
	shift
	ip netns exec "$ns" "$@"
}

pl__netns_cleanup() {
	local ns
	for ns in ${PL_NETNS[@]+"${PL_NETNS[@]}"}; do
		ip netns del "$ns" 2>/dev/null || pl_log "warning: cannot delete namespace $ns"
	done
	PL_NETNS=()
}

# ---------------------------------------------------------------- cleanup

pl__cleanup() {
	local rc=$? i name
	set +e
	# A second signal must not cut the cleanup short.
	trap - EXIT
	trap '' TERM INT HUP
	if [ "$rc" != 0 ] && [ "$rc" != 77 ]; then
		pl_log "test failed (status $rc); logs follow"
		for name in ${PL_ORDER[@]+"${PL_ORDER[@]}"}; do
			pl_dump "$PL_TMP/$name.out" 60
			pl_dump "$PL_TMP/$name.err" 60
		done
		pl_dump "$PL_TMP/avahi-daemon.log" 80
		pl_dump "$PL_TMP/dbus.log" 20
	fi
	for name in ${PL_ORDER[@]+"${PL_ORDER[@]}"}; do
		pl_close_stdin "$name" 2>/dev/null
	done
	# Children first, newest first; then the daemons.
	for ((i = ${#PL_ORDER[@]} - 1; i >= 0; i--)); do
		name=${PL_ORDER[i]}
		pl__kill_pid "${PL_PID[$name]}" "$name"
	done
	pl_avahi_stop
	pl__netns_cleanup
	if [ -n "$PL_DBUS_PID" ]; then
		pl__kill_pid "$PL_DBUS_PID" dbus-daemon
		PL_DBUS_PID=
	fi
	if [ "${PL_KEEP_TMP:-}" = 1 ]; then
		pl_log "keeping $PL_TMP"
	else
		rm -rf "$PL_TMP"
	fi
	# Last, where a log's tail shows it: why the test failed.
	[ -z "$PL_FAILED" ] || pl_log "FAIL: $PL_FAILED"
	pl_log "exit status $rc"
	exit "$rc"
}
