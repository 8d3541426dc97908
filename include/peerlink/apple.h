/*
 * peerlink — Network.framework transport (iOS, tvOS, macOS).
 *
 * On Apple platforms the "apple" discovery backend browses and
 * publishes with Network.framework (nw_browser, nw_listener). Its
 * browse results name a Bonjour service (name, type, domain) and carry
 * its TXT record, but no port and no addresses: Network.framework
 * resolves the service itself when it connects, racing every address
 * and interface it knows, peer-to-peer (AWDL) included. So on Apple:
 *
 *  - connect with pl_apple_connect(), not pl_connect();
 *  - accept with pl_apple_listener_new() on the publication, not
 *    pl_listener_new(): on Network.framework the listener that accepts
 *    is the one that advertises (pl_publish's port is the port it
 *    listens on; 0 lets the system choose).
 *
 * Sessions are ordinary pl_session objects (session.h) over a byte channel:
 * the same protocol, byte for byte, as on every other platform.
 * Callback and threading rules are those of session.h and discovery.h:
 * Network.framework calls back on a dispatch queue of the library's,
 * and the library carries every event to the pl_poll loop; nothing is
 * called back on any other thread.
 *
 * On other platforms these functions exist and return PL_ERR_UNSUPPORTED
 * (pl_apple_local_network_denied returns 0), so that portable code
 * links everywhere.
 */
#ifndef PEERLINK_APPLE_H
#define PEERLINK_APPLE_H

#include <peerlink/common.h>
#include <peerlink/session.h>
#include <peerlink/discovery.h>
#include <peerlink/keystore.h>
#include <peerlink/poll.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * Connect with Network.framework. svc is usually a browse result of the
 * "apple" backend: its name, type and domain name the Bonjour service,
 * which Network.framework resolves and connects to. A service without
 * a type is reached at its first address (or its host) and port.
 * Peer-to-peer links (AWDL) are allowed. Otherwise as pl_connect():
 * pairing with pl_session_set_code() before returning to the loop, and
 * PL_SESSION_CLOSED before PL_SESSION_OPEN says why: PL_ERR_CONNECT (refused,
 * unreachable), PL_ERR_DENIED (the user denied local network access:
 * see pl_apple_local_network_denied()), PL_ERR_TIMEOUT after timeout_ms (<= 0: 10 s) for connecting and the
 * handshake together, or the session's error. Once open, the session
 * resumes as a pl_connect() one does: when the connection breaks, a new
 * nw_connection to the same service is made at once, then backing off
 * (pl_session_set_resume(), default 30 s); PL_SESSION_INTERRUPTED and
 * PL_SESSION_RESUMED report it.
 * Returns PL_OK with *out set, PL_ERR_INVALID, PL_ERR_NOMEM, or
 * PL_ERR_UNSUPPORTED (not an Apple build); *out is untouched on error.
 */
PL_EXPORT int pl_apple_connect(pl_node *node, const pl_service *svc, int timeout_ms, pl_session_cb cb,
                               void *userdata, pl_session **out);

typedef struct pl_apple_listener pl_apple_listener;

/**
 * Called once per accepted connection whose peer completed the
 * handshake and started a new session. The callee owns c and must call
 * pl_session_set_callback() or pl_session_free() before returning.
 * Connections that fail, or stall for 10 s, before completing the
 * handshake never reach it; nor do those that continue an interrupted
 * session (PL_SESSION_RESUMED comes on that session instead).
 */
typedef void (*pl_apple_accept_cb)(pl_apple_listener *l, pl_session *c, void *userdata);

/**
 * Accept sessions on the Network.framework listener that carries
 * publication p (made with pl_publish() on the "apple" backend). The
 * handshake is bound to the publication's current name, renames
 * included. Only paired peers get in until pl_apple_listener_set_code().
 * Each accepted connection is a link of a generic pl_listener: accepted
 * sessions resume when their initiator comes back within 30 s (a
 * pl_connect() dialler does so by itself), and pairing attempts draw on
 * the keystore's one budget.
 * p must outlive l (freeing p stops l accepting; free l as usual).
 * Returns PL_OK with *out set; PL_ERR_UNSUPPORTED if p is not on the
 * "apple" backend (or not an Apple build); PL_ERR_STATE if p already
 * has a listener; PL_ERR_INVALID; PL_ERR_NOMEM.
 */
PL_EXPORT int pl_apple_listener_new(pl_publication *p, pl_node *node, pl_apple_accept_cb cb, void *userdata,
                                    pl_apple_listener **out);

/**
 * Accept pairing with this code (1..32 printable ASCII, copied), or
 * stop (NULL). Failed attempts count in the keystore as for any
 * responder session (see pl_session_set_code()). PL_OK or PL_ERR_INVALID.
 */
PL_EXPORT int pl_apple_listener_set_code(pl_apple_listener *l, const char *code);

/** Connections not yet ready or still in handshake (at most 64 of each; past that the oldest is dropped). */
PL_EXPORT size_t pl_apple_listener_pending(const pl_apple_listener *l);

/** Stop accepting; connections in handshake are dropped; accepted ones live on. NULL is accepted. */
PL_EXPORT void pl_apple_listener_free(pl_apple_listener *l);

/**
 * 1 if the last word from Network.framework on local network access,
 * in this process, was a refusal: the user denied it (the privacy
 * prompt, or Settings > Privacy > Local Network). The refusal itself
 * was reported as PL_BROWSE_FAILED / PL_PUBLISH_FAILED, or PL_SESSION_CLOSED,
 * with PL_ERR_DENIED; use this to tell the user where to allow it. Back to 0 once a browser, listener
 * or connection gets going. Any thread.
 */
PL_EXPORT int pl_apple_local_network_denied(void);

/* ------------------------------------------------------------------ */
/* An event loop on Grand Central Dispatch                              */
/* ------------------------------------------------------------------ */

/**
 * A pl_poll whose watches are dispatch sources and whose timers are
 * dispatch timers, all on one serial dispatch queue of its own: every
 * peerlink callback of objects created with it runs on that queue, one
 * at a time, which is what "the loop's thread" means for them. Use
 * every such object only from code running on that queue (see
 * pl_apple_poll_async()). This is how Swift and Objective-C apps run
 * peerlink without a thread of their own (bindings/swift does).
 */
typedef struct pl_apple_poll pl_apple_poll;

/** A new GCD loop into *out. PL_OK, PL_ERR_NOMEM, PL_ERR_UNSUPPORTED (not Apple). */
PL_EXPORT int pl_apple_poll_new(pl_apple_poll **out);

/** Its vtable, for pl_discovery_new(), pl_apple_connect(), ... Valid until pl_apple_poll_free(). */
PL_EXPORT const pl_poll *pl_apple_poll_get(pl_apple_poll *p);

/** Run fn(ctx) on the loop's queue, later (never inside this call). Any thread. */
PL_EXPORT void pl_apple_poll_async(pl_apple_poll *p, void (*fn)(void *ctx), void *ctx);

/**
 * Free the loop. Every object created on it must be freed first, from
 * the queue; call this from the queue too (e.g. inside
 * pl_apple_poll_async). NULL is accepted.
 */
PL_EXPORT void pl_apple_poll_free(pl_apple_poll *p);

#ifdef __cplusplus
}
#endif
#endif
