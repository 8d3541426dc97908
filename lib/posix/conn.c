/*
 * TCP transport on POSIX sockets: a thin shell around the sans-I/O
 * engine (core/engine.c). It connects (Happy Eyeballs over every
 * address of a service), accepts, reads bytes into the engine and
 * writes out what the engine queues. No protocol logic lives here.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/engine.h"

#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0
#endif

/* RFC 8305 section 5 recommends 250 ms between connection attempts. */
#define HE_STAGGER_MS 250
#define DEFAULT_TIMEOUT_MS 10000
/* Connections in handshake held by a listener, and how long each may take. */
#define LISTENER_MAX_PENDING 64
#define LISTENER_HANDSHAKE_MS 10000
#define READ_CHUNK 65536

typedef struct attempt {
    int fd;
    pl_watch *w;
    pl_conn *c;
} attempt;

struct pl_conn {
    const pl_poll *poll;
    pl_engine eng;
    pl_conn_cb cb;
    void *userdata;

    int fd; /* the connected socket, -1 before */
    pl_watch *w;
    struct sockaddr_storage peer;
    socklen_t peer_len;
    pl_timeout *timer; /* Happy Eyeballs: the stagger between attempts */

    /* Connecting: addresses to try, in order. */
    struct sockaddr_storage *addrs;
    size_t n_addrs, next_addr;
    attempt *attempts; /* one slot per address */
    size_t n_pending;
    int connect_timeout_ms;
    pl_timeout *deadline;

    /* Accepted and still in handshake: owned by this listener. */
    pl_listener *listener;
    pl_conn *lnext;

    int closed; /* PL_CONN_CLOSED was reported, or the conn is being torn down */
    int busy;   /* inside the application's callback */
    int zombie; /* freed by the application during a callback */
};

struct pl_listener {
    const pl_poll *poll;
    int fd;
    pl_watch *w;
    uint16_t port;
    size_t max_message;
    pl_accept_cb cb;
    void *userdata;
    pl_conn *pending; /* newest first */
    size_t n_pending;
    int busy, zombie;
};

static void conn_destroy(pl_conn *c);
static void listener_destroy(pl_listener *l);

/* ---------------------------------------------------------------- helpers */

static int set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return -1;
    return fcntl(fd, F_SETFD, FD_CLOEXEC);
}

static void attempt_close(attempt *a)
{
    if (a->w)
        a->c->poll->watch_free(a->w);
    if (a->fd >= 0)
        close(a->fd);
    a->w = NULL;
    a->fd = -1;
}

/* Stop all I/O; the object stays allocated. */
static void conn_teardown(pl_conn *c)
{
    for (size_t i = 0; c->attempts && i < c->n_addrs; i++)
        attempt_close(&c->attempts[i]);
    c->n_pending = 0;
    if (c->w)
        c->poll->watch_free(c->w);
    c->w = NULL;
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    if (c->timer)
        c->poll->timeout_free(c->timer);
    c->timer = NULL;
    if (c->deadline)
        c->poll->timeout_free(c->deadline);
    c->deadline = NULL;
}

static void listener_unlink(pl_conn *c)
{
    pl_listener *l = c->listener;
    if (!l)
        return;
    for (pl_conn **pc = &l->pending; *pc; pc = &(*pc)->lnext) {
        if (*pc == c) {
            *pc = c->lnext;
            l->n_pending--;
            break;
        }
    }
    c->listener = NULL;
    c->lnext = NULL;
}

/* Call the application; returns 0 if c was freed during the call. */
static int emit(pl_conn *c, pl_conn_event ev, int status, const void *data, size_t len)
{
    if (!c->cb)
        return 1;
    c->busy++;
    c->cb(c, ev, status, data, len, c->userdata);
    if (--c->busy == 0 && c->zombie) {
        conn_destroy(c);
        return 0;
    }
    return !c->zombie;
}

/* End the connection with status; a listener's handshake conn goes silently. */
static void conn_fail(pl_conn *c, int status)
{
    if (c->closed)
        return;
    conn_teardown(c);
    c->closed = 1;
    if (c->listener) {
        listener_unlink(c);
        conn_destroy(c);
        return;
    }
    emit(c, PL_CONN_CLOSED, status, NULL, 0);
}

static void update_interest(pl_conn *c)
{
    if (!c->w)
        return;
    unsigned ev = PL_WATCH_IN;
    if (pl_buf_size(&c->eng.out))
        ev |= PL_WATCH_OUT;
    c->poll->watch_update(c->w, ev);
}

/* ---------------------------------------------------------------- I/O on a connected socket */

/* The peer's Hello arrived. Returns 0 if c is gone or closed. */
static int handle_open(pl_conn *c)
{
    if (c->deadline)
        c->poll->timeout_free(c->deadline);
    c->deadline = NULL;
    pl_listener *l = c->listener;
    if (!l)
        return emit(c, PL_CONN_OPEN, PL_OK, NULL, 0) && !c->closed;
    /* Hand it to the application: from now on it owns c. */
    listener_unlink(c);
    c->busy++;
    l->busy++;
    l->cb(l, c, l->userdata);
    if (--l->busy == 0 && l->zombie)
        listener_destroy(l);
    if (--c->busy == 0 && c->zombie) {
        conn_destroy(c);
        return 0;
    }
    return !c->zombie && !c->closed;
}

/* Both directions ended and our end-of-stream is out: close cleanly.
 * Returns 1 if the connection goes on, 0 if it ended. */
static int maybe_finish(pl_conn *c)
{
    if (!pl_engine_done(&c->eng) || pl_buf_size(&c->eng.out))
        return 1;
    conn_teardown(c);
    c->closed = 1;
    emit(c, PL_CONN_CLOSED, PL_OK, NULL, 0);
    return 0;
}

static int do_read(pl_conn *c)
{
    uint8_t buf[READ_CHUNK];
    ssize_t n = recv(c->fd, buf, sizeof buf, 0);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            return 1;
        conn_fail(c, PL_ERR_IO);
        return 0;
    }
    if (n == 0) {
        /* A peer closes only once both directions have ended; any other
         * close loses data, and is reported as such. */
        if (maybe_finish(c))
            conn_fail(c, PL_ERR_CLOSED);
        return 0;
    }
    size_t off = 0;
    while (off < (size_t)n) {
        size_t used = 0;
        pl_engine_event ev;
        int r = pl_engine_receive(&c->eng, buf + off, (size_t)n - off, &used, &ev);
        off += used;
        if (r < 0) {
            conn_fail(c, r);
            return 0;
        }
        if (r == 0)
            break;
        switch (ev.type) {
        case PL_ENGINE_OPEN:
            if (!handle_open(c))
                return 0;
            break;
        case PL_ENGINE_MESSAGE:
            if (!emit(c, PL_CONN_MESSAGE, PL_OK, ev.data, ev.len) || c->closed)
                return 0;
            break;
        case PL_ENGINE_PEER_EOF:
            if (!emit(c, PL_CONN_PEER_EOF, PL_OK, NULL, 0) || c->closed)
                return 0;
            if (!maybe_finish(c))
                return 0;
            break;
        default:
            break;
        }
    }
    return 1;
}

static int do_write(pl_conn *c)
{
    pl_buf *out = &c->eng.out;
    if (!pl_buf_size(out))
        return 1;
    ssize_t n = send(c->fd, pl_buf_head(out), pl_buf_size(out), MSG_NOSIGNAL);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            return 1;
        conn_fail(c, errno == EPIPE || errno == ECONNRESET ? PL_ERR_CLOSED : PL_ERR_IO);
        return 0;
    }
    pl_buf_consume(out, (size_t)n);
    update_interest(c);
    if (pl_buf_size(out))
        return 1;
    if (!c->listener && c->eng.open && !emit(c, PL_CONN_DRAINED, PL_OK, NULL, 0))
        return 0;
    if (c->closed)
        return 0;
    return maybe_finish(c);
}

static void conn_io(pl_watch *w, int fd, unsigned events, void *userdata)
{
    pl_conn *c = userdata;
    if (events & PL_WATCH_OUT) {
        if (!do_write(c))
            return;
    }
    if (events & (PL_WATCH_IN | PL_WATCH_HUP | PL_WATCH_ERR)) {
        if (!do_read(c))
            return;
    }
}

static void handshake_expired(pl_timeout *t, void *userdata)
{
    conn_fail(userdata, PL_ERR_TIMEOUT);
}

/* The socket is connected: start the protocol on it. */
static int conn_established(pl_conn *c, int fd)
{
    c->fd = fd;
    c->peer_len = sizeof c->peer;
    if (getpeername(fd, (struct sockaddr *)&c->peer, &c->peer_len) < 0)
        c->peer_len = 0;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
#ifdef SO_NOSIGPIPE
    setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one);
#endif
    if (!c->eng.started && pl_engine_start(&c->eng) != PL_OK)
        return PL_ERR_NOMEM;
    c->w = c->poll->watch_new(c->poll, fd, PL_WATCH_IN | PL_WATCH_OUT, conn_io, c);
    return c->w ? PL_OK : PL_ERR_NOMEM;
}

/* ---------------------------------------------------------------- connecting */

static void he_next(pl_conn *c);

static void attempt_io(pl_watch *w, int fd, unsigned events, void *userdata)
{
    attempt *a = userdata;
    pl_conn *c = a->c;
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        err = errno;
    if (err == 0 && (events & PL_WATCH_OUT)) {
        /* The winner: drop every other attempt and the stagger timer. */
        int won = a->fd;
        a->fd = -1;
        attempt_close(a);
        for (size_t i = 0; i < c->n_addrs; i++)
            attempt_close(&c->attempts[i]);
        c->n_pending = 0;
        if (c->timer)
            c->poll->timeout_free(c->timer);
        c->timer = NULL;
        int r = conn_established(c, won);
        if (r != PL_OK)
            conn_fail(c, r);
        return;
    }
    if (err == 0 && !(events & (PL_WATCH_ERR | PL_WATCH_HUP)))
        return;
    attempt_close(a);
    c->n_pending--;
    if (c->n_pending == 0)
        he_next(c); /* don't wait out the stagger when nothing is pending */
}

static int attempt_start(pl_conn *c, size_t i)
{
    attempt *a = &c->attempts[i];
    const struct sockaddr *sa = (const struct sockaddr *)&c->addrs[i];
    socklen_t salen = sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    a->c = c;
    a->fd = socket(sa->sa_family, SOCK_STREAM, 0);
    if (a->fd < 0)
        return -1;
    if (set_nonblock(a->fd) < 0 || (connect(a->fd, sa, salen) < 0 && errno != EINPROGRESS)) {
        close(a->fd);
        a->fd = -1;
        return -1;
    }
    a->w = c->poll->watch_new(c->poll, a->fd, PL_WATCH_OUT, attempt_io, a);
    if (!a->w) {
        close(a->fd);
        a->fd = -1;
        return -1;
    }
    c->n_pending++;
    return 0;
}

static void he_timer(pl_timeout *t, void *userdata)
{
    pl_conn *c = userdata;
    if (c->n_pending == 0 && c->next_addr >= c->n_addrs) {
        conn_fail(c, PL_ERR_CONNECT);
        return;
    }
    he_next(c);
}

/* Start the next attempt that gets going; re-arm the stagger, or the failure report. */
static void he_next(pl_conn *c)
{
    while (c->next_addr < c->n_addrs && attempt_start(c, c->next_addr++) != 0)
        ;
    int more = c->next_addr < c->n_addrs;
    if (c->n_pending == 0 && !more)
        c->poll->timeout_update(c->timer, 0); /* report from the loop, not from here */
    else
        c->poll->timeout_update(c->timer, more ? HE_STAGGER_MS : -1);
}

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

static pl_conn *conn_alloc(const pl_poll *poll, size_t max_message)
{
    pl_conn *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->poll = poll;
    c->fd = -1;
    pl_engine_init(&c->eng, max_message);
    return c;
}

int pl_connect(const pl_poll *poll, const pl_service *svc, int timeout_ms, pl_conn_cb cb,
               void *userdata, pl_conn **out)
{
    if (!poll || !svc || !out || svc->port == 0 || svc->n_addresses == 0 || !svc->addresses)
        return PL_ERR_INVALID;
    pl_conn *c = conn_alloc(poll, PL_DEFAULT_MAX_MESSAGE);
    if (!c)
        return PL_ERR_NOMEM;
    c->cb = cb;
    c->userdata = userdata;
    size_t n = svc->n_addresses;
    c->addrs = calloc(n, sizeof *c->addrs);
    c->attempts = calloc(n, sizeof *c->attempts);
    if (!c->addrs || !c->attempts) {
        conn_destroy(c);
        return PL_ERR_NOMEM;
    }
    for (size_t i = 0; i < n; i++)
        c->attempts[i].fd = -1;
    /* RFC 8305 section 4: interleave the families, IPv6 first. */
    size_t k = 0;
    for (size_t i6 = 0, i4 = 0; i6 < n || i4 < n;) {
        while (i6 < n && svc->addresses[i6].family != AF_INET6)
            i6++;
        if (i6 < n && fill_sockaddr(&svc->addresses[i6++], svc->port, &c->addrs[k]) == 0)
            k++;
        while (i4 < n && svc->addresses[i4].family != AF_INET)
            i4++;
        if (i4 < n && fill_sockaddr(&svc->addresses[i4++], svc->port, &c->addrs[k]) == 0)
            k++;
    }
    c->n_addrs = k;
    if (k == 0) {
        conn_destroy(c);
        return PL_ERR_INVALID;
    }
    c->timer = poll->timeout_new(poll, -1, he_timer, c);
    c->deadline = poll->timeout_new(poll, timeout_ms > 0 ? timeout_ms : DEFAULT_TIMEOUT_MS,
                                    handshake_expired, c);
    if (!c->timer || !c->deadline) {
        conn_destroy(c);
        return PL_ERR_NOMEM;
    }
    he_next(c);
    *out = c;
    return PL_OK;
}

/* ---------------------------------------------------------------- conn API */

int pl_conn_set_max_message(pl_conn *c, size_t max)
{
    if (!c)
        return PL_ERR_INVALID;
    return pl_engine_set_max_message(&c->eng, max);
}

void pl_conn_set_callback(pl_conn *c, pl_conn_cb cb, void *userdata)
{
    if (!c)
        return;
    c->cb = cb;
    c->userdata = userdata;
}

int pl_conn_send(pl_conn *c, const void *data, size_t len)
{
    if (!c || (!data && len))
        return PL_ERR_INVALID;
    if (c->closed)
        return PL_ERR_STATE;
    if (!c->eng.started) {
        int err = pl_engine_start(&c->eng);
        if (err != PL_OK)
            return err;
    }
    int err = pl_engine_send(&c->eng, data, len);
    if (err == PL_OK)
        update_interest(c);
    return err;
}

size_t pl_conn_pending(const pl_conn *c)
{
    return c ? pl_buf_size(&c->eng.out) : 0;
}

int pl_conn_shutdown(pl_conn *c)
{
    if (!c || c->closed)
        return c ? PL_ERR_STATE : PL_ERR_INVALID;
    if (!c->eng.started) {
        int err = pl_engine_start(&c->eng);
        if (err != PL_OK)
            return err;
    }
    int err = pl_engine_shutdown(&c->eng);
    if (err == PL_OK)
        update_interest(c);
    return err;
}

int pl_conn_peer_string(const pl_conn *c, char *buf, size_t cap)
{
    if (!c || !buf)
        return PL_ERR_INVALID;
    if (!c->peer_len)
        return PL_ERR_STATE;
    pl_address a = {0};
    uint16_t port;
    if (c->peer.ss_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&c->peer;
        port = ntohs(s6->sin6_port);
        if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) { /* an IPv4 peer of a dual-stack listener */
            a.family = AF_INET;
            memcpy(a.addr, s6->sin6_addr.s6_addr + 12, 4);
        } else {
            a.family = AF_INET6;
            memcpy(a.addr, &s6->sin6_addr, 16);
            a.ifindex = s6->sin6_scope_id;
        }
    } else {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)&c->peer;
        a.family = AF_INET;
        memcpy(a.addr, &s4->sin_addr, 4);
        port = ntohs(s4->sin_port);
    }
    char host[PL_ADDRSTRLEN];
    int err = pl_address_to_string(&a, host, sizeof host);
    if (err != PL_OK)
        return err;
    int n = snprintf(buf, cap, a.family == AF_INET6 ? "[%s]:%u" : "%s:%u", host, port);
    return (n < 0 || (size_t)n >= cap) ? PL_ERR_TOO_LARGE : PL_OK;
}

static void conn_destroy(pl_conn *c)
{
    conn_teardown(c);
    pl_engine_clear(&c->eng);
    free(c->addrs);
    free(c->attempts);
    free(c);
}

void pl_conn_free(pl_conn *c)
{
    if (!c || c->zombie)
        return;
    conn_teardown(c);
    c->closed = 1;
    listener_unlink(c);
    if (c->busy) {
        c->zombie = 1;
        return;
    }
    conn_destroy(c);
}

/* ---------------------------------------------------------------- listener */

static void listener_accept(pl_watch *w, int fd, unsigned events, void *userdata)
{
    pl_listener *l = userdata;
    /* Accept what is queued now, bounded so that a flood cannot starve the loop. */
    for (int i = 0; i < 256; i++) {
        int s = accept(l->fd, NULL, NULL);
        if (s < 0)
            return; /* EAGAIN, or EMFILE and friends: try again on the next wake-up */
        if (set_nonblock(s) < 0) {
            close(s);
            continue;
        }
        pl_conn *c = conn_alloc(l->poll, l->max_message);
        if (!c) {
            close(s);
            continue;
        }
        c->listener = l;
        c->deadline = l->poll->timeout_new(l->poll, LISTENER_HANDSHAKE_MS, handshake_expired, c);
        if (!c->deadline || conn_established(c, s) != PL_OK) {
            if (c->fd < 0)
                close(s);
            c->listener = NULL;
            conn_destroy(c);
            continue;
        }
        c->lnext = l->pending;
        l->pending = c;
        l->n_pending++;
        if (l->n_pending > LISTENER_MAX_PENDING) {
            pl_conn *oldest = l->pending;
            while (oldest->lnext)
                oldest = oldest->lnext;
            conn_fail(oldest, PL_ERR_TIMEOUT);
        }
    }
}

int pl_listener_new(const pl_poll *poll, uint16_t port, pl_accept_cb cb, void *userdata,
                    pl_listener **out)
{
    if (!poll || !cb || !out)
        return PL_ERR_INVALID;
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
                return PL_ERR_IO;
            }
        }
    }
    if (fd < 0) { /* no IPv6 on this system: IPv4 only */
        fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0)
            return PL_ERR_IO;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        struct sockaddr_in s4 = {0};
        s4.sin_family = AF_INET;
        s4.sin_addr.s_addr = htonl(INADDR_ANY);
        s4.sin_port = htons(port);
        if (bind(fd, (struct sockaddr *)&s4, sizeof s4) < 0) {
            int e = errno;
            close(fd);
            errno = e;
            return PL_ERR_IO;
        }
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (set_nonblock(fd) < 0 || listen(fd, 128) < 0 || getsockname(fd, (struct sockaddr *)&ss, &sl) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return PL_ERR_IO;
    }
    pl_listener *l = calloc(1, sizeof *l);
    if (!l) {
        close(fd);
        return PL_ERR_NOMEM;
    }
    l->poll = poll;
    l->fd = fd;
    l->cb = cb;
    l->userdata = userdata;
    l->max_message = PL_DEFAULT_MAX_MESSAGE;
    l->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                             : ((struct sockaddr_in *)&ss)->sin_port);
    l->w = poll->watch_new(poll, fd, PL_WATCH_IN, listener_accept, l);
    if (!l->w) {
        close(fd);
        free(l);
        return PL_ERR_NOMEM;
    }
    *out = l;
    return PL_OK;
}

uint16_t pl_listener_port(const pl_listener *l)
{
    return l ? l->port : 0;
}

int pl_listener_set_max_message(pl_listener *l, size_t max)
{
    if (!l || max == 0 || max > PL_MAX_MESSAGE_LIMIT)
        return PL_ERR_INVALID;
    l->max_message = max;
    return PL_OK;
}

size_t pl_listener_pending(const pl_listener *l)
{
    return l ? l->n_pending : 0;
}

static void listener_destroy(pl_listener *l)
{
    free(l);
}

void pl_listener_free(pl_listener *l)
{
    if (!l || l->zombie)
        return;
    while (l->pending) {
        pl_conn *c = l->pending;
        listener_unlink(c);
        conn_destroy(c);
    }
    if (l->w)
        l->poll->watch_free(l->w);
    l->w = NULL;
    close(l->fd);
    if (l->busy) {
        l->zombie = 1;
        return;
    }
    listener_destroy(l);
}
