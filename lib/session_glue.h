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
/* c's links come from a dialler of the library's (not TCP): redial(ctx, c)
 * gives the interrupted session a new link (pl_session_attach_channel) or
 * returns an error (the next try backs off); ctx is freed with c. The
 * session becomes resumable as pl_connect()'s are (30 s, keepalive 5 s). */
void pl__session_set_redial(pl_session *c, int (*redial)(void *ctx, pl_session *c), void *ctx,
                            void (*ctx_free)(void *ctx));
/* Close c's link, if any (the session stays). */
void pl__session_drop_link(pl_session *c);
/* The pipe stays the caller's: closing its link will not call ops.close. */
void pl__channel_abandon(pl_channel *ch);
/* The loop the listener runs on (its node's). */
const pl_poll *pl__listener_poll(const pl_listener *l);

#endif
