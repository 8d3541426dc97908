/* SPDX-License-Identifier: ISC */
/*
 * Nodes, sessions and their links, shared by the session shell
 * (session.c), the node (node.c), the listener (listener.c) and the
 * backends that make links and dial (lib/backends/: posix sockets and
 * descriptors, application pipes, inproc, the Apple glue). Not installed.
 *
 * A pl_session is a session as the application sees it: the engine (the
 * connection's handshake and records, and the session's stream), the
 * session's clocked policy (core/policy.h), and the link that carries
 * it now. A link is one pipe: it feeds what arrives to its session's
 * engine and hands on what the engine queued. Links are private objects
 * behind pl_link_ops (curl's vtls table, nng's pipe ops): every kind
 * moves from the connection that ran a resuming handshake to the
 * interrupted session it continues, so every kind resumes.
 */
#ifndef PL_SESSION_INTERNAL_H
#define PL_SESSION_INTERNAL_H

#include "internal.h"

#include "session_glue.h"
#include "core/engine.h"
#include "core/policy.h"
#include "keystore_internal.h"
#include "pairing.h"

/* RFC 8305 section 5 recommends 250 ms between connection attempts. */
#define PL_HE_STAGGER_MS 250
#define PL_CONNECT_TIMEOUT_MS 10000
/* Connections in handshake held by a listener (at most so many from one
 * source address), how long each may take, and how long one may stay
 * silent before its first Hello. */
#define PL_LISTENER_MAX_PENDING 64
#define PL_LISTENER_MAX_PER_SOURCE 8
#define PL_LISTENER_HANDSHAKE_MS 10000
#define PL_LISTENER_HELLO_MS 2000
/* One read from a link. */
#define PL_READ_CHUNK 65536
/* Pairing failures a listener keeps for its callback until the loop delivers them. */
#define PL_MAX_PAIRING_NEWS 8
/* The send buffer and what a paused session holds (the timing of sessions is core/policy.h's). */
#define PL_DEFAULT_SEND_LIMIT (4u * 1024u * 1024u)

typedef struct pl_link pl_link;

typedef struct pl_link_ops {
    const char *kind; /* "tcp", "fd", "channel" */
    /* Ask for the I/O the session needs now: read unless its input is
     * full (pl__session_input_full), write while its engine has output. */
    void (*interest)(pl_link *lk);
    /* Hand what the engine queued to the pipe once, without waiting (an
     * Error or Abort before closing). */
    void (*flush_once)(pl_link *lk);
    /* Release the pipe and free the link (it is detached already). */
    void (*close)(pl_link *lk);
    /* The peer's address as text, or PL_ERR_STATE (no address). */
    int (*peer_string)(const pl_link *lk, char *buf, size_t cap);
    /* The peer's address (port aside): PL_OK, or PL_ERR_STATE (none). May be NULL. */
    int (*peer_addr)(const pl_link *lk, pl_address *out);
    /* Hand the pipe what it takes of the engine's output now, without
     * blocking and without calling anything back, and consume that: the
     * engine's drain hook and pl_session_send()'s write at once, which
     * run inside the application's calls. NULL: the link writes from the
     * loop only. */
    void (*write_now)(pl_link *lk);
} pl_link_ops;

/* The common head of every link. */
struct pl_link {
    const pl_link_ops *ops;
    pl_session *c; /* the session it carries; moves on a resumption */
};

/* The node (pl_node_new()): every session and listener it has. */
struct pl_node {
    const pl_poll *poll;
    pl_keystore *ks;
    pl_session *sessions;   /* listeners' handshakes included; linked by knext */
    pl_listener *listeners; /* linked by next */
    char name[PL_NAME_MAX + 1]; /* pl_node_set_name(): the display name it sends; "" for the host name */
    pl_aead_cache *aead;        /* libcrypto's contexts, shared by its sessions (one thread); NULL: none */
};

struct pl_session {
    pl_node *node;
    pl_engine eng;
    pl_session_cb cb;
    void *userdata;
    int initiator;
    char instance[PL_NAME_MAX + 1];
    int have_instance;
    char code[PL_CODE_MAX + 1]; /* set by pl_session_set_code(), wiped once handed to the engine */
    uint8_t secret[PL_PAIRING_SECRET_MAX]; /* set by pl_session_set_secret(), wiped once used */
    size_t secret_len;
    pl_pairing *pairing;        /* responder: the policy of the attempt in progress */
    pl_pairing *own_pairing;    /* responder byte session with a code */

    pl_link *link;  /* what carries the session now; NULL between links */
    int app_links;  /* the application brings the links (fd, channel): it is told of each failure */
    /* The dialling side's links: pl_connect()'s TCP dialler, or the Apple glue's. */
    const pl_dialer_ops *dialer;
    void *dialer_ctx;
    pl_timeout *deadline; /* connecting plus handshake */

    /* Accepted and still in handshake: owned by this listener. */
    pl_listener *listener;
    pl_session *lnext;

    /* The session across connections: its clocked policy and the one
     * timer that serves it. */
    pl_policy ss;
    pl_timeout *tick;
    size_t send_limit;    /* bound of unacknowledged bytes (pl_session_send: PL_ERR_AGAIN) */
    size_t receive_limit; /* paused: bound of held messages before reading stops */
    uint64_t acked;       /* the count PL_SESSION_ACKED last reported */
    int delivered;        /* PL_SESSION_DELIVERED was reported */
    pl_timeout *drain;    /* unpaused: hands out what the engine held, from the loop */
    pl_timeout *wrote;    /* a send the link took at once: what the write owes, from the loop */
    int wrote_owed;       /* ... armed: the next sends wait for the loop */
    int has_target;       /* initiator: the stored id of the peer it dials (pl__session_expect) */
    uint8_t target_id[PL_ID_SIZE];
    char peer_stored[PL_NAME_MAX + 1]; /* the name the keystore holds the peer under (its entry's) */
    /* Responder: the entry a pairing on this connection replaced (had_earlier), put back if the
     * initiator refuses Ready: a refused connection keeps nothing of itself, and takes nothing. */
    pl_paired_peer earlier;
    unsigned had_earlier : 1;
    int dup_lost;         /* a simultaneous dial made this connection the one to give up */
    pl_timeout *dup;      /* ... given up from the loop */
    pl_session *resume_of;   /* a listener's handshake: the session it continues */
    pl_session *knext;       /* the node's session list */

    int closed; /* PL_SESSION_CLOSED was reported, or the session is being torn down */
    int busy;   /* inside the application's callback */
    int zombie; /* freed by the application during a callback */
};

struct pl_listener {
    pl_node *node;
    pl_listener *next; /* the node's list */
    int fd; /* -1: detached (it accepts only the links handed to it) */
    pl_watch *w;
    pl_timeout *retry; /* accept back-off */
    uint16_t port;
    size_t max_message;
    char instance[PL_NAME_MAX + 1];
    pl_accept_cb cb;
    void *userdata;
    pl_pairing pairing;
    int pairing_on;
    pl_pairing_window window;        /* when pairing closes by itself (core/policy.h) */
    unsigned window_s, window_flags; /* pl_listener_set_pairing_window() */
    pl_timeout *window_timer;
    pl_pairing_sources sources;      /* sources paused after a silent attempt */
    pl_address attempt_src;          /* the source of this listener's attempt in progress */
    int attempt_has_src;
    pl_pairing_cb pairing_cb;
    void *pairing_ud;
    pl_timeout *news; /* delivers pairing news from the loop */
    int news_failures[PL_MAX_PAIRING_NEWS];
    size_t n_news;
    int news_closed;    /* pairing closed by itself, not reported yet */
    int closed_status;  /* ... why: PL_OK, PL_ERR_TIMEOUT, PL_ERR_LOCKED */
    int resume_ms, keepalive_ms; /* for accepted sessions */
    pl_session *pending; /* newest first */
    size_t n_pending;
    pl_publication *pub; /* pl_listener_publish(): its instance name is the listener's */
    pl_publish_cb pub_cb;
    void *pub_ud;
    int busy, zombie;
};

/* ---------------------------------------------------------------- session.c */

pl_session *pl__session_alloc(pl_node *node, size_t max_message, int initiator, const char *instance);
/* pl__session_expect() is in session_glue.h. An initiator without a code
 * expects exactly this responder entry: */
void pl__session_expect_peer(pl_session *c, const pl_paired_peer *p);
void pl__session_destroy(pl_session *c);
/* A new link carries c (it had none): attach it and ask for its I/O. */
void pl__session_attach(pl_session *c, pl_link *lk);
/* The arguments of a session whose links the application brings: PL_OK or PL_ERR_INVALID. */
int pl__session_args_ok(const pl_node *node, pl_role role, const char *instance, pl_session **out);
/* A session whose links the application brings (fd, channel, inproc), over
 * its first link lk, taken over on success. PL_OK or PL_ERR_NOMEM. */
int pl__session_new_on(pl_node *node, pl_link *lk, pl_role role, const char *instance, pl_session_cb cb,
                       void *userdata, pl_session **out);
/* PL_OK if c is an interrupted initiator that takes a new link from the
 * application (or the glue), else PL_ERR_STATE. */
int pl__session_can_relink(const pl_session *c);
/* ... and then it takes lk: the resuming handshake starts from the loop. */
void pl__session_relink(pl_session *c, pl_link *lk);
/* Configure the engine (unless a session goes on) and queue our Hello. */
int pl__session_start(pl_session *c);
/* Start the handshake if it has not begun. Returns 0 if that failed (c ended). */
int pl__session_start_if_idle(pl_session *c);
/* Bytes from the link. Returns 0 if c ended. */
int pl__session_input(pl_session *c, const uint8_t *buf, size_t n);
/* Bytes a link keeps for c (a pipe's buffer), a read's worth at a time,
 * until c holds as much as its application may leave it; the rest waits
 * in in. Returns 0 if c ended or lk moved to the session it resumes. */
int pl__session_feed(pl_session *c, const pl_link *lk, pl_buf *in);
/* The link's input ended (the peer closed it). */
void pl__session_input_end(pl_session *c);
/* n bytes of the engine's output were written. Returns 0 if c ended. */
int pl__session_wrote(pl_session *c, size_t n);
/* The link failed: interrupt the session if it can go on, else end it. */
void pl__session_fail(pl_session *c, int status);
/* End the session with status (a listener's handshake goes silently). */
void pl__session_close(pl_session *c, int status);
/* Ask the link for the I/O the engine needs, and arm the session's timer. */
void pl__session_update_interest(pl_session *c);
/* A new link continues the interrupted session s: probing restarts, the
 * application hears PL_SESSION_RESUMED and PL_SESSION_ACKED. Returns 0 if s is gone or closed. */
int pl__session_resumed(pl_session *s);
/* The session holds as much of the peer's input as it may: stop reading. */
int pl__session_input_full(const pl_session *c);
/* Call the application; returns 0 if c was freed during the call. */
int pl__session_emit(pl_session *c, pl_session_event ev, int status, const void *data, size_t len);
int64_t pl__now_ms(void);
void pl__free_timeout(const pl_poll *poll, pl_timeout **t);

/* ---------------------------------------------------------------- listener.c */

/* A link reached l: run the responder's handshake on a new session it owns
 * until it opens (accepted, or continuing an interrupted session). On
 * error the link is closed. */
int pl__listener_take(pl_listener *l, pl_link *lk);
void pl__listener_unlink(pl_session *c);
void pl__listener_destroy(pl_listener *l);
void pl__listener_news(pl_listener *l);
/* A handshake of l (c->listener) got its first Hello: the deadline
 * becomes the whole handshake's. Returns 0 if c ended. */
int pl__listener_heard(pl_session *c);
/* The engine's pairing hooks for a handshake of c->listener: the window,
 * the per-source pauses and the attempt deadline around pl__pairing_begin
 * and pl__pairing_end, and the news. */
int pl__listener_pair_begin(pl_session *c, const char **code);
/* Initiator: it will pair (a code or a secret was set), not reconnect. */
static inline int pl__session_pairs(const pl_session *c) { return c->code[0] || c->secret_len; }
void pl__listener_pair_end(pl_session *c, int result);
/* Has the peer of a handshake not sent its Hello yet? */
static inline int pl__silent(const pl_session *c) { return c->eng.state <= PL_HS_HELLO; }
int pl__listener_alloc(pl_node *node, pl_accept_cb cb, void *userdata, pl_listener **out);

/* ---------------------------------------------------------------- node.c */

void pl__node_add(pl_node *n, pl_session *c);
void pl__node_remove(pl_node *n, pl_session *c);
void pl__node_add_listener(pl_node *n, pl_listener *l);
void pl__node_remove_listener(pl_node *n, pl_listener *l);
/* Engine hooks: a session to continue (8.6); a new session to admit (8.8). */
const pl_stream *pl__find_session(void *ctx, const uint8_t id[PL_SESSION_ID_SIZE], const uint8_t peer_id[32]);
int pl__admit(void *ctx, const uint8_t peer_id[32]);
/* c's handshake opened as a resumption of c->resume_of: the session takes c's link and engine. */
void pl__resume_into(pl_session *c, const uint8_t *rest, size_t n);
/* Our dial lost a simultaneous dial while in its handshake: give it up. */
void pl__dup_give_up(pl_session *c);

/* ---------------------------------------------------------------- backends/posix/tcp.c */

int pl__set_nonblock(int fd);
/* pl_connect() over TCP to the service's addresses (Happy Eyeballs). */
int pl__tcp_connect(pl_node *node, const pl_service *svc, int timeout_ms, pl_session_cb cb, void *userdata,
                    pl_session **out);
/* Close a listener's TCP socket, if it has one. */
void pl__tcp_unlisten(pl_listener *l);

#endif
