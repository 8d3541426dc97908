/* SPDX-License-Identifier: ISC */
/*
 * The connection protocol engine (sans-I/O): bytes in, events out;
 * calls in, bytes out. It owns framing, the Hello exchange with version
 * negotiation, the handshake (pairing with CPace, or reconnecting with
 * stored Ed25519 identities and an ephemeral X25519 exchange), the
 * record layer, and end-of-stream signalling. It never touches a
 * socket, a clock or a file: decisions that need stored state (attempt
 * limits, known peers) go through pl_engine_hooks, and randomness
 * through an optional generator so that vectors can be reproduced.
 * The wire format is docs/PROTOCOL.md.
 */
#ifndef PL_CORE_ENGINE_H
#define PL_CORE_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include <sodium.h>

#include <peerlink/session.h>

#include "buf.h"
#include "crypto.h"
#include "frame.h"
#include "record.h"

/* Protocol versions this engine speaks (Hello.min_version..max_version). */
#define PL_PROTO_MIN_VERSION 1
#define PL_PROTO_MAX_VERSION 1
/* Bytes of the sequence number in front of each DATA message. */
#define PL_SEQ_SIZE 8
/* Largest control message accepted (protobuf payload of a CONTROL message). */
#define PL_CONTROL_MAX 4096
#define PL_NONCE_SIZE 32
#define PL_NAME_MAX 63

typedef enum pl_engine_event_type {
    PL_ENGINE_NONE = 0,
    PL_ENGINE_OPEN = 1,     /* the handshake is done: peer authenticated, records encrypted
                               (see pl_engine.resumed / .reset for a reconnection) */
    PL_ENGINE_MESSAGE = 2,  /* data/len: one application message (borrowed until the next receive) */
    PL_ENGINE_PEER_EOF = 3, /* the peer sent end-of-stream */
    PL_ENGINE_ACKED = 4,    /* the peer acknowledged more messages: seq = pl_stream_acked_messages() */
    PL_ENGINE_PEER_TXT = 5  /* the peer's metadata changed: data/len its TXT record (wire format),
                               borrowed until the next receive; also pl_stream.peer_txt */
} pl_engine_event_type;

typedef struct pl_engine_event {
    pl_engine_event_type type;
    const uint8_t *data;
    size_t len;
    uint64_t seq;
} pl_engine_event;

#define PL_SESSION_ID_SIZE 16
#define PL_RESUME_KEY_SIZE 32
#define PL_RESUME_PROOF_SIZE 32
#define PL_EXPORTER_SECRET_SIZE 32
/* Bounds of the exporter's context and output (docs/PROTOCOL.md section 8.14). */
#define PL_EXPORT_CONTEXT_MAX 1024
#define PL_EXPORT_MAX (255 * 64)
/* Largest TXT record a Metadata message carries (docs/PROTOCOL.md section 8.13). */
#define PL_METADATA_MAX 4000
/* What a pairing is keyed with (docs/PROTOCOL.md section 6.4): a code of
 * 1..PL_CODE_BYTES_MAX bytes of text, or a secret of PL_PAIRING_SECRET_MIN..
 * PL_PAIRING_SECRET_MAX bytes (peerlink/session.h). */
#define PL_CODE_BYTES_MAX 63

/*
 * A session's stream state: what survives the loss of a connection.
 * Sequence numbers count, per direction, the application messages of
 * the session and finally its end-of-stream, from 0. Every message sent
 * stays in `unacked` until the peer acknowledges that its application
 * received it, so that a new connection can send it again.
 */
typedef struct pl_stream {
    uint8_t id[PL_SESSION_ID_SIZE];
    uint8_t resume_key[PL_RESUME_KEY_SIZE];
    uint8_t exporter[PL_EXPORTER_SECRET_SIZE]; /* the session's exporter secret */
    unsigned established : 1; /* id, resume_key and exporter are set (the first connection opened) */
    unsigned local_eof : 1;   /* our end-of-stream is the last entry of unacked */
    unsigned peer_eof : 1;    /* the peer's end-of-stream was received */
    uint64_t tx_next;         /* sequence number of our next message */
    uint64_t tx_acked;        /* the peer delivered everything below this */
    uint64_t acked_base;      /* messages acknowledged in sessions this one replaced (a reset) */
    uint64_t tx_sent;         /* sealed on the current connection: everything below this */
    pl_ring unacked;          /* entries tx_acked .. tx_next-1: u32 length + bytes; PL_STREAM_EOS for end-of-stream */
    size_t unacked_bytes;     /* payload bytes in unacked */
    size_t sent_off;          /* offset in unacked of entry tx_sent */
    uint64_t rx_next;         /* sequence number of the next entry to arrive (delivered + held_n) */
    uint64_t rx_acked;        /* the last Ack we sent said this */
    /* Entries that arrived while the application takes none (pl_engine_hold())
     * or behind such entries: received, not delivered, not acknowledged.
     * They belong to the connection that brought them: a new connection
     * of the session drops them (the peer sends them again). */
    unsigned hold : 1;        /* the application takes no entries now */
    unsigned held_eos : 1;    /* the peer's end-of-stream is the last held entry */
    pl_buf held;              /* u32 length + bytes; PL_STREAM_EOS for end-of-stream */
    uint64_t held_n;          /* entries in held */
    size_t held_cost;         /* the held messages' bytes plus PL_STREAM_ENTRY_COST each */
    /* Metadata (TXT records, wire format; empty: none): ours, sent on
     * every connection once open; the peer's, the last that arrived. */
    pl_buf txt;
    pl_buf peer_txt;
} pl_stream;

#define PL_STREAM_EOS 0xffffffffu
/* What each unacknowledged message counts against a send limit beside
 * its bytes: its length prefix here and its record's overhead. */
#define PL_STREAM_ENTRY_COST 48

/* The entries the application has received (what an Ack may say). */
static inline uint64_t pl_stream_delivered(const pl_stream *st)
{
    return st->rx_next - st->held_n;
}

/* Everything was delivered both ways: the peer acknowledged all of our
 * entries, our end-of-stream last, and our application received the
 * peer's end-of-stream. (Only our last Ack may still be owed.) */
static inline int pl_stream_complete(const pl_stream *st)
{
    return st->established && st->local_eof && st->tx_acked == st->tx_next && st->peer_eof &&
           !st->held_n;
}

/* The key of a pairing: the bytes of a code's text, or of a secret. */
typedef struct pl_pair_key {
    const uint8_t *bytes;
    size_t len;
    int secret; /* 1: a secret (PL_PAIRING_SECRET_MIN..PL_PAIRING_SECRET_MAX bytes); 0: a code */
} pl_pair_key;

/* Decisions and storage the handshake needs; every pointer may be NULL
 * where the role never calls it. All are synchronous. */
typedef struct pl_engine_hooks {
    /* Responder: a pairing attempt begins. PL_OK with *key set (its bytes
     * valid until pair_end), or PL_ERR_BUSY / PL_ERR_LOCKED / PL_ERR_NOT_PAIRED
     * (no pairing offered). From here until pair_end(PL_OK) the attempt
     * counts as failed. */
    int (*pair_begin)(void *ctx, pl_pair_key *key);
    /* Responder: the attempt that pair_begin admitted ended: PL_OK or why not. */
    void (*pair_end)(void *ctx, int result);
    /* Responder, reconnect: PL_OK if id is a paired peer, else PL_ERR_NOT_PAIRED. */
    int (*peer_known)(void *ctx, const uint8_t id[32]);
    /* Both, pairing: store the peer just paired with. */
    int (*peer_paired)(void *ctx, const uint8_t id[32], const char *name);
    /* Responder, pairing: the initiator refused our Ready (its Error came
     * instead of its first record): forget the peer peer_paired stored. */
    void (*peer_refused)(void *ctx, const uint8_t id[32]);
    /* Optional: fill buf with n random bytes (default randombytes_buf). */
    void (*random)(void *ctx, uint8_t *buf, size_t n);
    /* Responder: the authenticated peer peer_id asks to continue session
     * id. The stream of that session, if this side still has it (the
     * engine only reads it; see pl_engine_adopt()), else NULL. */
    const pl_stream *(*find_session)(void *ctx, const uint8_t id[PL_SESSION_ID_SIZE],
                                     const uint8_t peer_id[32]);
    /* Responder: a new session with the authenticated, paired peer peer_id
     * is about to open (not a pairing, not a continued session). PL_OK, or
     * the error to refuse it with (PL_ERR_DUPLICATE). */
    int (*admit)(void *ctx, const uint8_t peer_id[32]);
    /* Optional: between two records of a message, the output reached
     * PL_ENGINE_DRAIN_AT bytes: hand what the pipe takes now to it, without
     * blocking, and consume that from out - nothing else (it may run
     * inside pl_engine_send()). Records then leave while still in the
     * cache they were sealed into; the message's last record stays queued. */
    void (*drain)(void *ctx);
} pl_engine_hooks;

/* Output that makes the engine call hooks.drain between records. */
#define PL_ENGINE_DRAIN_AT (256u * 1024u)

typedef struct pl_engine_config {
    int initiator;                     /* 1: we connected; 0: we accepted */
    const uint8_t *identity_sk;        /* our Ed25519 secret key, 64 bytes (copied) */
    const char *name;                  /* our display name (copied; NULL: "") */
    const char *instance;              /* responder: our instance name; initiator: the one we target (NULL: any) */
    const char *code;                  /* initiator: pair with this code (copied); NULL: reconnect */
    const uint8_t *secret;             /* initiator: or pair with this secret (copied; not with a code) */
    size_t secret_len;
    const uint8_t *expected_peer;      /* initiator, reconnect: the responder's stored id (32 bytes) */
    const pl_engine_hooks *hooks;
    void *hooks_ctx;
    uint64_t rekey_interval;           /* records per key; 0: PL_RECORD_REKEY_INTERVAL */
    pl_aead_cache *aead;               /* libcrypto's contexts shared with other engines of this
                                          thread (not owned; NULL: the engine's own) */
} pl_engine_config;

typedef enum pl_engine_state {
    PL_HS_IDLE = 0,     /* not started */
    PL_HS_HELLO,        /* our Hello sent, waiting for the peer's */
    PL_HS_START,        /* responder: waiting for PairStart / ResumeStart */
    PL_HS_REPLY,        /* initiator: waiting for PairReply / ResumeReply */
    PL_HS_IDENTITY,     /* waiting for the peer's sealed Identity */
    PL_HS_READY,        /* initiator: waiting for the responder's Ready */
    PL_HS_OPEN,         /* application data flows */
    PL_HS_FAILED
} pl_engine_state;

typedef struct pl_engine {
    pl_deframer outer;     /* frames as they arrive: clear CONTROL, then RECORD */
    pl_reasm in;           /* inner frames (records are opened into it): messages */
    pl_buf out;            /* bytes to write to the peer, in order */
    pl_stream st;          /* the session: survives pl_engine_relink() */
    size_t max_message;    /* largest message we accept (announced in Hello) */
    uint64_t peer_max;     /* largest message the peer accepts (0 until its Hello) */
    uint32_t version;      /* agreed protocol version (0 until the peer's Hello) */
    pl_engine_state state;
    int error;             /* why it failed */
    unsigned pairing : 1;       /* this handshake pairs (else reconnects) */
    unsigned pair_admitted : 1; /* responder: pair_begin said yes, pair_end owed */
    unsigned peer_gave_up : 1;  /* the peer sent an Error: nothing to tell it */
    unsigned resumed : 1;       /* this connection continues the session of an earlier one */
    unsigned reset : 1;         /* initiator: we asked to continue, the peer no longer knew the session */
    unsigned unsendable : 1;    /* a queued message is larger than the peer accepts: no connection can carry it */
    unsigned finished : 1;      /* ... and it had delivered everything both ways: end this link (Abort) */
    unsigned ping_owed : 1;     /* the peer asked for an Ack */
    unsigned awaiting_peer : 1; /* responder: Ready sent, no record of the initiator's opened since */
    unsigned refused : 1;       /* responder: the initiator refused Ready (an Error then): it keeps
                                   nothing of this connection, pairing or new session */
    unsigned eph_ready : 1;     /* eph_sk / eph_pk: an X25519 key pair drawn ahead (pl_engine_prepare()) */
    uint64_t peer_delivered;    /* responder, resuming: SessionResume.delivered */
    uint8_t new_id[PL_SESSION_ID_SIZE];         /* this connection's session id and resume key, */
    uint8_t new_resume_key[PL_RESUME_KEY_SIZE]; /* taken if it starts a new session */
    uint8_t new_exporter[PL_EXPORTER_SECRET_SIZE];

    /* configuration */
    int initiator;
    uint8_t identity_sk[crypto_sign_SECRETKEYBYTES];
    char name[PL_NAME_MAX + 1];
    char instance[PL_NAME_MAX + 1];
    int have_instance;
    uint8_t prs[PL_PAIRING_SECRET_MAX];  /* the pairing's key: a code's text or a secret */
    size_t prs_len;
    int have_code;               /* initiator: pair (with prs) */
    int prs_secret;              /* prs is a secret (docs/PROTOCOL.md section 6.4) */
    uint8_t expected_peer[32];
    int have_expected_peer;
    pl_engine_hooks hooks;
    void *hooks_ctx;
    uint64_t rekey_interval;
    pl_aead_cache *aead;

    /* handshake */
    uint8_t nonce[PL_NONCE_SIZE];
    uint8_t hello_local[128];                  /* our Hello's protobuf bytes, for the transcript */
    size_t hello_local_len;
    crypto_hash_sha512_state th;               /* running transcript hash */
    uint8_t secret[PL_CPACE_ISK];              /* ISK (pairing) or X25519 shared secret (reconnect) */
    size_t secret_len;
    uint8_t peer_nonce[PL_NONCE_SIZE];
    uint8_t eph_sk[32], eph_pk[32];            /* CPace scalar and Y, or X25519 key pair */

    /* result */
    uint8_t peer_id[32];
    char peer_name[PL_NAME_MAX + 1];

    pl_record_dir tx, rx;
} pl_engine;

/* 1 if s[0..n) is well-formed UTF-8 (RFC 3629: no overlong form, no
 * surrogate, nothing past U+10FFFF). */
int pl_utf8_valid(const uint8_t *s, size_t n);
/* 1 if s is a name the protocol carries (an instance or display name):
 * at most PL_NAME_MAX bytes of UTF-8. NULL counts as "". */
int pl_name_valid(const char *s);
/* Cut s in place to a valid name: its longest prefix of at most
 * PL_NAME_MAX bytes that is valid UTF-8 (a host name, say). */
void pl_name_truncate(char *s);

/* Zero the engine, with our maximum message size (0: default). */
void pl_engine_init(pl_engine *e, size_t max_message);
/* Wipe and free everything (reports an unfinished pairing to pair_end). */
void pl_engine_clear(pl_engine *e);
/* Change our maximum before start. PL_OK, PL_ERR_INVALID (0 or > limit), PL_ERR_STATE (started). */
int pl_engine_set_max_message(pl_engine *e, size_t max);
/* Set up the handshake; before start. PL_OK, PL_ERR_INVALID, PL_ERR_STATE. */
int pl_engine_configure(pl_engine *e, const pl_engine_config *cfg);
/* Queue our Hello (an initiator that reconnects: and its ResumeStart). Both sides call it
 * first thing. PL_OK, PL_ERR_STATE, PL_ERR_NOMEM. */
int pl_engine_start(pl_engine *e);
/*
 * Do ahead what the handshake will need next, while the caller would
 * otherwise wait for the peer: call it when our output is written. Today
 * that is a responder's X25519 key pair for a reconnect, drawn before the
 * peer's Start says whether it reconnects or pairs (a pairing overwrites
 * it; an initiator that reconnects draws its own in pl_engine_start()).
 * Optional: without it the handshake draws the key pair when it needs it;
 * nothing on the wire differs. Does nothing in any other state, or twice.
 * Never fails.
 */
void pl_engine_prepare(pl_engine *e);
/*
 * Feed received bytes. Consumes up to one event's worth; *consumed
 * says how much. Returns 1 with *ev set, 0 if all input was consumed
 * with nothing to report, or a negative pl_error, after which the
 * engine is failed (and may have queued an Error for the peer):
 * PL_ERR_PROTOCOL, PL_ERR_VERSION, PL_ERR_MALFORMED, PL_ERR_TOO_LARGE,
 * PL_ERR_NOMEM, PL_ERR_AUTH, PL_ERR_WRONG_CODE, PL_ERR_NOT_PAIRED,
 * PL_ERR_LOCKED, PL_ERR_BUSY.
 */
int pl_engine_receive(pl_engine *e, const uint8_t *in, size_t len, size_t *consumed,
                      pl_engine_event *ev);
/*
 * Queue an application message (copied into the stream; sealed at once
 * when open, else when the connection opens). limit bounds the stream's
 * unacknowledged messages (0: none), each counting its bytes plus
 * PL_STREAM_ENTRY_COST; a message that would pass it is refused with
 * PL_ERR_AGAIN unless nothing is unacknowledged.
 * PL_OK, PL_ERR_AGAIN, PL_ERR_STATE (after shutdown), PL_ERR_TOO_LARGE
 * (> peer's maximum once known, or > PL_MAX_MESSAGE_LIMIT),
 * PL_ERR_NOMEM. Nothing is queued on error. Valid while the engine is
 * failed or between connections: the message waits for the next one.
 */
int pl_engine_send(pl_engine *e, const void *data, size_t len, size_t limit);
/*
 * Our metadata: a TXT record in wire format (copied), len 1..PL_METADATA_MAX
 * (checked to decode). Kept in the stream and sent, sealed, on every
 * connection once open - now, if open. PL_OK, PL_ERR_INVALID,
 * PL_ERR_TOO_LARGE, PL_ERR_NOMEM (nothing changed on error).
 */
int pl_engine_set_metadata(pl_engine *e, const uint8_t *txt, size_t len);
/*
 * The session's exporter (docs/PROTOCOL.md section 8.14): out_len bytes
 * (1..PL_EXPORT_MAX) for label (1..255 bytes) and context (0..PL_EXPORT_CONTEXT_MAX bytes) into
 * out. PL_OK, PL_ERR_STATE (no session yet), PL_ERR_INVALID.
 */
int pl_engine_export(const pl_engine *e, const char *label, const uint8_t *context, size_t context_len,
                     uint8_t *out, size_t out_len);
/* Queue end-of-stream after the queued messages. Idempotent: PL_OK; PL_ERR_NOMEM. */
int pl_engine_shutdown(pl_engine *e);
/*
 * The application takes no entries (on), or takes them again (off).
 * While on, what arrives is still read - Acks, Pings and the other
 * control messages take effect - but messages and the peer's
 * end-of-stream are held (pl_stream.held), neither delivered nor
 * acknowledged; pl_engine_next_held() hands them out once off. Holding
 * survives pl_engine_relink(); what is held does not (it was never
 * acknowledged, so the peer sends it again on the next connection).
 */
void pl_engine_hold(pl_engine *e, int on);
/*
 * Not holding: the oldest held entry, as a PL_ENGINE_MESSAGE (data
 * borrowed until the next pl_engine_receive()) or PL_ENGINE_PEER_EOF
 * event, now delivered. Returns 1 with *ev, or 0 if nothing is held or
 * the engine holds.
 */
int pl_engine_next_held(pl_engine *e, pl_engine_event *ev);
/* If open and something was delivered since our last Ack (or a Ping
 * asked), queue an Ack. Call after each batch of input. PL_OK or an error. */
int pl_engine_ack(pl_engine *e);
/* Open: queue a Ping (the peer answers with an Ack). */
int pl_engine_ping(pl_engine *e);
/* Open: queue an Abort for the peer (then free the engine). */
int pl_engine_abort(pl_engine *e);
/* 1 when the session is over cleanly: both end-of-streams were sent,
 * received and acknowledged (our last Ack is queued). */
int pl_engine_done(const pl_engine *e);
/*
 * Drop the connection-bound state (keys, buffers, handshake) and keep
 * the session: next, pl_engine_start() runs a new handshake that asks
 * the peer to continue the session (initiator) or waits for one
 * (responder; see find_session). An initiator reconnects with the
 * identity it authenticated before, never with a code.
 */
void pl_engine_relink(pl_engine *e);
/*
 * Responder: e has just opened with e->resumed set (the peer continues
 * the session whose stream find_session returned). Move that stream
 * (from the engine that held it, which is left with an empty one) into
 * e and send what the peer has not acknowledged. PL_OK or an error.
 */
int pl_engine_adopt(pl_engine *e, pl_stream *from);
/* How many of our messages (not counting end-of-stream) the peer has
 * acknowledged in all, across resets. */
uint64_t pl_stream_acked_messages(const pl_stream *st);
/* Wipe and free a stream. */
void pl_stream_clear(pl_stream *st);
/* 1 if the input stream stopped in the middle of a frame or message. */
int pl_engine_truncated(const pl_engine *e);
/* 1 once the handshake is complete. */
static inline int pl_engine_open(const pl_engine *e) { return e->state == PL_HS_OPEN; }
/* Responder, open: the window after Ready (docs/PROTOCOL.md 6.8) is over
 * on the caller's clock, as if the initiator's first record had come: a
 * clear Error is PL_ERR_PROTOCOL from now on, and undoes nothing. */
static inline void pl_engine_settle(pl_engine *e) { e->awaiting_peer = 0; }

#endif
