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

/* An initiator that paired with us, by id. PL_OK with *out filled,
 * PL_ERR_NOT_FOUND, PL_ERR_CORRUPT, PL_ERR_IO. */
int pl__keystore_find_initiator(pl_keystore *ks, const uint8_t id[PL_ID_SIZE], pl_paired_peer *out);

/* Forget the initiator entry of id only. PL_OK, PL_ERR_NOT_FOUND, PL_ERR_IO... */
int pl__keystore_forget_initiator(pl_keystore *ks, const uint8_t id[PL_ID_SIZE]);

/* The responder stored under name (compared as DNS-SD compares instance
 * names; the newest if several). PL_OK, PL_ERR_NOT_FOUND, PL_ERR_IO... */
int pl__keystore_find_responder(pl_keystore *ks, const char *name, pl_paired_peer *out);

/* The responder whose discovery hint (PL_HINT_KEY) is in txt (the newest
 * if several). PL_ERR_NOT_FOUND also when txt has no well-formed hint. */
int pl__keystore_find_hinted(pl_keystore *ks, const pl_txt *txt, pl_paired_peer *out);

/* Store a peer in its role: the entry with the same id (and, for a
 * responder, the same name) is replaced. A responder then replaces what
 * was known of its name: the other responders stored under that name are
 * deleted, after the new entry is written. */
int pl__keystore_save_peer(pl_keystore *ks, const pl_paired_peer *p);

/* The discovery hint of the responder id (docs/PROTOCOL.md section 2.1):
 * TXT key PL_HINT_KEY, value PL_HINT_LEN lowercase hex digits of
 * salt (4) | BLAKE2b-128(key = id, "peerlink hint" | salt)[0..5]. */
#define PL_HINT_KEY "pl-hint"
#define PL_HINT_SALT 4
#define PL_HINT_TAG 6
#define PL_HINT_LEN (2 * (PL_HINT_SALT + PL_HINT_TAG))
void pl__hint_make(const uint8_t id[PL_ID_SIZE], const uint8_t salt[PL_HINT_SALT], char out[PL_HINT_LEN + 1]);
/* 1 if txt carries a hint made from id. */
int pl__hint_matches(const pl_txt *txt, const uint8_t id[PL_ID_SIZE]);
/* 1 if txt carries a hint key at all (well-formed or not). */
int pl__hint_present(const pl_txt *txt);

/* Pairing attempt state (pl_attempts, core/policy.h: the policy decides
 * on it), kept per scope and shared by every policy object, keystore
 * object and process that uses the scope (pairing.c). */
#include "core/policy.h"

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
