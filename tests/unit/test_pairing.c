/* SPDX-License-Identifier: ISC */
/*
 * Unit tests of the pairing attempt policy (lib/pairing.c over
 * lib/core/policy.c): the limits hold per keystore scope, whichever
 * policy object an attempt reaches, and across processes sharing one
 * keystore directory; generated codes have a budget across replacements,
 * with a back-off; times read from the keystore are bounded. The clock is
 * a fake one (pl__pairing_clock_ms), except in the two-process tests.
 * Then a listener's pairing window (closing after the first success and
 * when its time is over) and a silent holder, over in-memory pipes.
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
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include <peerlink/peerlink.h>

#include "pairing.h"
#include "core/frame.h"

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

/* Let the pause after the last failure pass. */
static void after_pause(pl_keystore *ks)
{
    pl_attempts a = scope_state(ks);
    if (a.retry_at_ms > fake_now)
        fake_now = a.retry_at_ms;
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

    pl__pairing_end(&a, PL_ERR_WRONG_CODE, 1);
    assert_false(pl__pairing_busy(&a));
    fake_now += PL_PAIRING_RETRY_MS - 1;
    assert_int_equal(begin(&b), PL_ERR_BUSY); /* the pause is the scope's */
    assert_int_equal(begin(&g), PL_ERR_BUSY);
    fake_now += 1;
    assert_int_equal(begin(&b), PL_OK);
    pl__pairing_end(&b, PL_OK, 1);
    assert_int_equal(begin(&g), PL_OK); /* a success leaves no pause */
    pl__pairing_end(&g, PL_ERR_WRONG_CODE, 1);

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
                pl__pairing_end(&p[i], PL_ERR_WRONG_CODE, 1);
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
        pl__pairing_end(&f, PL_ERR_WRONG_CODE, 1);
        fake_now += PL_PAIRING_RETRY_MS;
    }
    assert_int_equal(scope_state(ks).failures, PL_DEFAULT_MAX_FAILURES - 1);

    int rotations = 0;
    for (int i = 0; i < 2 * PL_DEFAULT_MAX_FAILURES + 5; i++) {
        assert_int_equal(begin(&g), PL_OK);
        pl__pairing_end(&g, PL_ERR_WRONG_CODE, 1);
        if (g.code_changed) {
            rotations++;
            g.code_changed = 0;
        }
        after_pause(ks);
    }
    assert_int_equal(rotations, 2);
    assert_int_equal(g.failures, 5);
    assert_int_equal(scope_state(ks).failures, PL_DEFAULT_MAX_FAILURES - 1);

    /* The fixed code's 10th failure locks the scope. */
    assert_int_equal(begin(&f), PL_OK);
    pl__pairing_end(&f, PL_ERR_WRONG_CODE, 1);
    after_pause(ks);
    pl_attempts s = scope_state(ks);
    assert_int_equal(s.lock_level, 1);
    assert_true(s.locked_until * 1000 > fake_now);
    assert_int_equal(begin(&f), PL_ERR_LOCKED);
    /* Rotations do not lift it either. */
    assert_int_equal(begin(&g), PL_ERR_LOCKED);

    /* After the lock, a success with the fixed code clears its record. */
    fake_now = s.locked_until * 1000;
    assert_int_equal(begin(&f), PL_OK);
    pl__pairing_end(&f, PL_OK, 1);
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
    pl__pairing_end(&p[0], PL_ERR_TIMEOUT, 1);
    assert_int_equal(begin(&p[4]), PL_ERR_LOCKED);
    for (int i = 0; i < 5; i++)
        pl__pairing_clear(&p[i]);
    pl_keystore_free(ks);
}

/* A clock set back neither stretches the pause nor skips it: it runs its
 * own length from now. */
static void test_clock_set_back(void **state)
{
    (void)state;
    pl_keystore *ks = memory_ks();
    pl_pairing p;
    assert_int_equal(pl__pairing_init(&p, ks, NULL, 0, 0), PL_OK);
    assert_int_equal(begin(&p), PL_OK);
    pl__pairing_end(&p, PL_ERR_WRONG_CODE, 1);
    fake_now -= 3600 * 1000; /* an hour back */
    assert_int_equal(begin(&p), PL_ERR_BUSY);
    assert_true(scope_state(ks).retry_at_ms <= fake_now + PL_PAIRING_RETRY_MS); /* written back, bounded */
    fake_now += PL_PAIRING_RETRY_MS;
    assert_int_equal(begin(&p), PL_OK);
    pl__pairing_end(&p, PL_OK, 1);
    pl__pairing_clear(&p);
    pl_keystore_free(ks);
}

/* Generated codes: the code is replaced after each 10 failures, the
 * pause doubles every 10 (1 s, 2 s, ... 64 s), and after 100 failures in
 * all no generated code is admitted in the scope - whichever object, and
 * whatever replacement - until pairing is opened again. A fixed code in
 * the same scope keeps its own rule. */
static void test_generated_budget_across_rotations(void **state)
{
    (void)state;
    pl_keystore *ks = memory_ks();
    pl_pairing g, h, f;
    assert_int_equal(pl__pairing_init(&g, ks, NULL, 6, 0), PL_OK);
    assert_int_equal(pl__pairing_init(&h, ks, NULL, 6, 0), PL_OK); /* another listener */
    assert_int_equal(pl__pairing_init(&f, ks, "424242", 0, 0), PL_OK);
    assert_int_equal(pl__pairing_open(&g), PL_OK);
    int64_t start = fake_now;
    int tested = 0, rotations = 0;
    while (tested < 2 * PL_PAIRING_BUDGET && begin(&g) == PL_OK) {
        tested++;
        pl__pairing_end(&g, PL_ERR_WRONG_CODE, 1);
        if (g.code_changed) {
            rotations++;
            g.code_changed = 0;
        }
        if (g.spent)
            break;
        /* The pause, exactly: refused one ms before its end, for any object. */
        int64_t pause = (int64_t)PL_PAIRING_RETRY_MS << (tested / 10 < 6 ? tested / 10 : 6);
        assert_int_equal(scope_state(ks).retry_at_ms, fake_now + pause);
        fake_now += pause - 1;
        assert_int_equal(begin(&g), PL_ERR_BUSY);
        assert_int_equal(begin(&h), PL_ERR_BUSY);
        fake_now += 1;
    }
    assert_int_equal(tested, PL_PAIRING_BUDGET);
    assert_int_equal(rotations, PL_PAIRING_BUDGET / PL_DEFAULT_MAX_FAILURES - 1); /* not after the last */
    assert_true(g.spent);
    assert_int_equal(scope_state(ks).gen_failures, PL_PAIRING_BUDGET);
    /* The attack took at least 3189 s (docs/PROTOCOL.md section 11.2). */
    assert_true(fake_now - start >= 3189 * 1000);
    /* Long after: still closed, for every generated code of the scope. */
    fake_now += 7 * 86400 * 1000LL;
    assert_int_equal(begin(&g), PL_ERR_LOCKED);
    assert_int_equal(begin(&h), PL_ERR_LOCKED);
    assert_true(h.spent);
    /* The fixed code is not concerned. */
    assert_int_equal(begin(&f), PL_OK);
    pl__pairing_end(&f, PL_OK, 1);
    /* Opened again (the application's act): a fresh budget, the first pause 1 s again. */
    assert_int_equal(pl__pairing_open(&g), PL_OK);
    assert_false(g.spent);
    assert_int_equal(begin(&g), PL_OK);
    pl__pairing_end(&g, PL_ERR_WRONG_CODE, 1);
    assert_int_equal(scope_state(ks).gen_failures, 1);
    assert_int_equal(scope_state(ks).retry_at_ms, fake_now + PL_PAIRING_RETRY_MS);
    /* A success does not count against the budget. */
    after_pause(ks);
    assert_int_equal(begin(&h), PL_OK);
    pl__pairing_end(&h, PL_OK, 1);
    assert_int_equal(scope_state(ks).gen_failures, 1);
    pl__pairing_clear(&g);
    pl__pairing_clear(&h);
    pl__pairing_clear(&f);
    pl_keystore_free(ks);
}

/* Attempts that died before the initiator's key confirmation (a silent
 * holder) count against the budget - the responder's sealed reply let
 * the initiator test its guess - but do not wear out the code shown. */
static void test_silent_attempts_keep_the_code(void **state)
{
    (void)state;
    pl_keystore *ks = memory_ks();
    pl_pairing g;
    assert_int_equal(pl__pairing_init(&g, ks, NULL, 6, 3), PL_OK);
    assert_int_equal(pl__pairing_open(&g), PL_OK);
    char code[PL_CODE_MAX + 1];
    strcpy(code, g.code);
    for (int i = 0; i < 12; i++) {
        assert_int_equal(begin(&g), PL_OK);
        pl__pairing_end(&g, i % 2 ? PL_ERR_TIMEOUT : PL_ERR_CLOSED, 0);
        after_pause(ks);
    }
    assert_false(g.code_changed);
    assert_string_equal(g.code, code);
    assert_int_equal(scope_state(ks).gen_failures, 12);
    /* Answered failures do: the third replaces it. */
    for (int i = 0; i < 3; i++) {
        assert_int_equal(begin(&g), PL_OK);
        pl__pairing_end(&g, PL_ERR_WRONG_CODE, 1);
        after_pause(ks);
    }
    assert_true(g.code_changed);
    pl__pairing_clear(&g);
    pl_keystore_free(ks);
}

/* Times read back from the keystore are bounded by their own lengths: a
 * lock far in the future (a damaged clock or item), or one set before the
 * clock went back to 1970 (a device without a real-time clock), holds at
 * most as long as a lock of its level, and the bound is written back. */
static void test_stored_times_bounded(void **state)
{
    (void)state;
    pl_keystore *ks = memory_ks();
    pl_pairing f, g;
    assert_int_equal(pl__pairing_init(&f, ks, "424242", 0, 0), PL_OK);
    assert_int_equal(pl__pairing_init(&g, ks, NULL, 6, 0), PL_OK);

    /* 1. A lock 50 years ahead, at level 1 (a 60 s lock). */
    pl_attempts w = {0};
    w.lock_level = 1;
    w.locked_until = fake_now / 1000 + 50LL * 365 * 86400;
    assert_int_equal(pl__keystore_put_attempts(ks, PL_PAIRING_SCOPE, &w), PL_OK);
    assert_int_equal(begin(&f), PL_ERR_LOCKED);
    assert_true(scope_state(ks).locked_until <= fake_now / 1000 + PL_PAIRING_LOCK_BASE_S);
    fake_now += PL_PAIRING_LOCK_BASE_S * 1000;
    assert_int_equal(begin(&f), PL_OK);
    pl__pairing_end(&f, PL_OK, 1);

    /* 2. Locked now; then the device boots with its clock in 1970. */
    for (int i = 0; i < PL_DEFAULT_MAX_FAILURES; i++) {
        assert_int_equal(begin(&f), PL_OK);
        pl__pairing_end(&f, PL_ERR_WRONG_CODE, 1);
        after_pause(ks);
    }
    assert_int_equal(begin(&f), PL_ERR_LOCKED);
    fake_now = 5000; /* 5 s after the epoch */
    assert_int_equal(begin(&f), PL_ERR_LOCKED);
    assert_int_equal(begin(&g), PL_ERR_LOCKED);
    fake_now += PL_PAIRING_LOCK_BASE_S * 1000;
    assert_int_equal(begin(&f), PL_OK); /* a minute, not 56 years */
    pl__pairing_end(&f, PL_OK, 1);
    /* ... and before the epoch too: the last pause runs its 1 s, no more. */
    fake_now = -86400 * 1000LL;
    assert_int_equal(begin(&g), PL_ERR_BUSY);
    fake_now += PL_PAIRING_RETRY_MS;
    assert_int_equal(begin(&g), PL_OK);
    pl__pairing_end(&g, PL_OK, 1);

    /* 3. An attempt mark and a pause ten years ahead: at most 3 s and 1 s. */
    fake_now = 1700000000000LL;
    memset(&w, 0, sizeof w);
    w.busy_until_ms = fake_now + 10LL * 365 * 86400 * 1000;
    w.busy_token = 12345;
    w.retry_at_ms = w.busy_until_ms;
    assert_int_equal(pl__keystore_put_attempts(ks, PL_PAIRING_SCOPE, &w), PL_OK);
    assert_int_equal(begin(&g), PL_ERR_BUSY);
    w = scope_state(ks);
    assert_true(w.busy_until_ms <= fake_now + PL_PAIRING_ATTEMPT_MS);
    assert_true(w.retry_at_ms <= fake_now + PL_PAIRING_RETRY_MS);
    fake_now += PL_PAIRING_ATTEMPT_MS;
    assert_int_equal(begin(&g), PL_OK);
    pl__pairing_end(&g, PL_OK, 1);
    pl__pairing_clear(&f);
    pl__pairing_clear(&g);
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
        pl__pairing_end(&p, PL_ERR_WRONG_CODE, 1);
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
    pl__pairing_end(&p, PL_OK, 1);
    pl__pairing_clear(&p);
    pl_keystore_free(ks);
}

/* Generated codes' budget is the keystore's: another keystore object
 * on the same directory (another process) finds it spent, and it stays
 * spent across a restart until pairing is opened again. */
static void test_budget_survives_restart(void **state)
{
    dirfix *d = *state;
    pl__pairing_clock_ms = fake_clock;
    fake_now = 1700000000000LL;
    pl_keystore *ks1 = NULL, *ks2 = NULL;
    assert_int_equal(pl_keystore_open_dir(d->dir, &ks1), PL_OK);
    assert_int_equal(pl_keystore_open_dir(d->dir, &ks2), PL_OK);
    pl_pairing g1, g2;
    assert_int_equal(pl__pairing_init(&g1, ks1, NULL, 6, 0), PL_OK);
    assert_int_equal(pl__pairing_init(&g2, ks2, NULL, 6, 0), PL_OK);
    assert_int_equal(pl__pairing_open(&g1), PL_OK);
    for (int i = 0; i < PL_PAIRING_BUDGET; i++) {
        assert_int_equal(begin(&g1), PL_OK);
        pl__pairing_end(&g1, PL_ERR_WRONG_CODE, 1);
        after_pause(ks1);
    }
    assert_int_equal(begin(&g2), PL_ERR_LOCKED);
    assert_true(g2.spent);
    pl__pairing_clear(&g2);
    pl_keystore_free(ks2);
    assert_int_equal(pl_keystore_open_dir(d->dir, &ks2), PL_OK);
    assert_int_equal(pl__pairing_init(&g2, ks2, NULL, 6, 0), PL_OK);
    assert_int_equal(begin(&g2), PL_ERR_LOCKED);
    assert_int_equal(pl__pairing_open(&g2), PL_OK);
    assert_int_equal(begin(&g2), PL_OK);
    pl__pairing_end(&g2, PL_OK, 1);
    pl__pairing_clear(&g1);
    pl__pairing_clear(&g2);
    pl_keystore_free(ks1);
    pl_keystore_free(ks2);
    pl__pairing_clock_ms = real_clock;
}

/* ------------------------------------------------ a listener's pairing */

#define CODE "482913"
#define INSTANCE "window"

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* An in-memory pipe. The initiator's end may pass on only its first
 * `frames` frames and drop the rest: a peer that falls silent. */
typedef struct pipe_end {
    pl_channel *ch; /* NULL once closed */
    struct pipe_end *other;
    int frames;     /* -1: all; else how many frames more to pass on */
    uint8_t hdr[PL_FRAME_HEADER_SIZE];
    size_t hdr_have, body_left;
    int closed;
} pipe_end;

static long pipe_write(void *ctx, const uint8_t *data, size_t len)
{
    pipe_end *p = ctx;
    if (!p->other->ch)
        return -1;
    if (p->frames < 0) {
        int rc = pl_channel_input(p->other->ch, data, len);
        return rc == PL_OK ? (long)len : rc == PL_ERR_AGAIN ? 0 : -1;
    }
    /* Pass on whole frames while any are left, drop the rest. */
    for (size_t off = 0; off < len;) {
        size_t n;
        if (p->body_left == 0 && p->hdr_have < sizeof p->hdr) {
            n = sizeof p->hdr - p->hdr_have < len - off ? sizeof p->hdr - p->hdr_have : len - off;
            memcpy(p->hdr + p->hdr_have, data + off, n);
            p->hdr_have += n;
            if (p->hdr_have == sizeof p->hdr) {
                pl_frame_header h;
                assert_int_equal(pl_frame_header_decode(p->hdr, &h), PL_OK);
                p->body_left = h.length;
            }
        } else {
            n = p->body_left < len - off ? p->body_left : len - off;
            p->body_left -= n;
        }
        if (p->frames > 0)
            assert_int_equal(pl_channel_input(p->other->ch, data + off, n), PL_OK);
        off += n;
        if (p->hdr_have == sizeof p->hdr && p->body_left == 0) {
            p->hdr_have = 0;
            if (p->frames > 0)
                p->frames--;
        }
    }
    return (long)len;
}

static void pipe_close(void *ctx)
{
    pipe_end *p = ctx;
    p->ch = NULL;
    p->closed = 1;
    if (p->other->ch && p->frames < 0) /* a silent peer stays silent */
        pl_channel_input(p->other->ch, NULL, 0);
}

static void pipe_input_ready(void *ctx)
{
    pipe_end *p = ctx;
    if (p->other->ch)
        pl_channel_writable(p->other->ch);
}

static const pl_channel_ops pipe_ops = {sizeof(pl_channel_ops), pipe_write, pipe_close, pipe_input_ready};

typedef struct peer {
    pl_session *conn;
    pipe_end ends[2]; /* [0]: the initiator's, [1]: the listener's */
    int open, closed, status;
} peer;

typedef struct lfix {
    pl_loop *loop;
    pl_keystore *srv_ks, *cli_ks;
    pl_node *srv_node, *cli_node;
    pl_listener *l;
    pl_session *accepted[8];
    int n_accepted;
    peer peers[8]; /* one per link: a pipe lives on after its initiator is freed */
    int n_peers;
    int failed, new_codes, closed, closed_status, last_failure;
} lfix;

static void on_peer(pl_session *c, pl_session_event ev, int status, const void *data, size_t len, void *ud)
{
    peer *p = ud;
    (void)c, (void)data, (void)len;
    if (ev == PL_SESSION_OPEN)
        p->open++;
    if (ev == PL_SESSION_CLOSED) {
        p->closed++;
        p->status = status;
    }
}

static void on_accept(pl_listener *l, pl_session *c, void *ud)
{
    lfix *f = ud;
    (void)l;
    assert_true(f->n_accepted < 8);
    f->accepted[f->n_accepted++] = c;
}

static void on_pairing(pl_listener *l, pl_pairing_event ev, int status, const char *code, void *ud)
{
    lfix *f = ud;
    (void)l, (void)code;
    if (ev == PL_PAIRING_FAILED) {
        f->failed++;
        f->last_failure = status;
    } else if (ev == PL_PAIRING_NEW_CODE) {
        f->new_codes++;
    } else if (ev == PL_PAIRING_CLOSED) {
        f->closed++;
        f->closed_status = status;
    }
}

static int lsetup(void **state)
{
    lfix *f = calloc(1, sizeof *f);
    assert_non_null(f);
    assert_int_equal(pl_loop_new(&f->loop), PL_OK);
    const pl_poll *poll = pl_loop_get_poll(f->loop);
    assert_int_equal(pl_keystore_new_memory(&f->srv_ks), PL_OK);
    assert_int_equal(pl_keystore_new_memory(&f->cli_ks), PL_OK);
    assert_int_equal(pl_node_new(poll, f->srv_ks, &f->srv_node), PL_OK);
    assert_int_equal(pl_node_new(poll, f->cli_ks, &f->cli_node), PL_OK);
    assert_int_equal(pl_listener_new_detached(f->srv_node, on_accept, f, &f->l), PL_OK);
    assert_int_equal(pl_listener_set_instance(f->l, INSTANCE), PL_OK);
    pl_listener_set_pairing_callback(f->l, on_pairing, f);
    fake_now = 1700000000000LL;
    pl__pairing_clock_ms = fake_clock; /* the attempt state's clock; the window runs on the loop's */
    *state = f;
    return 0;
}

static int lteardown(void **state)
{
    lfix *f = *state;
    for (int i = 0; i < f->n_accepted; i++)
        pl_session_free(f->accepted[i]);
    pl_node_free(f->srv_node);
    pl_node_free(f->cli_node);
    pl_loop_free(f->loop);
    pl_keystore_free(f->srv_ks);
    pl_keystore_free(f->cli_ks);
    free(f);
    pl__pairing_clock_ms = real_clock;
    return 0;
}

/* Run the loop until *flag is set, at most limit_ms (a hang fails the test). */
static void run_until_at(lfix *f, const int *flag, int limit_ms, int line)
{
    int64_t end = mono_ms() + limit_ms;
    while (!*flag && mono_ms() < end)
        assert_true(pl_loop_iterate(f->loop, 50) >= 0);
    if (!*flag)
        fail_msg("line %d: still waiting after %d ms", line, limit_ms);
}
#define run_until(f, flag, limit_ms) run_until_at(f, flag, limit_ms, __LINE__)

/* A peer reaches the listener over a new pipe, with code (NULL: it
 * reconnects with the stored keys); frames: see pipe_end. */
static peer *reach(lfix *f, const char *code, int frames)
{
    assert_true(f->n_peers < 8);
    peer *p = &f->peers[f->n_peers++];
    p->ends[0].other = &p->ends[1];
    p->ends[1].other = &p->ends[0];
    p->ends[0].frames = frames;
    p->ends[1].frames = -1;
    assert_int_equal(pl_listener_add_channel(f->l, &pipe_ops, &p->ends[1], &p->ends[1].ch), PL_OK);
    assert_int_equal(pl_session_new_channel(f->cli_node, &pipe_ops, &p->ends[0], PL_ROLE_INITIATOR, INSTANCE,
                                         on_peer, p, &p->conn), PL_OK);
    p->ends[0].ch = pl_session_channel(p->conn);
    if (code)
        assert_int_equal(pl_session_set_code(p->conn, code), PL_OK);
    return p;
}

static void done_with(peer *p)
{
    pl_session_free(p->conn);
    p->conn = NULL;
}

/* Pairing closes after the first success (PL_PAIRING_CLOSED, PL_OK), not
 * with PL_PAIRING_KEEP_OPEN; paired peers reconnect while it is closed. */
static void test_listener_closes_after_first_success(void **state)
{
    lfix *f = *state;
    assert_int_equal(pl_listener_set_pairing(f->l, CODE, 0, 0), PL_OK);
    peer *a = reach(f, CODE, -1);
    run_until(f, &a->open, 10000);
    run_until(f, &f->closed, 10000);
    assert_int_equal(f->closed_status, PL_OK);
    assert_null(pl_listener_code(f->l));
    done_with(a);
    peer *b = reach(f, CODE, -1);
    run_until(f, &b->closed, 10000);
    assert_int_equal(b->status, PL_ERR_NOT_PAIRED);
    assert_int_equal(b->open, 0);
    done_with(b);
    /* Reconnecting with the stored keys needs no pairing. */
    a = reach(f, NULL, -1);
    run_until(f, &a->open, 10000);
    done_with(a);

    /* Kept open: two pairings, no closing. */
    f->closed = 0;
    assert_int_equal(pl_listener_set_pairing_window(f->l, PL_PAIRING_WINDOW_S, PL_PAIRING_KEEP_OPEN), PL_OK);
    assert_int_equal(pl_listener_set_pairing(f->l, CODE, 0, 0), PL_OK);
    for (int i = 0; i < 2; i++) {
        a = reach(f, CODE, -1);
        run_until(f, &a->open, 10000);
        done_with(a);
    }
    assert_int_equal(f->closed, 0);
    assert_string_equal(pl_listener_code(f->l), CODE);
    /* Stopped by the application: no news. */
    pl_listener_stop_pairing(f->l);
    assert_null(pl_listener_code(f->l));
    for (int i = 0; i < 5; i++)
        assert_true(pl_loop_iterate(f->loop, 10) >= 0);
    assert_int_equal(f->closed, 0);

    assert_int_equal(pl_listener_set_pairing_window(NULL, 1, 0), PL_ERR_INVALID);
    assert_int_equal(pl_listener_set_pairing_window(f->l, PL_PAIRING_WINDOW_MAX_S + 1, 0), PL_ERR_INVALID);
    assert_int_equal(pl_listener_set_pairing_window(f->l, 1, 2), PL_ERR_INVALID);
}

/* The window ends by itself (PL_PAIRING_CLOSED, PL_ERR_TIMEOUT); the code
 * then opens nothing. (A 1 s window: the test waits for it to end.) */
static void test_listener_window_ends(void **state)
{
    lfix *f = *state;
    assert_int_equal(pl_listener_set_pairing_window(f->l, 1, PL_PAIRING_KEEP_OPEN), PL_OK);
    int64_t opened = mono_ms();
    assert_int_equal(pl_listener_set_pairing(f->l, NULL, 0, 0), PL_OK);
    char code[PL_CODE_MAX + 1];
    assert_non_null(pl_listener_code(f->l));
    strcpy(code, pl_listener_code(f->l));
    run_until(f, &f->closed, 10000);
    assert_true(mono_ms() - opened >= 1000);
    assert_int_equal(f->closed_status, PL_ERR_TIMEOUT);
    assert_null(pl_listener_code(f->l));
    peer *p = reach(f, code, -1);
    run_until(f, &p->closed, 10000);
    assert_int_equal(p->status, PL_ERR_NOT_PAIRED);
    done_with(p);
}

/* A peer that sends Hello and PairStart, then nothing: its attempt ends
 * after PL_PAIRING_ATTEMPT_MS (not the 10 s of a whole handshake), counts
 * in the scope, but does not replace the code - even with max_failures 1 -
 * and the peer with the code then pairs. */
static void test_listener_silent_holder(void **state)
{
    lfix *f = *state;
    assert_int_equal(pl_listener_set_pairing(f->l, NULL, 0, 1), PL_OK);
    char code[PL_CODE_MAX + 1], wrong[PL_CODE_MAX + 1];
    strcpy(code, pl_listener_code(f->l));
    strcpy(wrong, code);
    wrong[0] = wrong[0] == '9' ? '0' : (char)(wrong[0] + 1);
    int64_t t0 = mono_ms();
    peer *h = reach(f, wrong, 2); /* Hello, PairStart */
    run_until(f, &h->ends[1].closed, 20000); /* the listener gave up on it */
    int64_t held = mono_ms() - t0;
    assert_true(held >= PL_PAIRING_ATTEMPT_MS);
    assert_true(held < 9000); /* well before the handshake's 10 s */
    run_until(f, &f->failed, 10000);
    assert_int_equal(f->new_codes, 0);
    assert_string_equal(pl_listener_code(f->l), code);
    assert_int_equal(scope_state(f->srv_ks).gen_failures, 1); /* it counts */
    done_with(h);
    fake_now += PL_PAIRING_RETRY_MS; /* the pause after it */
    peer *p = reach(f, code, -1);
    run_until(f, &p->open, 10000);
    done_with(p);
    run_until(f, &f->closed, 10000);
    assert_int_equal(f->closed_status, PL_OK);
    assert_int_equal(f->new_codes, 0);
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
        cmocka_unit_test_setup_teardown(test_generated_budget_across_rotations, setup_clock, teardown_clock),
        cmocka_unit_test_setup_teardown(test_silent_attempts_keep_the_code, setup_clock, teardown_clock),
        cmocka_unit_test_setup_teardown(test_stored_times_bounded, setup_clock, teardown_clock),
    };
    int failed = cmocka_run_group_tests_name("pairing policy (fake clock)", fake, NULL, NULL);
    const struct CMUnitTest procs[] = {
        cmocka_unit_test_setup_teardown(test_fails_closed, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_two_processes_one_counter, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_two_processes_one_attempt, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_budget_survives_restart, setup_dir, teardown_dir),
    };
    failed += cmocka_run_group_tests_name("pairing policy (processes)", procs, NULL, NULL);
    const struct CMUnitTest listener[] = {
        cmocka_unit_test_setup_teardown(test_listener_closes_after_first_success, lsetup, lteardown),
        cmocka_unit_test_setup_teardown(test_listener_window_ends, lsetup, lteardown),
        cmocka_unit_test_setup_teardown(test_listener_silent_holder, lsetup, lteardown),
    };
    failed += cmocka_run_group_tests_name("a listener's pairing window", listener, NULL, NULL);
    return failed;
}
