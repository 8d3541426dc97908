/* SPDX-License-Identifier: ISC */
/*
 * Two processes on one keystore directory (lib/keystore.c,
 * lib/keystore_stores.c): plcat's listener and dialler sharing the default
 * keystore on one machine, and any two keystores an application opens on
 * one directory. Every child process works through its own keystore and
 * reports by its exit status; a pipe starts children together (no sleeps):
 * each check is an invariant that must hold however the processes
 * interleave, repeated a bounded number of times.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
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

typedef struct fixture {
    char root[64];
    char dir[96];
} fixture;

static int setup_dir(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    strcpy(f->root, "/tmp/pl_test_ks_shared.XXXXXX");
    if (!mkdtemp(f->root)) {
        free(f);
        return -1;
    }
    snprintf(f->dir, sizeof f->dir, "%s/ks", f->root);
    *state = f;
    return sodium_init() < 0 ? -1 : 0;
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
    nftw(f->root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

/* Children that start together: each blocks reading the pipe until
 * start() closes its write end. */
typedef struct group {
    int gate[2];
    pid_t pids[8];
    int n;
} group;

static void group_init(group *g)
{
    memset(g, 0, sizeof *g);
    assert_int_equal(pipe(g->gate), 0);
}

/* Fork a child that runs fn(arg) once the group starts and exits with its
 * result (0: the child's checks held). */
static void spawn(group *g, int (*fn)(void *arg), void *arg)
{
    assert_true(g->n < 8);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char c;
        close(g->gate[1]);
        while (read(g->gate[0], &c, 1) < 0 && errno == EINTR)
            ;
        _exit(fn(arg));
    }
    g->pids[g->n++] = pid;
}

/* Start the children and wait for all; the number that failed. */
static int start_and_wait(group *g)
{
    close(g->gate[0]);
    close(g->gate[1]);
    int failed = 0;
    for (int i = 0; i < g->n; i++) {
        int st;
        while (waitpid(g->pids[i], &st, 0) < 0 && errno == EINTR)
            ;
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            fprintf(stderr, "child %d: %s %d\n", i, WIFEXITED(st) ? "exit status" : "signal",
                    WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
            failed++;
        }
    }
    return failed;
}

/* ---------------------------------------------------------------- identity */

typedef struct id_job {
    const char *dir;
    int out; /* pipe: the id this child sees */
} id_job;

static int see_identity(void *arg)
{
    id_job *j = arg;
    pl_keystore *ks;
    uint8_t id[PL_ID_SIZE];
    if (pl_keystore_open_dir(j->dir, &ks) != PL_OK)
        return 10;
    int rc = pl_keystore_identity(ks, id);
    pl_keystore_free(ks);
    if (rc != PL_OK)
        return 11;
    return write(j->out, id, sizeof id) == (ssize_t)sizeof id ? 0 : 12;
}

/* Four processes open one new directory at once: they create one identity
 * between them (under the directory's lock), and all use it. */
static void test_shared_identity(void **state)
{
    fixture *f = *state;
    for (int trial = 0; trial < 20; trial++) {
        char dir[128];
        snprintf(dir, sizeof dir, "%s/t%d", f->root, trial);
        int ids[2];
        assert_int_equal(pipe(ids), 0);
        id_job j = {dir, ids[1]};
        group g;
        group_init(&g);
        for (int i = 0; i < 4; i++)
            spawn(&g, see_identity, &j);
        close(ids[1]);
        assert_int_equal(start_and_wait(&g), 0);
        uint8_t first[PL_ID_SIZE], id[PL_ID_SIZE];
        assert_int_equal(read(ids[0], first, sizeof first), (ssize_t)sizeof first);
        for (int i = 1; i < 4; i++) {
            assert_int_equal(read(ids[0], id, sizeof id), (ssize_t)sizeof id);
            assert_memory_equal(id, first, PL_ID_SIZE);
        }
        close(ids[0]);
        /* And the file holds it. */
        pl_keystore *ks;
        assert_int_equal(pl_keystore_open_dir(dir, &ks), PL_OK);
        assert_int_equal(pl_keystore_identity(ks, id), PL_OK);
        assert_memory_equal(id, first, PL_ID_SIZE);
        pl_keystore_free(ks);
    }
}

/* ------------------------------------------------- a pairing with itself */

/*
 * plcat -l -n Kitchen and plcat --code C Kitchen with one keystore: both
 * have the same identity, so each stores the other under that one id, the
 * listener the dialler (an initiator, under its host name), the dialler the
 * listener (a responder, under "Kitchen"). Neither entry may take the
 * other's place, in whichever order the two processes write them (the
 * dialler's reconnect without a code needs the responder entry; the
 * listener needs the initiator entry to let it in).
 */
typedef struct self_job {
    const char *dir;
    int role;    /* PL_PEER_INITIATOR: the listener's save; PL_PEER_RESPONDER: the dialler's */
    int seq[2];  /* a pipe that orders the two saves */
    int waits;   /* wait for the other's save (the pipe's end of file) before saving */
    int signals; /* close the pipe's write end once saved */
} self_job;

static int save_self(void *arg)
{
    self_job *j = arg;
    if (!j->signals)
        close(j->seq[1]);
    pl_keystore *ks;
    if (pl_keystore_open_dir(j->dir, &ks) != PL_OK)
        return 20;
    pl_paired_peer p = {.role = j->role, .paired_at = 1000};
    int rc = pl_keystore_identity(ks, p.id);
    snprintf(p.name, sizeof p.name, "%s", j->role == PL_PEER_RESPONDER ? "Kitchen" : "dialler-host");
    if (rc == PL_OK && j->waits) {
        char c;
        while (read(j->seq[0], &c, 1) < 0 && errno == EINTR)
            ;
    }
    if (rc == PL_OK)
        rc = pl__keystore_save_peer(ks, &p);
    if (j->signals)
        close(j->seq[1]);
    /* What each side looks up next, in the keystore it kept open. */
    pl_paired_peer out;
    if (rc == PL_OK && j->role == PL_PEER_RESPONDER)
        rc = pl__keystore_find_responder(ks, "Kitchen", &out);
    else if (rc == PL_OK)
        rc = pl__keystore_find_initiator(ks, p.id, &out);
    pl_keystore_free(ks);
    return rc == PL_OK ? 0 : 21;
}

static void check_self_paired(const char *dir)
{
    pl_keystore *ks;
    uint8_t id[PL_ID_SIZE];
    pl_paired_peer out;
    assert_int_equal(pl_keystore_open_dir(dir, &ks), PL_OK);
    assert_int_equal(pl_keystore_identity(ks, id), PL_OK);
    assert_int_equal(pl__keystore_find_responder(ks, "Kitchen", &out), PL_OK);
    assert_memory_equal(out.id, id, PL_ID_SIZE);
    assert_int_equal(out.role, PL_PEER_RESPONDER);
    assert_int_equal(pl__keystore_find_initiator(ks, id, &out), PL_OK);
    assert_string_equal(out.name, "dialler-host");
    assert_int_equal(out.role, PL_PEER_INITIATOR);
    pl_keystore_free(ks);
}

static void test_shared_self_pairing(void **state)
{
    fixture *f = *state;
    /* order 0: the listener writes first (as in a handshake: it stores the
     * initiator before its Ready); 1: the dialler first; 2: both at once. */
    for (int trial = 0; trial < 30; trial++) {
        int order = trial % 3;
        char dir[128];
        snprintf(dir, sizeof dir, "%s/s%d", f->root, trial);
        int seq[2];
        assert_int_equal(pipe(seq), 0);
        self_job listener = {dir, PL_PEER_INITIATOR, {seq[0], seq[1]}, order == 1, order == 0};
        self_job dialler = {dir, PL_PEER_RESPONDER, {seq[0], seq[1]}, order == 0, order == 1};
        group g;
        group_init(&g);
        spawn(&g, save_self, &listener);
        spawn(&g, save_self, &dialler);
        close(seq[0]);
        close(seq[1]);
        assert_int_equal(start_and_wait(&g), 0);
        check_self_paired(dir);
    }
}

/* ------------------------------------------ saves of one name at once */

typedef struct name_job {
    const char *dir;
    int rounds;
} name_job;

/* Pair again and again with a new device under one instance name; after
 * every save the name must lead to a responder: this one's, or one that
 * another process saved after it, never none. */
static int save_name_again(void *arg)
{
    name_job *j = arg;
    pl_keystore *ks;
    if (pl_keystore_open_dir(j->dir, &ks) != PL_OK)
        return 30;
    int rc = PL_OK;
    for (int i = 0; i < j->rounds && rc == PL_OK; i++) {
        pl_paired_peer p = {.role = PL_PEER_RESPONDER, .paired_at = i};
        randombytes_buf(p.id, sizeof p.id);
        snprintf(p.name, sizeof p.name, "Kitchen");
        pl_paired_peer out;
        rc = pl__keystore_save_peer(ks, &p);
        if (rc != PL_OK)
            fprintf(stderr, "round %d: save: %s\n", i, pl_strerror(rc));
        else if ((rc = pl__keystore_find_responder(ks, "Kitchen", &out)) != PL_OK)
            fprintf(stderr, "round %d: finding \"Kitchen\" after saving it: %s\n", i, pl_strerror(rc));
    }
    pl_keystore_free(ks);
    return rc == PL_OK ? 0 : 31;
}

static void test_shared_same_name(void **state)
{
    fixture *f = *state;
    name_job j = {f->dir, 100};
    group g;
    group_init(&g);
    spawn(&g, save_name_again, &j);
    spawn(&g, save_name_again, &j);
    assert_int_equal(start_and_wait(&g), 0);
    /* Each save replaced what the name had: one entry is left. */
    pl_keystore *ks;
    pl_paired_peer *list;
    size_t n;
    assert_int_equal(pl_keystore_open_dir(f->dir, &ks), PL_OK);
    assert_int_equal(pl_keystore_list_peers(ks, &list, &n), PL_OK);
    assert_int_equal(n, 1);
    assert_string_equal(list[0].name, "Kitchen");
    free(list);
    pl_keystore_free(ks);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_shared_identity, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_shared_self_pairing, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_shared_same_name, setup_dir, teardown_dir),
    };
    return cmocka_run_group_tests_name("keystore_shared", tests, NULL, NULL);
}
