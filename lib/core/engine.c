/* The connection protocol engine (see engine.h and docs/PROTOCOL.md). */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "engine.h"

#include <stdint.h>
#include <string.h>

#include <peerlink/common.h>
#include <peerlink/conn.h>

#include "peerlink.pb-c.h"

#define ROLE_I 'I'
#define ROLE_R 'R'

static const char TRANSCRIPT_LABEL[] = "peerlink v1 transcript";
static const char SIGN_LABEL[] = "peerlink v1 identity ";
static const char SID_LABEL[] = "peerlink v1 sid";
static const char CI_LABEL[] = "peerlink v1";
static const char RESUME_LABEL[] = "peerlink v1 resume";

/*
 * Bounds on incoming messages. Each deframer has one maximum, and the
 * engine feeds it at most up to a frame boundary, so that as soon as a
 * header is complete - before any of its payload is stored - the
 * type-specific bound can be checked: PL_CONTROL_MAX for CONTROL,
 * max_message for DATA, one frame for RECORD. No type can make a
 * deframer allocate past its own bound.
 */
static size_t sanitize_max(size_t max_message)
{
    if (max_message == 0)
        return PL_DEFAULT_MAX_MESSAGE;
    if (max_message > PL_MAX_MESSAGE_LIMIT)
        return PL_MAX_MESSAGE_LIMIT;
    return max_message;
}

static size_t inner_max(size_t max_message)
{
    return max_message + PL_SEQ_SIZE > PL_CONTROL_MAX ? max_message + PL_SEQ_SIZE : PL_CONTROL_MAX;
}

static void put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static uint64_t get_be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

static uint32_t get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

uint64_t pl_stream_acked_messages(const pl_stream *st)
{
    int eos_acked = st->local_eof && st->tx_next > 0 && st->tx_acked == st->tx_next;
    return st->acked_base + st->tx_acked - (eos_acked ? 1 : 0);
}

void pl_stream_clear(pl_stream *st)
{
    pl_buf_clear(&st->unacked);
    pl_buf_clear(&st->held);
    sodium_memzero(st, sizeof *st);
}

void pl_engine_init(pl_engine *e, size_t max_message)
{
    memset(e, 0, sizeof *e);
    e->max_message = sanitize_max(max_message);
    pl_deframer_init(&e->outer, PL_FRAME_MAX_PAYLOAD);
    pl_deframer_init(&e->in, inner_max(e->max_message));
    pl_buf_init(&e->out);
    pl_buf_init(&e->st.unacked);
    pl_buf_init(&e->st.held);
}

/* Free what belongs to the connection (reporting an unfinished pairing). */
static void clear_link(pl_engine *e)
{
    if (e->pair_admitted && e->hooks.pair_end)
        e->hooks.pair_end(e->hooks_ctx, e->error ? e->error : PL_ERR_CLOSED);
    pl_deframer_clear(&e->outer);
    pl_deframer_clear(&e->in);
    pl_buf_clear(&e->out);
    pl_record_clear(&e->tx);
    pl_record_clear(&e->rx);
}

void pl_engine_clear(pl_engine *e)
{
    clear_link(e);
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
    e->in.max_message = inner_max(max);
    return PL_OK;
}

/* A display or instance name: 0..63 bytes, no NUL (UTF-8 is not checked here). */
static int copy_name(char dst[PL_NAME_MAX + 1], const char *src)
{
    size_t n = src ? strlen(src) : 0;
    if (n > PL_NAME_MAX)
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
    if (copy_name(e->name, cfg->name) != PL_OK || copy_name(e->instance, cfg->instance) != PL_OK)
        return PL_ERR_INVALID;
    if (cfg->code && (strlen(cfg->code) == 0 || strlen(cfg->code) >= sizeof e->code))
        return PL_ERR_INVALID;
    if (!cfg->initiator && !cfg->instance)
        return PL_ERR_INVALID; /* the responder binds the handshake to its instance name */
    e->initiator = cfg->initiator;
    e->have_instance = cfg->instance != NULL;
    memcpy(e->identity_sk, cfg->identity_sk, sizeof e->identity_sk);
    e->have_code = cfg->code != NULL;
    if (cfg->code)
        memcpy(e->code, cfg->code, strlen(cfg->code) + 1);
    e->have_expected_peer = cfg->expected_peer != NULL;
    if (cfg->expected_peer)
        memcpy(e->expected_peer, cfg->expected_peer, 32);
    if (cfg->hooks)
        e->hooks = *cfg->hooks;
    e->hooks_ctx = cfg->hooks_ctx;
    e->rekey_interval = cfg->rekey_interval;
    return PL_OK;
}

static void random_bytes(pl_engine *e, uint8_t *buf, size_t n)
{
    if (e->hooks.random)
        e->hooks.random(e->hooks_ctx, buf, n);
    else
        randombytes_buf(buf, n);
}

/* Reconnecting: a fresh X25519 key pair in eph_sk / eph_pk. */
static void x25519_keypair(pl_engine *e)
{
    random_bytes(e, e->eph_sk, sizeof e->eph_sk);
    crypto_scalarmult_base(e->eph_pk, e->eph_sk);
}

/* ---------------------------------------------------------------- sending */

/* Frame a message: in clear before the handshake keys, sealed after.
 * Sealed records are built in place: room for every record is reserved
 * in out first (so out's storage cannot move), each inner frame is
 * written where its ciphertext goes, and pl_record_seal() encrypts it
 * there. No plaintext copy is left anywhere, and nothing needs wiping
 * but the reserved room on the (impossible once reserved) error path. */
static int send_message2(pl_engine *e, uint8_t type, const uint8_t *pre, size_t pre_len,
                         const uint8_t *body, size_t body_len);

static int send_message(pl_engine *e, uint8_t type, const uint8_t *data, size_t len)
{
    return send_message2(e, type, NULL, 0, data, len);
}

/* n bytes from offset off of the concatenation pre || body into dst. */
static void copy_span(uint8_t *dst, const uint8_t *pre, size_t pre_len, const uint8_t *body, size_t off,
                      size_t n)
{
    if (off < pre_len) {
        size_t k = pre_len - off < n ? pre_len - off : n;
        memcpy(dst, pre + off, k);
        dst += k;
        off += k;
        n -= k;
    }
    if (n)
        memcpy(dst, body + (off - pre_len), n);
}

/* One message made of pre || body (pre: the sequence number of a DATA message). */
static int send_message2(pl_engine *e, uint8_t type, const uint8_t *pre, size_t pre_len,
                         const uint8_t *body, size_t body_len)
{
    size_t len = pre_len + body_len;
    if (!e->tx.ready)
        return pre_len ? PL_ERR_STATE : pl_frame_encode_message(&e->out, type, body, body_len);
    const size_t per = 2 * PL_FRAME_HEADER_SIZE + PL_RECORD_TAG; /* outer + inner header + tag */
    size_t nrec = len == 0 ? 1 : len / PL_RECORD_MAX_INNER_PAYLOAD + (len % PL_RECORD_MAX_INNER_PAYLOAD != 0);
    if (nrec > (SIZE_MAX - len) / per)
        return PL_ERR_NOMEM;
    size_t room = len + nrec * per;
    int rc = pl_buf_reserve(&e->out, room);
    if (rc != PL_OK)
        return rc;
    size_t mark = e->out.len;
    pl_record_dir saved = e->tx;
    size_t done = 0;
    do {
        size_t n = len - done;
        if (n > PL_RECORD_MAX_INNER_PAYLOAD)
            n = PL_RECORD_MAX_INNER_PAYLOAD;
        uint8_t *inner = e->out.data + e->out.len + PL_FRAME_HEADER_SIZE; /* where the ciphertext goes */
        pl_frame_header h = {PL_FRAME_VERSION, type, (uint8_t)(done + n < len ? PL_FRAME_FLAG_MORE : 0),
                             (uint32_t)n};
        pl_frame_header_encode(&h, inner);
        copy_span(inner + PL_FRAME_HEADER_SIZE, pre, pre_len, body, done, n);
        rc = pl_record_seal(&e->tx, inner, PL_FRAME_HEADER_SIZE + n, &e->out);
        done += n;
    } while (rc == PL_OK && done < len);
    if (rc != PL_OK) {
        sodium_memzero(e->out.data + mark, room); /* unsealed plaintext may be there */
        e->out.len = mark;
        e->tx = saved;
    }
    sodium_memzero(&saved, sizeof saved);
    return rc;
}

/* Transcript: each handshake message's protobuf bytes, each preceded by its length (u32 BE). */
static void th_add(pl_engine *e, const uint8_t *p, size_t n)
{
    uint8_t len[4] = {(uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n};
    crypto_hash_sha512_update(&e->th, len, 4);
    crypto_hash_sha512_update(&e->th, p, n);
}

static void th_value(const pl_engine *e, uint8_t out[PL_HASH_SIZE])
{
    crypto_hash_sha512_state copy = e->th;
    crypto_hash_sha512_final(&copy, out);
}

/* Pack and send a control message; add it to the transcript if asked. */
static int send_control(pl_engine *e, const Peerlink__Control *c, int transcript, uint8_t *keep,
                        size_t keep_cap, size_t *keep_len)
{
    uint8_t buf[PL_CONTROL_MAX];
    size_t n = peerlink__control__get_packed_size(c);
    if (n > sizeof buf)
        return PL_ERR_INVALID; /* cannot happen for the messages we build */
    n = peerlink__control__pack(c, buf);
    if (transcript)
        th_add(e, buf, n);
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
        send_control(e, &c, 0, NULL, 0, NULL);
    }
    if (e->pair_admitted && e->hooks.pair_end) {
        e->pair_admitted = 0;
        e->hooks.pair_end(e->hooks_ctx, err);
    }
    e->state = PL_HS_FAILED;
    e->error = err;
    return err;
}

/* ---------------------------------------------------------------- the stream */

/* Append an entry (a message, or end-of-stream with tag PL_STREAM_EOS) to the session. */
static int stream_append(pl_stream *st, const void *data, size_t len, uint32_t tag)
{
    uint8_t n[4] = {(uint8_t)(tag >> 24), (uint8_t)(tag >> 16), (uint8_t)(tag >> 8), (uint8_t)tag};
    int rc = pl_buf_reserve(&st->unacked, 4 + len);
    if (rc != PL_OK)
        return rc;
    pl_buf_append(&st->unacked, n, 4);
    if (len)
        pl_buf_append(&st->unacked, data, len);
    st->unacked_bytes += len;
    st->tx_next++;
    return PL_OK;
}

/* Take back the entry just appended (it could not be sent). */
static void stream_unappend(pl_stream *st, size_t len)
{
    st->unacked.len -= 4 + len;
    st->unacked_bytes -= len;
    st->tx_next--;
}

/* The peer delivered everything below n (tx_acked <= n <= tx_next): drop it. */
static void stream_acked(pl_stream *st, uint64_t n)
{
    while (st->tx_acked < n) {
        uint32_t len = get_be32(pl_buf_head(&st->unacked));
        size_t size = 4 + (len == PL_STREAM_EOS ? 0 : len);
        pl_buf_consume(&st->unacked, size);
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
static int stream_hold(pl_stream *st, const uint8_t *data, size_t len, uint32_t tag)
{
    uint8_t n[4] = {(uint8_t)(tag >> 24), (uint8_t)(tag >> 16), (uint8_t)(tag >> 8), (uint8_t)tag};
    int rc = pl_buf_reserve(&st->held, 4 + len);
    if (rc != PL_OK)
        return rc;
    pl_buf_append(&st->held, n, 4);
    if (len)
        pl_buf_append(&st->held, data, len);
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
    return send_control(e, &c, 0, NULL, 0, NULL);
}

/* Seal every entry of the stream not yet sent on this connection. */
static int flush_stream(pl_engine *e)
{
    pl_stream *st = &e->st;
    while (st->tx_sent < st->tx_next) {
        const uint8_t *p = pl_buf_head(&st->unacked) + st->sent_off;
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
            rc = send_message2(e, PL_FRAME_DATA, seq, sizeof seq, p + 4, n);
        }
        if (rc != PL_OK)
            return rc;
        st->sent_off += 4 + (size_t)n;
        st->tx_sent++;
    }
    return PL_OK;
}

/* ---------------------------------------------------------------- start */

int pl_engine_start(pl_engine *e)
{
    if (e->state != PL_HS_IDLE)
        return PL_ERR_STATE;
    if (sodium_is_zero(e->identity_sk, sizeof e->identity_sk))
        return PL_ERR_STATE; /* not configured */
    Peerlink__Control c = PEERLINK__CONTROL__INIT;
    Peerlink__Hello h = PEERLINK__HELLO__INIT;
    random_bytes(e, e->nonce, sizeof e->nonce);
    h.min_version = PL_PROTO_MIN_VERSION;
    h.max_version = PL_PROTO_MAX_VERSION;
    h.max_message = e->max_message;
    h.nonce.data = e->nonce;
    h.nonce.len = sizeof e->nonce;
    h.instance = e->initiator ? (char *)"" : e->instance;
    c.msg_case = PEERLINK__CONTROL__MSG_HELLO;
    c.hello = &h;
    int rc = send_control(e, &c, 0, e->hello_local, sizeof e->hello_local, &e->hello_local_len);
    if (rc != PL_OK)
        return rc;
    e->state = PL_HS_HELLO;
    return PL_OK;
}

/* ---------------------------------------------------------------- key schedule */

/* keys for both directions from the shared secret and the transcript so far;
 * with the application keys, the id and resume key a new session would take */
static void derive_keys(pl_engine *e, const char *label_i2r, const char *label_r2i, int app)
{
    uint8_t th[PL_HASH_SIZE], prk[PL_HASH_SIZE], k_i2r[PL_RECORD_KEY], k_r2i[PL_RECORD_KEY];
    th_value(e, th);
    pl_hkdf_extract(th, sizeof th, e->secret, e->secret_len, prk);
    pl_hkdf_expand(prk, sizeof prk, label_i2r, NULL, 0, k_i2r, sizeof k_i2r);
    pl_hkdf_expand(prk, sizeof prk, label_r2i, NULL, 0, k_r2i, sizeof k_r2i);
    pl_record_clear(&e->tx);
    pl_record_clear(&e->rx);
    pl_record_init(&e->tx, e->initiator ? k_i2r : k_r2i, e->rekey_interval);
    pl_record_init(&e->rx, e->initiator ? k_r2i : k_i2r, e->rekey_interval);
    if (app) {
        pl_hkdf_expand(prk, sizeof prk, "peerlink session id", NULL, 0, e->new_id, sizeof e->new_id);
        pl_hkdf_expand(prk, sizeof prk, "peerlink resume", NULL, 0, e->new_resume_key,
                       sizeof e->new_resume_key);
    }
    sodium_memzero(prk, sizeof prk);
    sodium_memzero(k_i2r, sizeof k_i2r);
    sodium_memzero(k_r2i, sizeof k_r2i);
}

/* Proof that we hold the session's resume key, bound to this connection's transcript th. */
static void resume_proof(const uint8_t key[PL_RESUME_KEY_SIZE], const uint8_t th[PL_HASH_SIZE],
                         uint8_t proof[PL_RESUME_PROOF_SIZE])
{
    pl_hkdf_expand(key, PL_RESUME_KEY_SIZE, RESUME_LABEL, th, PL_HASH_SIZE, proof, PL_RESUME_PROOF_SIZE);
}

/* An initiator that reconnects an established session asks to continue it. */
static int wants_resume(const pl_engine *e)
{
    return e->initiator && e->st.established && !e->pairing;
}

/* Our sealed Identity: public key, name, signature over the transcript so far. */
static int send_identity(pl_engine *e)
{
    uint8_t th[PL_HASH_SIZE], msg[sizeof SIGN_LABEL - 1 + 1 + PL_HASH_SIZE], sig[crypto_sign_BYTES];
    uint8_t pk[crypto_sign_PUBLICKEYBYTES];
    th_value(e, th);
    memcpy(msg, SIGN_LABEL, sizeof SIGN_LABEL - 1);
    msg[sizeof SIGN_LABEL - 1] = e->initiator ? ROLE_I : ROLE_R;
    memcpy(msg + sizeof SIGN_LABEL, th, sizeof th);
    crypto_sign_detached(sig, NULL, msg, sizeof msg, e->identity_sk);
    crypto_sign_ed25519_sk_to_pk(pk, e->identity_sk);
    Peerlink__Control c = PEERLINK__CONTROL__INIT;
    Peerlink__Identity id = PEERLINK__IDENTITY__INIT;
    id.public_key.data = pk;
    id.public_key.len = sizeof pk;
    id.signature.data = sig;
    id.signature.len = sizeof sig;
    id.name = e->name;
    Peerlink__SessionResume res = PEERLINK__SESSION_RESUME__INIT;
    uint8_t proof[PL_RESUME_PROOF_SIZE];
    if (wants_resume(e)) {
        resume_proof(e->st.resume_key, th, proof);
        res.session_id.data = e->st.id;
        res.session_id.len = sizeof e->st.id;
        res.proof.data = proof;
        res.proof.len = sizeof proof;
        res.delivered = pl_stream_delivered(&e->st);
        id.resume = &res;
    }
    c.msg_case = PEERLINK__CONTROL__MSG_IDENTITY;
    c.identity = &id;
    int rc = send_control(e, &c, 1, NULL, 0, NULL);
    sodium_memzero(proof, sizeof proof);
    return rc;
}

/* Responder: the initiator asks to continue session res->session_id.
 * Sets e->resumed if this side still has it and the proof holds;
 * *delivered is then what we tell the initiator we delivered. */
static int check_resume(pl_engine *e, const Peerlink__SessionResume *res, const uint8_t th[PL_HASH_SIZE],
                        uint64_t *delivered)
{
    if (e->initiator || e->pairing || res->session_id.len != PL_SESSION_ID_SIZE ||
        res->proof.len != PL_RESUME_PROOF_SIZE)
        return PL_ERR_PROTOCOL;
    const pl_stream *old =
        e->hooks.find_session ? e->hooks.find_session(e->hooks_ctx, res->session_id.data, e->peer_id) : NULL;
    if (!old || !old->established)
        return PL_OK; /* not (or no longer) known here: a new session */
    uint8_t proof[PL_RESUME_PROOF_SIZE];
    resume_proof(old->resume_key, th, proof);
    int ok = sodium_memcmp(proof, res->proof.data, sizeof proof) == 0;
    sodium_memzero(proof, sizeof proof);
    if (!ok)
        return PL_OK; /* not the key of that session: treat it as unknown */
    /* The peer cannot have delivered less than it acknowledged, or more than was sent. */
    if (res->delivered < old->tx_acked || res->delivered > old->tx_next)
        return PL_ERR_PROTOCOL;
    e->resumed = 1;
    e->peer_delivered = res->delivered;
    *delivered = pl_stream_delivered(old);
    return PL_OK;
}

static int become_open(pl_engine *e);

/* The peer's Identity: check it, then finish the handshake. */
static int handle_identity(pl_engine *e, const Peerlink__Identity *id, const uint8_t *raw, size_t raw_len)
{
    if (id->public_key.len != 32 || id->signature.len != crypto_sign_BYTES || !id->name ||
        strlen(id->name) > PL_NAME_MAX || (id->resume && e->initiator))
        return PL_ERR_PROTOCOL;
    uint8_t th[PL_HASH_SIZE], msg[sizeof SIGN_LABEL - 1 + 1 + PL_HASH_SIZE];
    th_value(e, th);
    memcpy(msg, SIGN_LABEL, sizeof SIGN_LABEL - 1);
    msg[sizeof SIGN_LABEL - 1] = e->initiator ? ROLE_R : ROLE_I;
    memcpy(msg + sizeof SIGN_LABEL, th, sizeof th);
    if (crypto_sign_verify_detached(id->signature.data, msg, sizeof msg, id->public_key.data) != 0)
        return PL_ERR_AUTH;
    memcpy(e->peer_id, id->public_key.data, 32);
    copy_name(e->peer_name, id->name);

    int rc;
    if (!e->pairing) {
        if (e->initiator)
            rc = sodium_memcmp(e->peer_id, e->expected_peer, 32) == 0 ? PL_OK : PL_ERR_NOT_PAIRED;
        else
            rc = e->hooks.peer_known ? e->hooks.peer_known(e->hooks_ctx, e->peer_id) : PL_ERR_NOT_PAIRED;
        if (rc != PL_OK)
            return rc;
    }
    uint64_t delivered = 0;
    if (id->resume && (rc = check_resume(e, id->resume, th, &delivered)) != PL_OK)
        return rc;
    if (!e->initiator && !e->pairing && !e->resumed && e->hooks.admit &&
        (rc = e->hooks.admit(e->hooks_ctx, e->peer_id)) != PL_OK)
        return rc;
    th_add(e, raw, raw_len);
    if (e->initiator && (rc = send_identity(e)) != PL_OK)
        return rc;
    /* The responder stores the initiator now; the initiator stores the
     * responder on Ready, once the responder has accepted it too. */
    if (!e->initiator && e->pairing && e->hooks.peer_paired &&
        (rc = e->hooks.peer_paired(e->hooks_ctx, e->peer_id, e->peer_name)) != PL_OK)
        return rc;
    derive_keys(e, "peerlink app i2r", "peerlink app r2i", 1);
    sodium_memzero(e->secret, sizeof e->secret);
    if (e->initiator) {
        e->state = PL_HS_READY; /* the responder has the last word */
        return PL_OK;
    }
    Peerlink__Control c = PEERLINK__CONTROL__INIT;
    Peerlink__Ready ready = PEERLINK__READY__INIT;
    ready.resumed = e->resumed;
    ready.delivered = delivered;
    c.msg_case = PEERLINK__CONTROL__MSG_READY;
    c.ready = &ready;
    if ((rc = send_control(e, &c, 0, NULL, 0, NULL)) != PL_OK)
        return rc;
    return become_open(e);
}

/* Initiator: the responder's Ready says whether our session goes on. */
static int handle_ready(pl_engine *e, const Peerlink__Ready *r)
{
    pl_stream *st = &e->st;
    if (!wants_resume(e))
        return r->resumed ? PL_ERR_PROTOCOL : become_open(e);
    if (r->resumed) {
        if (r->delivered < st->tx_acked || r->delivered > st->tx_next)
            return PL_ERR_PROTOCOL;
        stream_acked(st, r->delivered);
        e->resumed = 1;
        return become_open(e);
    }
    /* The responder no longer knows the session (it restarted, or it
     * ended the session and only our end-of-stream's Ack was lost). */
    if (st->local_eof && st->peer_eof && st->tx_next - st->tx_acked == 1) {
        e->reset = 1;
        e->finished = 1; /* all was delivered both ways: nothing to carry on */
        return become_open(e);
    }
    /* A new session on this connection carries what the peer never
     * acknowledged, renumbered from 0 (and our end-of-stream again);
     * nothing more of the old one will arrive. */
    int requeue_eos = st->local_eof && st->tx_acked == st->tx_next;
    st->acked_base = pl_stream_acked_messages(st);
    st->tx_next -= st->tx_acked;
    st->tx_acked = st->tx_sent = 0;
    st->sent_off = 0;
    st->rx_next = st->rx_acked = 0;
    st->peer_eof = 0;
    st->established = 0;
    e->reset = 1;
    if (requeue_eos) {
        int rc = stream_append(st, NULL, 0, PL_STREAM_EOS);
        if (rc != PL_OK)
            return rc;
    }
    return become_open(e);
}

/* The handshake is complete: flush what the application sent early. */
static int become_open(pl_engine *e)
{
    int rc = PL_OK;
    /* The responder is known by the instance name it was reached as. */
    if (e->initiator && e->pairing && e->hooks.peer_paired &&
        (rc = e->hooks.peer_paired(e->hooks_ctx, e->peer_id, e->instance)) != PL_OK)
        return rc;
    if (e->pair_admitted) {
        e->pair_admitted = 0;
        if (e->hooks.pair_end)
            e->hooks.pair_end(e->hooks_ctx, PL_OK);
    }
    e->state = PL_HS_OPEN;
    if (!e->resumed) {
        memcpy(e->st.id, e->new_id, sizeof e->st.id);
        memcpy(e->st.resume_key, e->new_resume_key, sizeof e->st.resume_key);
        e->st.established = 1;
    }
    sodium_memzero(e->new_resume_key, sizeof e->new_resume_key);
    e->st.rx_acked = e->st.rx_next; /* the handshake told the peer */
    /* A resuming responder sends once it holds the session (pl_engine_adopt);
     * a finished one has nothing to send but the Abort its caller queues. */
    if (!(e->resumed && !e->initiator) && !e->finished)
        rc = flush_stream(e);
    return rc == PL_OK ? PL_ENGINE_OPEN : rc;
}

/* ---------------------------------------------------------------- handshake steps */

/* Both Hellos are known: start the transcript, in role order. */
static void th_start(pl_engine *e, const uint8_t *hello_peer, size_t hello_peer_len)
{
    crypto_hash_sha512_init(&e->th);
    crypto_hash_sha512_update(&e->th, (const uint8_t *)TRANSCRIPT_LABEL, sizeof TRANSCRIPT_LABEL - 1);
    if (e->initiator) {
        th_add(e, e->hello_local, e->hello_local_len);
        th_add(e, hello_peer, hello_peer_len);
    } else {
        th_add(e, hello_peer, hello_peer_len);
        th_add(e, e->hello_local, e->hello_local_len);
    }
}

/* CPace's session id: both sides' nonces, initiator's first. */
static void sid_of(const uint8_t *nonce_i, const uint8_t *nonce_r, uint8_t sid[16])
{
    uint8_t h[PL_HASH_SIZE];
    crypto_hash_sha512_state st;
    crypto_hash_sha512_init(&st);
    crypto_hash_sha512_update(&st, (const uint8_t *)SID_LABEL, sizeof SID_LABEL - 1);
    crypto_hash_sha512_update(&st, nonce_i, PL_NONCE_SIZE);
    crypto_hash_sha512_update(&st, nonce_r, PL_NONCE_SIZE);
    crypto_hash_sha512_final(&st, h);
    memcpy(sid, h, 16);
}

/* CPace for this connection: channel identifier from the instance name,
 * session id from the nonces. Sets our scalar and message (eph_sk, eph_pk);
 * writes sid. */
static int cpace_start(pl_engine *e, uint8_t sid[16])
{
    const uint8_t *nonce_i = e->initiator ? e->nonce : e->peer_nonce;
    const uint8_t *nonce_r = e->initiator ? e->peer_nonce : e->nonce;
    uint8_t ci[1 + sizeof CI_LABEL + 1 + PL_NAME_MAX], g[32], y[32];
    size_t n = pl_cpace_lv_cat(ci, sizeof ci, 0, (const uint8_t *)CI_LABEL, sizeof CI_LABEL - 1);
    n = pl_cpace_lv_cat(ci, sizeof ci, n, (const uint8_t *)e->instance, strlen(e->instance));
    sid_of(nonce_i, nonce_r, sid);
    int rc = pl_cpace_generator((const uint8_t *)e->code, strlen(e->code), ci, n, sid, 16, g);
    sodium_memzero(e->code, sizeof e->code);
    random_bytes(e, y, sizeof y);
    if (rc == PL_OK)
        rc = pl_cpace_message(g, y, e->eph_sk, e->eph_pk);
    sodium_memzero(g, sizeof g);
    sodium_memzero(y, sizeof y);
    return rc;
}

static int handle_hello(pl_engine *e, const Peerlink__Hello *h, const uint8_t *raw, size_t raw_len)
{
    uint32_t lo = h->min_version > PL_PROTO_MIN_VERSION ? h->min_version : PL_PROTO_MIN_VERSION;
    uint32_t hi = h->max_version < PL_PROTO_MAX_VERSION ? h->max_version : PL_PROTO_MAX_VERSION;
    if (hi < lo || hi == 0)
        return PL_ERR_VERSION;
    if (h->max_message < 1 || h->nonce.len != PL_NONCE_SIZE || !h->instance ||
        strlen(h->instance) > PL_NAME_MAX)
        return PL_ERR_PROTOCOL;
    if (e->initiator) {
        /* The responder names the instance; it must be the one we meant to reach. */
        if (e->have_instance && strcmp(h->instance, e->instance) != 0)
            return PL_ERR_AUTH;
        copy_name(e->instance, h->instance);
    } else if (h->instance[0]) {
        return PL_ERR_PROTOCOL;
    }
    e->peer_max = h->max_message > PL_MAX_MESSAGE_LIMIT ? PL_MAX_MESSAGE_LIMIT : h->max_message;
    e->version = hi;
    memcpy(e->peer_nonce, h->nonce.data, PL_NONCE_SIZE);
    th_start(e, raw, raw_len);
    if (!e->initiator) {
        e->state = PL_HS_START;
        return PL_OK;
    }

    /* Initiator: pair with the code, or reconnect with the stored identity. */
    Peerlink__Control c = PEERLINK__CONTROL__INIT;
    Peerlink__PairStart ps = PEERLINK__PAIR_START__INIT;
    Peerlink__ResumeStart rs = PEERLINK__RESUME_START__INIT;
    int rc;
    if (e->have_code) {
        uint8_t sid[16];
        e->pairing = 1;
        if ((rc = cpace_start(e, sid)) != PL_OK)
            return rc;
        ps.cpace_y.data = e->eph_pk;
        ps.cpace_y.len = 32;
        c.msg_case = PEERLINK__CONTROL__MSG_PAIR_START;
        c.pair_start = &ps;
    } else if (e->have_expected_peer) {
        x25519_keypair(e);
        rs.ephemeral.data = e->eph_pk;
        rs.ephemeral.len = 32;
        c.msg_case = PEERLINK__CONTROL__MSG_RESUME_START;
        c.resume_start = &rs;
    } else {
        return PL_ERR_NOT_PAIRED;
    }
    rc = send_control(e, &c, 1, NULL, 0, NULL);
    if (rc != PL_OK)
        return rc;
    e->state = PL_HS_REPLY;
    return PL_OK;
}

/* The shared secret is set and the reply is in the transcript: handshake keys on. */
static int enter_identity_phase(pl_engine *e)
{
    derive_keys(e, "peerlink hs i2r", "peerlink hs r2i", 0);
    e->state = PL_HS_IDENTITY;
    /* The responder speaks first under the new keys. */
    return e->initiator ? PL_OK : send_identity(e);
}

static int handle_start(pl_engine *e, const Peerlink__Control *c, const uint8_t *raw, size_t raw_len)
{
    Peerlink__Control out = PEERLINK__CONTROL__INIT;
    Peerlink__PairReply pr = PEERLINK__PAIR_REPLY__INIT;
    Peerlink__ResumeReply rr = PEERLINK__RESUME_REPLY__INIT;
    int rc;
    th_add(e, raw, raw_len);
    if (c->msg_case == PEERLINK__CONTROL__MSG_PAIR_START) {
        if (c->pair_start->cpace_y.len != 32)
            return PL_ERR_PROTOCOL;
        const char *code = NULL;
        rc = e->hooks.pair_begin ? e->hooks.pair_begin(e->hooks_ctx, &code) : PL_ERR_NOT_PAIRED;
        if (rc != PL_OK)
            return rc;
        e->pair_admitted = 1;
        e->pairing = 1;
        if (!code || !code[0] || strlen(code) >= sizeof e->code)
            return PL_ERR_NOT_PAIRED;
        memcpy(e->code, code, strlen(code) + 1);
        uint8_t sid[16];
        rc = cpace_start(e, sid);
        if (rc == PL_OK)
            rc = pl_cpace_isk_ir(e->eph_sk, c->pair_start->cpace_y.data, sid, sizeof sid,
                                 c->pair_start->cpace_y.data, NULL, 0, e->eph_pk, NULL, 0, e->secret);
        e->secret_len = PL_CPACE_ISK;
        sodium_memzero(e->eph_sk, sizeof e->eph_sk);
        if (rc != PL_OK)
            return rc;
        pr.cpace_y.data = e->eph_pk;
        pr.cpace_y.len = 32;
        out.msg_case = PEERLINK__CONTROL__MSG_PAIR_REPLY;
        out.pair_reply = &pr;
    } else if (c->msg_case == PEERLINK__CONTROL__MSG_RESUME_START) {
        if (c->resume_start->ephemeral.len != 32)
            return PL_ERR_PROTOCOL;
        x25519_keypair(e);
        if (crypto_scalarmult(e->secret, e->eph_sk, c->resume_start->ephemeral.data) != 0)
            return PL_ERR_PROTOCOL; /* a low-order point */
        e->secret_len = 32;
        sodium_memzero(e->eph_sk, sizeof e->eph_sk);
        rr.ephemeral.data = e->eph_pk;
        rr.ephemeral.len = 32;
        out.msg_case = PEERLINK__CONTROL__MSG_RESUME_REPLY;
        out.resume_reply = &rr;
    } else {
        return PL_ERR_PROTOCOL;
    }
    rc = send_control(e, &out, 1, NULL, 0, NULL);
    return rc == PL_OK ? enter_identity_phase(e) : rc;
}

static int handle_reply(pl_engine *e, const Peerlink__Control *c, const uint8_t *raw, size_t raw_len)
{
    int rc;
    if (e->pairing && c->msg_case == PEERLINK__CONTROL__MSG_PAIR_REPLY) {
        if (c->pair_reply->cpace_y.len != 32)
            return PL_ERR_PROTOCOL;
        uint8_t sid[16];
        sid_of(e->nonce, e->peer_nonce, sid);
        rc = pl_cpace_isk_ir(e->eph_sk, c->pair_reply->cpace_y.data, sid, sizeof sid, e->eph_pk, NULL, 0,
                             c->pair_reply->cpace_y.data, NULL, 0, e->secret);
        e->secret_len = PL_CPACE_ISK;
    } else if (!e->pairing && c->msg_case == PEERLINK__CONTROL__MSG_RESUME_REPLY) {
        if (c->resume_reply->ephemeral.len != 32)
            return PL_ERR_PROTOCOL;
        rc = crypto_scalarmult(e->secret, e->eph_sk, c->resume_reply->ephemeral.data) == 0 ? PL_OK
                                                                                           : PL_ERR_PROTOCOL;
        e->secret_len = 32;
    } else {
        return PL_ERR_PROTOCOL;
    }
    sodium_memzero(e->eph_sk, sizeof e->eph_sk);
    if (rc != PL_OK)
        return rc;
    th_add(e, raw, raw_len);
    return enter_identity_phase(e);
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
        stream_acked(st, c->ack->delivered);
        return pl_stream_acked_messages(st) > before ? PL_ENGINE_ACKED : 0;
    case PEERLINK__CONTROL__MSG_PING:
        e->ping_owed = 1;
        return 0;
    case PEERLINK__CONTROL__MSG_ABORT:
        e->peer_gave_up = 1;
        return PL_ERR_ABORTED;
    default:
        return PL_ERR_PROTOCOL;
    }
}

/* A complete CONTROL message (clear or opened): an event (> 0), 0, or an error. */
static int handle_control(pl_engine *e, const uint8_t *data, size_t len, int sealed)
{
    Peerlink__Control *c = peerlink__control__unpack(NULL, len, data);
    if (!c)
        return PL_ERR_MALFORMED;
    int rc = PL_ERR_PROTOCOL;
    if (c->msg_case == PEERLINK__CONTROL__MSG_ERROR && e->state != PL_HS_OPEN) {
        rc = error_from_wire(c->error->code);
        e->peer_gave_up = 1;
    } else if (!sealed) {
        switch (e->state) {
        case PL_HS_HELLO:
            if (c->msg_case == PEERLINK__CONTROL__MSG_HELLO)
                rc = handle_hello(e, c->hello, data, len);
            break;
        case PL_HS_START:
            rc = handle_start(e, c, data, len);
            break;
        case PL_HS_REPLY:
            rc = handle_reply(e, c, data, len);
            break;
        default:
            break;
        }
    } else if (e->state == PL_HS_IDENTITY && c->msg_case == PEERLINK__CONTROL__MSG_IDENTITY) {
        rc = handle_identity(e, c->identity, data, len);
    } else if (e->state == PL_HS_READY && c->msg_case == PEERLINK__CONTROL__MSG_READY) {
        rc = handle_ready(e, c->ready);
    } else if (e->state == PL_HS_OPEN) {
        rc = handle_open_control(e, c);
    }
    peerlink__control__free_unpacked(c, NULL);
    return rc;
}

/* Feed a deframer, stopping at frame boundaries so that bound() can check
 * each header before its payload is stored. 1 with *m, 0, or an error. */
static int feed(pl_engine *e, pl_deframer *d, int (*bound)(const pl_engine *, const pl_deframer *),
                const uint8_t *in, size_t len, size_t *consumed, pl_message *m)
{
    size_t pos = 0;
    while (pos < len) {
        int in_header = d->hdr_have < PL_FRAME_HEADER_SIZE;
        size_t limit = in_header ? PL_FRAME_HEADER_SIZE - d->hdr_have : (size_t)d->cur.length - d->payload_have;
        size_t chunk = len - pos < limit ? len - pos : limit, used = 0;
        int rc = pl_deframer_feed(d, in + pos, chunk, &used, m);
        pos += used;
        *consumed = pos;
        if (rc < 0)
            return rc;
        if (in_header && used == limit) {
            int brc = bound(e, d);
            if (brc < 0)
                return brc;
        }
        if (rc == 1)
            return 1;
    }
    *consumed = pos;
    return 0;
}

/* Outer frames: clear CONTROL during the handshake; once the peer's keys are on, single-frame RECORDs. */
static int outer_bound(const pl_engine *e, const pl_deframer *d)
{
    size_t have = pl_buf_size(&d->msg);
    if (d->cur.type == PL_FRAME_CONTROL && e->state != PL_HS_OPEN) {
        if (have > PL_CONTROL_MAX || d->cur.length > PL_CONTROL_MAX - have)
            return PL_ERR_TOO_LARGE;
        return PL_OK;
    }
    if (d->cur.type == PL_FRAME_RECORD && e->rx.ready && !(d->cur.flags & PL_FRAME_FLAG_MORE) &&
        d->cur.length >= PL_FRAME_HEADER_SIZE + PL_RECORD_TAG)
        return PL_OK;
    return PL_ERR_PROTOCOL;
}

/* Inner frames (opened records): DATA once open, CONTROL, each within its bound. */
static int inner_bound(const pl_engine *e, const pl_deframer *d)
{
    size_t have = pl_buf_size(&d->msg), bound;
    if (e->st.peer_eof && d->cur.type == PL_FRAME_DATA)
        return PL_ERR_PROTOCOL; /* no message after end-of-stream (control still comes: Acks, a new handshake) */
    if (d->cur.type == PL_FRAME_DATA) {
        if (e->state != PL_HS_OPEN)
            return PL_ERR_PROTOCOL;
        bound = e->max_message + PL_SEQ_SIZE;
    } else if (d->cur.type == PL_FRAME_CONTROL) {
        bound = PL_CONTROL_MAX;
    } else {
        return PL_ERR_PROTOCOL;
    }
    if (have > bound || d->cur.length > bound - have)
        return PL_ERR_TOO_LARGE;
    return PL_OK;
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
        int rc = feed(e, &e->outer, outer_bound, in + pos, len - pos, &used, &m);
        pos += used;
        *consumed = pos;
        if (rc < 0)
            return engine_fail(e, rc, 1);
        if (rc == 0)
            break;
        if (m.type == PL_FRAME_CONTROL) {
            rc = handle_control(e, m.data, m.len, 0);
        } else {
            /* Open the record in place, then read the one inner frame it carries. */
            uint8_t hdr[PL_FRAME_HEADER_SIZE];
            pl_frame_header h = {PL_FRAME_VERSION, PL_FRAME_RECORD, 0, (uint32_t)m.len};
            size_t plen = 0, u = 0;
            pl_frame_header_encode(&h, hdr);
            int was_identity = e->state == PL_HS_IDENTITY;
            rc = pl_record_open(&e->rx, hdr, m.data, m.len, (uint8_t *)m.data, &plen);
            if (rc == PL_ERR_AUTH && was_identity && e->pairing)
                rc = PL_ERR_WRONG_CODE; /* the first sealed record is the key confirmation */
            /* A record carries exactly one whole inner frame. */
            if (rc == PL_OK && (plen < PL_FRAME_HEADER_SIZE ||
                                ((uint32_t)m.data[4] << 24 | (uint32_t)m.data[5] << 16 |
                                 (uint32_t)m.data[6] << 8 | m.data[7]) != plen - PL_FRAME_HEADER_SIZE))
                rc = PL_ERR_PROTOCOL;
            if (rc == PL_OK) {
                pl_message im;
                rc = feed(e, &e->in, inner_bound, m.data, plen, &u, &im);
                if (rc >= 0 && (u != plen || e->in.hdr_have != 0))
                    rc = PL_ERR_PROTOCOL;
                else if (rc == 1 && im.type == PL_FRAME_DATA) {
                    if (im.len < PL_SEQ_SIZE || get_be64(im.data) != e->st.rx_next) {
                        rc = PL_ERR_PROTOCOL; /* each message in turn, exactly once */
                    } else if (e->st.hold || e->st.held_n) {
                        /* Held, behind what already is: the rest of the input goes on. */
                        rc = stream_hold(&e->st, im.data + PL_SEQ_SIZE, im.len - PL_SEQ_SIZE,
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
                        rc = stream_hold(&e->st, NULL, 0, PL_STREAM_EOS);
                }
            }
        }
        if (rc < 0)
            return engine_fail(e, rc, 1);
        if (rc > 0) {
            ev->type = (pl_engine_event_type)rc;
            ev->seq = pl_stream_acked_messages(&e->st);
            return 1;
        }
    }
    return 0;
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
    int rc = stream_append(st, data, len, (uint32_t)len);
    if (rc != PL_OK || e->state != PL_HS_OPEN)
        return rc;
    /* Nothing leaves in clear: before OPEN it waits in the stream. */
    if ((rc = flush_stream(e)) != PL_OK)
        stream_unappend(st, len);
    return rc;
}

int pl_engine_shutdown(pl_engine *e)
{
    pl_stream *st = &e->st;
    if (st->local_eof)
        return PL_OK;
    int rc = stream_append(st, NULL, 0, PL_STREAM_EOS);
    if (rc != PL_OK)
        return rc;
    if (e->state == PL_HS_OPEN && (rc = flush_stream(e)) != PL_OK) {
        stream_unappend(st, 0);
        return rc;
    }
    st->local_eof = 1;
    return PL_OK;
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
    return send_control(e, &c, 0, NULL, 0, NULL);
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
    int rc = send_control(e, &c, 0, NULL, 0, NULL);
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
    return pl_deframer_in_progress(&e->outer) || pl_deframer_in_progress(&e->in);
}

void pl_engine_relink(pl_engine *e)
{
    clear_link(e);
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
    pl_buf_init(&from->unacked);
    pl_buf_init(&from->held);
    stream_unhold(&e->st); /* the peer was told what was delivered, not what was held */
    stream_acked(&e->st, e->peer_delivered);
    e->st.tx_sent = e->st.tx_acked;
    e->st.sent_off = 0;
    e->st.rx_acked = e->st.rx_next;
    return flush_stream(e);
}
