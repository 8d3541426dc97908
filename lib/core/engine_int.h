/* SPDX-License-Identifier: ISC */
/*
 * What the parts of the engine share (engine.c: framing, sealing, control
 * messages, receiving; handshake.c: the key schedule and the handshake
 * steps; stream.c: the session's stream and the calls that use it). Not
 * installed; nothing outside lib/core includes it.
 */
#ifndef PL_CORE_ENGINE_INT_H
#define PL_CORE_ENGINE_INT_H

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <stdint.h>
#include <string.h>

#include <peerlink/common.h>
#include <peerlink/session.h>

#include "engine.h"
#include "peerlink.pb-c.h"

#define ROLE_I 'I'
#define ROLE_R 'R'

static inline void put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static inline uint64_t get_be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

static inline void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static inline uint32_t get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

void pl__clear_link(pl_engine *e);
int pl__copy_name(char dst[PL_NAME_MAX + 1], const char *src);
int pl__flush_stream(pl_engine *e);
int pl__handle_hello(pl_engine *e, const Peerlink__Hello *h, const uint8_t *raw, size_t raw_len);
int pl__handle_identity(pl_engine *e, const Peerlink__Identity *id, const uint8_t *raw, size_t raw_len);
int pl__handle_ready(pl_engine *e, const Peerlink__Ready *r);
int pl__handle_reply(pl_engine *e, const Peerlink__Control *c, const uint8_t *raw, size_t raw_len);
int pl__handle_start(pl_engine *e, const Peerlink__Control *c, const uint8_t *raw, size_t raw_len);
void pl__random_bytes(pl_engine *e, uint8_t *buf, size_t n);
/* 1 if k is a code or a secret the protocol takes (docs/PROTOCOL.md 6.4). */
int pl__pair_key_valid(const pl_pair_key *k);
/* Copy a valid k into the engine's pairing key. */
void pl__pair_key_take(pl_engine *e, const pl_pair_key *k);
/* Metadata: queue ours (if we have some), take the peer's (an event, 0, or an error). */
int pl__send_metadata(pl_engine *e);
/* A connection opened: our metadata first, then what waits in the stream. */
int pl__send_waiting(pl_engine *e);
int pl__receive_metadata(pl_engine *e, const uint8_t *txt, size_t len);
int pl__send_control(pl_engine *e, const Peerlink__Control *c, int transcript, uint8_t *keep,
                        size_t keep_cap, size_t *keep_len);
int pl__send_message2(pl_engine *e, uint8_t type, const uint8_t *pre, size_t pre_len,
                         const uint8_t *body, size_t body_len);
void pl__stream_acked(pl_stream *st, uint64_t n);
int pl__stream_append(pl_stream *st, const void *data, size_t len, uint32_t tag);
int pl__stream_hold(pl_stream *st, const uint8_t *data, size_t len, uint32_t tag);
void pl__th_add(pl_engine *e, const uint8_t *p, size_t n);
void pl__th_value(const pl_engine *e, uint8_t out[PL_HASH_SIZE]);
void pl__x25519_keypair(pl_engine *e);

#endif
