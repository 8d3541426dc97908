/* SPDX-License-Identifier: ISC */
/*
 * The "channel" link: a byte pipe the application moves bytes over (a
 * Wi-Fi Aware data path or a BLE channel opened by Swift, Kotlin or Java
 * code; a Network.framework connection through lib/backends/apple). Outgoing
 * bytes go to ops.write; incoming ones come with pl_channel_input(),
 * bounded like a socket's receive buffer; everything is processed from
 * the loop, never inside the application's call.
 */
#include "session_internal.h"

/* Input waiting for the loop: more is refused (PL_ERR_AGAIN), except
 * that one chunk of any size is taken when none waits. */
#define CHANNEL_INPUT_MAX PL_READ_CHUNK

struct pl_channel {
    pl_link head;
    const pl_poll *poll;
    pl_channel_ops ops;
    void *ctx;
    pl_timeout *kick; /* the link's work, from the loop */
    pl_buf in;        /* input not yet fed to the session */
    int eof;          /* the pipe ended (after in) */
    int failed;       /* the pipe failed: this status, from the loop */
    int blocked;      /* ops.write took less than offered: wait for pl_channel_writable() */
    int refused;      /* pl_channel_input() said PL_ERR_AGAIN: call ops.input_ready once there is room */
    int kicked;       /* the kick is armed: arming it again would put it off */
};

/* Input and output wake the link all the time (the application's calls,
 * the session's sends): a kick once armed is left alone, or a steady
 * stream of wake-ups could keep putting it off. */
static void kick_soon(pl_channel *ch)
{
    if (!ch->kicked) {
        ch->kicked = 1;
        ch->poll->timeout_update(ch->kick, 0);
    }
}

static void ch_interest(pl_link *lk)
{
    pl_channel *ch = (pl_channel *)lk;
    pl_session *c = lk->c;
    int room = !pl__session_input_full(c);
    if (c->eng.state == PL_HS_IDLE || ch->failed || (pl_buf_size(&c->eng.out) && !ch->blocked) ||
        (room && (pl_buf_size(&ch->in) || ch->eof || ch->refused)))
        kick_soon(ch);
}

static void ch_flush_once(pl_link *lk)
{
    pl_channel *ch = (pl_channel *)lk;
    pl_buf *out = &lk->c->eng.out;
    if (ch->ops.write && !ch->failed)
        (void)ch->ops.write(ch->ctx, pl_buf_head(out), pl_buf_size(out));
}

/* Free the link; the application releases the pipe (ops.close) unless abandoned. */
static void ch_free(pl_channel *ch, int release)
{
    pl__free_timeout(ch->poll, &ch->kick);
    pl_buf_clear(&ch->in);
    if (release && ch->ops.close)
        ch->ops.close(ch->ctx);
    free(ch);
}

static void ch_close(pl_link *lk)
{
    ch_free((pl_channel *)lk, 1);
}

static const pl_link_ops channel_ops = {"channel", ch_interest, ch_flush_once, ch_close, NULL, NULL, NULL};

/* The first kick starts the handshake; each one then moves bytes. */
static void kicked(pl_timeout *t, void *userdata)
{
    pl_channel *ch = userdata;
    pl_session *c = ch->head.c;
    (void)t;
    ch->kicked = 0;
    if (!c)
        return;
    if (ch->failed) {
        pl__session_fail(c, ch->failed);
        return;
    }
    if (!pl__session_start_if_idle(c))
        return;
    pl_buf *out = &c->eng.out;
    if (pl_buf_size(out) && !ch->blocked) {
        long n = ch->ops.write(ch->ctx, pl_buf_head(out), pl_buf_size(out));
        if (n < 0 || (size_t)n > pl_buf_size(out)) {
            pl__session_fail(c, PL_ERR_IO);
            return;
        }
        ch->blocked = (size_t)n < pl_buf_size(out);
        if (n > 0 && !pl__session_wrote(c, (size_t)n))
            return;
    }
    if (!pl__session_feed(c, &ch->head, &ch->in))
        return;
    if (ch->eof && !pl_buf_size(&ch->in)) {
        ch->eof = 0;
        pl__session_input_end(c);
        return;
    }
    if (ch->refused && !pl_buf_size(&ch->in) && !pl__session_input_full(c)) {
        ch->refused = 0;
        if (ch->ops.input_ready)
            ch->ops.input_ready(ch->ctx); /* may give input again at once */
    }
}

static int ch_new(const pl_poll *poll, const pl_channel_ops *ops, void *ctx, pl_channel **out)
{
    pl_channel_ops o;
    if (pl__copy_vtable(&o, sizeof o, ops, PL__CHANNEL_OPS_V1_SIZE) != PL_OK || !o.write)
        return PL_ERR_INVALID;
    pl_channel *ch = calloc(1, sizeof *ch);
    if (!ch)
        return PL_ERR_NOMEM;
    ch->head.ops = &channel_ops;
    ch->poll = poll;
    ch->ops = o;
    ch->ctx = ctx;
    pl_buf_init(&ch->in);
    ch->kick = poll->timeout_new(poll, -1, kicked, ch);
    if (!ch->kick) {
        free(ch);
        return PL_ERR_NOMEM;
    }
    *out = ch;
    return PL_OK;
}

void pl__channel_abandon(pl_channel *ch)
{
    if (ch)
        ch->ops.close = NULL;
}

/* ---------------------------------------------------------------- the pipe's API */

int pl_channel_input(pl_channel *ch, const void *data, size_t len)
{
    if (!ch)
        return PL_ERR_INVALID;
    pl_session *c = ch->head.c;
    if (!c || c->closed || ch->eof || ch->failed)
        return PL_ERR_STATE;
    size_t have = pl_buf_size(&ch->in);
    if (len == 0) {
        ch->eof = 1;
    } else if (!data) {
        return PL_ERR_INVALID;
    } else if (ch->refused || pl__session_input_full(c) || (have && len > CHANNEL_INPUT_MAX - have)) {
        /* As a socket's receive buffer: what the pipe brings waits with the
         * application until the session has room (ops.input_ready). */
        ch->refused = 1;
        return PL_ERR_AGAIN;
    } else if (pl_buf_append(&ch->in, data, len) != PL_OK) {
        return PL_ERR_NOMEM;
    }
    pl__session_update_interest(c);
    return PL_OK;
}

void pl_channel_writable(pl_channel *ch)
{
    if (!ch || !ch->head.c || ch->head.c->closed)
        return;
    ch->blocked = 0;
    pl__session_update_interest(ch->head.c);
}

void pl_channel_fail(pl_channel *ch, int status)
{
    if (!ch || !ch->head.c || ch->failed)
        return;
    ch->failed = status < 0 ? status : PL_ERR_IO;
    pl__session_update_interest(ch->head.c);
}

pl_channel *pl_session_channel(const pl_session *c)
{
    return c && c->link && c->link->ops == &channel_ops ? (pl_channel *)c->link : NULL;
}

int pl_session_channel_input(pl_session *c, const void *data, size_t len)
{
    if (!c)
        return PL_ERR_INVALID;
    pl_channel *ch = pl_session_channel(c);
    return ch ? pl_channel_input(ch, data, len) : PL_ERR_STATE;
}

void pl_session_channel_writable(pl_session *c)
{
    pl_channel_writable(pl_session_channel(c));
}

/* ---------------------------------------------------------------- sessions over channels */

int pl_session_new_channel(pl_node *node, const pl_channel_ops *ops, void *ctx, pl_role role, const char *instance,
                           pl_session_cb cb, void *userdata, pl_session **out)
{
    int rc = pl__session_args_ok(node, role, instance, out);
    pl_channel *ch = NULL;
    if (rc == PL_OK && (rc = ch_new(node->poll, ops, ctx, &ch)) == PL_OK && (rc = pl__session_new_on(node, &ch->head, role, instance, cb, userdata, out)) != PL_OK)
        ch_free(ch, 0);
    return rc;
}

int pl_session_attach_channel(pl_session *c, const pl_channel_ops *ops, void *ctx)
{
    if (!c)
        return PL_ERR_INVALID;
    int rc = pl__session_can_relink(c);
    pl_channel *ch = NULL;
    if (rc == PL_OK && (rc = ch_new(c->node->poll, ops, ctx, &ch)) == PL_OK)
        pl__session_relink(c, &ch->head);
    return rc;
}

int pl_listener_add_channel(pl_listener *l, const pl_channel_ops *ops, void *ctx, pl_channel **out)
{
    if (!l || !out)
        return PL_ERR_INVALID;
    pl_channel *ch = NULL;
    int rc = ch_new(l->node->poll, ops, ctx, &ch);
    if (rc != PL_OK)
        return rc;
    rc = pl__listener_take(l, &ch->head);
    if (rc != PL_OK) {
        ch_free(ch, 0); /* the pipe stays the application's */
        return rc;
    }
    *out = ch;
    return PL_OK;
}
