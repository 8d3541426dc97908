/* SPDX-License-Identifier: ISC */
/*
 * pl-session — drives resumable sessions for the integration tests.
 *
 *   pl-session relay --port P --relay-port R --messages N --seed S [--links tcp|channel]
 *       One process, two peers: a listener on 127.0.0.1:P and a
 *       connection to 127.0.0.1:R, where a fault-injecting relay
 *       (pl-relay) forwards to P. They pair first over a direct
 *       connection (and close it cleanly), then run one session through
 *       the relay in which each side sends N messages of varied sizes
 *       (drawn from S) while the relay cuts, truncates, stalls, delays
 *       and corrupts the link. Every message is checked: its index, its
 *       length and every byte, so a message lost, repeated, reordered
 *       or altered fails the run. Ends with a clean close on both sides.
 *       Prints "seed S", progress, and a summary line; exit 0 on success.
 *       With --links channel, neither side lets the library touch a
 *       socket: the helper's own TCP sockets are application pipes
 *       (tests/helpers/sockpipe.c) - a detached listener takes the
 *       accepted ones (pl_listener_add_channel), and the initiator dials
 *       itself and, after every break, attaches a new pipe
 *       (pl_session_attach_channel) - as an app over Network.framework or
 *       Wi-Fi Aware would.
 *
 *   pl-session listen --port P --keys DIR [--code CODE] [--publish-port Q] [--max-message M]
 *       A listener (instance "pl-session") that accepts pairing with CODE;
 *       with --publish-port, it publishes itself with the built-in mDNS
 *       engine at port Q (say, a relay's), and on "republish Q" read from
 *       its standard input it withdraws and publishes again at port Q;
 *       runs until killed; prints "msg I" for
 *       every message (I: the index in its first 8 bytes), "open",
 *       "resumed STATUS", "eof N bytes, largest message L" (at the
 *       peer's end of stream), "closed STATUS". With --max-message, it
 *       announces M as the largest message it takes.
 *
 *   pl-session send --port P --keys DIR --messages N [--code CODE] [--rate R]
 *                   [--resume-ms MS]
 *       Connects to 127.0.0.1:P (pairing with CODE, else with stored
 *       keys), sends N indexed messages (at most R per second), then
 *       ends, with a resume window of MS (default: the library's); with
 *       --browse, finds "pl-session" with the built-in mDNS engine
 *       instead of dialling P, and finds it again if it moves; prints "open", "acked K" (every 100, and the last),
 *       "interrupted STATUS", "resumed STATUS acked K", "closed STATUS".
 *
 * Exit status: 0 success, 1 failure (a line "FAIL: ..." says why), 2 usage.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <netinet/in.h>
#include <sys/socket.h>

#include <peerlink/peerlink.h>

#include "sockpipe.h"

#define CODE_DEFAULT "424242"
#define INSTANCE "pl-session"

static pl_loop *g_loop;
static int g_failed;

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("FAIL: ", stdout);
    vprintf(fmt, ap);
    fputc('\n', stdout);
    fflush(stdout);
    va_end(ap);
    g_failed = 1;
    pl_loop_quit(g_loop);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* splitmix64: the sizes and contents of the messages. */
static uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* Message i of direction dir: 60 % up to 64 bytes, 30 % up to 2 KiB, 9 % up to 16 KiB, 1 % up to 64 KiB. */
static size_t msg_size(uint64_t seed, int dir, uint64_t i)
{
    uint64_t r = mix(seed ^ ((uint64_t)dir << 62) ^ (i * 2 + 1));
    unsigned pick = (unsigned)(r % 100);
    uint64_t v = r >> 8;
    size_t n = pick < 60 ? v % 65 : pick < 90 ? 64 + v % 1985 : pick < 99 ? 2048 + v % 14337 : 16384 + v % 49153;
    return n < 8 ? 8 : n; /* room for the index */
}

static void msg_fill(uint64_t seed, int dir, uint64_t i, uint8_t *p, size_t n)
{
    for (int k = 0; k < 8; k++)
        p[k] = (uint8_t)(i >> (56 - 8 * k));
    uint64_t x = mix(seed ^ i ^ ((uint64_t)dir << 61));
    for (size_t k = 8; k < n; k++) {
        if ((k & 7) == 0)
            x = mix(x);
        p[k] = (uint8_t)(x >> (8 * (k & 7)));
    }
}

static uint64_t msg_index(const uint8_t *p)
{
    uint64_t v = 0;
    for (int k = 0; k < 8; k++)
        v = v << 8 | p[k];
    return v;
}

/* ------------------------------------------------------------------ one side of a session */

typedef struct side {
    const char *name;
    int dir; /* the direction this side sends: 0 initiator to responder, 1 back */
    pl_session *c;
    uint64_t seed, total;
    uint64_t sent, received, acked;
    uint64_t interrupts, resumes;
    int opened, eof, closed, status, shut;
    uint8_t *buf;
    size_t max_unacked; /* the most unacknowledged bytes seen */
} side;

static void pump(side *s)
{
    while (s->c && !s->closed && s->sent < s->total) {
        size_t n = msg_size(s->seed, s->dir, s->sent);
        msg_fill(s->seed, s->dir, s->sent, s->buf, n);
        int rc = pl_session_send(s->c, s->buf, n);
        if (rc == PL_ERR_AGAIN)
            break; /* backpressure: PL_SESSION_ACKED brings us back */
        if (rc != PL_OK) {
            fail("%s: send %" PRIu64 ": %s", s->name, s->sent, pl_strerror(rc));
            return;
        }
        s->sent++;
        size_t u = pl_session_unacked(s->c);
        if (u > s->max_unacked)
            s->max_unacked = u;
    }
    if (s->c && !s->closed && s->sent == s->total && !s->shut) {
        s->shut = 1;
        int rc = pl_session_shutdown(s->c);
        if (rc != PL_OK)
            fail("%s: shutdown: %s", s->name, pl_strerror(rc));
    }
}

static void check_message(side *s, const uint8_t *data, size_t len)
{
    int from = 1 - s->dir;
    uint64_t i = s->received;
    size_t want = msg_size(s->seed, from, i);
    if (len != want || len < 8 || msg_index(data) != i) {
        fail("%s: message %" PRIu64 ": got index %" PRIu64 ", %zu bytes; want %zu bytes", s->name, i,
             len >= 8 ? msg_index(data) : UINT64_MAX, len, want);
        return;
    }
    msg_fill(s->seed, from, i, s->buf, want);
    if (memcmp(s->buf, data, len) != 0) {
        fail("%s: message %" PRIu64 ": content differs", s->name, i);
        return;
    }
    s->received++;
}

static side g_i, g_r;
static uint64_t g_conn_tries;

static int all_done(void)
{
    return g_i.closed && g_r.closed;
}

static void initiator_interrupted(void);

static void on_session(pl_session *c, pl_session_event ev, int status, const void *data, size_t len, void *ud)
{
    side *s = ud;
    switch (ev) {
    case PL_SESSION_OPEN:
        s->opened = 1;
        pump(s);
        break;
    case PL_SESSION_MESSAGE:
        check_message(s, data, len);
        break;
    case PL_SESSION_PEER_EOF:
        s->eof = 1;
        if (s->received != s->total)
            fail("%s: end of stream after %" PRIu64 " of %" PRIu64 " messages", s->name, s->received,
                 s->total);
        break;
    case PL_SESSION_DRAINED:
        break;
    case PL_SESSION_INTERRUPTED:
        s->interrupts++;
        if (s == &g_i)
            initiator_interrupted();
        break;
    case PL_SESSION_RESUMED:
        s->resumes++;
        if (status != PL_OK)
            fail("%s: resumed with %s", s->name, pl_strerror(status));
        pump(s);
        break;
    case PL_SESSION_ACKED:
        if (len < s->acked || len > s->sent + 1)
            fail("%s: acked %zu after %" PRIu64 " (sent %" PRIu64 ")", s->name, len, s->acked, s->sent);
        s->acked = len;
        pump(s);
        break;
    case PL_SESSION_DELIVERED:
    case PL_SESSION_PEER_TXT:
        break;
    case PL_SESSION_CLOSED:
        s->closed = 1;
        s->status = status;
        if (status != PL_OK && s->opened)
            fail("%s: closed with %s after %" PRIu64 " sent, %" PRIu64 " received", s->name, pl_strerror(status),
                 s->sent, s->received);
        if (all_done())
            pl_loop_quit(g_loop);
        break;
    }
}

/* 127.0.0.1:port as a browsed service named name (svc points into *a). */
static void local_service(pl_service *svc, pl_address *a, uint16_t port, const char *name)
{
    memset(svc, 0, sizeof *svc);
    memset(a, 0, sizeof *a);
    a->family = AF_INET;
    inet_pton(AF_INET, "127.0.0.1", a->addr);
    svc->name = name;
    svc->type = "_peerlink._tcp";
    svc->domain = "local";
    svc->host = "localhost";
    svc->port = port;
    svc->n_addresses = 1;
    svc->addresses = a;
}

/* ------------------------------------------------------------------ relay mode */

typedef struct relay_ctx {
    const pl_poll *poll;
    pl_keystore *ks_i;
    pl_node *node_i;
    pl_service svc;
    pl_address addr;
    int pairing_done;
    pl_session *pair_i, *pair_r;
    int pair_closed;
    int channels;         /* --links channel */
    pl_listener *l;
    int lsock;            /* channels: the helper's own listening socket */
    pl_watch *lwatch;
    pl_timeout *reattach; /* channels: a new pipe for the interrupted initiator, from the loop */
} relay_ctx;

static relay_ctx g_rc;

static void on_pair(pl_session *c, pl_session_event ev, int status, const void *data, size_t len, void *ud)
{
    (void)data;
    (void)len;
    (void)ud;
    if (ev == PL_SESSION_OPEN || ev == PL_SESSION_PEER_EOF)
        pl_session_shutdown(c);
    if (ev == PL_SESSION_CLOSED) {
        if (status != PL_OK) {
            fail("pairing session closed with %s", pl_strerror(status));
            return;
        }
        if (++g_rc.pair_closed == 2)
            pl_loop_quit(g_loop);
    }
}

static void connect_session(void);

/* ---- --links channel: the helper's sockets as application pipes */

/* A TCP connection to 127.0.0.1:port, as a pipe. NULL on failure. */
static sock_pipe *dial_pipe(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    sock_pipe *p = sock_pipe_new(g_rc.poll, fd);
    if (!p)
        close(fd);
    return p;
}

/* A session over a pipe to port, pairing with code (or not). */
static int channel_connect(uint16_t port, const char *code, pl_session_cb cb, void *ud, pl_session **out)
{
    sock_pipe *p = dial_pipe(port);
    if (!p)
        return PL_ERR_CONNECT;
    int rc = pl_session_new_channel(g_rc.node_i, sock_pipe_ops(), p, PL_ROLE_INITIATOR, INSTANCE, cb, ud, out);
    if (rc != PL_OK) {
        sock_pipe_free(p);
        return rc;
    }
    sock_pipe_bind(p, pl_session_channel(*out));
    if (code)
        rc = pl_session_set_code(*out, code);
    return rc;
}

/* Over pipes the application brings the links: dial again, from the loop. */
static void initiator_interrupted(void)
{
    if (g_rc.channels)
        g_rc.poll->timeout_update(g_rc.reattach, 0);
}

/* The initiator's link broke: dial again and attach the new pipe. */
static void reattach_due(pl_timeout *t, void *ud)
{
    (void)t;
    (void)ud;
    if (!g_i.c || g_i.closed || pl_session_channel(g_i.c))
        return;
    sock_pipe *p = dial_pipe(g_rc.svc.port);
    if (!p) {
        g_rc.poll->timeout_update(g_rc.reattach, 50); /* the relay is not there: try again soon */
        return;
    }
    int rc = pl_session_attach_channel(g_i.c, sock_pipe_ops(), p);
    if (rc != PL_OK) {
        sock_pipe_free(p);
        fail("pl_session_attach_channel: %s", pl_strerror(rc));
        return;
    }
    sock_pipe_bind(p, pl_session_channel(g_i.c));
}

static void on_pipe_accept(pl_watch *w, int fd, unsigned events, void *ud)
{
    (void)w;
    (void)events;
    (void)ud;
    int s = accept(fd, NULL, NULL);
    if (s < 0)
        return;
    sock_pipe *p = sock_pipe_new(g_rc.poll, s);
    pl_channel *ch = NULL;
    if (!p) {
        close(s);
        return;
    }
    if (pl_listener_add_channel(g_rc.l, sock_pipe_ops(), p, &ch) != PL_OK) {
        sock_pipe_free(p);
        return;
    }
    sock_pipe_bind(p, ch);
}

/* A detached listener, and the helper's own socket on 127.0.0.1:port for it. */
static int channel_listen(uint16_t port, pl_node *node, pl_accept_cb cb)
{
    int rc = pl_listener_new_detached(node, cb, NULL, &g_rc.l);
    if (rc != PL_OK)
        return rc;
    int one = 1;
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    g_rc.lsock = socket(AF_INET, SOCK_STREAM, 0);
    if (g_rc.lsock < 0 || setsockopt(g_rc.lsock, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        bind(g_rc.lsock, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(g_rc.lsock, 64) < 0)
        return PL_ERR_IO;
    g_rc.lwatch = g_rc.poll->watch_new(g_rc.poll, g_rc.lsock, PL_WATCH_IN, on_pipe_accept, NULL);
    g_rc.reattach = g_rc.poll->timeout_new(g_rc.poll, -1, reattach_due, NULL);
    return g_rc.lwatch && g_rc.reattach ? PL_OK : PL_ERR_NOMEM;
}

static void on_first(pl_session *c, pl_session_event ev, int status, const void *data, size_t len, void *ud)
{
    /* The session's first handshake may be cut by the relay: dial again. */
    if (ev == PL_SESSION_CLOSED && !g_i.opened) {
        pl_session_free(c);
        g_i.c = NULL;
        if (++g_conn_tries > 100) {
            fail("no session through the relay after 100 attempts: %s", pl_strerror(status));
            return;
        }
        connect_session();
        return;
    }
    on_session(c, ev, status, data, len, ud);
}

static void connect_session(void)
{
    pl_session *c;
    int rc = g_rc.channels ? channel_connect(g_rc.svc.port, NULL, on_first, &g_i, &c)
                           : pl_connect(g_rc.node_i, &g_rc.svc, 5000, on_first, &g_i, &c);
    if (rc != PL_OK) {
        fail("%s: %s", g_rc.channels ? "a session over a pipe" : "pl_connect", pl_strerror(rc));
        return;
    }
    pl_session_set_resume(c, 60000);
    pl_session_set_keepalive(c, 1000);
    pl_session_set_send_limit(c, 256 * 1024);
    g_i.c = c;
}

static void on_accept_relay(pl_listener *l, pl_session *c, void *ud)
{
    (void)l;
    (void)ud;
    if (!g_rc.pairing_done) {
        g_rc.pair_r = c;
        pl_session_set_callback(c, on_pair, NULL);
        pl_session_shutdown(c);
        return;
    }
    if (g_r.c) {
        if (g_i.opened) {
            fail("a second session reached the accept callback");
            pl_session_free(c);
            return;
        }
        /* The relay cut the first handshake after this side opened and before
         * the initiator did: that session was never the initiator's; start over. */
        pl_session_free(g_r.c);
        uint8_t *buf = g_r.buf;
        g_r = (side){.name = "responder", .dir = 1, .seed = g_r.seed, .total = g_r.total, .buf = buf};
    }
    g_r.c = c;
    g_r.opened = 1;
    pl_session_set_send_limit(c, 256 * 1024);
    pl_session_set_callback(c, on_session, &g_r);
    pump(&g_r);
}

static int run_relay(uint16_t port, uint16_t relay_port, uint64_t n, uint64_t seed, int timeout_s, int channels)
{
    printf("seed %" PRIu64 "%s\n", seed, channels ? " links channel" : "");
    fflush(stdout);
    const pl_poll *poll = pl_loop_get_poll(g_loop);
    pl_keystore *ks_r = NULL;
    pl_node *node_r = NULL;
    pl_listener *l = NULL;
    g_rc.poll = poll;
    g_rc.channels = channels;
    g_rc.lsock = -1;
    int rc = pl_keystore_new_memory(&g_rc.ks_i);
    if (rc == PL_OK)
        rc = pl_keystore_new_memory(&ks_r);
    if (rc == PL_OK)
        rc = pl_node_new(poll, g_rc.ks_i, &g_rc.node_i);
    if (rc == PL_OK)
        rc = pl_node_new(poll, ks_r, &node_r);
    if (rc == PL_OK && channels && (rc = channel_listen(port, node_r, on_accept_relay)) == PL_OK)
        l = g_rc.l;
    else if (rc == PL_OK && !channels)
        rc = pl_listener_new(node_r, port, on_accept_relay, NULL, &l);
    if (rc != PL_OK) {
        fail("setup: %s", pl_strerror(rc));
        return 1;
    }
    pl_listener_set_instance(l, INSTANCE);
    pl_listener_set_pairing(l, CODE_DEFAULT, 0, 0);
    pl_listener_set_resume(l, 60000, 1000);
    local_service(&g_rc.svc, &g_rc.addr, port, INSTANCE);

    /* 1. Pair over a direct connection, and close it cleanly. */
    if (channels) {
        rc = channel_connect(port, CODE_DEFAULT, on_pair, NULL, &g_rc.pair_i);
    } else {
        rc = pl_connect(g_rc.node_i, &g_rc.svc, 5000, on_pair, NULL, &g_rc.pair_i);
        if (rc == PL_OK)
            rc = pl_session_set_code(g_rc.pair_i, CODE_DEFAULT);
    }
    if (rc != PL_OK) {
        fail("pairing: %s", pl_strerror(rc));
        return 1;
    }
    pl_loop_run(g_loop);
    if (g_failed)
        return 1;
    pl_session_free(g_rc.pair_i);
    pl_session_free(g_rc.pair_r);
    g_rc.pairing_done = 1;
    printf("paired\n");
    fflush(stdout);

    /* 2. The session through the relay. */
    g_i = (side){.name = "initiator", .dir = 0, .seed = seed, .total = n};
    g_r = (side){.name = "responder", .dir = 1, .seed = seed, .total = n};
    g_i.buf = malloc(65536);
    g_r.buf = malloc(65536);
    g_rc.svc.port = relay_port;
    double t0 = now_s();
    connect_session();
    double last = t0;
    while (!g_failed && !all_done()) {
        pl_loop_iterate(g_loop, 1000);
        double t = now_s();
        if (t - last >= 5) {
            last = t;
            printf("progress %.0fs: i sent %" PRIu64 " got %" PRIu64 " (%" PRIu64 " interruptions), r sent %" PRIu64
                   " got %" PRIu64 " (%" PRIu64 " interruptions)\n",
                   t - t0, g_i.sent, g_i.received, g_i.interrupts, g_r.sent, g_r.received, g_r.interrupts);
            fflush(stdout);
        }
        if (t - t0 > timeout_s)
            fail("timed out after %d s", timeout_s);
    }
    double dt = now_s() - t0;
    if (!g_failed && (g_i.received != n || g_r.received != n || g_i.status != PL_OK || g_r.status != PL_OK))
        fail("incomplete: i got %" PRIu64 ", r got %" PRIu64 " of %" PRIu64, g_i.received, g_r.received, n);
    printf("summary seed=%" PRIu64 " messages=%" PRIu64 " each way, %.1f s, initiator: %" PRIu64
           " interruptions %" PRIu64 " resumes %" PRIu64 " dials, max unacked %zu; responder: %" PRIu64
           " interruptions %" PRIu64 " resumes, max unacked %zu\n",
           seed, n, dt, g_i.interrupts, g_i.resumes, g_conn_tries + 1, g_i.max_unacked, g_r.interrupts,
           g_r.resumes, g_r.max_unacked);
    if (g_i.max_unacked > 256 * 1024 + 65536 || g_r.max_unacked > 256 * 1024 + 65536)
        fail("unacknowledged bytes passed the send limit");
    fflush(stdout);
    pl_session_free(g_i.c);
    pl_session_free(g_r.c);
    pl_listener_free(l);
    if (g_rc.lwatch)
        poll->watch_free(g_rc.lwatch);
    if (g_rc.reattach)
        poll->timeout_free(g_rc.reattach);
    if (g_rc.lsock >= 0)
        close(g_rc.lsock);
    pl_node_free(g_rc.node_i);
    pl_node_free(node_r);
    pl_keystore_free(g_rc.ks_i);
    pl_keystore_free(ks_r);
    free(g_i.buf);
    free(g_r.buf);
    return g_failed;
}

/* ------------------------------------------------------------------ separate processes */

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    fputc('\n', stdout);
    fflush(stdout);
    va_end(ap);
}

static uint64_t g_listen_bytes; /* the listener's session: bytes received, largest message */
static size_t g_listen_largest;

static void on_listen_conn(pl_session *c, pl_session_event ev, int status, const void *data, size_t len, void *ud)
{
    (void)ud;
    switch (ev) {
    case PL_SESSION_MESSAGE:
        g_listen_bytes += len;
        if (len > g_listen_largest)
            g_listen_largest = len;
        say("msg %" PRIu64, len >= 8 ? msg_index(data) : UINT64_MAX);
        break;
    case PL_SESSION_PEER_EOF:
        say("eof %" PRIu64 " bytes, largest message %zu", g_listen_bytes, g_listen_largest);
        pl_session_shutdown(c);
        break;
    case PL_SESSION_INTERRUPTED:
        say("interrupted %s", pl_strerror(status));
        break;
    case PL_SESSION_RESUMED:
        say("resumed %d", status);
        break;
    case PL_SESSION_CLOSED:
        say("closed %d", status);
        pl_session_free(c);
        break;
    default:
        break;
    }
}

static void on_listen_accept(pl_listener *l, pl_session *c, void *ud)
{
    (void)l;
    (void)ud;
    say("open");
    pl_session_set_callback(c, on_listen_conn, NULL);
}

typedef struct sender {
    pl_session *c;
    pl_keystore *ks;
    pl_node *node;
    pl_discovery *disc;
    pl_browser *browser;
    const char *code;
    int resume_ms;
    uint64_t total, sent, acked, last_said;
    double rate, t0;
    int shut;
    pl_timeout *tick;
    uint8_t buf[64];
} sender;

static void sender_pump(sender *s)
{
    double allowed = s->rate > 0 ? (now_s() - s->t0) * s->rate : (double)s->total;
    while (s->sent < s->total && (double)s->sent < allowed) {
        for (int k = 0; k < 8; k++)
            s->buf[k] = (uint8_t)(s->sent >> (56 - 8 * k));
        memset(s->buf + 8, 'x', sizeof s->buf - 8);
        int rc = pl_session_send(s->c, s->buf, sizeof s->buf);
        if (rc == PL_ERR_AGAIN)
            return;
        if (rc != PL_OK) {
            fail("send: %s", pl_strerror(rc));
            return;
        }
        s->sent++;
    }
    if (s->sent == s->total && !s->shut) {
        s->shut = 1;
        pl_session_shutdown(s->c);
    }
}

static void on_tick(pl_timeout *t, void *ud)
{
    sender *s = ud;
    sender_pump(s);
    if (!s->shut)
        pl_loop_get_poll(g_loop)->timeout_update(t, 10);
}

static void on_send_conn(pl_session *c, pl_session_event ev, int status, const void *data, size_t len, void *ud)
{
    (void)c;
    (void)data;
    sender *s = ud;
    switch (ev) {
    case PL_SESSION_OPEN:
        say("open");
        s->t0 = now_s();
        pl_loop_get_poll(g_loop)->timeout_update(s->tick, 0);
        break;
    case PL_SESSION_ACKED:
        s->acked = len;
        if (len >= s->last_said + 100 || len > s->total) {
            s->last_said = len;
            say("acked %zu", len);
        }
        sender_pump(s);
        break;
    case PL_SESSION_INTERRUPTED:
        say("interrupted %s", pl_strerror(status));
        break;
    case PL_SESSION_RESUMED:
        say("resumed %d acked %" PRIu64, status, s->acked);
        sender_pump(s);
        break;
    case PL_SESSION_CLOSED:
        say("closed %d acked %" PRIu64, status, s->acked);
        if (status != PL_OK)
            g_failed = 1;
        pl_loop_quit(g_loop);
        break;
    default:
        break;
    }
}

static pl_keystore *open_keys(const char *dir)
{
    pl_keystore *ks = NULL;
    int rc = dir ? pl_keystore_open_dir(dir, &ks) : pl_keystore_new_memory(&ks);
    if (rc != PL_OK) {
        fprintf(stderr, "keystore %s: %s\n", dir ? dir : "(memory)", pl_strerror(rc));
        exit(1);
    }
    return ks;
}


static pl_discovery *open_discovery(void)
{
    pl_discovery *d = NULL;
    int rc = pl_discovery_new(pl_loop_get_poll(g_loop), "mdns", &d);
    if (rc != PL_OK) {
        fprintf(stderr, "discovery: %s\n", pl_strerror(rc));
        exit(1);
    }
    return d;
}

static void on_published(pl_publication *p, pl_publish_event ev, int status, const char *name, void *ud)
{
    (void)p;
    (void)ud;
    if (ev == PL_PUBLISH_ESTABLISHED)
        say("published %s", name);
    else if (ev == PL_PUBLISH_FAILED)
        fail("publishing: %s", pl_strerror(status));
}

typedef struct publisher {
    pl_discovery *disc;
    pl_publication *pub;
    char line[128];
    size_t have;
} publisher;

static int publish_at(publisher *p, unsigned long port)
{
    pl_publication_free(p->pub);
    p->pub = NULL;
    int rc = port && port <= 65535 ? pl_publish(p->disc, INSTANCE, "_peerlink._tcp", (uint16_t)port, NULL,
                                                on_published, p, &p->pub)
                                   : PL_ERR_INVALID;
    if (rc != PL_OK)
        fail("publish at %lu: %s", port, pl_strerror(rc));
    return rc;
}

/* Commands on standard input: "republish PORT". */
static void on_stdin(pl_watch *w, int fd, unsigned events, void *ud)
{
    publisher *p = ud;
    ssize_t n = read(fd, p->line + p->have, sizeof p->line - 1 - p->have);
    if (n <= 0) {
        pl_loop_get_poll(g_loop)->watch_free(w);
        return;
    }
    p->have += (size_t)n;
    p->line[p->have] = 0;
    char *nl;
    while ((nl = strchr(p->line, '\n'))) {
        *nl = 0;
        unsigned long port;
        if (sscanf(p->line, "republish %lu", &port) == 1 && publish_at(p, port) == PL_OK)
            say("republished %lu", port);
        p->have -= (size_t)(nl + 1 - p->line);
        memmove(p->line, nl + 1, p->have + 1);
    }
    if (p->have == sizeof p->line - 1)
        p->have = 0; /* an overlong line: dropped */
}

static int run_listen(uint16_t port, const char *keys, const char *code, unsigned long publish_port,
                      unsigned long max_message)
{
    pl_keystore *ks = open_keys(keys);
    const pl_poll *poll = pl_loop_get_poll(g_loop);
    pl_node *node = NULL;
    pl_listener *l;
    int rc = pl_node_new(poll, ks, &node);
    if (rc == PL_OK)
        rc = pl_listener_new(node, port, on_listen_accept, NULL, &l);
    if (rc != PL_OK) {
        fprintf(stderr, "listen: %s\n", pl_strerror(rc));
        return 1;
    }
    pl_listener_set_instance(l, INSTANCE);
    if (max_message && pl_listener_set_max_message(l, max_message) != PL_OK) {
        fprintf(stderr, "listen: --max-message %lu refused\n", max_message);
        return 1;
    }
    if (code)
        pl_listener_set_pairing(l, code, 0, 0);
    publisher p = {0};
    pl_watch *w = NULL;
    if (publish_port) {
        p.disc = open_discovery();
        if (publish_at(&p, publish_port) != PL_OK)
            return 1;
        w = poll->watch_new(poll, 0, PL_WATCH_IN, on_stdin, &p);
    }
    say("listening %u", pl_listener_port(l));
    pl_loop_run(g_loop);
    pl_publication_free(p.pub);
    pl_discovery_free(p.disc);
    pl_listener_free(l);
    pl_node_free(node);
    pl_keystore_free(ks);
    (void)w; /* freed with the loop */
    return 0;
}

static void send_connect(sender *s, const pl_service *svc)
{
    int rc = pl_connect(s->node, svc, 5000, on_send_conn, s, &s->c);
    if (rc == PL_OK && s->code)
        rc = pl_session_set_code(s->c, s->code);
    if (rc == PL_OK && s->disc)
        rc = pl_session_set_discovery(s->c, s->disc); /* found again if it moves */
    if (rc != PL_OK) {
        fail("connect: %s", pl_strerror(rc));
        return;
    }
    pl_session_set_keepalive(s->c, 500);
    if (s->resume_ms >= 0)
        pl_session_set_resume(s->c, s->resume_ms);
}

static void on_found(pl_browser *b, pl_browse_event ev, int status, const pl_service *svc, void *ud)
{
    sender *s = ud;
    if (ev == PL_BROWSE_FAILED) {
        fail("browsing: %s", pl_strerror(status));
        return;
    }
    if (ev != PL_BROWSE_ADD || s->c || strcmp(svc->name, INSTANCE) != 0)
        return;
    say("found port %u", svc->port);
    pl_browser_free(b);
    s->browser = NULL;
    send_connect(s, svc);
}

static int run_send(uint16_t port, const char *keys, const char *code, uint64_t n, double rate, int resume_ms,
                    int browse)
{
    sender s = {.total = n, .rate = rate, .code = code, .resume_ms = resume_ms};
    s.ks = open_keys(keys);
    if (pl_node_new(pl_loop_get_poll(g_loop), s.ks, &s.node) != PL_OK) {
        fprintf(stderr, "node: out of memory\n");
        return 1;
    }
    s.tick = pl_loop_get_poll(g_loop)->timeout_new(pl_loop_get_poll(g_loop), -1, on_tick, &s);
    if (browse) {
        s.disc = open_discovery();
        int rc = pl_browse(s.disc, "_peerlink._tcp", NULL, on_found, &s, &s.browser);
        if (rc != PL_OK) {
            fprintf(stderr, "browse: %s\n", pl_strerror(rc));
            return 1;
        }
    } else {
        pl_service svc;
        pl_address a;
        local_service(&svc, &a, port, INSTANCE);
        send_connect(&s, &svc);
    }
    if (!g_failed)
        pl_loop_run(g_loop);
    pl_session_free(s.c);
    pl_browser_free(s.browser);
    pl_discovery_free(s.disc);
    pl_loop_get_poll(g_loop)->timeout_free(s.tick);
    pl_node_free(s.node);
    pl_keystore_free(s.ks);
    return g_failed;
}

/* ------------------------------------------------------------------ main */

static void usage(void)
{
    fprintf(stderr, "usage: pl-session relay --port P --relay-port R --messages N --seed S [--timeout SEC] [--links tcp|channel]\n"
                    "       pl-session listen --port P --keys DIR [--code CODE] [--publish-port Q]\n"
                    "                         [--max-message M]\n"
                    "       pl-session send --port P --keys DIR --messages N [--code CODE] [--rate R]\n"
                    "                       [--resume-ms MS] [--browse]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    if (argc < 2)
        usage();
    signal(SIGPIPE, SIG_IGN);
    const char *mode = argv[1], *keys = NULL, *code = NULL;
    unsigned long port = 0, relay_port = 0;
    uint64_t n = 1000, seed = 1;
    double rate = 0;
    int timeout_s = 600, resume_ms = -1, browse = 0;
    unsigned long publish_port = 0, max_message = 0;
    int channels = 0;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--browse")) {
            browse = 1;
            continue;
        }
        if (!v)
            usage();
        if (!strcmp(a, "--port"))
            port = strtoul(v, NULL, 10);
        else if (!strcmp(a, "--relay-port"))
            relay_port = strtoul(v, NULL, 10);
        else if (!strcmp(a, "--messages"))
            n = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--seed"))
            seed = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--keys"))
            keys = v;
        else if (!strcmp(a, "--code"))
            code = v;
        else if (!strcmp(a, "--rate"))
            rate = strtod(v, NULL);
        else if (!strcmp(a, "--timeout"))
            timeout_s = atoi(v);
        else if (!strcmp(a, "--resume-ms"))
            resume_ms = atoi(v);
        else if (!strcmp(a, "--publish-port"))
            publish_port = strtoul(v, NULL, 10);
        else if (!strcmp(a, "--max-message"))
            max_message = strtoul(v, NULL, 10);
        else if (!strcmp(a, "--links") && (!strcmp(v, "tcp") || !strcmp(v, "channel")))
            channels = !strcmp(v, "channel");
        else
            usage();
        i++;
    }
    if (port > 65535 || relay_port > 65535)
        usage();
    if (pl_loop_new(&g_loop) != PL_OK)
        return 1;
    int rc;
    if (!strcmp(mode, "relay") && port && relay_port)
        rc = run_relay((uint16_t)port, (uint16_t)relay_port, n, seed, timeout_s, channels);
    else if (!strcmp(mode, "listen") && port)
        rc = run_listen((uint16_t)port, keys, code, publish_port, max_message);
    else if (!strcmp(mode, "send") && (port || browse))
        rc = run_send((uint16_t)port, keys, code, n, rate, resume_ms, browse);
    else
        usage();
    pl_loop_free(g_loop);
    return rc ? 1 : 0;
}
