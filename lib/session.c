/* SPDX-License-Identifier: ISC */
/*
 * The session shell: a pl_session drives the sans-I/O engine (core/engine.c:
 * handshake, records, the stream) and the session's clocked policy
 * (core/policy.c: Acks, keepalive, the interruption window, dialling
 * back-off) over whatever link carries it now (session_internal.h): it
 * feeds the engine what the link brings, asks the link to write what the
 * engine queued, runs one timer at the session's next deadline, and
 * wires the engine's hooks to the keystore, the pairing policy and the
 * node (node.c: resumption, simultaneous dials). It knows no socket:
 * links do (lib/backends/), and so do the diallers that make them.
 */
#include "session_internal.h"

#include <peerlink/apple.h>

#include <stdio.h>
#include <time.h>
#include <unistd.h>

/* ---------------------------------------------------------------- helpers */

int64_t pl__now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void pl__free_timeout(const pl_poll *poll, pl_timeout **t)
{
    if (*t)
        poll->timeout_free(*t);
    *t = NULL;
}

void pl__session_attach(pl_session *c, pl_link *lk)
{
    lk->c = c;
    c->link = lk;
    pl__session_update_interest(c);
}

int pl__session_args_ok(const pl_node *node, pl_role role, const char *instance, pl_session **out)
{
    return node && out && instance && pl_name_valid(instance) &&
                   (role == PL_ROLE_INITIATOR || role == PL_ROLE_RESPONDER)
               ? PL_OK
               : PL_ERR_INVALID;
}

int pl__session_new_on(pl_node *node, pl_link *lk, pl_role role, const char *instance, pl_session_cb cb,
                       void *userdata, pl_session **out)
{
    pl_session *c = pl__session_alloc(node, PL_DEFAULT_MAX_MESSAGE, role == PL_ROLE_INITIATOR, instance);
    if (!c)
        return PL_ERR_NOMEM;
    c->cb = cb;
    c->userdata = userdata;
    c->app_links = 1;
    pl__session_attach(c, lk); /* the handshake starts from the loop */
    *out = c;
    return PL_OK;
}

int pl__session_can_relink(const pl_session *c)
{
    return (c->app_links || (c->dialer && c->dialer->attaches)) && c->initiator && c->ss.interrupted && !c->link &&
                   !c->closed
               ? PL_OK
               : PL_ERR_STATE;
}

void pl__session_relink(pl_session *c, pl_link *lk)
{
    pl_engine_relink(&c->eng);
    pl__session_attach(c, lk); /* the resuming handshake starts from the loop */
}

void pl__session_drop_link(pl_session *c)
{
    pl_link *lk = c->link;
    if (!lk)
        return;
    c->link = NULL;
    lk->c = NULL;
    lk->ops->close(lk);
}

static void dial_stop(pl_session *c)
{
    if (c->dialer && c->dialer->stop)
        c->dialer->stop(c->dialer_ctx, c);
}

/* Stop all I/O; the object stays allocated. The session needs no more
 * links: its dialler goes too. */
static void session_teardown(pl_session *c)
{
    pl__session_drop_link(c);
    dial_stop(c);
    if (c->dialer && c->dialer->free)
        c->dialer->free(c->dialer_ctx);
    c->dialer = NULL;
    c->dialer_ctx = NULL;
    pl__free_timeout(c->node->poll, &c->deadline);
    pl__free_timeout(c->node->poll, &c->tick);
    pl__free_timeout(c->node->poll, &c->dup);
    pl__free_timeout(c->node->poll, &c->drain);
    pl__free_timeout(c->node->poll, &c->wrote);
}

/* Log what happened to the session, naming its peer's address (never a
 * secret: the status and the address only). */
static void log_session(const pl_session *c, pl_log_level level, const char *what, int status)
{
    if (!pl__log_wants(level))
        return;
    char peer[96];
    if (pl_session_peer_string(c, peer, sizeof peer) != PL_OK)
        snprintf(peer, sizeof peer, "%s", c->link ? "a peer over a channel" : "a disconnected peer");
    pl__log(level, "session with %s: %s%s%s", peer, what, status != PL_OK ? ": " : "",
            status != PL_OK ? pl_strerror(status) : "");
}

int pl__session_emit(pl_session *c, pl_session_event ev, int status, const void *data, size_t len)
{
    if (!c->cb)
        return 1;
    c->busy++;
    c->cb(c, ev, status, data, len, c->userdata);
    if (--c->busy == 0 && c->zombie) {
        pl__session_destroy(c);
        return 0;
    }
    return !c->zombie;
}

static void flush_once(pl_session *c)
{
    if (c->link && pl_buf_size(&c->eng.out))
        c->link->ops->flush_once(c->link);
}

void pl__session_close(pl_session *c, int status)
{
    if (c->closed)
        return;
    if (status == PL_OK)
        log_session(c, PL_LOG_DEBUG, "closed", status);
    else
        /* The loser of a simultaneous dial ends by design: not worth a warning. */
        log_session(c, status == PL_ERR_DUPLICATE ? PL_LOG_DEBUG : PL_LOG_WARNING,
                    c->eng.st.established ? "ended" : "failed before it opened", status);
    flush_once(c);
    session_teardown(c);
    c->closed = 1;
    if (c->listener) {
        pl_engine_clear(&c->eng); /* an unfinished pairing ends under its listener's policy */
        pl__listener_unlink(c);
        pl__session_destroy(c);
        return;
    }
    pl__session_emit(c, PL_SESSION_CLOSED, status, NULL, 0);
}

/* A link failure the session can outlive: not the peer's abort, not a
 * message the peer will never take, not running out of memory. (A
 * corrupted link shows as any error of the received bytes: PL_ERR_AUTH,
 * PL_ERR_MALFORMED, PL_ERR_TOO_LARGE for a header's length...) A new
 * link comes from the initiator: this library's dial, or the
 * application's (pl_session_attach_channel()); to a listener. */
static int can_resume(const pl_session *c, int status)
{
    return c->ss.resume_ms > 0 && !c->listener && c->eng.st.established && !c->zombie && !c->eng.unsendable &&
           !(c->eng.refused && !c->eng.resumed) && /* the initiator never had this session */
           pl_policy_resumable_error(status);
}

/* Set the session's timer to its next deadline. */
static void arm(pl_session *c)
{
    if (!c->tick || c->closed)
        return;
    int64_t d = pl_policy_deadline(&c->ss);
    if (d < 0) {
        c->node->poll->timeout_update(c->tick, -1);
        return;
    }
    int64_t wait = d - pl__now_ms();
    c->node->poll->timeout_update(c->tick, wait < 0 ? 0 : wait > INT32_MAX ? INT32_MAX : (int)wait);
}

void pl__session_fail(pl_session *c, int status)
{
    if (c->closed)
        return;
    if (pl_stream_complete(&c->eng.st)) {
        /* Everything both ways was delivered, our end-of-stream included:
         * only our last Ack may be lost, which the peer can outlive. */
        pl__session_close(c, PL_OK);
        return;
    }
    if (!can_resume(c, status)) {
        pl__session_close(c, status);
        return;
    }
    log_session(c, PL_LOG_INFO, "interrupted, waiting to resume", status);
    flush_once(c);
    pl__session_drop_link(c);
    dial_stop(c);
    pl__free_timeout(c->node->poll, &c->deadline);
    /* The session waits; its dialler dials again from the loop (at once
     * the first time, then backing off). */
    int first = pl_policy_interrupt(&c->ss, pl__now_ms());
    arm(c);
    /* The application that brings the links hears of every failure: each
     * one asks it for another. */
    if (first || (c->app_links && c->initiator))
        pl__session_emit(c, PL_SESSION_INTERRUPTED, status, NULL, 0);
}

int pl__session_feed(pl_session *c, const pl_link *lk, pl_buf *in)
{
    while (pl_buf_size(in) && !pl__session_input_full(c)) {
        uint8_t buf[PL_READ_CHUNK];
        size_t n = pl_buf_size(in) < sizeof buf ? pl_buf_size(in) : sizeof buf;
        memcpy(buf, pl_buf_head(in), n); /* callbacks may add input meanwhile */
        pl_buf_consume(in, n);
        if (!pl__session_input(c, buf, n) || lk->c != c)
            return 0; /* the session ended, or the link moved to the session it resumes */
    }
    return 1;
}

int pl__session_input_full(const pl_session *c)
{
    /* More of the peer's messages held than the receive limit allows, in
     * more than one: read no more until the application takes some. A
     * peer whose send limit is not larger never gets us there (it cannot
     * have more unacknowledged), so a paused side keeps reading its Acks
     * and Pings. */
    const pl_stream *st = &c->eng.st;
    return st->held_n > 1 && st->held_cost > c->receive_limit;
}

void pl__session_update_interest(pl_session *c)
{
    arm(c);
    if (c->link && !c->closed)
        c->link->ops->interest(c->link);
}

/* ---------------------------------------------------------------- engine hooks */

static int hook_pair_begin(void *ctx, pl_pair_key *key)
{
    pl_session *c = ctx;
    if (!c->listener && c->secret_len) {
        /* A byte session's secret: high entropy, so no attempt limits
         * (docs/PROTOCOL.md 11.2); wiped when the attempt ends. */
        *key = (pl_pair_key){c->secret, c->secret_len, 1};
        return PL_OK;
    }
    pl_pairing *p = c->listener ? &c->listener->pairing : c->own_pairing;
    const char *code = NULL;
    if (!p)
        return PL_ERR_NOT_PAIRED;
    int rc = c->listener ? pl__listener_pair_begin(c, &code) : pl__pairing_begin(p, &code);
    if (rc == PL_OK) {
        c->pairing = p;
        *key = (pl_pair_key){(const uint8_t *)code, strlen(code), 0};
    }
    return rc;
}

static void wipe_secret(pl_session *c)
{
    sodium_memzero(c->secret, sizeof c->secret);
    c->secret_len = 0;
}

static void hook_pair_end(void *ctx, int result)
{
    pl_session *c = ctx;
    pl_pairing *p = c->pairing;
    wipe_secret(c);
    if (!p)
        return;
    if (c->listener && p == &c->listener->pairing) {
        pl__listener_pair_end(c, result);
    } else {
        /* A byte session's own fixed code: nothing is replaced. */
        pl__pairing_end(p, result, 1);
    }
    c->pairing = NULL;
}

/* Responder: a reconnecting initiator is found by its id, among the
 * initiators that paired with us only. */
static int hook_peer_known(void *ctx, const uint8_t id[32])
{
    pl_session *c = ctx;
    pl_paired_peer p;
    if (pl__keystore_find_initiator(c->node->ks, id, &p) != PL_OK)
        return PL_ERR_NOT_PAIRED;
    memcpy(c->peer_stored, p.name, sizeof c->peer_stored);
    return PL_OK;
}

/* A pairing completed: the initiator stores the responder under the
 * instance it reached, the responder the initiator under its claimed name;
 * each in its role (the keystore replaces what it replaces, writing first). */
static int hook_peer_paired(void *ctx, const uint8_t id[32], const char *name)
{
    pl_session *c = ctx;
    pl_paired_peer p = {.role = c->initiator ? PL_PEER_RESPONDER : PL_PEER_INITIATOR};
    memcpy(p.id, id, 32);
    snprintf(p.name, sizeof p.name, "%s", name);
    p.paired_at = (int64_t)time(NULL);
    if (!c->initiator)
        c->had_earlier = pl__keystore_find_initiator(c->node->ks, id, &c->earlier) == PL_OK;
    int rc = pl__keystore_save_peer(c->node->ks, &p);
    if (rc == PL_OK)
        memcpy(c->peer_stored, p.name, sizeof c->peer_stored);
    return rc;
}

/* Responder: the initiator refused the Ready of this pairing; the pairing
 * stored a moment ago goes, and the one it replaced, if any, comes back
 * (docs/PROTOCOL.md section 6.8). */
static void hook_peer_refused(void *ctx, const uint8_t id[32])
{
    pl_session *c = ctx;
    int rc = c->had_earlier && memcmp(c->earlier.id, id, PL_ID_SIZE) == 0
                 ? pl__keystore_save_peer(c->node->ks, &c->earlier)
                 : pl__keystore_forget_initiator(c->node->ks, id); /* not a responder entry of the same peer */
    c->had_earlier = 0;
    if (rc != PL_OK && rc != PL_ERR_NOT_FOUND)
        pl__log(PL_LOG_WARNING, "the pairing the peer refused could not be undone: %s", pl_strerror(rc));
}

static void hook_drain(void *ctx)
{
    pl_session *c = ctx;
    if (c->link && c->link->ops->write_now)
        c->link->ops->write_now(c->link);
}

static const pl_engine_hooks conn_hooks = {
    .pair_begin = hook_pair_begin,
    .pair_end = hook_pair_end,
    .peer_known = hook_peer_known,
    .peer_paired = hook_peer_paired,
    .peer_refused = hook_peer_refused,
    .find_session = pl__find_session,
    .admit = pl__admit,
    .drain = hook_drain,
};

void pl__session_expect_peer(pl_session *c, const pl_paired_peer *p)
{
    memcpy(c->target_id, p->id, PL_ID_SIZE);
    c->has_target = 1;
    memcpy(c->peer_stored, p->name, sizeof c->peer_stored);
}

void pl__session_expect(pl_session *c, const pl_txt *txt)
{
    pl_keystore *ks = c->node->ks;
    pl_paired_peer p;
    c->has_target = 0;
    c->peer_stored[0] = '\0';
    if (!c->initiator || pl__session_pairs(c) || !c->have_instance)
        return;
    /* The name first: a responder stored under it is the only one that
     * instance name may reach. A hint only points at a stored responder;
     * either way the responder must prove the id in the handshake. */
    if (pl__keystore_find_responder(ks, c->instance, &p) == PL_OK || pl__keystore_find_hinted(ks, txt, &p) == PL_OK)
        pl__session_expect_peer(c, &p);
}

int pl__session_start(pl_session *c)
{
    if (!sodium_is_zero(c->eng.identity_sk, sizeof c->eng.identity_sk))
        return pl_engine_start(&c->eng); /* configured before: a session's next link */
    uint8_t sk[64];
    char host[PL_NAME_MAX + 1] = "";
    int rc = pl__keystore_identity_secret(c->node->ks, sk);
    if (rc != PL_OK)
        return rc;
    if (c->node->name[0]) {
        memcpy(host, c->node->name, sizeof host);
    } else if (c->initiator || !c->instance[0]) {
        gethostname(host, sizeof host - 1);
        pl_name_truncate(host); /* a name the protocol carries: UTF-8, at most 63 bytes */
    }
    /* A dialler found the responder (and its discovery hint) already; the
     * links an application brings have only the instance name. */
    if (c->initiator && !pl__session_pairs(c) && !c->has_target)
        pl__session_expect(c, NULL);
    pl_engine_config cfg = {
        .initiator = c->initiator,
        .identity_sk = sk,
        .name = c->initiator ? host : (c->instance[0] ? c->instance : host),
        .instance = (c->have_instance || !c->initiator) ? c->instance : NULL,
        .code = c->initiator && c->code[0] ? c->code : NULL,
        .secret = c->initiator && c->secret_len ? c->secret : NULL,
        .secret_len = c->secret_len,
        .expected_peer = c->initiator && !pl__session_pairs(c) && c->has_target ? c->target_id : NULL,
        .hooks = &conn_hooks,
        .hooks_ctx = c,
        .aead = c->node->aead,
    };
    rc = pl_engine_configure(&c->eng, &cfg);
    sodium_memzero(sk, sizeof sk);
    sodium_memzero(c->code, sizeof c->code);
    if (c->initiator)
        wipe_secret(c); /* a responder's waits for the peer's PairStart */
    return rc == PL_OK ? pl_engine_start(&c->eng) : rc;
}

int pl__session_start_if_idle(pl_session *c)
{
    if (c->eng.state != PL_HS_IDLE)
        return 1;
    int rc = pl__session_start(c);
    if (rc != PL_OK) {
        pl__session_fail(c, rc);
        return 0;
    }
    pl__session_update_interest(c);
    return 1;
}

/* ---------------------------------------------------------------- the session's timer */

/* Dialling side, interrupted: a new link, from the dialler that made the
 * first one. Returns 0 if c ended. */
static int dial_again(pl_session *c)
{
    if (!c->dialer)
        return 1; /* the application brings the links */
    pl__session_drop_link(c); /* a link still in its handshake starts over */
    int rc = c->dialer->dial(c->dialer_ctx, c);
    if (rc != PL_OK) {
        pl__session_fail(c, rc); /* the next try backs off, or the session ends */
        return !c->closed;
    }
    return 1;
}

void pl__session_set_dialer(pl_session *c, const pl_dialer_ops *ops, void *ctx)
{
    c->dialer = ops;
    c->dialer_ctx = ctx;
    c->app_links = 0;
    pl_policy_init(&c->ss, 1, PL_POLICY_DEFAULT_RESUME_MS, PL_POLICY_DEFAULT_KEEPALIVE_MS);
}

/* What the session's policy says is due: give up, drop a silent link,
 * dial again, Ping, Ack. */
static void tick(pl_timeout *t, void *userdata)
{
    pl_session *c = userdata;
    (void)t;
    unsigned due = pl_policy_due(&c->ss, pl__now_ms(), pl__session_input_full(c));
    if (due & PL_POLICY_GIVE_UP) {
        pl__session_close(c, PL_ERR_TIMEOUT);
        return;
    }
    if (due & PL_POLICY_DEAD) {
        pl__session_fail(c, PL_ERR_TIMEOUT);
        return;
    }
    if ((due & PL_POLICY_DIAL) && !dial_again(c))
        return;
    if (due & PL_POLICY_PING)
        (void)pl_engine_ping(&c->eng); /* fails only if not open: nothing to probe */
    if (due & PL_POLICY_ACK) {
        int rc = pl_engine_ack(&c->eng);
        pl_policy_ack_sent(&c->ss);
        if (rc != PL_OK) {
            pl__session_fail(c, rc);
            return;
        }
    }
    pl__session_update_interest(c);
}

/* ---------------------------------------------------------------- input and output */

/* Tell the application how many of its messages the peer has now (if
 * more than last said): after an Ack, and after a resumption, whose
 * handshake acknowledges too. Returns 0 if c is gone or closed. */
static int report_acked(pl_session *c)
{
    uint64_t n = pl_stream_acked_messages(&c->eng.st);
    if (n <= c->acked)
        return 1;
    c->acked = n;
    return pl__session_emit(c, PL_SESSION_ACKED, PL_OK, NULL, (size_t)n) && !c->closed;
}

/* Once the peer's application has our end-of-stream too, say so, once (an
 * Ack of the end-of-stream alone is no engine event: checked after each
 * batch of input and after a resumption). Returns 0 if c is gone or closed. */
static int report_delivered(pl_session *c)
{
    if (c->delivered || !pl_session_delivered(c))
        return 1;
    c->delivered = 1;
    return pl__session_emit(c, PL_SESSION_DELIVERED, PL_OK, NULL, 0) && !c->closed;
}

/* A new link continues the session (after the application was told of
 * the break, or before it noticed). Returns 0 if c is gone or closed. */
static int report_resumed(pl_session *c)
{
    log_session(c, PL_LOG_INFO, c->eng.reset ? "resumed, but the peer lost the session" : "resumed", PL_OK);
    return pl__session_emit(c, PL_SESSION_RESUMED, c->eng.reset ? PL_ERR_PEER_RESET : PL_OK, NULL, 0) && !c->closed &&
           report_acked(c) && report_delivered(c);
}

int pl__session_resumed(pl_session *s)
{
    pl_policy_link_open(&s->ss, pl__now_ms());
    pl__session_update_interest(s);
    return report_resumed(s);
}

/* Responder: the initiator has not opened a record since our Ready, and the
 * window in which its clear Error may still refuse Ready is over. */
static void ready_settled(pl_timeout *t, void *userdata)
{
    pl_session *c = userdata;
    (void)t;
    pl_engine_settle(&c->eng);
}

/* The peer authenticated. Returns 0 if c is gone or closed. */
static int handle_open(pl_session *c)
{
    pl__free_timeout(c->node->poll, &c->deadline);
    /* A responder hears a refusal of its Ready for as long as a handshake may last, not for
     * ever: an initiator refuses at once, and an Error injected later must not undo a pairing. */
    if (c->eng.awaiting_peer)
        c->deadline = c->node->poll->timeout_new(c->node->poll, PL_LISTENER_HANDSHAKE_MS, ready_settled, c);
    int resumed = pl_policy_link_open(&c->ss, pl__now_ms());
    pl__session_update_interest(c);
    pl_listener *l = c->listener;
    if (c->dup_lost) {
        pl__dup_give_up(c); /* a simultaneous dial of the peer's won while this one finished */
        return 0;
    }
    if (c->eng.finished) {
        /* The peer forgot a session that had delivered everything: end this link's new one. */
        if (pl_engine_abort(&c->eng) == PL_OK)
            flush_once(c);
        pl__session_close(c, PL_OK);
        return 0;
    }
    log_session(c, PL_LOG_DEBUG, "handshake complete", PL_OK);
    if (!l && resumed)
        return report_resumed(c);
    if (!l)
        return pl__session_emit(c, PL_SESSION_OPEN, PL_OK, NULL, 0) && !c->closed;
    /* Hand it to the application: from now on it owns c. */
    pl__listener_unlink(c);
    c->busy++;
    l->busy++;
    l->cb(l, c, l->userdata);
    if (--l->busy == 0 && l->zombie)
        pl__listener_destroy(l); /* freed from inside its callback */
    if (--c->busy == 0 && c->zombie) {
        pl__session_destroy(c);
        return 0;
    }
    return !c->zombie && !c->closed;
}

/* Both directions ended and our end-of-stream is out: close cleanly.
 * Returns 1 if the connection goes on, 0 if it ended. */
static int maybe_finish(pl_session *c)
{
    if (!pl_engine_done(&c->eng) || pl_buf_size(&c->eng.out))
        return 1;
    session_teardown(c);
    c->closed = 1;
    pl__session_emit(c, PL_SESSION_CLOSED, PL_OK, NULL, 0);
    return 0;
}

/* A message, the peer's end-of-stream or an Ack to the application.
 * Returns 0 if c is gone or closed. */
static int deliver(pl_session *c, const pl_engine_event *ev)
{
    switch (ev->type) {
    case PL_ENGINE_ACKED:
        pl_policy_carried(&c->ss, 0); /* the link carries the session: the next break dials at once */
        return report_acked(c);
    case PL_ENGINE_MESSAGE:
        pl_policy_carried(&c->ss, ev->len);
        return pl__session_emit(c, PL_SESSION_MESSAGE, PL_OK, ev->data, ev->len) && !c->closed;
    case PL_ENGINE_PEER_EOF:
        return pl__session_emit(c, PL_SESSION_PEER_EOF, PL_OK, NULL, 0) && !c->closed;
    case PL_ENGINE_PEER_TXT:
        return pl__session_emit(c, PL_SESSION_PEER_TXT, PL_OK, ev->data, ev->len) && !c->closed;
    default:
        return 1;
    }
}

/* After a batch of input: tell the peer what the application now has,
 * at once or a little later (core/policy.h). Returns 0 if c ended. */
static int ack_soon(pl_session *c)
{
    if (!pl_policy_ack_now(&c->ss, pl__now_ms(), &c->eng.st, c->eng.ping_owed))
        return 1; /* nothing owed, or the timer (armed by update_interest) will say */
    int rc = pl_engine_ack(&c->eng);
    pl_policy_ack_sent(&c->ss);
    if (rc != PL_OK) {
        pl__session_fail(c, rc);
        return 0;
    }
    return 1;
}

/* After a batch of input or of held entries: Ack, I/O, a clean end.
 * Returns 0 if c ended. */
static int input_done(pl_session *c)
{
    if (!ack_soon(c) || !report_delivered(c))
        return 0;
    pl__session_update_interest(c); /* the handshake may have queued a reply */
    return maybe_finish(c);
}

int pl__session_input(pl_session *c, const uint8_t *buf, size_t n)
{
    int was_silent = c->listener && pl__silent(c);
    size_t off = 0;
    pl_policy_input(&c->ss);
    while (off < n) {
        size_t used = 0;
        pl_engine_event ev;
        int r = pl_engine_receive(&c->eng, buf + off, n - off, &used, &ev);
        off += used;
        if (r < 0) {
            pl__session_fail(c, r);
            return 0;
        }
        if (r == 0)
            break;
        if (ev.type == PL_ENGINE_OPEN) {
            if (c->listener && c->eng.resumed && c->resume_of) {
                pl__resume_into(c, buf + off, n - off);
                return 0;
            }
            if (!handle_open(c))
                return 0;
        } else if (!deliver(c, &ev)) {
            return 0;
        }
    }
    if (was_silent && !pl__silent(c) && !pl__listener_heard(c))
        return 0;
    return input_done(c);
}

/* The application takes messages again: hand out what the engine held,
 * until it pauses again. */
static void drain_due(pl_timeout *t, void *userdata)
{
    pl_session *c = userdata;
    (void)t;
    pl_engine_event ev;
    while (!c->closed && pl_engine_next_held(&c->eng, &ev))
        if (!deliver(c, &ev))
            return;
    if (!c->closed)
        input_done(c);
}

void pl__session_input_end(pl_session *c)
{
    /* A peer closes only once both directions have ended; any other end
     * loses data and is reported as such. */
    if (maybe_finish(c))
        pl__session_fail(c, PL_ERR_CLOSED);
}

int pl__session_wrote(pl_session *c, size_t n)
{
    pl_buf *out = &c->eng.out;
    pl_buf_consume(out, n);
    pl__session_update_interest(c);
    if (pl_buf_size(out))
        return 1;
    pl_engine_prepare(&c->eng); /* while the peer answers */
    if (!c->listener && pl_engine_open(&c->eng) && !pl__session_emit(c, PL_SESSION_DRAINED, PL_OK, NULL, 0))
        return 0;
    if (c->closed)
        return 0;
    return maybe_finish(c);
}

/* ---------------------------------------------------------------- life */

static void deadline_expired(pl_timeout *t, void *userdata)
{
    (void)t;
    pl__session_fail(userdata, PL_ERR_TIMEOUT);
}

int pl__session_set_deadline(pl_session *c, int ms)
{
    pl__free_timeout(c->node->poll, &c->deadline);
    c->deadline = c->node->poll->timeout_new(c->node->poll, ms, deadline_expired, c);
    return c->deadline ? PL_OK : PL_ERR_NOMEM;
}

pl_session *pl__session_alloc(pl_node *node, size_t max_message, int initiator, const char *instance)
{
    if (instance && !pl_name_valid(instance))
        return NULL;
    pl_session *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->node = node;
    c->initiator = initiator;
    c->have_instance = instance != NULL;
    if (instance)
        memcpy(c->instance, instance, strlen(instance) + 1);
    c->send_limit = PL_DEFAULT_SEND_LIMIT;
    c->receive_limit = PL_DEFAULT_SEND_LIMIT; /* what a peer with the default send limit can have unacknowledged */
    pl_policy_init(&c->ss, 0, 0, 0);        /* neither resumed nor probed unless the kind of session says */
    c->tick = node->poll->timeout_new(node->poll, -1, tick, c);
    if (!c->tick) {
        free(c);
        return NULL;
    }
    pl_engine_init(&c->eng, max_message);
    pl__node_add(node, c);
    return c;
}

static void drop_own_pairing(pl_session *c)
{
    if (c->own_pairing) {
        pl__pairing_clear(c->own_pairing);
        free(c->own_pairing);
        c->own_pairing = NULL;
    }
}

void pl__session_destroy(pl_session *c)
{
    pl__node_remove(c->node, c);
    session_teardown(c);
    pl_engine_clear(&c->eng); /* reports an unfinished pairing through the hooks */
    drop_own_pairing(c);
    sodium_memzero(c->code, sizeof c->code);
    wipe_secret(c);
    free(c);
}

void pl_session_free(pl_session *c)
{
    if (!c || c->zombie)
        return;
    /* An open session that did not end cleanly: tell the peer not to wait
     * to resume it (a session that is never resumed: its link's end says it). */
    if (!c->closed && c->ss.resume_ms > 0 && pl_engine_open(&c->eng) && !pl_engine_done(&c->eng) &&
        pl_engine_abort(&c->eng) == PL_OK)
        flush_once(c);
    session_teardown(c);
    c->closed = 1;
    pl__listener_unlink(c);
    if (c->busy) {
        c->zombie = 1;
        return;
    }
    pl__session_destroy(c);
}

/* ---------------------------------------------------------------- the session API */

int pl_connect(pl_node *node, const pl_service *svc, int timeout_ms, pl_session_cb cb, void *userdata, pl_session **out)
{
    if (node && svc && out && svc->type && (svc->port == 0 || svc->n_addresses == 0)) {
        /* A Network.framework browse result names a Bonjour service and has
         * no address: Network.framework resolves and connects to it. */
        int rc = pl_apple_connect(node, svc, timeout_ms, cb, userdata, out);
        if (rc != PL_ERR_UNSUPPORTED) /* not an Apple build: no address is invalid (below) */
            return rc;
    }
    return pl__tcp_connect(node, svc, timeout_ms, cb, userdata, out);
}

int pl_session_set_max_message(pl_session *c, size_t max)
{
    if (!c)
        return PL_ERR_INVALID;
    return pl_engine_set_max_message(&c->eng, max);
}

void pl_session_set_callback(pl_session *c, pl_session_cb cb, void *userdata)
{
    if (!c)
        return;
    c->cb = cb;
    c->userdata = userdata;
}

/* The initiator pairs: no stored responder, no simultaneous-dial resolution. */
static void initiator_pairs(pl_session *c)
{
    c->has_target = 0;
    c->peer_stored[0] = '\0';
}

int pl_session_set_code(pl_session *c, const char *code)
{
    if (!c || !code || !code[0] || strlen(code) > PL_CODE_MAX)
        return PL_ERR_INVALID;
    for (const char *p = code; *p; p++)
        if (*p < 0x21 || *p > 0x7e)
            return PL_ERR_INVALID;
    if (c->eng.state != PL_HS_IDLE || c->listener)
        return PL_ERR_STATE;
    if (c->initiator) {
        wipe_secret(c); /* the last of pl_session_set_code() and pl_session_set_secret() counts */
        memcpy(c->code, code, strlen(code) + 1);
        initiator_pairs(c);
        return PL_OK;
    }
    pl_pairing *p = c->own_pairing ? c->own_pairing : calloc(1, sizeof *p);
    if (!p)
        return PL_ERR_NOMEM;
    int rc = pl__pairing_init(p, c->node->ks, code, 0, 0);
    if (rc != PL_OK) {
        if (!c->own_pairing)
            free(p);
        return rc;
    }
    c->own_pairing = p;
    wipe_secret(c);
    return PL_OK;
}

int pl_session_set_secret(pl_session *c, const void *secret, size_t len)
{
    if (!c || !secret || len < PL_PAIRING_SECRET_MIN || len > PL_PAIRING_SECRET_MAX)
        return PL_ERR_INVALID;
    if (c->eng.state != PL_HS_IDLE || c->listener)
        return PL_ERR_STATE;
    drop_own_pairing(c);
    sodium_memzero(c->code, sizeof c->code);
    memcpy(c->secret, secret, len);
    c->secret_len = len;
    if (c->initiator)
        initiator_pairs(c);
    return PL_OK;
}

int pl_session_peer_id(const pl_session *c, uint8_t id[PL_ID_SIZE])
{
    if (!c || !id)
        return PL_ERR_INVALID;
    if (!pl_engine_open(&c->eng) && !c->eng.st.established)
        return PL_ERR_STATE;
    memcpy(id, c->eng.peer_id, PL_ID_SIZE);
    return PL_OK;
}

const char *pl_session_peer_name(const pl_session *c)
{
    return c && (pl_engine_open(&c->eng) || c->eng.st.established) ? c->eng.peer_name : NULL;
}

const char *pl_session_peer_stored_name(const pl_session *c)
{
    return c && (pl_engine_open(&c->eng) || c->eng.st.established) ? c->peer_stored : NULL;
}

int pl_session_paired(const pl_session *c)
{
    return c && pl_engine_open(&c->eng) && c->eng.pairing;
}

/* After a write at once (write_at_once()): what it owes the session
 * (PL_SESSION_DRAINED once the output is empty, an end waiting for it)
 * comes from the loop. */
static void wrote_due(pl_timeout *t, void *userdata)
{
    pl_session *c = userdata;
    (void)t;
    c->wrote_owed = 0;
    if (c->link && !c->closed)
        pl__session_wrote(c, 0);
}

/* An application's message sent outside this session's callbacks, on a
 * link that writes without blocking (TCP, fd), with nothing else waiting:
 * what the socket takes leaves now rather than after the loop's next
 * poll() - the requester of a round trip saves a system call, and the
 * loop runs wrote_due() without one (pl_loop_iterate()). Once per loop
 * iteration: the sends that follow it before the loop runs again are
 * written together by the loop, one system call for a burst of small
 * messages. Inside the callbacks, the pass that ran them writes (fd_io()). */
static void write_at_once(pl_session *c, size_t waiting)
{
    pl_buf *out = &c->eng.out;
    if (c->busy || waiting || c->wrote_owed || !pl_buf_size(out) || !c->link || !c->link->ops->write_now)
        return;
    if (!c->wrote && !(c->wrote = c->node->poll->timeout_new(c->node->poll, -1, wrote_due, c)))
        return; /* the loop writes it, as always */
    c->link->ops->write_now(c->link);
    c->wrote_owed = 1;
    c->node->poll->timeout_update(c->wrote, 0);
}

int pl_session_send(pl_session *c, const void *data, size_t len)
{
    if (!c || (!data && len))
        return PL_ERR_INVALID;
    if (c->closed)
        return PL_ERR_STATE;
    size_t waiting = pl_buf_size(&c->eng.out);
    int err = pl_engine_send(&c->eng, data, len, c->send_limit);
    if (err == PL_OK) {
        write_at_once(c, waiting);
        pl__session_update_interest(c);
    }
    return err;
}

int pl_session_set_txt(pl_session *c, const pl_txt *txt)
{
    uint8_t buf[PL_METADATA_MAX];
    size_t n = 0;
    if (!c || !txt)
        return PL_ERR_INVALID;
    if (c->closed)
        return PL_ERR_STATE;
    int rc = pl_txt_encode(txt, buf, sizeof buf, &n);
    if (rc == PL_OK)
        rc = pl_engine_set_metadata(&c->eng, buf, n);
    if (rc == PL_OK)
        pl__session_update_interest(c);
    return rc;
}

int pl_session_peer_txt(const pl_session *c, pl_txt **out)
{
    if (!c || !out)
        return PL_ERR_INVALID;
    const pl_buf *t = &c->eng.st.peer_txt;
    if (!pl_buf_size(t))
        return PL_ERR_NOT_FOUND;
    return pl_txt_decode(pl_buf_head(t), pl_buf_size(t), out);
}

int pl_session_export(const pl_session *c, const char *label, const void *context, size_t context_len,
                      void *out, size_t out_len)
{
    if (!c)
        return PL_ERR_INVALID;
    return pl_engine_export(&c->eng, label, context, context_len, out, out_len);
}

size_t pl_session_peer_max_message(const pl_session *c)
{
    return c && (pl_engine_open(&c->eng) || c->eng.st.established) ? (size_t)c->eng.peer_max : 0;
}

size_t pl_session_pending(const pl_session *c)
{
    if (!c)
        return 0;
    const pl_stream *st = &c->eng.st;
    return pl_buf_size(&c->eng.out) + (pl_ring_size(&st->unacked) - st->sent_off);
}

size_t pl_session_unacked(const pl_session *c)
{
    return c ? c->eng.st.unacked_bytes : 0;
}

int pl_session_delivered(const pl_session *c)
{
    return c && c->eng.st.local_eof && c->eng.st.tx_acked == c->eng.st.tx_next;
}

size_t pl_session_held(const pl_session *c)
{
    return c ? c->eng.st.held_cost : 0;
}

int pl_session_set_resume(pl_session *c, int timeout_ms)
{
    if (!c || timeout_ms < 0)
        return PL_ERR_INVALID;
    c->ss.resume_ms = timeout_ms;
    return PL_OK;
}

int pl_session_set_keepalive(pl_session *c, int interval_ms)
{
    if (!c || interval_ms < 0)
        return PL_ERR_INVALID;
    pl_policy_set_keepalive(&c->ss, pl__now_ms(), interval_ms);
    arm(c);
    return PL_OK;
}

int pl_session_set_send_limit(pl_session *c, size_t bytes)
{
    if (!c || bytes == 0)
        return PL_ERR_INVALID;
    c->send_limit = bytes;
    return PL_OK;
}

int pl_session_set_receive_limit(pl_session *c, size_t bytes)
{
    if (!c || bytes == 0)
        return PL_ERR_INVALID;
    c->receive_limit = bytes;
    pl__session_update_interest(c);
    return PL_OK;
}

int pl_session_pause(pl_session *c, int paused)
{
    if (!c)
        return PL_ERR_INVALID;
    if (c->closed)
        return PL_ERR_STATE;
    if (!paused && c->eng.st.held_n) {
        if (!c->drain && !(c->drain = c->node->poll->timeout_new(c->node->poll, -1, drain_due, c)))
            return PL_ERR_NOMEM;
        c->node->poll->timeout_update(c->drain, 0);
    }
    pl_engine_hold(&c->eng, paused);
    pl__session_update_interest(c);
    return PL_OK;
}

int pl_session_shutdown(pl_session *c)
{
    if (!c)
        return PL_ERR_INVALID;
    if (c->closed)
        return PL_ERR_STATE;
    int err = pl_engine_shutdown(&c->eng);
    if (err == PL_OK)
        pl__session_update_interest(c);
    return err;
}

int pl_session_peer_string(const pl_session *c, char *buf, size_t cap)
{
    if (!c || !buf)
        return PL_ERR_INVALID;
    if (!c->link || !c->link->ops->peer_string)
        return PL_ERR_STATE;
    return c->link->ops->peer_string(c->link, buf, cap);
}
