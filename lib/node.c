/* SPDX-License-Identifier: ISC */
/*
 * The node: this device as one peer - its event loop, its identity and
 * paired peers (the keystore), and every session and listener it has.
 * What needs to see all of them lives here: matching a resuming
 * handshake to the interrupted session it continues, whatever listener
 * and kind of link it came through, and the simultaneous-dial rule
 * (docs/PROTOCOL.md sections 8.6 and 8.8).
 */
#include "session_internal.h"

#include <stdio.h>

int pl_node_new(const pl_poll *poll, pl_keystore *ks, pl_node **out)
{
    if (!pl__poll_ok(poll) || !ks || !out)
        return PL_ERR_INVALID;
    pl_node *n = calloc(1, sizeof *n);
    if (!n)
        return PL_ERR_NOMEM;
    n->poll = poll;
    n->ks = ks;
    n->aead = pl_aead_cache_new(); /* NULL: each session's own, or libsodium */
    *out = n;
    return PL_OK;
}

pl_keystore *pl_node_keystore(const pl_node *n)
{
    return n ? n->ks : NULL;
}

const pl_poll *pl_node_poll(const pl_node *n)
{
    return n ? n->poll : NULL;
}

int pl_node_set_name(pl_node *n, const char *name)
{
    if (!n || !pl_name_valid(name))
        return PL_ERR_INVALID;
    snprintf(n->name, sizeof n->name, "%s", name ? name : "");
    return PL_OK;
}

void pl_node_free(pl_node *n)
{
    if (!n)
        return;
    /* Listeners first: they free their own handshakes, which are sessions of the node too. */
    while (n->listeners) {
        pl_listener *l = n->listeners;
        pl_listener_free(l);
        if (n->listeners == l) /* still busy: the caller broke the rule (not from a callback) */
            pl__listener_destroy(l);
    }
    while (n->sessions) {
        pl_session *c = n->sessions;
        pl_session_free(c);
        if (n->sessions == c) /* still busy: the caller broke the rule (not from a callback) */
            pl__session_destroy(c);
    }
    pl_aead_cache_free(n->aead);
    free(n);
}

void pl__node_add(pl_node *n, pl_session *c)
{
    c->knext = n->sessions;
    n->sessions = c;
}

void pl__node_remove(pl_node *n, pl_session *c)
{
    for (pl_session **pc = &n->sessions; *pc; pc = &(*pc)->knext) {
        if (*pc == c) {
            *pc = c->knext;
            break;
        }
    }
    /* A handshake that was to continue c forgets it. */
    for (pl_session *o = n->sessions; o; o = o->knext)
        if (o->resume_of == c)
            o->resume_of = NULL;
}

void pl__node_add_listener(pl_node *n, pl_listener *l)
{
    l->next = n->listeners;
    n->listeners = l;
}

void pl__node_remove_listener(pl_node *n, pl_listener *l)
{
    for (pl_listener **pl = &n->listeners; *pl; pl = &(*pl)->next) {
        if (*pl == l) {
            *pl = l->next;
            break;
        }
    }
}

/* ---------------------------------------------------------------- resuming, simultaneous dials */

/* A listener's handshake: the peer asks to continue session id.
 * Only a session accepted before, by any listener of the node and over
 * any kind of link, from the same peer, qualifies. */
const pl_stream *pl__find_session(void *ctx, const uint8_t id[PL_SESSION_ID_SIZE], const uint8_t peer_id[32])
{
    pl_session *c = ctx;
    for (pl_session *s = c->node->sessions; s; s = s->knext) {
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

void pl__resume_into(pl_session *c, const uint8_t *rest, size_t n)
{
    pl_session *s = c->resume_of;
    pl__listener_unlink(c);
    /* s takes c's engine (which takes s's stream in turn) and c's link;
     * a link s still had, whose loss it had not noticed, goes. */
    pl__session_drop_link(s);
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
    pl__session_destroy(c);
    if (rc != PL_OK) {
        lk->ops->close(lk);
        pl__session_fail(s, rc);
        return;
    }
    lk->c = s;
    s->link = lk;
    if (!pl__session_resumed(s))
        return;
    if (n)
        pl__session_input(s, rest, n);
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
    pl_session *c = ctx;
    uint8_t me[32];
    crypto_sign_ed25519_sk_to_pk(me, c->eng.identity_sk);
    int ours_wins = pl_policy_our_dial_wins(me, peer_id);
    for (pl_session *o = c->node->sessions; o; o = o->knext) {
        if (!o->initiator || o->closed || o->zombie || o->dup_lost || !o->has_target ||
            memcmp(o->target_id, peer_id, 32) != 0)
            continue;
        if (ours_wins)
            return PL_ERR_DUPLICATE;
        if (o->eng.st.established)
            continue; /* open before this dial began: not a simultaneous one */
        o->dup_lost = 1;
        if (!o->dup)
            o->dup = o->node->poll->timeout_new(o->node->poll, 0, dup_due, o);
        if (!o->dup) {
            o->dup_lost = 0;
            return PL_ERR_NOMEM;
        }
    }
    return PL_OK;
}

void pl__dup_give_up(pl_session *c)
{
    /* It may have opened meanwhile: then the peer must not wait for it. */
    if (pl_engine_open(&c->eng) && pl_engine_abort(&c->eng) == PL_OK && c->link)
        c->link->ops->flush_once(c->link);
    pl__session_close(c, PL_ERR_DUPLICATE);
}
