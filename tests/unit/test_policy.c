/* SPDX-License-Identifier: ISC */
/*
 * Unit tests of the session's clocked policy (lib/core/policy.c) with
 * a fake clock and no sockets: Ack timing, keepalive and a dead link,
 * the interruption window, the dialling back-off, the simultaneous-dial
 * rule, which failures a session outlives; and the responder's pairing
 * policy: a listener's window, generated codes' budget and back-off (the
 * numbers docs/PROTOCOL.md section 11.2 states), bounded persisted times,
 * the pauses of sources whose attempts die silently.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include <peerlink/common.h>

#include "policy.h"

static pl_stream stream(uint64_t rx_next, uint64_t rx_acked)
{
    pl_stream st;
    memset(&st, 0, sizeof st);
    st.rx_next = rx_next;
    st.rx_acked = rx_acked;
    return st;
}

static void test_ack_delay(void **state)
{
    (void)state;
    pl_policy s;
    pl_policy_init(&s, 1, 30000, 0);
    int64_t t = 1000;
    pl_policy_link_open(&s, t);
    pl_stream st = stream(0, 0);
    assert_int_equal(pl_policy_ack_now(&s, t, &st, 0), 0); /* nothing owed */
    assert_true(pl_policy_deadline(&s) < 0);

    /* One small message: the Ack waits 5 ms, and is not pushed back by more. */
    pl_policy_carried(&s, 100);
    st = stream(1, 0);
    assert_int_equal(pl_policy_ack_now(&s, t, &st, 0), 0);
    assert_true(pl_policy_deadline(&s) == t + PL_POLICY_ACK_DELAY_MS);
    pl_policy_carried(&s, 100);
    st = stream(2, 0);
    assert_int_equal(pl_policy_ack_now(&s, t + 3, &st, 0), 0);
    assert_true(pl_policy_deadline(&s) == t + PL_POLICY_ACK_DELAY_MS);
    assert_int_equal(pl_policy_due(&s, t + PL_POLICY_ACK_DELAY_MS - 1, 0), 0);
    assert_int_equal(pl_policy_due(&s, t + PL_POLICY_ACK_DELAY_MS, 0), PL_POLICY_ACK);
    pl_policy_ack_sent(&s);
    assert_true(pl_policy_deadline(&s) < 0);

    /* At once: 16 messages, 32 KiB, a Ping, the peer's end-of-stream. */
    st = stream(2 + PL_POLICY_ACK_NOW_MESSAGES, 2);
    assert_int_equal(pl_policy_ack_now(&s, t, &st, 0), 1);
    pl_policy_ack_sent(&s);
    pl_policy_carried(&s, PL_POLICY_ACK_NOW_BYTES);
    st = stream(3, 2);
    assert_int_equal(pl_policy_ack_now(&s, t, &st, 0), 1);
    pl_policy_ack_sent(&s);
    st = stream(3, 3);
    assert_int_equal(pl_policy_ack_now(&s, t, &st, 1), 1); /* a Ping asks even with nothing new */
    pl_policy_ack_sent(&s);
    st = stream(4, 3);
    st.peer_eof = 1;
    assert_int_equal(pl_policy_ack_now(&s, t, &st, 0), 1);
    /* ... but not for an end-of-stream the application has not taken (held). */
    pl_policy_ack_sent(&s);
    st = stream(5, 3);
    st.peer_eof = 1;
    st.held_eos = 1;
    st.held_n = 2; /* delivered: 3, nothing owed */
    assert_int_equal(pl_policy_ack_now(&s, t, &st, 0), 0);
    assert_true(pl_policy_deadline(&s) < 0);
}

static void test_keepalive_and_dead_link(void **state)
{
    (void)state;
    pl_policy s;
    pl_policy_init(&s, 0, 30000, 5000);
    int64_t t = 0;
    assert_true(pl_policy_deadline(&s) < 0); /* no link yet: nothing to probe */
    pl_policy_link_open(&s, t);
    assert_true(pl_policy_deadline(&s) == 5000);
    /* Input in each period: never a Ping. */
    for (int i = 1; i <= 3; i++) {
        pl_policy_input(&s);
        assert_int_equal(pl_policy_due(&s, i * 5000, 0), 0);
    }
    /* A silent period: a Ping; another: the link is dead. */
    assert_int_equal(pl_policy_due(&s, 20000, 0), PL_POLICY_PING);
    assert_true(pl_policy_deadline(&s) == 25000);
    assert_int_equal(pl_policy_due(&s, 25000, 0), PL_POLICY_DEAD);
    /* The same, answered in time. */
    pl_policy_link_open(&s, 30000);
    assert_int_equal(pl_policy_due(&s, 35000, 0), 0); /* the handshake counted as input */
    assert_int_equal(pl_policy_due(&s, 40000, 0), PL_POLICY_PING);
    pl_policy_input(&s);
    assert_int_equal(pl_policy_due(&s, 45000, 0), 0);
    /* Not reading (the application left it full): Ping every period, never dead. */
    for (int i = 1; i <= 4; i++)
        assert_int_equal(pl_policy_due(&s, 45000 + i * 5000, 1), PL_POLICY_PING);
    /* Off, and on again from now. */
    pl_policy_set_keepalive(&s, 70000, 0);
    assert_true(pl_policy_deadline(&s) < 0);
    pl_policy_set_keepalive(&s, 70000, 100);
    assert_true(pl_policy_deadline(&s) == 70100);
}

static void test_interruption_window(void **state)
{
    (void)state;
    pl_policy s;
    pl_policy_init(&s, 0, 30000, 5000);
    pl_policy_link_open(&s, 0);
    assert_int_equal(pl_policy_interrupt(&s, 1000), 1); /* the first break is reported */
    assert_int_equal(pl_policy_interrupt(&s, 2000), 0); /* a failed new link is not */
    /* The accepting side waits, dials nothing, probes nothing. */
    assert_true(pl_policy_deadline(&s) == 31000);
    assert_int_equal(pl_policy_due(&s, 30999, 0), 0);
    assert_int_equal(pl_policy_due(&s, 31000, 0), PL_POLICY_GIVE_UP);
    /* Resumed in time: the window closes, a later break opens a new one. */
    pl_policy_init(&s, 0, 30000, 0);
    pl_policy_link_open(&s, 0);
    pl_policy_interrupt(&s, 1000);
    assert_int_equal(pl_policy_link_open(&s, 20000), 1); /* a resumption */
    assert_true(pl_policy_deadline(&s) < 0);
    assert_int_equal(pl_policy_interrupt(&s, 50000), 1);
    assert_true(pl_policy_deadline(&s) == 80000);
    assert_int_equal(pl_policy_link_open(&s, 50001), 1);
    assert_int_equal(pl_policy_link_open(&s, 50002), 0); /* not interrupted: a plain open */
}

static void test_dial_back_off(void **state)
{
    (void)state;
    pl_policy s;
    pl_policy_init(&s, 1, 30000, 0);
    pl_policy_link_open(&s, 0);
    int64_t t = 1000;
    unsigned want[] = {0, 50, 100, 200, 400, 800, 1600, 2000, 2000};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        pl_policy_interrupt(&s, t);
        assert_true(pl_policy_deadline(&s) == t + want[i]);
        if (want[i])
            assert_int_equal(pl_policy_due(&s, t + want[i] - 1, 0), 0);
        t += want[i];
        assert_int_equal(pl_policy_due(&s, t, 0), PL_POLICY_DIAL);
        assert_int_equal(pl_policy_due(&s, t, 0), 0); /* once */
    }
    /* A link that carries data resets the back-off: the next break dials at once. */
    pl_policy_link_open(&s, t);
    pl_policy_carried(&s, 0);
    pl_policy_interrupt(&s, t + 10);
    assert_true(pl_policy_deadline(&s) == t + 10);
    /* New addresses: dial now. */
    pl_policy_interrupt(&s, t + 20);
    assert_true(pl_policy_deadline(&s) == t + 20 + 50);
    pl_policy_dial_now(&s, t + 30);
    assert_int_equal(pl_policy_due(&s, t + 30, 0), PL_POLICY_DIAL);
    /* The window still counts from the first break. */
    assert_true(pl_policy_deadline(&s) == t + 10 + 30000);
}

static void test_simultaneous_dial_rule(void **state)
{
    (void)state;
    uint8_t a[32], b[32];
    memset(a, 0x11, sizeof a);
    memset(b, 0x11, sizeof b);
    b[31] = 0x12;
    assert_int_equal(pl_policy_our_dial_wins(a, b), 1);
    assert_int_equal(pl_policy_our_dial_wins(b, a), 0);
    /* unsigned bytes: 0x80 is larger than 0x7f */
    a[0] = 0x80;
    b[0] = 0x7f;
    assert_int_equal(pl_policy_our_dial_wins(a, b), 0);
    assert_int_equal(pl_policy_our_dial_wins(b, a), 1);
}

static void test_resumable_errors(void **state)
{
    (void)state;
    int outlived[] = {PL_ERR_CLOSED, PL_ERR_IO, PL_ERR_TIMEOUT, PL_ERR_AUTH, PL_ERR_MALFORMED,
                      PL_ERR_PROTOCOL, PL_ERR_TOO_LARGE, PL_ERR_CONNECT};
    int fatal[] = {PL_ERR_ABORTED, PL_ERR_NOMEM, PL_ERR_STATE, PL_ERR_INVALID};
    for (size_t i = 0; i < sizeof outlived / sizeof outlived[0]; i++)
        assert_int_equal(pl_policy_resumable_error(outlived[i]), 1);
    for (size_t i = 0; i < sizeof fatal / sizeof fatal[0]; i++)
        assert_int_equal(pl_policy_resumable_error(fatal[i]), 0);
}

/* ---------------------------------------------------------------- pairing */

/* The window, on an injected clock: over after its seconds, never with 0;
 * closed by the first success unless kept open, and by the budget. */
static void test_pairing_window(void **state)
{
    (void)state;
    pl_pairing_window w;
    int st = -1;
    int64_t t = 5000;
    pl_pairing_window_open(&w, t, PL_PAIRING_WINDOW_S, 0);
    assert_false(pl_pairing_window_over(&w, t));
    assert_false(pl_pairing_window_over(&w, t + PL_PAIRING_WINDOW_S * 1000 - 1));
    assert_true(pl_pairing_window_over(&w, t + PL_PAIRING_WINDOW_S * 1000));
    assert_int_equal(pl_pairing_window_closes(&w, PL_ERR_WRONG_CODE, 0, &st), 0);
    assert_int_equal(pl_pairing_window_closes(&w, PL_ERR_TIMEOUT, 0, &st), 0);
    assert_int_equal(pl_pairing_window_closes(&w, PL_OK, 0, &st), 1);
    assert_int_equal(st, PL_OK);
    assert_int_equal(pl_pairing_window_closes(&w, PL_ERR_WRONG_CODE, 1, &st), 1);
    assert_int_equal(st, PL_ERR_LOCKED);

    pl_pairing_window_open(&w, t, 0, 1); /* no time limit, kept open */
    assert_false(pl_pairing_window_over(&w, t + 10LL * 365 * 86400 * 1000));
    assert_int_equal(pl_pairing_window_closes(&w, PL_OK, 0, &st), 0);
    assert_int_equal(pl_pairing_window_closes(&w, PL_ERR_CLOSED, 1, &st), 1);
    assert_int_equal(st, PL_ERR_LOCKED);
}

/* The numbers of docs/PROTOCOL.md section 11.2: an attacker that tries
 * whenever it may, each attempt failing at once, against generated codes:
 * the pause doubles every 10 failures (1 s ... 64 s), so at most 64
 * attempts begin in a 900 s window, and the 100th (the last) after
 * 3189 s; the 101st is refused for good. */
static void test_pairing_budget_numbers(void **state)
{
    (void)state;
    assert_int_equal(pl_pairing_backoff_ms(1), 1000);
    assert_int_equal(pl_pairing_backoff_ms(9), 1000);
    assert_int_equal(pl_pairing_backoff_ms(10), 2000);
    assert_int_equal(pl_pairing_backoff_ms(59), 32000);
    assert_int_equal(pl_pairing_backoff_ms(60), PL_PAIRING_BACKOFF_MAX_MS);
    assert_int_equal(pl_pairing_backoff_ms(1000000), PL_PAIRING_BACKOFF_MAX_MS);
    pl_attempts a;
    memset(&a, 0, sizeof a);
    pl_pairing_rule gen = {0, 10};
    int64_t start = 1700000000000LL, now = start, last = 0;
    int in_window = 0, admitted = 0, spent = 0, changed = 0;
    for (int i = 0; i < 1000; i++) {
        if (a.retry_at_ms > now)
            now = a.retry_at_ms;
        int rc = pl_pairing_attempt_begin(&a, now, gen, 7, &spent, &changed);
        if (rc != PL_OK) {
            assert_int_equal(rc, PL_ERR_LOCKED);
            assert_true(spent);
            break;
        }
        admitted++;
        last = now - start;
        if (now - start < PL_PAIRING_WINDOW_S * 1000)
            in_window++;
        pl_pairing_attempt_end(&a, now, gen, 7, PL_ERR_WRONG_CODE);
    }
    assert_int_equal(admitted, PL_PAIRING_BUDGET);
    assert_int_equal(in_window, 64);
    assert_int_equal(last, 3189000);
    pl_pairing_open_budget(&a);
    now = a.retry_at_ms;
    assert_int_equal(pl_pairing_attempt_begin(&a, now, gen, 8, &spent, &changed), PL_OK);
}

/* Persisted times are bounded by their own lengths, and the bound is
 * reported for writing back; unset times (0) stay unset, before 1970 too. */
static void test_pairing_bound_times(void **state)
{
    (void)state;
    pl_attempts a;
    memset(&a, 0, sizeof a);
    int64_t now = 1700000000000LL;
    assert_int_equal(pl_pairing_bound_times(&a, now), 0);
    assert_int_equal(pl_pairing_bound_times(&a, -5000), 0);
    a.lock_level = 3; /* the last lock was 60 << 2 = 240 s */
    a.locked_until = INT64_MAX;
    a.busy_until_ms = INT64_MAX;
    a.retry_at_ms = INT64_MAX;
    a.gen_failures = 35; /* pause 8 s */
    assert_int_equal(pl_pairing_bound_times(&a, now), 1);
    assert_true(a.locked_until == now / 1000 + 240);
    assert_true(a.busy_until_ms == now + PL_PAIRING_ATTEMPT_MS);
    assert_true(a.retry_at_ms == now + 8000);
    assert_int_equal(pl_pairing_bound_times(&a, now), 0);
    a.lock_level = 30;
    a.locked_until = INT64_MAX;
    assert_int_equal(pl_pairing_bound_times(&a, now), 1);
    assert_true(a.locked_until == now / 1000 + PL_PAIRING_LOCK_MAX_S);
}

/* A source whose attempts die silently waits 10 s, then 20 s, ... 320 s;
 * others do not; the table keeps the 16 most recent. */
static void test_pairing_sources(void **state)
{
    (void)state;
    pl_pairing_sources s;
    memset(&s, 0, sizeof s);
    uint8_t x[16] = {127, 0, 0, 1}, y[16] = {127, 0, 0, 2};
    int64_t t = 1000;
    assert_false(pl_pairing_source_paused(&s, 2, x, t));
    int64_t expect[] = {10000, 20000, 40000, 80000, 160000, 320000, 320000};
    for (size_t i = 0; i < sizeof expect / sizeof expect[0]; i++) {
        pl_pairing_source_died(&s, 2, x, t);
        assert_true(pl_pairing_source_paused(&s, 2, x, t + expect[i] - 1));
        assert_false(pl_pairing_source_paused(&s, 2, x, t + expect[i]));
        assert_false(pl_pairing_source_paused(&s, 2, y, t));
        assert_false(pl_pairing_source_paused(&s, 10, x, t)); /* same bytes, IPv6 */
        t += expect[i];
    }
    /* Quiet for the longest pause: a fresh start. */
    t += PL_PAIRING_SOURCE_PAUSE_MAX_MS;
    pl_pairing_source_died(&s, 2, x, t);
    assert_false(pl_pairing_source_paused(&s, 2, x, t + PL_PAIRING_SOURCE_PAUSE_MS));
    /* 16 other sources push it out. */
    for (int i = 0; i < PL_PAIRING_SOURCES; i++) {
        y[15] = (uint8_t)i;
        pl_pairing_source_died(&s, 10, y, t + 1 + i);
    }
    assert_false(pl_pairing_source_paused(&s, 2, x, t + 2));
    assert_true(pl_pairing_source_paused(&s, 10, y, t + 2));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ack_delay),
        cmocka_unit_test(test_keepalive_and_dead_link),
        cmocka_unit_test(test_interruption_window),
        cmocka_unit_test(test_dial_back_off),
        cmocka_unit_test(test_simultaneous_dial_rule),
        cmocka_unit_test(test_resumable_errors),
        cmocka_unit_test(test_pairing_window),
        cmocka_unit_test(test_pairing_budget_numbers),
        cmocka_unit_test(test_pairing_bound_times),
        cmocka_unit_test(test_pairing_sources),
    };
    return cmocka_run_group_tests_name("session policy", tests, NULL, NULL);
}
