/* SPDX-License-Identifier: ISC */
/*
 * Sessions resumed over every kind of link, in one process with real
 * loop objects: application pipes in memory (pl_session_new_channel(),
 * pl_listener_add_channel()), descriptors (socketpairs: pl_session_new_fd(),
 * pl_listener_add_fd()), the library's in-memory link (inproc), and a
 * TCP dialler (pl_connect()) whose
 * connections reach a detached listener as pipes, the way a Linux
 * accessory's TCP connection reaches an iPhone's Network.framework
 * listener. Each link is cut several times while both sides send; every
 * message must arrive exactly once and in order, each side must see the
 * session resumed (not reset), and both must end cleanly.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <peerlink/peerlink.h>

#include "../helpers/sockpipe.h"
#include "backends/inproc/inproc.h"

#define CODE "135790"
#define INSTANCE "aware"
#define MSG 1500
#define N_MSGS 400
#define MAX_LINKS 16

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void fill(uint8_t *b, uint32_t idx, int from_cli)
{
    b[0] = (uint8_t)(idx >> 24);
    b[1] = (uint8_t)(idx >> 16);
    b[2] = (uint8_t)(idx >> 8);
    b[3] = (uint8_t)idx;
    for (size_t k = 4; k < MSG; k++)
        b[k] = (uint8_t)(idx * 31 + k + (from_cli ? 7 : 0));
}

/* One side of the session under test. */
typedef struct side {
    pl_session *conn;
    int from_cli;      /* what its peer's messages look like */
    uint32_t next_in;  /* the index of the next message expected */
    uint32_t sent;
    int open, interrupted, resumed, resets, closed, status, bad, eof;
    int linked; /* a link carries the session now (as far as the callbacks told) */
} side;

static void on_side(pl_session *c, pl_session_event ev, int status, const void *data, size_t len, void *ud)
{
    side *s = ud;
    (void)c;
    switch (ev) {
    case PL_SESSION_OPEN:
        s->open++;
        s->linked = 1;
        break;
    case PL_SESSION_INTERRUPTED:
        s->interrupted++;
        s->linked = 0;
        break;
    case PL_SESSION_RESUMED:
        s->resumed++;
        s->linked = 1;
        if (status != PL_OK)
            s->resets++;
        break;
    case PL_SESSION_PEER_EOF: s->eof++; break;
    case PL_SESSION_CLOSED:
        s->closed++;
        s->status = status;
        break;
    case PL_SESSION_MESSAGE: {
        uint8_t want[MSG];
        fill(want, s->next_in, s->from_cli);
        if (len != MSG || memcmp(data, want, MSG) != 0)
            s->bad++; /* lost, repeated, reordered or altered */
        s->next_in++;
        break;
    }
    default: break;
    }
}

typedef struct fixture {
    pl_loop *loop;
    const pl_poll *poll;
    pl_keystore *cli_ks, *srv_ks;
    pl_node *cli_node, *srv_node;
    pl_listener *l;
    side cli, srv;
} fixture;

static void on_accept(pl_listener *l, pl_session *c, void *ud)
{
    fixture *f = ud;
    (void)l;
    if (f->srv.conn) {
        pl_session_free(c); /* one session only: a second one would be a failure to resume */
        f->srv.bad++;
        return;
    }
    f->srv.conn = c;
    f->srv.linked = 1;
    pl_session_set_callback(c, on_side, &f->srv);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    assert_int_equal(pl_loop_new(&f->loop), PL_OK);
    f->poll = pl_loop_get_poll(f->loop);
    assert_int_equal(pl_keystore_new_memory(&f->cli_ks), PL_OK);
    assert_int_equal(pl_keystore_new_memory(&f->srv_ks), PL_OK);
    assert_int_equal(pl_node_new(f->poll, f->cli_ks, &f->cli_node), PL_OK);
    assert_int_equal(pl_node_new(f->poll, f->srv_ks, &f->srv_node), PL_OK);
    assert_int_equal(pl_listener_new_detached(f->srv_node, on_accept, f, &f->l), PL_OK);
    assert_int_equal(pl_listener_set_instance(f->l, INSTANCE), PL_OK);
    assert_int_equal(pl_listener_set_pairing(f->l, CODE, 0, 0), PL_OK);
    assert_int_equal(pl_listener_set_resume(f->l, 30000, 0), PL_OK);
    f->cli.from_cli = 0;
    f->srv.from_cli = 1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    pl_session_free(f->cli.conn);
    pl_session_free(f->srv.conn);
    pl_listener_free(f->l);
    for (int i = 0; i < 5; i++)
        pl_loop_iterate(f->loop, 1);
    pl_node_free(f->cli_node);
    pl_node_free(f->srv_node);
    pl_keystore_free(f->cli_ks);
    pl_keystore_free(f->srv_ks);
    pl_loop_free(f->loop);
    free(f);
    return 0;
}

/* Send what the send limit lets through, up to message limit (the last
 * one ends the direction). */
static void pump(side *s, uint32_t limit)
{
    uint8_t buf[MSG];
    while (s->sent < limit) {
        fill(buf, s->sent, s->from_cli ? 0 : 1); /* ours look as our peer expects them */
        int rc = pl_session_send(s->conn, buf, MSG);
        if (rc == PL_ERR_AGAIN)
            return;
        assert_int_equal(rc, PL_OK);
        s->sent++;
        if (s->sent == N_MSGS)
            assert_int_equal(pl_session_shutdown(s->conn), PL_OK);
    }
}

/* The exchange: both send N_MSGS in cuts + 1 rounds; once both sides
 * have sent a round's messages, cut(f) breaks the link while they are
 * still on their way; relink(f) gives the interrupted initiator a new
 * link (pl_connect dials again by itself: NULL). */
typedef void (*cut_fn)(fixture *f);
typedef void (*relink_fn)(fixture *f);

static void run_exchange(fixture *f, int cuts, cut_fn cut, relink_fn relink)
{
    int done_cuts = 0, handled = 0;
    int64_t end = now_ms() + 30000;
    while ((f->cli.closed == 0 || f->srv.closed == 0) && now_ms() < end && !f->cli.bad && !f->srv.bad) {
        uint32_t limit = done_cuts < cuts ? (uint32_t)(N_MSGS * (done_cuts + 1) / (cuts + 1)) : N_MSGS;
        if (f->cli.conn && !f->cli.closed)
            pump(&f->cli, limit);
        if (f->srv.conn && !f->srv.closed)
            pump(&f->srv, limit);
        if (done_cuts < cuts && f->srv.conn && f->cli.sent == limit && f->srv.sent == limit && f->cli.linked &&
            f->srv.linked) {
            cut(f);
            done_cuts++;
        }
        if (relink && f->cli.interrupted > handled) {
            handled = f->cli.interrupted; /* each PL_SESSION_INTERRUPTED asks for one new link */
            relink(f);
        }
        assert_true(pl_loop_iterate(f->loop, 5) >= 0);
    }
    assert_int_equal(f->cli.bad, 0);
    assert_int_equal(f->srv.bad, 0);
    assert_int_equal(done_cuts, cuts);
    assert_int_equal(f->cli.next_in, N_MSGS); /* everything, once, in order */
    assert_int_equal(f->srv.next_in, N_MSGS);
    assert_int_equal(f->cli.closed, 1);
    assert_int_equal(f->srv.closed, 1);
    assert_int_equal(f->cli.status, PL_OK); /* both directions delivered */
    assert_int_equal(f->srv.status, PL_OK);
    assert_true(f->cli.resumed >= cuts);    /* resumed after every cut ... */
    assert_true(f->srv.resumed >= cuts);
    assert_int_equal(f->cli.resets + f->srv.resets, 0); /* ... never as a new session */
    assert_int_equal(f->cli.open, 1);
    assert_int_equal(f->srv.open, 0); /* accepted once (no OPEN event for accepted sessions) */
}

/* ---------------------------------------------------------------- pipes in memory */

typedef struct pipe_end {
    pl_channel *ch; /* NULL once closed */
    struct pipe_end *other;
} pipe_end;

static pipe_end ends[MAX_LINKS][2]; /* [k][0]: initiator's end of the k-th link; [k][1]: responder's */
static int n_links;

static long pipe_write(void *ctx, const uint8_t *data, size_t len)
{
    pipe_end *p = ctx;
    if (!p->other->ch)
        return -1; /* the other end is gone */
    int rc = pl_channel_input(p->other->ch, data, len);
    if (rc == PL_ERR_AGAIN)
        return 0; /* its input_ready makes us writable again */
    return rc == PL_OK ? (long)len : -1;
}

static void pipe_close(void *ctx)
{
    pipe_end *p = ctx;
    p->ch = NULL;
    if (p->other->ch)
        pl_channel_input(p->other->ch, NULL, 0); /* the other end reads the end */
}

static void pipe_input_ready(void *ctx)
{
    pipe_end *p = ctx;
    if (p->other->ch)
        pl_channel_writable(p->other->ch);
}

static const pl_channel_ops pipe_ops = {sizeof(pl_channel_ops), pipe_write, pipe_close, pipe_input_ready};

/* The responder's end of a new pipe goes to the listener. */
static pipe_end *new_pipe(fixture *f)
{
    assert_true(n_links < MAX_LINKS);
    pipe_end *e = ends[n_links++];
    memset(e, 0, 2 * sizeof *e);
    e[0].other = &e[1];
    e[1].other = &e[0];
    assert_int_equal(pl_listener_add_channel(f->l, &pipe_ops, &e[1], &e[1].ch), PL_OK);
    return e;
}

static void pipe_cut(fixture *f)
{
    (void)f;
    pipe_end *e = ends[n_links - 1];
    /* Both ends notice: what was in flight is lost. */
    if (e[0].ch)
        pl_channel_fail(e[0].ch, PL_ERR_CLOSED);
    if (e[1].ch)
        pl_channel_fail(e[1].ch, PL_ERR_CLOSED);
}

static void pipe_relink(fixture *f)
{
    assert_null(pl_session_channel(f->cli.conn)); /* interrupted: no pipe */
    pipe_end *e = new_pipe(f);
    assert_int_equal(pl_session_attach_channel(f->cli.conn, &pipe_ops, &e[0]), PL_OK);
    e[0].ch = pl_session_channel(f->cli.conn);
    assert_non_null(e[0].ch);
    assert_int_equal(pl_session_attach_channel(f->cli.conn, &pipe_ops, &e[0]), PL_ERR_STATE); /* one at a time */
}

/* The initiator's session over a first pipe, pairing with CODE. */
static pipe_end *start_pipe_session(fixture *f)
{
    n_links = 0;
    pipe_end *e = new_pipe(f);
    assert_int_equal(pl_session_new_channel(f->cli_node, &pipe_ops, &e[0], PL_ROLE_INITIATOR, INSTANCE, on_side,
                                         &f->cli, &f->cli.conn), PL_OK);
    e[0].ch = pl_session_channel(f->cli.conn);
    assert_non_null(e[0].ch);
    assert_int_equal(pl_session_set_code(f->cli.conn, CODE), PL_OK);
    return e;
}

static void test_channel_session_resumes(void **state)
{
    fixture *f = *state;
    start_pipe_session(f);
    assert_int_equal(pl_session_set_resume(f->cli.conn, 30000), PL_OK);
    run_exchange(f, 5, pipe_cut, pipe_relink);
    assert_true(n_links >= 6);
    /* A link still attached when the session is over was released. */
    for (int k = 0; k < n_links; k++)
        assert_true(ends[k][0].ch == NULL && ends[k][1].ch == NULL);
}

/* Freeing the node frees what it still has: the listener and both open
 * sessions go, and every pipe is released (ops->close); ASan and
 * Valgrind check that nothing leaks. */
static void test_node_free_releases_sessions(void **state)
{
    fixture *f = *state;
    start_pipe_session(f);
    int64_t end = now_ms() + 10000;
    while ((!f->srv.conn || !f->cli.open) && now_ms() < end)
        pl_loop_iterate(f->loop, 5);
    assert_non_null(f->srv.conn);
    assert_int_equal(f->cli.open, 1);
    assert_int_equal(pl_session_send(f->cli.conn, "x", 1), PL_OK); /* unacknowledged: dropped with the session */
    pl_node_free(f->cli_node);
    pl_node_free(f->srv_node); /* with f->l */
    f->cli_node = f->srv_node = NULL;
    f->cli.conn = f->srv.conn = NULL;
    f->l = NULL;
    for (int k = 0; k < n_links; k++)
        assert_true(ends[k][0].ch == NULL && ends[k][1].ch == NULL);
    assert_int_equal(f->cli.closed + f->srv.closed, 0); /* no callback after a free */
    assert_int_equal(pl_node_new(NULL, f->cli_ks, &f->cli_node), PL_ERR_INVALID);
    assert_int_equal(pl_node_new(f->poll, NULL, &f->cli_node), PL_ERR_INVALID);
    pl_poll unsized = *f->poll; /* a vtable must say its size (its version) */
    unsized.size = 0;
    assert_int_equal(pl_node_new(&unsized, f->cli_ks, &f->cli_node), PL_ERR_INVALID);
    assert_null(f->cli_node);
}

/* The application's pipe operations must say their size too. */
static void test_channel_ops_need_size(void **state)
{
    fixture *f = *state;
    pl_channel_ops ops = pipe_ops;
    ops.size = 0;
    pl_session *c = NULL;
    assert_int_equal(pl_session_new_channel(f->cli_node, &ops, NULL, PL_ROLE_INITIATOR, INSTANCE, on_side, &f->cli, &c),
                     PL_ERR_INVALID);
    pl_channel *ch = NULL;
    assert_int_equal(pl_listener_add_channel(f->l, &ops, NULL, &ch), PL_ERR_INVALID);
    assert_null(c);
    assert_null(ch);
}

/* Without pl_session_set_resume(), a pipe session ends with its pipe, as before. */
static void test_channel_session_not_resumable_by_default(void **state)
{
    fixture *f = *state;
    pipe_end *e = start_pipe_session(f);
    int64_t end = now_ms() + 10000;
    while (!f->srv.conn && now_ms() < end)
        pl_loop_iterate(f->loop, 5);
    assert_non_null(f->srv.conn);
    pipe_cut(f);
    end = now_ms() + 10000;
    while (!f->cli.closed && now_ms() < end)
        pl_loop_iterate(f->loop, 5);
    assert_int_equal(f->cli.closed, 1);
    assert_int_equal(f->cli.status, PL_ERR_CLOSED);
    assert_int_equal(f->cli.interrupted, 0);
    assert_int_equal(pl_session_attach_channel(f->cli.conn, &pipe_ops, &e[0]), PL_ERR_STATE);
    /* The accepting side waits to be resumed (the listener's window), as over TCP. */
    assert_int_equal(f->srv.interrupted, 1);
}

/* ---------------------------------------------------------------- in memory (inproc) */

static pl_link *ip_end[MAX_LINKS]; /* the initiator's end of the k-th link (freed with it) */

/* A new in-memory link: its responder's end goes to the listener. */
static pl_link *ip_new_pair(fixture *f)
{
    assert_true(n_links < MAX_LINKS);
    pl_link *a = NULL, *b = NULL;
    assert_int_equal(pl__inproc_pair(f->poll, &a, &b), PL_OK);
    assert_int_equal(pl__listener_take(f->l, b), PL_OK);
    ip_end[n_links++] = a;
    return a;
}

static void ip_cut(fixture *f)
{
    (void)f;
    pl__inproc_cut(ip_end[n_links - 1], PL_ERR_IO); /* the other end reads the end of its input */
}

static void ip_relink(fixture *f)
{
    assert_int_equal(pl__session_can_relink(f->cli.conn), PL_OK);
    pl__session_relink(f->cli.conn, ip_new_pair(f));
}

static void test_inproc_session_resumes(void **state)
{
    fixture *f = *state;
    n_links = 0;
    pl_link *a = ip_new_pair(f);
    assert_int_equal(pl__session_new_on(f->cli_node, a, PL_ROLE_INITIATOR, INSTANCE, on_side, &f->cli, &f->cli.conn),
                     PL_OK);
    assert_int_equal(pl_session_set_code(f->cli.conn, CODE), PL_OK);
    assert_int_equal(pl_session_set_resume(f->cli.conn, 30000), PL_OK);
    assert_int_equal(pl__session_can_relink(f->cli.conn), PL_ERR_STATE); /* not interrupted */
    run_exchange(f, 5, ip_cut, ip_relink);
    assert_int_equal(n_links, 6);
}

/* ---------------------------------------------------------------- descriptors */

static int fd_pair[MAX_LINKS][2];

static void fd_new_pair(fixture *f)
{
    assert_true(n_links < MAX_LINKS);
    int *sv = fd_pair[n_links++];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    assert_int_equal(pl_listener_add_fd(f->l, sv[1]), PL_OK);
}

static void fd_cut(fixture *f)
{
    (void)f;
    int *sv = fd_pair[n_links - 1];
    shutdown(sv[0], SHUT_RDWR); /* both ends see the end at once; the sessions still own the fds */
    shutdown(sv[1], SHUT_RDWR);
}

static void fd_relink(fixture *f)
{
    fd_new_pair(f);
    assert_int_equal(pl_session_attach_fd(f->cli.conn, fd_pair[n_links - 1][0]), PL_OK);
}

static void test_fd_session_resumes(void **state)
{
    fixture *f = *state;
    n_links = 0;
    fd_new_pair(f);
    assert_int_equal(pl_session_new_fd(f->cli_node, fd_pair[0][0], PL_ROLE_INITIATOR, INSTANCE, on_side, &f->cli,
                                    &f->cli.conn), PL_OK);
    assert_int_equal(pl_session_set_code(f->cli.conn, CODE), PL_OK);
    assert_int_equal(pl_session_set_resume(f->cli.conn, 30000), PL_OK);
    assert_int_equal(pl_session_attach_fd(f->cli.conn, 0), PL_ERR_STATE); /* not interrupted */
    run_exchange(f, 4, fd_cut, fd_relink);
}

/* ---------------------------------------------------------------- a TCP dialler, a listener of pipes */

/* The test's own TCP socket stands for Network.framework's listener: each
 * connection it accepts becomes a pipe for the detached listener. */
static sock_pipe *socks[MAX_LINKS];
static int lsock = -1;
static pl_watch *lwatch;

static void on_tcp_accept(pl_watch *w, int fd, unsigned events, void *ud)
{
    fixture *f = ud;
    (void)w;
    (void)events;
    int s = accept(fd, NULL, NULL);
    if (s < 0)
        return;
    assert_true(n_links < MAX_LINKS);
    sock_pipe *p = sock_pipe_new(f->poll, s);
    assert_non_null(p);
    pl_channel *ch = NULL;
    assert_int_equal(pl_listener_add_channel(f->l, sock_pipe_ops(), p, &ch), PL_OK);
    sock_pipe_bind(p, ch);
    socks[n_links++] = p;
}

static void sock_cut(fixture *f)
{
    /* Not linked until each side hears RESUMED: on a slow machine the next round could
     * otherwise be sent, and the cut repeated on this same dead socket, first. */
    f->cli.linked = f->srv.linked = 0;
    /* The dialler sees its TCP connection end; so does the pipe (the
     * newest one carries the session: the cut waits for both to be linked). */
    shutdown(sock_pipe_fd(socks[n_links - 1]), SHUT_RDWR);
}

static void test_tcp_dialler_resumes_into_pipe_listener(void **state)
{
    fixture *f = *state;
    n_links = 0;
    lsock = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(lsock >= 0);
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(lsock, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(lsock, 16), 0);
    socklen_t sl = sizeof sa;
    assert_int_equal(getsockname(lsock, (struct sockaddr *)&sa, &sl), 0);
    lwatch = f->poll->watch_new(f->poll, lsock, PL_WATCH_IN, on_tcp_accept, f);
    assert_non_null(lwatch);

    pl_address a = {0};
    a.family = AF_INET;
    memcpy(a.addr, &sa.sin_addr, 4);
    pl_service svc = {0};
    svc.name = INSTANCE;
    svc.port = ntohs(sa.sin_port);
    svc.addresses = &a;
    svc.n_addresses = 1;
    assert_int_equal(pl_connect(f->cli_node, &svc, 0, on_side, &f->cli, &f->cli.conn), PL_OK);
    assert_int_equal(pl_session_set_code(f->cli.conn, CODE), PL_OK);
    assert_int_equal(pl_session_set_keepalive(f->cli.conn, 0), PL_OK);
    run_exchange(f, 3, sock_cut, NULL); /* pl_connect dials again by itself */
    assert_true(n_links >= 4);
    f->poll->watch_free(lwatch);
    close(lsock);
}

/* ---------------------------------------------------------------- one pairing budget */

/*
 * Wrong-code attempts all at once, on every kind of responder one
 * keystore has: a TCP listener, a detached listener fed pipes, and
 * responder sessions over pipes each with its own code. The keystore's
 * one budget (limit 10) holds however they are spread: at most 10 codes
 * are tested, the others are told BUSY or LOCKED (or, over TCP from one
 * address, dropped past 8 handshakes at once). (Before the budget was
 * per keystore, each pipe responder had a policy of its own: every one
 * of them was tested at once.)
 */
#define ATTACKERS 12 /* per kind of responder */

typedef struct attacker {
    int closed, status;
} attacker;

static void on_attacker(pl_session *c, pl_session_event ev, int status, const void *data, size_t len, void *ud)
{
    attacker *a = ud;
    (void)c;
    (void)data;
    (void)len;
    if (ev == PL_SESSION_CLOSED) {
        a->closed = 1;
        a->status = status;
    }
}

static void test_attempt_budget_across_links(void **state)
{
    fixture *f = *state;
    static pipe_end pe[2 * ATTACKERS][2];
    static attacker att[3 * ATTACKERS];
    pl_session *conns[3 * ATTACKERS] = {0}, *responders[ATTACKERS] = {0};
    memset(pe, 0, sizeof pe);
    memset(att, 0, sizeof att);
    pl_listener *tcp = NULL;
    assert_int_equal(pl_listener_new(f->srv_node, 0, on_accept, f, &tcp), PL_OK);
    assert_int_equal(pl_listener_set_instance(tcp, INSTANCE), PL_OK);
    assert_int_equal(pl_listener_set_pairing(tcp, CODE, 0, 0), PL_OK);
    pl_address a = {0};
    a.family = AF_INET;
    a.addr[0] = 127;
    a.addr[3] = 1;
    pl_service svc = {0};
    svc.name = INSTANCE;
    svc.port = pl_listener_port(tcp);
    svc.addresses = &a;
    svc.n_addresses = 1;
    for (int i = 0; i < ATTACKERS; i++) {
        char wrong[16];
        snprintf(wrong, sizeof wrong, "%06d", 100000 + i); /* never CODE */
        /* over TCP, to the TCP listener */
        assert_int_equal(pl_connect(f->cli_node, &svc, 0, on_attacker, &att[i], &conns[i]), PL_OK);
        assert_int_equal(pl_session_set_code(conns[i], wrong), PL_OK);
        /* over a pipe, to the detached listener */
        pipe_end *e = pe[i];
        e[0].other = &e[1];
        e[1].other = &e[0];
        assert_int_equal(pl_listener_add_channel(f->l, &pipe_ops, &e[1], &e[1].ch), PL_OK);
        assert_int_equal(pl_session_new_channel(f->cli_node, &pipe_ops, &e[0], PL_ROLE_INITIATOR, INSTANCE,
                                             on_attacker, &att[ATTACKERS + i], &conns[ATTACKERS + i]), PL_OK);
        e[0].ch = pl_session_channel(conns[ATTACKERS + i]);
        assert_int_equal(pl_session_set_code(conns[ATTACKERS + i], wrong), PL_OK);
        /* over a pipe, to a responder session with a code of its own */
        e = pe[ATTACKERS + i];
        e[0].other = &e[1];
        e[1].other = &e[0];
        assert_int_equal(pl_session_new_channel(f->srv_node, &pipe_ops, &e[1], PL_ROLE_RESPONDER, INSTANCE,
                                             NULL, NULL, &responders[i]), PL_OK);
        e[1].ch = pl_session_channel(responders[i]);
        assert_int_equal(pl_session_set_code(responders[i], CODE), PL_OK);
        assert_int_equal(pl_session_new_channel(f->cli_node, &pipe_ops, &e[0], PL_ROLE_INITIATOR, INSTANCE,
                                             on_attacker, &att[2 * ATTACKERS + i], &conns[2 * ATTACKERS + i]),
                         PL_OK);
        e[0].ch = pl_session_channel(conns[2 * ATTACKERS + i]);
        assert_int_equal(pl_session_set_code(conns[2 * ATTACKERS + i], wrong), PL_OK);
    }
    int done = 0;
    int64_t end = now_ms() + 20000;
    while (done < 3 * ATTACKERS && now_ms() < end) {
        assert_true(pl_loop_iterate(f->loop, 10) >= 0);
        done = 0;
        for (int i = 0; i < 3 * ATTACKERS; i++)
            done += att[i].closed;
    }
    assert_int_equal(done, 3 * ATTACKERS);
    int tested = 0, refused = 0;
    for (int i = 0; i < 3 * ATTACKERS; i++) {
        if (att[i].status == PL_ERR_WRONG_CODE)
            tested++;
        else if (att[i].status == PL_ERR_BUSY || att[i].status == PL_ERR_LOCKED)
            refused++;
        else if (i < ATTACKERS && att[i].status == PL_ERR_CLOSED)
            refused++; /* TCP, all from 127.0.0.1: the listener holds 8 handshakes per source */
        else
            fail_msg("attacker %d ended with %s", i, pl_strerror(att[i].status));
    }
    assert_true(tested >= 1);
    assert_true(tested <= 10);  /* the keystore's budget, wherever they went */
    assert_int_equal(tested + refused, 3 * ATTACKERS);
    assert_null(f->srv.conn); /* nobody got in */
    for (int i = 0; i < 3 * ATTACKERS; i++)
        pl_session_free(conns[i]);
    for (int i = 0; i < ATTACKERS; i++)
        pl_session_free(responders[i]);
    pl_listener_free(tcp);
}

/* A browse result with no address (what the "apple" backend gives) is
 * Network.framework's to connect on Apple; here, with no Apple backend,
 * it is invalid, as before, and nothing is created. */
static void test_connect_without_addresses(void **state)
{
    fixture *f = *state;
    pl_service svc = {0};
    svc.name = INSTANCE;
    svc.type = "_peerlink._tcp";
    svc.domain = "local";
    pl_session *c = (pl_session *)&svc; /* must stay untouched */
    assert_int_equal(pl_connect(f->cli_node, &svc, 0, on_side, &f->cli, &c), PL_ERR_INVALID);
    assert_ptr_equal(c, (pl_session *)&svc);
}

/* ---------------------------------------------------------------- logs never carry a secret */

typedef struct log_capture {
    int n, leaked, interrupted, resumed, failed;
} log_capture;

static void on_log(pl_log_level level, const char *message, void *ud)
{
    log_capture *lc = ud;
    (void)level;
    lc->n++;
    if (strstr(message, CODE))
        lc->leaked++;
    for (int i = 0; i < ATTACKERS; i++) { /* the wrong codes of test_attempt_budget_across_links */
        char wrong[16];
        snprintf(wrong, sizeof wrong, "%06d", 100000 + i);
        if (strstr(message, wrong))
            lc->leaked++;
    }
    lc->interrupted += strstr(message, "interrupted") != NULL;
    lc->resumed += strstr(message, "resumed") != NULL;
    lc->failed += strstr(message, pl_strerror(PL_ERR_WRONG_CODE)) != NULL;
}

/* A pairing with a known code, cut and resumed, then wrong-code attempts,
 * all logged at DEBUG: the messages name what happened (so the check
 * below is not vacuous) and never contain a code. */
static void test_logs_never_carry_the_code(void **state)
{
    log_capture lc = {0};
    pl_set_log(PL_LOG_DEBUG, on_log, &lc);
    test_fd_session_resumes(state);
    fixture *f = *state;
    pl_session_free(f->cli.conn);
    pl_session_free(f->srv.conn);
    f->cli.conn = f->srv.conn = NULL;
    /* The pairing closed pairing on f->l (the first success does); open it again. */
    assert_int_equal(pl_listener_set_pairing(f->l, CODE, 0, 0), PL_OK);
    test_attempt_budget_across_links(state);
    pl_set_log(PL_LOG_ERROR, NULL, NULL);
    assert_true(lc.n > 0);
    assert_true(lc.interrupted > 0);
    assert_true(lc.resumed > 0);
    assert_true(lc.failed > 0);
    assert_int_equal(lc.leaked, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_channel_session_resumes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_channel_session_not_resumable_by_default, setup, teardown),
        cmocka_unit_test_setup_teardown(test_node_free_releases_sessions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_channel_ops_need_size, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fd_session_resumes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_inproc_session_resumes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tcp_dialler_resumes_into_pipe_listener, setup, teardown),
        cmocka_unit_test_setup_teardown(test_attempt_budget_across_links, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connect_without_addresses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_logs_never_carry_the_code, setup, teardown),
    };
    return cmocka_run_group_tests_name("sessions over every kind of link", tests, NULL, NULL);
}
