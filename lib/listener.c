/* SPDX-License-Identifier: ISC */
/*
 * The listener: one for every kind of link. A link that reaches it - a
 * TCP connection its socket accepted (backends/posix/tcp.c), a file descriptor or
 * an application's byte channel handed to it - runs the responder's
 * handshake under the listener's pairing policy and deadline, among at
 * most PL_LISTENER_MAX_PENDING others; then either the application gets
 * a new session (pl_accept_cb), or an interrupted session continues on
 * the link, whatever kind of link it had before. Matching a resuming
 * handshake to its session is the node's (node.c), over the sessions of
 * every listener.
 */
#include "session_internal.h"

#include "discovery_backend.h"

#include <sodium.h>

/* ---------------------------------------------------------------- pending handshakes */

void pl__listener_unlink(pl_session *c)
{
    pl_listener *l = c->listener;
    if (!l)
        return;
    for (pl_session **pc = &l->pending; *pc; pc = &(*pc)->lnext) {
        if (*pc == c) {
            *pc = c->lnext;
            l->n_pending--;
            break;
        }
    }
    c->listener = NULL;
    c->lnext = NULL;
}

/* Where a handshake comes from: PL_OK with its address, or PL_ERR_STATE (a pipe). */
static int source_of(const pl_session *c, pl_address *a)
{
    const pl_link *lk = c->link;
    return lk && lk->ops->peer_addr ? lk->ops->peer_addr(lk, a) : PL_ERR_STATE;
}

static int same_source(const pl_address *a, const pl_address *b)
{
    return a->family == b->family && memcmp(a->addr, b->addr, sizeof a->addr) == 0; /* the unused bytes are 0 */
}

/* A new handshake c made l hold too many: make room. From c's source
 * address past PL_LISTENER_MAX_PER_SOURCE, that source's oldest goes; past
 * PL_LISTENER_MAX_PENDING, the oldest that has not sent its Hello yet, or
 * else the oldest of all. So a flood of connections from one host, or of
 * silent ones, pushes out its own, not a peer that is well into its
 * handshake (issue: "handshake slots evicted by a flood"). */
static void make_room(pl_listener *l, pl_session *c)
{
    pl_address src;
    if (source_of(c, &src) == PL_OK) {
        size_t n = 0;
        pl_session *oldest = NULL;
        for (pl_session *o = l->pending; o; o = o->lnext) {
            pl_address a;
            if (source_of(o, &a) == PL_OK && same_source(&a, &src)) {
                n++;
                oldest = o;
            }
        }
        if (n > PL_LISTENER_MAX_PER_SOURCE) {
            pl__session_fail(oldest, PL_ERR_TIMEOUT);
            return;
        }
    }
    if (l->n_pending <= PL_LISTENER_MAX_PENDING)
        return;
    pl_session *oldest = NULL, *oldest_silent = NULL;
    for (pl_session *o = l->pending; o; o = o->lnext) {
        oldest = o;
        if (pl__silent(o))
            oldest_silent = o;
    }
    pl__session_fail(oldest_silent ? oldest_silent : oldest, PL_ERR_TIMEOUT);
}

int pl__listener_heard(pl_session *c)
{
    /* A pairing attempt admitted in the same read keeps its shorter deadline. */
    int rc = pl__session_set_deadline(c, c->pairing ? PL_PAIRING_ATTEMPT_MS : PL_LISTENER_HANDSHAKE_MS);
    if (rc != PL_OK)
        pl__session_fail(c, rc);
    return rc == PL_OK;
}

int pl__listener_take(pl_listener *l, pl_link *lk)
{
    pl_session *c = pl__session_alloc(l->node, l->max_message, 0, l->instance);
    if (!c)
        return PL_ERR_NOMEM;
    c->listener = l;
    pl_policy_init(&c->ss, 0, l->resume_ms, l->keepalive_ms);
    int rc = pl__session_set_deadline(c, PL_LISTENER_HELLO_MS);
    if (rc == PL_OK) {
        c->link = lk;
        lk->c = c;
        rc = pl__session_start(c);
    }
    if (rc != PL_OK) {
        c->link = NULL; /* the caller's again */
        lk->c = NULL;
        c->listener = NULL;
        pl__session_destroy(c);
        return rc;
    }
    c->lnext = l->pending;
    l->pending = c;
    l->n_pending++;
    pl__session_update_interest(c);
    make_room(l, c);
    return PL_OK;
}

/* ---------------------------------------------------------------- pairing news */

/* Deliver pairing news to the application from the loop (never from
 * inside a handshake): failures and a new code, then the closing. */
static void news_due(pl_timeout *t, void *userdata)
{
    pl_listener *l = userdata;
    (void)t;
    l->busy++;
    while (!l->zombie && (l->n_news || l->pairing.code_changed || l->news_closed)) {
        if (l->pairing.code_changed) {
            l->pairing.code_changed = 0;
            if (l->pairing_cb && l->pairing_on)
                l->pairing_cb(l, PL_PAIRING_NEW_CODE, PL_OK, l->pairing.code, l->pairing_ud);
        } else if (l->n_news) {
            int status = l->news_failures[0];
            memmove(l->news_failures, l->news_failures + 1, --l->n_news * sizeof l->news_failures[0]);
            if (l->pairing_cb)
                l->pairing_cb(l, PL_PAIRING_FAILED, status, NULL, l->pairing_ud);
        } else {
            l->news_closed = 0;
            if (l->pairing_cb)
                l->pairing_cb(l, PL_PAIRING_CLOSED, l->closed_status, NULL, l->pairing_ud);
        }
    }
    if (--l->busy == 0 && l->zombie)
        pl__listener_destroy(l);
}

void pl__listener_news(pl_listener *l)
{
    l->node->poll->timeout_update(l->news, 0);
}

/* ---------------------------------------------------------------- the pairing window */

/* Pairing closes by itself (status: why); the application hears of it. */
static void close_pairing(pl_listener *l, int status)
{
    l->pairing_on = 0; /* an attempt in progress finishes under the policy it began with */
    l->node->poll->timeout_update(l->window_timer, -1);
    l->pairing.code_changed = 0; /* a code that no longer opens anything is not news */
    l->news_closed = 1;
    l->closed_status = status;
    pl__listener_news(l);
}

static void window_due(pl_timeout *t, void *userdata)
{
    pl_listener *l = userdata;
    (void)t;
    if (!l->pairing_on)
        return;
    int64_t now = pl__now_ms();
    if (pl_pairing_window_over(&l->window, now))
        close_pairing(l, PL_ERR_TIMEOUT);
    else /* early: wait for the rest */
        l->node->poll->timeout_update(l->window_timer, (int)(l->window.closes_at - now));
}

static void window_start(pl_listener *l)
{
    pl_pairing_window_open(&l->window, pl__now_ms(), l->window_s, (l->window_flags & PL_PAIRING_KEEP_OPEN) != 0);
    l->node->poll->timeout_update(l->window_timer, l->window_s ? (int)(l->window_s * 1000) : -1);
}

int pl__listener_pair_begin(pl_session *c, const char **code)
{
    pl_listener *l = c->listener;
    /* The window, checked here too: a busy loop may run its timer late. */
    if (l->pairing_on && pl_pairing_window_over(&l->window, pl__now_ms()))
        close_pairing(l, PL_ERR_TIMEOUT);
    if (!l->pairing_on)
        return PL_ERR_NOT_PAIRED;
    pl_address src;
    int has_src = source_of(c, &src) == PL_OK;
    if (has_src && pl_pairing_source_paused(&l->sources, src.family, src.addr, pl__now_ms()))
        return PL_ERR_BUSY;
    /* From here the rest of the handshake is one round trip: a silent
     * initiator holds the scope's one slot for no longer than this. */
    int rc = pl__session_set_deadline(c, PL_PAIRING_ATTEMPT_MS);
    if (rc != PL_OK)
        return rc;
    rc = pl__pairing_begin(&l->pairing, code);
    if (rc == PL_OK) {
        l->attempt_has_src = has_src;
        if (has_src)
            l->attempt_src = src;
    } else if (l->pairing.spent) {
        close_pairing(l, PL_ERR_LOCKED);
    }
    return rc;
}

void pl__listener_pair_end(pl_session *c, int result)
{
    pl_listener *l = c->listener;
    /* Did the initiator send its key confirmation (its sealed Identity,
     * whether it opened or not)? If not, the attempt died silently: it
     * still counts in the scope, but does not wear the code out, and its
     * source waits before it may try again. */
    int answered = result == PL_OK || result == PL_ERR_WRONG_CODE || c->eng.rx.counter > 0;
    pl__pairing_end(&l->pairing, result, answered);
    if (!answered && l->attempt_has_src)
        pl_pairing_source_died(&l->sources, l->attempt_src.family, l->attempt_src.addr, pl__now_ms());
    l->attempt_has_src = 0;
    if (result != PL_OK && l->n_news < PL_MAX_PAIRING_NEWS)
        l->news_failures[l->n_news++] = result;
    int status;
    if (l->pairing_on && pl_pairing_window_closes(&l->window, result, l->pairing.spent, &status))
        close_pairing(l, status);
    if (result != PL_OK || l->pairing.code_changed)
        pl__listener_news(l);
}

/* ---------------------------------------------------------------- the listener API */

int pl__listener_alloc(pl_node *node, pl_accept_cb cb, void *userdata, pl_listener **out)
{
    if (!node || !cb || !out)
        return PL_ERR_INVALID;
    pl_listener *l = calloc(1, sizeof *l);
    if (!l)
        return PL_ERR_NOMEM;
    l->node = node;
    l->fd = -1;
    l->cb = cb;
    l->userdata = userdata;
    l->max_message = PL_DEFAULT_MAX_MESSAGE;
    l->resume_ms = PL_POLICY_DEFAULT_RESUME_MS;
    l->keepalive_ms = PL_POLICY_DEFAULT_KEEPALIVE_MS;
    l->window_s = PL_PAIRING_WINDOW_S;
    l->news = node->poll->timeout_new(node->poll, -1, news_due, l);
    l->window_timer = node->poll->timeout_new(node->poll, -1, window_due, l);
    if (!l->news || !l->window_timer) {
        pl__free_timeout(node->poll, &l->news);
        pl__free_timeout(node->poll, &l->window_timer);
        free(l);
        return PL_ERR_NOMEM;
    }
    pl__node_add_listener(node, l);
    *out = l;
    return PL_OK;
}

int pl_listener_new_detached(pl_node *node, pl_accept_cb cb, void *userdata, pl_listener **out)
{
    return pl__listener_alloc(node, cb, userdata, out);
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
    if (!l || !name || !pl_name_valid(name))
        return PL_ERR_INVALID;
    memcpy(l->instance, name, strlen(name) + 1);
    return PL_OK;
}

int pl_listener_set_pairing(pl_listener *l, const char *code, unsigned digits, unsigned max_failures)
{
    if (!l || pl__pairing_busy(&l->pairing))
        return l ? PL_ERR_STATE : PL_ERR_INVALID;
    pl_pairing p;
    int rc = pl__pairing_init(&p, l->node->ks, code, digits, max_failures);
    if (rc == PL_OK)
        rc = pl__pairing_open(&p);
    if (rc != PL_OK) {
        sodium_memzero(&p, sizeof p);
        return rc;
    }
    l->pairing = p;
    l->pairing_on = 1;
    l->news_closed = 0; /* an older closing is no longer news */
    sodium_memzero(&p, sizeof p);
    window_start(l);
    return PL_OK;
}

int pl_listener_set_pairing_window(pl_listener *l, unsigned seconds, unsigned flags)
{
    if (!l || seconds > PL_PAIRING_WINDOW_MAX_S || (flags & ~(unsigned)PL_PAIRING_KEEP_OPEN))
        return PL_ERR_INVALID;
    l->window_s = seconds;
    l->window_flags = flags;
    if (l->pairing_on)
        window_start(l);
    return PL_OK;
}

void pl_listener_stop_pairing(pl_listener *l)
{
    if (!l)
        return;
    l->pairing_on = 0; /* an attempt in progress finishes under the policy it began with */
    l->news_closed = 0; /* a closing not yet reported is no longer news: the application closed it */
    l->node->poll->timeout_update(l->window_timer, -1);
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

/* The application's TXT record plus this device's discovery hint, under a
 * salt of this publication's own: a peer that paired with this device
 * finds it again under another name, and no one else can link two
 * publications by it (docs/PROTOCOL.md section 2.1). */
static int txt_with_hint(pl_listener *l, const pl_txt *txt, pl_txt **out)
{
    uint8_t id[PL_ID_SIZE], salt[PL_HINT_SALT];
    char hint[PL_HINT_LEN + 1];
    int rc = pl_keystore_identity(l->node->ks, id);
    if (rc != PL_OK)
        return rc;
    randombytes_buf(salt, sizeof salt);
    pl__hint_make(id, salt, hint);
    rc = txt ? pl_txt_dup(txt, out) : pl_txt_new(out);
    if (rc == PL_OK && (rc = pl_txt_set_str(*out, PL_HINT_KEY, hint)) != PL_OK) {
        pl_txt_free(*out);
        *out = NULL;
    }
    return rc;
}

int pl_listener_publish(pl_listener *l, pl_discovery *d, const char *name, const char *type, const pl_txt *txt,
                        pl_publish_cb cb, void *userdata)
{
    if (!l || !d || !name || !pl_name_valid(name))
        return PL_ERR_INVALID;
    if (l->pub)
        return PL_ERR_STATE;
    /* A backend whose publications accept by themselves (apple: an
     * nw_listener) listens on a port of its choosing and hands over what
     * it accepts; the listener's own socket, an unadvertised second way
     * in, closes. */
    int accepts = d->ops->accept_into != NULL;
    pl_txt *published = NULL;
    int rc = txt_with_hint(l, txt, &published);
    if (rc != PL_OK)
        return rc;
    pl_publication *p = NULL;
    rc = pl_publish(d, name, type, accepts ? 0 : l->port, published, on_publish, l, &p);
    pl_txt_free(published);
    if (rc == PL_OK && accepts && (rc = d->ops->accept_into(p, l)) != PL_OK)
        pl_publication_free(p);
    if (rc != PL_OK)
        return rc;
    if (accepts) {
        pl__tcp_unlisten(l);
        l->port = 0;
    }
    l->pub = p;
    l->pub_cb = cb;
    l->pub_ud = userdata;
    return pl_listener_set_instance(l, name);
}

const pl_poll *pl__listener_poll(const pl_listener *l)
{
    return l->node->poll;
}

pl_publication *pl_listener_publication(const pl_listener *l)
{
    return l ? l->pub : NULL;
}

void pl__listener_destroy(pl_listener *l)
{
    pl__node_remove_listener(l->node, l);
    pl__pairing_clear(&l->pairing);
    free(l);
}

void pl_listener_free(pl_listener *l)
{
    if (!l || l->zombie)
        return;
    while (l->pending) {
        pl_session *c = l->pending;
        pl__listener_unlink(c);
        c->listener = l; /* so that an unfinished pairing is charged to this policy */
        pl__session_drop_link(c);
        pl_engine_clear(&c->eng);
        c->listener = NULL;
        pl__session_destroy(c);
    }
    pl__tcp_unlisten(l);
    pl__free_timeout(l->node->poll, &l->news);
    pl__free_timeout(l->node->poll, &l->window_timer);
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
