/* SPDX-License-Identifier: ISC */
/*
 * Unit tests of the pairing attempt policy (lib/pairing.c): the limits
 * hold per keystore scope, whichever policy object an attempt reaches,
 * and across processes sharing one keystore directory. The clock is a
 * fake one (pl__pairing_clock_ms), except in the two-process tests.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sodium.h>

#include "pairing.h"

static int64_t fake_now;
static int64_t (*real_clock)(void);
static int64_t fake_clock(void)
{
    return fake_now;
}

static int setup_clock(void **state)
{
    (void)state;
    fake_now = 1700000000000LL; /* some Unix time in ms */
    pl__pairing_clock_ms = fake_clock;
    return 0;
}

static int teardown_clock(void **state)
{
    (void)state;
    pl__pairing_clock_ms = real_clock;
    return 0;
}

static pl_keystore *memory_ks(void)
{
    pl_keystore *ks = NULL;
    assert_int_equal(pl_keystore_new_memory(&ks), PL_OK);
    return ks;
}

static int begin(pl_pairing *p)
{
    const char *code = NULL; /* stays NULL on refusal */
    int rc = pl__pairing_begin(p, &code);
    if (rc == PL_OK)
        assert_string_equal(code, p->code);
    else
        assert_null(code);
    return rc;
}

static pl_attempts scope_state(pl_keystore *ks)
{
    pl_attempts a;
    assert_int_equal(pl__keystore_get_attempts(ks, PL_PAIRING_SCOPE, &a), PL_OK);
    return a;
}

/* One attempt at a time, and the pause after a failure, per scope: a
 * second policy object (another listener, another byte session) waits too. */
static void test_one_attempt_per_scope(void **state)
{
    (void)state;
    pl_keystore *ks = memory_ks();
    pl_pairing a, b, g;
    assert_int_equal(pl__pairing_init(&a, ks, "123456", 0, 0), PL_OK);
    assert_int_equal(pl__pairing_init(&b, ks, "123456", 0, 0), PL_OK);
    assert_int_equal(pl__pairing_init(&g, ks, NULL, 0, 0), PL_OK);

    assert_int_equal(begin(&a), PL_OK);
    assert_true(pl__pairing_busy(&a));
    assert_int_equal(begin(&a), PL_ERR_BUSY);
    assert_int_equal(begin(&b), PL_ERR_BUSY);
    assert_int_equal(begin(&g), PL_ERR_BUSY);
    assert_false(pl__pairing_busy(&b));

    pl__pairing_end(&a, PL_ERR_WRONG_CODE);
    assert_false(pl__pairing_busy(&a));
    fake_now += PL_PAIRING_RETRY_MS - 1;
    assert_int_equal(begin(&b), PL_ERR_BUSY); /* the pause is the scope's */
    assert_int_equal(begin(&g), PL_ERR_BUSY);
    fake_now += 1;
    assert_int_equal(begin(&b), PL_OK);
    pl__pairing_end(&b, PL_OK);
    assert_int_equal(begin(&g), PL_OK); /* a success leaves no pause */
    pl__pairing_end(&g, PL_ERR_WRONG_CODE);

    pl__pairing_clear(&a);
    pl__pairing_clear(&b);
    pl__pairing_clear(&g);
    pl_keystore_free(ks);
}

/* Many attackers, each on its own policy object (the Apple path makes one
 * per connection), against a fixed code with the default limit: at most
 * 10 codes are tested before the lock, and none while it holds. */
static void test_fixed_budget_many_objects(void **state)
{
    (void)state;
    enum { N = 200 };
    pl_keystore *ks = memory_ks();
    pl_pairing *p = calloc(N, sizeof *p);
    assert_non_null(p);
    for (int i = 0; i < N; i++)
        assert_int_equal(pl__pairing_init(&p[i], ks, "482913", 0, 0), PL_OK);

    int tested = 0, locked_seen = 0;
    int64_t start = fake_now, first_lock = 0;
    /* Two minutes of attack, 10 ms apart, every object trying each time. */
    for (int64_t t = 0; t < 120000; t += 10) {
        fake_now = start + t;
        for (int i = 0; i < N; i++) {
            int rc = begin(&p[i]);
            if (rc == PL_OK) {
                tested++;
                pl__pairing_end(&p[i], PL_ERR_WRONG_CODE);
            } else if (rc == PL_ERR_LOCKED && !locked_seen) {
                locked_seen = 1;
                first_lock = fake_now;
            } else {
                assert_true(rc == PL_ERR_BUSY || rc == PL_ERR_LOCKED);
            }
        }
        /* Within the first lock period, never an 11th test. */
        if (first_lock && fake_now < first_lock + PL_PAIRING_LOCK_BASE_S * 1000 - 1000)
            assert_int_equal(tested, PL_DEFAULT_MAX_FAILURES);
    }
    assert_true(locked_seen);
    /* The lock (60 s) ended within the two minutes: at most one more budget. */
    assert_true(tested > PL_DEFAULT_MAX_FAILURES);
    assert_true(tested <= 2 * PL_DEFAULT_MAX_FAILURES);
    pl_attempts s = scope_state(ks);
    assert_true(s.lock_level >= 1);

    for (int i = 0; i < N; i++)
        pl__pairing_clear(&p[i]);
    free(p);
    pl_keystore_free(ks);
}

/* A generated-code listener on the same keystore rotates its code after
 * its own failures; that neither resets nor unlocks a fixed code. */
static void test_rotation_keeps_fixed_budget(void **state)
{
    (void)state;
    pl_keystore *ks = memory_ks();
    pl_pairing f, g;
    assert_int_equal(pl__pairing_init(&f, ks, "424242", 0, 0), PL_OK);
    assert_int_equal(pl__pairing_init(&g, ks, NULL, 6, 0), PL_OK);

    for (int i = 0; i < PL_DEFAULT_MAX_FAILURES - 1; i++) {
        assert_int_equal(begin(&f), PL_OK);
        pl__pairing_end(&f, PL_ERR_WRONG_CODE);
        fake_now += PL_PAIRING_RETRY_MS;
    }
    assert_int_equal(scope_state(ks).failures, PL_DEFAULT_MAX_FAILURES - 1);

    int rotations = 0;
    for (int i = 0; i < 2 * PL_DEFAULT_MAX_FAILURES + 5; i++) {
        assert_int_equal(begin(&g), PL_OK);
        pl__pairing_end(&g, PL_ERR_WRONG_CODE);
        if (g.code_changed) {
            rotations++;
            g.code_changed = 0;
        }
        fake_now += PL_PAIRING_RETRY_MS;
    }
    assert_int_equal(rotations, 2);
    assert_int_equal(g.failures, 5);
    assert_int_equal(scope_state(ks).failures, PL_DEFAULT_MAX_FAILURES - 1);

    /* The fixed code's 10th failure locks the scope. */
    assert_int_equal(begin(&f), PL_OK);
    pl__pairing_end(&f, PL_ERR_WRONG_CODE);
    fake_now += PL_PAIRING_RETRY_MS;
    pl_attempts s = scope_state(ks);
    assert_int_equal(s.lock_level, 1);
    assert_true(s.locked_until * 1000 > fake_now);
    assert_int_equal(begin(&f), PL_ERR_LOCKED);
    /* Rotations do not lift it either. */
    assert_int_equal(begin(&g), PL_ERR_LOCKED);

    /* After the lock, a success with the fixed code clears its record. */
    fake_now = s.locked_until * 1000;
    assert_int_equal(begin(&f), PL_OK);
    pl__pairing_end(&f, PL_OK);
    s = scope_state(ks);
    assert_int_equal(s.failures, 0);
    assert_int_equal(s.lock_level, 0);

    pl__pairing_clear(&f);
    pl__pairing_clear(&g);
    pl_keystore_free(ks);
}

/* Attempts that begin and never end (a process that died in one) are
 * counted when they begin; the scope frees itself after
 * PL_PAIRING_ATTEMPT_MS, and the budget still holds. */
static void test_unfinished_attempts_count(void **state)
{
    (void)state;
    pl_keystore *ks = memory_ks();
    pl_pairing p[5];
    for (int i = 0; i < 5; i++)
        assert_int_equal(pl__pairing_init(&p[i], ks, "777777", 0, 3), PL_OK);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(begin(&p[i]), PL_OK);
        fake_now += PL_PAIRING_ATTEMPT_MS - 1;
        assert_int_equal(begin(&p[4]), PL_ERR_BUSY);
        fake_now += 1;
    }
    assert_int_equal(scope_state(ks).failures, 3);
    assert_int_equal(begin(&p[3]), PL_ERR_LOCKED); /* the budget was spent by attempts in flight */
    assert_int_equal(scope_state(ks).lock_level, 1);
    /* A late end of an abandoned attempt changes nothing that matters. */
    pl__pairing_end(&p[0], PL_ERR_TIMEOUT);
    assert_int_equal(begin(&p[4]), PL_ERR_LOCKED);
    for (int i = 0; i < 5; i++)
        pl__pairing_clear(&p[i]);
    pl_keystore_free(ks);
}

/* A clock set back does not stretch the pause or the busy mark. */
static void test_clock_set_back(void **state)
{
    (void)state;
    pl_keystore *ks = memory_ks();
    pl_pairing p;
    assert_int_equal(pl__pairing_init(&p, ks, NULL, 0, 0), PL_OK);
    assert_int_equal(begin(&p), PL_OK);
    pl__pairing_end(&p, PL_ERR_WRONG_CODE);
    fake_now -= 3600 * 1000; /* an hour back */
    assert_int_equal(begin(&p), PL_OK);
    pl__pairing_end(&p, PL_OK);
    pl__pairing_clear(&p);
    pl_keystore_free(ks);
}

/* ------------------------------------------------ across processes */

typedef struct dirfix {
    char dir[64];
} dirfix;

static int setup_dir(void **state)
{
    dirfix *d = calloc(1, sizeof *d);
    if (!d)
        return -1;
    strcpy(d->dir, "/tmp/pl_test_pairing.XXXXXX");
    if (!mkdtemp(d->dir)) {
        free(d);
        return -1;
    }
    *state = d;
    return 0;
}

static int teardown_dir(void **state)
{
    dirfix *d = *state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", d->dir);
    if (system(cmd) != 0)
        return -1;
    free(d);
    return 0;
}

static int add_one(pl_attempts *a, void *arg)
{
    (void)arg;
    a->failures++;
    return 1;
}

/* Two processes, each with its own keystore object on one directory,
 * change the counter concurrently: no update is lost. */
static void test_two_processes_one_counter(void **state)
{
    dirfix *d = *state;
    enum { PER_CHILD = 100 };
    pid_t kids[2];
    for (int k = 0; k < 2; k++) {
        kids[k] = fork();
        assert_true(kids[k] >= 0);
        if (kids[k] == 0) {
            pl_keystore *ks = NULL;
            if (pl_keystore_open_dir(d->dir, &ks) != PL_OK)
                _exit(2);
            for (int i = 0; i < PER_CHILD; i++)
                if (pl__keystore_update_attempts(ks, "race", add_one, NULL) != PL_OK)
                    _exit(3);
            pl_keystore_free(ks);
            _exit(0);
        }
    }
    for (int k = 0; k < 2; k++) {
        int st = 0;
        assert_int_equal(waitpid(kids[k], &st, 0), kids[k]);
        assert_true(WIFEXITED(st));
        assert_int_equal(WEXITSTATUS(st), 0);
    }
    pl_keystore *ks = NULL;
    pl_attempts a;
    assert_int_equal(pl_keystore_open_dir(d->dir, &ks), PL_OK);
    assert_int_equal(pl__keystore_get_attempts(ks, "race", &a), PL_OK);
    assert_int_equal(a.failures, 2 * PER_CHILD);
    pl_keystore_free(ks);
}

/* An attempt in progress in one process makes another process's
 * listener on the same keystore directory wait. (Real clock.) */
static void test_two_processes_one_attempt(void **state)
{
    dirfix *d = *state;
    int go[2], done[2];
    assert_int_equal(pipe(go), 0);
    assert_int_equal(pipe(done), 0);
    pid_t kid = fork();
    assert_true(kid >= 0);
    if (kid == 0) {
        pl_keystore *ks = NULL;
        pl_pairing p;
        char c = 0;
        if (pl_keystore_open_dir(d->dir, &ks) != PL_OK || pl__pairing_init(&p, ks, "135791", 0, 0) != PL_OK)
            _exit(2);
        const char *code;
        if (pl__pairing_begin(&p, &code) != PL_OK)
            _exit(3);
        if (write(go[1], "x", 1) != 1 || read(done[0], &c, 1) != 1)
            _exit(4);
        pl__pairing_end(&p, PL_ERR_WRONG_CODE);
        pl_keystore_free(ks);
        _exit(0);
    }
    char c;
    assert_int_equal(read(go[0], &c, 1), 1);
    pl_keystore *ks = NULL;
    pl_pairing p;
    const char *code = NULL;
    assert_int_equal(pl_keystore_open_dir(d->dir, &ks), PL_OK);
    assert_int_equal(pl__pairing_init(&p, ks, "135791", 0, 0), PL_OK);
    assert_int_equal(pl__pairing_begin(&p, &code), PL_ERR_BUSY);
    assert_int_equal(write(done[1], "x", 1), 1);
    int st = 0;
    assert_int_equal(waitpid(kid, &st, 0), kid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    /* The other process's failure counts here, and its pause holds here. */
    pl_attempts a;
    assert_int_equal(pl__keystore_get_attempts(ks, PL_PAIRING_SCOPE, &a), PL_OK);
    assert_int_equal(a.failures, 1);
    assert_int_equal(pl__pairing_begin(&p, &code), PL_ERR_BUSY);
    pl__pairing_clear(&p);
    pl_keystore_free(ks);
    close(go[0]);
    close(go[1]);
    close(done[0]);
    close(done[1]);
}

/* A damaged attempt state fails closed: no attempt is admitted. */
static void test_fails_closed(void **state)
{
    dirfix *d = *state;
    pl_keystore *ks = NULL;
    pl_pairing p;
    const char *code = NULL;
    assert_int_equal(pl_keystore_open_dir(d->dir, &ks), PL_OK);
    assert_int_equal(pl__pairing_init(&p, ks, NULL, 0, 0), PL_OK);
    char path[128];
    snprintf(path, sizeof path, "%s/attempts.70616972696e67", d->dir); /* "pairing" in hex */
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("PLK1 not a sealed item", f);
    fclose(f);
    assert_int_equal(pl__pairing_begin(&p, &code), PL_ERR_LOCKED);
    assert_null(code);
    assert_false(pl__pairing_busy(&p));
    assert_int_equal(unlink(path), 0);
    assert_int_equal(pl__pairing_begin(&p, &code), PL_OK);
    pl__pairing_end(&p, PL_OK);
    pl__pairing_clear(&p);
    pl_keystore_free(ks);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    real_clock = pl__pairing_clock_ms;
    const struct CMUnitTest fake[] = {
        cmocka_unit_test_setup_teardown(test_one_attempt_per_scope, setup_clock, teardown_clock),
        cmocka_unit_test_setup_teardown(test_fixed_budget_many_objects, setup_clock, teardown_clock),
        cmocka_unit_test_setup_teardown(test_rotation_keeps_fixed_budget, setup_clock, teardown_clock),
        cmocka_unit_test_setup_teardown(test_unfinished_attempts_count, setup_clock, teardown_clock),
        cmocka_unit_test_setup_teardown(test_clock_set_back, setup_clock, teardown_clock),
    };
    int failed = cmocka_run_group_tests_name("pairing policy (fake clock)", fake, NULL, NULL);
    const struct CMUnitTest procs[] = {
        cmocka_unit_test_setup_teardown(test_fails_closed, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_two_processes_one_counter, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_two_processes_one_attempt, setup_dir, teardown_dir),
    };
    failed += cmocka_run_group_tests_name("pairing policy (processes)", procs, NULL, NULL);
    return failed;
}
