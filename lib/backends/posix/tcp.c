/* SPDX-License-Identifier: ISC */
/*
 * Links over POSIX sockets and file descriptors: the "tcp" link (a
 * connection this library dialled or accepted) and the "fd" link (a
 * connected descriptor the application opened: a socket, a BLE L2CAP or
 * Wi-Fi Aware socket). Also dialling with Happy Eyeballs (RFC 8305) over
 * every address of a service, again after a break, and the TCP socket of
 * a pl_listener. The session logic is session.c's; this file only moves
 * bytes.
 */
#include "session_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0
#endif

/* Back-off when accept() fails for lack of descriptors or memory. */
#define ACCEPT_RETRY_MS 100

typedef struct fd_link {
    pl_link head;
    const pl_poll *poll;
    int fd;
    pl_watch *w;
    struct sockaddr_storage peer;
    socklen_t peer_len;
} fd_link;

int pl__set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return -1;
    return fcntl(fd, F_SETFD, FD_CLOEXEC);
}

/* ---------------------------------------------------------------- the fd link */

static void fd_interest(pl_link *lk)
{
    fd_link *f = (fd_link *)lk;
    pl_session *c = lk->c;
    unsigned ev = pl__session_input_full(c) ? 0 : PL_WATCH_IN;
    if (pl_buf_size(&c->eng.out) || c->eng.state == PL_HS_IDLE) /* idle: start once writable */
        ev |= PL_WATCH_OUT;
    f->poll->watch_update(f->w, ev);
}

/* Both flush_once and write_now: what the socket takes leaves the output.
 * A failure is the loop's to see (poll() reports it). */
static void fd_write_now(pl_link *lk)
{
    fd_link *f = (fd_link *)lk;
    pl_buf *out = &lk->c->eng.out;
    ssize_t n = send(f->fd, pl_buf_head(out), pl_buf_size(out), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0)
        pl_buf_consume(out, (size_t)n);
}

static void fd_close(pl_link *lk)
{
    fd_link *f = (fd_link *)lk;
    if (f->w)
        f->poll->watch_free(f->w);
    if (f->fd >= 0)
        close(f->fd);
    free(f);
}

/* The peer's address and port (an IPv4 peer of a dual-stack socket as IPv4). */
static int peer_of(const fd_link *f, pl_address *out, uint16_t *port_out)
{
    pl_address a = {0};
    uint16_t port;
    if (f->peer_len && f->peer.ss_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&f->peer;
        port = ntohs(s6->sin6_port);
        if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) { /* an IPv4 peer of a dual-stack listener */
            a.family = AF_INET;
            memcpy(a.addr, s6->sin6_addr.s6_addr + 12, 4);
        } else {
            a.family = AF_INET6;
            memcpy(a.addr, &s6->sin6_addr, 16);
            a.ifindex = s6->sin6_scope_id;
        }
    } else if (f->peer_len && f->peer.ss_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)&f->peer;
        a.family = AF_INET;
        memcpy(a.addr, &s4->sin_addr, 4);
        port = ntohs(s4->sin_port);
    } else {
        return PL_ERR_STATE; /* not an IP socket */
    }
    *out = a;
    *port_out = port;
    return PL_OK;
}

static int fd_peer_addr(const pl_link *lk, pl_address *out)
{
    uint16_t port;
    return peer_of((const fd_link *)lk, out, &port);
}

static int fd_peer_string(const pl_link *lk, char *buf, size_t cap)
{
    pl_address a;
    uint16_t port;
    int err = peer_of((const fd_link *)lk, &a, &port);
    if (err != PL_OK)
        return err;
    char host[PL_ADDRSTRLEN];
    err = pl_address_to_string(&a, host, sizeof host);
    if (err != PL_OK)
        return err;
    int n = snprintf(buf, cap, a.family == AF_INET6 ? "[%s]:%u" : "%s:%u", host, port);
    return (n < 0 || (size_t)n >= cap) ? PL_ERR_TOO_LARGE : PL_OK;
}

static const pl_link_ops tcp_ops = {"tcp", fd_interest, fd_write_now, fd_close, fd_peer_string, fd_peer_addr,
                                    fd_write_now};
static const pl_link_ops fd_ops = {"fd", fd_interest, fd_write_now, fd_close, fd_peer_string, fd_peer_addr,
                                   fd_write_now};

/* Returns 0 if the session ended (or the link moved on). */
static int do_read(pl_session *c, int fd)
{
    uint8_t buf[PL_READ_CHUNK];
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            return 1;
        pl__session_fail(c, PL_ERR_IO);
        return 0;
    }
    if (n == 0) {
        pl__session_input_end(c);
        return 0;
    }
    return pl__session_input(c, buf, (size_t)n);
}

static int do_write(pl_session *c, int fd)
{
    pl_buf *out = &c->eng.out;
    if (!pl_buf_size(out))
        return 1;
    ssize_t n = send(fd, pl_buf_head(out), pl_buf_size(out), MSG_NOSIGNAL);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            return 1;
        pl__session_fail(c, errno == EPIPE || errno == ECONNRESET ? PL_ERR_CLOSED : PL_ERR_IO);
        return 0;
    }
    return pl__session_wrote(c, (size_t)n);
}

static void fd_io(pl_watch *w, int fd, unsigned events, void *userdata)
{
    pl_link *lk = userdata;
    pl_session *c = lk->c;
    (void)w;
    /* A byte session starts its handshake here, on its first event (the
     * descriptor is writable at once): never inside its constructor. */
    if (!c || !pl__session_start_if_idle(c))
        return;
    if ((events & PL_WATCH_OUT) && !do_write(c, fd))
        return;
    /* What the input made the engine (or the application's callbacks)
     * queue - a handshake reply, an echo - goes out now: the socket is
     * almost always writable, and waiting for the next poll() round
     * costs a system call and a loop iteration per reply. */
    if ((events & (PL_WATCH_IN | PL_WATCH_HUP | PL_WATCH_ERR)) && do_read(c, fd) && pl_buf_size(&c->eng.out))
        do_write(c, fd);
}

/* A link over fd (connected, taken over: closed with the link). On
 * error fd is untouched. */
static int fd_link_new(const pl_poll *poll, int fd, const pl_link_ops *ops, pl_link **out)
{
    fd_link *f = calloc(1, sizeof *f);
    if (!f)
        return PL_ERR_NOMEM;
    f->head.ops = ops;
    f->poll = poll;
    f->fd = fd;
    f->peer_len = sizeof f->peer;
    if (getpeername(fd, (struct sockaddr *)&f->peer, &f->peer_len) < 0)
        f->peer_len = 0;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
#ifdef SO_NOSIGPIPE
    setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one);
#endif
    f->w = poll->watch_new(poll, fd, PL_WATCH_IN | PL_WATCH_OUT, fd_io, f);
    if (!f->w) {
        free(f);
        return PL_ERR_NOMEM;
    }
    *out = &f->head;
    return PL_OK;
}

/* Free a link whose descriptor stays the caller's. */
static void fd_link_abandon(pl_link *lk)
{
    ((fd_link *)lk)->fd = -1;
    fd_close(lk);
}

/* ---------------------------------------------------------------- dialling */

/* One connection attempt per address. */
typedef struct tcp_attempt {
    int fd;
    pl_watch *w;
    struct tcp_dialer *t;
} tcp_attempt;

/* pl_connect()'s dialler: Happy Eyeballs over the service's addresses,
 * and while the session is interrupted, discovery for where it went.
 * pl_connect_by_name()'s starts with no address: it browses until the
 * instance is found, then goes on as pl_connect()'s. */
typedef struct tcp_dialer {
    pl_session *c;
    const pl_poll *poll;
    struct sockaddr_storage *addrs; /* to try, in order */
    size_t n_addrs, next_addr;
    tcp_attempt *attempts; /* one slot per address */
    size_t n_pending;
    pl_timeout *timer;     /* the stagger between attempts */
    pl_discovery *disc;    /* pl_session_set_discovery() */
    pl_browser *browser;   /* browsing while interrupted, or while finding */
    char svc_type[PL_NAME_MAX + 1];
    int finding;           /* pl_connect_by_name(): the instance is not found yet */
    pl_timeout *find;      /* ... when the search gives up */
    int64_t find_end;      /* ... and when, on pl__now_ms()'s clock: connecting gets what is left */
    int have_want;         /* ... a responder is stored under the name asked for: */
    pl_paired_peer want;   /*     that one, followed by its discovery hint */
    pl_service *held;      /* ... the instance of that name, whose hint says it is another peer */
    pl_service *hinted;    /* ... an instance of another name with the stored responder's hint */
    int listed;            /* ... discovery has listed what is on the network (ALL_FOR_NOW) */
} tcp_dialer;

static const pl_dialer_ops tcp_dialer_ops;

static tcp_dialer *tcp_dialer_of(const pl_session *c)
{
    return c && c->dialer == &tcp_dialer_ops ? c->dialer_ctx : NULL;
}

static void attempt_close(const pl_poll *poll, tcp_attempt *a)
{
    if (a->w)
        poll->watch_free(a->w);
    if (a->fd >= 0)
        close(a->fd);
    a->w = NULL;
    a->fd = -1;
}

static void tcp_stop(void *ctx, pl_session *c)
{
    tcp_dialer *t = ctx;
    (void)c;
    for (size_t i = 0; t->attempts && i < t->n_addrs; i++)
        attempt_close(t->poll, &t->attempts[i]);
    t->n_pending = 0;
    pl__free_timeout(t->poll, &t->timer);
}

static void stop_browsing(tcp_dialer *t)
{
    if (t->browser)
        pl_browser_free(t->browser);
    t->browser = NULL;
}

static void tcp_free(void *ctx)
{
    tcp_dialer *t = ctx;
    tcp_stop(t, t->c);
    stop_browsing(t);
    pl__free_timeout(t->poll, &t->find);
    pl_service_free(t->held);
    pl_service_free(t->hinted);
    free(t->addrs);
    free(t->attempts);
    free(t);
}

static void he_next(tcp_dialer *t);

static void attempt_io(pl_watch *w, int fd, unsigned events, void *userdata)
{
    tcp_attempt *a = userdata;
    tcp_dialer *t = a->t;
    pl_session *c = t->c;
    (void)w;
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        err = errno;
    if (err == 0 && (events & PL_WATCH_OUT)) {
        /* The winner: drop every other attempt and the stagger timer. */
        int won = a->fd;
        a->fd = -1;
        tcp_stop(t, c);
        stop_browsing(t); /* found: if the handshake fails, the next dial browses again */
        pl_link *lk = NULL;
        int r = fd_link_new(t->poll, won, &tcp_ops, &lk);
        if (r != PL_OK) {
            close(won);
            pl__session_fail(c, r);
            return;
        }
        lk->c = c;
        c->link = lk;
        r = pl__session_start(c);
        if (r != PL_OK) {
            pl__session_fail(c, r);
            return;
        }
        pl__session_update_interest(c);
        return;
    }
    if (err == 0 && !(events & (PL_WATCH_ERR | PL_WATCH_HUP)))
        return;
    attempt_close(t->poll, a);
    t->n_pending--;
    if (t->n_pending == 0)
        he_next(t); /* don't wait out the stagger when nothing is pending */
}

static int attempt_start(tcp_dialer *t, size_t i)
{
    tcp_attempt *a = &t->attempts[i];
    const struct sockaddr *sa = (const struct sockaddr *)&t->addrs[i];
    socklen_t salen = sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    a->t = t;
    a->fd = socket(sa->sa_family, SOCK_STREAM, 0);
    if (a->fd < 0)
        return -1;
    if (pl__set_nonblock(a->fd) < 0 || (connect(a->fd, sa, salen) < 0 && errno != EINPROGRESS)) {
        close(a->fd);
        a->fd = -1;
        return -1;
    }
    a->w = t->poll->watch_new(t->poll, a->fd, PL_WATCH_OUT, attempt_io, a);
    if (!a->w) {
        close(a->fd);
        a->fd = -1;
        return -1;
    }
    t->n_pending++;
    return 0;
}

static void he_timer(pl_timeout *tm, void *userdata)
{
    tcp_dialer *t = userdata;
    (void)tm;
    if (t->n_pending == 0 && t->next_addr >= t->n_addrs) {
        pl__session_fail(t->c, PL_ERR_CONNECT);
        return;
    }
    he_next(t);
}

/* Start the next attempt that gets going; re-arm the stagger, or the failure report. */
static void he_next(tcp_dialer *t)
{
    while (t->next_addr < t->n_addrs && attempt_start(t, t->next_addr++) != 0)
        ;
    int more = t->next_addr < t->n_addrs;
    if (t->n_pending == 0 && !more)
        t->poll->timeout_update(t->timer, 0); /* report from the loop, not from here */
    else
        t->poll->timeout_update(t->timer, more ? PL_HE_STAGGER_MS : -1);
}

/* A round of attempts over every address, the first ones at once. */
static int round_start(tcp_dialer *t)
{
    t->next_addr = 0;
    if (!t->timer)
        t->timer = t->poll->timeout_new(t->poll, -1, he_timer, t);
    if (!t->timer)
        return PL_ERR_NOMEM;
    he_next(t);
    return PL_OK;
}

static int fill_addresses(tcp_dialer *t, const pl_service *svc);

/* pl_connect_by_name(): the instance is found. Take its name as spelt on
 * the network (the handshake binds it), expect the responder stored under
 * the name asked for (if any, and no code), then dial as pl_connect()
 * does, within what is left of the time. */
static void found(tcp_dialer *t, const pl_service *svc)
{
    pl_session *c = t->c;
    size_t len = strlen(svc->name);
    if (len > PL_NAME_MAX)
        return; /* no DNS-SD instance name is longer */
    /* No address: a Bonjour result of the "apple" backend, which only Network.framework connects to. */
    int rc = svc->n_addresses ? fill_addresses(t, svc) : PL_ERR_UNSUPPORTED;
    if (rc == PL_ERR_INVALID) {
        /* Port 0 or no usable address: whoever sent that record, it cannot end the search. */
        pl__log(PL_LOG_DEBUG, "connect by name: \"%s\" advertised with nothing to dial; still looking", svc->name);
        return;
    }
    if (rc != PL_OK) {
        pl__session_close(c, rc);
        return;
    }
    t->finding = 0;
    pl__free_timeout(t->poll, &t->find);
    if (!pl_service_name_equal(svc->name, c->instance))
        pl__log(PL_LOG_INFO, "connect by name: \"%s\" is published as \"%s\" now (its discovery hint)", c->instance,
                svc->name);
    memcpy(c->instance, svc->name, len + 1);
    pl_service_free(t->held); /* svc may be either: not used past here */
    pl_service_free(t->hinted);
    t->held = t->hinted = NULL;
    if (!pl__session_pairs(c) && t->have_want)
        pl__session_expect_peer(c, &t->want);
    int64_t left = t->find_end - pl__now_ms();
    rc = pl__session_set_deadline(c, left < 1 ? 1 : left > INT32_MAX ? INT32_MAX : (int)left);
    if (rc == PL_OK)
        rc = round_start(t); /* browsing goes on: a move is followed once this first dial has ended */
    if (rc != PL_OK)
        pl__session_close(c, rc);
}

static void find_expired(pl_timeout *tm, void *userdata)
{
    tcp_dialer *t = userdata;
    (void)tm;
    pl__session_close(t->c, PL_ERR_NOT_FOUND);
}

static void drop_if_named(pl_service **slot, const char *name)
{
    if (*slot && pl_service_name_equal((*slot)->name, name)) {
        pl_service_free(*slot);
        *slot = NULL;
    }
}

/*
 * pl_connect_by_name(): is svc the instance to dial? With a code, the one
 * of the name asked for (the pairing binds it). Without, the responder
 * stored under that name, wherever its discovery hint is published: under
 * another name after a rename (docs/PROTOCOL.md section 2.1). Dialled at
 * once: the instance of the name asked for if its hint is the stored
 * responder's, or if it publishes none (an older responder) or none is
 * stored under the name. Held until discovery has listed what is on the
 * network: an instance of another name with the stored responder's hint
 * (a rename; or a copy of the hint, which must not win over the responder
 * still under its name), dialled first then; and the instance of the name
 * asked for whose hint says it is another peer, dialled if nothing better
 * came (the handshake then refuses it: PL_ERR_NOT_PAIRED, as for a
 * responder whose key changed). Once listed, what comes is dialled at once.
 */
static void consider(tcp_dialer *t, pl_browse_event ev, const pl_service *svc)
{
    pl_session *c = t->c;
    int named = pl_service_name_equal(svc->name, c->instance);
    if (ev == PL_BROWSE_REMOVE) {
        drop_if_named(&t->held, svc->name);
        drop_if_named(&t->hinted, svc->name);
        return;
    }
    int hinted = !pl__session_pairs(c) && t->have_want && pl__hint_matches(svc->txt, t->want.id);
    if (!named && !hinted)
        return;
    pl_service *copy = NULL;
    if (t->listed || pl__session_pairs(c) || (named && (hinted || !t->have_want || !pl__hint_present(svc->txt))) ||
        pl_service_dup(svc, &copy) != PL_OK) {
        found(t, svc);
        return;
    }
    pl_service **slot = hinted ? &t->hinted : &t->held;
    pl_service_free(*slot);
    *slot = copy;
}

static void rediscovered(pl_browser *b, pl_browse_event ev, int status, const pl_service *svc, void *userdata)
{
    tcp_dialer *t = userdata;
    (void)b;
    if (ev == PL_BROWSE_FAILED && t->finding) {
        pl__session_close(t->c, status); /* nothing else would find it */
        return;
    }
    if (ev == PL_BROWSE_ALL_FOR_NOW && t->finding) {
        t->listed = 1;
        if (t->hinted)
            found(t, t->hinted); /* frees it, if it can be dialled */
        if (t->finding && t->held)
            found(t, t->held);
        return;
    }
    if (ev != PL_BROWSE_ADD && ev != PL_BROWSE_UPDATE && ev != PL_BROWSE_REMOVE)
        return;
    if (t->finding)
        consider(t, ev, svc);
    else if (ev != PL_BROWSE_REMOVE && pl_service_name_equal(svc->name, t->c->instance))
        (void)pl_session_set_addresses(t->c, svc);
}

/* Interrupted: browse for where the service is now (if asked to), and
 * dial the addresses known. */
static int tcp_dial(void *ctx, pl_session *c)
{
    tcp_dialer *t = ctx;
    tcp_stop(t, c); /* a round still under way (new addresses came) starts over */
    pl_engine_relink(&c->eng);
    if (t->disc && !t->browser && t->svc_type[0])
        (void)pl_browse(t->disc, t->svc_type, NULL, rediscovered, t, &t->browser); /* else: the known addresses */
    int rc = c->deadline ? PL_OK : pl__session_set_deadline(c, PL_CONNECT_TIMEOUT_MS);
    return rc == PL_OK ? round_start(t) : rc;
}

static const pl_dialer_ops tcp_dialer_ops = {
    .kind = "tcp",
    .dial = tcp_dial,
    .stop = tcp_stop,
    .free = tcp_free,
};

static int fill_sockaddr(const pl_address *a, uint16_t port, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof *ss);
    if (a->family == AF_INET) {
        struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
        s4->sin_family = AF_INET;
        s4->sin_port = htons(port);
        memcpy(&s4->sin_addr, a->addr, 4);
        return 0;
    }
    if (a->family == AF_INET6) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(port);
        memcpy(&s6->sin6_addr, a->addr, 16);
        if (IN6_IS_ADDR_LINKLOCAL(&s6->sin6_addr))
            s6->sin6_scope_id = a->ifindex;
        return 0;
    }
    return -1;
}

/* The addresses to dial, RFC 8305 section 4: the families interleaved, IPv6 first. */
static int fill_addresses(tcp_dialer *t, const pl_service *svc)
{
    size_t n = svc->n_addresses;
    if (n == 0 || !svc->addresses || svc->port == 0)
        return PL_ERR_INVALID;
    struct sockaddr_storage *addrs = calloc(n, sizeof *addrs);
    tcp_attempt *attempts = calloc(n, sizeof *attempts);
    if (!addrs || !attempts) {
        free(addrs);
        free(attempts);
        return PL_ERR_NOMEM;
    }
    for (size_t i = 0; i < n; i++)
        attempts[i].fd = -1;
    size_t k = 0;
    for (size_t i6 = 0, i4 = 0; i6 < n || i4 < n;) {
        while (i6 < n && svc->addresses[i6].family != AF_INET6)
            i6++;
        if (i6 < n && fill_sockaddr(&svc->addresses[i6++], svc->port, &addrs[k]) == 0)
            k++;
        while (i4 < n && svc->addresses[i4].family != AF_INET)
            i4++;
        if (i4 < n && fill_sockaddr(&svc->addresses[i4++], svc->port, &addrs[k]) == 0)
            k++;
    }
    if (k == 0) {
        free(addrs);
        free(attempts);
        return PL_ERR_INVALID;
    }
    tcp_stop(t, t->c);
    free(t->addrs);
    free(t->attempts);
    t->addrs = addrs;
    t->attempts = attempts;
    t->n_addrs = k;
    t->next_addr = 0;
    return PL_OK;
}

int pl_session_set_discovery(pl_session *c, pl_discovery *d)
{
    tcp_dialer *t = tcp_dialer_of(c);
    if (!t || !t->svc_type[0])
        return PL_ERR_INVALID;
    if (t->finding)
        return d == t->disc ? PL_OK : PL_ERR_STATE; /* pl_connect_by_name() is searching with its own */
    stop_browsing(t);
    t->disc = d;
    return PL_OK;
}

int pl_session_set_addresses(pl_session *c, const pl_service *svc)
{
    tcp_dialer *t = tcp_dialer_of(c);
    if (!t || !svc || c->closed)
        return PL_ERR_INVALID;
    if (!c->ss.interrupted && !c->link)
        return PL_ERR_STATE; /* still dialling the first time */
    /* Interrupted and not in a handshake: attempts, or the pause before them, are under way. */
    int dialling = c->ss.interrupted && !c->link;
    int rc = fill_addresses(t, svc);
    if (rc == PL_OK && dialling) {
        pl_policy_dial_now(&c->ss, pl__now_ms()); /* dial the new ones now */
        pl__session_update_interest(c);
    }
    return rc;
}

/* A pl_connect() session to the instance name of type (may be NULL),
 * with its TCP dialler and no address yet. NULL: out of memory. */
static tcp_dialer *tcp_session_new(pl_node *node, const char *name, const char *type, pl_session_cb cb,
                                   void *userdata)
{
    pl_session *c = pl__session_alloc(node, PL_DEFAULT_MAX_MESSAGE, 1, name);
    tcp_dialer *t = c ? calloc(1, sizeof *t) : NULL;
    if (!t) {
        if (c)
            pl__session_destroy(c);
        return NULL;
    }
    t->c = c;
    t->poll = node->poll;
    if (type && strlen(type) < sizeof t->svc_type)
        memcpy(t->svc_type, type, strlen(type) + 1);
    c->cb = cb;
    c->userdata = userdata;
    pl__session_set_dialer(c, &tcp_dialer_ops, t); /* resumable, as every pl_connect() session */
    return t;
}

int pl_connect_by_name(pl_node *node, pl_discovery *d, const char *type, const char *name, int timeout_ms,
                       pl_session_cb cb, void *userdata, pl_session **out)
{
    if (!node || !d || !type || !name || !name[0] || !pl_name_valid(name) || timeout_ms <= 0 || !out ||
        strlen(type) > PL_NAME_MAX || strcasecmp(type, PL_SERVICE_TYPES) == 0)
        return PL_ERR_INVALID;
    tcp_dialer *t = tcp_session_new(node, name, type, cb, userdata);
    if (!t)
        return PL_ERR_NOMEM;
    pl_session *c = t->c;
    t->disc = d;
    t->finding = 1;
    t->have_want = pl__keystore_find_responder(node->ks, name, &t->want) == PL_OK;
    t->find_end = pl__now_ms() + timeout_ms;
    t->find = node->poll->timeout_new(node->poll, timeout_ms, find_expired, t);
    int rc = t->find ? pl_browse(d, type, NULL, rediscovered, t, &t->browser) : PL_ERR_NOMEM;
    if (rc != PL_OK) {
        pl__session_destroy(c); /* frees t */
        return rc;
    }
    *out = c;
    return PL_OK;
}

int pl__tcp_connect(pl_node *node, const pl_service *svc, int timeout_ms, pl_session_cb cb, void *userdata,
                    pl_session **out)
{
    if (!node || !svc || !out || svc->port == 0 || svc->n_addresses == 0 || !svc->addresses ||
        !svc->name || !pl_name_valid(svc->name))
        return PL_ERR_INVALID;
    tcp_dialer *t = tcp_session_new(node, svc->name, svc->type, cb, userdata);
    if (!t)
        return PL_ERR_NOMEM;
    pl_session *c = t->c;
    pl__session_expect(c, svc->txt); /* a pl_session_set_code() that follows undoes it */
    int rc = fill_addresses(t, svc);
    if (rc == PL_OK)
        rc = pl__session_set_deadline(c, timeout_ms > 0 ? timeout_ms : PL_CONNECT_TIMEOUT_MS);
    if (rc == PL_OK)
        rc = round_start(t);
    if (rc != PL_OK) {
        pl__session_destroy(c); /* frees t */
        return rc;
    }
    *out = c;
    return PL_OK;
}

/* ---------------------------------------------------------------- descriptors of the application */

int pl_session_new_fd(pl_node *node, int fd, pl_role role, const char *instance, pl_session_cb cb, void *userdata,
                      pl_session **out)
{
    int rc = pl__session_args_ok(node, role, instance, out);
    if (rc != PL_OK || fd < 0 || pl__set_nonblock(fd) < 0)
        return PL_ERR_INVALID;
    pl_link *lk = NULL;
    if ((rc = fd_link_new(node->poll, fd, &fd_ops, &lk)) == PL_OK &&
        (rc = pl__session_new_on(node, lk, role, instance, cb, userdata, out)) != PL_OK)
        fd_link_abandon(lk); /* fd is not ours on failure */
    return rc;
}

int pl_session_attach_fd(pl_session *c, int fd)
{
    if (!c || fd < 0)
        return PL_ERR_INVALID;
    int rc = pl__session_can_relink(c);
    if (rc != PL_OK)
        return rc;
    if (pl__set_nonblock(fd) < 0)
        return PL_ERR_INVALID;
    pl_link *lk = NULL;
    if ((rc = fd_link_new(c->node->poll, fd, &fd_ops, &lk)) == PL_OK)
        pl__session_relink(c, lk);
    return rc;
}

int pl_listener_add_fd(pl_listener *l, int fd)
{
    if (!l || fd < 0 || pl__set_nonblock(fd) < 0)
        return PL_ERR_INVALID;
    pl_link *lk = NULL;
    int rc = fd_link_new(l->node->poll, fd, &fd_ops, &lk);
    if (rc == PL_OK && (rc = pl__listener_take(l, lk)) != PL_OK)
        fd_link_abandon(lk);
    return rc;
}

/* ---------------------------------------------------------------- the listener's socket */

static void accept_retry(pl_timeout *t, void *userdata)
{
    pl_listener *l = userdata;
    (void)t;
    l->node->poll->watch_update(l->w, PL_WATCH_IN);
}

static void listener_accept(pl_watch *w, int fd, unsigned events, void *userdata)
{
    pl_listener *l = userdata;
    (void)w;
    (void)fd;
    (void)events;
    /* Accept what is queued now, bounded so that a flood cannot starve the loop. */
    for (int i = 0; i < 256; i++) {
        int s = accept(l->fd, NULL, NULL);
        if (s < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                /* The connection stays queued and the socket readable: pause instead of spinning. */
                l->node->poll->watch_update(l->w, 0);
                l->node->poll->timeout_update(l->retry, ACCEPT_RETRY_MS);
            }
            return;
        }
        pl_link *lk = NULL;
        if (pl__set_nonblock(s) != 0 || fd_link_new(l->node->poll, s, &tcp_ops, &lk) != PL_OK) {
            close(s);
            continue;
        }
        if (pl__listener_take(l, lk) != PL_OK)
            fd_close(lk);
    }
}

static int tcp_listen(uint16_t port, int *out, uint16_t *bound)
{
    int one = 1, zero = 0;
    int fd = socket(AF_INET6, SOCK_STREAM, 0);
    if (fd >= 0) {
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        struct sockaddr_in6 s6 = {0};
        s6.sin6_family = AF_INET6;
        s6.sin6_addr = in6addr_any;
        s6.sin6_port = htons(port);
        if (bind(fd, (struct sockaddr *)&s6, sizeof s6) < 0) {
            int e = errno;
            close(fd);
            fd = -1;
            if (e != EAFNOSUPPORT && e != EADDRNOTAVAIL) {
                errno = e;
                return pl__errno_error(errno);
            }
        }
    }
    if (fd < 0) { /* no IPv6 on this system: IPv4 only */
        fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0)
            return pl__errno_error(errno);
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        struct sockaddr_in s4 = {0};
        s4.sin_family = AF_INET;
        s4.sin_addr.s_addr = htonl(INADDR_ANY);
        s4.sin_port = htons(port);
        if (bind(fd, (struct sockaddr *)&s4, sizeof s4) < 0) {
            int e = errno;
            close(fd);
            errno = e;
            return pl__errno_error(errno);
        }
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (pl__set_nonblock(fd) < 0 || listen(fd, 128) < 0 || getsockname(fd, (struct sockaddr *)&ss, &sl) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return pl__errno_error(errno);
    }
    *bound = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                            : ((struct sockaddr_in *)&ss)->sin_port);
    *out = fd;
    return PL_OK;
}

int pl_listener_new(pl_node *node, uint16_t port, pl_accept_cb cb, void *userdata, pl_listener **out)
{
    pl_listener *l = NULL;
    int rc = pl__listener_alloc(node, cb, userdata, &l);
    if (rc != PL_OK)
        return rc;
    const pl_poll *poll = node->poll;
    rc = tcp_listen(port, &l->fd, &l->port);
    if (rc == PL_OK) {
        l->w = poll->watch_new(poll, l->fd, PL_WATCH_IN, listener_accept, l);
        l->retry = poll->timeout_new(poll, -1, accept_retry, l);
        if (!l->w || !l->retry)
            rc = PL_ERR_NOMEM;
    }
    if (rc != PL_OK) {
        int e = errno;
        pl_listener_free(l);
        errno = e;
        return rc;
    }
    *out = l;
    return PL_OK;
}

void pl__tcp_unlisten(pl_listener *l)
{
    if (l->w)
        l->node->poll->watch_free(l->w);
    l->w = NULL;
    pl__free_timeout(l->node->poll, &l->retry);
    if (l->fd >= 0)
        close(l->fd);
    l->fd = -1;
}
