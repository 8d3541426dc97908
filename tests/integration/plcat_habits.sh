#!/bin/bash
# SPDX-License-Identifier: ISC
# plcat_habits: what a netcat or avahi-browse user expects of plcat.
#  - SIGTERM/SIGINT: the listener withdraws its publication at once (a
#    browser sees "remove" long before the record's TTL would end it), ends
#    its session so that the peer exits 0 ("the peer ended the session"),
#    and exits 128 + the signal's number;
#  - at the code prompt, Ctrl-C restores the terminal's echo (a real pty);
#  - -N ends the session at end of input though the receiver's stdin stays
#    open; --send-only / --recv-only; -v's byte counts and, on a terminal,
#    its progress line; -q; PEERLINK_DEBUG;
#  - -c runs a program for each accepted session (-k: one after another).
# The listener of the first step runs the built-in mDNS engine in a
# namespace of its own (as mdns_avahi.sh), so that the withdrawal seen is
# its goodbye packet, not avahi-daemon dropping a dead D-Bus client's
# records.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
pl_enter_sandbox "$@"
pl_require_prog "$PLCAT"
NS=plhabits
pl_netns_peer "$NS" 192.0.2.2
pl_avahi_start
E=(ip netns exec "$NS" env PEERLINK_MDNS_INTERFACES=$PL_IFACE_PEER "$PLCAT" --backend mdns)
KA=$PL_TMP/keys-a KB=$PL_TMP/keys-b CODE=4711

pl_log "step: SIGTERM withdraws the publication and ends the session cleanly"
pl_start browse null "$PLCAT" -b
pl_start sig fifo "${E[@]}" -l -n Sig --keys "$KA" --code "$CODE"
pl_wait_for_line "$(pl_err sig)" '^plcat: published "Sig"' 15 >/dev/null
pl_wait_for_line "$(pl_out browse)" '^\+ Sig	' 15 >/dev/null
pl_start peer fifo "$PLCAT" -w 10 --keys "$KB" --code "$CODE" Sig
pl_wait_for_line "$(pl_err peer)" '^plcat: paired with "Sig"$' 15 >/dev/null
pl_send peer "before the signal"
pl_wait_for_line "$(pl_out sig)" '^before the signal$' 10 >/dev/null
kill -TERM "$(pl_pid sig)"
pl_expect_exit sig 143 10
# The record's TTL is 120 s: a remove within 10 s is the goodbye.
pl_wait_for_line "$(pl_out browse)" '^- Sig	' 10 >/dev/null
pl_expect_exit peer 0 10
grep -qx 'plcat: the peer ended the session' "$(pl_err peer)" || pl_fail "peer: $(cat "$(pl_err peer)")"
pl_stop browse

pl_log "step: Ctrl-C at the code prompt restores the terminal"
pl_start lock fifo "$PLCAT" -l -n Lock --keys "$KA" --code "$CODE"
pl_wait_for_line "$(pl_err lock)" '^plcat: published "Lock"' 15 >/dev/null
"$PL_PYTHON" - "$PLCAT" "$PL_TMP/keys-c" <<'PY' || pl_fail "the code prompt"
import os, signal, sys, termios, time
plcat, keys = sys.argv[1], sys.argv[2]
pid, fd = os.forkpty()
if pid == 0:
    os.execv(plcat, [plcat, "-w", "10", "--keys", keys, "Lock"])
out, deadline = b"", time.monotonic() + 20
while b"Pairing code for" not in out:
    if time.monotonic() > deadline:
        sys.exit("no prompt: %r" % out)
    out += os.read(fd, 1024)
if termios.tcgetattr(fd)[3] & termios.ECHO:
    sys.exit("echo is on at the prompt")
os.kill(pid, signal.SIGINT)
_, st = os.waitpid(pid, 0)
if not os.WIFEXITED(st) or os.WEXITSTATUS(st) != 130:
    sys.exit("plcat ended with wait status %#x, not exit 130" % st)
if not termios.tcgetattr(fd)[3] & termios.ECHO:
    sys.exit("echo is still off after Ctrl-C")
print("prompt interrupted: exit 130, echo restored")
PY
pl_stop lock

pl_log "step: -N ends at end of input though the receiver's stdin stays open; -v counts"
head -c 3000000 /dev/urandom >"$PL_TMP/data"
pl_start recv fifo "$PLCAT" -l -n Recv --keys "$KA" --code "$CODE"
pl_wait_for_line "$(pl_err recv)" '^plcat: published "Recv"' 15 >/dev/null
rc=0
pl_run 30 "$PLCAT" -N -v -w 10 --keys "$KB" --code "$CODE" Recv <"$PL_TMP/data" >/dev/null 2>"$PL_TMP/send.err" || rc=$?
[ "$rc" = 0 ] || { pl_dump "$PL_TMP/send.err"; pl_fail "plcat -N exited with status $rc"; }
grep -Eq '^plcat: 3000000 bytes sent, 0 received in [0-9.]+ seconds$' "$PL_TMP/send.err" ||
	pl_fail "-v: no byte counts: $(cat "$PL_TMP/send.err")"
pl_expect_exit recv 0 10
cmp -s "$PL_TMP/data" "$(pl_out recv)" || pl_fail "the receiver's output differs from the data sent"

pl_log "step: --recv-only never reads stdin; --send-only ignores what comes; -q is quiet; PEERLINK_DEBUG"
pl_start ro fifo env PEERLINK_DEBUG=1 "$PLCAT" -l -n RO --recv-only --keys "$KA" --code "$CODE"
pl_wait_for_line "$(pl_err ro)" '^plcat: published "RO"' 15 >/dev/null
rc=0
pl_run 30 "$PLCAT" --send-only -q -w 10 --keys "$KB" --code "$CODE" RO <"$PL_TMP/data" >"$PL_TMP/so.out" 2>"$PL_TMP/so.err" || rc=$?
[ "$rc" = 0 ] || { pl_dump "$PL_TMP/so.err"; pl_fail "plcat --send-only exited with status $rc"; }
pl_expect_exit ro 0 10
cmp -s "$PL_TMP/data" "$(pl_out ro)" || pl_fail "--recv-only: output differs from the data sent"
[ ! -s "$PL_TMP/so.out" ] || pl_fail "--send-only wrote to stdout"
[ ! -s "$PL_TMP/so.err" ] || pl_fail "-q: a session that went well printed: $(cat "$PL_TMP/so.err")"
grep -q '^plcat: debug: ' "$(pl_err ro)" || pl_fail "PEERLINK_DEBUG=1: no debug line from the library"

pl_log "step: -k -c runs a program for each session"
pl_start up null "$PLCAT" -l -k --keep-pairing -n Up --keys "$KA" --code "$CODE" -c 'tr a-z A-Z'
pl_wait_for_line "$(pl_err up)" '^plcat: published "Up"' 15 >/dev/null
# The second time by the name in other case: DNS-SD names compare so.
for word in hello again; do
	name=Up
	[ "$word" = again ] && name=uP
	got=$(printf '%s\n' "$word" | pl_run 30 "$PLCAT" -w 10 --keys "$KB" --code "$CODE" "$name" 2>"$PL_TMP/up.err") ||
		{ pl_dump "$PL_TMP/up.err"; pl_fail "plcat $name exited with status $?"; }
	want=$(printf '%s' "$word" | tr a-z A-Z)
	[ "$got" = "$want" ] || pl_fail "-c 'tr a-z A-Z' answered \"$got\" to \"$word\""
done
pl_alive up || pl_fail "the -k listener ended"

pl_log "step: a slow program gets everything before -N ends; one that stops reading ends its session only"
head -c 400000 /dev/urandom >"$PL_TMP/small"
pl_start slow null "$PLCAT" -l -k -v -n Slow --keys "$KA" --code "$CODE" -c "sleep 1; cat >$PL_TMP/slow.data"
pl_wait_for_line "$(pl_err slow)" '^plcat: published "Slow"' 15 >/dev/null
rc=0
pl_run 30 "$PLCAT" -N -w 10 --keys "$KB" --code "$CODE" Slow <"$PL_TMP/small" >/dev/null 2>"$PL_TMP/slow-send.err" || rc=$?
[ "$rc" = 0 ] || { pl_dump "$PL_TMP/slow-send.err"; pl_fail "plcat -N Slow exited with status $rc"; }
# The session ends in one of two ways, both clean: the sender's Abort once its end-of-stream
# was delivered ("the peer ended the session"), or, when the program exits first, both
# ends-of-stream. -v's summary comes either way; then the program has had its whole input.
pl_wait_for_line "$(pl_err slow)" '^plcat: 0 bytes sent, 400000 received in ' 10 >/dev/null
for _ in $(seq 50); do
	cmp -s "$PL_TMP/small" "$PL_TMP/slow.data" && break
	sleep 0.1
done
cmp -s "$PL_TMP/small" "$PL_TMP/slow.data" || pl_fail "the slow program got $(stat -c %s "$PL_TMP/slow.data") of 400000 bytes"
pl_stop slow
# -v on a terminal: a progress line, redrawn in place, gone when the session ends. The
# program sleeps 3 s before it reads, so the session lasts past the first redraw (1 s).
pl_start slow3 null "$PLCAT" -l -n Slow3 --keys "$KA" --code "$CODE" -c "sleep 3; cat >/dev/null"
pl_wait_for_line "$(pl_err slow3)" '^plcat: published "Slow3"' 15 >/dev/null
"$PL_PYTHON" - "$PLCAT" "$KB" "$CODE" "$PL_TMP/small" <<'PY' || pl_fail "-v's progress line"
import os, sys, time
plcat, keys, code, data = sys.argv[1:5]
pid, fd = os.forkpty()
if pid == 0:  # stderr on the terminal; the data from a file, the peer's nowhere
    os.dup2(os.open(data, os.O_RDONLY), 0)
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
    os.execv(plcat, [plcat, "-N", "-v", "-w", "10", "--keys", keys, "--code", code, "Slow3"])
out, deadline = b"", time.monotonic() + 30
while time.monotonic() < deadline:
    try:
        chunk = os.read(fd, 4096)
    except OSError:  # EIO: the child closed the terminal
        break
    if not chunk:
        break
    out += chunk
_, st = os.waitpid(pid, 0)
if not os.WIFEXITED(st) or os.WEXITSTATUS(st) != 0:
    sys.exit("plcat -N -v ended with wait status %#x: %r" % (st, out))
if b"\rplcat: " not in out or b" sent (" not in out:
    sys.exit("no progress line: %r" % out)
if b"\r\033[K" not in out:
    sys.exit("the progress line was not cleared: %r" % out)
if b"plcat: 400000 bytes sent, 0 received in " not in out:
    sys.exit("no summary: %r" % out)
print("progress line shown and cleared")
PY
pl_expect_exit slow3 0 15
pl_start early null "$PLCAT" -l -k -n Early --keys "$KA" --code "$CODE" -c 'head -c 1 >/dev/null'
pl_wait_for_line "$(pl_err early)" '^plcat: published "Early"' 15 >/dev/null
rc=0
pl_run 30 "$PLCAT" -w 10 --keys "$KB" --code "$CODE" Early <"$PL_TMP/data" >/dev/null 2>"$PL_TMP/early-send.err" || rc=$?
[ "$rc" = 1 ] || { pl_dump "$PL_TMP/early-send.err"; pl_fail "the sender to a program that stopped reading exited $rc, not 1"; }
pl_alive early || pl_fail "a program that stopped reading ended the -k listener"
pl_stop early
# A program that closes its input and output, ignores SIGTERM and lives on:
# the session ends cleanly, and plcat does not wait for the program.
pl_start stubborn null "$PLCAT" -l -n Stubborn --keys "$KA" --code "$CODE" -c 'trap "" TERM; exec 0<&- >&-; sleep 60'
pl_wait_for_line "$(pl_err stubborn)" '^plcat: published "Stubborn"' 15 >/dev/null
rc=0
pl_run 30 "$PLCAT" -w 10 --keys "$KB" --code "$CODE" Stubborn </dev/null >/dev/null 2>"$PL_TMP/stubborn-send.err" || rc=$?
[ "$rc" = 0 ] || { pl_dump "$PL_TMP/stubborn-send.err"; pl_fail "plcat Stubborn exited with status $rc"; }
pl_expect_exit stubborn 0 10

pl_log "step: -b -t lists what is there and exits; -a adds every type"
pl_start pub null avahi-publish -s "Printer" _ipp._tcp 631
pl_wait_for_line "$(pl_err pub)" "Established under name 'Printer'" 10 >/dev/null
rc=0
pl_run 20 "$PLCAT" -b -t >"$PL_TMP/t.out" 2>"$PL_TMP/t.err" || rc=$?
[ "$rc" = 0 ] || { pl_dump "$PL_TMP/t.err"; pl_fail "plcat -b -t exited with status $rc"; }
grep -q '^+ Up	[0-9]' "$PL_TMP/t.out" || pl_fail "plcat -b -t did not list Up: $(cat "$PL_TMP/t.out")"
rc=0
pl_run 20 "$PLCAT" -b -t -a >"$PL_TMP/a.out" 2>"$PL_TMP/a.err" || rc=$?
[ "$rc" = 0 ] || { pl_dump "$PL_TMP/a.err"; pl_fail "plcat -b -t -a exited with status $rc"; }
grep -q '^+ Up	_peerlink\._tcp	[0-9]' "$PL_TMP/a.out" || pl_fail "-a: no Up: $(cat "$PL_TMP/a.out")"
grep -q '^+ Printer	_ipp\._tcp	631	' "$PL_TMP/a.out" || pl_fail "-a: no Printer: $(cat "$PL_TMP/a.out")"
pl_stop pub
kill -INT "$(pl_pid up)"
pl_expect_exit up 130 10
pl_log "PASS"
