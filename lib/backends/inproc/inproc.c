/* SPDX-License-Identifier: ISC */
/*
 * The "inproc" link: two sessions of one process joined in memory, with
 * no socket and no application pipe (nng's inproc transport). Each end
 * buffers what its peer wrote, bounded like a socket's receive buffer;
 * everything moves from the loop. Closing one end is the peer's end of
 * input (as a TCP FIN); cutting one makes its link fail. Tests use it to
 * run sessions, their resumption included, over a link that is neither
 * a socket nor a channel.
 */
#include "backends/inproc/inproc.h"

#include "session_internal.h"

/* What one end holds of its peer's bytes before the peer waits. */
#define INPROC_BUFFER (4 * PL_READ_CHUNK)

typedef struct inproc_end inproc_end;
struct inproc_end {
    pl_link head;
    const pl_poll *poll;
    inproc_end *peer; /* NULL once the other end is closed */
    pl_timeout *kick; /* the link's work, from the loop */
    pl_buf in;        /* the peer's bytes, not yet fed to our session */
    int eof;          /* the peer closed its end: after in, our input ends */
    int failed;       /* cut: our link fails with this status */
    int blocked;      /* the peer's buffer was full: wait until it reads */
    int kicked;       /* the kick is armed: arming it again would put it off */
};

/* The two ends wake each other all the time: a kick once armed is left
 * alone, or each end's wake-ups could keep putting off the other's. */
static void kick_soon(inproc_end *e)
{
    if (!e->kicked) {
        e->kicked = 1;
        e->poll->timeout_update(e->kick, 0);
    }
}

static void ip_interest(pl_link *lk)
{
    inproc_end *e = (inproc_end *)lk;
    pl_session *c = lk->c;
    int room = !pl__session_input_full(c);
    if (c->eng.state == PL_HS_IDLE || e->failed || (pl_buf_size(&c->eng.out) && !e->blocked) ||
        (room && (pl_buf_size(&e->in) || e->eof)))
        kick_soon(e);
}

/* Hand the peer what fits of buf; the count taken. */
static size_t give(inproc_end *e, const uint8_t *buf, size_t n)
{
    inproc_end *p = e->peer;
    size_t have = pl_buf_size(&p->in);
    size_t room = have < INPROC_BUFFER ? INPROC_BUFFER - have : 0;
    if (n > room)
        n = room;
    if (n && pl_buf_append(&p->in, buf, n) != PL_OK)
        return 0;
    if (n)
        kick_soon(p);
    return n;
}

static void ip_flush_once(pl_link *lk)
{
    inproc_end *e = (inproc_end *)lk;
    pl_buf *out = &lk->c->eng.out;
    if (e->peer && !e->failed)
        (void)give(e, pl_buf_head(out), pl_buf_size(out));
}

static void end_free(inproc_end *e)
{
    if (e->peer) {
        e->peer->peer = NULL;
        e->peer->eof = 1; /* the peer reads to the end, then its input ends */
        kick_soon(e->peer);
    }
    pl__free_timeout(e->poll, &e->kick);
    pl_buf_clear(&e->in);
    free(e);
}

static void ip_close(pl_link *lk)
{
    end_free((inproc_end *)lk);
}

static const pl_link_ops inproc_ops = {"inproc", ip_interest, ip_flush_once, ip_close, NULL, NULL, NULL};

static void kicked(pl_timeout *t, void *userdata)
{
    inproc_end *e = userdata;
    pl_session *c = e->head.c;
    (void)t;
    e->kicked = 0;
    if (!c)
        return;
    if (e->failed) {
        pl__session_fail(c, e->failed);
        return;
    }
    if (!pl__session_start_if_idle(c))
        return;
    /* Room for what the peer waits to write: told before feeding, as
     * feeding may end the session and free this end. */
    if (pl_buf_size(&e->in) && !pl__session_input_full(c) && e->peer && e->peer->blocked) {
        e->peer->blocked = 0;
        kick_soon(e->peer);
    }
    if (!pl__session_feed(c, &e->head, &e->in))
        return;
    if (e->eof && !pl_buf_size(&e->in)) {
        e->eof = 0;
        pl__session_input_end(c);
        return;
    }
    pl_buf *out = &c->eng.out;
    if (pl_buf_size(out) && !e->blocked) {
        if (!e->peer) {
            pl__session_fail(c, PL_ERR_CLOSED); /* writing to a closed end, as EPIPE */
            return;
        }
        size_t n = give(e, pl_buf_head(out), pl_buf_size(out));
        e->blocked = n < pl_buf_size(out);
        if (n)
            pl__session_wrote(c, n);
    }
}

static inproc_end *end_new(const pl_poll *poll)
{
    inproc_end *e = calloc(1, sizeof *e);
    if (!e)
        return NULL;
    e->head.ops = &inproc_ops;
    e->poll = poll;
    pl_buf_init(&e->in);
    e->kick = poll->timeout_new(poll, -1, kicked, e);
    if (!e->kick) {
        free(e);
        return NULL;
    }
    return e;
}

int pl__inproc_pair(const pl_poll *poll, pl_link **a, pl_link **b)
{
    if (!poll || !a || !b)
        return PL_ERR_INVALID;
    inproc_end *x = end_new(poll), *y = end_new(poll);
    if (!x || !y) {
        if (x)
            end_free(x);
        if (y)
            end_free(y);
        return PL_ERR_NOMEM;
    }
    x->peer = y;
    y->peer = x;
    *a = &x->head;
    *b = &y->head;
    return PL_OK;
}

void pl__inproc_cut(pl_link *end, int status)
{
    inproc_end *e = (inproc_end *)end;
    if (!e || e->head.ops != &inproc_ops || e->failed)
        return;
    e->failed = status < 0 ? status : PL_ERR_IO;
    kick_soon(e);
}
