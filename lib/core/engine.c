/* SPDX-License-Identifier: ISC */
/*
 * The connection protocol engine (see engine.h and docs/PROTOCOL.md):
 * set-up, framing and sealing what goes out, control messages and
 * errors, and the receiving side - deframing, opening records, and
 * dispatching what they carry. The handshake is handshake.c's, the
 * session's stream stream.c's.
 */
#include "engine_int.h"

/*
 * Bounds on incoming messages. The outer deframer (frames as they arrive)
 * calls outer_bound() as soon as a header is complete, before any of its
 * payload is stored: PL_CONTROL_MAX for a clear CONTROL message, one
 * frame for a RECORD. Each record is opened straight into the reassembler
 * of inner frames, which checks inner_bound() before the frame's payload
 * joins the message: PL_CONTROL_MAX for CONTROL, max_message for DATA. So
 * no type holds more than its bound, plus the one record (at most
 * PL_FRAME_MAX_PAYLOAD bytes, authenticated) being taken.
 */
static size_t sanitize_max(size_t max_message)
{
    if (max_message == 0)
        return PL_DEFAULT_MAX_MESSAGE;
    if (max_message > PL_MAX_MESSAGE_LIMIT)
        return PL_MAX_MESSAGE_LIMIT;
    return max_message;
}

uint64_t pl_stream_acked_messages(const pl_stream *st)
{
    int eos_acked = st->local_eof && st->tx_next > 0 && st->tx_acked == st->tx_next;
    return st->acked_base + st->tx_acked - (eos_acked ? 1 : 0);
}

void pl_stream_clear(pl_stream *st)
{
    pl_ring_clear(&st->unacked);
    pl_buf_clear(&st->held);
    pl_buf_clear(&st->txt);
    pl_buf_clear(&st->peer_txt);
    sodium_memzero(st, sizeof *st);
}

void pl_engine_init(pl_engine *e, size_t max_message)
{
    memset(e, 0, sizeof *e);
    e->max_message = sanitize_max(max_message);
    pl_deframer_init(&e->outer, PL_FRAME_MAX_PAYLOAD);
    pl_reasm_init(&e->in);
    pl_buf_init(&e->out);
    pl_ring_init(&e->st.unacked);
    pl_buf_init(&e->st.held);
}

/* Free what belongs to the connection (reporting an unfinished pairing). */
void pl__clear_link(pl_engine *e)
{
    if (e->pair_admitted && e->hooks.pair_end)
        e->hooks.pair_end(e->hooks_ctx, e->error ? e->error : PL_ERR_CLOSED);
    pl_deframer_clear(&e->outer);
    pl_reasm_clear(&e->in);
    pl_buf_clear(&e->out);
    pl_record_clear(&e->tx);
    pl_record_clear(&e->rx);
}

void pl_engine_clear(pl_engine *e)
{
    pl__clear_link(e);
    pl_stream_clear(&e->st);
    sodium_memzero(e, sizeof *e);
}

int pl_engine_set_max_message(pl_engine *e, size_t max)
{
    if (max == 0 || max > PL_MAX_MESSAGE_LIMIT)
        return PL_ERR_INVALID;
    if (e->state != PL_HS_IDLE)
        return PL_ERR_STATE;
    e->max_message = max;
    return PL_OK;
}

int pl_utf8_valid(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t b = s[i];
        size_t k;
        uint8_t lo = 0x80, hi = 0xbf; /* the range of the second byte */
        if (b < 0x80) {
            i++;
            continue;
        } else if (b >= 0xc2 && b <= 0xdf) {
            k = 1;
        } else if (b >= 0xe0 && b <= 0xef) {
            k = 2;
            if (b == 0xe0)
                lo = 0xa0; /* overlong */
            else if (b == 0xed)
                hi = 0x9f; /* surrogates */
        } else if (b >= 0xf0 && b <= 0xf4) {
            k = 3;
            if (b == 0xf0)
                lo = 0x90; /* overlong */
            else if (b == 0xf4)
                hi = 0x8f; /* past U+10FFFF */
        } else {
            return 0; /* a continuation byte first, an overlong lead (c0, c1), or f5..ff */
        }
        if (n - i <= k || s[i + 1] < lo || s[i + 1] > hi)
            return 0;
        for (size_t j = 2; j <= k; j++)
            if (s[i + j] < 0x80 || s[i + j] > 0xbf)
                return 0;
        i += k + 1;
    }
    return 1;
}

int pl_name_valid(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    return n <= PL_NAME_MAX && pl_utf8_valid((const uint8_t *)s, n);
}

void pl_name_truncate(char *s)
{
    size_t n = strlen(s);
    if (n > PL_NAME_MAX)
        n = PL_NAME_MAX;
    while (n && !pl_utf8_valid((const uint8_t *)s, n))
        n--;
    s[n] = 0;
}

/* A display or instance name (pl_name_valid(); NULL is ""), copied. */
int pl__copy_name(char dst[PL_NAME_MAX + 1], const char *src)
{
    size_t n = src ? strlen(src) : 0;
    if (!pl_name_valid(src))
        return PL_ERR_INVALID;
    memcpy(dst, src ? src : "", n);
    dst[n] = 0;
    return PL_OK;
}

int pl_engine_configure(pl_engine *e, const pl_engine_config *cfg)
{
    if (!cfg || !cfg->identity_sk)
        return PL_ERR_INVALID;
    if (e->state != PL_HS_IDLE)
        return PL_ERR_STATE;
    if (pl__copy_name(e->name, cfg->name) != PL_OK || pl__copy_name(e->instance, cfg->instance) != PL_OK)
        return PL_ERR_INVALID;
    pl_pair_key key = {NULL, 0, 0};
    if (cfg->code && cfg->secret)
        return PL_ERR_INVALID;
    if (cfg->code)
        key = (pl_pair_key){(const uint8_t *)cfg->code, strlen(cfg->code), 0};
    else if (cfg->secret)
        key = (pl_pair_key){cfg->secret, cfg->secret_len, 1};
    if (key.bytes && !pl__pair_key_valid(&key))
        return PL_ERR_INVALID;
    if (!cfg->initiator && !cfg->instance)
        return PL_ERR_INVALID; /* the responder binds the handshake to its instance name */
    e->initiator = cfg->initiator;
    e->have_instance = cfg->instance != NULL;
    memcpy(e->identity_sk, cfg->identity_sk, sizeof e->identity_sk);
    e->have_code = key.bytes != NULL;
    if (key.bytes)
        pl__pair_key_take(e, &key);
    e->have_expected_peer = cfg->expected_peer != NULL;
    if (cfg->expected_peer)
        memcpy(e->expected_peer, cfg->expected_peer, 32);
    if (cfg->hooks)
        e->hooks = *cfg->hooks;
    e->hooks_ctx = cfg->hooks_ctx;
    e->rekey_interval = cfg->rekey_interval;
    e->aead = cfg->aead;
    return PL_OK;
}

int pl__pair_key_valid(const pl_pair_key *k)
{
    if (k->secret)
        return k->len >= PL_PAIRING_SECRET_MIN && k->len <= PL_PAIRING_SECRET_MAX;
    return k->len >= 1 && k->len <= PL_CODE_BYTES_MAX && !memchr(k->bytes, 0, k->len);
}

void pl__pair_key_take(pl_engine *e, const pl_pair_key *k)
{
    memcpy(e->prs, k->bytes, k->len);
    e->prs_len = k->len;
    e->prs_secret = k->secret;
}

void pl__random_bytes(pl_engine *e, uint8_t *buf, size_t n)
{
    if (e->hooks.random)
        e->hooks.random(e->hooks_ctx, buf, n);
    else
        randombytes_buf(buf, n);
}

static void x25519_draw(pl_engine *e)
{
    pl__random_bytes(e, e->eph_sk, sizeof e->eph_sk);
    crypto_scalarmult_base(e->eph_pk, e->eph_sk);
}

/* Reconnecting: the X25519 key pair in eph_sk / eph_pk, drawn ahead or now. */
void pl__x25519_keypair(pl_engine *e)
{
    if (!e->eph_ready)
        x25519_draw(e);
    e->eph_ready = 0;
}

void pl_engine_prepare(pl_engine *e)
{
    if (!e->initiator && (e->state == PL_HS_HELLO || e->state == PL_HS_START) && !e->eph_ready) {
        x25519_draw(e);
        e->eph_ready = 1;
    }
}

/* ---------------------------------------------------------------- sending */

/* Frame a message: in clear before the handshake keys, sealed after:
 * pl_record_seal_parts() seals each inner frame from its header, the
 * sequence number and the message's bytes where they are, into room
 * reserved for every record first; then no record can fail to seal
 * (record.h), so the output may be drained between records. */

static int engine_fail(pl_engine *e, int err, int tell);

static int send_message(pl_engine *e, uint8_t type, const uint8_t *data, size_t len)
{
    return pl__send_message2(e, type, NULL, 0, data, len);
}

/* One message made of pre || body (pre: the sequence number of a DATA message). */
int pl__send_message2(pl_engine *e, uint8_t type, const uint8_t *pre, size_t pre_len,
                         const uint8_t *body, size_t body_len)
{
    size_t len = pre_len + body_len;
    if (!e->tx.ready)
        return pre_len ? PL_ERR_STATE : pl_frame_encode_message(&e->out, type, body, body_len);
    const size_t per = 2 * PL_FRAME_HEADER_SIZE + PL_RECORD_TAG; /* outer + inner header + tag */
    size_t nrec = len == 0 ? 1 : len / PL_RECORD_MAX_INNER_PAYLOAD + (len % PL_RECORD_MAX_INNER_PAYLOAD != 0);
    if (nrec > (SIZE_MAX - len) / per)
        return PL_ERR_NOMEM;
    int rc = pl_buf_reserve(&e->out, len + nrec * per);
    if (rc != PL_OK)
        return rc;
    size_t off = 0; /* bytes of pre || body framed so far */
    do {
        size_t n = len - off < PL_RECORD_MAX_INNER_PAYLOAD ? len - off : PL_RECORD_MAX_INNER_PAYLOAD;
        size_t pn = off < pre_len ? (pre_len - off < n ? pre_len - off : n) : 0, bn = n - pn;
        uint8_t hdr[PL_FRAME_HEADER_SIZE];
        pl_frame_header h = {PL_FRAME_VERSION, type, (uint8_t)(off + n < len ? PL_FRAME_FLAG_MORE : 0),
                             (uint32_t)n};
        pl_frame_header_encode(&h, hdr);
        pl_record_part parts[3] = {{hdr, sizeof hdr},
                                   {pn ? pre + off : NULL, pn},
                                   {bn ? body + (off + pn - pre_len) : NULL, bn}};
        rc = pl_record_seal_parts(&e->tx, parts, 3, &e->out);
        if (rc != PL_OK)
            return engine_fail(e, rc, 0); /* cannot happen (above); part of the message may be gone */
        off += n;
        /* Between records only: the message's last one stays queued, so the
         * link still sees output to write and reports it (DRAINED). */
        if (off < len && e->hooks.drain && pl_buf_size(&e->out) >= PL_ENGINE_DRAIN_AT)
            e->hooks.drain(e->hooks_ctx);
    } while (off < len);
    return PL_OK;
}

/* Transcript: each handshake message's protobuf bytes, each preceded by its length (u32 BE). */
void pl__th_add(pl_engine *e, const uint8_t *p, size_t n)
{
    uint8_t len[4];
    put_be32(len, (uint32_t)n);
    crypto_hash_sha512_update(&e->th, len, 4);
    crypto_hash_sha512_update(&e->th, p, n);
}

void pl__th_value(const pl_engine *e, uint8_t out[PL_HASH_SIZE])
{
    crypto_hash_sha512_state copy = e->th;
    crypto_hash_sha512_final(&copy, out);
}

/* Pack and send a control message; add it to the transcript if asked. */
int pl__send_control(pl_engine *e, const Peerlink__Control *c, int transcript, uint8_t *keep,
                        size_t keep_cap, size_t *keep_len)
{
    uint8_t buf[PL_CONTROL_MAX];
    size_t n = peerlink__control__get_packed_size(c);
    if (n > sizeof buf)
        return PL_ERR_INVALID; /* cannot happen for the messages we build */
    n = peerlink__control__pack(c, buf);
    if (transcript)
        pl__th_add(e, buf, n);
    if (keep) {
        if (n > keep_cap)
            return PL_ERR_INVALID;
        memcpy(keep, buf, n);
        *keep_len = n;
    }
    int rc = send_message(e, PL_FRAME_CONTROL, buf, n);
    sodium_memzero(buf, n);
    return rc;
}

static int error_to_wire(int err)
{
    switch (err) {
    case PL_ERR_WRONG_CODE: return PEERLINK__ERROR__CODE__WRONG_CODE;
    case PL_ERR_NOT_PAIRED: return PEERLINK__ERROR__CODE__NOT_PAIRED;
    case PL_ERR_LOCKED: return PEERLINK__ERROR__CODE__LOCKED;
    case PL_ERR_BUSY: return PEERLINK__ERROR__CODE__BUSY;
    case PL_ERR_VERSION: return PEERLINK__ERROR__CODE__VERSION;
    case PL_ERR_TOO_LARGE: return PEERLINK__ERROR__CODE__TOO_LARGE;
    case PL_ERR_DUPLICATE: return PEERLINK__ERROR__CODE__DUPLICATE;
    case PL_ERR_PROTOCOL:
    case PL_ERR_MALFORMED:
    case PL_ERR_AUTH: return PEERLINK__ERROR__CODE__PROTOCOL;
    default: return PEERLINK__ERROR__CODE__UNSPECIFIED; /* local trouble: the peer need not wait */
    }
}

static int error_from_wire(int code)
{
    switch (code) {
    case PEERLINK__ERROR__CODE__WRONG_CODE: return PL_ERR_WRONG_CODE;
    case PEERLINK__ERROR__CODE__NOT_PAIRED: return PL_ERR_NOT_PAIRED;
    case PEERLINK__ERROR__CODE__LOCKED: return PL_ERR_LOCKED;
    case PEERLINK__ERROR__CODE__BUSY: return PL_ERR_BUSY;
    case PEERLINK__ERROR__CODE__VERSION: return PL_ERR_VERSION;
    case PEERLINK__ERROR__CODE__TOO_LARGE: return PL_ERR_TOO_LARGE;
    case PEERLINK__ERROR__CODE__DUPLICATE: return PL_ERR_DUPLICATE;
    default: return PL_ERR_PROTOCOL;
    }
}

/* Fail: tell the peer why during the handshake (in clear: a hint only), then stop. */
static int engine_fail(pl_engine *e, int err, int tell)
{
    if (e->state == PL_HS_FAILED)
        return err;
    int wire = error_to_wire(err);
    if (tell && !e->peer_gave_up && e->state != PL_HS_IDLE && e->state != PL_HS_OPEN) {
        Peerlink__Control c = PEERLINK__CONTROL__INIT;
        Peerlink__Error m = PEERLINK__ERROR__INIT;
        m.code = (Peerlink__Error__Code)wire;
        c.msg_case = PEERLINK__CONTROL__MSG_ERROR;
        c.error = &m;
        pl_record_clear(&e->tx); /* errors go in clear so that the peer can always read them */
        pl__send_control(e, &c, 0, NULL, 0, NULL);
    }
    if (e->pair_admitted && e->hooks.pair_end) {
        e->pair_admitted = 0;
        e->hooks.pair_end(e->hooks_ctx, err);
    }
    e->state = PL_HS_FAILED;
    e->error = err;
    return err;
}

/* ---------------------------------------------------------------- receiving */

/* A sealed CONTROL message once open: an event (> 0), 0, or an error. */
static int handle_open_control(pl_engine *e, const Peerlink__Control *c)
{
    pl_stream *st = &e->st;
    switch (c->msg_case) {
    case PEERLINK__CONTROL__MSG_END_OF_STREAM:
        if (st->peer_eof || c->end_of_stream->seq != st->rx_next)
            return PL_ERR_PROTOCOL;
        st->peer_eof = 1;
        st->rx_next++;
        return PL_ENGINE_PEER_EOF;
    case PEERLINK__CONTROL__MSG_ACK:
        /* Only what was sent on this connection can be newly acknowledged. */
        if (c->ack->delivered < st->tx_acked || c->ack->delivered > st->tx_sent)
            return PL_ERR_PROTOCOL;
        if (c->ack->delivered == st->tx_acked)
            return 0;
        uint64_t before = pl_stream_acked_messages(st);
        pl__stream_acked(st, c->ack->delivered);
        return pl_stream_acked_messages(st) > before ? PL_ENGINE_ACKED : 0;
    case PEERLINK__CONTROL__MSG_PING:
        e->ping_owed = 1;
        return 0;
    case PEERLINK__CONTROL__MSG_METADATA:
        return pl__receive_metadata(e, c->metadata->txt.data, c->metadata->txt.len);
    case PEERLINK__CONTROL__MSG_ABORT:
        e->peer_gave_up = 1;
        return PL_ERR_ABORTED;
    default:
        return PL_ERR_PROTOCOL;
    }
}

static int read_varint(const uint8_t *p, size_t n, size_t *pos, uint64_t *v)
{
    *v = 0;
    for (unsigned shift = 0; shift < 64 && *pos < n; shift += 7) {
        uint8_t b = p[(*pos)++];
        *v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            return PL_OK;
    }
    return PL_ERR_MALFORMED;
}

/*
 * What docs/PROTOCOL.md section 5 requires beyond what protobuf-c checks,
 * on a payload it parsed: each field of the schema at most once (where
 * protobuf-c keeps the last and proto3 would merge a repeated message),
 * one member of Control's oneof, no group; strings of valid UTF-8
 * (PL_ERR_MALFORMED, as a standard proto3 parser refuses them) without
 * NUL (PL_ERR_PROTOCOL: our names are C strings). Unknown fields are
 * skipped. The schema nests three deep (Control, Identity, SessionResume).
 */
static int check_fields(const ProtobufCMessageDescriptor *d, const uint8_t *p, size_t n)
{
    uint32_t seen = 0; /* bit f: field f was present; bit 0: a member of the oneof */
    size_t pos = 0;
    while (pos < n) {
        uint64_t tag, v = 0;
        size_t len = 0;
        if (read_varint(p, n, &pos, &tag) != PL_OK)
            return PL_ERR_MALFORMED;
        unsigned wire = (unsigned)(tag & 7);
        if (wire == 0 || wire == 2) {
            if (read_varint(p, n, &pos, &v) != PL_OK)
                return PL_ERR_MALFORMED;
            len = wire == 0 ? 0 : v > n ? n + 1 : (size_t)v; /* a varint, or the length of the bytes */
        } else if (wire == 1 || wire == 5) {
            len = wire == 1 ? 8 : 4;
        } else {
            return PL_ERR_MALFORMED; /* groups */
        }
        if (len > n - pos)
            return PL_ERR_MALFORMED;
        uint64_t num = tag >> 3;
        const ProtobufCFieldDescriptor *f =
            num > 0 && num < 32 ? protobuf_c_message_descriptor_get_field(d, (unsigned)num) : NULL;
        if (f) {
            uint32_t bit = (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) ? 1u : 1u << num;
            if (seen & bit)
                return PL_ERR_MALFORMED;
            seen |= bit;
            int rc = PL_OK;
            if (f->type == PROTOBUF_C_TYPE_MESSAGE && wire == 2)
                rc = check_fields(f->descriptor, p + pos, len);
            else if (f->type == PROTOBUF_C_TYPE_STRING && wire == 2)
                rc = !pl_utf8_valid(p + pos, len) ? PL_ERR_MALFORMED
                     : memchr(p + pos, 0, len)   ? PL_ERR_PROTOCOL
                                                 : PL_OK;
            if (rc != PL_OK)
                return rc;
        }
        pos += len;
    }
    return PL_OK;
}

/* The peer refused our Ready: an Error where its first record under the
 * application keys belonged (docs/PROTOCOL.md section 6.9). It keeps
 * nothing of this connection: neither do we. */
static void peer_refused(pl_engine *e)
{
    e->refused = 1;
    if (e->pairing && e->hooks.peer_refused)
        e->hooks.peer_refused(e->hooks_ctx, e->peer_id);
}

/* A complete CONTROL message (clear or opened): an event (> 0), 0, or an error. */
static int handle_control(pl_engine *e, const uint8_t *data, size_t len, int sealed)
{
    Peerlink__Control *c = peerlink__control__unpack(NULL, len, data);
    if (!c)
        return PL_ERR_MALFORMED;
    int rc = check_fields(&peerlink__control__descriptor, data, len);
    if (rc != PL_OK) {
        peerlink__control__free_unpacked(c, NULL);
        return rc;
    }
    rc = PL_ERR_PROTOCOL;
    if (c->msg_case == PEERLINK__CONTROL__MSG_ERROR &&
        (e->state != PL_HS_OPEN || (!sealed && e->awaiting_peer))) {
        rc = error_from_wire(c->error->code);
        e->peer_gave_up = 1;
        if (e->state == PL_HS_OPEN)
            peer_refused(e);
    } else if (!sealed) {
        switch (e->state) {
        case PL_HS_HELLO:
            if (c->msg_case == PEERLINK__CONTROL__MSG_HELLO)
                rc = pl__handle_hello(e, c->hello, data, len);
            break;
        case PL_HS_START:
            rc = pl__handle_start(e, c, data, len);
            break;
        case PL_HS_REPLY:
            rc = pl__handle_reply(e, c, data, len);
            break;
        default:
            break;
        }
    } else if (e->state == PL_HS_IDENTITY && c->msg_case == PEERLINK__CONTROL__MSG_IDENTITY) {
        rc = pl__handle_identity(e, c->identity, data, len);
    } else if (e->state == PL_HS_READY && c->msg_case == PEERLINK__CONTROL__MSG_READY) {
        rc = pl__handle_ready(e, c->ready);
    } else if (e->state == PL_HS_OPEN) {
        rc = handle_open_control(e, c);
    }
    peerlink__control__free_unpacked(c, NULL);
    return rc;
}

/* Outer frames: clear CONTROL during the handshake; once the peer's keys are on, single-frame RECORDs. */
static int outer_bound(void *ctx, const pl_frame_header *h, size_t have)
{
    const pl_engine *e = ctx;
    /* (A responder that sent Ready reads a clear CONTROL frame until the
     * initiator's first record: the initiator may refuse Ready with an Error.) */
    if (h->type == PL_FRAME_CONTROL && (e->state != PL_HS_OPEN || e->awaiting_peer)) {
        if (have > PL_CONTROL_MAX || h->length > PL_CONTROL_MAX - have)
            return PL_ERR_TOO_LARGE;
        return PL_OK;
    }
    if (h->type == PL_FRAME_RECORD && e->rx.ready && !(h->flags & PL_FRAME_FLAG_MORE) &&
        h->length >= PL_FRAME_HEADER_SIZE + PL_RECORD_TAG)
        return PL_OK;
    return PL_ERR_PROTOCOL;
}

/* Inner frames (opened records): DATA once open, CONTROL, each within its bound. */
static int inner_bound(void *ctx, const pl_frame_header *h, size_t have)
{
    const pl_engine *e = ctx;
    size_t bound;
    if (e->st.peer_eof && h->type == PL_FRAME_DATA)
        return PL_ERR_PROTOCOL; /* no message after end-of-stream (control still comes: Acks, a new handshake) */
    if (h->type == PL_FRAME_DATA) {
        if (e->state != PL_HS_OPEN)
            return PL_ERR_PROTOCOL;
        bound = e->max_message + PL_SEQ_SIZE;
    } else if (h->type == PL_FRAME_CONTROL) {
        bound = PL_CONTROL_MAX;
    } else {
        return PL_ERR_PROTOCOL;
    }
    if (have > bound || h->length > bound - have)
        return PL_ERR_TOO_LARGE;
    return PL_OK;
}

/* Open a RECORD's payload straight into the reassembler, and take the one
 * whole inner frame it carries: 1 with *im, 0, or an error. */
static int open_record(pl_engine *e, const pl_message *m, pl_message *im)
{
    uint8_t hdr[PL_FRAME_HEADER_SIZE];
    pl_frame_header h = {PL_FRAME_VERSION, PL_FRAME_RECORD, 0, (uint32_t)m->len};
    size_t plen = m->len - PL_RECORD_TAG; /* at least an inner header (outer_bound) */
    uint8_t *room = pl_reasm_room(&e->in, plen);
    if (!room)
        return PL_ERR_NOMEM;
    pl_frame_header_encode(&h, hdr);
    int was_identity = e->state == PL_HS_IDENTITY;
    int rc = pl_record_open(&e->rx, hdr, m->data, m->len, room, &plen);
    if (rc == PL_ERR_AUTH && was_identity && e->pairing)
        return PL_ERR_WRONG_CODE; /* the first sealed record is the key confirmation */
    if (rc != PL_OK)
        return rc;
    if (e->state == PL_HS_OPEN)
        e->awaiting_peer = 0; /* the initiator opened too: no Error can come now */
    return pl_reasm_take(&e->in, plen, im, inner_bound, e);
}

int pl_engine_receive(pl_engine *e, const uint8_t *in, size_t len, size_t *consumed,
                      pl_engine_event *ev)
{
    size_t pos = 0;
    *consumed = 0;
    ev->type = PL_ENGINE_NONE;
    ev->data = NULL;
    ev->len = 0;
    if (e->state == PL_HS_FAILED || e->state == PL_HS_IDLE)
        return PL_ERR_STATE;
    while (pos < len) {
        pl_message m;
        size_t used = 0;
        int rc = pl_deframer_feed(&e->outer, in + pos, len - pos, &used, &m, outer_bound, e);
        pos += used;
        *consumed = pos;
        if (rc < 0)
            return engine_fail(e, rc, 1);
        if (rc == 0)
            break;
        if (m.type == PL_FRAME_CONTROL) {
            rc = handle_control(e, m.data, m.len, 0);
        } else {
            pl_message im;
            rc = open_record(e, &m, &im);
            if (rc == 1 && im.type == PL_FRAME_DATA) {
                if (im.len < PL_SEQ_SIZE || get_be64(im.data) != e->st.rx_next) {
                    rc = PL_ERR_PROTOCOL; /* each message in turn, exactly once */
                } else if (e->st.hold || e->st.held_n) {
                    /* Held, behind what already is: the rest of the input goes on. */
                    rc = pl__stream_hold(&e->st, im.data + PL_SEQ_SIZE, im.len - PL_SEQ_SIZE,
                                         (uint32_t)(im.len - PL_SEQ_SIZE));
                    if (rc == PL_OK)
                        e->st.rx_next++;
                } else {
                    e->st.rx_next++;
                    ev->type = PL_ENGINE_MESSAGE;
                    ev->data = im.data + PL_SEQ_SIZE;
                    ev->len = im.len - PL_SEQ_SIZE;
                    return 1;
                }
            } else if (rc == 1) {
                rc = handle_control(e, im.data, im.len, 1);
                if (rc == PL_ENGINE_PEER_EOF && (e->st.hold || e->st.held_n))
                    rc = pl__stream_hold(&e->st, NULL, 0, PL_STREAM_EOS);
            }
        }
        if (rc < 0)
            return engine_fail(e, rc, 1);
        if (rc > 0) {
            ev->type = (pl_engine_event_type)rc;
            ev->seq = pl_stream_acked_messages(&e->st);
            if (rc == PL_ENGINE_PEER_TXT) {
                ev->data = pl_buf_head(&e->st.peer_txt);
                ev->len = pl_buf_size(&e->st.peer_txt);
            }
            return 1;
        }
    }
    return 0;
}
