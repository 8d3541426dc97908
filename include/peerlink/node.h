/* SPDX-License-Identifier: ISC */
/*
 * peerlink — the node: this device as one peer.
 *
 * A node ties together what every session and listener of one device
 * shares: the event loop they run on (pl_poll), the identity and paired
 * peers (pl_keystore), and the live sessions themselves. A peer that
 * reconnects to continue an interrupted session is matched to it among
 * the node's sessions, whichever of the node's listeners and whatever
 * kind of link it comes through; when two peers dial each other at
 * once, the rule that keeps one session (docs/PROTOCOL.md section 8.8)
 * looks at the node's dials. Create one node per identity and give it
 * to pl_connect(), pl_listener_new() and the byte-session constructors.
 *
 * Pairing attempt limits are wider than a node: they belong to the
 * keystore's storage (see pl_listener_set_pairing()).
 *
 * Threading: not thread-safe; use a node and everything made with it
 * from the loop's thread.
 */
#ifndef PEERLINK_NODE_H
#define PEERLINK_NODE_H

#include <peerlink/common.h>
#include <peerlink/keystore.h>
#include <peerlink/poll.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct pl_node pl_node;

/**
 * A node running on poll with the identity and paired peers of ks. Both
 * are borrowed and must outlive the node. Returns PL_OK with *out set,
 * or PL_ERR_INVALID (a NULL argument) / PL_ERR_NOMEM with *out untouched.
 */
PL_EXPORT int pl_node_new(const pl_poll *poll, pl_keystore *ks, pl_node **out);

/** The keystore the node was made with (borrowed), or NULL for a NULL node. */
PL_EXPORT pl_keystore *pl_node_keystore(const pl_node *n);

/** The event loop the node was made with (borrowed), or NULL for a NULL node. */
PL_EXPORT const pl_poll *pl_node_poll(const pl_node *n);

/**
 * Set the display name the node's sessions send in their Identity
 * (docs/PROTOCOL.md section 6.7) when they dial, and when they answer
 * without an instance name (a byte session): what a responder shows for
 * this device and stores it under when it pairs. A name is a label, never
 * a credential: peers find this device by its id. name: UTF-8, at most
 * 63 bytes, copied; NULL or "" restores the default, the host
 * name (gethostname()). Applies to handshakes that begin afterwards.
 * PL_OK or PL_ERR_INVALID (NULL node, name too long or not UTF-8).
 */
PL_EXPORT int pl_node_set_name(pl_node *n, const char *name);

/**
 * Free the node, and with it every session and listener still made with
 * it, as if each were freed with pl_session_free() and
 * pl_listener_free() (open sessions are aborted; no callback follows);
 * their handles become invalid. Not from inside a callback of the
 * node's sessions or listeners. NULL is accepted.
 */
PL_EXPORT void pl_node_free(pl_node *n);

#ifdef __cplusplus
}
#endif
#endif
