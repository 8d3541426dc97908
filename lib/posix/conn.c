/*
 * Sessions on POSIX: the shell around the sans-I/O engine
 * (core/engine.c: handshake, records, the stream) and the session's
 * clocked policy (core/session.c: Acks, keepalive, the interruption
 * window, dialling back-off, the simultaneous-dial rule). It connects
 * over TCP (Happy Eyeballs over every address of a service), accepts,
 * or runs over an application's file descriptor or byte channel; it
 * feeds the engine what arrives, hands on what the engine queues, runs
 * one timer at the session's next deadline, and wires the engine's
 * hooks to the keystore and the pairing policy.
 *
 * Protocol logic that still lives here, waiting for a node object
 * (issue 11): matching a resumed TCP link to its interrupted session
 * (hook_find_session, resume_into) and the bookkeeping of simultaneous
 * dials (hook_admit), both over the keystore's list of live sessions.
 * Byte-channel sessions are not resumed yet (can_resume()).
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/engine.h"
#include "core/session.h"
#include "keystore_internal.h"
#include "pairing.h"

#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0
#endif

/* RFC 8305 section 5 recommends 250 ms between connection attempts. */
#define HE_STAGGER_MS 250
#define DEFAULT_TIMEOUT_MS 10000
/* Connections in handshake held by a listener, and how long each may take. */
#define LISTENER_MAX_PENDING 64
#define LISTENER_HANDSHAKE_MS 10000
/* Back-off when accept() fails for lack of descriptors or memory. */
#define ACCEPT_RETRY_MS 100
#define READ_CHUNK 65536
/* Channel input waiting for the loop: more is refused (PL_ERR_AGAIN),
 * except that one chunk of any size is taken when none waits. */
#define CHANNEL_INPUT_MAX READ_CHUNK
/* Pairing failures a listener keeps for its callback until the loop delivers them. */
#define MAX_PAIRING_NEWS 8
/* The send buffer (the timing of sessions is core/session.h's). */
#define DEFAULT_SEND_LIMIT (4u * 1024u * 1024u)

typedef struct attempt {
    int fd;
    pl_watch *w;
    pl_conn *c;
} attempt;

struct pl_conn {
    const pl_poll *poll;
    pl_engine eng;
    pl_conn_cb cb;
    void *userdata;
    pl_keystore *ks;
    int initiator;
    char instance[PL_NAME_MAX + 1];
    int have_instance;
    char code[PL_CODE_MAX + 1]; /* set by pl_conn_set_code(), wiped once handed to the engine */
    pl_pairing *pairing;        /* responder: the policy of the attempt in progress */
    pl_pairing *own_pairing;    /* responder byte-channel session with a code */

    /* A socket ... */
    int fd; /* -1 before connected */
    pl_watch *w;
    struct sockaddr_storage peer;
    socklen_t peer_len;
    /* ... or an application channel. */
    int byte_session; /* over an application's fd or channel: never resumed */
    int is_channel;
    pl_channel_ops ch_ops;
    void *ch_ctx;
    pl_buf ch_in;
    int ch_eof;
    int ch_blocked; /* ops.write took less than offered: wait for pl_conn_channel_writable() */
    int ch_refused; /* pl_conn_channel_input() said PL_ERR_AGAIN: call ops.input_ready once there is room */
    pl_timeout *kick; /* byte sessions: start, and channel I/O, from the loop */

    /* Connecting: addresses to try, in order. */
    struct sockaddr_storage *addrs;
    size_t n_addrs, next_addr;
    attempt *attempts; /* one slot per address */
    size_t n_pending;
    pl_timeout *timer;    /* Happy Eyeballs: the stagger between attempts */
    pl_timeout *deadline; /* connecting plus handshake */

    /* Accepted and still in handshake: owned by this listener. */
    pl_listener *listener;
    pl_conn *lnext;

    /* The session across connections: its clocked policy (core/session.h)
     * and the one timer that serves it. */
    pl_session ss;
    pl_timeout *tick;
    size_t send_limit;    /* bound of unacknowledged bytes (pl_conn_send: PL_ERR_AGAIN) */
    size_t receive_limit; /* paused: bound of held messages before reading stops */
    pl_timeout *dup;      /* a simultaneous dial of the peer's won: give ours up from the loop */
    uint64_t acked;       /* the count PL_CONN_ACKED last reported */
    pl_timeout *drain;    /* unpaused: hands out what the engine held, from the loop */
    pl_discovery *disc;   /* initiator: browse for the service again while interrupted */
    pl_browser *browser;
    char svc_type[PL_NAME_MAX + 1];
    int has_target;       /* initiator: the stored id of the peer it dials */
    uint8_t target_id[PL_ID_SIZE];
    int dup_lost;         /* a simultaneous dial made this connection the one to give up */
    pl_conn *resume_of;   /* a listener's handshake conn: the session it continues */
    pl_conn *knext;       /* the keystore's session list */

    int closed; /* PL_CONN_CLOSED was reported, or the conn is being torn down */
    int busy;   /* inside the application's callback */
    int zombie; /* freed by the application during a callback */
};

struct pl_listener {
    const pl_poll *poll;
    pl_keystore *ks;
    int fd;
    pl_watch *w;
    pl_timeout *retry; /* accept back-off */
    uint16_t port;
    size_t max_message;
    char instance[PL_NAME_MAX + 1];
    pl_accept_cb cb;
    void *userdata;
    pl_pairing pairing;
    int pairing_on;
    pl_pairing_cb pairing_cb;
    void *pairing_ud;
    pl_timeout *news; /* delivers pairing news from the loop */
    int news_failures[MAX_PAIRING_NEWS];
    size_t n_news;
    int resume_ms, keepalive_ms; /* for accepted sessions */
    pl_conn *pending; /* newest first */
    size_t n_pending;
    int busy, zombie;
};

static void conn_destroy(pl_conn *c);
static void listener_destroy(pl_listener *l);
static int conn_start(pl_conn *c);
static int conn_input(pl_conn *c, const uint8_t *buf, size_t n);
static int conn_attach_fd(pl_conn *c, int fd);
static void resume_into(pl_conn *c, pl_conn *s, const uint8_t *rest, size_t n);
static int report_acked(pl_conn *c);
static int ack_soon(pl_conn *c);
static void he_next(pl_conn *c);
static void he_timer(pl_timeout *t, void *userdata);
static void deadline_expired(pl_timeout *t, void *userdata);
static int fill_addresses(pl_conn *c, const pl_service *svc);

/* ---------------------------------------------------------------- helpers */

static int set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return -1;
    return fcntl(fd, F_SETFD, FD_CLOEXEC);
}

static void attempt_close(attempt *a)
{
    if (a->w)
        a->c->poll->watch_free(a->w);
    if (a->fd >= 0)
        close(a->fd);
    a->w = NULL;
    a->fd = -1;
}

static void free_timeout(pl_conn *c, pl_timeout **t)
{
    if (*t)
        c->poll->timeout_free(*t);
    *t = NULL;
}

/* Stop the I/O of the current link (socket, attempts, its timers). */
static void link_down(pl_conn *c)
{
    for (size_t i = 0; c->attempts && i < c->n_addrs; i++)
        attempt_close(&c->attempts[i]);
    c->n_pending = 0;
    if (c->w)
        c->poll->watch_free(c->w);
    c->w = NULL;
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    free_timeout(c, &c->timer);
    free_timeout(c, &c->deadline);
}

/* Stop all I/O; the object stays allocated. */
static void conn_teardown(pl_conn *c)
{
    link_down(c);
    free_timeout(c, &c->kick);
    free_timeout(c, &c->tick);
    free_timeout(c, &c->dup);
    free_timeout(c, &c->drain);
    if (c->browser)
        pl_browser_free(c->browser);
    c->browser = NULL;
    if (c->is_channel && c->ch_ops.close) {
        void (*close_fn)(void *) = c->ch_ops.close;
        c->ch_ops.close = NULL;
        close_fn(c->ch_ctx);
    }
}

static void listener_unlink(pl_conn *c)
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

/* Call the application; returns 0 if c was freed during the call. */
static int emit(pl_conn *c, pl_conn_event ev, int status, const void *data, size_t len)
{
    if (!c->cb)
        return 1;
    c->busy++;
    c->cb(c, ev, status, data, len, c->userdata);
    if (--c->busy == 0 && c->zombie) {
        conn_destroy(c);
        return 0;
    }
    return !c->zombie;
}

/* Hand whatever the engine queued to the pipe once, without waiting:
 * used to get a handshake Error to the peer before closing. */
static void flush_once(pl_conn *c)
{
    pl_buf *out = &c->eng.out;
    if (!pl_buf_size(out))
        return;
    if (c->fd >= 0)
        (void)send(c->fd, pl_buf_head(out), pl_buf_size(out), MSG_NOSIGNAL | MSG_DONTWAIT);
    else if (c->is_channel && c->ch_ops.write)
        (void)c->ch_ops.write(c->ch_ctx, pl_buf_head(out), pl_buf_size(out));
}

/* End the session with status; a listener's handshake conn goes silently. */
static void conn_close(pl_conn *c, int status)
{
    if (c->closed)
        return;
    flush_once(c);
    conn_teardown(c);
    c->closed = 1;
    if (c->listener) {
        listener_unlink(c);
        conn_destroy(c);
        return;
    }
    emit(c, PL_CONN_CLOSED, status, NULL, 0);
}

static void rediscovered(pl_browser *b, pl_browse_event ev, int status, const pl_service *svc, void *userdata);

/* A link failure the session can outlive: not the peer's abort, not a
 * message the peer will never take, not running out of memory. (A
 * corrupted link shows as any error of the received bytes: PL_ERR_AUTH,
 * PL_ERR_MALFORMED, PL_ERR_TOO_LARGE for a header's length...) */
static int can_resume(const pl_conn *c, int status)
{
    if (c->ss.resume_ms <= 0 || c->listener || !c->eng.st.established || c->zombie || c->eng.unsendable)
        return 0;
    return pl_session_resumable_error(status) &&
           !c->byte_session; /* a new link comes from the dialler, to a listener */
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Set the session's timer to its next deadline. */
static void arm(pl_conn *c)
{
    if (!c->tick || c->closed)
        return;
    int64_t d = pl_session_deadline(&c->ss);
    if (d < 0) {
        c->poll->timeout_update(c->tick, -1);
        return;
    }
    int64_t wait = d - now_ms();
    c->poll->timeout_update(c->tick, wait < 0 ? 0 : wait > INT32_MAX ? INT32_MAX : (int)wait);
}

/* The link failed with status: interrupt the session if it can go on, else end it. */
static void conn_fail(pl_conn *c, int status)
{
    if (c->closed)
        return;
    if (pl_stream_complete(&c->eng.st)) {
        /* Everything both ways was delivered, our end-of-stream included:
         * only our last Ack may be lost, which the peer can outlive. */
        conn_close(c, PL_OK);
        return;
    }
    if (!can_resume(c, status)) {
        conn_close(c, status);
        return;
    }
    flush_once(c);
    link_down(c);
    /* The session waits; the dialling side dials again from the loop (at
     * once the first time, then backing off). */
    int first = pl_session_interrupt(&c->ss, now_ms());
    if (c->initiator && c->disc && !c->browser && c->svc_type[0])
        (void)pl_browse(c->disc, c->svc_type, NULL, rediscovered, c, &c->browser); /* else: the known addresses */
    arm(c);
    if (first)
        emit(c, PL_CONN_INTERRUPTED, status, NULL, 0);
}

/*
 * The engine holds more input than the application took - more than
 * the receive limit's worth, in more than one message - so reading stops
 * until the application takes some. A peer whose send limit is not
 * larger never gets there (it cannot have more unacknowledged), so a
 * paused side keeps reading its Acks and Pings; the bound caps what a
 * peer with a larger limit makes us hold: the receive limit, or one
 * message, plus one read.
 */
static int input_full(const pl_conn *c)
{
    const pl_stream *st = &c->eng.st;
    return st->held_n > 1 && st->held_cost > c->receive_limit;
}

/* Ask for the I/O the engine's state needs, and the time the session's policy needs. */
static void update_interest(pl_conn *c)
{
    arm(c);
    if (c->w) {
        unsigned ev = input_full(c) ? 0 : PL_WATCH_IN;
        if (pl_buf_size(&c->eng.out))
            ev |= PL_WATCH_OUT;
        c->poll->watch_update(c->w, ev);
    } else if (c->is_channel && c->kick && !c->closed) {
        int room = !input_full(c);
        if ((pl_buf_size(&c->eng.out) && !c->ch_blocked) || (room && (pl_buf_size(&c->ch_in) || c->ch_eof)) ||
            (room && c->ch_refused))
            c->poll->timeout_update(c->kick, 0);
    }
}

/* ---------------------------------------------------------------- engine hooks */

static void listener_news(pl_listener *l);

static int hook_pair_begin(void *ctx, const char **code)
{
    pl_conn *c = ctx;
    pl_pairing *p = c->listener ? (c->listener->pairing_on ? &c->listener->pairing : NULL) : c->own_pairing;
    if (!p)
        return PL_ERR_NOT_PAIRED;
    int rc = pl__pairing_begin(p, code);
    if (rc == PL_OK)
        c->pairing = p;
    return rc;
}

static void hook_pair_end(void *ctx, int result)
{
    pl_conn *c = ctx;
    pl_pairing *p = c->pairing;
    c->pairing = NULL;
    if (!p)
        return;
    pl__pairing_end(p, result);
    pl_listener *l = c->listener;
    if (l && p == &l->pairing && (result != PL_OK || p->code_changed)) {
        if (result != PL_OK && l->n_news < MAX_PAIRING_NEWS)
            l->news_failures[l->n_news++] = result;
        listener_news(l);
    }
}

static int hook_peer_known(void *ctx, const uint8_t id[32])
{
    pl_conn *c = ctx;
    pl_paired_peer p;
    return pl__keystore_find_peer(c->ks, id, &p) == PL_OK ? PL_OK : PL_ERR_NOT_PAIRED;
}

static int hook_peer_paired(void *ctx, const uint8_t id[32], const char *name)
{
    pl_conn *c = ctx;
    pl_paired_peer p = {0};
    memcpy(p.id, id, 32);
    snprintf(p.name, sizeof p.name, "%s", name);
    p.paired_at = (int64_t)time(NULL);
    if (c->initiator) {
        /* A responder re-paired under its name replaces what we knew of that name. */
        int rc = pl_keystore_forget(c->ks, name);
        if (rc != PL_OK && rc != PL_ERR_NOT_FOUND)
            return rc;
    }
    return pl__keystore_save_peer(c->ks, &p);
}

static pl_conn **sessions_of(pl_keystore *ks)
{
    return (pl_conn **)pl__keystore_sessions(ks);
}

/* A listener's handshake conn: the peer asks to continue session id.
 * Only a session accepted here before, from the same peer, qualifies. */
static const pl_stream *hook_find_session(void *ctx, const uint8_t id[PL_SESSION_ID_SIZE],
                                          const uint8_t peer_id[32])
{
    pl_conn *c = ctx;
    for (pl_conn *s = *sessions_of(c->ks); s; s = s->knext) {
        if (s == c || s->initiator || s->byte_session || s->closed || s->zombie || s->listener ||
            !s->eng.st.established || s->ss.resume_ms <= 0)
            continue;
        if (sodium_memcmp(s->eng.st.id, id, PL_SESSION_ID_SIZE) == 0 &&
            sodium_memcmp(s->eng.peer_id, peer_id, 32) == 0) {
            c->resume_of = s;
            return &s->eng.st;
        }
    }
    return NULL;
}

static void dup_due(pl_timeout *t, void *userdata);

/*
 * Simultaneous dials: a new session from peer_id is about to open here
 * while we dial the same peer. Both sides decide alike: the session
 * dialled by the peer with the smaller id survives. Ours wins: refuse
 * this one while our dial lives (in its handshake, open or interrupted:
 * the peer's handshake may end after ours). Theirs wins: our dial, if
 * still in its handshake, ends (from the loop) with PL_ERR_DUPLICATE.
 */
static int hook_admit(void *ctx, const uint8_t peer_id[32])
{
    pl_conn *c = ctx;
    uint8_t me[32];
    crypto_sign_ed25519_sk_to_pk(me, c->eng.identity_sk);
    int ours_wins = pl_session_our_dial_wins(me, peer_id);
    for (pl_conn *o = *sessions_of(c->ks); o; o = o->knext) {
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

/* Give up our dial: it may have opened meanwhile, then the peer must not wait for it. */
static void dup_give_up(pl_conn *c)
{
    if (pl_engine_open(&c->eng) && pl_engine_abort(&c->eng) == PL_OK)
        flush_once(c);
    conn_close(c, PL_ERR_DUPLICATE);
}

static void dup_due(pl_timeout *t, void *userdata)
{
    dup_give_up(userdata);
}

static const pl_engine_hooks conn_hooks = {
    .pair_begin = hook_pair_begin,
    .pair_end = hook_pair_end,
    .peer_known = hook_peer_known,
    .peer_paired = hook_peer_paired,
    .find_session = hook_find_session,
    .admit = hook_admit,
};

/* Configure the engine from the keystore (unless it carries a session
 * on to a new link) and queue our Hello. */
static int conn_start(pl_conn *c)
{
    if (!sodium_is_zero(c->eng.identity_sk, sizeof c->eng.identity_sk))
        return pl_engine_start(&c->eng); /* configured before: a session's next link */
    uint8_t sk[64];
    pl_paired_peer known;
    char host[PL_NAME_MAX + 1] = "";
    int rc = pl__keystore_identity_secret(c->ks, sk);
    if (rc != PL_OK)
        return rc;
    if (c->initiator || !c->instance[0]) {
        gethostname(host, sizeof host - 1);
        host[PL_NAME_MAX] = 0;
    }
    pl_engine_config cfg = {
        .initiator = c->initiator,
        .identity_sk = sk,
        .name = c->initiator ? host : (c->instance[0] ? c->instance : host),
        .instance = (c->have_instance || !c->initiator) ? c->instance : NULL,
        .code = c->initiator && c->code[0] ? c->code : NULL,
        .hooks = &conn_hooks,
        .hooks_ctx = c,
    };
    if (c->initiator && !c->code[0] && c->have_instance &&
        pl__keystore_find_peer_by_name(c->ks, c->instance, &known) == PL_OK)
        cfg.expected_peer = known.id;
    rc = pl_engine_configure(&c->eng, &cfg);
    sodium_memzero(sk, sizeof sk);
    sodium_memzero(c->code, sizeof c->code);
    return rc == PL_OK ? pl_engine_start(&c->eng) : rc;
}

/* ---------------------------------------------------------------- input and output */

static int reconnect(pl_conn *c);

/* What the session's policy says is due: give up, drop a silent link,
 * dial again, Ping, Ack. */
static void tick(pl_timeout *t, void *userdata)
{
    pl_conn *c = userdata;
    unsigned due = pl_session_due(&c->ss, now_ms(), input_full(c));
    if (due & PL_SESSION_GIVE_UP) {
        conn_close(c, PL_ERR_TIMEOUT);
        return;
    }
    if (due & PL_SESSION_DEAD) {
        conn_fail(c, PL_ERR_TIMEOUT);
        return;
    }
    if ((due & PL_SESSION_DIAL) && !reconnect(c))
        return;
    if (due & PL_SESSION_PING)
        (void)pl_engine_ping(&c->eng); /* fails only if not open: nothing to probe */
    if (due & PL_SESSION_ACK) {
        int rc = pl_engine_ack(&c->eng);
        pl_session_ack_sent(&c->ss);
        if (rc != PL_OK) {
            conn_fail(c, rc);
            return;
        }
    }
    update_interest(c);
}

/* The peer authenticated. Returns 0 if c is gone or closed. */
static int handle_open(pl_conn *c)
{
    free_timeout(c, &c->deadline);
    int resumed = pl_session_link_open(&c->ss, now_ms());
    update_interest(c);
    pl_listener *l = c->listener;
    if (c->dup_lost) {
        dup_give_up(c); /* a simultaneous dial of the peer's won while this one finished */
        return 0;
    }
    if (c->eng.finished) {
        /* The peer forgot a session that had delivered everything: end this link's new one. */
        if (pl_engine_abort(&c->eng) == PL_OK)
            flush_once(c);
        conn_close(c, PL_OK);
        return 0;
    }
    if (!l && resumed) {
        if (c->browser)
            pl_browser_free(c->browser);
        c->browser = NULL;
        return emit(c, PL_CONN_RESUMED, c->eng.reset ? PL_ERR_PEER_RESET : PL_OK, NULL, 0) && !c->closed &&
               report_acked(c);
    }
    if (!l)
        return emit(c, PL_CONN_OPEN, PL_OK, NULL, 0) && !c->closed;
    /* Hand it to the application: from now on it owns c. */
    listener_unlink(c);
    c->busy++;
    l->busy++;
    l->cb(l, c, l->userdata);
    if (--l->busy == 0 && l->zombie)
        listener_destroy(l);
    if (--c->busy == 0 && c->zombie) {
        conn_destroy(c);
        return 0;
    }
    return !c->zombie && !c->closed;
}

/* Both directions ended and our end-of-stream is out: close cleanly.
 * Returns 1 if the connection goes on, 0 if it ended. */
static int maybe_finish(pl_conn *c)
{
    if (!pl_engine_done(&c->eng) || pl_buf_size(&c->eng.out))
        return 1;
    conn_teardown(c);
    c->closed = 1;
    emit(c, PL_CONN_CLOSED, PL_OK, NULL, 0);
    return 0;
}

/* A message, the peer's end-of-stream or an Ack to the application.
 * Returns 0 if c is gone or closed. */
static int deliver(pl_conn *c, const pl_engine_event *ev)
{
    switch (ev->type) {
    case PL_ENGINE_ACKED:
        pl_session_carried(&c->ss, 0); /* the link carries the session: the next break dials at once */
        return report_acked(c);
    case PL_ENGINE_MESSAGE:
        pl_session_carried(&c->ss, ev->len);
        return emit(c, PL_CONN_MESSAGE, PL_OK, ev->data, ev->len) && !c->closed;
    case PL_ENGINE_PEER_EOF:
        return emit(c, PL_CONN_PEER_EOF, PL_OK, NULL, 0) && !c->closed;
    default:
        return 1;
    }
}

/* After a batch of input or of held entries: Ack, I/O, a clean end.
 * Returns 0 if c ended. */
static int input_done(pl_conn *c)
{
    if (!ack_soon(c))
        return 0;
    update_interest(c); /* the handshake may have queued a reply */
    return maybe_finish(c);
}

/* Bytes from the peer into the engine, events out. While the application
 * is paused the engine holds messages and still acts on the rest.
 * Returns 0 if c ended. */
static int conn_input(pl_conn *c, const uint8_t *buf, size_t n)
{
    size_t off = 0;
    pl_session_input(&c->ss);
    while (off < n) {
        size_t used = 0;
        pl_engine_event ev;
        int r = pl_engine_receive(&c->eng, buf + off, n - off, &used, &ev);
        off += used;
        if (r < 0) {
            conn_fail(c, r);
            return 0;
        }
        if (r == 0)
            break;
        if (ev.type == PL_ENGINE_OPEN) {
            if (c->listener && c->eng.resumed && c->resume_of) {
                resume_into(c, c->resume_of, buf + off, n - off);
                return 0;
            }
            if (!handle_open(c))
                return 0;
        } else if (!deliver(c, &ev)) {
            return 0;
        }
    }
    return input_done(c);
}

/* The application takes messages again: hand out what the engine held,
 * until it pauses again. */
static void drain_due(pl_timeout *t, void *userdata)
{
    pl_conn *c = userdata;
    pl_engine_event ev;
    while (!c->closed && pl_engine_next_held(&c->eng, &ev))
        if (!deliver(c, &ev))
            return;
    if (!c->closed)
        input_done(c);
}

/* After a batch of input: tell the peer what the application now has,
 * at once or a little later (core/session.h). Returns 0 if c ended. */
static int ack_soon(pl_conn *c)
{
    if (!pl_session_ack_now(&c->ss, now_ms(), &c->eng.st, c->eng.ping_owed))
        return 1; /* nothing owed, or the timer (armed by update_interest) will say */
    int rc = pl_engine_ack(&c->eng);
    pl_session_ack_sent(&c->ss);
    if (rc != PL_OK) {
        conn_fail(c, rc);
        return 0;
    }
    return 1;
}

/* Tell the application how many of its messages the peer has now (if
 * more than last said): after an Ack, and after a resumption, whose
 * handshake acknowledges too. Returns 0 if c is gone or closed. */
static int report_acked(pl_conn *c)
{
    uint64_t n = pl_stream_acked_messages(&c->eng.st);
    if (n <= c->acked)
        return 1;
    c->acked = n;
    return emit(c, PL_CONN_ACKED, PL_OK, NULL, (size_t)n) && !c->closed;
}

/* A listener's handshake conn c continues session s: s takes c's socket
 * and engine (which takes s's stream in turn), then the rest of the
 * input that c read; c goes. */
static void resume_into(pl_conn *c, pl_conn *s, const uint8_t *rest, size_t n)
{
    listener_unlink(c);
    link_down(s);
    pl_engine tmp = s->eng;
    s->eng = c->eng;
    c->eng = tmp;
    s->eng.hooks_ctx = s;
    c->eng.hooks_ctx = c;
    sodium_memzero(&tmp, sizeof tmp); /* a copy of keys: both engines live on elsewhere */
    int rc = pl_engine_adopt(&s->eng, &c->eng.st);
    int fd = c->fd;
    c->poll->watch_free(c->w);
    c->w = NULL;
    c->fd = -1;
    conn_destroy(c);
    if (rc == PL_OK)
        rc = conn_attach_fd(s, fd);
    else
        close(fd);
    if (rc != PL_OK) {
        conn_fail(s, rc);
        return;
    }
    pl_session_link_open(&s->ss, now_ms());
    arm(s);
    if (!emit(s, PL_CONN_RESUMED, PL_OK, NULL, 0) || s->closed || !report_acked(s))
        return;
    if (n)
        conn_input(s, rest, n);
    else
        update_interest(s);
}

/* The peer's stream ended. A peer closes only once both directions have
 * ended; any other end loses data and is reported as such. */
static void conn_input_end(pl_conn *c)
{
    if (maybe_finish(c))
        conn_fail(c, PL_ERR_CLOSED);
}

/* What was written: advance, and report DRAINED when all is out. Returns 0 if c ended. */
static int wrote(pl_conn *c, size_t n)
{
    pl_buf *out = &c->eng.out;
    pl_buf_consume(out, n);
    update_interest(c);
    if (pl_buf_size(out))
        return 1;
    if (!c->listener && pl_engine_open(&c->eng) && !emit(c, PL_CONN_DRAINED, PL_OK, NULL, 0))
        return 0;
    if (c->closed)
        return 0;
    return maybe_finish(c);
}

static int do_read(pl_conn *c)
{
    uint8_t buf[READ_CHUNK];
    ssize_t n = recv(c->fd, buf, sizeof buf, 0);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            return 1;
        conn_fail(c, PL_ERR_IO);
        return 0;
    }
    if (n == 0) {
        conn_input_end(c);
        return 0;
    }
    return conn_input(c, buf, (size_t)n);
}

static int do_write(pl_conn *c)
{
    pl_buf *out = &c->eng.out;
    if (!pl_buf_size(out))
        return 1;
    ssize_t n = send(c->fd, pl_buf_head(out), pl_buf_size(out), MSG_NOSIGNAL);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            return 1;
        conn_fail(c, errno == EPIPE || errno == ECONNRESET ? PL_ERR_CLOSED : PL_ERR_IO);
        return 0;
    }
    return wrote(c, (size_t)n);
}

/* Start the handshake if it has not begun. Returns 0 if that failed (c ended). */
static int start_if_idle(pl_conn *c)
{
    if (c->eng.state != PL_HS_IDLE)
        return 1;
    int rc = conn_start(c);
    if (rc != PL_OK) {
        conn_fail(c, rc);
        return 0;
    }
    update_interest(c);
    return 1;
}

static void conn_io(pl_watch *w, int fd, unsigned events, void *userdata)
{
    pl_conn *c = userdata;
    /* A byte session starts its handshake on its first kick, but watches
     * are dispatched before timeouts: when the peer's Hello is already
     * readable, start now rather than feed an idle engine (which fails
     * the session with PL_ERR_STATE). */
    if (!start_if_idle(c))
        return;
    if ((events & PL_WATCH_OUT) && !do_write(c))
        return;
    /* What the input made the engine (or the application's callbacks)
     * queue - a handshake reply, an echo - goes out now: the socket is
     * almost always writable, and waiting for the next poll() round
     * costs a system call and a loop iteration per reply. */
    if ((events & (PL_WATCH_IN | PL_WATCH_HUP | PL_WATCH_ERR)) && do_read(c) && pl_buf_size(&c->eng.out))
        do_write(c);
}

static void deadline_expired(pl_timeout *t, void *userdata)
{
    conn_fail(userdata, PL_ERR_TIMEOUT);
}

/* The socket is connected (or handed over): run the protocol on it. */
static int conn_attach_fd(pl_conn *c, int fd)
{
    c->fd = fd;
    c->peer_len = sizeof c->peer;
    if (getpeername(fd, (struct sockaddr *)&c->peer, &c->peer_len) < 0)
        c->peer_len = 0;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
#ifdef SO_NOSIGPIPE
    setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one);
#endif
    c->w = c->poll->watch_new(c->poll, fd, PL_WATCH_IN | PL_WATCH_OUT, conn_io, c);
    return c->w ? PL_OK : PL_ERR_NOMEM;
}

/* Byte sessions: the first kick starts the handshake; later ones move channel bytes. */
static void kicked(pl_timeout *t, void *userdata)
{
    pl_conn *c = userdata;
    if (!start_if_idle(c) || !c->is_channel)
        return;
    pl_buf *out = &c->eng.out;
    if (pl_buf_size(out) && !c->ch_blocked) {
        long n = c->ch_ops.write(c->ch_ctx, pl_buf_head(out), pl_buf_size(out));
        if (n < 0 || (size_t)n > pl_buf_size(out)) {
            conn_fail(c, PL_ERR_IO);
            return;
        }
        c->ch_blocked = (size_t)n < pl_buf_size(out);
        if (n > 0 && !wrote(c, (size_t)n))
            return;
    }
    /* A read's worth at a time, as from a socket, until the engine holds
     * as much as the application may leave it; the rest waits. */
    while (pl_buf_size(&c->ch_in) && !input_full(c)) {
        uint8_t buf[READ_CHUNK];
        size_t n = pl_buf_size(&c->ch_in) < sizeof buf ? pl_buf_size(&c->ch_in) : sizeof buf;
        memcpy(buf, pl_buf_head(&c->ch_in), n); /* callbacks may add input meanwhile */
        pl_buf_consume(&c->ch_in, n);
        if (!conn_input(c, buf, n))
            return;
    }
    if (c->ch_eof && !pl_buf_size(&c->ch_in)) {
        c->ch_eof = 0;
        conn_input_end(c);
        return;
    }
    if (c->ch_refused && !pl_buf_size(&c->ch_in) && !input_full(c)) {
        c->ch_refused = 0;
        if (c->ch_ops.input_ready)
            c->ch_ops.input_ready(c->ch_ctx); /* may give input again at once */
    }
}

/* ---------------------------------------------------------------- connecting */

/* Initiator, interrupted: dial the service's addresses again and continue
 * the session. Returns 0 if c ended. */
static int reconnect(pl_conn *c)
{
    link_down(c); /* a round still under way (new addresses came) starts over */
    pl_engine_relink(&c->eng);
    c->next_addr = 0;
    if (!c->timer)
        c->timer = c->poll->timeout_new(c->poll, -1, he_timer, c);
    if (!c->deadline)
        c->deadline = c->poll->timeout_new(c->poll, DEFAULT_TIMEOUT_MS, deadline_expired, c);
    if (!c->timer || !c->deadline) {
        conn_close(c, PL_ERR_NOMEM);
        return 0;
    }
    he_next(c);
    return 1;
}

static void attempt_io(pl_watch *w, int fd, unsigned events, void *userdata)
{
    attempt *a = userdata;
    pl_conn *c = a->c;
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        err = errno;
    if (err == 0 && (events & PL_WATCH_OUT)) {
        /* The winner: drop every other attempt and the stagger timer. */
        int won = a->fd;
        a->fd = -1;
        attempt_close(a);
        for (size_t i = 0; i < c->n_addrs; i++)
            attempt_close(&c->attempts[i]);
        c->n_pending = 0;
        free_timeout(c, &c->timer);
        int r = conn_attach_fd(c, won);
        if (r == PL_OK)
            r = conn_start(c);
        if (r != PL_OK)
            conn_fail(c, r);
        return;
    }
    if (err == 0 && !(events & (PL_WATCH_ERR | PL_WATCH_HUP)))
        return;
    attempt_close(a);
    c->n_pending--;
    if (c->n_pending == 0)
        he_next(c); /* don't wait out the stagger when nothing is pending */
}

static int attempt_start(pl_conn *c, size_t i)
{
    attempt *a = &c->attempts[i];
    const struct sockaddr *sa = (const struct sockaddr *)&c->addrs[i];
    socklen_t salen = sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    a->c = c;
    a->fd = socket(sa->sa_family, SOCK_STREAM, 0);
    if (a->fd < 0)
        return -1;
    if (set_nonblock(a->fd) < 0 || (connect(a->fd, sa, salen) < 0 && errno != EINPROGRESS)) {
        close(a->fd);
        a->fd = -1;
        return -1;
    }
    a->w = c->poll->watch_new(c->poll, a->fd, PL_WATCH_OUT, attempt_io, a);
    if (!a->w) {
        close(a->fd);
        a->fd = -1;
        return -1;
    }
    c->n_pending++;
    return 0;
}

static void he_timer(pl_timeout *t, void *userdata)
{
    pl_conn *c = userdata;
    if (c->n_pending == 0 && c->next_addr >= c->n_addrs) {
        conn_fail(c, PL_ERR_CONNECT);
        return;
    }
    he_next(c);
}

/* Start the next attempt that gets going; re-arm the stagger, or the failure report. */
static void he_next(pl_conn *c)
{
    while (c->next_addr < c->n_addrs && attempt_start(c, c->next_addr++) != 0)
        ;
    int more = c->next_addr < c->n_addrs;
    if (c->n_pending == 0 && !more)
        c->poll->timeout_update(c->timer, 0); /* report from the loop, not from here */
    else
        c->poll->timeout_update(c->timer, more ? HE_STAGGER_MS : -1);
}

static int fill_sockaddr(const pl_address *a, uint16_t port, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof *ss);
    if (a->family == AF_INET) {
        struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
        s4->sin_family = AF_INET;
        s4->sin_port = htons(port);
        memcpy(&s4->sin_addr, a->addr, 4);
        return 0;
    }
    if (a->family == AF_INET6) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(port);
        memcpy(&s6->sin6_addr, a->addr, 16);
        if (IN6_IS_ADDR_LINKLOCAL(&s6->sin6_addr))
            s6->sin6_scope_id = a->ifindex;
        return 0;
    }
    return -1;
}

static pl_conn *conn_alloc(const pl_poll *poll, pl_keystore *ks, size_t max_message, int initiator,
                           const char *instance)
{
    if (instance && strlen(instance) > PL_NAME_MAX)
        return NULL;
    pl_conn *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->poll = poll;
    c->ks = ks;
    c->fd = -1;
    c->initiator = initiator;
    c->have_instance = instance != NULL;
    if (instance)
        memcpy(c->instance, instance, strlen(instance) + 1);
    c->send_limit = DEFAULT_SEND_LIMIT;
    c->receive_limit = DEFAULT_SEND_LIMIT; /* what a peer with the default send limit can have unacknowledged */
    pl_session_init(&c->ss, initiator, 0, 0); /* byte sessions: neither resumed nor probed */
    c->tick = poll->timeout_new(poll, -1, tick, c);
    if (!c->tick) {
        free(c);
        return NULL;
    }
    pl_engine_init(&c->eng, max_message);
    pl_buf_init(&c->ch_in);
    pl_conn **head = sessions_of(ks);
    c->knext = *head;
    *head = c;
    return c;
}

/* The addresses to dial, RFC 8305 section 4: the families interleaved, IPv6 first. */
static int fill_addresses(pl_conn *c, const pl_service *svc)
{
    size_t n = svc->n_addresses;
    if (n == 0 || !svc->addresses || svc->port == 0)
        return PL_ERR_INVALID;
    struct sockaddr_storage *addrs = calloc(n, sizeof *addrs);
    attempt *attempts = calloc(n, sizeof *attempts);
    if (!addrs || !attempts) {
        free(addrs);
        free(attempts);
        return PL_ERR_NOMEM;
    }
    for (size_t i = 0; i < n; i++)
        attempts[i].fd = -1;
    size_t k = 0;
    for (size_t i6 = 0, i4 = 0; i6 < n || i4 < n;) {
        while (i6 < n && svc->addresses[i6].family != AF_INET6)
            i6++;
        if (i6 < n && fill_sockaddr(&svc->addresses[i6++], svc->port, &addrs[k]) == 0)
            k++;
        while (i4 < n && svc->addresses[i4].family != AF_INET)
            i4++;
        if (i4 < n && fill_sockaddr(&svc->addresses[i4++], svc->port, &addrs[k]) == 0)
            k++;
    }
    if (k == 0) {
        free(addrs);
        free(attempts);
        return PL_ERR_INVALID;
    }
    for (size_t i = 0; c->attempts && i < c->n_addrs; i++)
        attempt_close(&c->attempts[i]);
    free(c->addrs);
    free(c->attempts);
    c->addrs = addrs;
    c->attempts = attempts;
    c->n_addrs = k;
    c->next_addr = 0;
    c->n_pending = 0;
    return PL_OK;
}

/* Interrupted: the service showed up (again, maybe elsewhere): dial where it is now. */
static void rediscovered(pl_browser *b, pl_browse_event ev, int status, const pl_service *svc, void *userdata)
{
    pl_conn *c = userdata;
    if ((ev == PL_BROWSE_ADD || ev == PL_BROWSE_UPDATE) && svc->name && strcmp(svc->name, c->instance) == 0)
        (void)pl_conn_set_addresses(c, svc);
}

int pl_conn_set_discovery(pl_conn *c, pl_discovery *d)
{
    if (!c || !c->addrs || !c->svc_type[0])
        return PL_ERR_INVALID;
    if (c->browser)
        pl_browser_free(c->browser);
    c->browser = NULL;
    c->disc = d;
    return PL_OK;
}

int pl_conn_set_addresses(pl_conn *c, const pl_service *svc)
{
    if (!c || !svc || !c->addrs || c->closed)
        return PL_ERR_INVALID;
    if (!c->ss.interrupted && c->fd < 0)
        return PL_ERR_STATE; /* still dialling the first time */
    /* Interrupted and not in a handshake: attempts, or the pause before them, are under way. */
    int dialling = c->ss.interrupted && c->fd < 0;
    int rc = fill_addresses(c, svc);
    if (rc == PL_OK && dialling) {
        pl_session_dial_now(&c->ss, now_ms()); /* dial the new ones now */
        arm(c);
    }
    return rc;
}

int pl_connect(const pl_poll *poll, const pl_service *svc, pl_keystore *ks, int timeout_ms,
               pl_conn_cb cb, void *userdata, pl_conn **out)
{
    if (!poll || !svc || !ks || !out || svc->port == 0 || svc->n_addresses == 0 || !svc->addresses ||
        !svc->name || strlen(svc->name) > PL_NAME_MAX)
        return PL_ERR_INVALID;
    pl_conn *c = conn_alloc(poll, ks, PL_DEFAULT_MAX_MESSAGE, 1, svc->name);
    if (!c)
        return PL_ERR_NOMEM;
    c->cb = cb;
    c->userdata = userdata;
    pl_session_init(&c->ss, 1, PL_SESSION_DEFAULT_RESUME_MS, PL_SESSION_DEFAULT_KEEPALIVE_MS);
    if (svc->type && strlen(svc->type) < sizeof c->svc_type)
        memcpy(c->svc_type, svc->type, strlen(svc->type) + 1);
    pl_paired_peer known;
    if (pl__keystore_find_peer_by_name(ks, svc->name, &known) == PL_OK) {
        memcpy(c->target_id, known.id, PL_ID_SIZE);
        c->has_target = 1;
    }
    int rc = fill_addresses(c, svc);
    if (rc != PL_OK) {
        conn_destroy(c);
        return rc;
    }
    c->timer = poll->timeout_new(poll, -1, he_timer, c);
    c->deadline = poll->timeout_new(poll, timeout_ms > 0 ? timeout_ms : DEFAULT_TIMEOUT_MS,
                                    deadline_expired, c);
    if (!c->timer || !c->deadline) {
        conn_destroy(c);
        return PL_ERR_NOMEM;
    }
    he_next(c);
    *out = c;
    return PL_OK;
}

/* Byte sessions: common part of pl_conn_new_fd() and pl_conn_new_channel(). */
static int byte_session(const pl_poll *poll, pl_role role, pl_keystore *ks, const char *instance,
                        pl_conn_cb cb, void *userdata, pl_conn **out)
{
    if (!poll || !ks || !instance || !out || (role != PL_ROLE_INITIATOR && role != PL_ROLE_RESPONDER))
        return PL_ERR_INVALID;
    pl_conn *c = conn_alloc(poll, ks, PL_DEFAULT_MAX_MESSAGE, role == PL_ROLE_INITIATOR, instance);
    if (!c)
        return PL_ERR_NOMEM;
    c->cb = cb;
    c->userdata = userdata;
    c->byte_session = 1;
    c->kick = poll->timeout_new(poll, 0, kicked, c); /* the handshake starts from the loop */
    if (!c->kick) {
        conn_destroy(c);
        return PL_ERR_NOMEM;
    }
    *out = c;
    return PL_OK;
}

int pl_conn_new_fd(const pl_poll *poll, int fd, pl_role role, pl_keystore *ks, const char *instance,
                   pl_conn_cb cb, void *userdata, pl_conn **out)
{
    if (fd < 0 || set_nonblock(fd) < 0)
        return PL_ERR_INVALID;
    pl_conn *c = NULL;
    int rc = byte_session(poll, role, ks, instance, cb, userdata, &c);
    if (rc != PL_OK)
        return rc;
    rc = conn_attach_fd(c, fd);
    if (rc != PL_OK) {
        c->fd = -1; /* not ours on failure */
        conn_destroy(c);
        return rc;
    }
    *out = c;
    return PL_OK;
}

int pl_conn_new_channel(const pl_poll *poll, const pl_channel_ops *ops, void *ctx, pl_role role,
                        pl_keystore *ks, const char *instance, pl_conn_cb cb, void *userdata,
                        pl_conn **out)
{
    if (!ops || !ops->write)
        return PL_ERR_INVALID;
    pl_conn *c = NULL;
    int rc = byte_session(poll, role, ks, instance, cb, userdata, &c);
    if (rc != PL_OK)
        return rc;
    c->is_channel = 1;
    c->ch_ops = *ops;
    c->ch_ctx = ctx;
    *out = c;
    return PL_OK;
}

int pl_conn_channel_input(pl_conn *c, const void *data, size_t len)
{
    if (!c || !c->is_channel || c->closed || c->ch_eof)
        return c ? PL_ERR_STATE : PL_ERR_INVALID;
    size_t have = pl_buf_size(&c->ch_in);
    if (len == 0) {
        c->ch_eof = 1;
    } else if (!data) {
        return PL_ERR_INVALID;
    } else if (c->ch_refused || input_full(c) || (have && len > CHANNEL_INPUT_MAX - have)) {
        /* As a socket's receive buffer: what the pipe brings waits with the
         * application until the session has room (ops.input_ready). */
        c->ch_refused = 1;
        return PL_ERR_AGAIN;
    } else if (pl_buf_append(&c->ch_in, data, len) != PL_OK) {
        return PL_ERR_NOMEM;
    }
    update_interest(c);
    return PL_OK;
}

void pl_conn_channel_writable(pl_conn *c)
{
    if (!c || !c->is_channel || c->closed)
        return;
    c->ch_blocked = 0;
    update_interest(c);
}

/* ---------------------------------------------------------------- conn API */

int pl_conn_set_max_message(pl_conn *c, size_t max)
{
    if (!c)
        return PL_ERR_INVALID;
    return pl_engine_set_max_message(&c->eng, max);
}

void pl_conn_set_callback(pl_conn *c, pl_conn_cb cb, void *userdata)
{
    if (!c)
        return;
    c->cb = cb;
    c->userdata = userdata;
}

int pl_conn_set_code(pl_conn *c, const char *code)
{
    if (!c || !code || !code[0] || strlen(code) > PL_CODE_MAX)
        return PL_ERR_INVALID;
    for (const char *p = code; *p; p++)
        if (*p < 0x21 || *p > 0x7e)
            return PL_ERR_INVALID;
    if (c->eng.state != PL_HS_IDLE || c->listener)
        return PL_ERR_STATE;
    if (c->initiator) {
        memcpy(c->code, code, strlen(code) + 1);
        c->has_target = 0; /* pairing: no simultaneous-dial resolution */
        return PL_OK;
    }
    pl_pairing *p = c->own_pairing ? c->own_pairing : calloc(1, sizeof *p);
    if (!p)
        return PL_ERR_NOMEM;
    int rc = pl__pairing_init(p, c->ks, code, 0, 0);
    if (rc != PL_OK) {
        if (!c->own_pairing)
            free(p);
        return rc;
    }
    c->own_pairing = p;
    return PL_OK;
}

int pl_conn_peer_id(const pl_conn *c, uint8_t id[PL_ID_SIZE])
{
    if (!c || !id)
        return PL_ERR_INVALID;
    if (!pl_engine_open(&c->eng) && !c->eng.st.established)
        return PL_ERR_STATE;
    memcpy(id, c->eng.peer_id, PL_ID_SIZE);
    return PL_OK;
}

const char *pl_conn_peer_name(const pl_conn *c)
{
    return c && (pl_engine_open(&c->eng) || c->eng.st.established) ? c->eng.peer_name : NULL;
}

int pl_conn_paired(const pl_conn *c)
{
    return c && pl_engine_open(&c->eng) && c->eng.pairing;
}

int pl_conn_send(pl_conn *c, const void *data, size_t len)
{
    if (!c || (!data && len))
        return PL_ERR_INVALID;
    if (c->closed)
        return PL_ERR_STATE;
    int err = pl_engine_send(&c->eng, data, len, c->send_limit);
    if (err == PL_OK)
        update_interest(c);
    return err;
}

size_t pl_conn_pending(const pl_conn *c)
{
    if (!c)
        return 0;
    const pl_stream *st = &c->eng.st;
    return pl_buf_size(&c->eng.out) + (pl_buf_size(&st->unacked) - st->sent_off);
}

size_t pl_conn_unacked(const pl_conn *c)
{
    return c ? c->eng.st.unacked_bytes : 0;
}

int pl_conn_set_resume(pl_conn *c, int timeout_ms)
{
    if (!c || timeout_ms < 0)
        return PL_ERR_INVALID;
    c->ss.resume_ms = timeout_ms;
    return PL_OK;
}

int pl_conn_set_keepalive(pl_conn *c, int interval_ms)
{
    if (!c || interval_ms < 0)
        return PL_ERR_INVALID;
    pl_session_set_keepalive(&c->ss, now_ms(), interval_ms);
    arm(c);
    return PL_OK;
}

int pl_conn_set_send_limit(pl_conn *c, size_t bytes)
{
    if (!c || bytes == 0)
        return PL_ERR_INVALID;
    c->send_limit = bytes;
    return PL_OK;
}

int pl_conn_set_receive_limit(pl_conn *c, size_t bytes)
{
    if (!c || bytes == 0)
        return PL_ERR_INVALID;
    c->receive_limit = bytes;
    update_interest(c);
    return PL_OK;
}

int pl_conn_pause(pl_conn *c, int paused)
{
    if (!c)
        return PL_ERR_INVALID;
    if (c->closed)
        return PL_ERR_STATE;
    if (!paused && c->eng.st.held_n) {
        if (!c->drain && !(c->drain = c->poll->timeout_new(c->poll, -1, drain_due, c)))
            return PL_ERR_NOMEM;
        c->poll->timeout_update(c->drain, 0);
    }
    pl_engine_hold(&c->eng, paused);
    update_interest(c);
    return PL_OK;
}

int pl_conn_shutdown(pl_conn *c)
{
    if (!c)
        return PL_ERR_INVALID;
    if (c->closed)
        return PL_ERR_STATE;
    int err = pl_engine_shutdown(&c->eng);
    if (err == PL_OK)
        update_interest(c);
    return err;
}

int pl_conn_peer_string(const pl_conn *c, char *buf, size_t cap)
{
    if (!c || !buf)
        return PL_ERR_INVALID;
    if (!c->peer_len)
        return PL_ERR_STATE;
    pl_address a = {0};
    uint16_t port;
    if (c->peer.ss_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&c->peer;
        port = ntohs(s6->sin6_port);
        if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) { /* an IPv4 peer of a dual-stack listener */
            a.family = AF_INET;
            memcpy(a.addr, s6->sin6_addr.s6_addr + 12, 4);
        } else {
            a.family = AF_INET6;
            memcpy(a.addr, &s6->sin6_addr, 16);
            a.ifindex = s6->sin6_scope_id;
        }
    } else if (c->peer.ss_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)&c->peer;
        a.family = AF_INET;
        memcpy(a.addr, &s4->sin_addr, 4);
        port = ntohs(s4->sin_port);
    } else {
        return PL_ERR_STATE; /* not an IP socket */
    }
    char host[PL_ADDRSTRLEN];
    int err = pl_address_to_string(&a, host, sizeof host);
    if (err != PL_OK)
        return err;
    int n = snprintf(buf, cap, a.family == AF_INET6 ? "[%s]:%u" : "%s:%u", host, port);
    return (n < 0 || (size_t)n >= cap) ? PL_ERR_TOO_LARGE : PL_OK;
}

static void conn_destroy(pl_conn *c)
{
    for (pl_conn **pc = sessions_of(c->ks); *pc; pc = &(*pc)->knext) {
        if (*pc == c) {
            *pc = c->knext;
            break;
        }
    }
    /* A handshake conn that was to continue c forgets it. */
    for (pl_conn *o = *sessions_of(c->ks); o; o = o->knext)
        if (o->resume_of == c)
            o->resume_of = NULL;
    conn_teardown(c);
    pl_engine_clear(&c->eng); /* reports an unfinished pairing through the hooks */
    if (c->own_pairing) {
        pl__pairing_clear(c->own_pairing);
        free(c->own_pairing);
    }
    pl_buf_clear(&c->ch_in);
    free(c->addrs);
    free(c->attempts);
    sodium_memzero(c->code, sizeof c->code);
    free(c);
}

void pl_conn_free(pl_conn *c)
{
    if (!c || c->zombie)
        return;
    /* An open session that did not end cleanly: tell the peer not to wait
     * to resume it (byte sessions are never resumed: their pipe's end says it). */
    if (!c->closed && !c->byte_session && pl_engine_open(&c->eng) && !pl_engine_done(&c->eng) &&
        pl_engine_abort(&c->eng) == PL_OK)
        flush_once(c);
    conn_teardown(c);
    c->closed = 1;
    listener_unlink(c);
    if (c->busy) {
        c->zombie = 1;
        return;
    }
    conn_destroy(c);
}

/* ---------------------------------------------------------------- listener */

static void listener_accept(pl_watch *w, int fd, unsigned events, void *userdata);

static void accept_retry(pl_timeout *t, void *userdata)
{
    pl_listener *l = userdata;
    l->poll->watch_update(l->w, PL_WATCH_IN);
}

static void listener_accept(pl_watch *w, int fd, unsigned events, void *userdata)
{
    pl_listener *l = userdata;
    /* Accept what is queued now, bounded so that a flood cannot starve the loop. */
    for (int i = 0; i < 256; i++) {
        int s = accept(l->fd, NULL, NULL);
        if (s < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                /* The connection stays queued and the socket readable: pause instead of spinning. */
                l->poll->watch_update(l->w, 0);
                l->poll->timeout_update(l->retry, ACCEPT_RETRY_MS);
            }
            return;
        }
        pl_conn *c = set_nonblock(s) == 0 ? conn_alloc(l->poll, l->ks, l->max_message, 0, l->instance) : NULL;
        if (!c) {
            close(s);
            continue;
        }
        c->listener = l;
        pl_session_init(&c->ss, 0, l->resume_ms, l->keepalive_ms);
        c->deadline = l->poll->timeout_new(l->poll, LISTENER_HANDSHAKE_MS, deadline_expired, c);
        int rc = c->deadline ? conn_attach_fd(c, s) : PL_ERR_NOMEM;
        if (rc == PL_OK)
            rc = conn_start(c);
        if (rc != PL_OK) {
            if (c->fd < 0)
                close(s);
            c->listener = NULL;
            conn_destroy(c);
            continue;
        }
        c->lnext = l->pending;
        l->pending = c;
        l->n_pending++;
        if (l->n_pending > LISTENER_MAX_PENDING) {
            pl_conn *oldest = l->pending;
            while (oldest->lnext)
                oldest = oldest->lnext;
            conn_fail(oldest, PL_ERR_TIMEOUT);
        }
    }
}

/* Deliver pairing news to the application from the loop (never from inside a handshake). */
static void news_due(pl_timeout *t, void *userdata)
{
    pl_listener *l = userdata;
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
        listener_destroy(l);
}

static void listener_news(pl_listener *l)
{
    l->poll->timeout_update(l->news, 0);
}

int pl_listener_new(const pl_poll *poll, uint16_t port, pl_keystore *ks, pl_accept_cb cb, void *userdata,
                    pl_listener **out)
{
    if (!poll || !ks || !cb || !out)
        return PL_ERR_INVALID;
    int one = 1, zero = 0;
    int fd = socket(AF_INET6, SOCK_STREAM, 0);
    if (fd >= 0) {
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        struct sockaddr_in6 s6 = {0};
        s6.sin6_family = AF_INET6;
        s6.sin6_addr = in6addr_any;
        s6.sin6_port = htons(port);
        if (bind(fd, (struct sockaddr *)&s6, sizeof s6) < 0) {
            int e = errno;
            close(fd);
            fd = -1;
            if (e != EAFNOSUPPORT && e != EADDRNOTAVAIL) {
                errno = e;
                return PL_ERR_IO;
            }
        }
    }
    if (fd < 0) { /* no IPv6 on this system: IPv4 only */
        fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0)
            return PL_ERR_IO;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        struct sockaddr_in s4 = {0};
        s4.sin_family = AF_INET;
        s4.sin_addr.s_addr = htonl(INADDR_ANY);
        s4.sin_port = htons(port);
        if (bind(fd, (struct sockaddr *)&s4, sizeof s4) < 0) {
            int e = errno;
            close(fd);
            errno = e;
            return PL_ERR_IO;
        }
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (set_nonblock(fd) < 0 || listen(fd, 128) < 0 || getsockname(fd, (struct sockaddr *)&ss, &sl) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return PL_ERR_IO;
    }
    pl_listener *l = calloc(1, sizeof *l);
    if (!l) {
        close(fd);
        return PL_ERR_NOMEM;
    }
    l->poll = poll;
    l->ks = ks;
    l->fd = fd;
    l->cb = cb;
    l->userdata = userdata;
    l->max_message = PL_DEFAULT_MAX_MESSAGE;
    l->resume_ms = PL_SESSION_DEFAULT_RESUME_MS;
    l->keepalive_ms = PL_SESSION_DEFAULT_KEEPALIVE_MS;
    l->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                             : ((struct sockaddr_in *)&ss)->sin_port);
    l->w = poll->watch_new(poll, fd, PL_WATCH_IN, listener_accept, l);
    l->retry = poll->timeout_new(poll, -1, accept_retry, l);
    l->news = poll->timeout_new(poll, -1, news_due, l);
    if (!l->w || !l->retry || !l->news) {
        if (l->w)
            poll->watch_free(l->w);
        if (l->retry)
            poll->timeout_free(l->retry);
        if (l->news)
            poll->timeout_free(l->news);
        close(fd);
        free(l);
        return PL_ERR_NOMEM;
    }
    *out = l;
    return PL_OK;
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

static void listener_destroy(pl_listener *l)
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
        listener_unlink(c);
        c->listener = l; /* so that an unfinished pairing is charged to this policy */
        conn_teardown(c);
        pl_engine_clear(&c->eng);
        c->listener = NULL;
        conn_destroy(c);
    }
    if (l->w)
        l->poll->watch_free(l->w);
    l->w = NULL;
    l->poll->timeout_free(l->retry);
    l->poll->timeout_free(l->news);
    l->retry = l->news = NULL;
    close(l->fd);
    l->pairing_cb = NULL;
    if (l->busy) {
        l->zombie = 1;
        return;
    }
    listener_destroy(l);
}
