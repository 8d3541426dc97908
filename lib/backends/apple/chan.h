/* SPDX-License-Identifier: ISC */
/*
 * Sessions over a transport that reports asynchronously (on Apple: an
 * nw_connection), in plain C: the glue between a transport and the
 * project's sessions through the public API for application pipes
 * (pl_session_new_channel, pl_channel_input, pl_channel_writable,
 * pl_channel_fail) and, on the responder's side, the application's
 * generic listener (pl_listener_publish, pl_listener_add_channel): its pairing
 * policy, its handshake deadline and cap, and resumption - an inbound
 * connection that continues an interrupted session (a Linux dialler
 * coming back) resumes it instead of starting a new one. No protocol
 * logic: the session engine and the listener do all of that.
 *
 * Everything here runs on the loop thread. The transport implements
 * pl_chan_io and reports through the pl__chan_* functions, from the
 * loop (on Apple, after the hop from the dispatch queue). Once the glue
 * has called ops->finish or ops->cancel (exactly once per transport),
 * it expects no more reports except pl__chan_io_release(), and the
 * transport may stop using the loop at once.
 *
 * Only an established transport ever becomes a session: a responder's
 * session is created when its transport reports ready, so an inbound
 * connection that fails before that (or a racing attempt inside
 * Network.framework, which never reports ready) never reaches the
 * engine, never starts a pairing and is never counted as a failed
 * attempt.
 */
#ifndef PL_APPLE_CHAN_H
#define PL_APPLE_CHAN_H

#include "internal.h"

typedef struct pl_chan_io {
    /* Start sending len bytes (copied); completion comes with pl__chan_sent(). PL_OK or an error. */
    int (*send)(void *io, const uint8_t *data, size_t len);
    /* Ask for the next chunk of input (after ready, and after each pl__chan_input with len > 0). */
    void (*receive)(void *io);
    /* Close gracefully: after the sends started so far are done, end the stream and cancel. */
    void (*finish)(void *io);
    /* Close now. */
    void (*cancel)(void *io);
    /* The glue is done with io (ch is being destroyed): free it. Any thread. */
    void (*release)(void *io);
} pl_chan_io;

typedef struct pl_chan pl_chan;
typedef struct pl_chan_acceptor pl_chan_acceptor;

/* Bytes handed to the transport and not yet confirmed sent, at most. */
#define PL_CHAN_WINDOW (256u * 1024u)
/* Connecting plus handshake, when the caller gives no timeout. */
#define PL_CHAN_DEFAULT_TIMEOUT_MS 10000
/* An accepted connection's handshake. */
#define PL_CHAN_ACCEPT_TIMEOUT_MS 10000

/*
 * The initiator's side: a session over io, to the responder named
 * instance, with the application's cb/userdata. timeout_ms (<= 0: 10 s)
 * bounds connecting plus each handshake; a transport that fails before
 * ready ends the first link with its status (PL_ERR_CONNECT,
 * PL_ERR_TIMEOUT, ...). With redial, the session resumes as a
 * pl_connect() one does: after a break the session's policy calls
 * redial(target, d) (at once, then backing off) to start a new
 * transport for the same target and give it to pl__chan_redialed();
 * target is freed with target_free when the session goes. On PL_OK *conn
 * is the session (the application's) and *out the glue of the first
 * transport (its reporting handle). On error nothing was created and io
 * and target are untouched.
 */
typedef struct pl_chan_dialer pl_chan_dialer;
typedef int (*pl_chan_redial_fn)(void *target, pl_chan_dialer *d);
int pl__chan_connect(pl_node *node, const pl_chan_io *ops, void *io, const char *instance,
                     int timeout_ms, pl_session_cb cb, void *userdata, pl_chan_redial_fn redial, void *target,
                     void (*target_free)(void *target), pl_chan **out, pl_session **conn);
/* From redial: io, a new transport (same ops), carries the interrupted
 * session on once ready. PL_OK with *out its glue; on error io is untouched. */
int pl__chan_redialed(pl_chan_dialer *d, void *io, pl_chan **out);

/* ---------------------------------------------------------------- transport → glue */

void pl__chan_ready(pl_chan *ch);
/* Input from the peer; len 0: the peer ended the stream. */
void pl__chan_input(pl_chan *ch, const uint8_t *data, size_t len);
/* A send of n bytes completed (status PL_OK) or failed. */
void pl__chan_sent(pl_chan *ch, size_t n, int status);
/* The transport failed (status says why) or was refused. */
void pl__chan_failed(pl_chan *ch, int status);
/*
 * The transport will report nothing more: drop its reference to ch.
 * Any thread (it is the one call a transport may make off the loop,
 * e.g. from a dropped event). May destroy ch, which then calls
 * ops->release(io) on this thread.
 */
void pl__chan_io_release(pl_chan *ch);

/* ---------------------------------------------------------------- the responder's side */

/* Inbound transports for l (borrowed: free the acceptor first): each
 * becomes one of l's links once ready, under l's pairing policy, deadline
 * and instance name; l's accept callback gets the sessions. */
int pl__chan_acceptor_new(pl_listener *l, pl_chan_acceptor **out);
/* Transports not ready yet (the listener's own handshakes not included). */
size_t pl__chan_acceptor_pending(const pl_chan_acceptor *a);
/* Drop every transport not ready yet (silently) and free a; what became
 * the listener's links stays the listener's. */
void pl__chan_acceptor_free(pl_chan_acceptor *a);

/*
 * An inbound transport: it becomes a link of the acceptor's listener
 * when it reports ready; the listener hands over a new session when the
 * handshake is done, or continues an interrupted one. Before that it ends
 * silently (failure, timeout, or more than PL_CHAN_MAX_PENDING waiting
 * to be ready; then the listener's own deadline and cap apply).
 * On error io is untouched.
 */
#define PL_CHAN_MAX_PENDING 64
int pl__chan_accept(pl_chan_acceptor *a, const pl_chan_io *ops, void *io, pl_chan **out);

#endif
