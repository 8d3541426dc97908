/* SPDX-License-Identifier: ISC */
/* What the handshake needs from the keystore. Not installed. */
#ifndef PL_KEYSTORE_INTERNAL_H
#define PL_KEYSTORE_INTERNAL_H

#include "internal.h"
#include <peerlink/keystore.h>

/* Item names: 1..PL_KEYSTORE_NAME_MAX bytes of [a-z0-9._-]. */
#define PL_KEYSTORE_NAME_MAX 64
int pl__keystore_item_name_ok(const char *name);
static inline int pl__has_prefix(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}
/* Wipe and free a buffer that may have held a secret (NULL is fine). */
void pl__wipe_free(uint8_t *p, size_t len);
/* The store's lock across processes (keystore_stores.c: the directory's). */
void pl__keystore_set_lock(pl_keystore *ks, int (*xlock)(void *ctx, int on));

/* The Ed25519 secret key (libsodium's 64-byte form, which embeds the
 * public key), created on first use. The caller wipes sk after use. */
int pl__keystore_identity_secret(pl_keystore *ks, uint8_t sk[64]);

/* Look a peer up by id. PL_OK with *out filled, PL_ERR_NOT_FOUND, PL_ERR_CORRUPT, PL_ERR_IO. */
int pl__keystore_find_peer(pl_keystore *ks, const uint8_t id[PL_ID_SIZE], pl_paired_peer *out);

/* The most recently paired peer with this name. PL_OK, PL_ERR_NOT_FOUND, ... */
int pl__keystore_find_peer_by_name(pl_keystore *ks, const char *name, pl_paired_peer *out);

/* Store a peer (replacing any record with the same id). */
int pl__keystore_save_peer(pl_keystore *ks, const pl_paired_peer *p);

/* Pairing attempt state, kept per scope and shared by every policy
 * object, keystore object and process that uses the scope (pairing.c). */
typedef struct pl_attempts {
    uint32_t failures;     /* attempts against fixed codes that began and did not succeed */
    uint32_t lock_level;   /* how many times a fixed code was locked (the delay doubles each time) */
    int64_t locked_until;  /* Unix time in seconds; 0 if not locked */
    int64_t busy_until_ms; /* Unix time in ms: an attempt is in progress until then at the latest */
    uint64_t busy_token;   /* which attempt (random): only its end clears busy_until_ms */
    int64_t retry_at_ms;   /* Unix time in ms: no attempt begins before this (the pause after a failure) */
} pl_attempts;

/* Read (all zero if absent; PL_ERR_CORRUPT for a damaged item, which the
 * caller must treat as locked: it fails closed) and write. */
int pl__keystore_get_attempts(pl_keystore *ks, const char *scope, pl_attempts *a);
int pl__keystore_put_attempts(pl_keystore *ks, const char *scope, const pl_attempts *a);
/* Read, change and write back the attempts of scope under the store's
 * lock (held across processes for a directory store). fn returns > 0 to
 * write *a back, 0 to leave it, or a negative pl_error (nothing written).
 * Returns PL_OK, fn's error, or the store's (PL_ERR_CORRUPT for a damaged
 * item: fn is not called, and the caller fails closed). */
int pl__keystore_update_attempts(pl_keystore *ks, const char *scope,
                                 int (*fn)(pl_attempts *a, void *arg), void *arg);

#endif
