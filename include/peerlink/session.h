/* SPDX-License-Identifier: ISC */
/*
 * peerlink — authenticated, encrypted message sessions, over TCP or
 * over any byte pipe the application provides.
 *
 * A pl_session carries whole messages (any bytes, up to a maximum size)
 * in both directions, each direction ending on its own, like a TCP
 * stream with half-close but message-oriented. Before any message
 * flows, the two sides either pair (prove they know the same short
 * code, with CPace, and store each other's identity key) or, if they
 * paired before, authenticate each other with their stored identity
 * keys and a fresh key exchange. Everything after the handshake is
 * encrypted; nothing of the application's is ever sent in clear.
 * The wire format is in docs/PROTOCOL.md.
 *
 * Sessions outlive connections. Every message is numbered, and the
 * peer acknowledges what its application has received; until then the
 * sender keeps it. When the link breaks (a cut, a reset, a tampered
 * record, a silent peer), a session made with pl_connect() or accepted
 * by a pl_listener is not closed but interrupted (PL_SESSION_INTERRUPTED):
 * the side that dialled reconnects - pl_connect() by itself, to the
 * service's addresses; a session over the application's descriptors or
 * pipes through the application (pl_session_attach_channel()) - with the
 * stored identity keys, proves that it holds the session's secret, and
 * both sides send again what the other has not acknowledged
 * (PL_SESSION_RESUMED). Any kind of link may continue a session that began
 * on another. The application sees each message once and in order.
 * pl_session_set_resume() bounds how long a session may stay interrupted;
 * sessions the application creates over a descriptor or a pipe are not
 * resumed unless it sets it. See docs/PROTOCOL.md section 8.
 *
 * Callback rules: callbacks run only from inside the pl_poll loop the
 * object was created with, never from inside a constructor; data
 * handed to a callback is borrowed for the call; an object may be
 * freed from inside its own callback.
 * Threading: not thread-safe; use every object from the loop's thread.
 */
#ifndef PEERLINK_SESSION_H
#define PEERLINK_SESSION_H

#include <peerlink/common.h>
#include <peerlink/discovery.h>
#include <peerlink/keystore.h>
#include <peerlink/node.h>
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

typedef struct pl_session pl_session;
typedef struct pl_listener pl_listener;

typedef enum pl_session_event {
    PL_SESSION_OPEN = 0,     /**< the handshake is done: the peer is authenticated (see pl_session_peer_id()) */
    PL_SESSION_MESSAGE = 1,  /**< data/len hold one complete message (borrowed) */
    PL_SESSION_PEER_EOF = 2, /**< the peer will send no more messages */
    PL_SESSION_DRAINED = 3,  /**< everything queued by pl_session_send() was handed to the kernel */
    PL_SESSION_CLOSED = 4,   /**< the session is over: status PL_OK if both directions ended and each side
                               acknowledged the other's end-of-stream (everything was delivered; or, when
                               the peer lost the session after it, everything but our end-of-stream was
                               acknowledged and the peer's end-of-stream had arrived), else the
                               error: PL_ERR_WRONG_CODE, PL_ERR_NOT_PAIRED, PL_ERR_LOCKED, PL_ERR_BUSY during
                               pairing; PL_ERR_DUPLICATE (simultaneous dial, see pl_connect());
                               PL_ERR_ABORTED (the peer freed the session); PL_ERR_TIMEOUT (interrupted
                               longer than pl_session_set_resume() allows); for a session that is not resumed,
                               PL_ERR_AUTH for a tampered, replayed, reordered or forged record and
                               PL_ERR_CLOSED for a connection cut before both sides ended; ... */
    PL_SESSION_INTERRUPTED = 5, /**< the link broke (status says why); the session waits for a new one.
                                  pl_session_send() still queues (within the send limit). Reported once
                                  per interruption, or, for an initiator whose links the application
                                  brings (pl_session_new_fd(), pl_session_new_channel()), after every
                                  failed link: each asks for a new one (pl_session_attach_channel()). */
    PL_SESSION_RESUMED = 6,  /**< a new link carries the session on; what the peer had not acknowledged is sent
                               again (without a PL_SESSION_INTERRUPTED first if the peer noticed the broken
                               link before this side did). status PL_OK; or PL_ERR_PEER_RESET: the peer
                               no longer knew the session
                               (it restarted), so a new session with it carries the messages it had not
                               acknowledged, and the messages of the old one it had received but not yet
                               acknowledged may reach its application a second time. */
    PL_SESSION_ACKED = 7,    /**< len = how many of our messages (in pl_session_send() order) the peer's
                               application has received in all; messages 0 .. len-1 are delivered and
                               their memory is released. Only ever grows. */
    PL_SESSION_DELIVERED = 8, /**< after pl_session_shutdown(): the peer's application has received
                               everything this side sent, its end-of-stream included
                               (pl_session_delivered() is now 1). Once per session. Freeing the
                               session from here loses nothing of ours, and the peer sees its
                               PL_SESSION_PEER_EOF before the PL_ERR_ABORTED: how to end without
                               waiting for the peer's end (plcat -N). */
    PL_SESSION_PEER_TXT = 9  /**< the peer sent metadata (its pl_session_set_txt()) that differs from what it
                               sent before in this session: data/len hold the TXT record in RFC 6763 wire
                               format (borrowed); pl_session_peer_txt() decodes it. */
} pl_session_event;

/** data and len are set for PL_SESSION_MESSAGE and PL_SESSION_PEER_TXT (len also for PL_SESSION_ACKED); status for
 *  PL_SESSION_CLOSED, PL_SESSION_INTERRUPTED and PL_SESSION_RESUMED. */
typedef void (*pl_session_cb)(pl_session *c, pl_session_event ev, int status, const void *data, size_t len,
                           void *userdata);

/**
 * Connect to a service found by a browser. On Apple platforms a browse
 * result of the "apple" backend (a Bonjour service with no address) is
 * connected with Network.framework (pl_apple_connect()), so portable
 * code does not branch on the platform. Otherwise its addresses are copied
 * and tried in turn, IPv6 and IPv4 interleaved, a new attempt starting
 * every 250 ms while earlier ones are pending (Happy Eyeballs, RFC
 * 8305); the first to connect wins. If all fail, PL_SESSION_CLOSED comes
 * with PL_ERR_CONNECT, or PL_ERR_TIMEOUT after timeout_ms (<= 0: 10 s)
 * for connecting and the handshake together.
 *
 * Once open, the session is resumable (pl_session_set_resume(), default
 * 30 s): if the link breaks, this side reconnects to the same addresses
 * (at once, then backing off to every 2 s), or where discovery finds it
 * now (pl_session_set_discovery(), pl_session_set_addresses()).
 *
 * If both peers dial each other at once (each has a pl_listener and
 * dials the other with stored keys, its listener and its dials made with
 * one pl_node), one session survives: the one dialled
 * by the peer whose id is smaller. The other connection ends with
 * PL_ERR_DUPLICATE (the peer is sent an Abort if it had opened), and the
 * surviving one arrives at the listener's accept callback. So, while a
 * session that this side dialled to a peer with a larger id lives (open
 * or interrupted), that peer cannot open another session to this side:
 * its dials end with PL_ERR_DUPLICATE; it has the session already.
 *
 * The node's keystore holds our identity and the peers we paired with.
 * The session belongs to node (pl_node_free() frees it). If a responder
 * was paired under svc->name (compared as DNS-SD compares names), the
 * connection expects its stored key; if none was, but svc->txt carries the
 * discovery hint of a stored responder (docs/PROTOCOL.md section 2.1: it
 * was renamed), that responder's key; pl_session_peer_stored_name() then
 * says which. Names that peers which paired with this device's listeners
 * gave are never used here. Otherwise, or to pair anew, call
 * pl_session_set_code() before returning to the loop. With neither, the
 * connection ends with PL_ERR_NOT_PAIRED (also when the responder has
 * forgotten us or its identity changed): ask the user for the code and
 * connect again with it.
 * Returns PL_OK with *out set, or PL_ERR_INVALID (no node, no address,
 * port 0) / PL_ERR_NOMEM with *out untouched.
 */
PL_EXPORT int pl_connect(pl_node *node, const pl_service *svc, int timeout_ms, pl_session_cb cb, void *userdata,
                         pl_session **out);

/**
 * Connect to the instance called name of service type (e.g.
 * "_peerlink._tcp"), finding it with d: browse type, take the first
 * PL_BROWSE_ADD or PL_BROWSE_UPDATE whose name matches name as DNS-SD
 * names match (pl_service_name_equal(): ASCII letters case-insensitively,
 * every other byte exactly), and connect to it as pl_connect() does. The
 * handshake is bound to the name as found on the network ("Kitchen" when
 * "kitchen" was asked for), and the stored identity of the responder paired
 * under that name is expected, no other. Without a code, that responder is
 * also found under another name (renamed "Kitchen #2" by a name conflict)
 * by the discovery hint it publishes (docs/PROTOCOL.md section 2.1); an
 * instance called name whose hint says it is another peer is dialled only
 * once discovery has listed the network (PL_BROWSE_ALL_FOR_NOW) without
 * the stored one, and then refused (PL_ERR_NOT_PAIRED). The session then
 * follows the service if it moves, as with pl_session_set_discovery(c, d).
 *
 * timeout_ms (> 0; 0 or less is PL_ERR_INVALID: a name that is not there
 * would be looked for forever) bounds finding, connecting and the
 * handshake together. Not found by then: PL_SESSION_CLOSED with
 * PL_ERR_NOT_FOUND. Found: what is left of it bounds connecting and the
 * handshake, which end as pl_connect()'s (PL_ERR_TIMEOUT, PL_ERR_CONNECT,
 * ...). If browsing fails while searching, PL_SESSION_CLOSED comes with
 * the browser's status; a match with no address (a result of the "apple"
 * backend, Network.framework's, which pl_connect() hands to it) ends it
 * with PL_ERR_UNSUPPORTED. A match with nothing to dial (port 0, or no
 * address a socket can use) is passed over: the search goes on.
 *
 * The session is returned at once, before anything is found, and belongs
 * to node as a pl_connect() one does: set it up as one
 * (pl_session_set_code(), pl_session_set_resume(), pl_session_send(),
 * ...) before returning to the loop. While it searches,
 * pl_session_set_discovery() answers PL_ERR_STATE (PL_OK for d itself)
 * and pl_session_set_addresses() PL_ERR_STATE, as before any
 * pl_connect() session opens; pl_session_free() stops the search, and no
 * callback follows. d must outlive the session, or be unset once it is
 * open (pl_session_set_discovery(c, NULL)). Threading: node's loop thread.
 * Returns PL_OK with *out set, or PL_ERR_INVALID (NULL node, d, type,
 * name or out; name empty or over 63 bytes; type "_services._dns-sd._udp";
 * timeout_ms <= 0), PL_ERR_NOMEM, or pl_browse()'s error, with *out
 * untouched and no callback.
 */
PL_EXPORT int pl_connect_by_name(pl_node *node, pl_discovery *d, const char *type, const char *name,
                                 int timeout_ms, pl_session_cb cb, void *userdata, pl_session **out);

/**
 * Pair using code (copied; wiped after use) instead of a stored
 * identity. Initiator: the code the user typed or was given. Responder
 * of a byte-channel session (pl_session_new_fd(), pl_session_new_channel()):
 * the code it accepts, under the attempt limits of the keystore (see
 * pl_listener_set_pairing()). Call before returning to the loop.
 * PL_OK, PL_ERR_INVALID (empty, longer than 32 bytes, not printable
 * ASCII) or PL_ERR_STATE (the handshake has begun).
 */
PL_EXPORT int pl_session_set_code(pl_session *c, const char *code);

/** Shortest and longest secret pl_session_set_secret() takes, in bytes. */
#define PL_PAIRING_SECRET_MIN 16
#define PL_PAIRING_SECRET_MAX 64

/**
 * Pair using a high-entropy secret that both ends got from elsewhere
 * (copied; wiped once the pairing attempt ends): a per-connection secret
 * that a Wi-Fi Aware or Bluetooth link derived for the two devices, say
 * (docs/WIFI-AWARE.md), instead of a code a person reads. Both ends set
 * the same len bytes (PL_PAIRING_SECRET_MIN..PL_PAIRING_SECRET_MAX; hash
 * a longer one down to 64 bytes first); a secret never matches a code,
 * even with the same bytes (docs/PROTOCOL.md section 6.4). Initiator:
 * any session before its handshake. Responder: a byte-channel session
 * (pl_session_new_fd(), pl_session_new_channel()); no attempt limits
 * apply, as a secret this long cannot be guessed. Replaces a code set
 * with pl_session_set_code(), and is replaced by one. Call before
 * returning to the loop. PL_OK, PL_ERR_INVALID (NULL, or len out of
 * range) or PL_ERR_STATE (the handshake has begun, or a listener's
 * session).
 */
PL_EXPORT int pl_session_set_secret(pl_session *c, const void *secret, size_t len);

/** After PL_SESSION_OPEN: the peer's identity key into id. PL_OK or PL_ERR_STATE. */
PL_EXPORT int pl_session_peer_id(const pl_session *c, uint8_t id[PL_ID_SIZE]);

/**
 * After PL_SESSION_OPEN: the display name the peer claims on this
 * connection (its Identity name: a responder's instance or device name,
 * an initiator's pl_node_set_name() or host name). A claim: any paired
 * peer can present any name on each connection, so never use it to decide
 * who the peer is; show pl_session_peer_stored_name() instead, and this
 * one only as "calls itself ...". Borrowed until the session is freed;
 * NULL before.
 */
PL_EXPORT const char *pl_session_peer_name(const pl_session *c);

/**
 * After PL_SESSION_OPEN: the name this device's keystore holds the peer
 * under (pl_paired_peer.name of the entry that authenticated it, or of the
 * one this pairing stored): for a responder this device dialled, the
 * instance name it was paired under, even if it was reached under another
 * one (docs/PROTOCOL.md section 2.1); for an initiator, the name it claimed
 * when it paired. Borrowed until the session is freed; NULL before.
 */
PL_EXPORT const char *pl_session_peer_stored_name(const pl_session *c);

/** After PL_SESSION_OPEN: 1 if this connection paired (with a code or a secret), 0 if it used stored keys. */
PL_EXPORT int pl_session_paired(const pl_session *c);

/** Which end of a byte-channel session this side is: the initiator pairs or reconnects, the responder accepts. */
typedef enum pl_role { PL_ROLE_RESPONDER = 0, PL_ROLE_INITIATOR = 1 } pl_role;

/**
 * A session over a connected, bidirectional file descriptor the
 * application opened (a socket, a BLE L2CAP or Wi-Fi Aware socket).
 * The session takes ownership of fd (closes it when its link ends).
 * instance is the name both sides bind the handshake to (the
 * responder's advertised instance name, or any name both agree on); it
 * is copied. The handshake starts from the loop.
 *
 * Such a session is not resumed unless pl_session_set_resume() says so.
 * Then, as initiator, every break of its link comes as
 * PL_SESSION_INTERRUPTED: open a new descriptor to the peer and give it
 * with pl_session_attach_fd() (or a channel, pl_session_attach_channel()).
 * As responder it resumes when the peer's new link reaches a
 * pl_listener of the same node (pl_listener_add_fd(),
 * pl_listener_add_channel(), or its TCP socket).
 * Returns PL_OK with *out set, or PL_ERR_INVALID / PL_ERR_NOMEM with
 * *out untouched (fd is then not closed).
 */
PL_EXPORT int pl_session_new_fd(pl_node *node, int fd, pl_role role, const char *instance, pl_session_cb cb,
                                void *userdata, pl_session **out);

/**
 * Interrupted initiator of a session whose links the application brings
 * (pl_session_new_fd(), pl_session_new_channel()): carry it on over a new
 * connected descriptor (taken over, as in pl_session_new_fd()). The
 * resuming handshake starts from the loop; PL_SESSION_RESUMED follows, or
 * PL_SESSION_INTERRUPTED again if this link fails too. PL_OK, PL_ERR_INVALID
 * (fd is then not taken), PL_ERR_STATE (not such a session, not
 * interrupted, or a link is attached already), PL_ERR_NOMEM.
 */
PL_EXPORT int pl_session_attach_fd(pl_session *c, int fd);

/** One byte pipe of the application's: what pl_channel_input() feeds. */
typedef struct pl_channel pl_channel;

/** A byte pipe the application moves bytes over (a Wi-Fi Aware path opened by Swift or Java code). */
typedef struct pl_channel_ops {
    /** sizeof(pl_channel_ops), set by whoever fills the table: the library reads only the members it
     *  covers, so that later versions can append members; a size below the first version's
     *  is refused with PL_ERR_INVALID. */
    size_t size;
    /** Take up to len bytes for the peer. Return how many were taken (0..len), or -1 if the pipe
     *  failed (its link breaks with PL_ERR_IO). After taking fewer than len, call
     *  pl_channel_writable() once more can be taken. Called from the loop only. */
    long (*write)(void *ctx, const uint8_t *data, size_t len);
    /** The link is over - the session ended or was freed, or this pipe broke and the session may go
     *  on over another: release the pipe. From then on the pl_channel handle is invalid. Called
     *  once, from the loop; may be NULL. */
    void (*close)(void *ctx);
    /** After pl_channel_input() returned PL_ERR_AGAIN: the session has room again; give it the
     *  refused bytes, and more. Called once per refusal, from the loop; may call pl_channel_input()
     *  at once. May be NULL (then the application retries by itself). */
    void (*input_ready)(void *ctx);
} pl_channel_ops;

/**
 * A session over an application byte pipe: peerlink hands outgoing
 * bytes to ops->write and is given incoming bytes with
 * pl_channel_input() (pl_session_channel() is the pipe's handle). ops is
 * copied. Otherwise as pl_session_new_fd(), resumption included (with
 * pl_session_attach_channel()).
 */
PL_EXPORT int pl_session_new_channel(pl_node *node, const pl_channel_ops *ops, void *ctx, pl_role role,
                                     const char *instance, pl_session_cb cb, void *userdata, pl_session **out);

/**
 * Interrupted initiator (see pl_session_attach_fd()): carry the session on
 * over a new pipe; its handle is pl_session_channel(c). ops is copied.
 * PL_OK, PL_ERR_INVALID (no ops->write), PL_ERR_STATE, PL_ERR_NOMEM.
 */
PL_EXPORT int pl_session_attach_channel(pl_session *c, const pl_channel_ops *ops, void *ctx);

/** The pipe that carries c now, or NULL (not a channel, or between links). Borrowed. */
PL_EXPORT pl_channel *pl_session_channel(const pl_session *c);

/**
 * Bytes that arrived from the peer on a pipe (copied; processed from the
 * loop). len == 0 means the pipe reached its end (always taken). Input
 * is bounded like a socket's receive buffer: while up to 64 KiB wait for
 * the loop (one chunk of any size is taken when none waits), or while
 * the session holds as much as a paused application may leave it
 * (pl_session_pause()), input is refused with PL_ERR_AGAIN and nothing is
 * taken: keep the bytes, stop reading the pipe, and give them again when
 * ops->input_ready is called. PL_OK, PL_ERR_AGAIN, PL_ERR_STATE (the
 * session is closed, or after the end or a failure), PL_ERR_INVALID,
 * PL_ERR_NOMEM.
 */
PL_EXPORT int pl_channel_input(pl_channel *ch, const void *data, size_t len);

/** The pipe can take more bytes: peerlink calls ops->write again from the loop. */
PL_EXPORT void pl_channel_writable(pl_channel *ch);

/**
 * The pipe failed (status: why, e.g. PL_ERR_CLOSED or PL_ERR_IO; a
 * value >= 0 reads PL_ERR_IO). From the loop, the link breaks: the
 * session is interrupted if it resumes, else it ends with status; then
 * ops->close is called.
 */
PL_EXPORT void pl_channel_fail(pl_channel *ch, int status);

/** pl_channel_input() on the pipe that carries c now; PL_ERR_STATE if none. */
PL_EXPORT int pl_session_channel_input(pl_session *c, const void *data, size_t len);

/** pl_channel_writable() on the pipe that carries c now. */
PL_EXPORT void pl_session_channel_writable(pl_session *c);

/**
 * Set the largest message this side accepts (default
 * PL_DEFAULT_MAX_MESSAGE, at most PL_MAX_MESSAGE_LIMIT). A larger
 * message from the peer closes the connection with PL_ERR_TOO_LARGE
 * before anything is allocated for it. Call right after pl_connect()
 * (for accepted connections use pl_listener_set_max_message()), so
 * that the peer learns it in the handshake. PL_OK, PL_ERR_INVALID or
 * PL_ERR_STATE (the handshake has begun).
 */
PL_EXPORT int pl_session_set_max_message(pl_session *c, size_t max);

/** Replace the callback and its userdata. */
PL_EXPORT void pl_session_set_callback(pl_session *c, pl_session_cb cb, void *userdata);

/**
 * Queue a message (copied). Messages sent before PL_SESSION_OPEN, or while
 * interrupted, wait until a link is open (nothing leaves in clear). On an
 * open TCP or descriptor link, called outside this session's own
 * callbacks with nothing else waiting, it writes what the socket takes at
 * once, without blocking (once per loop iteration: the sends that follow
 * before the loop runs again are written together by the loop); the rest,
 * and PL_SESSION_DRAINED, come from the loop, never from inside this
 * call. A message stays in memory until the peer acknowledges it
 * (PL_SESSION_ACKED); their bytes are bounded by the send limit
 * (pl_session_set_send_limit()). Returns PL_OK; PL_ERR_AGAIN if the message
 * would take the unacknowledged bytes past the limit (unless none are
 * unacknowledged): backpressure, send it again after PL_SESSION_ACKED;
 * PL_ERR_TOO_LARGE if len exceeds what the peer accepts (once known) or
 * PL_MAX_MESSAGE_LIMIT (a waiting message larger than the peer turns
 * out to accept ends the session with PL_ERR_TOO_LARGE); PL_ERR_STATE
 * after pl_session_shutdown() or once closed; PL_ERR_NOMEM. Nothing is
 * queued on error.
 */
PL_EXPORT int pl_session_send(pl_session *c, const void *data, size_t len);

/**
 * Metadata for the peer: a TXT record (encoded and copied; txt stays the
 * caller's) that the peer's application receives as PL_SESSION_PEER_TXT,
 * for links whose discovery carries none (Apple's Wi-Fi Aware, a pipe).
 * Sent sealed, now if the session is open, and again on every later
 * connection of the session; a later call replaces it. At most 4000
 * bytes encoded. Not a message: not numbered, not counted against the
 * send limit; the peer sees the last one that reached it
 * (docs/PROTOCOL.md section 8.13). PL_OK; PL_ERR_INVALID; PL_ERR_TOO_LARGE
 * (over 4000 bytes); PL_ERR_STATE (closed); PL_ERR_NOMEM. Nothing changes
 * on error.
 */
PL_EXPORT int pl_session_set_txt(pl_session *c, const pl_txt *txt);

/**
 * The peer's metadata (the last PL_SESSION_PEER_TXT), decoded into a new
 * record in *out, which the caller frees with pl_txt_free(). PL_OK;
 * PL_ERR_NOT_FOUND (none came in this session); PL_ERR_INVALID;
 * PL_ERR_NOMEM.
 */
PL_EXPORT int pl_session_peer_txt(const pl_session *c, pl_txt **out);

/**
 * Keying material for something else, bound to this session and its two
 * authenticated peers (in the style of RFC 5705 / RFC 8446 section 7.5):
 * out_len bytes (1..16320) for label (a C string of 1..255 bytes that
 * names the use, e.g. "EXAMPLE wifi-aware pmk") and context (0..1024
 * bytes; NULL with 0) into out. Both ends get the same bytes; different
 * labels or contexts give independent outputs. Valid from PL_SESSION_OPEN
 * on, also while interrupted, and the same on every connection of the
 * session; a new session (PL_SESSION_RESUMED with PL_ERR_PEER_RESET)
 * gives new ones. The output is secret: wipe it after use. Threading and
 * callbacks: none; a pure function of the session. PL_OK; PL_ERR_STATE
 * (not open yet); PL_ERR_INVALID (docs/PROTOCOL.md section 8.14).
 */
PL_EXPORT int pl_session_export(const pl_session *c, const char *label, const void *context, size_t context_len,
                                void *out, size_t out_len);

/**
 * The largest message the peer accepts (its Hello's max_message, at most
 * PL_MAX_MESSAGE_LIMIT): pl_session_send() refuses a longer one with
 * PL_ERR_TOO_LARGE. An application that cuts a byte stream into messages
 * should cut at most this much. Known from PL_SESSION_OPEN on (a resumed
 * link updates it); 0 before, and for NULL. Loop thread.
 */
PL_EXPORT size_t pl_session_peer_max_message(const pl_session *c);

/** Bytes queued and not yet handed to the kernel (sealed or still waiting for a link). */
PL_EXPORT size_t pl_session_pending(const pl_session *c);

/** Payload bytes of our messages the peer has not acknowledged yet (what the send limit bounds). */
PL_EXPORT size_t pl_session_unacked(const pl_session *c);

/**
 * 1 once the peer's application has received everything this side sent,
 * its end-of-stream included (so only after pl_session_shutdown();
 * PL_SESSION_DELIVERED says when); else 0, also for NULL. A peer that
 * holds our messages unread (pl_session_pause()) has not received them.
 */
PL_EXPORT int pl_session_delivered(const pl_session *c);

/**
 * What a paused session keeps of the peer's messages for the
 * application, counted as the receive limit counts it (each message's
 * bytes plus 48): see pl_session_pause(). 0 when none is kept.
 */
PL_EXPORT size_t pl_session_held(const pl_session *c);

/**
 * Bound the bytes of unacknowledged messages (default 4 MiB; each
 * message also counts 48 bytes, so that empty ones are bounded too;
 * pl_session_unacked() reports the messages' bytes alone). A slow
 * receiver acknowledges late, so the sender's memory stays within about
 * twice this (the messages and their sealed copies) plus one message.
 * PL_OK or PL_ERR_INVALID (0).
 */
PL_EXPORT int pl_session_set_send_limit(pl_session *c, size_t bytes);

/**
 * Stop (paused != 0) or restart taking messages. While paused no
 * PL_SESSION_MESSAGE or PL_SESSION_PEER_EOF is delivered and nothing is
 * acknowledged, so the peer's sends are soon held back by its send
 * limit: flow control. The link is still read, so Acks and Pings still
 * take effect (a paused side still learns that its own messages
 * arrived: PL_SESSION_ACKED); the messages that arrive are kept, and
 * delivered in order from the loop after the pause ends. What the peer
 * can send meanwhile is bounded by its send limit; reading stops only
 * past the receive limit (pl_session_set_receive_limit()). The messages
 * kept were not acknowledged: if the link breaks they are dropped, and
 * the peer sends them again on the next one.
 *
 * The pattern that cannot deadlock, as long as the peer's send limit is
 * not above this side's receive limit (both 4 MiB by default): on
 * PL_ERR_AGAIN from pl_session_send(), keep that message and pause; on
 * PL_SESSION_ACKED send it again and unpause (examples/accessory.c). Called
 * from a PL_SESSION_MESSAGE callback, it takes effect from the next
 * message. PL_OK, PL_ERR_STATE (closed), PL_ERR_NOMEM.
 */
PL_EXPORT int pl_session_pause(pl_session *c, int paused);

/**
 * Bound what a paused session keeps of the peer's messages (default
 * 4 MiB, counted as the send limit counts: each message's bytes plus
 * 48). Past it, in more than one message, the session stops reading the
 * link until the application takes some; then it can no longer see the
 * peer's Acks either, so keep it at least as large as the peer's send
 * limit. Memory while paused: this bound (or one message, if larger)
 * plus one read (64 KiB). PL_OK or PL_ERR_INVALID (0).
 */
PL_EXPORT int pl_session_set_receive_limit(pl_session *c, size_t bytes);

/**
 * How long the session may stay interrupted before it ends with
 * PL_SESSION_CLOSED / PL_ERR_TIMEOUT (milliseconds; 0: never resume, a
 * broken link closes the session at once). Default 30000 for
 * pl_connect() and accepted sessions (see pl_listener_set_resume()), 0
 * for pl_session_new_fd() and pl_session_new_channel() sessions (see
 * pl_session_attach_channel()). PL_OK or PL_ERR_INVALID.
 */
PL_EXPORT int pl_session_set_resume(pl_session *c, int timeout_ms);

/**
 * Probe a silent link: when nothing has arrived for interval_ms, ask the
 * peer for an acknowledgement; when nothing arrives for another
 * interval, the link counts as broken (interrupted, or closed with
 * PL_ERR_TIMEOUT). 0 turns it off. Default 5000 for pl_connect() and
 * accepted sessions, 0 for byte sessions. PL_OK, PL_ERR_INVALID,
 * PL_ERR_NOMEM.
 */
PL_EXPORT int pl_session_set_keepalive(pl_session *c, int interval_ms);

/**
 * Rediscover the peer when it moves: while the session is interrupted,
 * browse with d for the service pl_connect() was given (its type and
 * name, matched as pl_service_name_equal() does) and dial the addresses
 * it is found at, as well as the known ones. d must outlive c or be unset
 * (NULL) first. PL_OK, or PL_ERR_INVALID (not a pl_connect() session, or
 * its service had no type), or PL_ERR_STATE (a pl_connect_by_name()
 * session still searching, and d is not the one it searches with).
 */
PL_EXPORT int pl_session_set_discovery(pl_session *c, pl_discovery *d);

/**
 * New addresses for the service a pl_connect() session dials (copied),
 * for the next reconnection (at once, if one is being dialled): pass
 * the service from a browser's PL_BROWSE_UPDATE when the peer moved.
 * PL_OK, PL_ERR_INVALID (not a pl_connect() session, no usable address),
 * PL_ERR_STATE (still connecting for the first time), PL_ERR_NOMEM.
 */
PL_EXPORT int pl_session_set_addresses(pl_session *c, const pl_service *svc);

/**
 * End this direction: after the queued messages the peer gets an
 * end-of-stream. Receiving continues until the peer ends too; once
 * each side has acknowledged the other's end-of-stream, PL_SESSION_CLOSED
 * follows with PL_OK: everything either side sent was delivered.
 * Idempotent. PL_OK, PL_ERR_STATE (closed), PL_ERR_NOMEM.
 */
PL_EXPORT int pl_session_shutdown(pl_session *c);

/**
 * Describe the peer's address ("192.0.2.1:4242", "[fe80::1%eth0]:4242")
 * into buf. PL_OK, PL_ERR_STATE if not connected, PL_ERR_TOO_LARGE.
 */
PL_EXPORT int pl_session_peer_string(const pl_session *c, char *buf, size_t cap);

/**
 * Abort the session and free c: queued and unacknowledged messages are
 * dropped. On an open TCP link an Abort is sent if the socket takes it
 * at once (the peer then ends with PL_ERR_ABORTED instead of waiting to
 * resume; with a backlog in the socket it sees a broken link, and finds
 * the session gone if it resumes); a byte session just closes its pipe.
 * After a clean PL_SESSION_CLOSED it only frees. No callback follows. NULL
 * is accepted.
 */
PL_EXPORT void pl_session_free(pl_session *c);

/* ------------------------------------------------------------------ */

/**
 * Called once per connection whose peer completed the handshake.
 * The callee owns c and must call pl_session_set_callback() or
 * pl_session_free() before returning (the listener's maximum message size
 * already applies to it). Connections that close or stall before
 * completing the handshake never reach this callback.
 */
typedef void (*pl_accept_cb)(pl_listener *l, pl_session *c, void *userdata);

/**
 * Listen on TCP port (0: any free port) on every address, IPv6 and
 * IPv4 (one dual-stack socket), for node: its keystore holds our
 * identity and paired peers; pl_node_free() frees the listener. Pairing is off
 * until pl_listener_set_pairing(): until then only paired peers get in.
 * Returns PL_OK with *out set, or with *out untouched: PL_ERR_PERMISSION
 * (errno EACCES or EPERM: e.g. a port below 1024 without the privilege),
 * PL_ERR_IO (errno set, e.g. EADDRINUSE), PL_ERR_NOMEM, PL_ERR_INVALID.
 */
PL_EXPORT int pl_listener_new(pl_node *node, uint16_t port, pl_accept_cb cb, void *userdata, pl_listener **out);

/**
 * A listener with no socket of its own: it accepts the links the
 * application hands it (pl_listener_add_channel(), pl_listener_add_fd()):
 * Network.framework connections, Wi-Fi Aware or BLE pipes. Otherwise as
 * pl_listener_new() (port 0). PL_OK, PL_ERR_INVALID, PL_ERR_NOMEM.
 */
PL_EXPORT int pl_listener_new_detached(pl_node *node, pl_accept_cb cb, void *userdata, pl_listener **out);

/**
 * An inbound pipe for the listener (any listener, detached or not): the
 * responder's handshake runs on it under the listener's pairing policy
 * and deadlines (see pl_listener_pending()). Then either the accept callback gets a new
 * session, or an interrupted session with the same peer continues on
 * the pipe, whatever link it had before (PL_SESSION_RESUMED on that
 * session). *out is the pipe's handle for pl_channel_input(); a pipe
 * whose handshake fails is closed (ops->close). ops is copied. PL_OK,
 * PL_ERR_INVALID (no ops->write), PL_ERR_NOMEM, or the keystore's error;
 * on error nothing is kept and ops->close is not called.
 */
PL_EXPORT int pl_listener_add_channel(pl_listener *l, const pl_channel_ops *ops, void *ctx, pl_channel **out);

/**
 * An inbound connected descriptor for the listener, as
 * pl_listener_add_channel() (taken over; untouched on error). PL_OK,
 * PL_ERR_INVALID, PL_ERR_NOMEM.
 */
PL_EXPORT int pl_listener_add_fd(pl_listener *l, int fd);

/**
 * The instance name every handshake is bound to (copied, at most 63
 * bytes): the name the listener is published under. A listener that
 * publishes itself (pl_listener_publish()) keeps it right by itself;
 * otherwise set it again after a PL_PUBLISH_RENAMED. Default "". PL_OK
 * or PL_ERR_INVALID.
 */
PL_EXPORT int pl_listener_set_instance(pl_listener *l, const char *name);

/**
 * Publish the listener through d: instance name, type and TXT record
 * (copied) at the listener's port, as pl_publish() does, with one
 * object: from then on every handshake is bound to the publication's
 * current name, renames included (an accessory renamed "Kitchen #2" by a
 * name conflict is reached under that name at once). cb (may be NULL)
 * gets the publication's events, after the listener has followed them.
 * The publication is the listener's: pl_listener_free() withdraws it
 * (pl_listener_publication() gives it for pl_publication_set_txt()); d
 * must outlive the listener. Through the "apple" backend (Network.framework,
 * where the listener that advertises is the one that accepts), the
 * publication listens on a port of the system's choosing and hands every
 * inbound connection to this listener; the listener's own socket closes.
 * Portable code is the same on every platform. The TXT record published
 * is txt plus the key "pl-hint": this device's discovery hint, under a
 * salt new with each call, from which the peers paired with it find it
 * again under another instance name (docs/PROTOCOL.md section 2.1; keep
 * the key if you replace the record with pl_publication_set_txt()). The
 * key takes 29 bytes of the record: a txt within 29 bytes of the limit
 * (PL_TXT_MAX_SIZE, or the backend's own: the built-in engine's, the nan
 * backend's 255) fails with PL_ERR_TOO_LARGE as pl_publish() does.
 * PL_OK; PL_ERR_STATE (it publishes already); the keystore's error if the
 * identity cannot be read; otherwise as pl_publish(), nothing published.
 */
PL_EXPORT int pl_listener_publish(pl_listener *l, pl_discovery *d, const char *name, const char *type,
                                  const pl_txt *txt, pl_publish_cb cb, void *userdata);

/** The listener's own publication (pl_listener_publish()), or NULL. Borrowed. */
PL_EXPORT pl_publication *pl_listener_publication(const pl_listener *l);

/**
 * Open pairing. code: a fixed code (1..32 printable ASCII bytes; the
 * printed-label case), or NULL to generate numeric codes of digits
 * digits (4..12; 0: 6) to show to the user (pl_listener_code()).
 *
 * Pairing stays open for a window (pl_listener_set_pairing_window():
 * 900 s unless changed) and closes by itself when it ends, after the
 * first successful pairing, or when generated codes' budget is spent;
 * the pairing callback hears each closing (PL_PAIRING_CLOSED). Open it
 * on the user's act (a button, a command), not by itself again: each
 * opening with a generated code starts a fresh budget.
 *
 * max_failures (0: 10): when failed attempts at a code reach it, a
 * generated code is replaced by a new one (reported to the pairing
 * callback; attempts that die before the initiator's key confirmation
 * do not count toward this), and a fixed code locks pairing for 60 s,
 * doubling at each lock up to a day (PL_ERR_LOCKED). After a failed
 * attempt the next waits 1 s; for generated codes the pause doubles
 * every 10 failures up to 64 s, and after 100 failures in all (across
 * code replacements) generated codes are refused until pairing is
 * opened again: an attacker's chance is at most 100 / 10^digits per
 * opening (docs/PROTOCOL.md section 11.2). These limits belong to the
 * keystore, not to the listener: every listener and byte session on it,
 * and every process that opens its directory, share one budget. One
 * pairing runs at a time per keystore (PL_ERR_BUSY); an admitted attempt
 * must finish within 3 s. An attempt counts as failed from the moment
 * it begins until it succeeds. Failures against fixed codes and the
 * lock are stored, so a restart does not reset them; a replaced
 * generated code leaves a fixed code's count and lock as they were.
 * Paired peers reconnect whether pairing is open or not.
 *
 * Loop thread. PL_OK; PL_ERR_INVALID; PL_ERR_STATE (an attempt is in
 * progress); or the keystore's error (PL_ERR_CORRUPT, PL_ERR_IO: its
 * attempt state cannot be read or written, and pairing stays as it was).
 */
PL_EXPORT int pl_listener_set_pairing(pl_listener *l, const char *code, unsigned digits,
                                      unsigned max_failures);

/** Flag of pl_listener_set_pairing_window(): pairing stays open after a successful pairing. */
#define PL_PAIRING_KEEP_OPEN 1u

/**
 * The window of pairing on l, for the pairing open now (restarted from
 * now) and for each later pl_listener_set_pairing(): open for seconds
 * (1..86400; default 900, the most Matter allows a commissioning
 * window), or with 0 until pl_listener_stop_pairing() - then the
 * application answers for closing it. Unless flags has
 * PL_PAIRING_KEEP_OPEN, pairing also closes after the first successful
 * pairing. Generated codes' budget closes it either way. Loop thread.
 * PL_OK, or PL_ERR_INVALID (l NULL, seconds > 86400, an unknown flag).
 */
PL_EXPORT int pl_listener_set_pairing_window(pl_listener *l, unsigned seconds, unsigned flags);

/** Stop accepting pairing (paired peers still get in); no PL_PAIRING_CLOSED follows. An attempt in
 *  progress finishes. Loop thread. NULL is accepted. */
PL_EXPORT void pl_listener_stop_pairing(pl_listener *l);

/** The code pairing currently accepts, NUL-terminated, borrowed until it changes; NULL if pairing is
 *  off or closed. */
PL_EXPORT const char *pl_listener_code(const pl_listener *l);

typedef enum pl_pairing_event {
    PL_PAIRING_NEW_CODE = 0, /**< a generated code was replaced after too many failures: show code */
    PL_PAIRING_FAILED = 1,   /**< an attempt failed: status is PL_ERR_WRONG_CODE, PL_ERR_CLOSED, ... */
    PL_PAIRING_CLOSED = 2    /**< pairing closed by itself; status says why: PL_ERR_TIMEOUT (the window
                                  ended), PL_OK (a peer paired), PL_ERR_LOCKED (generated codes' budget
                                  of failed attempts is spent). pl_listener_set_pairing() opens it again */
} pl_pairing_event;

/** Pairing news of a listener, from the loop. code is set for PL_PAIRING_NEW_CODE (borrowed). The
 *  callback may free the listener. */
typedef void (*pl_pairing_cb)(pl_listener *l, pl_pairing_event ev, int status, const char *code,
                              void *userdata);

/** Set (or clear, with NULL) the pairing callback. Successful pairings arrive as accepted connections. */
PL_EXPORT void pl_listener_set_pairing_callback(pl_listener *l, pl_pairing_cb cb, void *userdata);

/**
 * A random numeric code of digits digits (4..12) into buf (cap >=
 * digits + 1), for the side that shows a code when the application
 * chooses which side that is. PL_OK or PL_ERR_INVALID.
 */
PL_EXPORT int pl_code_generate(char *buf, size_t cap, unsigned digits);

/** The port actually bound (useful after port 0); 0 for a detached listener, and once it publishes
 *  through the "apple" backend (pl_listener_publish()). */
PL_EXPORT uint16_t pl_listener_port(const pl_listener *l);

/** Largest message accepted on connections accepted from now on. As pl_session_set_max_message(). */
PL_EXPORT int pl_listener_set_max_message(pl_listener *l, size_t max);

/**
 * pl_session_set_resume() and pl_session_set_keepalive() values for sessions
 * accepted from now on (defaults 30000 and 5000 ms). A peer that
 * reconnects to continue a session is matched to it by the session's
 * secret, on any listener of the same node, and never reaches the
 * accept callback again. PL_OK or PL_ERR_INVALID.
 */
PL_EXPORT int pl_listener_set_resume(pl_listener *l, int timeout_ms, int keepalive_ms);

/**
 * Number of connections and pipes still in the handshake (not yet handed
 * to the accept callback). Each has 2 s to send its first Hello, then
 * 10 s for the whole handshake, or 3 s from its PairStart once a pairing
 * attempt is admitted. At most 64 are held, and at most 8 from
 * one source address: past 8 from one address, that address's oldest is
 * dropped; past 64, the oldest that has not sent its Hello, or else the
 * oldest of all. So a flood of connections from one host, or of silent
 * ones, does not push out a peer that is well into its handshake.
 */
PL_EXPORT size_t pl_listener_pending(const pl_listener *l);

/** Stop listening, close connections still in handshake, free l. Accepted sessions live on. NULL is accepted. */
PL_EXPORT void pl_listener_free(pl_listener *l);

#ifdef __cplusplus
}
#endif
#endif
