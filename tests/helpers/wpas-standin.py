#!/usr/bin/python3
# SPDX-License-Identifier: ISC
"""A scripted stand-in for wpa_supplicant's per-interface control socket with
NAN USD, for tests/unit/test_nan.c. No radio: where two of its clients publish
and subscribe the same service, it plays the air between them.

Usage: wpas-standin.py SOCKET [--no-nan]

Formats, from hostap (checked at tags hostap_2_10 and hostap_2_11):
  - the socket: a UNIX datagram socket; one command per datagram, the reply
    sent to the sender's address; "ATTACH" / "DETACH" answer "OK\\n", and
    events go to every attached client as "<level>TEXT", MSG_INFO being 3
    (wpa_supplicant/ctrl_iface_unix.c: wpa_supplicant_ctrl_iface_receive(),
    wpa_supplicant_ctrl_iface_send(); src/utils/wpa_debug.h for the levels);
  - "PING" -> "PONG\\n"; an unknown command -> "UNKNOWN COMMAND\\n"; a failing
    one -> "FAIL\\n"; "GET_CAPABILITY nan" -> "USD" with CONFIG_NAN_USD, else
    "FAIL\\n" (an unknown field; 2.10 has none) (wpa_supplicant/ctrl_iface.c:
    wpa_supplicant_ctrl_iface_process(), wpa_supplicant_ctrl_iface_get_capability());
  - NAN_PUBLISH / NAN_SUBSCRIBE / NAN_UPDATE_PUBLISH / NAN_CANCEL_PUBLISH /
    NAN_CANCEL_SUBSCRIBE and their parameters: wpa_supplicant/README-NAN-USD
    and the parsers wpas_ctrl_nan_publish() etc. in ctrl_iface.c (an unknown
    parameter fails the command; the reply to a publish or subscribe is its
    id, "%d" without a newline); ids are handed out round robin from 1 to
    NAN_DE_MAX_SERVICE (20) across publish and subscribe (src/common/nan_de.c:
    nan_de_get_handle()); a cancel ends the function with reason=user-request
    before the reply (nan_de_del_srv());
  - events: NAN-DISCOVERY-RESULT, NAN-PUBLISH-TERMINATED, NAN-SUBSCRIBE-TERMINATED
    (prefixes: src/common/wpa_ctrl.h; fields: wpa_supplicant/notify.c
    wpas_notify_nan_*() and README-NAN-USD);
  - the Service ID a publisher and subscriber match on: the first 6 bytes of
    SHA-256 of the service name with ASCII letters lower-cased
    (src/common/nan_de.c: nan_de_derive_service_id()), computed here with hashlib.

Standard input (the test's script), one line each:
  announce            every publisher sends again what it publishes (a repeated
                      Publish message): a NAN-DISCOVERY-RESULT per match
  emit TEXT           send "<3>TEXT" to every attached client
  end-subscriptions R / end-publications R
                      end every subscription / publication: NAN-*-TERMINATED reason=R
  list                print "services" and the id:kind of each running function
  quit                close and remove the socket, and exit
Standard output: "ready", then "cmd TEXT -> REPLY" for each command but PING.
"""
import hashlib
import os
import select
import socket
import sys

MAX_SERVICE = 20
path = sys.argv[1]
nan = "--no-nan" not in sys.argv[2:]

sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sock.bind(path)
monitors = []          # attached clients' addresses
after = []             # services whose matches are discovered once the command's reply is out
services = {}          # id -> {"kind": "pub"/"sub", "sid": bytes, "ssi": str, "proto": int}
next_handle = 0


def out(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def service_id(name):
    return hashlib.sha256(name.encode().lower()).digest()[:6]  # bytes.lower(): ASCII only, as tolower()


def send_event(text):
    for addr in list(monitors):
        try:
            sock.sendto(("<3>" + text).encode(), addr)
        except OSError:
            monitors.remove(addr)  # wpa_supplicant detaches a monitor that cannot be reached


def discovery_result(sub_id, pub_id):
    pub = services[pub_id]
    send_event("NAN-DISCOVERY-RESULT subscribe_id=%d publish_id=%d address=02:00:00:00:01:%02x fsd=1 fsd_gas=0 "
               "srv_proto_type=%u ssi=%s" % (sub_id, pub_id, pub_id, pub["proto"], pub["ssi"]))


def air(changed):
    """A publication or subscription started or changed: the matches it makes are discovered."""
    me = services[changed]
    for other, s in list(services.items()):
        if other == changed or s["sid"] != me["sid"] or s["kind"] == me["kind"]:
            continue
        if me["kind"] == "pub":
            discovery_result(other, changed)
        else:
            discovery_result(changed, other)


def new_handle():
    global next_handle
    if len(services) >= MAX_SERVICE:
        return -1
    i = next_handle
    while (i + 1) in services:
        i = (i + 1) % MAX_SERVICE
    next_handle = (i + 1) % MAX_SERVICE
    return i + 1


def parse_hex(v):
    if len(v) % 2:
        return None
    try:
        bytes.fromhex(v)
    except ValueError:
        return None
    return v.lower()


def start(kind, args):
    allowed_flags = {"pub": ("p2p=1", "solicited=0", "unsolicited=0", "fsd=0", "pr=1"),
                     "sub": ("active=1", "p2p=1", "pr=1")}[kind]
    name, ssi, proto = None, "", 0
    for tok in args.split(" "):
        if not tok:
            continue
        key, _, val = tok.partition("=")
        if key == "service_name":
            name = val
        elif key in ("ttl", "freq", "freq_list"):
            pass
        elif key == "srv_proto_type":
            proto = int(val or 0)
        elif key == "ssi":
            ssi = parse_hex(val)
            if ssi is None:
                return "FAIL\n"
        elif tok not in allowed_flags:
            return "FAIL\n"  # "CTRL: Invalid NAN_PUBLISH parameter"
    if not name:
        return "FAIL\n"
    sid = new_handle()
    if sid < 0:
        return "FAIL\n"
    services[sid] = {"kind": kind, "sid": service_id(name), "ssi": ssi, "proto": proto}
    after.append(sid)
    return "%d" % sid


def one_id(args, key):
    ids = [int(t[len(key) + 1:], 0) for t in args.split(" ") if t.startswith(key + "=")]
    bad = [t for t in args.split(" ") if t and not t.startswith(key + "=") and not t.startswith("ssi=")]
    return ids[0] if len(ids) == 1 and not bad and ids[0] > 0 else None


def end(sid, reason):
    kind = services.pop(sid)["kind"]
    what = "PUBLISH" if kind == "pub" else "SUBSCRIBE"
    send_event("NAN-%s-TERMINATED %s_id=%d reason=%s" % (what, "publish" if kind == "pub" else "subscribe",
                                                          sid, reason))


def command(text):
    if text == "PING":
        return "PONG\n"
    if text in ("ATTACH", "DETACH"):
        return "OK\n"
    if text.startswith("GET_CAPABILITY "):
        return "USD" if nan and text[15:] == "nan" else "FAIL\n"
    if not nan:
        return "UNKNOWN COMMAND\n"
    if text.startswith("NAN_PUBLISH "):
        return start("pub", text[12:])
    if text.startswith("NAN_SUBSCRIBE "):
        return start("sub", text[14:])
    for cmd, kind, key in (("NAN_CANCEL_PUBLISH ", "pub", "publish_id"),
                           ("NAN_CANCEL_SUBSCRIBE ", "sub", "subscribe_id")):
        if text.startswith(cmd):
            sid = one_id(text[len(cmd):], key)
            if sid is None:
                return "FAIL\n"
            if sid in services and services[sid]["kind"] == kind:
                end(sid, "user-request")
            return "OK\n"
    if text.startswith("NAN_UPDATE_PUBLISH "):
        args = text[19:]
        sid = one_id(args, "publish_id")
        ssi = [parse_hex(t[4:]) for t in args.split(" ") if t.startswith("ssi=")]
        if sid is None or sid not in services or services[sid]["kind"] != "pub" or None in ssi:
            return "FAIL\n"
        if ssi:
            services[sid]["ssi"] = ssi[0]
        after.append(sid)
        return "OK\n"
    return "UNKNOWN COMMAND\n"


def control(line):
    word, _, rest = line.partition(" ")
    if word == "announce":
        for sid, s in list(services.items()):
            if s["kind"] == "pub":
                air(sid)
    elif word == "emit":
        send_event(rest)
    elif word in ("end-subscriptions", "end-publications"):
        kind = "sub" if word == "end-subscriptions" else "pub"
        for sid in [i for i, s in services.items() if s["kind"] == kind]:
            end(sid, rest)
    elif word == "list":
        out("services" + "".join(" %d:%s" % (i, s["kind"]) for i, s in sorted(services.items())))
    elif word == "quit":
        sock.close()
        os.unlink(path)
        sys.exit(0)
    out("done " + line)


out("ready")
stdin = sys.stdin.fileno()
pending = b""  # read with os.read: a buffered readline() could hold a line that select() no longer sees
while True:
    ready, _, _ = select.select([sock, stdin], [], [])
    if sock in ready:
        data, addr = sock.recvfrom(8192)
        text = data.decode(errors="replace")
        reply = command(text)
        if text == "ATTACH" and addr not in monitors:
            monitors.append(addr)
        elif text == "DETACH" and addr in monitors:
            monitors.remove(addr)
        try:
            sock.sendto(reply.encode(), addr)
        except OSError:
            pass
        while after:  # frames on the air come after the command that started them
            sid = after.pop(0)
            if sid in services:
                air(sid)
        if text != "PING":
            out("cmd %s -> %s" % (text, reply.rstrip("\n")))
    if stdin in ready:
        chunk = os.read(stdin, 4096)
        if not chunk:
            break
        pending += chunk
        while b"\n" in pending:
            line, _, pending = pending.partition(b"\n")
            control(line.decode())
