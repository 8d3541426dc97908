/* SPDX-License-Identifier: ISC */
/*
 * The handshake (see engine.h and docs/PROTOCOL.md section 6): Hello and
 * version negotiation, pairing with CPace or reconnecting with X25519,
 * the sealed identities and their signatures, resumption's proof, the
 * key schedule, and Ready.
 */
#include "engine_int.h"

static int become_open(pl_engine *e);

static const char TRANSCRIPT_LABEL[] = "peerlink v1 transcript";
static const char SIGN_LABEL[] = "peerlink v1 identity ";
static const char SID_LABEL[] = "peerlink v1 sid";
static const char CI_LABEL[] = "peerlink v1";
static const char CI_SECRET_LABEL[] = "peerlink v1 secret";
static const char RESUME_LABEL[] = "peerlink v1 resume";

/* ---------------------------------------------------------------- start */

/* An initiator that reconnects (a code wins: section 6.1). */
static int reconnects(const pl_engine *e)
{
    return e->initiator && !e->have_code && e->have_expected_peer;
}

/* c: ResumeStart {eI} */
static void resume_start(pl_engine *e, Peerlink__Control *c, Peerlink__ResumeStart *rs)
{
    rs->ephemeral.data = e->eph_pk;
    rs->ephemeral.len = 32;
    c->msg_case = PEERLINK__CONTROL__MSG_RESUME_START;
    c->resume_start = rs;
}

int pl_engine_start(pl_engine *e)
{
    if (e->state != PL_HS_IDLE)
        return PL_ERR_STATE;
    if (sodium_is_zero(e->identity_sk, sizeof e->identity_sk))
        return PL_ERR_STATE; /* not configured */
    Peerlink__Control c = PEERLINK__CONTROL__INIT;
    Peerlink__Hello h = PEERLINK__HELLO__INIT;
    pl__random_bytes(e, e->nonce, sizeof e->nonce);
    h.min_version = PL_PROTO_MIN_VERSION;
    h.max_version = PL_PROTO_MAX_VERSION;
    h.max_message = e->max_message;
    h.nonce.data = e->nonce;
    h.nonce.len = sizeof e->nonce;
    h.instance = e->initiator ? (char *)"" : e->instance;
    c.msg_case = PEERLINK__CONTROL__MSG_HELLO;
    c.hello = &h;
    int rc = pl__send_control(e, &c, 0, e->hello_local, sizeof e->hello_local, &e->hello_local_len);
    if (rc == PL_OK && reconnects(e)) {
        /* ResumeStart needs nothing from Hello_R: it leaves right behind
         * our Hello (docs/PROTOCOL.md section 6.1), and enters the
         * transcript once Hello_R has (pl__handle_hello()). */
        Peerlink__ResumeStart rs = PEERLINK__RESUME_START__INIT;
        pl__x25519_keypair(e);
        resume_start(e, &c, &rs);
        rc = pl__send_control(e, &c, 0, NULL, 0, NULL);
    }
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
    pl__th_value(e, th);
    pl_hkdf_extract(th, sizeof th, e->secret, e->secret_len, prk);
    pl_hkdf_expand(prk, sizeof prk, label_i2r, NULL, 0, k_i2r, sizeof k_i2r);
    pl_hkdf_expand(prk, sizeof prk, label_r2i, NULL, 0, k_r2i, sizeof k_r2i);
    pl_record_clear(&e->tx);
    pl_record_clear(&e->rx);
    pl_record_init_cached(&e->tx, e->initiator ? k_i2r : k_r2i, e->rekey_interval, e->aead);
    pl_record_init_cached(&e->rx, e->initiator ? k_r2i : k_i2r, e->rekey_interval, e->aead);
    if (app) {
        pl_hkdf_expand(prk, sizeof prk, "peerlink session id", NULL, 0, e->new_id, sizeof e->new_id);
        pl_hkdf_expand(prk, sizeof prk, "peerlink resume", NULL, 0, e->new_resume_key,
                       sizeof e->new_resume_key);
        pl_hkdf_expand(prk, sizeof prk, "peerlink exporter", NULL, 0, e->new_exporter,
                       sizeof e->new_exporter);
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

int pl_engine_export(const pl_engine *e, const char *label, const uint8_t *context, size_t context_len,
                     uint8_t *out, size_t out_len)
{
    /* info = "peerlink export" || u8(len(label)) || label || u16be(len(context)) || context */
    uint8_t info[1 + 255 + 2 + PL_EXPORT_CONTEXT_MAX];
    size_t label_len = label ? strlen(label) : 0;
    if (label_len < 1 || label_len > 255 || (!context && context_len) || context_len > PL_EXPORT_CONTEXT_MAX ||
        !out || out_len < 1 || out_len > PL_EXPORT_MAX)
        return PL_ERR_INVALID;
    if (!e->st.established)
        return PL_ERR_STATE;
    size_t n = 0;
    info[n++] = (uint8_t)label_len;
    memcpy(info + n, label, label_len);
    n += label_len;
    info[n++] = (uint8_t)(context_len >> 8);
    info[n++] = (uint8_t)context_len;
    if (context_len)
        memcpy(info + n, context, context_len);
    n += context_len;
    int rc = pl_hkdf_expand(e->st.exporter, sizeof e->st.exporter, "peerlink export", info, n, out, out_len);
    sodium_memzero(info, n);
    return rc;
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
    pl__th_value(e, th);
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
    int rc = pl__send_control(e, &c, 1, NULL, 0, NULL);
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


/* The peer's Identity: check it, then finish the handshake. */
int pl__handle_identity(pl_engine *e, const Peerlink__Identity *id, const uint8_t *raw, size_t raw_len)
{
    if (id->public_key.len != 32 || id->signature.len != crypto_sign_BYTES || !id->name ||
        !pl_name_valid(id->name) || (id->resume && e->initiator))
        return PL_ERR_PROTOCOL;
    uint8_t th[PL_HASH_SIZE], msg[sizeof SIGN_LABEL - 1 + 1 + PL_HASH_SIZE];
    pl__th_value(e, th);
    memcpy(msg, SIGN_LABEL, sizeof SIGN_LABEL - 1);
    msg[sizeof SIGN_LABEL - 1] = e->initiator ? ROLE_R : ROLE_I;
    memcpy(msg + sizeof SIGN_LABEL, th, sizeof th);
    if (crypto_sign_verify_detached(id->signature.data, msg, sizeof msg, id->public_key.data) != 0)
        return PL_ERR_AUTH;
    memcpy(e->peer_id, id->public_key.data, 32);
    pl__copy_name(e->peer_name, id->name);

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
    pl__th_add(e, raw, raw_len);
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
    if ((rc = pl__send_control(e, &c, 0, NULL, 0, NULL)) != PL_OK)
        return rc;
    return become_open(e);
}

/* Initiator: the responder's Ready says whether our session goes on. */
int pl__handle_ready(pl_engine *e, const Peerlink__Ready *r)
{
    pl_stream *st = &e->st;
    if (!wants_resume(e))
        return r->resumed ? PL_ERR_PROTOCOL : become_open(e);
    if (r->resumed) {
        if (r->delivered < st->tx_acked || r->delivered > st->tx_next)
            return PL_ERR_PROTOCOL;
        pl__stream_acked(st, r->delivered);
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
        int rc = pl__stream_append(st, NULL, 0, PL_STREAM_EOS);
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
    e->awaiting_peer = !e->initiator;
    if (!e->resumed) {
        memcpy(e->st.id, e->new_id, sizeof e->st.id);
        memcpy(e->st.resume_key, e->new_resume_key, sizeof e->st.resume_key);
        memcpy(e->st.exporter, e->new_exporter, sizeof e->st.exporter);
        e->st.established = 1;
    }
    sodium_memzero(e->new_resume_key, sizeof e->new_resume_key);
    sodium_memzero(e->new_exporter, sizeof e->new_exporter);
    e->st.rx_acked = e->st.rx_next; /* the handshake told the peer */
    /* A resuming responder sends once it holds the session (pl_engine_adopt);
     * a finished one has nothing to send but the Abort its caller queues. */
    if (!(e->resumed && !e->initiator) && !e->finished)
        rc = pl__send_waiting(e);
    return rc == PL_OK ? PL_ENGINE_OPEN : rc;
}

/* ---------------------------------------------------------------- handshake steps */

/* Both Hellos are known: start the transcript, in role order. */
static void th_start(pl_engine *e, const uint8_t *hello_peer, size_t hello_peer_len)
{
    crypto_hash_sha512_init(&e->th);
    crypto_hash_sha512_update(&e->th, (const uint8_t *)TRANSCRIPT_LABEL, sizeof TRANSCRIPT_LABEL - 1);
    if (e->initiator) {
        pl__th_add(e, e->hello_local, e->hello_local_len);
        pl__th_add(e, hello_peer, hello_peer_len);
    } else {
        pl__th_add(e, hello_peer, hello_peer_len);
        pl__th_add(e, e->hello_local, e->hello_local_len);
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

/* CPace for this connection: channel identifier from the kind of key
 * (a code or a secret) and the instance name, session id from the nonces.
 * Sets our scalar and message (eph_sk, eph_pk); writes sid; wipes the key. */
static int cpace_start(pl_engine *e, uint8_t sid[16])
{
    const uint8_t *nonce_i = e->initiator ? e->nonce : e->peer_nonce;
    const uint8_t *nonce_r = e->initiator ? e->peer_nonce : e->nonce;
    const char *label = e->prs_secret ? CI_SECRET_LABEL : CI_LABEL;
    uint8_t ci[1 + sizeof CI_SECRET_LABEL + 1 + PL_NAME_MAX], g[32], y[32];
    size_t n = pl_cpace_lv_cat(ci, sizeof ci, 0, (const uint8_t *)label, strlen(label));
    n = pl_cpace_lv_cat(ci, sizeof ci, n, (const uint8_t *)e->instance, strlen(e->instance));
    sid_of(nonce_i, nonce_r, sid);
    int rc = pl_cpace_generator(e->prs, e->prs_len, ci, n, sid, 16, g);
    sodium_memzero(e->prs, sizeof e->prs);
    e->prs_len = 0;
    pl__random_bytes(e, y, sizeof y);
    sodium_memzero(e->eph_sk, sizeof e->eph_sk); /* a key pair drawn ahead for a reconnect */
    e->eph_ready = 0;
    if (rc == PL_OK)
        rc = pl_cpace_message(g, y, e->eph_sk, e->eph_pk);
    sodium_memzero(g, sizeof g);
    sodium_memzero(y, sizeof y);
    return rc;
}

int pl__handle_hello(pl_engine *e, const Peerlink__Hello *h, const uint8_t *raw, size_t raw_len)
{
    uint32_t lo = h->min_version > PL_PROTO_MIN_VERSION ? h->min_version : PL_PROTO_MIN_VERSION;
    uint32_t hi = h->max_version < PL_PROTO_MAX_VERSION ? h->max_version : PL_PROTO_MAX_VERSION;
    if (hi < lo || hi == 0)
        return PL_ERR_VERSION;
    if (h->max_message < 1 || h->nonce.len != PL_NONCE_SIZE || !h->instance || !pl_name_valid(h->instance))
        return PL_ERR_PROTOCOL;
    if (e->initiator) {
        /* The responder names the instance; it must be the one we meant to reach. */
        if (e->have_instance && strcmp(h->instance, e->instance) != 0)
            return PL_ERR_AUTH;
        pl__copy_name(e->instance, h->instance);
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

    /* Initiator: reconnect with the stored identity, or pair with the code. */
    Peerlink__Control c = PEERLINK__CONTROL__INIT;
    if (reconnects(e)) {
        /* Our ResumeStart went out behind our Hello; it is hashed after both Hellos. */
        Peerlink__ResumeStart rs = PEERLINK__RESUME_START__INIT;
        uint8_t buf[64]; /* it packs to 36 bytes */
        resume_start(e, &c, &rs);
        pl__th_add(e, buf, peerlink__control__pack(&c, buf));
    } else if (e->have_code) {
        Peerlink__PairStart ps = PEERLINK__PAIR_START__INIT;
        uint8_t sid[16];
        e->pairing = 1;
        int rc = cpace_start(e, sid);
        if (rc != PL_OK)
            return rc;
        ps.cpace_y.data = e->eph_pk;
        ps.cpace_y.len = 32;
        c.msg_case = PEERLINK__CONTROL__MSG_PAIR_START;
        c.pair_start = &ps;
        if ((rc = pl__send_control(e, &c, 1, NULL, 0, NULL)) != PL_OK)
            return rc;
    } else {
        return PL_ERR_NOT_PAIRED;
    }
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

int pl__handle_start(pl_engine *e, const Peerlink__Control *c, const uint8_t *raw, size_t raw_len)
{
    Peerlink__Control out = PEERLINK__CONTROL__INIT;
    Peerlink__PairReply pr = PEERLINK__PAIR_REPLY__INIT;
    Peerlink__ResumeReply rr = PEERLINK__RESUME_REPLY__INIT;
    int rc;
    pl__th_add(e, raw, raw_len);
    if (c->msg_case == PEERLINK__CONTROL__MSG_PAIR_START) {
        if (c->pair_start->cpace_y.len != 32)
            return PL_ERR_PROTOCOL;
        pl_pair_key key = {NULL, 0, 0};
        rc = e->hooks.pair_begin ? e->hooks.pair_begin(e->hooks_ctx, &key) : PL_ERR_NOT_PAIRED;
        if (rc != PL_OK)
            return rc;
        e->pair_admitted = 1;
        e->pairing = 1;
        if (!key.bytes || !pl__pair_key_valid(&key))
            return PL_ERR_NOT_PAIRED;
        pl__pair_key_take(e, &key);
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
        pl__x25519_keypair(e);
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
    rc = pl__send_control(e, &out, 1, NULL, 0, NULL);
    return rc == PL_OK ? enter_identity_phase(e) : rc;
}

int pl__handle_reply(pl_engine *e, const Peerlink__Control *c, const uint8_t *raw, size_t raw_len)
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
    pl__th_add(e, raw, raw_len);
    return enter_identity_phase(e);
}
