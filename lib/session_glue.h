/* SPDX-License-Identifier: ISC */
/*
 * What a transport glue inside the library (lib/backends/apple/chan.c) may do with
 * a session beyond the public API. Free of the core's headers, so that
 * platform code compiles against a bare SDK (scripts/apple-typecheck).
 * Not installed.
 */
#ifndef PL_SESSION_GLUE_H
#define PL_SESSION_GLUE_H

#include <peerlink/session.h>

/* The handshake (or connecting plus handshake) must end within ms, else
 * the link breaks with PL_ERR_TIMEOUT. PL_OK or PL_ERR_NOMEM. */
int pl__session_set_deadline(pl_session *c, int ms);

/* An initiator without a code: the responder it expects is the one stored
 * under its instance name, else the one whose discovery hint txt carries
 * (may be NULL); none if neither (then it needs a code). Call before the
 * handshake starts. Sets has_target, target_id and peer_stored. */
void pl__session_expect(pl_session *c, const pl_txt *txt);

/*
 * A dialler: what gives the dialling side of a session its links - the
 * library's TCP dialler (Happy Eyeballs over a service's addresses,
 * backends/posix/tcp.c) or Network.framework's (backends/apple). The
 * session's policy says when to dial (at once after a break, then
 * backing off); the dialler says how.
 */
typedef struct pl_dialer_ops {
    const char *kind;
    /* Start a new link for the interrupted session c (any link it had is
     * gone). The link comes later: pl_session_attach_channel() for a
     * dialler whose attaches is set, the session's own attach otherwise.
     * PL_OK, or an error: the next try backs off (or the session ends,
     * if the error is not one it outlives). */
    int (*dial)(void *ctx, pl_session *c);
    /* Stop the attempts under way; may be NULL. */
    void (*stop)(void *ctx, pl_session *c);
    /* Release ctx: the session needs no more links. May be NULL. */
    void (*free)(void *ctx);
    /* Its links arrive through pl_session_attach_channel(). */
    int attaches;
} pl_dialer_ops;

/* c's links come from dialler ops (ctx is released with ops->free when c
 * ends). The session becomes resumable as pl_connect()'s are (30 s,
 * keepalive 5 s). */
void pl__session_set_dialer(pl_session *c, const pl_dialer_ops *ops, void *ctx);
/* Close c's link, if any (the session stays). */
void pl__session_drop_link(pl_session *c);
/* The pipe stays the caller's: closing its link will not call ops.close. */
void pl__channel_abandon(pl_channel *ch);
/* The loop the listener runs on (its node's). */
const pl_poll *pl__listener_poll(const pl_listener *l);

#endif
