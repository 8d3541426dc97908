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
 * reported as PL_ERR_CORRUPT, never trusted and never a crash. The
 * checksum (unkeyed) detects corruption, not tampering: whoever can write
 * the store can replace any item with another that checks, so the store
 * itself must be writable by this user only (the directory store checks
 * that: pl_keystore_open_dir()).
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
 * PL_ERR_PERMISSION (errno EACCES), PL_ERR_IO (errno set: e.g. EACCES,
 * ENOTDIR), PL_ERR_NOMEM, PL_ERR_INVALID.
 *
 * Who may have written it: an existing directory is refused with
 * PL_ERR_PERMISSION, and a PL_LOG_ERROR line names it and the problem,
 * if its owner is neither this process's effective user nor root, or if
 * its group or others can write it (as OpenSSH's StrictModes; a directory
 * others can only read is accepted: they see item names, not contents).
 * The same holds for every item, checked when the directory is opened and
 * again whenever an item is read (then the call that read it fails with
 * PL_ERR_PERMISSION). An item that group or others can read but not write
 * (a file copied in under umask 022) is made 0600 and a PL_LOG_WARNING line
 * names it: if others could reach it through the directory, treat the
 * identity as exposed. A symbolic link (to the directory or to an item) is
 * followed, and what is checked is the file it leads to; the directories
 * above dir are not checked.
 *
 * Several keystores, in one process or in several, may open one
 * directory: every read-modify-write (creating the identity, saving or
 * forgetting a peer, changing the pairing attempt state) holds a lock
 * (flock() on the directory), so they share one identity, one set of
 * peers and one attempt budget. A keystore reads the identity once and
 * keeps it; peers and attempts are read from the directory each time.
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

/**
 * The two kinds of pairing, kept apart (docs/PROTOCOL.md section 2.1):
 * a name chosen by a peer never selects the key that authenticates
 * another peer.
 */
typedef enum pl_peer_role {
    /** A responder this device dialled and paired with. Its name is the
     *  instance name it was reached under, which this device chose to dial;
     *  dialling that name later expects this peer's id (and finds the peer
     *  again under another instance name: PROTOCOL.md section 2.1). */
    PL_PEER_RESPONDER = 1,
    /** An initiator that paired with one of this device's listeners. Its
     *  name is the display name it claimed when it paired (Identity.name):
     *  a label only, never used to look the peer up. A reconnecting
     *  initiator is found by its id. */
    PL_PEER_INITIATOR = 2
} pl_peer_role;

/** A paired peer. */
typedef struct pl_paired_peer {
    uint8_t id[PL_ID_SIZE]; /**< its identity public key */
    char name[64];          /**< the stored name, NUL-terminated: see pl_peer_role */
    int64_t paired_at;      /**< seconds since the Unix epoch */
    pl_peer_role role;      /**< how it paired */
} pl_paired_peer;

/**
 * Every paired peer, oldest first, into a malloc'd array *peers of *n
 * entries (the caller frees it; NULL when *n is 0). A peer paired in both
 * roles, or as a responder under several names, has one entry for each.
 * Corrupt peer items are skipped. PL_OK, PL_ERR_IO, PL_ERR_NOMEM,
 * PL_ERR_PERMISSION (an item others could have written, see
 * pl_keystore_open_dir()).
 */
PL_EXPORT int pl_keystore_list_peers(pl_keystore *ks, pl_paired_peer **peers, size_t *n);

/**
 * Forget every entry stored under name, in both roles: a responder's
 * name compared as DNS-SD compares instance names (ASCII letters in
 * either case, as pl_connect_by_name() finds it), an initiator's byte
 * for byte. Later connections with those peers need a code again.
 * An initiator's stored name is its own claim, so forgetting "Kitchen"
 * also forgets an initiator that called itself "Kitchen";
 * pl_keystore_forget_id() forgets one peer exactly.
 * PL_OK, PL_ERR_NOT_FOUND (none had that name), PL_ERR_INVALID, PL_ERR_IO,
 * PL_ERR_PERMISSION.
 */
PL_EXPORT int pl_keystore_forget(pl_keystore *ks, const char *name);

/**
 * Forget every entry of the peer with this id (PL_ID_SIZE bytes), in both
 * roles and under every name. PL_OK, PL_ERR_NOT_FOUND (not paired),
 * PL_ERR_INVALID, PL_ERR_IO, PL_ERR_PERMISSION.
 */
PL_EXPORT int pl_keystore_forget_id(pl_keystore *ks, const uint8_t id[PL_ID_SIZE]);

/** Format an id as 64 lowercase hex digits plus NUL into buf (at least 65 bytes). PL_OK or PL_ERR_INVALID. */
PL_EXPORT int pl_id_to_string(const uint8_t id[PL_ID_SIZE], char *buf, size_t cap);

#ifdef __cplusplus
}
#endif
#endif
