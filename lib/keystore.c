/* SPDX-License-Identifier: ISC */
/*
 * The keystore: this device's identity, its paired peers and the pairing
 * attempt counters, stored as named, sealed items in a pluggable store
 * (directory, memory, or application-provided pl_keystore_ops).
 *
 * Item names (1..64 bytes of [a-z0-9._-]):
 *   "identity"          this device's Ed25519 key pair
 *   "peer.<hex id>"     an initiator that paired with us; <hex id> = the first 58
 *                       lowercase hex digits of its id (29 of its 32 bytes)
 *   "resp.<hex hash>"   a responder we paired with, per id and name; see peer_item_name()
 *   "attempts.<scope>"  the attempt state of a listener scope, see attempts_name()
 *
 * Every item is sealed as
 *   "PLK1" | type (1: identity, 2: initiator peer, 3: attempts, 4: responder peer)
 *   | payload length (u16 BE)
 *   | payload | BLAKE2b-128 (crypto_generichash, no key) over everything before it.
 * A sealed item that fails any check is PL_ERR_CORRUPT and is never trusted.
 * The checksum has no key: it detects corruption (a torn or damaged file),
 * not tampering, since whoever can write the store can seal any item. The
 * directory store therefore refuses a directory or an item that another
 * user could have written (keystore_stores.c).
 *
 * Payloads (integers big endian):
 *   identity  64-byte Ed25519 secret key (libsodium form: seed | public key)
 *   peer      id (32) | paired_at (i64) | name length (1) | name (<= 63 bytes, no NUL)
 *             (both roles; the role is the item's type and name prefix)
 *   attempts  failures (u32) | lock_level (u32) | locked_until (i64)
 *             | busy_until_ms (i64) | busy_token (u64) | retry_at_ms (i64)
 *             | gen_failures (u32)
 *             (44 bytes; an item of the first 16 or 40 bytes alone, as
 *             written before the later fields existed, reads them as 0)
 *
 * A read-modify-write of an attempts item (pl__keystore_update_attempts)
 * holds the store's lock: for the directory store, flock() on the
 * directory, so that processes sharing one directory share one budget.
 * So do the identity's creation and every change of peer entries.
 */
#include "keystore_internal.h"

#include <stdio.h>

#include <sodium.h>

struct pl_keystore {
    pl_keystore_ops ops;
    void *ctx;
    /* Exclusive lock across processes around a read-modify-write (on != 0:
     * take, 0: release); NULL where the store has none (memory, an
     * application's store). */
    int (*xlock)(void *ctx, int on);
    /* The identity's secret key once read (or made): a listener needs it
     * for every connection, and reading the store each time would let any
     * neighbour make it do so at will. Wiped by pl_keystore_free(). */
    int have_identity;
    uint8_t identity_sk[64];
};



#define SEAL_MAGIC "PLK1"
#define SEAL_HEAD 7  /* magic (4) + type (1) + length (2) */
#define SEAL_SUM 16  /* BLAKE2b-128 */
#define SEAL_OVERHEAD (SEAL_HEAD + SEAL_SUM)

enum { ITEM_IDENTITY = 1, ITEM_PEER = 2, ITEM_ATTEMPTS = 3, ITEM_RESPONDER = 4 };

#define IDENTITY_NAME "identity"
#define PEER_PREFIX "peer."
#define RESPONDER_PREFIX "resp." /* as long as PEER_PREFIX */
#define ATTEMPTS_PREFIX "attempts."

#define PEER_FIXED (PL_ID_SIZE + 8 + 1)        /* payload bytes before the name */
#define PEER_NAME_MAX 63
#define ATTEMPTS_SIZE 44
#define ATTEMPTS_SIZE_V1 40 /* before gen_failures */
#define ATTEMPTS_SIZE_V0 16 /* before busy_until_ms, busy_token, retry_at_ms */

/* ------------------------------------------------------------ helpers */

int pl__keystore_item_name_ok(const char *name)
{
    if (!name)
        return 0;
    size_t n = 0;
    for (; name[n]; n++) {
        if (n >= PL_KEYSTORE_NAME_MAX)
            return 0;
        char c = name[n];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == '-'))
            return 0;
    }
    return n >= 1;
}


static void put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static uint16_t get_u16(const uint8_t *p)
{
    return (uint16_t)((uint16_t)p[0] << 8 | p[1]);
}

static void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (24 - 8 * i));
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static void put_i64(uint8_t *p, int64_t v)
{
    uint64_t u = (uint64_t)v;
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(u >> (56 - 8 * i));
}

static int64_t get_i64(const uint8_t *p)
{
    uint64_t u = 0;
    for (int i = 0; i < 8; i++)
        u = u << 8 | p[i];
    /* Two's complement conversion without implementation-defined casts. */
    if (u <= (uint64_t)INT64_MAX)
        return (int64_t)u;
    return -(int64_t)(~u) - 1;
}

void pl__wipe_free(uint8_t *p, size_t len)
{
    if (p) {
        sodium_memzero(p, len);
        free(p);
    }
}

/* ------------------------------------------------------------ sealing */

/* Seal payload into out (cap >= plen + SEAL_OVERHEAD); returns the sealed length. */
static size_t seal(uint8_t type, const uint8_t *payload, size_t plen, uint8_t *out)
{
    memcpy(out, SEAL_MAGIC, 4);
    out[4] = type;
    put_u16(out + 5, (uint16_t)plen);
    if (plen)
        memcpy(out + SEAL_HEAD, payload, plen);
    crypto_generichash(out + SEAL_HEAD + plen, SEAL_SUM, out, SEAL_HEAD + plen, NULL, 0);
    return SEAL_HEAD + plen + SEAL_SUM;
}

/* Check a sealed item of the given type. PL_OK with *payload pointing into
 * data and *plen set, or PL_ERR_CORRUPT. */
static int unseal(uint8_t type, const uint8_t *data, size_t len, const uint8_t **payload,
                  size_t *plen)
{
    if (!data || len < SEAL_OVERHEAD || len > PL_KEYSTORE_MAX_ITEM)
        return PL_ERR_CORRUPT;
    if (memcmp(data, SEAL_MAGIC, 4) != 0 || data[4] != type)
        return PL_ERR_CORRUPT;
    size_t n = get_u16(data + 5);
    if (n != len - SEAL_OVERHEAD)
        return PL_ERR_CORRUPT;
    uint8_t sum[SEAL_SUM];
    crypto_generichash(sum, sizeof sum, data, SEAL_HEAD + n, NULL, 0);
    if (sodium_memcmp(sum, data + SEAL_HEAD + n, SEAL_SUM) != 0)
        return PL_ERR_CORRUPT;
    *payload = data + SEAL_HEAD;
    *plen = n;
    return PL_OK;
}

/* ------------------------------------------------- checked store access */

/* Normalise an error from a store: anything non-negative but non-zero,
 * or not a pl_error a store may return (PL_ERR_PERMISSION: the directory
 * store refused an item someone else could have written), is reported as
 * PL_ERR_IO. */
static int store_rc(int rc)
{
    if (rc == PL_OK || (rc < 0 && rc >= PL_ERR_CORRUPT) || rc == PL_ERR_PERMISSION)
        return rc;
    return PL_ERR_IO;
}

/* Get an item. The data (malloc'd, caller wipes and frees) is at most
 * PL_KEYSTORE_MAX_ITEM bytes; a larger item is PL_ERR_CORRUPT. */
static int ks_get(pl_keystore *ks, const char *name, uint8_t **data, size_t *len)
{
    if (!pl__keystore_item_name_ok(name))
        return PL_ERR_INVALID;
    uint8_t *d = NULL;
    size_t n = 0;
    int rc = store_rc(ks->ops.get(ks->ctx, name, &d, &n));
    if (rc != PL_OK) {
        free(d); /* a well-behaved store leaves it NULL */
        return rc;
    }
    if (!d || n > PL_KEYSTORE_MAX_ITEM) {
        /* Not wiped: the store's length is not trusted that far. */
        free(d);
        return PL_ERR_CORRUPT;
    }
    *data = d;
    *len = n;
    return PL_OK;
}

static int ks_put(pl_keystore *ks, const char *name, const uint8_t *data, size_t len)
{
    if (!pl__keystore_item_name_ok(name) || len > PL_KEYSTORE_MAX_ITEM)
        return PL_ERR_INVALID;
    return store_rc(ks->ops.put(ks->ctx, name, data, len));
}

static int ks_del(pl_keystore *ks, const char *name)
{
    if (!pl__keystore_item_name_ok(name))
        return PL_ERR_INVALID;
    return store_rc(ks->ops.del(ks->ctx, name));
}

/* The names of the items with a prefix, collected (no store call is made
 * while the store is listing). */
typedef struct name_list {
    char (*names)[PL_KEYSTORE_NAME_MAX + 1];
    size_t n, cap;
    const char *prefix;
    int failed;
} name_list;

static int collect_name(const char *name, void *arg)
{
    name_list *l = arg;
    /* Never trust a store: check what it hands us. */
    if (!pl__keystore_item_name_ok(name) || !pl__has_prefix(name, l->prefix))
        return 0;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        void *p = realloc(l->names, cap * sizeof *l->names);
        if (!p) {
            l->failed = 1;
            return 1;
        }
        l->names = p;
        l->cap = cap;
    }
    strcpy(l->names[l->n++], name);
    return 0;
}

static int ks_list_names(pl_keystore *ks, const char *prefix, name_list *l)
{
    memset(l, 0, sizeof *l);
    l->prefix = prefix;
    int rc = store_rc(ks->ops.list(ks->ctx, prefix, collect_name, l));
    if (rc == PL_OK && l->failed)
        rc = PL_ERR_NOMEM;
    if (rc != PL_OK) {
        free(l->names);
        memset(l, 0, sizeof *l);
    }
    return rc;
}

/* The store's lock (flock() on a directory store's directory: across
 * processes), held by every read-modify-write and by every reading of the
 * peer entries as a whole: a save writes its entry, then deletes the ones
 * it replaces, and another keystore on the same store must see neither
 * half alone (two saves of one name would each delete the other's entry,
 * leaving none; a listing between the write and the delete could find an
 * entry gone). Not reentrant: taken by the public entry points only. */
static int lock_store(pl_keystore *ks)
{
    return ks->xlock && ks->xlock(ks->ctx, 1) != PL_OK ? PL_ERR_IO : PL_OK;
}

static void unlock_store(pl_keystore *ks)
{
    if (ks->xlock)
        ks->xlock(ks->ctx, 0);
}

/* ----------------------------------------------------------- keystore */

int pl_keystore_new(const pl_keystore_ops *ops, void *ctx, pl_keystore **out)
{
    pl_keystore_ops o;
    if (!out || pl__copy_vtable(&o, sizeof o, ops, PL__KEYSTORE_OPS_V1_SIZE) != PL_OK || !o.get || !o.put || !o.del ||
        !o.list)
        return PL_ERR_INVALID;
    if (sodium_init() < 0)
        return PL_ERR_NOMEM;
    pl_keystore *ks = calloc(1, sizeof *ks);
    if (!ks)
        return PL_ERR_NOMEM;
    ks->ops = o;
    ks->ctx = ctx;
    *out = ks;
    return PL_OK;
}

void pl__keystore_set_lock(pl_keystore *ks, int (*xlock)(void *ctx, int on))
{
    ks->xlock = xlock;
}

void pl_keystore_free(pl_keystore *ks)
{
    if (!ks)
        return;
    if (ks->ops.free)
        ks->ops.free(ks->ctx);
    sodium_memzero(ks->identity_sk, sizeof ks->identity_sk);
    free(ks);
}

size_t pl_id_size(void)
{
    return PL_ID_SIZE;
}

int pl_id_to_string(const uint8_t id[PL_ID_SIZE], char *buf, size_t cap)
{
    if (!id || !buf || cap < PL_ID_SIZE * 2 + 1)
        return PL_ERR_INVALID;
    sodium_bin2hex(buf, cap, id, PL_ID_SIZE);
    return PL_OK;
}

/* ----------------------------------------------------------- identity */

/* Check an identity payload: 64 bytes whose public half is the one the
 * seed derives. (crypto_sign_ed25519_sk_to_pk only copies the last 32
 * bytes, so the key pair is re-derived from the seed to compare.) */
static int check_identity(const uint8_t *p, size_t n)
{
    if (n != crypto_sign_SECRETKEYBYTES)
        return PL_ERR_CORRUPT;
    uint8_t pk_stored[crypto_sign_PUBLICKEYBYTES];
    uint8_t pk[crypto_sign_PUBLICKEYBYTES];
    uint8_t sk[crypto_sign_SECRETKEYBYTES];
    crypto_sign_ed25519_sk_to_pk(pk_stored, p);
    int rc = crypto_sign_seed_keypair(pk, sk, p) == 0 ? PL_OK : PL_ERR_CORRUPT;
    if (rc == PL_OK && (sodium_memcmp(pk, pk_stored, sizeof pk) != 0 ||
                        sodium_memcmp(sk, p, sizeof sk) != 0))
        rc = PL_ERR_CORRUPT;
    sodium_memzero(sk, sizeof sk);
    return rc;
}

static int create_identity(pl_keystore *ks, uint8_t sk[64])
{
    uint8_t pk[crypto_sign_PUBLICKEYBYTES];
    uint8_t sealed[crypto_sign_SECRETKEYBYTES + SEAL_OVERHEAD];
    crypto_sign_keypair(pk, sk);
    size_t n = seal(ITEM_IDENTITY, sk, crypto_sign_SECRETKEYBYTES, sealed);
    int rc = ks_put(ks, IDENTITY_NAME, sealed, n);
    sodium_memzero(sealed, sizeof sealed);
    return rc;
}

static int identity_secret(pl_keystore *ks, uint8_t sk[64])
{
    uint8_t *data = NULL;
    size_t len = 0;
    int rc = ks_get(ks, IDENTITY_NAME, &data, &len);
    if (rc == PL_ERR_NOT_FOUND) {
        rc = create_identity(ks, sk);
    } else if (rc == PL_OK) {
        const uint8_t *p;
        size_t n;
        rc = unseal(ITEM_IDENTITY, data, len, &p, &n);
        if (rc == PL_OK)
            rc = check_identity(p, n);
        if (rc == PL_OK)
            memcpy(sk, p, crypto_sign_SECRETKEYBYTES);
        pl__wipe_free(data, len);
    }
    if (rc != PL_OK)
        sodium_memzero(sk, 64);
    return rc;
}

/* Under the store's lock, so that two processes that open one directory
 * for the first time agree on one identity. */
int pl__keystore_identity_secret(pl_keystore *ks, uint8_t sk[64])
{
    if (!ks || !sk)
        return PL_ERR_INVALID;
    if (!ks->have_identity) {
        int rc = lock_store(ks);
        if (rc != PL_OK)
            return rc;
        rc = identity_secret(ks, ks->identity_sk);
        unlock_store(ks);
        if (rc != PL_OK)
            return rc;
        ks->have_identity = 1;
    }
    memcpy(sk, ks->identity_sk, sizeof ks->identity_sk);
    return PL_OK;
}

int pl_keystore_identity(pl_keystore *ks, uint8_t id[PL_ID_SIZE])
{
    if (!ks || !id)
        return PL_ERR_INVALID;
    uint8_t sk[crypto_sign_SECRETKEYBYTES];
    int rc = pl__keystore_identity_secret(ks, sk);
    if (rc == PL_OK)
        crypto_sign_ed25519_sk_to_pk(id, sk);
    sodium_memzero(sk, sizeof sk);
    return rc;
}

/* -------------------------------------------------------------- peers */

/*
 * The item name of a peer entry.
 *
 * An initiator (PL_PEER_INITIATOR) is "peer." and the hex of the first
 * PEER_NAME_ID bytes of its id: one entry per id, found by id when it
 * reconnects. All 64 hex digits would make a 69-byte name, over the 64
 * bytes a store must accept; 29 bytes (58 digits, a 63-byte name) keep
 * the name a prefix of pl_id_to_string's output. The item holds the full
 * id, which is checked on every load, and two ids sharing a 232-bit prefix
 * can't be found (they would share one item: the later save replaces).
 * Items written before roles existed have this name and type: they are
 * initiator entries (their name may be a peer's claim, so it never
 * selects a key when dialling).
 *
 * A responder (PL_PEER_RESPONDER) is "resp." and the hex of the 29-byte
 * BLAKE2b (crypto_generichash, no key) of its id followed by the name it
 * was paired under: one entry per id and name, so that pairing a device
 * under a second name keeps the first.
 */
#define PEER_NAME_ID ((PL_KEYSTORE_NAME_MAX - (sizeof PEER_PREFIX - 1)) / 2)

static void peer_item_name(const pl_paired_peer *p, char name[PL_KEYSTORE_NAME_MAX + 1])
{
    const size_t off = sizeof PEER_PREFIX - 1; /* RESPONDER_PREFIX is as long */
    if (p->role == PL_PEER_RESPONDER) {
        uint8_t h[PEER_NAME_ID];
        crypto_generichash_state st;
        crypto_generichash_init(&st, NULL, 0, sizeof h);
        crypto_generichash_update(&st, p->id, PL_ID_SIZE);
        crypto_generichash_update(&st, (const uint8_t *)p->name, strlen(p->name));
        crypto_generichash_final(&st, h, sizeof h);
        memcpy(name, RESPONDER_PREFIX, off);
        sodium_bin2hex(name + off, PL_KEYSTORE_NAME_MAX + 1 - off, h, sizeof h);
    } else {
        memcpy(name, PEER_PREFIX, off);
        sodium_bin2hex(name + off, PL_KEYSTORE_NAME_MAX + 1 - off, p->id, PEER_NAME_ID);
    }
}

/* The role an item name stands for (0: not a peer item). */
static pl_peer_role item_role(const char *item)
{
    if (pl__has_prefix(item, PEER_PREFIX))
        return PL_PEER_INITIATOR;
    if (pl__has_prefix(item, RESPONDER_PREFIX))
        return PL_PEER_RESPONDER;
    return 0;
}

/* Load and decode the peer item called item. PL_OK, PL_ERR_NOT_FOUND,
 * PL_ERR_CORRUPT (also when the item's type is not its role's, or the id
 * and name stored do not give its name), ... */
static int load_peer(pl_keystore *ks, const char *item, pl_paired_peer *out)
{
    pl_peer_role role = item_role(item);
    if (!role)
        return PL_ERR_INVALID;
    uint8_t *data = NULL;
    size_t len = 0;
    int rc = ks_get(ks, item, &data, &len);
    if (rc != PL_OK)
        return rc;
    const uint8_t *p;
    size_t n;
    rc = unseal(role == PL_PEER_RESPONDER ? ITEM_RESPONDER : ITEM_PEER, data, len, &p, &n);
    if (rc == PL_OK) {
        pl_paired_peer peer;
        memset(&peer, 0, sizeof peer);
        char expect[PL_KEYSTORE_NAME_MAX + 1];
        size_t nl = n >= PEER_FIXED ? p[PEER_FIXED - 1] : 0;
        if (n < PEER_FIXED || nl > PEER_NAME_MAX || n != PEER_FIXED + nl ||
            memchr(p + PEER_FIXED, '\0', nl)) {
            rc = PL_ERR_CORRUPT;
        } else {
            memcpy(peer.id, p, PL_ID_SIZE);
            peer.paired_at = get_i64(p + PL_ID_SIZE);
            memcpy(peer.name, p + PEER_FIXED, nl);
            peer.name[nl] = '\0';
            peer.role = role;
            peer_item_name(&peer, expect);
            if (strcmp(expect, item) != 0)
                rc = PL_ERR_CORRUPT;
            else
                *out = peer;
        }
    }
    pl__wipe_free(data, len);
    return rc;
}

static int write_peer(pl_keystore *ks, const pl_paired_peer *p)
{
    size_t nl = strnlen(p->name, sizeof p->name);
    if (nl > PEER_NAME_MAX || (p->role != PL_PEER_RESPONDER && p->role != PL_PEER_INITIATOR))
        return PL_ERR_INVALID;
    uint8_t payload[PEER_FIXED + PEER_NAME_MAX];
    memcpy(payload, p->id, PL_ID_SIZE);
    put_i64(payload + PL_ID_SIZE, p->paired_at);
    payload[PEER_FIXED - 1] = (uint8_t)nl;
    memcpy(payload + PEER_FIXED, p->name, nl);
    uint8_t sealed[sizeof payload + SEAL_OVERHEAD];
    size_t n = seal(p->role == PL_PEER_RESPONDER ? ITEM_RESPONDER : ITEM_PEER, payload, PEER_FIXED + nl, sealed);
    char name[PL_KEYSTORE_NAME_MAX + 1];
    peer_item_name(p, name);
    return ks_put(ks, name, sealed, n);
}

int pl__keystore_find_initiator(pl_keystore *ks, const uint8_t id[PL_ID_SIZE], pl_paired_peer *out)
{
    if (!ks || !id || !out)
        return PL_ERR_INVALID;
    pl_paired_peer p = {.role = PL_PEER_INITIATOR};
    memcpy(p.id, id, PL_ID_SIZE);
    char name[PL_KEYSTORE_NAME_MAX + 1];
    peer_item_name(&p, name);
    int rc = load_peer(ks, name, &p);
    if (rc != PL_OK)
        return rc;
    /* A sound item of another peer whose id starts the same. */
    if (memcmp(p.id, id, PL_ID_SIZE) != 0)
        return PL_ERR_NOT_FOUND;
    *out = p;
    return PL_OK;
}

static int peer_cmp(const void *a, const void *b)
{
    const pl_paired_peer *x = a, *y = b;
    if (x->paired_at != y->paired_at)
        return x->paired_at < y->paired_at ? -1 : 1;
    if (x->role != y->role)
        return x->role < y->role ? -1 : 1;
    int d = memcmp(x->id, y->id, PL_ID_SIZE);
    return d ? d : strcmp(x->name, y->name);
}

/* Load the peers of the items listed in l into arr (room for all) from *n on. */
static int load_listed(pl_keystore *ks, const name_list *l, pl_paired_peer *arr, size_t *n)
{
    for (size_t i = 0; i < l->n; i++) {
        int r = load_peer(ks, l->names[i], &arr[*n]);
        if (r == PL_OK)
            (*n)++;
        else if (r != PL_ERR_CORRUPT && r != PL_ERR_NOT_FOUND && r != PL_ERR_INVALID)
            return r;
    }
    return PL_OK;
}

/* Every readable peer entry of both roles, sorted oldest first; corrupt or
 * vanished items are skipped. */
static int load_all_peers(pl_keystore *ks, pl_paired_peer **peers, size_t *count)
{
    name_list li, lr;
    int rc = ks_list_names(ks, PEER_PREFIX, &li);
    if (rc != PL_OK)
        return rc;
    rc = ks_list_names(ks, RESPONDER_PREFIX, &lr);
    if (rc != PL_OK) {
        free(li.names);
        return rc;
    }
    pl_paired_peer *arr = NULL;
    size_t n = 0;
    if (li.n + lr.n) {
        arr = calloc(li.n + lr.n, sizeof *arr);
        if (!arr)
            rc = PL_ERR_NOMEM;
    }
    if (rc == PL_OK)
        rc = load_listed(ks, &li, arr, &n);
    if (rc == PL_OK)
        rc = load_listed(ks, &lr, arr, &n);
    free(li.names);
    free(lr.names);
    if (rc != PL_OK) {
        free(arr);
        return rc;
    }
    if (n == 0) {
        free(arr);
        arr = NULL;
    } else {
        qsort(arr, n, sizeof *arr, peer_cmp);
        /* A store that lists a name twice must not duplicate a peer. */
        size_t k = 1;
        for (size_t i = 1; i < n; i++)
            if (peer_cmp(&arr[i], &arr[k - 1]) != 0)
                arr[k++] = arr[i];
        n = k;
    }
    *peers = arr;
    *count = n;
    return PL_OK;
}

/* load_all_peers under the store's lock. */
static int load_all_peers_locked(pl_keystore *ks, pl_paired_peer **peers, size_t *count)
{
    int rc = lock_store(ks);
    if (rc != PL_OK)
        return rc;
    rc = load_all_peers(ks, peers, count);
    unlock_store(ks);
    return rc;
}

int pl_keystore_list_peers(pl_keystore *ks, pl_paired_peer **peers, size_t *n)
{
    if (!ks || !peers || !n)
        return PL_ERR_INVALID;
    pl_paired_peer *arr;
    size_t count;
    int rc = load_all_peers_locked(ks, &arr, &count);
    if (rc != PL_OK)
        return rc;
    *peers = arr;
    *n = count;
    return PL_OK;
}

/* Delete every entry for which match(entry, arg) holds, except the one
 * called keep (may be NULL). PL_OK if one went, PL_ERR_NOT_FOUND if none
 * matched, or the store's error. */
static int delete_peers(pl_keystore *ks, int (*match)(const pl_paired_peer *p, const void *arg), const void *arg,
                        const char *keep)
{
    pl_paired_peer *arr;
    size_t count;
    int rc = load_all_peers(ks, &arr, &count);
    if (rc != PL_OK)
        return rc;
    int found = 0;
    for (size_t i = 0; i < count; i++) {
        char item[PL_KEYSTORE_NAME_MAX + 1];
        peer_item_name(&arr[i], item);
        if (!match(&arr[i], arg) || (keep && strcmp(item, keep) == 0))
            continue;
        int r = ks_del(ks, item);
        if (r == PL_OK || r == PL_ERR_NOT_FOUND) {
            found = 1;
        } else {
            rc = r;
            break;
        }
    }
    free(arr);
    if (rc != PL_OK)
        return rc;
    return found ? PL_OK : PL_ERR_NOT_FOUND;
}

/* A responder's stored name is a DNS-SD instance name, compared as DNS-SD
 * compares them (as connecting finds it); an initiator's, byte for byte. */
static int named(const pl_paired_peer *p, const void *name)
{
    return p->role == PL_PEER_RESPONDER ? pl_service_name_equal(p->name, name) : strcmp(p->name, name) == 0;
}

static int with_id(const pl_paired_peer *p, const void *id)
{
    return memcmp(p->id, id, PL_ID_SIZE) == 0;
}

/* A responder entry under the same DNS-SD instance name. */
static int responder_named(const pl_paired_peer *p, const void *name)
{
    return p->role == PL_PEER_RESPONDER && named(p, name);
}

static int initiator_with_id(const pl_paired_peer *p, const void *id)
{
    return p->role == PL_PEER_INITIATOR && with_id(p, id);
}

/* delete_peers() under the store's lock. */
static int forget_matching(pl_keystore *ks, int (*match)(const pl_paired_peer *p, const void *arg), const void *arg)
{
    int rc = lock_store(ks);
    if (rc != PL_OK)
        return rc;
    rc = delete_peers(ks, match, arg, NULL);
    unlock_store(ks);
    return rc;
}

int pl_keystore_forget(pl_keystore *ks, const char *name)
{
    if (!ks || !name)
        return PL_ERR_INVALID;
    return forget_matching(ks, named, name);
}

int pl_keystore_forget_id(pl_keystore *ks, const uint8_t id[PL_ID_SIZE])
{
    if (!ks || !id)
        return PL_ERR_INVALID;
    return forget_matching(ks, with_id, id);
}

int pl__keystore_forget_initiator(pl_keystore *ks, const uint8_t id[PL_ID_SIZE])
{
    if (!ks || !id)
        return PL_ERR_INVALID;
    return forget_matching(ks, initiator_with_id, id);
}

int pl__keystore_save_peer(pl_keystore *ks, const pl_paired_peer *p)
{
    if (!ks || !p)
        return PL_ERR_INVALID;
    int rc = lock_store(ks);
    if (rc != PL_OK)
        return rc;
    rc = write_peer(ks, p);
    if (rc != PL_OK || p->role != PL_PEER_RESPONDER) {
        unlock_store(ks);
        return rc;
    }
    /* Written first, so that a failure here leaves the old pairing, never
     * none. A responder re-paired under its name replaces what we knew of
     * that name; if this fails, the newer entry is still the one found. */
    char item[PL_KEYSTORE_NAME_MAX + 1];
    peer_item_name(p, item);
    rc = delete_peers(ks, responder_named, p->name, item);
    unlock_store(ks);
    if (rc != PL_OK && rc != PL_ERR_NOT_FOUND)
        pl__log(PL_LOG_WARNING, "keystore: the responder entries this pairing replaces were not deleted: %s",
                pl_strerror(rc));
    return PL_OK;
}

/* The newest responder entry for which match(entry, arg) holds. */
static int find_newest(pl_keystore *ks, int (*match)(const pl_paired_peer *p, const void *arg), const void *arg,
                       pl_paired_peer *out)
{
    pl_paired_peer *arr;
    size_t count;
    int rc = load_all_peers_locked(ks, &arr, &count);
    if (rc != PL_OK)
        return rc;
    rc = PL_ERR_NOT_FOUND;
    /* Sorted oldest first: the last match is the newest. */
    for (size_t i = count; i-- > 0;) {
        if (arr[i].role == PL_PEER_RESPONDER && match(&arr[i], arg)) {
            *out = arr[i];
            rc = PL_OK;
            break;
        }
    }
    free(arr);
    return rc;
}

int pl__keystore_find_responder(pl_keystore *ks, const char *name, pl_paired_peer *out)
{
    if (!ks || !name || !out)
        return PL_ERR_INVALID;
    return find_newest(ks, responder_named, name, out);
}

static int hinted(const pl_paired_peer *p, const void *txt)
{
    return pl__hint_matches(txt, p->id);
}

int pl__keystore_find_hinted(pl_keystore *ks, const pl_txt *txt, pl_paired_peer *out)
{
    if (!ks || !out)
        return PL_ERR_INVALID;
    if (!pl__hint_present(txt))
        return PL_ERR_NOT_FOUND;
    return find_newest(ks, hinted, txt, out);
}

/* -------------------------------------------------------- discovery hint */

#define HINT_LABEL "peerlink hint"

void pl__hint_make(const uint8_t id[PL_ID_SIZE], const uint8_t salt[PL_HINT_SALT], char out[PL_HINT_LEN + 1])
{
    uint8_t msg[sizeof HINT_LABEL - 1 + PL_HINT_SALT], tag[16], v[PL_HINT_SALT + PL_HINT_TAG];
    memcpy(msg, HINT_LABEL, sizeof HINT_LABEL - 1);
    memcpy(msg + sizeof HINT_LABEL - 1, salt, PL_HINT_SALT);
    crypto_generichash(tag, sizeof tag, msg, sizeof msg, id, PL_ID_SIZE);
    memcpy(v, salt, PL_HINT_SALT);
    memcpy(v + PL_HINT_SALT, tag, PL_HINT_TAG);
    sodium_bin2hex(out, PL_HINT_LEN + 1, v, sizeof v);
}

int pl__hint_present(const pl_txt *txt)
{
    return txt && pl_txt_get(txt, PL_HINT_KEY, NULL, NULL) == PL_OK;
}

int pl__hint_matches(const pl_txt *txt, const uint8_t id[PL_ID_SIZE])
{
    const void *v = NULL;
    size_t len = 0;
    uint8_t salt[PL_HINT_SALT];
    char want[PL_HINT_LEN + 1];
    if (!txt || !id || pl_txt_get(txt, PL_HINT_KEY, &v, &len) != PL_OK || !v || len != PL_HINT_LEN ||
        sodium_hex2bin(salt, sizeof salt, v, 2 * PL_HINT_SALT, NULL, NULL, NULL) != 0)
        return 0;
    pl__hint_make(id, salt, want);
    return memcmp(want, v, PL_HINT_LEN) == 0;
}

/* ----------------------------------------------------------- attempts */

/*
 * The item name of a scope: "attempts." followed by
 *   - the scope's bytes as lowercase hex, if that fits in a 64-byte name
 *     (scopes of up to 27 bytes: 9 + 54 = 63), otherwise
 *   - "_" and the hex of the 16-byte BLAKE2b (crypto_generichash, no key)
 *     of the scope (9 + 1 + 32 = 42 bytes).
 * The "_" (never a hex digit) keeps the two forms apart: a 16-byte scope
 * can't take the name of a long scope whose hash it happens to equal.
 * A scope is never truncated, so different scopes never share an item.
 */
#define ATTEMPTS_HEX_MAX ((PL_KEYSTORE_NAME_MAX - (sizeof ATTEMPTS_PREFIX - 1)) / 2)

static void attempts_name(const char *scope, char name[PL_KEYSTORE_NAME_MAX + 1])
{
    size_t len = strlen(scope);
    size_t off = sizeof ATTEMPTS_PREFIX - 1;
    memcpy(name, ATTEMPTS_PREFIX, off);
    if (len <= ATTEMPTS_HEX_MAX) {
        sodium_bin2hex(name + off, PL_KEYSTORE_NAME_MAX + 1 - off, (const uint8_t *)scope, len);
    } else {
        uint8_t h[16];
        crypto_generichash(h, sizeof h, (const uint8_t *)scope, len, NULL, 0);
        name[off++] = '_';
        sodium_bin2hex(name + off, PL_KEYSTORE_NAME_MAX + 1 - off, h, sizeof h);
    }
}

int pl__keystore_get_attempts(pl_keystore *ks, const char *scope, pl_attempts *a)
{
    if (!ks || !scope || !a)
        return PL_ERR_INVALID;
    char name[PL_KEYSTORE_NAME_MAX + 1];
    attempts_name(scope, name);
    uint8_t *data = NULL;
    size_t len = 0;
    int rc = ks_get(ks, name, &data, &len);
    if (rc == PL_ERR_NOT_FOUND) {
        memset(a, 0, sizeof *a);
        return PL_OK;
    }
    if (rc != PL_OK)
        return rc;
    const uint8_t *p;
    size_t n;
    rc = unseal(ITEM_ATTEMPTS, data, len, &p, &n);
    if (rc == PL_OK && n != ATTEMPTS_SIZE && n != ATTEMPTS_SIZE_V1 && n != ATTEMPTS_SIZE_V0)
        rc = PL_ERR_CORRUPT;
    if (rc == PL_OK) {
        memset(a, 0, sizeof *a);
        a->failures = get_u32(p);
        a->lock_level = get_u32(p + 4);
        a->locked_until = get_i64(p + 8);
        if (n >= ATTEMPTS_SIZE_V1) {
            a->busy_until_ms = get_i64(p + 16);
            a->busy_token = (uint64_t)get_i64(p + 24);
            a->retry_at_ms = get_i64(p + 32);
        }
        if (n == ATTEMPTS_SIZE)
            a->gen_failures = get_u32(p + 40);
    }
    pl__wipe_free(data, len);
    return rc;
}

int pl__keystore_put_attempts(pl_keystore *ks, const char *scope, const pl_attempts *a)
{
    if (!ks || !scope || !a)
        return PL_ERR_INVALID;
    char name[PL_KEYSTORE_NAME_MAX + 1];
    attempts_name(scope, name);
    uint8_t payload[ATTEMPTS_SIZE];
    put_u32(payload, a->failures);
    put_u32(payload + 4, a->lock_level);
    put_i64(payload + 8, a->locked_until);
    put_i64(payload + 16, a->busy_until_ms);
    put_i64(payload + 24, (int64_t)a->busy_token);
    put_i64(payload + 32, a->retry_at_ms);
    put_u32(payload + 40, a->gen_failures);
    uint8_t sealed[ATTEMPTS_SIZE + SEAL_OVERHEAD];
    size_t n = seal(ITEM_ATTEMPTS, payload, sizeof payload, sealed);
    return ks_put(ks, name, sealed, n);
}

int pl__keystore_update_attempts(pl_keystore *ks, const char *scope,
                                 int (*fn)(pl_attempts *a, void *arg), void *arg)
{
    if (!ks || !scope || !fn)
        return PL_ERR_INVALID;
    int rc = lock_store(ks);
    if (rc != PL_OK)
        return rc;
    pl_attempts a;
    rc = pl__keystore_get_attempts(ks, scope, &a);
    if (rc == PL_OK) {
        rc = fn(&a, arg);
        if (rc > 0)
            rc = pl__keystore_put_attempts(ks, scope, &a);
    }
    unlock_store(ks);
    return rc < 0 ? rc : PL_OK;
}

