/*
 * peerlink — framed message connections over TCP.
 *
 * A pl_conn carries whole messages (any bytes, up to a maximum size)
 * in both directions, each direction ending on its own, like a TCP
 * stream with half-close but message-oriented. The wire format is in
 * docs/PROTOCOL.md.
 *
 * Callback rules: callbacks run only from inside the pl_poll loop the
 * object was created with, never from inside a constructor; data
 * handed to a callback is borrowed for the call; an object may be
 * freed from inside its own callback.
 * Threading: not thread-safe; use every object from the loop's thread.
 */
#ifndef PEERLINK_CONN_H
#define PEERLINK_CONN_H

#include <peerlink/common.h>
#include <peerlink/discovery.h>
#include <peerlink/poll.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Default largest message accepted from a peer: 1 MiB. */
#define PL_DEFAULT_MAX_MESSAGE (1024u * 1024u)
/** Hard ceiling of the configurable maximum: 64 MiB. */
#define PL_MAX_MESSAGE_LIMIT (64u * 1024u * 1024u)

/** PL_DEFAULT_MAX_MESSAGE as a function, for bindings. */
PL_EXPORT size_t pl_default_max_message(void);
/** PL_MAX_MESSAGE_LIMIT as a function, for bindings. */
PL_EXPORT size_t pl_max_message_limit(void);

typedef struct pl_conn pl_conn;
typedef struct pl_listener pl_listener;

typedef enum pl_conn_event {
    PL_CONN_OPEN = 0,     /**< the protocol handshake is done */
    PL_CONN_MESSAGE = 1,  /**< data/len hold one complete message (borrowed) */
    PL_CONN_PEER_EOF = 2, /**< the peer will send no more messages */
    PL_CONN_DRAINED = 3,  /**< everything queued by pl_conn_send() was handed to the kernel */
    PL_CONN_CLOSED = 4    /**< the connection is over: status PL_OK if both directions ended cleanly, else the error */
} pl_conn_event;

/** data and len are set for PL_CONN_MESSAGE only; status for PL_CONN_CLOSED only. */
typedef void (*pl_conn_cb)(pl_conn *c, pl_conn_event ev, int status, const void *data, size_t len,
                           void *userdata);

/**
 * Connect to a service found by a browser. Its addresses are copied
 * and tried in turn, IPv6 and IPv4 interleaved, a new attempt starting
 * every 250 ms while earlier ones are pending (Happy Eyeballs, RFC
 * 8305); the first to connect wins. If all fail, PL_CONN_CLOSED comes
 * with PL_ERR_CONNECT, or PL_ERR_TIMEOUT after timeout_ms (<= 0: 10 s).
 * Returns PL_OK with *out set, or PL_ERR_INVALID (no address, port 0) /
 * PL_ERR_NOMEM with *out untouched.
 */
PL_EXPORT int pl_connect(const pl_poll *poll, const pl_service *svc, int timeout_ms, pl_conn_cb cb,
                         void *userdata, pl_conn **out);

/**
 * Set the largest message this side accepts (default
 * PL_DEFAULT_MAX_MESSAGE, at most PL_MAX_MESSAGE_LIMIT). A larger
 * message from the peer closes the connection with PL_ERR_TOO_LARGE
 * before anything is allocated for it. Call before the handshake ends
 * (right after pl_connect(), or in the accept callback) so that the
 * peer learns it. PL_OK, PL_ERR_INVALID or PL_ERR_STATE.
 */
PL_EXPORT int pl_conn_set_max_message(pl_conn *c, size_t max);

/** Replace the callback and its userdata. */
PL_EXPORT void pl_conn_set_callback(pl_conn *c, pl_conn_cb cb, void *userdata);

/**
 * Queue a message (copied). Messages sent before PL_CONN_OPEN wait for
 * it. Returns PL_OK; PL_ERR_TOO_LARGE if len exceeds what the peer
 * accepts or PL_MAX_MESSAGE_LIMIT. The peer's maximum is known only
 * once open: a message queued before that and larger than the peer
 * accepts makes the peer close the connection (PL_ERR_TOO_LARGE on its
 * side, PL_ERR_CLOSED on this one), so wait for PL_CONN_OPEN before
 * sending messages over PL_DEFAULT_MAX_MESSAGE. PL_ERR_STATE after
 * pl_conn_shutdown() or once closed; PL_ERR_NOMEM. Nothing is queued on
 * error. Memory grows with what is queued: use pl_conn_pending() and
 * PL_CONN_DRAINED to bound it.
 */
PL_EXPORT int pl_conn_send(pl_conn *c, const void *data, size_t len);

/** Bytes queued and not yet handed to the kernel. */
PL_EXPORT size_t pl_conn_pending(const pl_conn *c);

/**
 * End this direction: after the queued messages the peer gets an
 * end-of-stream. Receiving continues until the peer ends too; then
 * PL_CONN_CLOSED follows with PL_OK. Idempotent. PL_OK or PL_ERR_STATE.
 */
PL_EXPORT int pl_conn_shutdown(pl_conn *c);

/**
 * Describe the peer's address ("192.0.2.1:4242", "[fe80::1%eth0]:4242")
 * into buf. PL_OK, PL_ERR_STATE if not connected, PL_ERR_TOO_LARGE.
 */
PL_EXPORT int pl_conn_peer_string(const pl_conn *c, char *buf, size_t cap);

/** Close at once (queued data is dropped) and free c. No callback follows. NULL is accepted. */
PL_EXPORT void pl_conn_free(pl_conn *c);

/* ------------------------------------------------------------------ */

/**
 * Called once per connection whose peer completed the handshake.
 * The callee owns c and must call pl_conn_set_callback() or
 * pl_conn_free() before returning (the listener's maximum message size
 * already applies to it). Connections that close or stall before
 * completing the handshake never reach this callback.
 */
typedef void (*pl_accept_cb)(pl_listener *l, pl_conn *c, void *userdata);

/**
 * Listen on TCP port (0: any free port) on every address, IPv6 and
 * IPv4 (a dual-stack socket where the system allows, else two).
 * Returns PL_OK with *out set, or PL_ERR_IO (errno set, e.g.
 * EADDRINUSE) / PL_ERR_NOMEM / PL_ERR_INVALID with *out untouched.
 */
PL_EXPORT int pl_listener_new(const pl_poll *poll, uint16_t port, pl_accept_cb cb, void *userdata,
                              pl_listener **out);

/** The port actually bound (useful after port 0). */
PL_EXPORT uint16_t pl_listener_port(const pl_listener *l);

/** Largest message accepted on connections accepted from now on. As pl_conn_set_max_message(). */
PL_EXPORT int pl_listener_set_max_message(pl_listener *l, size_t max);

/**
 * Number of accepted sockets still in the handshake (not yet handed to
 * the accept callback). At most 64 are held; past that, the oldest
 * is dropped.
 */
PL_EXPORT size_t pl_listener_pending(const pl_listener *l);

/** Stop listening, close connections still in handshake, free l. Accepted pl_conn objects live on. NULL is accepted. */
PL_EXPORT void pl_listener_free(pl_listener *l);

#ifdef __cplusplus
}
#endif
#endif
