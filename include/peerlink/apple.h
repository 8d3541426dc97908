/* SPDX-License-Identifier: ISC */
/*
 * peerlink — Network.framework transport (iOS, tvOS, macOS).
 *
 * On Apple platforms the "apple" discovery backend browses and
 * publishes with Network.framework (nw_browser, nw_listener). Its
 * browse results name a Bonjour service (name, type, domain) and carry
 * its TXT record, but no port and no addresses: Network.framework
 * resolves the service itself when it connects, racing every address
 * and interface it knows, peer-to-peer (AWDL) included. Portable code
 * does not branch on the platform:
 *
 *  - pl_connect() connects such a browse result with Network.framework
 *    (pl_apple_connect(), below);
 *  - pl_listener_publish() through the "apple" backend makes the
 *    publication's nw_listener (on Network.framework, the listener that
 *    accepts is the one that advertises, on a port of the system's
 *    choosing) hand every inbound connection to the pl_listener, under
 *    its pairing policy, instance name and accept callback; the
 *    listener's own TCP socket closes (pl_listener_port() is then 0).
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
