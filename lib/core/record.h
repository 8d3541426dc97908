/* SPDX-License-Identifier: ISC */
/*
 * The record layer (sans-I/O): after the handshake every frame travels
 * sealed inside a RECORD frame.
 *
 *   outer header (8 bytes, in clear, authenticated as AAD):
 *     version=1, type=PL_FRAME_RECORD, flags=0, rsvd=0, length=L (u32 BE)
 *   payload (L bytes): ChaCha20-Poly1305-IETF ciphertext of one complete
 *     inner frame (its own 8-byte header + payload), then the 16-byte tag
 *
 * Nonce: 4 zero bytes || the direction's record counter as a 64-bit
 * big-endian number; the counter starts at 0 and counts every record.
 * After rekey_interval records the direction's key is replaced by
 * HKDF-Expand(key, "peerlink rekey", 32) and the counter restarts at 0
 * (both sides do it at the same record; no message is needed).
 * A record that fails to open (tampered, replayed, reordered, truncated
 * or from another key) is PL_ERR_AUTH: the session must end.
 */
#ifndef PL_CORE_RECORD_H
#define PL_CORE_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "frame.h"

#define PL_RECORD_KEY 32
#define PL_RECORD_TAG 16
/* Largest inner frame (header + payload) one record carries. */
#define PL_RECORD_MAX_INNER (PL_FRAME_MAX_PAYLOAD - PL_RECORD_TAG)
/* Largest inner frame payload: messages are split into frames of at most this. */
#define PL_RECORD_MAX_INNER_PAYLOAD (PL_RECORD_MAX_INNER - PL_FRAME_HEADER_SIZE)
/* Records per key before the implicit rekey. */
#define PL_RECORD_REKEY_INTERVAL (UINT64_C(1) << 24)

/* Who computes ChaCha20-Poly1305: the same bytes either way (docs/PERFORMANCE.md). */
typedef enum pl_aead_impl {
    PL_AEAD_DEFAULT = 0,  /* libcrypto's if built with it (faster), else libsodium's; libcrypto's
                             only for inner frames of at least PL_RECORD_EVP_FROM bytes */
    PL_AEAD_LIBSODIUM = 1,
    PL_AEAD_LIBCRYPTO = 2 /* only with PL_HAVE_LIBCRYPTO_AEAD */
} pl_aead_impl;

/* PL_AEAD_DEFAULT: inner frames shorter than this are sealed and opened by
 * libsodium even where libcrypto is built in. libcrypto computes long
 * records twice as fast or more, but each of its calls costs more; up to
 * 512 bytes libsodium's seal and open are the faster (docs/PERFORMANCE.md,
 * "Short records by libsodium"). */
#define PL_RECORD_EVP_FROM 513

/* libcrypto's contexts, one to seal and one to open with, which any number
 * of directions may share (those of the sessions of one pl_node: one
 * thread): a context is keyed again whenever a record needs another key
 * than the one it holds, so sharing it costs a key setup per change of
 * direction, and saves each direction a context (about 1 KiB). Opaque. */
typedef struct pl_aead_cache pl_aead_cache;

/* A new cache, or NULL (no memory, or a build without libcrypto: libsodium seals). */
pl_aead_cache *pl_aead_cache_new(void);
/* Free it (wiping the keys in it), after every direction that uses it is cleared. */
void pl_aead_cache_free(pl_aead_cache *c);

typedef struct pl_record_dir {
    uint8_t key[PL_RECORD_KEY];
    pl_aead_cache *evp;       /* libcrypto's contexts, or NULL: libsodium. A copy of the struct (a
                                 rollback) stays valid: the contexts compare keys, not owners */
    int evp_owned;            /* evp is this direction's own (freed with it), not a shared cache */
    size_t evp_from;          /* evp computes inner frames of at least this many bytes; libsodium
                                 the shorter ones (PL_RECORD_EVP_FROM, or 0: PL_AEAD_LIBCRYPTO) */
    uint64_t counter;         /* records sealed/opened under key */
    uint64_t rekey_interval;
    uint64_t epoch;           /* rekeys so far */
    int ready;                /* keyed */
} pl_record_dir;

/* Key a direction (PL_AEAD_DEFAULT). rekey_interval 0 means PL_RECORD_REKEY_INTERVAL.
 * Cannot fail: without memory for libcrypto's context, libsodium seals. */
void pl_record_init(pl_record_dir *d, const uint8_t key[PL_RECORD_KEY], uint64_t rekey_interval);
/* As pl_record_init, with the implementation named (tests, benchmarks). PL_OK, or
 * PL_ERR_UNSUPPORTED (libcrypto's: not in this build) / PL_ERR_NOMEM with d unkeyed. */
int pl_record_init_with(pl_record_dir *d, const uint8_t key[PL_RECORD_KEY], uint64_t rekey_interval,
                        pl_aead_impl impl);
/* As pl_record_init, with libcrypto's contexts taken from cache (not
 * owned; NULL: as pl_record_init). Cannot fail. */
void pl_record_init_cached(pl_record_dir *d, const uint8_t key[PL_RECORD_KEY], uint64_t rekey_interval,
                           pl_aead_cache *cache);
/* The implementation that seals and opens d's records whose inner frame
 * is inner_len bytes long (the one place that decides it). */
pl_aead_impl pl_record_impl(const pl_record_dir *d, size_t inner_len);
/* Wipe, and free libcrypto's context. */
void pl_record_clear(pl_record_dir *d);
/* Seal one inner frame (inner_len <= PL_RECORD_MAX_INNER) and append the
 * RECORD frame to out. inner may point into out only where the record's
 * ciphertext goes (out's tail + PL_FRAME_HEADER_SIZE), with room for the
 * whole record reserved before. PL_OK, PL_ERR_INVALID (too long, not
 * keyed), PL_ERR_NOMEM (out unchanged). */
int pl_record_seal(pl_record_dir *d, const uint8_t *inner, size_t inner_len, pl_buf *out);

/* A piece of an inner frame. */
typedef struct pl_record_part {
    const uint8_t *p;
    size_t len;
} pl_record_part;

/* As pl_record_seal, for the inner frame made of parts[0..nparts) in turn
 * (a header, a sequence number, the message's bytes): libcrypto seals
 * them from where they are; libsodium, which needs the plaintext whole,
 * gathers them where the ciphertext goes first. Once out has room for the
 * record, it cannot fail unless a part lies where the ciphertext goes:
 * should libcrypto fail, libsodium seals the same bytes. */
int pl_record_seal_parts(pl_record_dir *d, const pl_record_part *parts, size_t nparts, pl_buf *out);
/* Open the payload of a RECORD frame whose header is hdr. out must hold
 * payload_len - PL_RECORD_TAG bytes; *out_len receives that. PL_OK,
 * PL_ERR_AUTH (fails to authenticate), PL_ERR_MALFORMED (shorter than a tag). */
int pl_record_open(pl_record_dir *d, const uint8_t hdr[PL_FRAME_HEADER_SIZE], const uint8_t *payload,
                   size_t payload_len, uint8_t *out, size_t *out_len);

#endif
