/*
 * The listener: one for every kind of link. A link that reaches it - a
 * TCP connection its socket accepted (backends/posix/tcp.c), a file descriptor or
 * an application's byte channel handed to it - runs the responder's
 * handshake under the listener's pairing policy and deadline, among at
 * most PL_LISTENER_MAX_PENDING others; then either the application gets
 * a new session (pl_accept_cb), or an interrupted session continues on
 * the link, whatever kind of link it had before.
 *
 * Also here, until a node object owns the live sessions: matching a
 * resuming handshake to its session, and the simultaneous-dial rule
 * (docs/PROTOCOL.md sections 8.6 and 8.8), over the keystore's list of
 * sessions.
 */
#include "conn_internal.h"

/* ---------------------------------------------------------------- pending handshakes */

void pl__listener_unlink(pl_conn *c)
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

int pl__listener_take(pl_listener *l, pl_link *lk)
{
    pl_conn *c = pl__conn_alloc(l->poll, l->ks, l->max_message, 0, l->instance);
    if (!c)
        return PL_ERR_NOMEM;
    c->listener = l;
    pl_policy_init(&c->ss, 0, l->resume_ms, l->keepalive_ms);
    int rc = pl__conn_set_deadline(c, PL_LISTENER_HANDSHAKE_MS);
    if (rc == PL_OK) {
        c->link = lk;
        lk->c = c;
        rc = pl__conn_start(c);
    }
    if (rc != PL_OK) {
        c->link = NULL; /* the caller's again */
        lk->c = NULL;
        c->listener = NULL;
        pl__conn_destroy(c);
        return rc;
    }
    c->lnext = l->pending;
    l->pending = c;
    l->n_pending++;
    pl__conn_update_interest(c);
    if (l->n_pending > PL_LISTENER_MAX_PENDING) {
        pl_conn *oldest = l->pending;
        while (oldest->lnext)
            oldest = oldest->lnext;
        pl__conn_fail(oldest, PL_ERR_TIMEOUT);
    }
    return PL_OK;
}

/* ---------------------------------------------------------------- pairing news */

/* Deliver pairing news to the application from the loop (never from inside a handshake). */
static void news_due(pl_timeout *t, void *userdata)
{
    pl_listener *l = userdata;
    (void)t;
    l->busy++;
    while (!l->zombie && (l->n_news || l->pairing.code_changed)) {
        if (l->pairing.code_changed) {
            l->pairing.code_changed = 0;
            if (l->pairing_cb)
                l->pairing_cb(l, PL_PAIRING_NEW_CODE, PL_OK, l->pairing.code, l->pairing_ud);
            continue;
        }
        int status = l->news_failures[0];
        memmove(l->news_failures, l->news_failures + 1, --l->n_news * sizeof l->news_failures[0]);
        if (l->pairing_cb)
            l->pairing_cb(l, PL_PAIRING_FAILED, status, NULL, l->pairing_ud);
    }
    if (--l->busy == 0 && l->zombie)
        pl__listener_destroy(l);
}

void pl__listener_news(pl_listener *l)
{
    l->poll->timeout_update(l->news, 0);
}

/* ---------------------------------------------------------------- resuming, simultaneous dials */

/* A listener's handshake conn: the peer asks to continue session id.
 * Only a session accepted before, by any listener on this keystore and
 * over any kind of link, from the same peer, qualifies. */
const pl_stream *pl__find_session(void *ctx, const uint8_t id[PL_SESSION_ID_SIZE], const uint8_t peer_id[32])
{
    pl_conn *c = ctx;
    for (pl_conn *s = *pl__sessions_of(c->ks); s; s = s->knext) {
        if (s == c || s->initiator || s->closed || s->zombie || s->listener || !s->eng.st.established ||
            s->ss.resume_ms <= 0)
            continue;
        if (sodium_memcmp(s->eng.st.id, id, PL_SESSION_ID_SIZE) == 0 &&
            sodium_memcmp(s->eng.peer_id, peer_id, 32) == 0) {
            c->resume_of = s;
            return &s->eng.st;
        }
    }
    return NULL;
}

void pl__resume_into(pl_conn *c, const uint8_t *rest, size_t n)
{
    pl_conn *s = c->resume_of;
    pl__listener_unlink(c);
    /* s takes c's engine (which takes s's stream in turn) and c's link;
     * a link s still had, whose loss it had not noticed, goes. */
    pl__conn_drop_link(s);
    pl_engine tmp = s->eng;
    s->eng = c->eng;
    c->eng = tmp;
    s->eng.hooks_ctx = s;
    c->eng.hooks_ctx = c;
    sodium_memzero(&tmp, sizeof tmp); /* a copy of keys: both engines live on elsewhere */
    int rc = pl_engine_adopt(&s->eng, &c->eng.st);
    pl_link *lk = c->link;
    c->link = NULL;
    lk->c = NULL;
    pl__conn_destroy(c);
    if (rc != PL_OK) {
        lk->ops->close(lk);
        pl__conn_fail(s, rc);
        return;
    }
    lk->c = s;
    s->link = lk;
    if (!pl__conn_resumed(s))
        return;
    if (n)
        pl__conn_input(s, rest, n);
}

static void dup_due(pl_timeout *t, void *userdata)
{
    (void)t;
    pl__dup_give_up(userdata);
}

/*
 * Simultaneous dials: a new session from peer_id is about to open here
 * while we dial the same peer. Both sides decide alike (core/policy.h):
 * the session dialled by the peer with the smaller id survives. Ours
 * wins: refuse this one while our dial lives (in its handshake, open or
 * interrupted: the peer's handshake may end after ours). Theirs wins: our
 * dial, if still in its handshake, ends (from the loop) with
 * PL_ERR_DUPLICATE.
 */
int pl__admit(void *ctx, const uint8_t peer_id[32])
{
    pl_conn *c = ctx;
    uint8_t me[32];
    crypto_sign_ed25519_sk_to_pk(me, c->eng.identity_sk);
    int ours_wins = pl_policy_our_dial_wins(me, peer_id);
    for (pl_conn *o = *pl__sessions_of(c->ks); o; o = o->knext) {
        if (!o->initiator || o->closed || o->zombie || o->dup_lost || !o->has_target ||
            memcmp(o->target_id, peer_id, 32) != 0)
            continue;
        if (ours_wins)
            return PL_ERR_DUPLICATE;
        if (o->eng.st.established)
            continue; /* open before this dial began: not a simultaneous one */
        o->dup_lost = 1;
        if (!o->dup)
            o->dup = o->poll->timeout_new(o->poll, 0, dup_due, o);
        if (!o->dup) {
            o->dup_lost = 0;
            return PL_ERR_NOMEM;
        }
    }
    return PL_OK;
}

void pl__dup_give_up(pl_conn *c)
{
    /* It may have opened meanwhile: then the peer must not wait for it. */
    if (pl_engine_open(&c->eng) && pl_engine_abort(&c->eng) == PL_OK && c->link)
        c->link->ops->flush_once(c->link);
    pl__conn_close(c, PL_ERR_DUPLICATE);
}

/* ---------------------------------------------------------------- the listener API */

int pl__listener_alloc(const pl_poll *poll, pl_keystore *ks, pl_accept_cb cb, void *userdata, pl_listener **out)
{
    if (!poll || !ks || !cb || !out)
        return PL_ERR_INVALID;
    pl_listener *l = calloc(1, sizeof *l);
    if (!l)
        return PL_ERR_NOMEM;
    l->poll = poll;
    l->ks = ks;
    l->fd = -1;
    l->cb = cb;
    l->userdata = userdata;
    l->max_message = PL_DEFAULT_MAX_MESSAGE;
    l->resume_ms = PL_POLICY_DEFAULT_RESUME_MS;
    l->keepalive_ms = PL_POLICY_DEFAULT_KEEPALIVE_MS;
    l->news = poll->timeout_new(poll, -1, news_due, l);
    if (!l->news) {
        free(l);
        return PL_ERR_NOMEM;
    }
    *out = l;
    return PL_OK;
}

int pl_listener_new_detached(const pl_poll *poll, pl_keystore *ks, pl_accept_cb cb, void *userdata,
                             pl_listener **out)
{
    return pl__listener_alloc(poll, ks, cb, userdata, out);
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

int pl_listener_set_resume(pl_listener *l, int timeout_ms, int keepalive_ms)
{
    if (!l || timeout_ms < 0 || keepalive_ms < 0)
        return PL_ERR_INVALID;
    l->resume_ms = timeout_ms;
    l->keepalive_ms = keepalive_ms;
    return PL_OK;
}

int pl_listener_set_instance(pl_listener *l, const char *name)
{
    if (!l || !name || strlen(name) > PL_NAME_MAX)
        return PL_ERR_INVALID;
    memcpy(l->instance, name, strlen(name) + 1);
    return PL_OK;
}

int pl_listener_set_pairing(pl_listener *l, const char *code, unsigned digits, unsigned max_failures)
{
    if (!l || pl__pairing_busy(&l->pairing))
        return l ? PL_ERR_STATE : PL_ERR_INVALID;
    pl_pairing p;
    int rc = pl__pairing_init(&p, l->ks, code, digits, max_failures);
    if (rc != PL_OK)
        return rc;
    l->pairing = p;
    l->pairing_on = 1;
    sodium_memzero(&p, sizeof p);
    return PL_OK;
}

void pl_listener_stop_pairing(pl_listener *l)
{
    if (l)
        l->pairing_on = 0; /* an attempt in progress finishes under the policy it began with */
}

const char *pl_listener_code(const pl_listener *l)
{
    return l && l->pairing_on ? l->pairing.code : NULL;
}

void pl_listener_set_pairing_callback(pl_listener *l, pl_pairing_cb cb, void *userdata)
{
    if (!l)
        return;
    l->pairing_cb = cb;
    l->pairing_ud = userdata;
}

int pl_code_generate(char *buf, size_t cap, unsigned digits)
{
    if (!buf || digits < 4 || digits > 12 || cap < digits + 1)
        return PL_ERR_INVALID;
    pl__code_generate(buf, digits);
    return PL_OK;
}

size_t pl_listener_pending(const pl_listener *l)
{
    return l ? l->n_pending : 0;
}

/* The publication's name is the one handshakes bind to: follow it, then
 * tell the application. */
static void on_publish(pl_publication *p, pl_publish_event ev, int status, const char *name, void *userdata)
{
    pl_listener *l = userdata;
    if ((ev == PL_PUBLISH_ESTABLISHED || ev == PL_PUBLISH_RENAMED) && name)
        (void)pl_listener_set_instance(l, name); /* a name the backend gave is at most 63 bytes */
    if (l->pub_cb)
        l->pub_cb(p, ev, status, name, l->pub_ud); /* may free l: nothing after this */
}

int pl_listener_publish(pl_listener *l, pl_discovery *d, const char *name, const char *type, const pl_txt *txt,
                        pl_publish_cb cb, void *userdata)
{
    if (!l || !d || !name || strlen(name) > PL_NAME_MAX)
        return PL_ERR_INVALID;
    if (l->pub)
        return PL_ERR_STATE;
    pl_publication *p = NULL;
    int rc = pl_publish(d, name, type, l->port, txt, on_publish, l, &p);
    if (rc != PL_OK)
        return rc;
    l->pub = p;
    l->pub_cb = cb;
    l->pub_ud = userdata;
    return pl_listener_set_instance(l, name);
}

pl_publication *pl_listener_publication(const pl_listener *l)
{
    return l ? l->pub : NULL;
}

void pl__listener_destroy(pl_listener *l)
{
    pl__pairing_clear(&l->pairing);
    free(l);
}

void pl_listener_free(pl_listener *l)
{
    if (!l || l->zombie)
        return;
    while (l->pending) {
        pl_conn *c = l->pending;
        pl__listener_unlink(c);
        c->listener = l; /* so that an unfinished pairing is charged to this policy */
        pl__conn_drop_link(c);
        pl_engine_clear(&c->eng);
        c->listener = NULL;
        pl__conn_destroy(c);
    }
    pl__tcp_unlisten(l);
    pl__free_timeout(l->poll, &l->news);
    if (l->pub)
        pl_publication_free(l->pub); /* withdrawn first: no one is sent to a port that is closed */
    l->pub = NULL;
    l->pub_cb = NULL;
    l->pairing_cb = NULL;
    if (l->busy) {
        l->zombie = 1;
        return;
    }
    pl__listener_destroy(l);
}
