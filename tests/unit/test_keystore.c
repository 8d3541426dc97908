/* SPDX-License-Identifier: ISC */
/* Unit tests of the keystore (lib/keystore.c): directory, memory and custom stores. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sodium.h>

#include "keystore_internal.h"

/* ---------------------------------------------------------------- helpers */

/* Each test that touches the file system gets its own temporary directory
 * (state), with the keystore in its not-yet-existing subdirectory "ks". */
typedef struct fixture {
    char root[64];
    char dir[96];
} fixture;

static int setup_dir(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    strcpy(f->root, "/tmp/pl_test_keystore.XXXXXX");
    if (!mkdtemp(f->root)) {
        free(f);
        return -1;
    }
    snprintf(f->dir, sizeof f->dir, "%s/ks", f->root);
    *state = f;
    return 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int teardown_dir(void **state)
{
    fixture *f = *state;
    int rc = nftw(f->root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return rc == 0 ? 0 : -1;
}

static void path_of(const fixture *f, const char *name, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%s/%s", f->dir, name);
    assert_true(n > 0 && (size_t)n < cap);
}

static size_t read_item_file(const fixture *f, const char *name, uint8_t *buf, size_t cap)
{
    char p[256];
    path_of(f, name, p, sizeof p);
    FILE *fp = fopen(p, "rb");
    assert_non_null(fp);
    size_t n = fread(buf, 1, cap, fp);
    assert_int_equal(fclose(fp), 0);
    return n;
}

static void write_item_file(const fixture *f, const char *name, const uint8_t *buf, size_t len)
{
    char p[256];
    path_of(f, name, p, sizeof p);
    FILE *fp = fopen(p, "wb");
    assert_non_null(fp);
    if (len)
        assert_int_equal(fwrite(buf, 1, len, fp), len);
    assert_int_equal(fclose(fp), 0);
}

static void flip_byte(const fixture *f, const char *name, size_t off)
{
    uint8_t buf[PL_KEYSTORE_MAX_ITEM + 8];
    size_t n = read_item_file(f, name, buf, sizeof buf);
    assert_true(off < n);
    buf[off] ^= 0x40;
    write_item_file(f, name, buf, n);
}

static mode_t mode_of(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return st.st_mode & 07777;
}

static int file_exists(const fixture *f, const char *name)
{
    char p[256];
    struct stat st;
    path_of(f, name, p, sizeof p);
    return stat(p, &st) == 0;
}

/* Assert that no temporary file is left in the store and that every file is mode 0600. */
static void check_dir_clean(const fixture *f)
{
    assert_int_equal(mode_of(f->dir), 0700);
    DIR *d = opendir(f->dir);
    assert_non_null(d);
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        assert_null(strstr(de->d_name, ".tmp."));
        char p[256];
        path_of(f, de->d_name, p, sizeof p);
        assert_int_equal(mode_of(p), 0600);
    }
    closedir(d);
}

/* Seal an item the way the keystore does (format from lib/keystore.c),
 * with any magic/type, so tests can build items with a valid checksum. */
static size_t test_seal(const char magic[4], uint8_t type, const uint8_t *payload, size_t plen,
                        uint8_t *out)
{
    memcpy(out, magic, 4);
    out[4] = type;
    out[5] = (uint8_t)(plen >> 8);
    out[6] = (uint8_t)plen;
    memcpy(out + 7, payload, plen);
    crypto_generichash(out + 7 + plen, 16, out, 7 + plen, NULL, 0);
    return 7 + plen + 16;
}

static void peer_name_of(const uint8_t id[PL_ID_SIZE], char out[70])
{
    char hex[65];
    assert_int_equal(pl_id_to_string(id, hex, sizeof hex), PL_OK);
    /* Names hold the first 29 bytes of the id: 64 hex digits would be too long. */
    snprintf(out, 70, "peer.%.58s", hex);
    assert_int_equal(strlen(out), 63);
}

static pl_paired_peer make_peer(uint8_t seed, const char *name, int64_t at)
{
    pl_paired_peer p;
    memset(&p, 0, sizeof p);
    for (int i = 0; i < PL_ID_SIZE; i++)
        p.id[i] = (uint8_t)(seed + i * 7);
    snprintf(p.name, sizeof p.name, "%s", name);
    p.paired_at = at;
    p.role = PL_PEER_INITIATOR;
    return p;
}

/* A responder entry: the same id as make_peer(seed, ...). */
static pl_paired_peer make_resp(uint8_t seed, const char *name, int64_t at)
{
    pl_paired_peer p = make_peer(seed, name, at);
    p.role = PL_PEER_RESPONDER;
    return p;
}

static void assert_peer_equal(const pl_paired_peer *a, const pl_paired_peer *b)
{
    assert_memory_equal(a->id, b->id, PL_ID_SIZE);
    assert_string_equal(a->name, b->name);
    assert_true(a->paired_at == b->paired_at);
    assert_int_equal(a->role, b->role);
}

static pl_keystore *open_dir_ok(const fixture *f)
{
    pl_keystore *ks = NULL;
    assert_int_equal(pl_keystore_open_dir(f->dir, &ks), PL_OK);
    assert_non_null(ks);
    return ks;
}

/* ------------------------------------------- store-independent checks */

/* Identity: created once, stable, a valid Ed25519 key pair. */
static void check_identity(pl_keystore *ks)
{
    uint8_t id1[PL_ID_SIZE], id2[PL_ID_SIZE], sk[64], zero[PL_ID_SIZE] = {0};
    assert_int_equal(pl_keystore_identity(ks, id1), PL_OK);
    assert_memory_not_equal(id1, zero, PL_ID_SIZE);
    assert_int_equal(pl_keystore_identity(ks, id2), PL_OK);
    assert_memory_equal(id1, id2, PL_ID_SIZE);

    assert_int_equal(pl__keystore_identity_secret(ks, sk), PL_OK);
    assert_memory_equal(sk + 32, id1, PL_ID_SIZE);
    static const uint8_t msg[] = "peerlink keystore test message";
    uint8_t sig[crypto_sign_BYTES];
    assert_int_equal(crypto_sign_detached(sig, NULL, msg, sizeof msg, sk), 0);
    sodium_memzero(sk, sizeof sk);
    assert_int_equal(crypto_sign_verify_detached(sig, msg, sizeof msg, id1), 0);
    sig[0] ^= 1;
    assert_int_not_equal(crypto_sign_verify_detached(sig, msg, sizeof msg, id1), 0);
}

/* Peers: save, find, list order, find by name, replace, forget. */
static void check_peers(pl_keystore *ks)
{
    pl_paired_peer *list = (pl_paired_peer *)1;
    size_t n = 99;
    assert_int_equal(pl_keystore_list_peers(ks, &list, &n), PL_OK);
    assert_int_equal(n, 0);
    assert_null(list);

    pl_paired_peer a = make_peer(1, "laptop", 3000);
    pl_paired_peer b = make_peer(2, "phone", 1000);
    pl_paired_peer c = make_peer(3, "laptop", 2000);
    pl_paired_peer d = make_peer(4, "", -5); /* empty name, negative time */
    pl_paired_peer e = make_peer(5, "", 1000); /* same time as b: ordered by id */
    char longname[64];
    memset(longname, 'x', 63);
    longname[63] = '\0';
    pl_paired_peer g = make_peer(6, longname, INT64_MAX);
    assert_int_equal(pl__keystore_save_peer(ks, &a), PL_OK);
    assert_int_equal(pl__keystore_save_peer(ks, &b), PL_OK);
    assert_int_equal(pl__keystore_save_peer(ks, &c), PL_OK);
    assert_int_equal(pl__keystore_save_peer(ks, &d), PL_OK);
    assert_int_equal(pl__keystore_save_peer(ks, &e), PL_OK);
    assert_int_equal(pl__keystore_save_peer(ks, &g), PL_OK);

    /* A name filling all 64 bytes without a NUL is refused. */
    pl_paired_peer bad = make_peer(7, "", 1);
    memset(bad.name, 'y', sizeof bad.name);
    assert_int_equal(pl__keystore_save_peer(ks, &bad), PL_ERR_INVALID);
    assert_int_equal(pl__keystore_save_peer(ks, NULL), PL_ERR_INVALID);

    assert_int_equal(pl_keystore_list_peers(ks, &list, &n), PL_OK);
    assert_int_equal(n, 6);
    assert_peer_equal(&list[0], &d);
    assert_peer_equal(&list[1], &b);
    assert_peer_equal(&list[2], &e);
    assert_peer_equal(&list[3], &c);
    assert_peer_equal(&list[4], &a);
    assert_peer_equal(&list[5], &g);
    free(list);

    pl_paired_peer out;
    assert_int_equal(pl__keystore_find_initiator(ks, b.id, &out), PL_OK);
    assert_peer_equal(&out, &b);
    assert_int_equal(pl__keystore_find_initiator(ks, g.id, &out), PL_OK);
    assert_peer_equal(&out, &g);
    pl_paired_peer unknown = make_peer(9, "nobody", 1);
    assert_int_equal(pl__keystore_find_initiator(ks, unknown.id, &out), PL_ERR_NOT_FOUND);

    /* Initiators are never found by name: their names are their claims. */
    assert_int_equal(pl__keystore_find_responder(ks, "laptop", &out), PL_ERR_NOT_FOUND);

    /* Saving the same id replaces the record: c becomes the newest laptop. */
    c.paired_at = 4000;
    assert_int_equal(pl__keystore_save_peer(ks, &c), PL_OK);
    assert_int_equal(pl__keystore_find_initiator(ks, c.id, &out), PL_OK);
    assert_peer_equal(&out, &c);
    assert_int_equal(pl_keystore_list_peers(ks, &list, &n), PL_OK);
    assert_int_equal(n, 6);
    assert_peer_equal(&list[4], &c);
    free(list);

    /* Forget: exact names only, every record with the name. */
    assert_int_equal(pl_keystore_forget(ks, "nobody"), PL_ERR_NOT_FOUND);
    assert_int_equal(pl_keystore_forget(ks, "Laptop"), PL_ERR_NOT_FOUND);
    assert_int_equal(pl_keystore_forget(ks, "lap"), PL_ERR_NOT_FOUND);
    assert_int_equal(pl_keystore_forget(ks, NULL), PL_ERR_INVALID);
    assert_int_equal(pl_keystore_forget(ks, "laptop"), PL_OK);
    assert_int_equal(pl_keystore_forget(ks, "laptop"), PL_ERR_NOT_FOUND);
    assert_int_equal(pl__keystore_find_initiator(ks, a.id, &out), PL_ERR_NOT_FOUND);
    assert_int_equal(pl__keystore_find_initiator(ks, c.id, &out), PL_ERR_NOT_FOUND);
    assert_int_equal(pl_keystore_forget(ks, ""), PL_OK); /* d and e */
    assert_int_equal(pl_keystore_list_peers(ks, &list, &n), PL_OK);
    assert_int_equal(n, 2);
    assert_peer_equal(&list[0], &b);
    assert_peer_equal(&list[1], &g);
    free(list);
    assert_int_equal(pl_keystore_forget(ks, longname), PL_OK);
    assert_int_equal(pl_keystore_forget(ks, "phone"), PL_OK);
    assert_int_equal(pl_keystore_list_peers(ks, &list, &n), PL_OK);
    assert_int_equal(n, 0);
    assert_null(list);

    /* A responder's name compares as DNS-SD's do (as connecting finds it);
     * an initiator's claim, byte for byte. */
    pl_paired_peer r = make_peer(10, "Kitchen", 5000), i = make_peer(11, "Kitchen", 5001);
    r.role = PL_PEER_RESPONDER;
    assert_int_equal(pl__keystore_save_peer(ks, &r), PL_OK);
    assert_int_equal(pl__keystore_save_peer(ks, &i), PL_OK);
    assert_int_equal(pl_keystore_forget(ks, "kitchen"), PL_OK);
    assert_int_equal(pl__keystore_find_responder(ks, "Kitchen", &out), PL_ERR_NOT_FOUND);
    assert_int_equal(pl__keystore_find_initiator(ks, i.id, &out), PL_OK);
    assert_int_equal(pl_keystore_forget(ks, "kitchen"), PL_ERR_NOT_FOUND);
    assert_int_equal(pl_keystore_forget(ks, "Kitchen"), PL_OK);

    assert_int_equal(pl_keystore_list_peers(ks, NULL, &n), PL_ERR_INVALID);
    assert_int_equal(pl__keystore_find_initiator(ks, NULL, &out), PL_ERR_INVALID);

    /* Two ids sharing the 29 bytes in the item name: each is found only as itself. */
    pl_paired_peer p1 = make_peer(8, "one", 1), p2 = p1;
    snprintf(p2.name, sizeof p2.name, "two");
    p2.id[31] ^= 0xff;
    assert_int_equal(pl__keystore_save_peer(ks, &p1), PL_OK);
    assert_int_equal(pl__keystore_find_initiator(ks, p2.id, &out), PL_ERR_NOT_FOUND);
    assert_int_equal(pl__keystore_find_initiator(ks, p1.id, &out), PL_OK);
    assert_peer_equal(&out, &p1);
    assert_int_equal(pl_keystore_forget(ks, "one"), PL_OK);
}

/* Roles (issue 12): responders this device dialled are found by the name
 * they were paired under, initiators by id only; a name an initiator
 * claims never selects a responder's key; re-pairing a name replaces that
 * name's responder only; forget by name takes both roles, by id one peer. */
static void check_roles(pl_keystore *ks)
{
    pl_paired_peer kitchen = make_resp(1, "Kitchen", 100); /* the real Kitchen, dialled */
    pl_paired_peer guest = make_peer(2, "Kitchen", 200);   /* a guest that paired with our listener as "Kitchen" */
    pl_paired_peer out, *list;
    size_t n;
    assert_int_equal(pl__keystore_save_peer(ks, &kitchen), PL_OK);
    assert_int_equal(pl__keystore_save_peer(ks, &guest), PL_OK);
    /* The newer guest's claim does not select its key when dialling "Kitchen". */
    assert_int_equal(pl__keystore_find_responder(ks, "Kitchen", &out), PL_OK);
    assert_peer_equal(&out, &kitchen);
    assert_int_equal(pl__keystore_find_responder(ks, "kITCHEN", &out), PL_OK); /* as DNS-SD compares */
    assert_peer_equal(&out, &kitchen);
    assert_int_equal(pl__keystore_find_responder(ks, "Kitchen #2", &out), PL_ERR_NOT_FOUND);
    /* The responder is not an initiator of ours: it cannot reconnect to our listener. */
    assert_int_equal(pl__keystore_find_initiator(ks, kitchen.id, &out), PL_ERR_NOT_FOUND);
    assert_int_equal(pl__keystore_find_initiator(ks, guest.id, &out), PL_OK);
    assert_peer_equal(&out, &guest);

    /* One id in both roles, and a responder under a second name: each its own entry. */
    pl_paired_peer both = make_resp(2, "Hall", 300);
    pl_paired_peer second = make_resp(1, "Kitchen Two", 400);
    assert_int_equal(pl__keystore_save_peer(ks, &both), PL_OK);
    assert_int_equal(pl__keystore_save_peer(ks, &second), PL_OK);
    assert_int_equal(pl_keystore_list_peers(ks, &list, &n), PL_OK);
    assert_int_equal(n, 4);
    assert_peer_equal(&list[0], &kitchen);
    assert_peer_equal(&list[1], &guest);
    assert_peer_equal(&list[2], &both);
    assert_peer_equal(&list[3], &second);
    free(list);
    assert_int_equal(pl__keystore_find_responder(ks, "Kitchen", &out), PL_OK); /* the first name stays */
    assert_peer_equal(&out, &kitchen);
    assert_int_equal(pl__keystore_find_initiator(ks, guest.id, &out), PL_OK);
    assert_peer_equal(&out, &guest);

    /* Re-pairing "Kitchen" with another device replaces the responder of that
     * name only: the guest's claim and the other names stay. */
    pl_paired_peer newer = make_resp(3, "kitchen", 500);
    assert_int_equal(pl__keystore_save_peer(ks, &newer), PL_OK);
    assert_int_equal(pl__keystore_find_responder(ks, "Kitchen", &out), PL_OK);
    assert_peer_equal(&out, &newer);
    assert_int_equal(pl_keystore_list_peers(ks, &list, &n), PL_OK);
    assert_int_equal(n, 4);
    assert_peer_equal(&list[0], &guest);
    assert_peer_equal(&list[1], &both);
    assert_peer_equal(&list[2], &second);
    assert_peer_equal(&list[3], &newer);
    free(list);
    /* Saving the same responder under the same name again replaces it. */
    newer.paired_at = 600;
    assert_int_equal(pl__keystore_save_peer(ks, &newer), PL_OK);
    assert_int_equal(pl_keystore_list_peers(ks, &list, &n), PL_OK);
    assert_int_equal(n, 4);
    assert_peer_equal(&list[3], &newer);
    free(list);

    /* A role that is neither is refused. */
    pl_paired_peer bad = make_peer(9, "x", 1);
    bad.role = 0;
    assert_int_equal(pl__keystore_save_peer(ks, &bad), PL_ERR_INVALID);
    bad.role = 3;
    assert_int_equal(pl__keystore_save_peer(ks, &bad), PL_ERR_INVALID);

    /* The initiator entry alone (a pairing the initiator refused): the
     * responder entry of the same peer stays. */
    assert_int_equal(pl__keystore_forget_initiator(ks, guest.id), PL_OK);
    assert_int_equal(pl__keystore_find_initiator(ks, guest.id, &out), PL_ERR_NOT_FOUND);
    assert_int_equal(pl__keystore_find_responder(ks, "Hall", &out), PL_OK);
    assert_int_equal(pl__keystore_forget_initiator(ks, guest.id), PL_ERR_NOT_FOUND);
    assert_int_equal(pl__keystore_save_peer(ks, &guest), PL_OK);

    /* Forget by id: every entry of that peer, in both roles, and only its. */
    assert_int_equal(pl_keystore_forget_id(ks, guest.id), PL_OK); /* guest (initiator) and both (responder) */
    assert_int_equal(pl_keystore_forget_id(ks, guest.id), PL_ERR_NOT_FOUND);
    assert_int_equal(pl_keystore_forget_id(ks, NULL), PL_ERR_INVALID);
    assert_int_equal(pl__keystore_find_initiator(ks, guest.id, &out), PL_ERR_NOT_FOUND);
    assert_int_equal(pl__keystore_find_responder(ks, "Hall", &out), PL_ERR_NOT_FOUND);
    assert_int_equal(pl_keystore_list_peers(ks, &list, &n), PL_OK);
    assert_int_equal(n, 2);
    free(list);
    /* Forget by name, both roles: the guest's claim "Kitchen" exactly, and
     * the responder "kitchen", whose name compares as DNS-SD's do. */
    assert_int_equal(pl__keystore_save_peer(ks, &guest), PL_OK);
    assert_int_equal(pl_keystore_forget(ks, "Kitchen"), PL_OK);
    assert_int_equal(pl__keystore_find_initiator(ks, guest.id, &out), PL_ERR_NOT_FOUND);
    assert_int_equal(pl__keystore_find_responder(ks, "kitchen", &out), PL_ERR_NOT_FOUND);
    assert_int_equal(pl_keystore_forget(ks, "kitchen"), PL_ERR_NOT_FOUND);
    assert_int_equal(pl_keystore_forget(ks, "Kitchen Two"), PL_OK);
    assert_int_equal(pl_keystore_list_peers(ks, &list, &n), PL_OK);
    assert_int_equal(n, 0);
}

/* Attempts: absent is all zero; round trip; long scopes; scopes kept apart. */
static void check_attempts(pl_keystore *ks)
{
    pl_attempts a;
    memset(&a, 0xa5, sizeof a);
    assert_int_equal(pl__keystore_get_attempts(ks, "instance", &a), PL_OK);
    assert_int_equal(a.failures, 0);
    assert_int_equal(a.lock_level, 0);
    assert_true(a.locked_until == 0);

    assert_true(a.busy_until_ms == 0 && a.busy_token == 0 && a.retry_at_ms == 0);

    pl_attempts w = {.failures = 0xfffffffe, .lock_level = 7, .locked_until = -1234567890123LL,
                     .busy_until_ms = INT64_MAX, .busy_token = 0xfedcba9876543210ULL, .retry_at_ms = -5};
    assert_int_equal(pl__keystore_put_attempts(ks, "instance", &w), PL_OK);
    assert_int_equal(pl__keystore_get_attempts(ks, "instance", &a), PL_OK);
    assert_int_equal(a.failures, w.failures);
    assert_int_equal(a.lock_level, w.lock_level);
    assert_true(a.locked_until == w.locked_until);
    assert_true(a.busy_until_ms == w.busy_until_ms && a.busy_token == w.busy_token &&
                a.retry_at_ms == w.retry_at_ms);

    /* Another scope is untouched, including one that differs by case or byte. */
    assert_int_equal(pl__keystore_get_attempts(ks, "Instance", &a), PL_OK);
    assert_int_equal(a.failures, 0);

    /* Long scopes (hashed) and scopes with arbitrary bytes. */
    const char *long1 = "a very long instance name that does not fit in an item name, #1";
    const char *long2 = "a very long instance name that does not fit in an item name, #2";
    pl_attempts w2 = {.failures = 3, .lock_level = 1, .locked_until = INT64_MAX};
    assert_int_equal(pl__keystore_put_attempts(ks, long1, &w2), PL_OK);
    assert_int_equal(pl__keystore_get_attempts(ks, long1, &a), PL_OK);
    assert_int_equal(a.failures, 3);
    assert_true(a.locked_until == INT64_MAX);
    assert_int_equal(pl__keystore_get_attempts(ks, long2, &a), PL_OK);
    assert_int_equal(a.failures, 0);

    const char *exact27 = "abcdefghijklmnopqrstuvwxyz0"; /* the longest scope kept in hex */
    const char *exact28 = "abcdefghijklmnopqrstuvwxyz01";
    pl_attempts w3 = {.failures = 1};
    assert_int_equal(pl__keystore_put_attempts(ks, exact27, &w3), PL_OK);
    w3.failures = 2;
    assert_int_equal(pl__keystore_put_attempts(ks, exact28, &w3), PL_OK);
    assert_int_equal(pl__keystore_get_attempts(ks, exact27, &a), PL_OK);
    assert_int_equal(a.failures, 1);
    assert_int_equal(pl__keystore_get_attempts(ks, exact28, &a), PL_OK);
    assert_int_equal(a.failures, 2);

    w3.failures = 5;
    assert_int_equal(pl__keystore_put_attempts(ks, "", &w3), PL_OK);
    assert_int_equal(pl__keystore_put_attempts(ks, "Ünïcode \xff scope", &w3), PL_OK);
    assert_int_equal(pl__keystore_get_attempts(ks, "Ünïcode \xff scope", &a), PL_OK);
    assert_int_equal(a.failures, 5);
    assert_int_equal(pl__keystore_get_attempts(ks, "", &a), PL_OK);
    assert_int_equal(a.failures, 5);

    assert_int_equal(pl__keystore_get_attempts(ks, NULL, &a), PL_ERR_INVALID);
    assert_int_equal(pl__keystore_put_attempts(ks, "x", NULL), PL_ERR_INVALID);
}

/* --------------------------------------------------------- directory store */

static void test_dir_identity(void **state)
{
    fixture *f = *state;
    pl_keystore *ks = open_dir_ok(f);
    assert_int_equal(mode_of(f->dir), 0700);
    check_identity(ks);
    uint8_t id[PL_ID_SIZE], again[PL_ID_SIZE];
    assert_int_equal(pl_keystore_identity(ks, id), PL_OK);
    pl_keystore_free(ks);
    check_dir_clean(f);
    assert_true(file_exists(f, "identity"));

    /* Stable across reopen. */
    ks = open_dir_ok(f);
    assert_int_equal(pl_keystore_identity(ks, again), PL_OK);
    assert_memory_equal(id, again, PL_ID_SIZE);
    pl_keystore_free(ks);

    /* The item is what the format says: sealed identity, public key last. */
    uint8_t buf[256];
    size_t n = read_item_file(f, "identity", buf, sizeof buf);
    assert_int_equal(n, 4 + 1 + 2 + 64 + 16);
    assert_memory_equal(buf, "PLK1", 4);
    assert_int_equal(buf[4], 1);
    assert_int_equal(buf[5], 0);
    assert_int_equal(buf[6], 64);
    assert_memory_equal(buf + 7 + 32, id, PL_ID_SIZE);
    uint8_t sum[16];
    crypto_generichash(sum, sizeof sum, buf, 7 + 64, NULL, 0);
    assert_memory_equal(sum, buf + 7 + 64, 16);
    sodium_memzero(buf, sizeof buf);
}

static void test_dir_open_errors(void **state)
{
    fixture *f = *state;
    pl_keystore *ks = NULL;
    char p[256];

    assert_int_equal(pl_keystore_open_dir(NULL, &ks), PL_ERR_INVALID);
    assert_int_equal(pl_keystore_open_dir("", &ks), PL_ERR_INVALID);
    assert_int_equal(pl_keystore_open_dir(f->dir, NULL), PL_ERR_INVALID);

    /* Missing parent: one level only. */
    snprintf(p, sizeof p, "%s/missing/ks", f->root);
    errno = 0;
    assert_int_equal(pl_keystore_open_dir(p, &ks), PL_ERR_IO);
    assert_int_equal(errno, ENOENT);
    assert_null(ks);

    /* A regular file where the directory should be. */
    snprintf(p, sizeof p, "%s/file", f->root);
    FILE *fp = fopen(p, "w");
    assert_non_null(fp);
    fclose(fp);
    errno = 0;
    assert_int_equal(pl_keystore_open_dir(p, &ks), PL_ERR_IO);
    assert_int_equal(errno, ENOTDIR);
    assert_null(ks);

    /* An existing directory is used as it is. */
    assert_int_equal(mkdir(f->dir, 0700), 0);
    ks = open_dir_ok(f);
    pl_keystore_free(ks);
    pl_keystore_free(NULL);
}

static void test_dir_peers(void **state)
{
    fixture *f = *state;
    pl_keystore *ks = open_dir_ok(f);
    check_peers(ks);
    check_roles(ks);
    pl_paired_peer a = make_peer(1, "laptop", 3000), out;
    assert_int_equal(pl__keystore_save_peer(ks, &a), PL_OK);
    pl_keystore_free(ks);
    check_dir_clean(f);

    char name[70];
    peer_name_of(a.id, name);
    assert_true(file_exists(f, name));
    ks = open_dir_ok(f);
    assert_int_equal(pl__keystore_find_initiator(ks, a.id, &out), PL_OK);
    assert_peer_equal(&out, &a);
    pl_keystore_free(ks);
}

static void test_dir_attempts(void **state)
{
    fixture *f = *state;
    pl_keystore *ks = open_dir_ok(f);
    check_attempts(ks);
    pl_keystore_free(ks);
    check_dir_clean(f);
    /* Short scopes are named by their hex, long ones by a marked hash. */
    assert_true(file_exists(f, "attempts.696e7374616e6365")); /* "instance" */
    assert_true(file_exists(f, "attempts.")); /* "" */
    assert_true(file_exists(f, "attempts.6162636465666768696a6b6c6d6e6f707172737475767778797a30"));
    DIR *d = opendir(f->dir);
    assert_non_null(d);
    int hashed = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (strncmp(de->d_name, "attempts._", 10) == 0) {
            assert_int_equal(strlen(de->d_name), 10 + 32);
            hashed++;
        }
        assert_true(strlen(de->d_name) <= 64);
    }
    closedir(d);
    assert_int_equal(hashed, 2); /* long1, exact28 */
}

/* A put replaces a file whatever its mode, leaving 0600. */
static void test_dir_put_mode(void **state)
{
    fixture *f = *state;
    pl_keystore *ks = open_dir_ok(f);
    pl_paired_peer a = make_peer(1, "laptop", 1), out;
    char name[70], p[256];
    peer_name_of(a.id, name);
    path_of(f, name, p, sizeof p);
    write_item_file(f, name, (const uint8_t *)"junk", 4);
    assert_int_equal(chmod(p, 0644), 0);
    assert_int_equal(pl__keystore_find_initiator(ks, a.id, &out), PL_ERR_CORRUPT);
    for (int i = 0; i < 20; i++) {
        a.paired_at = i;
        assert_int_equal(pl__keystore_save_peer(ks, &a), PL_OK);
    }
    assert_int_equal(mode_of(p), 0600);
    assert_int_equal(pl__keystore_find_initiator(ks, a.id, &out), PL_OK);
    assert_true(out.paired_at == 19);
    check_dir_clean(f);
    pl_keystore_free(ks);
}

/* Modes are exact whatever the umask; a FIFO under an item's name does not hang a read. */
static void test_dir_umask_fifo(void **state)
{
    fixture *f = *state;
    mode_t old = umask(0277);
    pl_keystore *ks = open_dir_ok(f);
    uint8_t id[PL_ID_SIZE];
    assert_int_equal(pl_keystore_identity(ks, id), PL_OK);
    umask(old);
    check_dir_clean(f);

    pl_attempts a;
    char p[256];
    path_of(f, "attempts.6669666f", p, sizeof p); /* "fifo" */
    assert_int_equal(mkfifo(p, 0600), 0);
    assert_int_equal(pl__keystore_get_attempts(ks, "fifo", &a), PL_ERR_CORRUPT);
    pl_keystore_free(ks);
}

static void test_dir_stale_tmp_ignored(void **state)
{
    fixture *f = *state;
    pl_keystore *ks = open_dir_ok(f);
    pl_paired_peer a = make_peer(1, "laptop", 10), out;
    assert_int_equal(pl__keystore_save_peer(ks, &a), PL_OK);
    char name[70], tmp[96];
    peer_name_of(a.id, name);
    uint8_t item[256];
    size_t n = read_item_file(f, name, item, sizeof item);

    /* Leftovers of interrupted puts, even holding a valid item, and other strays. */
    write_item_file(f, "peer.x.tmp.123", item, n);
    snprintf(tmp, sizeof tmp, "%s.tmp.42", name);
    write_item_file(f, tmp, item, n);
    write_item_file(f, "identity.tmp.7", (const uint8_t *)"x", 1);
    write_item_file(f, "peer.UPPER", item, n);
    write_item_file(f, "peer.with space", item, n);
    write_item_file(f, "readme.txt", (const uint8_t *)"hi", 2);
    char sub[256];
    path_of(f, "peer.subdir", sub, sizeof sub);
    assert_int_equal(mkdir(sub, 0700), 0);

    pl_paired_peer *list;
    size_t count;
    assert_int_equal(pl_keystore_list_peers(ks, &list, &count), PL_OK);
    assert_int_equal(count, 1);
    assert_peer_equal(&list[0], &a);
    free(list);
    assert_int_equal(pl_keystore_forget(ks, "laptop"), PL_OK);
    assert_int_equal(pl_keystore_list_peers(ks, &list, &count), PL_OK);
    assert_int_equal(count, 0);
    assert_int_equal(pl__keystore_find_initiator(ks, a.id, &out), PL_ERR_NOT_FOUND);
    /* The leftovers are left alone. */
    assert_true(file_exists(f, "peer.x.tmp.123"));
    assert_true(file_exists(f, tmp));
    pl_keystore_free(ks);
}

/* ------------------------------------------ who may have written the store */

/* The library's warnings and errors, collected. */
static char perm_log[2048];

static void perm_capture(pl_log_level level, const char *message, void *userdata)
{
    (void)level;
    (void)userdata;
    size_t n = strlen(perm_log);
    snprintf(perm_log + n, sizeof perm_log - n, "%s\n", message);
}

/* Open dir expecting PL_ERR_PERMISSION, errno EACCES, and a log line that
 * names what (a path ending in what) and why. */
static void open_refused(const char *dir, const char *what, const char *why)
{
    pl_keystore *ks = NULL;
    perm_log[0] = '\0';
    errno = 0;
    assert_int_equal(pl_keystore_open_dir(dir, &ks), PL_ERR_PERMISSION);
    assert_int_equal(errno, EACCES);
    assert_null(ks);
    assert_non_null(strstr(perm_log, what));
    assert_non_null(strstr(perm_log, why));
}

/* A directory that group or others can write, or another user owns, is
 * refused; a symbolic link is followed and the directory it leads to is
 * what counts. */
static void test_dir_refused(void **state)
{
    fixture *f = *state;
    pl_set_log(PL_LOG_WARNING, perm_capture, NULL);
    assert_int_equal(mkdir(f->dir, 0700), 0);
    static const mode_t lax[] = {0770, 0720, 0702, 01777, 0777};
    for (size_t i = 0; i < sizeof lax / sizeof lax[0]; i++) {
        assert_int_equal(chmod(f->dir, lax[i]), 0);
        open_refused(f->dir, f->dir, "writable by group or others");
    }
    /* Readable (not writable) by others: names only, the items stay 0600. */
    assert_int_equal(chmod(f->dir, 0755), 0);
    pl_keystore *ks = open_dir_ok(f);
    uint8_t id[PL_ID_SIZE];
    assert_int_equal(pl_keystore_identity(ks, id), PL_OK);
    pl_keystore_free(ks);

    char link[128];
    snprintf(link, sizeof link, "%s/link", f->root);
    assert_int_equal(symlink(f->dir, link), 0);
    assert_int_equal(pl_keystore_open_dir(link, &ks), PL_OK);
    pl_keystore_free(ks);
    assert_int_equal(chmod(f->dir, 0777), 0);
    open_refused(link, link, "writable by group or others");
    assert_int_equal(chmod(f->dir, 0700), 0);

    if (geteuid() == 0) {
        assert_int_equal(chown(f->dir, 4242, 4242), 0);
        open_refused(f->dir, f->dir, "owned by another user");
        assert_int_equal(chown(f->dir, 0, 0), 0);
    }
    pl_set_log(PL_LOG_ERROR, NULL, NULL);
}

/* An item that group or others can write, or another user owns, is refused
 * (when the directory is opened, and when the item is read); one they can
 * only read is made 0600, with a warning. */
static void test_dir_item_refused(void **state)
{
    fixture *f = *state;
    pl_set_log(PL_LOG_WARNING, perm_capture, NULL);
    pl_keystore *ks = open_dir_ok(f);
    uint8_t id[PL_ID_SIZE], again[PL_ID_SIZE];
    assert_int_equal(pl_keystore_identity(ks, id), PL_OK);
    pl_paired_peer a = make_peer(1, "laptop", 10);
    assert_int_equal(pl__keystore_save_peer(ks, &a), PL_OK);
    pl_keystore_free(ks);
    char p[256], peer[70], pp[256];
    path_of(f, "identity", p, sizeof p);
    peer_name_of(a.id, peer);
    path_of(f, peer, pp, sizeof pp);

    assert_int_equal(chmod(p, 0644), 0);
    perm_log[0] = '\0';
    ks = open_dir_ok(f);
    assert_int_equal(mode_of(p), 0600);
    assert_non_null(strstr(perm_log, p));
    assert_non_null(strstr(perm_log, "made 0600"));
    assert_int_equal(pl_keystore_identity(ks, again), PL_OK);
    assert_memory_equal(id, again, PL_ID_SIZE);
    pl_keystore_free(ks);

    assert_int_equal(chmod(p, 0620), 0);
    open_refused(f->dir, p, "writable by group or others");
    assert_int_equal(chmod(p, 0600), 0);
    assert_int_equal(chmod(pp, 0606), 0);
    open_refused(f->dir, pp, "writable by group or others");
    assert_int_equal(chmod(pp, 0600), 0);
    if (geteuid() == 0) {
        assert_int_equal(chown(p, 4242, 4242), 0);
        open_refused(f->dir, p, "owned by another user");
        assert_int_equal(chown(p, 0, 0), 0);
    }

    /* Changed after the keystore was opened: refused when read. */
    ks = open_dir_ok(f);
    assert_int_equal(chmod(p, 0666), 0);
    assert_int_equal(chmod(pp, 0660), 0);
    assert_int_equal(pl_keystore_identity(ks, again), PL_ERR_PERMISSION);
    pl_paired_peer *list;
    size_t n;
    assert_int_equal(pl_keystore_list_peers(ks, &list, &n), PL_ERR_PERMISSION);
    assert_int_equal(chmod(p, 0600), 0);
    assert_int_equal(chmod(pp, 0600), 0);
    assert_int_equal(pl_keystore_identity(ks, again), PL_OK);
    assert_memory_equal(id, again, PL_ID_SIZE);
    pl_keystore_free(ks);

    /* An item that is a symbolic link is not followed: what it leads to
     * keeps its mode, and the item reads as corrupt (a listing skips it). */
    char outside[256];
    snprintf(outside, sizeof outside, "%s/outside", f->root);
    FILE *o = fopen(outside, "w");
    assert_non_null(o);
    fclose(o);
    assert_int_equal(chmod(outside, 0644), 0);
    assert_int_equal(unlink(pp), 0);
    assert_int_equal(symlink(outside, pp), 0);
    ks = open_dir_ok(f);
    assert_int_equal(mode_of(outside), 0644);
    assert_int_equal(pl_keystore_list_peers(ks, &list, &n), PL_OK);
    assert_int_equal(n, 0);
    assert_int_equal(mode_of(outside), 0644);
    pl_keystore_free(ks);
    pl_set_log(PL_LOG_ERROR, NULL, NULL);
}

/* Another user than root: a directory root owns is accepted (root could
 * change anything anyway), one another user owns is not. */
static int open_as(const char *dir, uid_t uid)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        pl_keystore *ks = NULL;
        if (setegid(uid) != 0 || seteuid(uid) != 0)
            _exit(100);
        int rc = pl_keystore_open_dir(dir, &ks);
        pl_keystore_free(ks);
        _exit(-rc);
    }
    int st = 0;
    assert_true(pid > 0);
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    return -WEXITSTATUS(st);
}

static void test_dir_owner_root(void **state)
{
    fixture *f = *state;
    if (geteuid() != 0)
        return; /* changing owners needs root: the uid checks of test_dir_refused cover the rest */
    assert_int_equal(chmod(f->root, 0711), 0);
    assert_int_equal(mkdir(f->dir, 0755), 0);
    assert_int_equal(open_as(f->dir, 4242), PL_OK);
    assert_int_equal(chown(f->dir, 4242, 4242), 0);
    assert_int_equal(open_as(f->dir, 4242), PL_OK);
    assert_int_equal(open_as(f->dir, 4243), PL_ERR_PERMISSION);
}

/* -------------------------------------------------------------- corruption */

/* The identity as a keystore that has not read it yet sees it (one that
 * has keeps the key it read). */
static int identity_anew(fixture *f, uint8_t id[PL_ID_SIZE])
{
    pl_keystore *k = open_dir_ok(f);
    int rc = pl_keystore_identity(k, id);
    pl_keystore_free(k);
    return rc;
}

static int secret_anew(fixture *f, uint8_t sk[64])
{
    pl_keystore *k = open_dir_ok(f);
    int rc = pl__keystore_identity_secret(k, sk);
    pl_keystore_free(k);
    return rc;
}

static void test_corrupt_identity(void **state)
{
    fixture *f = *state;
    pl_keystore *ks = open_dir_ok(f);
    uint8_t id[PL_ID_SIZE], sk[64];
    assert_int_equal(pl_keystore_identity(ks, id), PL_OK);
    uint8_t good[256], now[256];
    size_t n = read_item_file(f, "identity", good, sizeof good);
    assert_int_equal(n, 87);

    /* Every single flipped byte is caught (by a keystore that reads the
     * item: one that has read it keeps the key), and the item is never
     * replaced. */
    for (size_t off = 0; off < n; off++) {
        flip_byte(f, "identity", off);
        pl_keystore *fresh = open_dir_ok(f);
        assert_int_equal(pl_keystore_identity(fresh, id), PL_ERR_CORRUPT);
        assert_int_equal(pl__keystore_identity_secret(fresh, sk), PL_ERR_CORRUPT);
        pl_keystore_free(fresh);
        assert_int_equal(pl_keystore_identity(ks, id), PL_OK);
        assert_int_equal(read_item_file(f, "identity", now, sizeof now), n);
        assert_memory_not_equal(now, good, n);
        write_item_file(f, "identity", good, n);
    }
    assert_int_equal(pl_keystore_identity(ks, id), PL_OK);

    /* Truncated, empty, extended. */
    write_item_file(f, "identity", good, n - 1);
    assert_int_equal(identity_anew(f, id), PL_ERR_CORRUPT);
    write_item_file(f, "identity", good, 10);
    assert_int_equal(identity_anew(f, id), PL_ERR_CORRUPT);
    write_item_file(f, "identity", good, 0);
    assert_int_equal(identity_anew(f, id), PL_ERR_CORRUPT);
    memcpy(now, good, n);
    now[n] = 0;
    write_item_file(f, "identity", now, n + 1);
    assert_int_equal(identity_anew(f, id), PL_ERR_CORRUPT);

    /* Valid checksums over wrong contents. */
    uint8_t item[PL_KEYSTORE_MAX_ITEM];
    size_t m = test_seal("PLK2", 1, good + 7, 64, item);
    write_item_file(f, "identity", item, m);
    assert_int_equal(identity_anew(f, id), PL_ERR_CORRUPT);
    m = test_seal("PLK1", 2, good + 7, 64, item); /* wrong type */
    write_item_file(f, "identity", item, m);
    assert_int_equal(identity_anew(f, id), PL_ERR_CORRUPT);
    m = test_seal("PLK1", 1, good + 7, 63, item); /* wrong payload size */
    write_item_file(f, "identity", item, m);
    assert_int_equal(identity_anew(f, id), PL_ERR_CORRUPT);
    uint8_t sk2[64];
    memcpy(sk2, good + 7, 64);
    sk2[40] ^= 1; /* public half does not match the seed */
    m = test_seal("PLK1", 1, sk2, 64, item);
    write_item_file(f, "identity", item, m);
    assert_int_equal(identity_anew(f, id), PL_ERR_CORRUPT);
    assert_int_equal(secret_anew(f, sk), PL_ERR_CORRUPT);
    /* The length field disagrees with the size (checksum still valid). */
    m = test_seal("PLK1", 1, good + 7, 64, item);
    item[6] = 63;
    crypto_generichash(item + 7 + 64, 16, item, 7 + 64, NULL, 0);
    write_item_file(f, "identity", item, m);
    assert_int_equal(identity_anew(f, id), PL_ERR_CORRUPT);

    /* Larger than an item may be. */
    memset(item, 0, sizeof item);
    char p[256];
    path_of(f, "identity", p, sizeof p);
    FILE *fp = fopen(p, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(item, 1, sizeof item, fp), sizeof item);
    assert_int_equal(fputc(0, fp), 0);
    fclose(fp);
    assert_int_equal(identity_anew(f, id), PL_ERR_CORRUPT);
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_size, PL_KEYSTORE_MAX_ITEM + 1); /* not replaced */

    /* A directory under the item's name. */
    assert_int_equal(unlink(p), 0);
    assert_int_equal(mkdir(p, 0700), 0);
    assert_int_equal(identity_anew(f, id), PL_ERR_CORRUPT);
    assert_int_equal(rmdir(p), 0);

    /* Deleted: a new identity is made (the keystore that read the old one keeps it). */
    uint8_t fresh[PL_ID_SIZE];
    assert_int_equal(identity_anew(f, fresh), PL_OK);
    assert_memory_not_equal(fresh, good + 7 + 32, PL_ID_SIZE);
    sodium_memzero(good, sizeof good);
    sodium_memzero(now, sizeof now);
    sodium_memzero(item, sizeof item);
    pl_keystore_free(ks);
}

static void test_corrupt_peer(void **state)
{
    fixture *f = *state;
    pl_keystore *ks = open_dir_ok(f);
    pl_paired_peer a = make_peer(1, "tv", 100), b = make_peer(2, "tv", 200), out;
    pl_paired_peer c = make_peer(3, "radio", 300);
    assert_int_equal(pl__keystore_save_peer(ks, &a), PL_OK);
    assert_int_equal(pl__keystore_save_peer(ks, &b), PL_OK);
    assert_int_equal(pl__keystore_save_peer(ks, &c), PL_OK);
    char bname[70], cname[70];
    peer_name_of(b.id, bname);
    peer_name_of(c.id, cname);
    uint8_t good[256];
    size_t n = read_item_file(f, bname, good, sizeof good);
    assert_int_equal(n, 23 + 41 + 2);

    pl_paired_peer *list;
    size_t count;
    for (size_t off = 0; off < n; off++) {
        flip_byte(f, bname, off);
        assert_int_equal(pl__keystore_find_initiator(ks, b.id, &out), PL_ERR_CORRUPT);
        /* Listing skips it; the other "tv" is intact. */
        assert_int_equal(pl_keystore_list_peers(ks, &list, &count), PL_OK);
        assert_int_equal(count, 2);
        assert_peer_equal(&list[0], &a);
        assert_peer_equal(&list[1], &c);
        free(list);
        assert_int_equal(pl__keystore_find_initiator(ks, a.id, &out), PL_OK);
        assert_peer_equal(&out, &a);
        write_item_file(f, bname, good, n);
    }
    assert_int_equal(pl__keystore_find_initiator(ks, b.id, &out), PL_OK);
    assert_peer_equal(&out, &b);

    /* Truncated; oversized; wrong magic with a valid checksum. */
    write_item_file(f, bname, good, n - 5);
    assert_int_equal(pl__keystore_find_initiator(ks, b.id, &out), PL_ERR_CORRUPT);
    uint8_t big[PL_KEYSTORE_MAX_ITEM + 1];
    memset(big, 0, sizeof big);
    memcpy(big, good, n);
    write_item_file(f, bname, big, sizeof big);
    assert_int_equal(pl__keystore_find_initiator(ks, b.id, &out), PL_ERR_CORRUPT);
    uint8_t item[256];
    size_t m = test_seal("PLK0", 2, good + 7, n - 23, item);
    write_item_file(f, bname, item, m);
    assert_int_equal(pl__keystore_find_initiator(ks, b.id, &out), PL_ERR_CORRUPT);

    /* Valid seal, bad payloads: name length beyond the payload, a NUL in
     * the name, a name of 64 bytes, a stored id that is not the item's. */
    uint8_t pay[128];
    memcpy(pay, good + 7, n - 23);
    pay[40] = 3;
    m = test_seal("PLK1", 2, pay, n - 23, item);
    write_item_file(f, bname, item, m);
    assert_int_equal(pl__keystore_find_initiator(ks, b.id, &out), PL_ERR_CORRUPT);
    memcpy(pay, good + 7, n - 23);
    pay[41] = 0;
    m = test_seal("PLK1", 2, pay, n - 23, item);
    write_item_file(f, bname, item, m);
    assert_int_equal(pl__keystore_find_initiator(ks, b.id, &out), PL_ERR_CORRUPT);
    memcpy(pay, good + 7, 41);
    pay[40] = 64;
    memset(pay + 41, 'n', 64);
    m = test_seal("PLK1", 2, pay, 41 + 64, item);
    write_item_file(f, bname, item, m);
    assert_int_equal(pl__keystore_find_initiator(ks, b.id, &out), PL_ERR_CORRUPT);
    write_item_file(f, bname, good, n);
    uint8_t cgood[256];
    size_t cn = read_item_file(f, cname, cgood, sizeof cgood);
    write_item_file(f, bname, cgood, cn); /* c's record under b's name */
    assert_int_equal(pl__keystore_find_initiator(ks, b.id, &out), PL_ERR_CORRUPT);
    assert_int_equal(pl_keystore_list_peers(ks, &list, &count), PL_OK);
    assert_int_equal(count, 2);
    free(list);
    /* An attempts item under a peer's name. */
    pl_attempts at = {.failures = 1};
    assert_int_equal(pl__keystore_put_attempts(ks, "s", &at), PL_OK);
    m = read_item_file(f, "attempts.73", item, sizeof item);
    write_item_file(f, bname, item, m);
    assert_int_equal(pl__keystore_find_initiator(ks, b.id, &out), PL_ERR_CORRUPT);

    /* Forget skips corrupt items: b stays, a goes. */
    assert_int_equal(pl_keystore_forget(ks, "tv"), PL_OK);
    assert_true(file_exists(f, bname));
    assert_int_equal(pl__keystore_find_initiator(ks, a.id, &out), PL_ERR_NOT_FOUND);
    assert_int_equal(pl_keystore_forget(ks, "tv"), PL_ERR_NOT_FOUND);
    pl_keystore_free(ks);
}

static void test_corrupt_attempts(void **state)
{
    fixture *f = *state;
    pl_keystore *ks = open_dir_ok(f);
    pl_attempts w = {.failures = 4, .lock_level = 2, .locked_until = 99}, a;
    assert_int_equal(pl__keystore_put_attempts(ks, "inst", &w), PL_OK);
    const char *name = "attempts.696e7374";
    uint8_t good[128];
    size_t n = read_item_file(f, name, good, sizeof good);
    assert_int_equal(n, 23 + 44);
    for (size_t off = 0; off < n; off++) {
        flip_byte(f, name, off);
        assert_int_equal(pl__keystore_get_attempts(ks, "inst", &a), PL_ERR_CORRUPT);
        write_item_file(f, name, good, n);
    }
    assert_int_equal(pl__keystore_get_attempts(ks, "inst", &a), PL_OK);
    assert_int_equal(a.failures, 4);

    write_item_file(f, name, good, n - 1);
    assert_int_equal(pl__keystore_get_attempts(ks, "inst", &a), PL_ERR_CORRUPT);
    uint8_t big[PL_KEYSTORE_MAX_ITEM + 1];
    memset(big, 'A', sizeof big);
    write_item_file(f, name, big, sizeof big);
    assert_int_equal(pl__keystore_get_attempts(ks, "inst", &a), PL_ERR_CORRUPT);
    uint8_t item[128];
    size_t m = test_seal("plk1", 3, good + 7, 16, item);
    write_item_file(f, name, item, m);
    assert_int_equal(pl__keystore_get_attempts(ks, "inst", &a), PL_ERR_CORRUPT);
    m = test_seal("PLK1", 3, good + 7, 15, item);
    write_item_file(f, name, item, m);
    assert_int_equal(pl__keystore_get_attempts(ks, "inst", &a), PL_ERR_CORRUPT);
    m = test_seal("PLK1", 3, good + 7, 39, item);
    write_item_file(f, name, item, m);
    assert_int_equal(pl__keystore_get_attempts(ks, "inst", &a), PL_ERR_CORRUPT);
    /* An item of the first format (16 bytes) still reads: the later fields are 0. */
    m = test_seal("PLK1", 3, good + 7, 16, item);
    write_item_file(f, name, item, m);
    memset(&a, 0xff, sizeof a);
    assert_int_equal(pl__keystore_get_attempts(ks, "inst", &a), PL_OK);
    assert_int_equal(a.failures, 4);
    assert_true(a.locked_until == 99 && a.busy_until_ms == 0 && a.busy_token == 0 && a.retry_at_ms == 0);

    /* A put repairs it. */
    assert_int_equal(pl__keystore_put_attempts(ks, "inst", &w), PL_OK);
    assert_int_equal(pl__keystore_get_attempts(ks, "inst", &a), PL_OK);
    assert_true(a.locked_until == 99);
    pl_keystore_free(ks);
}

/* ------------------------------------------------------------ memory store */

static void test_memory_store(void **state)
{
    (void)state;
    pl_keystore *ks = NULL;
    assert_int_equal(pl_keystore_new_memory(NULL), PL_ERR_INVALID);
    assert_int_equal(pl_keystore_new_memory(&ks), PL_OK);
    check_identity(ks);
    check_peers(ks);
    check_roles(ks);
    check_attempts(ks);
    pl_keystore_free(ks);

    /* Two memory stores have different identities. */
    pl_keystore *k1, *k2;
    uint8_t i1[PL_ID_SIZE], i2[PL_ID_SIZE];
    assert_int_equal(pl_keystore_new_memory(&k1), PL_OK);
    assert_int_equal(pl_keystore_new_memory(&k2), PL_OK);
    assert_int_equal(pl_keystore_identity(k1, i1), PL_OK);
    assert_int_equal(pl_keystore_identity(k2, i2), PL_OK);
    assert_memory_not_equal(i1, i2, PL_ID_SIZE);
    pl_keystore_free(k1);
    pl_keystore_free(k2);
}

/* ------------------------------------------------------------ custom store */

#define TS_MAX 16

typedef struct test_store {
    struct {
        char name[80];
        uint8_t data[PL_KEYSTORE_MAX_ITEM + 16];
        size_t len;
        int used;
    } items[TS_MAX];
    int freed;
    int calls;
    int bad_name_seen;      /* an invalid name reached an op */
    const char *extra_list; /* a name list() reports besides the real items */
    int lie_size;           /* get reports more than PL_KEYSTORE_MAX_ITEM bytes */
    int lie_null;           /* get reports PL_OK with no data */
    int fail_put;           /* put fails with this code */
    int identity_puts;      /* puts of "identity" */
    int fail_del;           /* del fails with this code */
    int ops;                /* puts and dels so far */
    int put_at, del_at;     /* ... the number of the last put, the last del */
} test_store;

static int ts_name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n < 1 || n > 64)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!strchr("abcdefghijklmnopqrstuvwxyz0123456789._-", name[i]))
            return 0;
    return 1;
}

static int ts_find(test_store *s, const char *name)
{
    if (!ts_name_ok(name))
        s->bad_name_seen = 1;
    for (int i = 0; i < TS_MAX; i++)
        if (s->items[i].used && !strcmp(s->items[i].name, name))
            return i;
    return -1;
}

static int ts_get(void *ctx, const char *name, uint8_t **data, size_t *len)
{
    test_store *s = ctx;
    s->calls++;
    int i = ts_find(s, name);
    if (i < 0)
        return PL_ERR_NOT_FOUND;
    if (s->lie_null) {
        *data = NULL;
        *len = 5;
        return PL_OK;
    }
    size_t n = s->lie_size ? PL_KEYSTORE_MAX_ITEM + 1 : s->items[i].len;
    uint8_t *d = malloc(n ? n : 1);
    if (!d)
        return PL_ERR_NOMEM;
    memcpy(d, s->items[i].data, n);
    *data = d;
    *len = n;
    return PL_OK;
}

static int ts_put(void *ctx, const char *name, const uint8_t *data, size_t len)
{
    test_store *s = ctx;
    s->calls++;
    if (s->fail_put)
        return s->fail_put;
    s->put_at = ++s->ops;
    if (!strcmp(name, "identity"))
        s->identity_puts++;
    assert_true(len <= PL_KEYSTORE_MAX_ITEM);
    int i = ts_find(s, name);
    for (int j = 0; i < 0 && j < TS_MAX; j++)
        if (!s->items[j].used)
            i = j;
    if (i < 0)
        return PL_ERR_NOMEM;
    snprintf(s->items[i].name, sizeof s->items[i].name, "%s", name);
    memcpy(s->items[i].data, data, len);
    s->items[i].len = len;
    s->items[i].used = 1;
    return PL_OK;
}

static int ts_del(void *ctx, const char *name)
{
    test_store *s = ctx;
    s->calls++;
    if (s->fail_del)
        return s->fail_del;
    int i = ts_find(s, name);
    if (i < 0)
        return PL_ERR_NOT_FOUND;
    s->del_at = ++s->ops;
    memset(&s->items[i], 0, sizeof s->items[i]);
    return PL_OK;
}

static int ts_list(void *ctx, const char *prefix, int (*fn)(const char *name, void *arg),
                   void *arg)
{
    test_store *s = ctx;
    s->calls++;
    if (s->extra_list && fn(s->extra_list, arg))
        return PL_OK;
    for (int i = 0; i < TS_MAX; i++)
        if (s->items[i].used && !strncmp(s->items[i].name, prefix, strlen(prefix)) &&
            fn(s->items[i].name, arg))
            break;
    return PL_OK;
}

static void ts_free(void *ctx)
{
    test_store *s = ctx;
    s->freed++;
}

static const pl_keystore_ops ts_ops = {sizeof(pl_keystore_ops), ts_get, ts_put, ts_del, ts_list, ts_free};

static void test_custom_store(void **state)
{
    (void)state;
    test_store *s = calloc(1, sizeof *s);
    assert_non_null(s);
    pl_keystore *ks = NULL;

    /* Bad arguments: *out untouched, free hook not called. */
    pl_keystore_ops partial = ts_ops;
    partial.list = NULL;
    assert_int_equal(pl_keystore_new(&partial, s, &ks), PL_ERR_INVALID);
    assert_null(ks);
    assert_int_equal(pl_keystore_new(NULL, s, &ks), PL_ERR_INVALID);
    assert_int_equal(pl_keystore_new(&ts_ops, s, NULL), PL_ERR_INVALID);
    assert_null(ks);
    pl_keystore_ops unsized = ts_ops; /* no size: a table of no known version */
    unsized.size = 0;
    assert_int_equal(pl_keystore_new(&unsized, s, &ks), PL_ERR_INVALID);
    unsized.size = sizeof(pl_keystore_ops) - sizeof(void *); /* older than the first version */
    assert_int_equal(pl_keystore_new(&unsized, s, &ks), PL_ERR_INVALID);
    assert_null(ks);
    assert_int_equal(s->freed, 0);
    /* A later version's larger table: the members this version knows are used. */
    struct {
        pl_keystore_ops ops;
        void (*later)(void);
    } grown = {ts_ops, NULL};
    grown.ops.size = sizeof grown;
    assert_int_equal(pl_keystore_new(&grown.ops, s, &ks), PL_OK);
    check_identity(ks);
    pl_keystore_free(ks); /* calls the free hook */
    ks = NULL;
    assert_int_equal(s->freed, 1);
    s->freed = 0;

    /* ops is copied: changing ours afterwards has no effect. */
    pl_keystore_ops ops = ts_ops;
    assert_int_equal(pl_keystore_new(&ops, s, &ks), PL_OK);
    memset(&ops, 0, sizeof ops);
    assert_non_null(ks);

    check_identity(ks);
    int calls = s->calls;
    check_identity(ks);
    assert_int_equal(s->identity_puts, 1); /* created once */
    assert_int_equal(s->calls, calls);      /* and read once: a listener does not read it per connection */
    assert_true(s->calls > 0);
    assert_true(ts_find(s, "identity") >= 0);
    check_peers(ks);
    check_roles(ks);
    check_attempts(ks);

    /* Names the store reports that are not item names, or lack the prefix, are ignored. */
    pl_paired_peer a = make_peer(1, "x", 1), out;
    assert_int_equal(pl__keystore_save_peer(ks, &a), PL_OK);
    const char *strays[] = {"peer.ABC", "peer./etc/passwd", "identity",
                            "peer.0000000000000000000000000000000000000000000000000000000000000000x",
                            "", "peer.ok.but.missing"};
    pl_paired_peer *list;
    size_t count;
    for (size_t i = 0; i < sizeof strays / sizeof strays[0]; i++) {
        s->extra_list = strays[i];
        assert_int_equal(pl_keystore_list_peers(ks, &list, &count), PL_OK);
        assert_int_equal(count, 1);
        assert_peer_equal(&list[0], &a);
        free(list);
    }
    /* A name listed twice gives one peer. */
    char aname[70];
    peer_name_of(a.id, aname);
    s->extra_list = aname;
    assert_int_equal(pl_keystore_list_peers(ks, &list, &count), PL_OK);
    assert_int_equal(count, 1);
    free(list);
    s->extra_list = NULL;
    assert_int_equal(s->bad_name_seen, 0);

    /* A store handing back too much, or nothing, is corrupt. */
    s->lie_size = 1;
    assert_int_equal(pl__keystore_find_initiator(ks, a.id, &out), PL_ERR_CORRUPT);
    uint8_t id[PL_ID_SIZE];
    pl_keystore_ops unfreed = ts_ops; /* a second keystore on the store, which reads the identity anew */
    unfreed.free = NULL;
    pl_keystore *fresh;
    assert_int_equal(pl_keystore_new(&unfreed, s, &fresh), PL_OK);
    assert_int_equal(pl_keystore_identity(fresh, id), PL_ERR_CORRUPT);
    pl_keystore_free(fresh);
    assert_int_equal(pl_keystore_identity(ks, id), PL_OK); /* read before: kept */
    s->lie_size = 0;
    s->lie_null = 1;
    assert_int_equal(pl__keystore_find_initiator(ks, a.id, &out), PL_ERR_CORRUPT);
    s->lie_null = 0;
    assert_int_equal(pl__keystore_find_initiator(ks, a.id, &out), PL_OK);

    /* Store errors are passed on. */
    s->fail_put = PL_ERR_IO;
    assert_int_equal(pl__keystore_save_peer(ks, &a), PL_ERR_IO);
    s->fail_put = 0;

    /* The identity is created only when missing: a failing put is reported
     * (to a keystore that had not read it yet). */
    assert_int_equal(ts_del(s, "identity"), PL_OK);
    s->fail_put = PL_ERR_IO;
    uint8_t sk[64];
    assert_int_equal(pl_keystore_new(&unfreed, s, &fresh), PL_OK);
    assert_int_equal(pl__keystore_identity_secret(fresh, sk), PL_ERR_IO);
    pl_keystore_free(fresh);
    s->fail_put = 0;

    pl_keystore_free(ks);
    assert_int_equal(s->freed, 1);
    free(s);

    /* A store without a free hook. */
    test_store *s2 = calloc(1, sizeof *s2);
    assert_non_null(s2);
    pl_keystore_ops nofree = ts_ops;
    nofree.free = NULL;
    assert_int_equal(pl_keystore_new(&nofree, s2, &ks), PL_OK);
    assert_int_equal(pl_keystore_identity(ks, id), PL_OK);
    pl_keystore_free(ks);
    assert_int_equal(s2->freed, 0);
    free(s2);
}

/* -------------------------------------------------------------------- ids */

/* Re-pairing a responder's name writes the new entry before it deletes the
 * old one: a failed write leaves the old pairing, a failed delete still
 * finds the new one. */
static void test_write_then_delete(void **state)
{
    (void)state;
    test_store *s = calloc(1, sizeof *s);
    assert_non_null(s);
    pl_keystore *ks = NULL;
    assert_int_equal(pl_keystore_new(&ts_ops, s, &ks), PL_OK);
    pl_paired_peer old = make_resp(1, "Kitchen", 100), fresh = make_resp(2, "Kitchen", 200), out;
    assert_int_equal(pl__keystore_save_peer(ks, &old), PL_OK);

    s->fail_put = PL_ERR_IO;
    assert_int_equal(pl__keystore_save_peer(ks, &fresh), PL_ERR_IO);
    s->fail_put = 0;
    assert_int_equal(pl__keystore_find_responder(ks, "Kitchen", &out), PL_OK);
    assert_peer_equal(&out, &old);

    s->fail_del = PL_ERR_IO;
    assert_int_equal(pl__keystore_save_peer(ks, &fresh), PL_OK);
    s->fail_del = 0;
    assert_int_equal(pl__keystore_find_responder(ks, "Kitchen", &out), PL_OK);
    assert_peer_equal(&out, &fresh);

    s->put_at = s->del_at = 0;
    fresh.paired_at = 300;
    assert_int_equal(pl__keystore_save_peer(ks, &fresh), PL_OK);
    assert_true(s->put_at > 0 && s->del_at > s->put_at); /* written, then the old one deleted */
    pl_paired_peer *list;
    size_t n;
    assert_int_equal(pl_keystore_list_peers(ks, &list, &n), PL_OK);
    assert_int_equal(n, 1);
    assert_peer_equal(&list[0], &fresh);
    free(list);
    pl_keystore_free(ks);
    free(s);
}

/* Items written before roles existed ("peer.<hex>", type 2) are initiator
 * entries: found by id, never by name; a responder entry's item is checked
 * against its type and name. */
static void test_old_items(void **state)
{
    fixture *f = *state;
    pl_keystore *ks = open_dir_ok(f);
    pl_paired_peer old = make_peer(1, "Kitchen", 100), out;
    uint8_t pay[128], item[256];
    memcpy(pay, old.id, PL_ID_SIZE);
    memset(pay + PL_ID_SIZE, 0, 8);
    pay[PL_ID_SIZE + 7] = 100;
    pay[PL_ID_SIZE + 8] = 7;
    memcpy(pay + PL_ID_SIZE + 9, "Kitchen", 7);
    size_t m = test_seal("PLK1", 2, pay, PL_ID_SIZE + 9 + 7, item);
    char name[70];
    peer_name_of(old.id, name);
    write_item_file(f, name, item, m);
    assert_int_equal(pl__keystore_find_initiator(ks, old.id, &out), PL_OK);
    assert_peer_equal(&out, &old);
    assert_int_equal(pl__keystore_find_responder(ks, "Kitchen", &out), PL_ERR_NOT_FOUND);
    pl_paired_peer *list;
    size_t n;
    assert_int_equal(pl_keystore_list_peers(ks, &list, &n), PL_OK);
    assert_int_equal(n, 1);
    assert_int_equal(list[0].role, PL_PEER_INITIATOR);
    free(list);

    /* The same payload as a responder's item is refused: type 2 is not 4,
     * and a type-4 item must sit under the name its id and name give. */
    char rname[70];
    snprintf(rname, sizeof rname, "resp.%s", name + 5);
    write_item_file(f, rname, item, m);
    m = test_seal("PLK1", 4, pay, PL_ID_SIZE + 9 + 7, item);
    char rname2[70];
    snprintf(rname2, sizeof rname2, "resp.%.58s", "00000000000000000000000000000000000000000000000000000000000000");
    write_item_file(f, rname2, item, m);
    assert_int_equal(pl__keystore_find_responder(ks, "Kitchen", &out), PL_ERR_NOT_FOUND);
    assert_int_equal(pl_keystore_list_peers(ks, &list, &n), PL_OK);
    assert_int_equal(n, 1);
    free(list);
    /* Saved as a responder now, it is one (and stays an initiator). */
    pl_paired_peer resp = make_resp(1, "Kitchen", 200);
    assert_int_equal(pl__keystore_save_peer(ks, &resp), PL_OK);
    assert_int_equal(pl__keystore_find_responder(ks, "Kitchen", &out), PL_OK);
    assert_peer_equal(&out, &resp);
    assert_int_equal(pl__keystore_find_initiator(ks, old.id, &out), PL_OK);
    assert_int_equal(pl_keystore_forget_id(ks, old.id), PL_OK);
    assert_int_equal(pl_keystore_list_peers(ks, &list, &n), PL_OK);
    assert_int_equal(n, 0);
    pl_keystore_free(ks);
}

/* The discovery hint (docs/PROTOCOL.md section 2.1): the vector, and what it
 * matches. */
static void test_hint(void **state)
{
    (void)state;
    uint8_t id_r[PL_ID_SIZE], id_i[PL_ID_SIZE];
    const uint8_t salt[PL_HINT_SALT] = {0xa1, 0xb2, 0xc3, 0xd4};
    assert_int_equal(sodium_hex2bin(id_r, sizeof id_r, "8139770ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b394",
                                    64, NULL, NULL, NULL), 0);
    assert_int_equal(sodium_hex2bin(id_i, sizeof id_i, "8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c",
                                    64, NULL, NULL, NULL), 0);
    char hint[PL_HINT_LEN + 1];
    pl__hint_make(id_r, salt, hint);
    assert_string_equal(hint, "a1b2c3d4497d39d93de9");

    pl_txt *txt;
    assert_int_equal(pl_txt_new(&txt), PL_OK);
    assert_false(pl__hint_present(txt));
    assert_false(pl__hint_present(NULL));
    assert_false(pl__hint_matches(NULL, id_r));
    assert_int_equal(pl_txt_set_str(txt, "PL-Hint", hint), PL_OK); /* keys compare case-insensitively */
    assert_true(pl__hint_present(txt));
    assert_true(pl__hint_matches(txt, id_r));
    assert_false(pl__hint_matches(txt, id_i));
    const char *bad[] = {"A1B2C3D4497D39D93DE9", "a1b2c3d4497d39d93de", "a1b2c3d4497d39d93de90", "", "zzb2c3d4497d39d93de9",
                         "a1b2c3d4497d39d93de8"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(pl_txt_set_str(txt, PL_HINT_KEY, bad[i]), PL_OK);
        assert_false(pl__hint_matches(txt, id_r));
    }
    assert_int_equal(pl_txt_set_str(txt, PL_HINT_KEY, NULL), PL_OK); /* a boolean attribute */
    assert_false(pl__hint_matches(txt, id_r));

    /* The keystore finds the responder whose hint it is, and only a responder. */
    pl_keystore *ks;
    assert_int_equal(pl_keystore_new_memory(&ks), PL_OK);
    pl_paired_peer r = make_resp(0, "Kitchen", 1), i = make_peer(0, "Phone", 2), out;
    memcpy(r.id, id_r, PL_ID_SIZE);
    memcpy(i.id, id_i, PL_ID_SIZE);
    assert_int_equal(pl__keystore_save_peer(ks, &r), PL_OK);
    assert_int_equal(pl__keystore_save_peer(ks, &i), PL_OK);
    assert_int_equal(pl__keystore_find_hinted(ks, txt, &out), PL_ERR_NOT_FOUND);
    assert_int_equal(pl__keystore_find_hinted(ks, NULL, &out), PL_ERR_NOT_FOUND);
    assert_int_equal(pl_txt_set_str(txt, PL_HINT_KEY, hint), PL_OK);
    assert_int_equal(pl__keystore_find_hinted(ks, txt, &out), PL_OK);
    assert_peer_equal(&out, &r);
    pl__hint_make(id_i, salt, hint);
    assert_int_equal(pl_txt_set_str(txt, PL_HINT_KEY, hint), PL_OK);
    assert_int_equal(pl__keystore_find_hinted(ks, txt, &out), PL_ERR_NOT_FOUND);
    pl_keystore_free(ks);
    pl_txt_free(txt);
}

static void test_id_to_string(void **state)
{
    (void)state;
    uint8_t id[PL_ID_SIZE];
    for (int i = 0; i < PL_ID_SIZE; i++)
        id[i] = (uint8_t)(i * 0x11 + 0x0a);
    char buf[80];
    assert_int_equal(pl_id_to_string(id, buf, 65), PL_OK);
    assert_string_equal(buf, "0a1b2c3d4e5f708192a3b4c5d6e7f8091a2b3c4d5e6f8091a2b3c4d5e6f70819");
    assert_int_equal(strlen(buf), 64);
    assert_int_equal(pl_id_to_string(id, buf, 64), PL_ERR_INVALID);
    assert_int_equal(pl_id_to_string(NULL, buf, sizeof buf), PL_ERR_INVALID);
    assert_int_equal(pl_id_to_string(id, NULL, sizeof buf), PL_ERR_INVALID);
    assert_int_equal(pl_id_size(), PL_ID_SIZE);
    assert_int_equal(PL_ID_SIZE, crypto_sign_PUBLICKEYBYTES);
}

static void test_null_args(void **state)
{
    (void)state;
    uint8_t id[PL_ID_SIZE], sk[64];
    pl_paired_peer out;
    pl_attempts a;
    pl_paired_peer *list;
    size_t n;
    assert_int_equal(pl_keystore_identity(NULL, id), PL_ERR_INVALID);
    assert_int_equal(pl__keystore_identity_secret(NULL, sk), PL_ERR_INVALID);
    assert_int_equal(pl_keystore_list_peers(NULL, &list, &n), PL_ERR_INVALID);
    assert_int_equal(pl_keystore_forget(NULL, "x"), PL_ERR_INVALID);
    assert_int_equal(pl__keystore_find_initiator(NULL, id, &out), PL_ERR_INVALID);
    assert_int_equal(pl__keystore_find_responder(NULL, "x", &out), PL_ERR_INVALID);
    assert_int_equal(pl__keystore_find_hinted(NULL, NULL, &out), PL_ERR_INVALID);
    assert_int_equal(pl_keystore_forget_id(NULL, id), PL_ERR_INVALID);
    assert_int_equal(pl__keystore_save_peer(NULL, &out), PL_ERR_INVALID);
    assert_int_equal(pl__keystore_get_attempts(NULL, "x", &a), PL_ERR_INVALID);
    assert_int_equal(pl__keystore_put_attempts(NULL, "x", &a), PL_ERR_INVALID);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_dir_identity, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_dir_open_errors, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_dir_peers, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_dir_attempts, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_dir_put_mode, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_dir_umask_fifo, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_dir_stale_tmp_ignored, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_dir_refused, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_dir_item_refused, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_dir_owner_root, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_corrupt_identity, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_corrupt_peer, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_corrupt_attempts, setup_dir, teardown_dir),
        cmocka_unit_test(test_memory_store),
        cmocka_unit_test(test_custom_store),
        cmocka_unit_test(test_id_to_string),
        cmocka_unit_test(test_write_then_delete),
        cmocka_unit_test_setup_teardown(test_old_items, setup_dir, teardown_dir),
        cmocka_unit_test(test_hint),
        cmocka_unit_test(test_null_args),
    };
    return cmocka_run_group_tests_name("keystore", tests, NULL, NULL);
}
