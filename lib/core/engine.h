/*
 * The connection protocol engine (sans-I/O): bytes in, events out;
 * calls in, bytes out. It owns framing, the Hello exchange with
 * version negotiation and the end-of-stream signalling; it never
 * touches a socket or a clock. Transports (TCP, a byte channel)
 * feed it what they read and write out what it queues.
 */
#ifndef PL_CORE_ENGINE_H
#define PL_CORE_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "frame.h"

/* Protocol versions this engine speaks (Hello.min_version..max_version). */
#define PL_PROTO_MIN_VERSION 1
#define PL_PROTO_MAX_VERSION 1
/* Largest control message accepted (protobuf payload of a CONTROL message). */
#define PL_CONTROL_MAX 4096

typedef enum pl_engine_event_type {
    PL_ENGINE_NONE = 0,
    PL_ENGINE_OPEN = 1,     /* the peer's Hello arrived and a version was agreed */
    PL_ENGINE_MESSAGE = 2,  /* data/len: one application message (borrowed until the next receive) */
    PL_ENGINE_PEER_EOF = 3  /* the peer sent end-of-stream */
} pl_engine_event_type;

typedef struct pl_engine_event {
    pl_engine_event_type type;
    const uint8_t *data;
    size_t len;
} pl_engine_event;

typedef struct pl_engine {
    pl_deframer in;
    pl_buf out;            /* bytes to write to the peer, in order */
    size_t max_message;    /* largest message we accept (announced in Hello) */
    uint64_t peer_max;     /* largest message the peer accepts (0 until open) */
    uint32_t version;      /* agreed protocol version (0 until open) */
    unsigned started : 1;  /* our Hello is queued */
    unsigned open : 1;     /* the peer's Hello arrived */
    unsigned local_eof : 1;
    unsigned peer_eof : 1;
    unsigned failed : 1;
} pl_engine;

void pl_engine_init(pl_engine *e, size_t max_message);
/* Wipe and free everything. */
void pl_engine_clear(pl_engine *e);
/* Change our maximum before start. PL_OK, PL_ERR_INVALID (0 or > limit), PL_ERR_STATE (started). */
int pl_engine_set_max_message(pl_engine *e, size_t max);
/* Queue our Hello. Both sides call it first thing. PL_OK, PL_ERR_STATE, PL_ERR_NOMEM. */
int pl_engine_start(pl_engine *e);
/*
 * Feed received bytes. Consumes up to one event's worth; *consumed
 * says how much. Returns 1 with *ev set, 0 if all input was consumed
 * with nothing to report, or a negative pl_error, after which the
 * engine is failed: PL_ERR_PROTOCOL (data before Hello, a second Hello,
 * anything after end-of-stream, an unknown control message),
 * PL_ERR_VERSION (no common version), PL_ERR_MALFORMED,
 * PL_ERR_TOO_LARGE, PL_ERR_NOMEM.
 */
int pl_engine_receive(pl_engine *e, const uint8_t *in, size_t len, size_t *consumed,
                      pl_engine_event *ev);
/* Queue an application message (copied into frames). PL_OK, PL_ERR_STATE (after shutdown or
 * failure, or before start), PL_ERR_TOO_LARGE (> peer's maximum once open, or > PL_MAX_MESSAGE_LIMIT),
 * PL_ERR_NOMEM. Nothing is queued on error. */
int pl_engine_send(pl_engine *e, const void *data, size_t len);
/* Queue end-of-stream. Idempotent: PL_OK; PL_ERR_STATE if not started or failed. */
int pl_engine_shutdown(pl_engine *e);
/* 1 when both directions have ended (our EOS queued and the peer's received). */
int pl_engine_done(const pl_engine *e);
/* 1 if the input stream stopped in the middle of a frame or message. */
int pl_engine_truncated(const pl_engine *e);

#endif
