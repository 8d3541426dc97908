/* SPDX-License-Identifier: ISC */
/* Sessions over an asynchronous transport. See chan.h. */
#include "backends/apple/chan.h"

#include "backends/apple/hop.h"
#include "session_glue.h"

enum { CH_CONNECTING = 0, CH_READY = 1, CH_DONE = 2 };

struct pl_chan {
    pl_ref ref;           /* the glue's (until the session is gone) + the transport's */
    const pl_poll *poll;  /* loop thread from here on */
    const pl_chan_io *ops;
    void *io;
    int state;
    int io_closed;        /* ops->finish or ops->cancel was called */
    pl_channel *pch;      /* the link of a session over this transport; NULL before (responder) or once it closed */
    int session_started;  /* a link was created (the session owns the glue's reference from then on) */
    int in_eof;           /* the end of the input was handed to the session */
    uint8_t *in_held;     /* a chunk the session refused (PL_ERR_AGAIN): given again on input_ready */
    size_t in_held_len;
    size_t inflight;      /* bytes sent and not yet confirmed */
    int blocked;          /* write took less than offered: call writable when there is room */
    int fail_status;      /* why the transport ended: the status its link breaks with */
    pl_timeout *deadline; /* responder: until the transport is ready */
    pl_timeout *reaper;
    /* The responder's acceptor until its transport is ready. */
    pl_chan_acceptor *acc;
    pl_chan *anext;
};

/* Transports wait here until they are ready; then each becomes a link of
 * the generic listener (listener.c), which runs the handshake under its
 * pairing policy and hands over a new session, or continues an
 * interrupted one. */
struct pl_chan_acceptor {
    const pl_poll *poll;
    pl_listener *l;   /* the application's: its policy, instance name and accept callback */
    pl_chan *pending; /* not ready yet */
    size_t n_pending;
};

static void acc_unlink(pl_chan *ch);

static void chan_destroy(pl_chan *ch)
{
    if (ch->ops->release)
        ch->ops->release(ch->io);
    free(ch->in_held);
    free(ch);
}

static void chan_put(pl_chan *ch)
{
    if (pl__ref_put(&ch->ref))
        chan_destroy(ch);
}

void pl__chan_io_release(pl_chan *ch)
{
    chan_put(ch);
}

/* Tell the transport we want nothing more from it (once). */
static void io_close(pl_chan *ch, int graceful)
{
    if (ch->io_closed)
        return;
    ch->io_closed = 1;
    if (graceful && ch->state == CH_READY)
        ch->ops->finish(ch->io);
    else
        ch->ops->cancel(ch->io);
}

static void free_timeout(pl_chan *ch, pl_timeout **t)
{
    if (*t)
        ch->poll->timeout_free(*t);
    *t = NULL;
}

/* The glue lets go: loop objects first, then its reference. */
static void glue_done(pl_chan *ch)
{
    acc_unlink(ch);
    free_timeout(ch, &ch->deadline);
    free_timeout(ch, &ch->reaper);
    io_close(ch, 0);
    ch->state = CH_DONE;
    chan_put(ch);
}

static void reap(pl_timeout *t, void *userdata)
{
    pl_chan *ch = userdata;
    (void)t;
    glue_done(ch);
}

/* ---------------------------------------------------------------- the session's channel ops */

static long ch_write(void *ctx, const uint8_t *data, size_t len)
{
    pl_chan *ch = ctx;
    if (ch->state == CH_DONE || ch->io_closed)
        return -1;
    if (ch->state != CH_READY || ch->inflight >= PL_CHAN_WINDOW) {
        ch->blocked = 1;
        return 0;
    }
    size_t n = PL_CHAN_WINDOW - ch->inflight;
    if (n > len)
        n = len;
    if (ch->ops->send(ch->io, data, n) != PL_OK)
        return -1;
    ch->inflight += n;
    ch->blocked = n < len;
    return (long)n;
}

/* The link is over (the session ended, was freed, or goes on over
 * another link). A CLOSED callback may still follow in the same call
 * stack and use ch as userdata: the glue's reference goes on the next
 * loop iteration. */
static void ch_close(void *ctx)
{
    pl_chan *ch = ctx;
    ch->pch = NULL;
    acc_unlink(ch);
    io_close(ch, 1);
    free_timeout(ch, &ch->deadline);
    ch->reaper = ch->poll->timeout_new(ch->poll, 0, reap, ch);
    /* Without memory for the timer, ch leaks rather than risk a use after free. */
}

/* The session has room again for the chunk it refused: give it, then
 * ask the transport for more. */
static void ch_input_ready(void *ctx)
{
    pl_chan *ch = ctx;
    if (!ch->in_held || !ch->pch)
        return;
    int rc = pl_channel_input(ch->pch, ch->in_held, ch->in_held_len);
    if (rc == PL_ERR_AGAIN)
        return; /* refused again: the next input_ready */
    free(ch->in_held);
    ch->in_held = NULL;
    ch->in_held_len = 0;
    if (rc == PL_ERR_NOMEM)
        pl__chan_failed(ch, PL_ERR_NOMEM);
    else if (!ch->io_closed)
        ch->ops->receive(ch->io);
}

static const pl_channel_ops chan_channel_ops = {
    .size = sizeof(pl_channel_ops),
    .write = ch_write,
    .close = ch_close,
    .input_ready = ch_input_ready,
};

/* An inbound transport that did not become ready in time. */
static void deadline_expired(pl_timeout *t, void *userdata)
{
    pl_chan *ch = userdata;
    (void)t;
    free_timeout(ch, &ch->deadline);
    ch->fail_status = PL_ERR_TIMEOUT;
    glue_done(ch);
}

/* ---------------------------------------------------------------- initiator */

/* A glue for io; with a deadline for becoming ready if timeout_ms > 0. */
static pl_chan *chan_alloc(const pl_poll *poll, const pl_chan_io *ops, void *io, int timeout_ms)
{
    pl_chan *ch = calloc(1, sizeof *ch);
    if (!ch)
        return NULL;
    pl__ref_init(&ch->ref);
    pl__ref_get(&ch->ref); /* the transport's */
    ch->poll = poll;
    ch->ops = ops;
    ch->io = io;
    if (timeout_ms > 0 && !(ch->deadline = poll->timeout_new(poll, timeout_ms, deadline_expired, ch))) {
        free(ch);
        return NULL;
    }
    return ch;
}

/* The initiator's side across transports, owned by its session (freed
 * when it ends): how to reach the responder again after a break. */
struct pl_chan_dialer {
    const pl_poll *poll;
    const pl_chan_io *ops;
    int timeout_ms;
    pl_session *conn;
    pl_chan_redial_fn redial;
    void *target;
    void (*target_free)(void *target);
};

static int dialer_dial(void *ctx, pl_session *c)
{
    pl_chan_dialer *d = ctx;
    (void)c;
    return d->redial(d->target, d);
}

static void dialer_free(void *ctx)
{
    pl_chan_dialer *d = ctx;
    if (d->target_free)
        d->target_free(d->target);
    free(d);
}

/* A new transport to the same target; it reaches the session through
 * pl_session_attach_channel() (pl__chan_redialed). */
static const pl_dialer_ops chan_dialer_ops = {
    .kind = "nw",
    .dial = dialer_dial,
    .free = dialer_free,
    .attaches = 1,
};

int pl__chan_connect(pl_node *node, const pl_chan_io *ops, void *io, const char *instance, int timeout_ms,
                     pl_session_cb cb, void *userdata, pl_chan_redial_fn redial, void *target,
                     void (*target_free)(void *target), pl_chan **out, pl_session **conn)
{
    const pl_poll *poll = pl_node_poll(node);
    if (!poll || !ops || !instance || !out || !conn)
        return PL_ERR_INVALID;
    pl_chan *ch = chan_alloc(poll, ops, io, 0);
    pl_chan_dialer *d = redial ? calloc(1, sizeof *d) : NULL;
    if (!ch || (redial && !d)) {
        free(ch);
        free(d);
        return PL_ERR_NOMEM; /* io and target untouched */
    }
    pl_session *c = NULL;
    int rc = pl_session_new_channel(node, &chan_channel_ops, ch, PL_ROLE_INITIATOR, instance, cb, userdata, &c);
    if (rc == PL_OK)
        rc = pl__session_set_deadline(c, timeout_ms > 0 ? timeout_ms : PL_CHAN_DEFAULT_TIMEOUT_MS);
    if (rc != PL_OK) {
        if (c) {
            pl__channel_abandon(pl_session_channel(c)); /* its close must not reach io */
            pl_session_free(c);
        }
        free(ch); /* io untouched: no release */
        free(d);
        return rc;
    }
    if (d) {
        d->poll = poll;
        d->ops = ops;
        d->timeout_ms = timeout_ms > 0 ? timeout_ms : PL_CHAN_DEFAULT_TIMEOUT_MS;
        d->conn = c;
        d->redial = redial;
        d->target = target;
        d->target_free = target_free;
        pl__session_set_dialer(c, &chan_dialer_ops, d);
    }
    ch->pch = pl_session_channel(c);
    ch->session_started = 1;
    *out = ch;
    *conn = c;
    return PL_OK;
}

int pl__chan_redialed(pl_chan_dialer *d, void *io, pl_chan **out)
{
    if (!d || !out)
        return PL_ERR_INVALID;
    pl_chan *ch = chan_alloc(d->poll, d->ops, io, 0);
    if (!ch)
        return PL_ERR_NOMEM;
    int rc = pl_session_attach_channel(d->conn, &chan_channel_ops, ch);
    if (rc == PL_OK)
        rc = pl__session_set_deadline(d->conn, d->timeout_ms); /* connecting plus the resuming handshake */
    if (rc != PL_OK) {
        if (pl_session_channel(d->conn)) {
            pl__channel_abandon(pl_session_channel(d->conn)); /* its close must not reach io */
            pl__session_drop_link(d->conn);
        }
        free(ch); /* io untouched */
        return rc;
    }
    ch->pch = pl_session_channel(d->conn);
    ch->session_started = 1;
    *out = ch;
    return PL_OK;
}

/* ---------------------------------------------------------------- transport reports */

static int responder_start(pl_chan *ch);

void pl__chan_ready(pl_chan *ch)
{
    if (ch->state != CH_CONNECTING || ch->io_closed)
        return;
    ch->state = CH_READY;
    if (!ch->session_started && responder_start(ch) != PL_OK) {
        glue_done(ch);
        return;
    }
    ch->ops->receive(ch->io);
    if (ch->blocked && ch->pch) {
        ch->blocked = 0;
        pl_channel_writable(ch->pch);
    }
}

void pl__chan_input(pl_chan *ch, const uint8_t *data, size_t len)
{
    if (!ch->pch || ch->io_closed || ch->in_eof)
        return;
    ch->in_eof = len == 0;
    /* Behind a kept chunk, input waits too, in order. */
    int rc = ch->in_held && len ? PL_ERR_AGAIN : pl_channel_input(ch->pch, data, len);
    if (rc == PL_ERR_AGAIN) {
        /* The session holds all it may: keep the chunk (after any kept
         * before), and ask the transport for nothing more until input_ready. */
        uint8_t *p = realloc(ch->in_held, ch->in_held_len + len);
        if (!p) {
            pl__chan_failed(ch, PL_ERR_NOMEM);
            return;
        }
        memcpy(p + ch->in_held_len, data, len);
        ch->in_held = p;
        ch->in_held_len += len;
        return;
    }
    if (rc == PL_ERR_NOMEM) {
        pl__chan_failed(ch, PL_ERR_NOMEM);
        return;
    }
    if (len)
        ch->ops->receive(ch->io);
}

void pl__chan_sent(pl_chan *ch, size_t n, int status)
{
    ch->inflight = n > ch->inflight ? 0 : ch->inflight - n;
    if (status != PL_OK) {
        pl__chan_failed(ch, status);
        return;
    }
    if (ch->blocked && ch->pch && ch->state == CH_READY && ch->inflight < PL_CHAN_WINDOW) {
        ch->blocked = 0;
        pl_channel_writable(ch->pch);
    }
}

void pl__chan_failed(pl_chan *ch, int status)
{
    if (ch->state == CH_DONE)
        return;
    if (!ch->fail_status)
        ch->fail_status = status ? status : PL_ERR_CLOSED;
    io_close(ch, 0);
    if (!ch->session_started) {
        glue_done(ch); /* an inbound connection that never became ready: no session, no attempt */
        return;
    }
    if (ch->pch && !ch->in_eof) {
        ch->in_eof = 1;
        pl_channel_fail(ch->pch, ch->fail_status); /* the link breaks, from the loop */
    }
}

/* ---------------------------------------------------------------- responder */

static void acc_unlink(pl_chan *ch)
{
    pl_chan_acceptor *a = ch->acc;
    if (!a)
        return;
    for (pl_chan **p = &a->pending; *p; p = &(*p)->anext) {
        if (*p == ch) {
            *p = ch->anext;
            a->n_pending--;
            break;
        }
    }
    ch->acc = NULL;
    ch->anext = NULL;
}

int pl__chan_acceptor_new(pl_listener *l, pl_chan_acceptor **out)
{
    if (!l || !out)
        return PL_ERR_INVALID;
    pl_chan_acceptor *a = calloc(1, sizeof *a);
    if (!a)
        return PL_ERR_NOMEM;
    a->poll = pl__listener_poll(l);
    a->l = l;
    *out = a;
    return PL_OK;
}

size_t pl__chan_acceptor_pending(const pl_chan_acceptor *a)
{
    return a ? a->n_pending : 0;
}

void pl__chan_acceptor_free(pl_chan_acceptor *a)
{
    if (!a)
        return;
    while (a->pending)
        glue_done(a->pending); /* not ready yet: no session */
    free(a);
}

int pl__chan_accept(pl_chan_acceptor *a, const pl_chan_io *ops, void *io, pl_chan **out)
{
    if (!a || !ops || !out)
        return PL_ERR_INVALID;
    pl_chan *ch = chan_alloc(a->poll, ops, io, PL_CHAN_ACCEPT_TIMEOUT_MS);
    if (!ch)
        return PL_ERR_NOMEM;
    ch->acc = a;
    ch->anext = a->pending;
    a->pending = ch;
    a->n_pending++;
    if (a->n_pending > PL_CHAN_MAX_PENDING) {
        pl_chan *oldest = a->pending;
        while (oldest->anext)
            oldest = oldest->anext;
        pl__chan_failed(oldest, PL_ERR_TIMEOUT);
    }
    *out = ch;
    return PL_OK;
}

/* The inbound transport is ready: now, and only now, a link for the
 * listener, bound to the publication's current name. */
static int responder_start(pl_chan *ch)
{
    pl_chan_acceptor *a = ch->acc;
    if (!a)
        return PL_ERR_STATE;
    int rc = pl_listener_add_channel(a->l, &chan_channel_ops, ch, &ch->pch);
    if (rc != PL_OK)
        return rc;
    acc_unlink(ch);
    free_timeout(ch, &ch->deadline); /* the listener's handshake deadline applies now */
    ch->session_started = 1;
    return PL_OK;
}
