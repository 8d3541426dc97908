/* SPDX-License-Identifier: ISC */
/*
 * peerlink — the keystore: this device's long-term identity (an Ed25519
 * key pair) and the identities of the peers it has paired with, plus
 * the pairing attempt state (one budget per keystore, shared by every
 * listener and byte session that uses it: docs/PROTOCOL.md section 11.2).
 *
 * A keystore is a small set of named items. peerlink ships a directory
 * store (one file per item, written atomically: temporary file, fsync,
 * rename; files mode 0600, directory 0700) and a memory store; an
 * application can plug in its own (Keychain, Android Keystore) through
 * pl_keystore_ops. Every item carries a checksum: a damaged item is
 * reported as PL_ERR_CORRUPT, never trusted and never a crash.
 *
 * Threading: a pl_keystore is not thread-safe; use it from one thread
 * (the loop's). Secrets read from it are wiped after use; the identity's
 * secret key is kept from its first use until pl_keystore_free(), which
 * wipes it (a listener needs it for every connection).
 */
#ifndef PEERLINK_KEYSTORE_H
#define PEERLINK_KEYSTORE_H

#include <peerlink/common.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct pl_keystore pl_keystore;

/** Largest item a store must hold, in bytes. */
#define PL_KEYSTORE_MAX_ITEM 4096

/**
 * Storage operations of an application-provided store. Item names are
 * 1..64 bytes of [a-z0-9._-]. Every function returns PL_OK or a
 * negative pl_error. They are called from the loop's thread only.
 */
typedef struct pl_keystore_ops {
    /** sizeof(pl_keystore_ops), set by whoever fills the table: the library reads only the members it
     *  covers, so that later versions can append members; a size below the first version's
     *  is refused with PL_ERR_INVALID. */
    size_t size;
    /** Read item name into a malloc'd buffer (*data, *len; the caller frees). PL_ERR_NOT_FOUND if absent. */
    int (*get)(void *ctx, const char *name, uint8_t **data, size_t *len);
    /** Create or replace item name, atomically: after a crash either the old or the new value is there. */
    int (*put)(void *ctx, const char *name, const uint8_t *data, size_t len);
    /** Delete item name. PL_ERR_NOT_FOUND if absent. */
    int (*del)(void *ctx, const char *name);
    /** Call fn(name, arg) for every item whose name starts with prefix; stop early if fn returns non-zero. */
    int (*list)(void *ctx, const char *prefix, int (*fn)(const char *name, void *arg), void *arg);
    /** Release ctx when the keystore is freed (may be NULL). */
    void (*free)(void *ctx);
} pl_keystore_ops;

/**
 * A keystore over application-provided operations. ops is copied; ctx
 * is passed to them. PL_OK with *out set, or PL_ERR_INVALID /
 * PL_ERR_NOMEM with *out untouched (and ops->free not called).
 */
PL_EXPORT int pl_keystore_new(const pl_keystore_ops *ops, void *ctx, pl_keystore **out);

/**
 * The directory store at dir, created (mode 0700) if missing. PL_OK,
 * PL_ERR_IO (errno set: e.g. EACCES, ENOTDIR), PL_ERR_NOMEM,
 * PL_ERR_INVALID. Several keystores, in one process or in several, may
 * open one directory: the identity is created and the pairing attempt
 * state is changed under a lock (flock() on the directory), so they
 * share one identity and one attempt budget.
 */
PL_EXPORT int pl_keystore_open_dir(const char *dir, pl_keystore **out);

/** A store that lives in memory and is wiped when freed (tests, throw-away identities). */
PL_EXPORT int pl_keystore_new_memory(pl_keystore **out);

/** Free the keystore (calling ops->free). NULL is accepted. */
PL_EXPORT void pl_keystore_free(pl_keystore *ks);

/** Size of an identity public key and of a peer id, in bytes. */
#define PL_ID_SIZE 32
/** PL_ID_SIZE as a function, for bindings. */
PL_EXPORT size_t pl_id_size(void);

/**
 * This device's identity public key into id (PL_ID_SIZE bytes),
 * creating the key pair on first use. PL_OK, PL_ERR_CORRUPT, PL_ERR_IO,
 * PL_ERR_NOMEM.
 */
PL_EXPORT int pl_keystore_identity(pl_keystore *ks, uint8_t id[PL_ID_SIZE]);

/** A paired peer. */
typedef struct pl_paired_peer {
    uint8_t id[PL_ID_SIZE]; /**< its identity public key */
    char name[64];          /**< the name it was paired under (instance or device name), NUL-terminated */
    int64_t paired_at;      /**< seconds since the Unix epoch */
} pl_paired_peer;

/**
 * Every paired peer, oldest first, into a malloc'd array *peers of *n
 * entries (the caller frees it; NULL when *n is 0). Corrupt peer items
 * are skipped. PL_OK, PL_ERR_IO, PL_ERR_NOMEM.
 */
PL_EXPORT int pl_keystore_list_peers(pl_keystore *ks, pl_paired_peer **peers, size_t *n);

/**
 * Forget every peer paired under name: later connections with it need
 * a code again. PL_OK, PL_ERR_NOT_FOUND (none had that name), PL_ERR_IO.
 */
PL_EXPORT int pl_keystore_forget(pl_keystore *ks, const char *name);

/** Format an id as 64 lowercase hex digits plus NUL into buf (at least 65 bytes). PL_OK or PL_ERR_INVALID. */
PL_EXPORT int pl_id_to_string(const uint8_t id[PL_ID_SIZE], char *buf, size_t cap);

#ifdef __cplusplus
}
#endif
#endif
