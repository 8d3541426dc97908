/* SPDX-License-Identifier: ISC */
/*
 * Tests of sessions over TCP and pipes (lib/session.c, lib/backends/posix/tcp.c,
 * lib/backends/channel/channel.c) on real loopback sockets, in one process: message exchange both ways with clean
 * close, addresses tried in turn, failure to connect, the message size
 * bound, a listener that survives 1,000 connections closing at once,
 * pairing, byte sessions, flow control with a receiver that stops
 * taking messages, an aborted session, and two peers dialling each other
 * at the same moment. (Sessions resumed across cut links are tested
 * through a fault-injecting relay: tests/integration/resume_*.sh.)
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <peerlink/peerlink.h>

typedef struct side {
    pl_session *conn;
    int open, eof, closed, status, drained, interrupted, delivered, txts;
    size_t acked;
    int messages;
    size_t bytes;
    uint8_t last[64];
    size_t last_len;
} side;

typedef struct fixture {
    pl_loop *loop;
    const pl_poll *poll;
    pl_keystore *srv_ks, *cli_ks;
    pl_node *srv_node, *cli_node; /* the two peers */
    pl_listener *l;
    side srv, cli;
    int accepted;
    int pairing_failures, last_pairing_status;
    const char *code; /* what the client pairs with; NULL: reconnect */
} fixture;

#define CODE "482913"


static void on_conn(pl_session *c, pl_session_event ev, int status, const void *data, size_t len, void *ud)
{
    side *s = ud;
    switch (ev) {
    case PL_SESSION_OPEN: s->open++; break;
    case PL_SESSION_MESSAGE:
        s->messages++;
        s->bytes += len;
        s->last_len = len < sizeof s->last ? len : sizeof s->last;
        memcpy(s->last, data, s->last_len);
        break;
    case PL_SESSION_PEER_EOF: s->eof++; break;
    case PL_SESSION_DRAINED: s->drained++; break;
    case PL_SESSION_CLOSED:
        s->closed++;
        s->status = status;
        break;
    case PL_SESSION_INTERRUPTED: s->interrupted++; break;
    case PL_SESSION_RESUMED: break;
    case PL_SESSION_ACKED:
        assert_true(len > s->acked); /* cumulative, only forward */
        s->acked = len;
        break;
    case PL_SESSION_DELIVERED:
        assert_true(pl_session_delivered(c));
        s->delivered++;
        break;
    case PL_SESSION_PEER_TXT: s->txts++; break;
    }
}

static void on_accept(pl_listener *l, pl_session *c, void *ud)
{
    fixture *f = ud;
    f->accepted++;
    if (f->srv.conn) {
        pl_session_free(c);
        return;
    }
    f->srv.conn = c;
    pl_session_set_callback(c, on_conn, &f->srv);
}

static void on_pairing(pl_listener *l, pl_pairing_event ev, int status, const char *code, void *ud)
{
    fixture *f = ud;
    if (ev == PL_PAIRING_FAILED) {
        f->pairing_failures++;
        f->last_pairing_status = status;
    }
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Run the loop until *flag becomes nonzero, at most 10 s (a hang fails the test). */
static void run_until(fixture *f, const int *flag)
{
    int64_t end = now_ms() + 10000;
    while (!*flag && now_ms() < end)
        assert_true(pl_loop_iterate(f->loop, 100) >= 0);
    assert_true(*flag);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    assert_int_equal(pl_loop_new(&f->loop), PL_OK);
    f->poll = pl_loop_get_poll(f->loop);
    assert_int_equal(pl_keystore_new_memory(&f->srv_ks), PL_OK);
    assert_int_equal(pl_keystore_new_memory(&f->cli_ks), PL_OK);
    assert_int_equal(pl_node_new(f->poll, f->srv_ks, &f->srv_node), PL_OK);
    assert_int_equal(pl_node_new(f->poll, f->cli_ks, &f->cli_node), PL_OK);
    assert_int_equal(pl_listener_new(f->srv_node, 0, on_accept, f, &f->l), PL_OK);
    assert_int_equal(pl_listener_set_instance(f->l, "t"), PL_OK);
    assert_int_equal(pl_listener_set_pairing(f->l, CODE, 0, 3), PL_OK);
    pl_listener_set_pairing_callback(f->l, on_pairing, f);
    f->code = CODE;
    assert_true(pl_listener_port(f->l) > 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    pl_session_free(f->srv.conn);
    pl_session_free(f->cli.conn);
    pl_listener_free(f->l);
    pl_node_free(f->srv_node);
    pl_node_free(f->cli_node);
    pl_loop_free(f->loop);
    pl_keystore_free(f->srv_ks);
    pl_keystore_free(f->cli_ks);
    free(f);
    return 0;
}

static pl_address v4(const char *s)
{
    pl_address a = {0};
    a.family = AF_INET;
    assert_int_equal(inet_pton(AF_INET, s, a.addr), 1);
    return a;
}

static void connect_to(fixture *f, const pl_address *addrs, size_t n, uint16_t port)
{
    pl_txt *txt;
    assert_int_equal(pl_txt_new(&txt), PL_OK);
    pl_service svc = {"t", "_peerlink._tcp", "local", "localhost", port, txt, n, addrs};
    assert_int_equal(pl_connect(f->cli_node, &svc, 5000, on_conn, &f->cli, &f->cli.conn), PL_OK);
    if (f->code)
        assert_int_equal(pl_session_set_code(f->cli.conn, f->code), PL_OK);
    pl_txt_free(txt); /* the service was copied */
    assert_int_equal(f->cli.closed + f->cli.open, 0); /* no callback from the constructor */
}

static void test_exchange_and_clean_close(void **state)
{
    fixture *f = *state;
    pl_address a = v4("127.0.0.1");
    connect_to(f, &a, 1, pl_listener_port(f->l));
    /* Queued before the connection is open: delivered once it is. */
    assert_int_equal(pl_session_send(f->cli.conn, "hello", 5), PL_OK);
    run_until(f, &f->cli.open);
    run_until(f, &f->srv.messages);
    assert_int_equal(f->srv.last_len, 5);
    assert_memory_equal(f->srv.last, "hello", 5);
    char peer[80];
    assert_int_equal(pl_session_peer_string(f->srv.conn, peer, sizeof peer), PL_OK);
    assert_non_null(strstr(peer, "127.0.0.1:"));

    /* A large message crosses as one. */
    size_t big = 600000;
    uint8_t *buf = malloc(big);
    for (size_t i = 0; i < big; i++)
        buf[i] = (uint8_t)(i * 7);
    assert_int_equal(pl_session_send(f->srv.conn, buf, big), PL_OK);
    assert_int_equal(pl_session_send(f->srv.conn, "", 0), PL_OK);
    int two = 0;
    while (!two) {
        assert_true(pl_loop_iterate(f->loop, 100) >= 0);
        two = f->cli.messages >= 2;
    }
    assert_int_equal(f->cli.bytes, big);
    assert_int_equal(f->cli.last_len, 0);
    free(buf);

    /* Half-close one way, then the other: both close cleanly. */
    assert_int_equal(pl_session_shutdown(f->cli.conn), PL_OK);
    assert_int_equal(pl_session_send(f->cli.conn, "x", 1), PL_ERR_STATE);
    run_until(f, &f->srv.eof);
    assert_int_equal(pl_session_send(f->srv.conn, "late", 4), PL_OK); /* the other way still works */
    int before = f->cli.messages;
    while (f->cli.messages == before)
        assert_true(pl_loop_iterate(f->loop, 100) >= 0);
    assert_int_equal(pl_session_shutdown(f->srv.conn), PL_OK);
    run_until(f, &f->cli.closed);
    run_until(f, &f->srv.closed);
    assert_int_equal(f->cli.status, PL_OK);
    assert_int_equal(f->srv.status, PL_OK);
    assert_int_equal(f->cli.eof, 1);
}

static void test_addresses_tried_in_turn(void **state)
{
    fixture *f = *state;
    /* First a link-local IPv6 address nobody has, scoped to loopback so
     * nothing leaves the machine; then the listener's IPv4 address. */
    pl_address addrs[2];
    memset(&addrs[0], 0, sizeof addrs[0]);
    addrs[0].family = AF_INET6;
    assert_int_equal(inet_pton(AF_INET6, "fe80::dead:beef", addrs[0].addr), 1);
    addrs[0].ifindex = if_nametoindex("lo");
    addrs[1] = v4("127.0.0.1");
    connect_to(f, addrs, 2, pl_listener_port(f->l));
    run_until(f, &f->cli.open);
    run_until(f, &f->accepted);
}

static void test_no_address_answers(void **state)
{
    fixture *f = *state;
    /* A port nobody listens on: bind one, note it, close it. */
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {0};
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(s, (struct sockaddr *)&sin, sizeof sin), 0);
    socklen_t sl = sizeof sin;
    getsockname(s, (struct sockaddr *)&sin, &sl);
    close(s);
    pl_address a = v4("127.0.0.1");
    connect_to(f, &a, 1, ntohs(sin.sin_port));
    run_until(f, &f->cli.closed);
    assert_int_equal(f->cli.status, PL_ERR_CONNECT);
    assert_int_equal(f->cli.open, 0);
}

static void test_message_size_bound(void **state)
{
    fixture *f = *state;
    assert_int_equal(pl_listener_set_max_message(f->l, 1000), PL_OK);
    pl_address a = v4("127.0.0.1");
    connect_to(f, &a, 1, pl_listener_port(f->l));
    run_until(f, &f->cli.open);
    uint8_t buf[1001] = {0};
    assert_int_equal(pl_session_send(f->cli.conn, buf, 1001), PL_ERR_TOO_LARGE);
    assert_int_equal(pl_session_send(f->cli.conn, buf, 1000), PL_OK);
    run_until(f, &f->srv.messages);
    assert_int_equal(f->srv.bytes, 1000);
}

static int count_fds(void)
{
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

static void test_listener_survives_1000_silent_connections(void **state)
{
    fixture *f = *state;
    enum { N = 1000 };
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < 2 * N + 64 && rl.rlim_max >= 2 * N + 64) {
        rl.rlim_cur = 2 * N + 64;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    assert_true(rl.rlim_cur >= 2 * N + 64);
    int before = count_fds();
    struct sockaddr_in sin = {0};
    sin.sin_family = AF_INET;
    sin.sin_port = htons(pl_listener_port(f->l));
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int *fds = calloc(N, sizeof *fds);
    for (int i = 0; i < N; i++) {
        fds[i] = socket(AF_INET, SOCK_STREAM, 0);
        assert_true(fds[i] >= 0);
        assert_int_equal(connect(fds[i], (struct sockaddr *)&sin, sizeof sin), 0);
        if (i % 100 == 99) /* let the listener drain its backlog as it would in life */
            for (int k = 0; k < 5; k++)
                pl_loop_iterate(f->loop, 0);
    }
    for (int i = 0; i < N; i++)
        close(fds[i]);
    free(fds);
    int64_t end = now_ms() + 10000;
    while ((pl_listener_pending(f->l) > 0 || count_fds() != before) && now_ms() < end)
        assert_true(pl_loop_iterate(f->loop, 50) >= 0);
    assert_int_equal(pl_listener_pending(f->l), 0);
    assert_int_equal(count_fds(), before);
    assert_int_equal(f->accepted, 0); /* none reached the application */
    /* And it still serves a real peer. */
    pl_address a = v4("127.0.0.1");
    connect_to(f, &a, 1, pl_listener_port(f->l));
    run_until(f, &f->cli.open);
    run_until(f, &f->accepted);
}

static void test_garbage_peer_is_dropped_silently(void **state)
{
    fixture *f = *state;
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {0};
    sin.sin_family = AF_INET;
    sin.sin_port = htons(pl_listener_port(f->l));
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(s, (struct sockaddr *)&sin, sizeof sin), 0);
    assert_int_equal(write(s, "GET / HTTP/1.0\r\n\r\n", 18), 18);
    int64_t end = now_ms() + 5000;
    char buf[256];
    ssize_t n = 1;
    fcntl(s, F_SETFL, O_NONBLOCK);
    while (n != 0 && now_ms() < end) {
        pl_loop_iterate(f->loop, 50);
        n = read(s, buf, sizeof buf);
        if (n < 0 && errno != EAGAIN)
            n = 0; /* reset also counts as closed */
    }
    assert_int_equal(n, 0); /* the listener closed it */
    assert_int_equal(f->accepted, 0);
    assert_int_equal(pl_listener_pending(f->l), 0);
    close(s);
}


/* Free both ends of the last session and forget what they saw. */
static void reset_sides(fixture *f)
{
    pl_session_free(f->srv.conn);
    pl_session_free(f->cli.conn);
    memset(&f->srv, 0, sizeof f->srv);
    memset(&f->cli, 0, sizeof f->cli);
    f->accepted = 0;
}

static void test_pair_then_reconnect_without_code(void **state)
{
    fixture *f = *state;
    pl_address a = v4("127.0.0.1");
    char longname[65];
    memset(longname, 'x', 64);
    longname[64] = '\0';
    assert_int_equal(pl_node_set_name(f->cli_node, longname), PL_ERR_INVALID);
    assert_int_equal(pl_node_set_name(NULL, "Phone"), PL_ERR_INVALID);
    assert_int_equal(pl_node_set_name(f->cli_node, "Phone"), PL_OK); /* not the host name */
    connect_to(f, &a, 1, pl_listener_port(f->l));
    assert_null(pl_session_peer_stored_name(f->cli.conn));
    run_until(f, &f->cli.open);
    run_until(f, &f->accepted);
    assert_int_equal(pl_session_paired(f->cli.conn), 1);
    assert_string_equal(pl_session_peer_name(f->cli.conn), "t");
    assert_string_equal(pl_session_peer_stored_name(f->cli.conn), "t");
    assert_string_equal(pl_session_peer_name(f->srv.conn), "Phone");
    assert_string_equal(pl_session_peer_stored_name(f->srv.conn), "Phone");
    uint8_t srv_id[PL_ID_SIZE], seen[PL_ID_SIZE], cli_id[PL_ID_SIZE];
    assert_int_equal(pl_keystore_identity(f->srv_ks, srv_id), PL_OK);
    assert_int_equal(pl_keystore_identity(f->cli_ks, cli_id), PL_OK);
    assert_int_equal(pl_session_peer_id(f->cli.conn, seen), PL_OK);
    assert_memory_equal(seen, srv_id, PL_ID_SIZE);
    assert_int_equal(pl_session_peer_id(f->srv.conn, seen), PL_OK);
    assert_memory_equal(seen, cli_id, PL_ID_SIZE);
    /* Both stored each other. */
    pl_paired_peer *peers;
    size_t n;
    assert_int_equal(pl_keystore_list_peers(f->cli_ks, &peers, &n), PL_OK);
    assert_int_equal(n, 1);
    assert_string_equal(peers[0].name, "t");
    free(peers);
    assert_int_equal(pl_keystore_list_peers(f->srv_ks, &peers, &n), PL_OK);
    assert_int_equal(n, 1);
    free(peers);

    /* Again, with no code: the stored identities are enough. */
    reset_sides(f);
    f->code = NULL;
    connect_to(f, &a, 1, pl_listener_port(f->l));
    assert_int_equal(pl_session_send(f->cli.conn, "after", 5), PL_OK);
    run_until(f, &f->cli.open);
    run_until(f, &f->srv.messages);
    assert_int_equal(pl_session_paired(f->cli.conn), 0);
    assert_memory_equal(f->srv.last, "after", 5);

    /* Presenting another name on a reconnect changes the claim, not the stored name. */
    reset_sides(f);
    assert_int_equal(pl_node_set_name(f->cli_node, "Kitchen"), PL_OK);
    connect_to(f, &a, 1, pl_listener_port(f->l));
    run_until(f, &f->cli.open);
    run_until(f, &f->accepted);
    assert_string_equal(pl_session_peer_name(f->srv.conn), "Kitchen");
    assert_string_equal(pl_session_peer_stored_name(f->srv.conn), "Phone");
    assert_string_equal(pl_session_peer_stored_name(f->cli.conn), "t");
    assert_int_equal(pl_node_set_name(f->cli_node, NULL), PL_OK); /* the host name again */

    /* The listener forgets us: a code is needed again. */
    reset_sides(f);
    assert_int_equal(pl_keystore_list_peers(f->srv_ks, &peers, &n), PL_OK);
    assert_int_equal(pl_keystore_forget(f->srv_ks, peers[0].name), PL_OK);
    free(peers);
    connect_to(f, &a, 1, pl_listener_port(f->l));
    run_until(f, &f->cli.closed);
    assert_int_equal(f->cli.status, PL_ERR_NOT_PAIRED);
    assert_int_equal(f->accepted, 0);
}

/* Open n silent connections to port; from 127.0.0.2 (one source), or from
 * n sources (127.0.1.1, 127.0.1.2, ...). */
static void flood(int *fds, int n, uint16_t port, int many_sources)
{
    struct sockaddr_in dst = {0}, src = {0};
    dst.sin_family = src.sin_family = AF_INET;
    dst.sin_port = htons(port);
    dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (int i = 0; i < n; i++) {
        fds[i] = socket(AF_INET, SOCK_STREAM, 0);
        assert_true(fds[i] >= 0);
        src.sin_addr.s_addr = htonl(many_sources ? 0x7F000100u + (uint32_t)i + 1 : 0x7F000002u);
        assert_int_equal(bind(fds[i], (struct sockaddr *)&src, sizeof src), 0);
        assert_int_equal(connect(fds[i], (struct sockaddr *)&dst, sizeof dst), 0);
    }
}

/* A flood of silent connections while a paired peer reconnects from
 * 127.0.0.1, ten times: each reconnect completes.
 * - Even rounds: 100 from one source (127.0.0.2), arriving with the
 *   reconnect: the listener holds at most 8 handshakes per source.
 * - Odd rounds: 100 from 100 sources, arriving while the reconnecting
 *   peer is in its handshake (its loop stops after its Hello): past 64
 *   pending, connections that have not sent a Hello go first. */
static void test_flood_does_not_stall_a_reconnect(void **state)
{
    fixture *f = *state;
    enum { FLOOD = 100, ROUNDS = 10 };
    pl_address a = v4("127.0.0.1");
    connect_to(f, &a, 1, pl_listener_port(f->l));
    run_until(f, &f->cli.open);
    run_until(f, &f->accepted);
    reset_sides(f);
    f->code = NULL; /* paired: from now on, stored keys */
    /* The reconnecting peer's own loop, so that it can stand still mid-handshake. */
    pl_loop *loop2;
    pl_node *node2;
    assert_int_equal(pl_loop_new(&loop2), PL_OK);
    assert_int_equal(pl_node_new(pl_loop_get_poll(loop2), f->cli_ks, &node2), PL_OK);
    int completed = 0;
    for (int r = 0; r < ROUNDS; r++) {
        int fds[FLOOD];
        pl_service svc = {"t", "_peerlink._tcp", "local", "localhost", pl_listener_port(f->l), NULL, 1, &a};
        if (r % 2 == 0) {
            assert_int_equal(pl_connect(f->cli_node, &svc, 5000, on_conn, &f->cli, &f->cli.conn), PL_OK);
            flood(fds, FLOOD, pl_listener_port(f->l), 0);
        } else {
            assert_int_equal(pl_connect(node2, &svc, 5000, on_conn, &f->cli, &f->cli.conn), PL_OK);
            for (int i = 0; i < 5; i++)
                pl_loop_iterate(loop2, 10); /* connected, Hello sent; then it stands still */
            for (int i = 0; i < 5; i++)
                pl_loop_iterate(f->loop, 10); /* the listener takes the Hello and answers */
            assert_int_equal(f->cli.open, 0);
            flood(fds, FLOOD, pl_listener_port(f->l), 1);
        }
        int64_t end = now_ms() + 5000;
        while (!f->cli.open && !f->cli.closed && now_ms() < end) {
            assert_true(pl_loop_iterate(f->loop, 10) >= 0);
            assert_true(pl_loop_iterate(loop2, 0) >= 0);
        }
        completed += f->cli.open;
        assert_true(pl_listener_pending(f->l) <= 64);
        for (int i = 0; i < FLOOD; i++)
            close(fds[i]);
        reset_sides(f);
    }
    pl_node_free(node2);
    pl_loop_free(loop2);
    assert_int_equal(completed, ROUNDS);
}

static void test_wrong_code_fails_on_both_sides(void **state)
{
    fixture *f = *state;
    f->code = "111111";
    pl_address a = v4("127.0.0.1");
    connect_to(f, &a, 1, pl_listener_port(f->l));
    assert_int_equal(pl_session_send(f->cli.conn, "secret", 6), PL_OK); /* never sent */
    run_until(f, &f->cli.closed);
    assert_int_equal(f->cli.status, PL_ERR_WRONG_CODE);
    run_until(f, &f->pairing_failures);
    assert_int_equal(f->last_pairing_status, PL_ERR_WRONG_CODE);
    assert_int_equal(f->accepted, 0);
    assert_int_equal(f->cli.open, 0);
}

static void test_not_paired_without_code(void **state)
{
    fixture *f = *state;
    f->code = NULL;
    pl_address a = v4("127.0.0.1");
    connect_to(f, &a, 1, pl_listener_port(f->l));
    run_until(f, &f->cli.closed);
    assert_int_equal(f->cli.status, PL_ERR_NOT_PAIRED);
}

/* ---- a session over an application byte channel, both ends in memory */

typedef struct pipe_end {
    pl_session *self;
    struct pipe_end *other;
    size_t budget; /* bytes write() takes before it reports a full pipe; 0: unlimited */
    int closed;
    int refused, readied; /* the reader said PL_ERR_AGAIN; then input_ready */
} pipe_end;

static long pipe_write(void *ctx, const uint8_t *data, size_t len)
{
    pipe_end *p = ctx;
    if (p->budget && len > p->budget)
        len = p->budget;
    if (!p->other->self)
        return -1;
    int rc = pl_session_channel_input(p->other->self, data, len);
    if (rc == PL_ERR_AGAIN) {
        p->refused++;
        return 0; /* the reader is full: its input_ready makes us writable again */
    }
    return rc == PL_OK ? (long)len : -1;
}

/* The reading end has room again: its writer may go on. */
static void pipe_input_ready(void *ctx)
{
    pipe_end *p = ctx;
    p->readied++;
    if (p->other->self)
        pl_session_channel_writable(p->other->self);
}

static void pipe_close(void *ctx)
{
    pipe_end *p = ctx;
    p->closed = 1;
    p->self = NULL; /* its session lets go of this end: nothing is fed to it any more */
    if (p->other->self)
        pl_session_channel_input(p->other->self, NULL, 0);
}

static void test_session_over_byte_channel(void **state)
{
    fixture *f = *state;
    static const pl_channel_ops ops = {sizeof(pl_channel_ops), pipe_write, pipe_close, pipe_input_ready};
    pipe_end ie = {0}, re = {0};
    ie.other = &re;
    re.other = &ie;
    ie.budget = 7; /* a pipe that takes a few bytes at a time */
    assert_int_equal(pl_session_new_channel(f->cli_node, &ops, &ie, PL_ROLE_INITIATOR, "aware", on_conn,
                                         &f->cli, &ie.self), PL_OK);
    assert_int_equal(pl_session_new_channel(f->srv_node, &ops, &re, PL_ROLE_RESPONDER, "aware", on_conn,
                                         &f->srv, &re.self), PL_OK);
    f->cli.conn = ie.self;
    f->srv.conn = re.self;
    assert_int_equal(pl_session_set_code(ie.self, "abc-42"), PL_OK);
    assert_int_equal(pl_session_set_code(re.self, "abc-42"), PL_OK);
    assert_int_equal(pl_session_send(ie.self, "over the air", 12), PL_OK);
    /* The pipe takes 7 bytes per write: keep telling it that it may take more. */
    int64_t end = now_ms() + 10000;
    while (!f->srv.messages && now_ms() < end) {
        pl_session_channel_writable(ie.self);
        pl_session_channel_writable(re.self);
        assert_true(pl_loop_iterate(f->loop, 10) >= 0);
    }
    assert_int_equal(f->srv.messages, 1);
    assert_memory_equal(f->srv.last, "over the air", 12);
    assert_int_equal(pl_session_paired(re.self), 1);
    /* Both ends shut down: both close cleanly. */
    ie.budget = 0;
    assert_int_equal(pl_session_shutdown(ie.self), PL_OK);
    assert_int_equal(pl_session_shutdown(re.self), PL_OK);
    run_until(f, &f->cli.closed);
    run_until(f, &f->srv.closed);
    assert_int_equal(f->cli.status, PL_OK);
    assert_int_equal(f->srv.status, PL_OK);
    assert_true(ie.closed && re.closed);
    ie.self = re.self = NULL;
}

/* The client's initiator and the server's responder over a socketpair, for instance. */
static void fd_sessions(fixture *f, const char *instance)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    assert_int_equal(pl_session_new_fd(f->cli_node, sv[0], PL_ROLE_INITIATOR, instance, on_conn, &f->cli,
                                       &f->cli.conn), PL_OK);
    assert_int_equal(pl_session_new_fd(f->srv_node, sv[1], PL_ROLE_RESPONDER, instance, on_conn, &f->srv,
                                       &f->srv.conn), PL_OK);
}

static void test_session_over_socketpair_fd(void **state)
{
    fixture *f = *state;
    fd_sessions(f, "l2cap");
    assert_int_equal(pl_session_set_code(f->cli.conn, "7777"), PL_OK);
    assert_int_equal(pl_session_set_code(f->srv.conn, "7777"), PL_OK);
    run_until(f, &f->cli.open);
    run_until(f, &f->srv.open);
    assert_int_equal(pl_session_send(f->srv.conn, "fd", 2), PL_OK);
    run_until(f, &f->cli.messages);
    assert_memory_equal(f->cli.last, "fd", 2);
}

/* A byte session paired on a secret (the last of code and secret counts),
 * each side's TXT record delivered to the other once, and the exporter
 * giving both ends the same bytes. */
static void test_secret_txt_and_exporter(void **state)
{
    fixture *f = *state;
    static const uint8_t secret[32] = "a secret from the radio link....";
    fd_sessions(f, "aware");
    assert_int_equal(pl_session_set_secret(f->cli.conn, secret, PL_PAIRING_SECRET_MIN - 1), PL_ERR_INVALID);
    assert_int_equal(pl_session_set_secret(f->cli.conn, NULL, 32), PL_ERR_INVALID);
    assert_int_equal(pl_session_set_secret(f->cli.conn, secret, PL_PAIRING_SECRET_MAX + 1), PL_ERR_INVALID);
    assert_int_equal(pl_session_set_code(f->cli.conn, "1234"), PL_OK); /* replaced by the secret */
    assert_int_equal(pl_session_set_secret(f->cli.conn, secret, sizeof secret), PL_OK);
    assert_int_equal(pl_session_set_code(f->srv.conn, "1234"), PL_OK);
    assert_int_equal(pl_session_set_secret(f->srv.conn, secret, sizeof secret), PL_OK);
    uint8_t x[32], y[32];
    assert_int_equal(pl_session_export(f->cli.conn, "EXAMPLE pmk", NULL, 0, x, sizeof x), PL_ERR_STATE);
    pl_txt *t, *got;
    assert_int_equal(pl_txt_new(&t), PL_OK);
    assert_int_equal(pl_txt_set_str(t, "model", "kx1"), PL_OK);
    assert_int_equal(pl_session_set_txt(f->srv.conn, t), PL_OK); /* before the handshake: sent once open */
    assert_int_equal(pl_session_peer_txt(f->cli.conn, &got), PL_ERR_NOT_FOUND);
    run_until(f, &f->cli.open);
    run_until(f, &f->srv.open);
    assert_int_equal(pl_session_paired(f->cli.conn), 1);
    assert_int_equal(pl_session_paired(f->srv.conn), 1);
    /* no second call once the handshake began */
    assert_int_equal(pl_session_set_secret(f->cli.conn, secret, sizeof secret), PL_ERR_STATE);
    run_until(f, &f->cli.txts);
    assert_int_equal(pl_session_peer_txt(f->cli.conn, &got), PL_OK);
    assert_int_equal(pl_txt_equal(got, t), 1);
    pl_txt_free(got);
    /* the client's, after OPEN, and the same again: one event */
    assert_int_equal(pl_txt_set_str(t, "model", "phone"), PL_OK);
    assert_int_equal(pl_session_set_txt(f->cli.conn, t), PL_OK);
    assert_int_equal(pl_session_set_txt(f->cli.conn, t), PL_OK);
    assert_int_equal(pl_session_send(f->cli.conn, "after", 5), PL_OK);
    run_until(f, &f->srv.messages); /* sent after both copies of the TXT */
    assert_int_equal(f->srv.txts, 1);
    assert_int_equal(pl_session_peer_txt(f->srv.conn, &got), PL_OK);
    assert_int_equal(pl_txt_equal(got, t), 1);
    pl_txt_free(got);
    assert_int_equal(f->cli.txts, 1);
    pl_txt_free(t);
    assert_int_equal(pl_session_export(f->cli.conn, "EXAMPLE pmk", "ctx", 3, x, sizeof x), PL_OK);
    assert_int_equal(pl_session_export(f->srv.conn, "EXAMPLE pmk", "ctx", 3, y, sizeof y), PL_OK);
    assert_memory_equal(x, y, sizeof x);
    assert_int_equal(pl_session_export(f->srv.conn, "", NULL, 0, y, sizeof y), PL_ERR_INVALID);
}

/* Pair the client with the listener, open a session without a code, and return when both ends are open. */
static void open_paired_session(fixture *f)
{
    pl_address a = v4("127.0.0.1");
    connect_to(f, &a, 1, pl_listener_port(f->l));
    run_until(f, &f->cli.open);
    run_until(f, &f->accepted);
    reset_sides(f);
    f->code = NULL;
    connect_to(f, &a, 1, pl_listener_port(f->l));
    run_until(f, &f->cli.open);
    run_until(f, &f->accepted);
}

/* PL_SESSION_DELIVERED waits for the peer's application to take our
 * end-of-stream: not while it holds it paused; then once; and freeing the
 * session there still gives the peer its end-of-stream before the abort. */
static void test_delivered_waits_for_the_application(void **state)
{
    fixture *f = *state;
    open_paired_session(f);
    assert_int_equal(pl_session_pause(f->srv.conn, 1), PL_OK);
    assert_int_equal(pl_session_send(f->cli.conn, "last words", 10), PL_OK);
    assert_int_equal(pl_session_shutdown(f->cli.conn), PL_OK);
    int64_t end = now_ms() + 300;
    while (now_ms() < end)
        assert_true(pl_loop_iterate(f->loop, 10) >= 0);
    assert_int_equal(f->cli.acked, 0); /* held, so not acknowledged */
    assert_int_equal(f->cli.delivered, 0);
    assert_false(pl_session_delivered(f->cli.conn));
    assert_int_equal(pl_session_pause(f->srv.conn, 0), PL_OK);
    run_until(f, &f->cli.delivered);
    assert_true(pl_session_delivered(f->cli.conn));
    assert_int_equal(f->srv.messages, 1);
    assert_int_equal(f->srv.eof, 1); /* the server had our end before we knew it */
    assert_int_equal(f->cli.acked, 1);
    pl_session_free(f->cli.conn);    /* end without waiting for the server's end */
    f->cli.conn = NULL;
    run_until(f, &f->srv.closed);
    assert_int_equal(f->srv.status, PL_ERR_ABORTED);
    assert_int_equal(f->srv.eof, 1);
    assert_int_equal(f->cli.delivered, 1); /* once */
}

/* Messages of 1 MiB over TCP: sealed records are written while the rest
 * of a message is still being sealed (the engine's drain hook, the TCP
 * link's write_now); everything arrives, in order, and the sender hears
 * PL_SESSION_DRAINED once its output is written. */
static void test_large_messages_over_tcp(void **state)
{
    fixture *f = *state;
    open_paired_session(f);
    const size_t big = 1u << 20;
    uint8_t *buf = malloc(big);
    assert_non_null(buf);
    for (int m = 0; m < 3; m++) {
        for (size_t i = 0; i < big; i++)
            buf[i] = (uint8_t)(i * 13 + (size_t)m);
        assert_int_equal(pl_session_send(f->cli.conn, buf, big), PL_OK);
    }
    int64_t end = now_ms() + 10000;
    while ((f->srv.messages < 3 || !f->cli.drained) && now_ms() < end)
        assert_true(pl_loop_iterate(f->loop, 100) >= 0);
    assert_int_equal(f->srv.messages, 3);
    assert_int_equal(f->srv.bytes, 3 * big);
    assert_int_equal(f->srv.last_len, sizeof f->srv.last);
    assert_memory_equal(f->srv.last, buf, sizeof f->srv.last); /* the third message begins so */
    assert_true(f->cli.drained >= 1);
    assert_int_equal(pl_session_pending(f->cli.conn), 0);
    assert_int_equal(f->cli.interrupted + f->srv.interrupted, 0);
    free(buf);
}

/* A message sent outside the session's callbacks on a TCP link goes to
 * the socket inside pl_session_send(); PL_SESSION_DRAINED still comes
 * from the loop. */
static void test_send_writes_at_once(void **state)
{
    fixture *f = *state;
    open_paired_session(f);
    int64_t end = now_ms() + 2000; /* let the handshake's last writes and DRAINED settle */
    while (pl_session_pending(f->cli.conn) && now_ms() < end)
        assert_true(pl_loop_iterate(f->loop, 10) >= 0);
    int drained = f->cli.drained;
    assert_int_equal(pl_session_send(f->cli.conn, "now", 3), PL_OK);
    assert_int_equal(pl_session_pending(f->cli.conn), 0); /* handed to the kernel */
    assert_int_equal(f->cli.drained, drained);             /* not from inside the call */
    /* Once per loop iteration: a second send before the loop ran waits
     * for it, and a burst of small messages leaves in one write. */
    assert_int_equal(pl_session_send(f->cli.conn, "later", 5), PL_OK);
    assert_true(pl_session_pending(f->cli.conn) > 0);
    end = now_ms() + 5000;
    while ((f->srv.messages < 2 || f->cli.drained < drained + 1) && now_ms() < end)
        assert_true(pl_loop_iterate(f->loop, 100) >= 0);
    assert_int_equal(f->srv.messages, 2);
    assert_int_equal(f->srv.last_len, 5);
    assert_memory_equal(f->srv.last, "later", 5);
    assert_int_equal(pl_session_pending(f->cli.conn), 0);
    assert_true(f->cli.drained >= drained + 1);
}

static void test_backpressure_when_receiver_stops(void **state)
{
    fixture *f = *state;
    open_paired_session(f);
    const size_t limit = 64 * 1024, msg = 4000;
    assert_int_equal(pl_session_set_send_limit(f->cli.conn, limit), PL_OK);
    /* Liveness probes far shorter than the pause: a paused receiver must not look dead. */
    assert_int_equal(pl_session_set_keepalive(f->cli.conn, 50), PL_OK);
    assert_int_equal(pl_session_set_keepalive(f->srv.conn, 50), PL_OK);
    assert_int_equal(pl_session_pause(f->srv.conn, 1), PL_OK);
    uint8_t buf[4000];
    memset(buf, 'q', sizeof buf);
    /* Send as fast as allowed for 500 ms while the receiver takes nothing. */
    int sent = 0, again = 0;
    size_t max_unacked = 0, max_pending = 0;
    int64_t end = now_ms() + 500;
    while (now_ms() < end) {
        int rc = pl_session_send(f->cli.conn, buf, msg);
        if (rc == PL_OK)
            sent++;
        else {
            assert_int_equal(rc, PL_ERR_AGAIN);
            again++;
        }
        if (pl_session_unacked(f->cli.conn) > max_unacked)
            max_unacked = pl_session_unacked(f->cli.conn);
        if (pl_session_pending(f->cli.conn) > max_pending)
            max_pending = pl_session_pending(f->cli.conn);
        assert_true(pl_loop_iterate(f->loop, 1) >= 0);
    }
    assert_true(again > 0);                     /* the sender was told to wait */
    assert_int_equal(f->srv.messages, 0);       /* nothing delivered while paused */
    assert_int_equal(sent, (int)(limit / msg)); /* exactly what fits, nothing lost */
    assert_true(max_unacked <= limit);
    assert_true(max_pending <= limit + limit / 8); /* sealed copies: headers, seq and tags on top */
    assert_int_equal(f->cli.acked, 0);
    assert_int_equal(f->cli.interrupted + f->srv.interrupted, 0);
    /* The receiver takes messages again: everything arrives, acks free the sender. */
    assert_int_equal(pl_session_pause(f->srv.conn, 0), PL_OK);
    int64_t t = now_ms() + 10000;
    while ((f->srv.messages < sent || f->cli.acked < (size_t)sent) && now_ms() < t)
        assert_true(pl_loop_iterate(f->loop, 100) >= 0);
    assert_int_equal(f->srv.messages, sent);
    assert_int_equal(f->srv.bytes, (size_t)sent * msg);
    assert_int_equal(f->cli.acked, (size_t)sent);
    assert_int_equal(pl_session_unacked(f->cli.conn), 0);
    assert_int_equal(f->cli.interrupted + f->srv.interrupted, 0);
    assert_int_equal(pl_session_send(f->cli.conn, buf, msg), PL_OK);
}

/*
 * An echo server that follows session.h's backpressure pattern - on
 * PL_ERR_AGAIN keep the message and pause; on PL_SESSION_ACKED send it
 * again and unpause - against a client that sends in bulk and reads the
 * echoes. The paused server must still read the client's Acks, or both
 * wait for ever (before, it stopped reading: 31 sent, 15 echoed, stuck).
 */
typedef struct echo {
    pl_session *conn;
    uint8_t held[4000];
    size_t held_len;
    int holding, pauses, bad;
} echo;

static void on_echo(pl_session *c, pl_session_event ev, int status, const void *data, size_t len, void *ud)
{
    echo *e = ud;
    if (ev == PL_SESSION_INTERRUPTED || ev == PL_SESSION_CLOSED)
        e->bad++;
    if (ev == PL_SESSION_MESSAGE) {
        if (e->holding || len > sizeof e->held) {
            e->bad++; /* a message while paused */
            return;
        }
        int rc = pl_session_send(c, data, len);
        if (rc == PL_ERR_AGAIN) {
            memcpy(e->held, data, len);
            e->held_len = len;
            e->holding = 1;
            e->pauses++;
            assert_int_equal(pl_session_pause(c, 1), PL_OK);
        } else if (rc != PL_OK) {
            e->bad++;
        }
    } else if (ev == PL_SESSION_ACKED && e->holding) {
        int rc = pl_session_send(c, e->held, e->held_len);
        if (rc == PL_OK) {
            e->holding = 0;
            assert_int_equal(pl_session_pause(c, 0), PL_OK);
        } else if (rc != PL_ERR_AGAIN) {
            e->bad++;
        }
    }
}

typedef struct bulk {
    uint32_t next_echo;
    int bad;
} bulk;

static void fill(uint8_t *buf, size_t len, uint32_t idx)
{
    buf[0] = (uint8_t)(idx >> 24);
    buf[1] = (uint8_t)(idx >> 16);
    buf[2] = (uint8_t)(idx >> 8);
    buf[3] = (uint8_t)idx;
    for (size_t k = 4; k < len; k++)
        buf[k] = (uint8_t)(idx * 7 + k);
}

static void on_bulk(pl_session *c, pl_session_event ev, int status, const void *data, size_t len, void *ud)
{
    bulk *b = ud;
    if (ev == PL_SESSION_INTERRUPTED || ev == PL_SESSION_CLOSED)
        b->bad++;
    if (ev != PL_SESSION_MESSAGE)
        return;
    uint8_t want[4000];
    fill(want, sizeof want, b->next_echo);
    if (len != sizeof want || memcmp(data, want, len) != 0)
        b->bad++;
    b->next_echo++;
}

static void test_echo_with_backpressure_does_not_deadlock(void **state)
{
    fixture *f = *state;
    open_paired_session(f);
    /* Below what the client leaves unacknowledged before it Acks (32 KiB
     * or 16 messages): the server's echoes do meet the limit. */
    const size_t limit = 32 * 1024;
    const uint32_t n = 3000; /* 12 MB each way, ~370 times the limit */
    assert_int_equal(pl_session_set_send_limit(f->cli.conn, limit), PL_OK);
    assert_int_equal(pl_session_set_send_limit(f->srv.conn, limit), PL_OK);
    echo e = {.conn = f->srv.conn};
    bulk b = {0};
    pl_session_set_callback(f->srv.conn, on_echo, &e);
    pl_session_set_callback(f->cli.conn, on_bulk, &b);
    uint8_t buf[4000];
    uint32_t sent = 0;
    int64_t end = now_ms() + 30000;
    while (b.next_echo < n && now_ms() < end && !b.bad && !e.bad) {
        while (sent < n) {
            fill(buf, sizeof buf, sent);
            int rc = pl_session_send(f->cli.conn, buf, sizeof buf);
            if (rc == PL_ERR_AGAIN)
                break; /* the bulk client simply tries again after the next loop turn */
            assert_int_equal(rc, PL_OK);
            sent++;
        }
        assert_true(pl_loop_iterate(f->loop, 10) >= 0);
    }
    assert_int_equal(e.bad, 0);
    assert_int_equal(b.bad, 0);
    assert_int_equal(b.next_echo, n); /* every echo, in order, none twice */
    assert_true(e.pauses > 0);        /* the pattern was exercised */
    assert_false(e.holding);
    assert_true(pl_session_unacked(f->srv.conn) <= limit);
}

/* A paused receiver on a byte channel bounds its input: the pipe is told
 * to stop (PL_ERR_AGAIN) and to go on (input_ready), and nothing is lost. */
typedef struct counter {
    int messages, bad, open;
    uint32_t next;
} counter;

static void on_count(pl_session *c, pl_session_event ev, int status, const void *data, size_t len, void *ud)
{
    counter *k = ud;
    if (ev == PL_SESSION_OPEN)
        k->open++;
    if (ev == PL_SESSION_CLOSED && status != PL_OK)
        k->bad++;
    if (ev != PL_SESSION_MESSAGE)
        return;
    uint8_t want[4000];
    fill(want, sizeof want, k->next);
    if (len != sizeof want || memcmp(data, want, len) != 0)
        k->bad++;
    k->next++;
    k->messages++;
}

static void test_channel_input_is_bounded(void **state)
{
    fixture *f = *state;
    static const pl_channel_ops ops = {sizeof(pl_channel_ops), pipe_write, pipe_close, pipe_input_ready};
    pipe_end ie = {0}, re = {0};
    counter k = {0};
    ie.other = &re;
    re.other = &ie;
    ie.budget = 16384; /* a pipe that takes 16 KiB per write */
    assert_int_equal(pl_session_new_channel(f->cli_node, &ops, &ie, PL_ROLE_INITIATOR, "aware", on_conn,
                                         &f->cli, &ie.self), PL_OK);
    assert_int_equal(pl_session_new_channel(f->srv_node, &ops, &re, PL_ROLE_RESPONDER, "aware", on_count, &k,
                                         &re.self), PL_OK);
    assert_int_equal(pl_session_set_code(ie.self, "abc-42"), PL_OK);
    assert_int_equal(pl_session_set_code(re.self, "abc-42"), PL_OK);
    /* The sender may have 1 MiB unacknowledged; the receiver holds at most 16 KiB. */
    assert_int_equal(pl_session_set_send_limit(ie.self, 1024 * 1024), PL_OK);
    assert_int_equal(pl_session_set_receive_limit(re.self, 16 * 1024), PL_OK);
    run_until(f, &f->cli.open);
    run_until(f, &k.open);
    assert_int_equal(pl_session_pause(re.self, 1), PL_OK);
    const uint32_t n = 200; /* 800 KB */
    uint8_t buf[4000];
    for (uint32_t i = 0; i < n; i++) {
        fill(buf, sizeof buf, i);
        assert_int_equal(pl_session_send(ie.self, buf, sizeof buf), PL_OK);
    }
    int64_t end = now_ms() + 300;
    while (now_ms() < end) {
        pl_session_channel_writable(ie.self); /* the pipe has room: only the reader can stop it */
        assert_true(pl_loop_iterate(f->loop, 10) >= 0);
    }
    assert_int_equal(k.messages, 0);   /* paused: nothing delivered */
    assert_true(ie.refused > 0);       /* the pipe was told to stop */
    assert_true(pl_session_pending(ie.self) > 700 * 1000); /* and most of it still waits with the sender */
    assert_int_equal(pl_session_pause(re.self, 0), PL_OK);
    end = now_ms() + 10000;
    while ((k.messages < (int)n || f->cli.acked < n) && now_ms() < end && !k.bad) {
        pl_session_channel_writable(ie.self);
        pl_session_channel_writable(re.self);
        assert_true(pl_loop_iterate(f->loop, 10) >= 0);
    }
    assert_int_equal(k.bad, 0);
    assert_int_equal(k.messages, n);   /* all of it, in order, once */
    assert_int_equal(f->cli.acked, n);
    assert_true(re.readied > 0);       /* and told to go on */
    assert_int_equal(f->cli.interrupted, 0);
    pl_session_free(ie.self);
    pl_session_free(re.self);
}

/* A receiver that pauses in the middle of a stream, several times, with the
 * rest of a read kept back each time: order and content survive. */
typedef struct pauser {
    fixture *f;
    pl_timeout *resume;
    uint32_t next;
    int pauses, bad;
} pauser;

static void pauser_resume(pl_timeout *t, void *ud)
{
    pauser *p = ud;
    pl_session_pause(p->f->srv.conn, 0);
}

static void on_pausing(pl_session *c, pl_session_event ev, int status, const void *data, size_t len, void *ud)
{
    pauser *p = ud;
    if (ev == PL_SESSION_INTERRUPTED || (ev == PL_SESSION_CLOSED && status != PL_OK))
        p->bad++;
    if (ev != PL_SESSION_MESSAGE)
        return;
    const uint8_t *b = data;
    uint32_t idx = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
    for (size_t k = 4; k < len; k++)
        if (b[k] != (uint8_t)(idx + k))
            p->bad++;
    if (len != 3000 || idx != p->next)
        p->bad++;
    p->next++;
    if (p->next % 7 == 0) { /* in the middle of a read: the rest is kept */
        assert_int_equal(pl_session_pause(c, 1), PL_OK);
        p->pauses++;
        p->f->poll->timeout_update(p->resume, 2);
    }
}

static void test_pause_mid_stream_keeps_order(void **state)
{
    fixture *f = *state;
    open_paired_session(f);
    pauser p = {.f = f};
    p.resume = f->poll->timeout_new(f->poll, -1, pauser_resume, &p);
    pl_session_set_callback(f->srv.conn, on_pausing, &p);
    const uint32_t n = 700;
    uint8_t buf[3000];
    uint32_t sent = 0;
    int64_t end = now_ms() + 20000;
    while ((p.next < n) && now_ms() < end && !p.bad) {
        while (sent < n) {
            buf[0] = (uint8_t)(sent >> 24);
            buf[1] = (uint8_t)(sent >> 16);
            buf[2] = (uint8_t)(sent >> 8);
            buf[3] = (uint8_t)sent;
            for (size_t k = 4; k < sizeof buf; k++)
                buf[k] = (uint8_t)(sent + k);
            int rc = pl_session_send(f->cli.conn, buf, sizeof buf);
            if (rc == PL_ERR_AGAIN)
                break;
            assert_int_equal(rc, PL_OK);
            sent++;
        }
        assert_true(pl_loop_iterate(f->loop, 10) >= 0);
    }
    assert_int_equal(p.bad, 0);
    assert_int_equal(p.next, n);
    assert_true(p.pauses >= 90);
    assert_int_equal(f->cli.interrupted, 0);
    f->poll->timeout_free(p.resume);
}

static void test_abort_reaches_the_peer(void **state)
{
    fixture *f = *state;
    open_paired_session(f);
    assert_int_equal(pl_session_send(f->cli.conn, "bye", 3), PL_OK);
    run_until(f, &f->srv.messages);
    pl_session_free(f->cli.conn); /* abort: the peer must not wait to resume */
    f->cli.conn = NULL;
    run_until(f, &f->srv.closed);
    assert_int_equal(f->srv.status, PL_ERR_ABORTED);
    assert_int_equal(f->srv.interrupted, 0);
}

/* Both peers listen, and dial each other in the same loop turn. */
typedef struct dialer {
    pl_keystore *ks;
    pl_node *node;
    pl_listener *l;
    side dial, acc;
    int accepted;
} dialer;

static void on_dial_accept(pl_listener *l, pl_session *c, void *ud)
{
    dialer *d = ud;
    d->accepted++;
    assert_null(d->acc.conn);
    d->acc.conn = c;
    pl_session_set_callback(c, on_conn, &d->acc);
}

static void dial(fixture *f, dialer *from, const char *name, uint16_t port, const char *code)
{
    pl_address a = v4("127.0.0.1");
    pl_service svc = {name, "_peerlink._tcp", "local", "localhost", port, NULL, 1, &a};
    memset(&from->dial, 0, sizeof from->dial);
    assert_int_equal(pl_connect(from->node, &svc, 5000, on_conn, &from->dial, &from->dial.conn), PL_OK);
    if (code)
        assert_int_equal(pl_session_set_code(from->dial.conn, code), PL_OK);
}

static void undial(dialer *d)
{
    pl_session_free(d->dial.conn);
    pl_session_free(d->acc.conn);
    memset(&d->dial, 0, sizeof d->dial);
    memset(&d->acc, 0, sizeof d->acc);
    d->accepted = 0;
}

static void test_simultaneous_dial_leaves_one_session(void **state)
{
    fixture *f = *state;
    dialer A = {0}, B = {0};
    A.ks = f->cli_ks;
    B.ks = f->srv_ks;
    A.node = f->cli_node;
    B.node = f->srv_node;
    assert_int_equal(pl_listener_new(A.node, 0, on_dial_accept, &A, &A.l), PL_OK);
    assert_int_equal(pl_listener_new(B.node, 0, on_dial_accept, &B, &B.l), PL_OK);
    /* Each pairs with the other's listener: a pairing is one way (A's
     * responder "b" is not an initiator of A's, and B's name for A is
     * A's claim, which never selects a key when B dials). */
    const char *host = "a";
    assert_int_equal(pl_listener_set_instance(A.l, host), PL_OK);
    assert_int_equal(pl_listener_set_instance(B.l, "b"), PL_OK);
    assert_int_equal(pl_listener_set_pairing(A.l, CODE, 0, 3), PL_OK);
    assert_int_equal(pl_listener_set_pairing(B.l, CODE, 0, 3), PL_OK);
    uint16_t pa = pl_listener_port(A.l), pb = pl_listener_port(B.l);
    dial(f, &A, "b", pb, CODE);
    run_until(f, &A.dial.open);
    run_until(f, &B.accepted);
    undial(&A);
    undial(&B);
    dial(f, &B, host, pa, CODE);
    run_until(f, &B.dial.open);
    run_until(f, &A.accepted);
    undial(&A);
    undial(&B);

    uint8_t ida[PL_ID_SIZE], idb[PL_ID_SIZE];
    assert_int_equal(pl_keystore_identity(A.ks, ida), PL_OK);
    assert_int_equal(pl_keystore_identity(B.ks, idb), PL_OK);
    dialer *low = memcmp(ida, idb, PL_ID_SIZE) < 0 ? &A : &B, *high = low == &A ? &B : &A;
    for (int round = 0; round < 5; round++) {
        /* Both dial at once; neither handshake can finish before the other has begun. */
        dial(f, &A, "b", pb, NULL);
        dial(f, &B, host, pa, NULL);
        int64_t end = now_ms() + 1000;
        while (now_ms() < end)
            assert_true(pl_loop_iterate(f->loop, 20) >= 0);
        /* One session: dialled by the smaller id, accepted by the other. */
        assert_int_equal(low->dial.open, 1);
        assert_int_equal(low->dial.closed, 0);
        assert_int_equal(high->accepted, 1);
        assert_int_equal(high->dial.open, 0);
        assert_int_equal(high->dial.closed, 1);
        assert_int_equal(high->dial.status, PL_ERR_DUPLICATE);
        assert_int_equal(low->accepted, 0);
        /* and it carries messages both ways */
        assert_int_equal(pl_session_send(low->dial.conn, "ping", 4), PL_OK);
        run_until(f, &high->acc.messages);
        assert_int_equal(pl_session_send(high->acc.conn, "pong", 4), PL_OK);
        run_until(f, &low->dial.messages);
        undial(&A);
        undial(&B);
    }
    pl_listener_free(A.l);
    pl_listener_free(B.l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_exchange_and_clean_close, setup, teardown),
        cmocka_unit_test_setup_teardown(test_addresses_tried_in_turn, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_address_answers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_message_size_bound, setup, teardown),
        cmocka_unit_test_setup_teardown(test_listener_survives_1000_silent_connections, setup, teardown),
        cmocka_unit_test_setup_teardown(test_garbage_peer_is_dropped_silently, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pair_then_reconnect_without_code, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flood_does_not_stall_a_reconnect, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_code_fails_on_both_sides, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_paired_without_code, setup, teardown),
        cmocka_unit_test_setup_teardown(test_session_over_byte_channel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_session_over_socketpair_fd, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secret_txt_and_exporter, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delivered_waits_for_the_application, setup, teardown),
        cmocka_unit_test_setup_teardown(test_backpressure_when_receiver_stops, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pause_mid_stream_keeps_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_echo_with_backpressure_does_not_deadlock, setup, teardown),
        cmocka_unit_test_setup_teardown(test_channel_input_is_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_abort_reaches_the_peer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_large_messages_over_tcp, setup, teardown),
        cmocka_unit_test_setup_teardown(test_send_writes_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_simultaneous_dial_leaves_one_session, setup, teardown),
    };
    return cmocka_run_group_tests_name("conn", tests, NULL, NULL);
}
