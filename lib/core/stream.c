/* SPDX-License-Identifier: ISC */
/*
 * The session's stream (see engine.h and docs/PROTOCOL.md section 8):
 * what is sent and kept until acknowledged, what arrived while the
 * application paused, and the engine's calls that work on it - send,
 * shutdown, Ack, Ping, Abort, hold, a new link, a resumed session.
 */
#include "engine_int.h"

/* ---------------------------------------------------------------- the stream */

/* An entry in a list of entries: u32 tag (the length, or PL_STREAM_EOS) and its bytes. */
static int entry_append(pl_buf *b, const void *data, size_t len, uint32_t tag)
{
    uint8_t n[4];
    put_be32(n, tag);
    int rc = pl_buf_reserve(b, 4 + len);
    if (rc != PL_OK)
        return rc;
    pl_buf_append(b, n, 4);
    if (len)
        pl_buf_append(b, data, len);
    return PL_OK;
}

/* Append an entry (a message, or end-of-stream with tag PL_STREAM_EOS) to
 * the session. Its entry in unacked stays where it is written until the
 * peer acknowledges it (no compaction: see pl_ring in buf.h). */
int pl__stream_append(pl_stream *st, const void *data, size_t len, uint32_t tag)
{
    if (len > SIZE_MAX - 4)
        return PL_ERR_NOMEM;
    uint8_t *p = pl_ring_push(&st->unacked, 4 + len);
    if (p == NULL)
        return PL_ERR_NOMEM;
    put_be32(p, tag);
    if (len)
        memcpy(p + 4, data, len);
    st->unacked_bytes += len;
    st->tx_next++;
    return PL_OK;
}

/* Take back the entry just appended (it could not be sent). */
static void stream_unappend(pl_stream *st, size_t len)
{
    pl_ring_unpush(&st->unacked, 4 + len);
    st->unacked_bytes -= len;
    st->tx_next--;
}

/* The peer delivered everything below n (tx_acked <= n <= tx_next): drop it. */
void pl__stream_acked(pl_stream *st, uint64_t n)
{
    while (st->tx_acked < n) {
        uint32_t len = get_be32(pl_ring_at(&st->unacked, 0));
        size_t size = 4 + (len == PL_STREAM_EOS ? 0 : len);
        pl_ring_pop(&st->unacked, size);
        if (len != PL_STREAM_EOS)
            st->unacked_bytes -= len;
        if (st->tx_sent > st->tx_acked)
            st->sent_off -= size;
        st->tx_acked++;
    }
    if (st->tx_sent < st->tx_acked) {
        st->tx_sent = st->tx_acked;
        st->sent_off = 0;
    }
}

/* Keep an entry that arrived, for later delivery (the caller counts it in
 * rx_next): a message (tag = len) or the end-of-stream (PL_STREAM_EOS). */
int pl__stream_hold(pl_stream *st, const uint8_t *data, size_t len, uint32_t tag)
{
    int rc = entry_append(&st->held, data, len, tag);
    if (rc != PL_OK)
        return rc;
    st->held_n++;
    st->held_eos = tag == PL_STREAM_EOS;
    if (!st->held_eos) /* as the sender counts it against its limit: messages only */
        st->held_cost += len + PL_STREAM_ENTRY_COST;
    return PL_OK;
}

/* A new connection: what was held was never acknowledged, so the peer
 * sends it again; take it back out of what arrived. */
static void stream_unhold(pl_stream *st)
{
    st->rx_next -= st->held_n;
    if (st->held_eos)
        st->peer_eof = 0;
    pl_buf_clear(&st->held);
    st->held_n = 0;
    st->held_cost = 0;
    st->held_eos = 0;
}

static int send_eos(pl_engine *e, uint64_t seq)
{
    Peerlink__Control c = PEERLINK__CONTROL__INIT;
    Peerlink__EndOfStream eos = PEERLINK__END_OF_STREAM__INIT;
    eos.seq = seq;
    c.msg_case = PEERLINK__CONTROL__MSG_END_OF_STREAM;
    c.end_of_stream = &eos;
    return pl__send_control(e, &c, 0, NULL, 0, NULL);
}

/* Seal every entry of the stream not yet sent on this connection. */
int pl__flush_stream(pl_engine *e)
{
    pl_stream *st = &e->st;
    while (st->tx_sent < st->tx_next) {
        const uint8_t *p = pl_ring_at(&st->unacked, st->sent_off);
        uint32_t n = get_be32(p);
        int rc;
        if (n == PL_STREAM_EOS) {
            rc = send_eos(e, st->tx_sent);
            n = 0;
        } else {
            uint8_t seq[PL_SEQ_SIZE];
            if (n > e->peer_max) {
                e->unsendable = 1;
                return PL_ERR_TOO_LARGE;
            }
            put_be64(seq, st->tx_sent);
            rc = pl__send_message2(e, PL_FRAME_DATA, seq, sizeof seq, p + 4, n);
        }
        if (rc != PL_OK)
            return rc;
        st->sent_off += 4 + (size_t)n;
        st->tx_sent++;
    }
    return PL_OK;
}

int pl_engine_send(pl_engine *e, const void *data, size_t len, size_t limit)
{
    pl_stream *st = &e->st;
    if (st->local_eof)
        return PL_ERR_STATE;
    if (len > PL_MAX_MESSAGE_LIMIT || (e->peer_max && len > e->peer_max))
        return PL_ERR_TOO_LARGE;
    /* Each message costs its bytes and PL_STREAM_ENTRY_COST (its share of
     * bookkeeping and sealing), so that empty messages are bounded too. */
    size_t used = st->unacked_bytes + (size_t)(st->tx_next - st->tx_acked) * PL_STREAM_ENTRY_COST;
    if (limit && st->tx_next > st->tx_acked &&
        (len > limit || len + PL_STREAM_ENTRY_COST > limit - (used < limit ? used : limit)))
        return PL_ERR_AGAIN;
    int rc = pl__stream_append(st, data, len, (uint32_t)len);
    if (rc != PL_OK || e->state != PL_HS_OPEN)
        return rc;
    /* Nothing leaves in clear: before OPEN it waits in the stream. */
    if ((rc = pl__flush_stream(e)) != PL_OK)
        stream_unappend(st, len);
    return rc;
}

int pl_engine_shutdown(pl_engine *e)
{
    pl_stream *st = &e->st;
    if (st->local_eof)
        return PL_OK;
    int rc = pl__stream_append(st, NULL, 0, PL_STREAM_EOS);
    if (rc != PL_OK)
        return rc;
    if (e->state == PL_HS_OPEN && (rc = pl__flush_stream(e)) != PL_OK) {
        stream_unappend(st, 0);
        return rc;
    }
    st->local_eof = 1;
    return PL_OK;
}

/* ---------------------------------------------------------------- metadata */

/* A TXT record a Metadata message may carry: 1..PL_METADATA_MAX bytes that decode. */
static int metadata_valid(const uint8_t *txt, size_t len)
{
    pl_txt *t = NULL;
    if (!txt || len < 1 || len > PL_METADATA_MAX)
        return len > PL_METADATA_MAX ? PL_ERR_TOO_LARGE : PL_ERR_INVALID;
    int rc = pl_txt_decode(txt, len, &t);
    pl_txt_free(t);
    return rc == PL_ERR_NOMEM ? rc : rc != PL_OK ? PL_ERR_INVALID : PL_OK;
}

int pl__send_metadata(pl_engine *e)
{
    if (!pl_buf_size(&e->st.txt))
        return PL_OK;
    Peerlink__Control c = PEERLINK__CONTROL__INIT;
    Peerlink__Metadata m = PEERLINK__METADATA__INIT;
    m.txt.data = (uint8_t *)pl_buf_head(&e->st.txt);
    m.txt.len = pl_buf_size(&e->st.txt);
    c.msg_case = PEERLINK__CONTROL__MSG_METADATA;
    c.metadata = &m;
    return pl__send_control(e, &c, 0, NULL, 0, NULL);
}

int pl__send_waiting(pl_engine *e)
{
    int rc = pl__send_metadata(e);
    return rc == PL_OK ? pl__flush_stream(e) : rc;
}

int pl_engine_set_metadata(pl_engine *e, const uint8_t *txt, size_t len)
{
    int rc = metadata_valid(txt, len);
    if (rc != PL_OK)
        return rc;
    pl_buf old = e->st.txt;
    pl_buf_init(&e->st.txt);
    if ((rc = pl_buf_append(&e->st.txt, txt, len)) == PL_OK && e->state == PL_HS_OPEN)
        rc = pl__send_metadata(e);
    if (rc != PL_OK) { /* nothing changes */
        pl_buf_clear(&e->st.txt);
        e->st.txt = old;
        return rc;
    }
    pl_buf_clear(&old);
    return PL_OK;
}

/* The peer's metadata: an event when it differs from what it sent before
 * (a new connection of the session sends it again). */
int pl__receive_metadata(pl_engine *e, const uint8_t *txt, size_t len)
{
    pl_buf *have = &e->st.peer_txt;
    int rc = metadata_valid(txt, len);
    if (rc != PL_OK)
        return rc == PL_ERR_NOMEM ? rc : PL_ERR_PROTOCOL;
    if (pl_buf_size(have) == len && memcmp(pl_buf_head(have), txt, len) == 0)
        return 0;
    pl_buf_clear(have);
    if ((rc = pl_buf_append(have, txt, len)) != PL_OK)
        return rc;
    return PL_ENGINE_PEER_TXT;
}

/* A sealed control message with no fields. */
static int send_simple(pl_engine *e, Peerlink__Control__MsgCase which)
{
    Peerlink__Control c = PEERLINK__CONTROL__INIT;
    Peerlink__Ping ping = PEERLINK__PING__INIT;
    Peerlink__Abort abort_ = PEERLINK__ABORT__INIT;
    if (e->state != PL_HS_OPEN)
        return PL_ERR_STATE;
    c.msg_case = which;
    if (which == PEERLINK__CONTROL__MSG_PING)
        c.ping = &ping;
    else
        c.abort = &abort_;
    return pl__send_control(e, &c, 0, NULL, 0, NULL);
}

int pl_engine_ping(pl_engine *e)
{
    return send_simple(e, PEERLINK__CONTROL__MSG_PING);
}

int pl_engine_abort(pl_engine *e)
{
    return send_simple(e, PEERLINK__CONTROL__MSG_ABORT);
}

int pl_engine_ack(pl_engine *e)
{
    pl_stream *st = &e->st;
    uint64_t delivered = pl_stream_delivered(st);
    if (e->state != PL_HS_OPEN || (delivered == st->rx_acked && !e->ping_owed))
        return PL_OK;
    Peerlink__Control c = PEERLINK__CONTROL__INIT;
    Peerlink__Ack ack = PEERLINK__ACK__INIT;
    ack.delivered = delivered;
    c.msg_case = PEERLINK__CONTROL__MSG_ACK;
    c.ack = &ack;
    int rc = pl__send_control(e, &c, 0, NULL, 0, NULL);
    if (rc == PL_OK) {
        st->rx_acked = delivered;
        e->ping_owed = 0;
    }
    return rc;
}

int pl_engine_done(const pl_engine *e)
{
    return e->state == PL_HS_OPEN && pl_stream_complete(&e->st) && e->st.rx_acked == e->st.rx_next;
}

void pl_engine_hold(pl_engine *e, int on)
{
    e->st.hold = on != 0;
}

int pl_engine_next_held(pl_engine *e, pl_engine_event *ev)
{
    pl_stream *st = &e->st;
    if (st->hold || !st->held_n)
        return 0;
    const uint8_t *p = pl_buf_head(&st->held);
    uint32_t len = get_be32(p);
    size_t body = len == PL_STREAM_EOS ? 0 : len;
    ev->type = len == PL_STREAM_EOS ? PL_ENGINE_PEER_EOF : PL_ENGINE_MESSAGE;
    ev->data = p + 4; /* consuming keeps the bytes where they are until the next append */
    ev->len = body;
    ev->seq = pl_stream_acked_messages(st);
    pl_buf_consume(&st->held, 4 + body);
    st->held_n--;
    if (len != PL_STREAM_EOS)
        st->held_cost -= body + PL_STREAM_ENTRY_COST;
    if (!st->held_n)
        st->held_eos = 0;
    return 1;
}

int pl_engine_truncated(const pl_engine *e)
{
    return pl_deframer_in_progress(&e->outer) || pl_reasm_in_progress(&e->in);
}

void pl_engine_relink(pl_engine *e)
{
    pl__clear_link(e);
    pl_engine old = *e;
    pl_engine_init(e, old.max_message);
    e->st = old.st; /* the session, and the configuration, stay */
    stream_unhold(&e->st);
    e->peer_max = old.peer_max; /* until the next Hello says otherwise: pl_engine_send() checks it */
    e->st.tx_sent = e->st.tx_acked;
    e->st.sent_off = 0;
    e->initiator = old.initiator;
    memcpy(e->identity_sk, old.identity_sk, sizeof e->identity_sk);
    memcpy(e->name, old.name, sizeof e->name);
    memcpy(e->instance, old.instance, sizeof e->instance);
    e->have_instance = old.have_instance;
    e->hooks = old.hooks;
    e->hooks_ctx = old.hooks_ctx;
    e->rekey_interval = old.rekey_interval;
    e->aead = old.aead;
    memcpy(e->peer_id, old.peer_id, sizeof e->peer_id);
    memcpy(e->peer_name, old.peer_name, sizeof e->peer_name);
    /* Never pair again: reconnect to the identity the session was made with. */
    if (old.st.established) {
        memcpy(e->expected_peer, old.peer_id, sizeof e->expected_peer);
        e->have_expected_peer = 1;
    } else {
        memcpy(e->expected_peer, old.expected_peer, sizeof e->expected_peer);
        e->have_expected_peer = old.have_expected_peer;
    }
    sodium_memzero(&old, sizeof old);
}

int pl_engine_adopt(pl_engine *e, pl_stream *from)
{
    if (!e->resumed || e->initiator || e->state != PL_HS_OPEN)
        return PL_ERR_STATE;
    pl_stream_clear(&e->st);
    e->st = *from;
    memset(from, 0, sizeof *from);
    pl_ring_init(&from->unacked);
    pl_buf_init(&from->held);
    pl_buf_init(&from->txt);
    pl_buf_init(&from->peer_txt);
    stream_unhold(&e->st); /* the peer was told what was delivered, not what was held */
    pl__stream_acked(&e->st, e->peer_delivered);
    e->st.tx_sent = e->st.tx_acked;
    e->st.sent_off = 0;
    e->st.rx_acked = e->st.rx_next;
    return pl__send_waiting(e);
}
