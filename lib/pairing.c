/* SPDX-License-Identifier: ISC */
/* The responder's pairing policy (see pairing.h and docs/PROTOCOL.md, "Attempt limits"). */
#include "pairing.h"

#include <sodium.h>
#include <time.h>

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t (*pl__pairing_clock_ms)(void) = wall_ms;

void pl__code_generate(char *buf, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        buf[i] = (char)('0' + randombytes_uniform(10));
    buf[n] = 0;
}

int pl__pairing_init(pl_pairing *p, pl_keystore *ks, const char *code, unsigned digits,
                     unsigned max_failures)
{
    if (!ks || (digits && (digits < 4 || digits > 12)))
        return PL_ERR_INVALID;
    if (code) {
        size_t n = strlen(code);
        if (n == 0 || n > PL_CODE_MAX)
            return PL_ERR_INVALID;
        for (size_t i = 0; i < n; i++)
            if (code[i] < 0x21 || code[i] > 0x7e)
                return PL_ERR_INVALID;
    }
    memset(p, 0, sizeof *p);
    p->ks = ks;
    p->digits = digits ? digits : PL_DEFAULT_CODE_DIGITS;
    p->max_failures = max_failures ? max_failures : PL_DEFAULT_MAX_FAILURES;
    p->fixed = code != NULL;
    if (code)
        memcpy(p->code, code, strlen(code) + 1);
    else
        pl__code_generate(p->code, p->digits);
    return PL_OK;
}

void pl__pairing_clear(pl_pairing *p)
{
    sodium_memzero(p, sizeof *p);
}

typedef struct change {
    pl_pairing *p;
    int64_t now; /* ms */
    int result;  /* begin: its answer; end: the attempt's outcome */
} change;

/* A fixed code's budget is spent: lock the scope, each time twice as long. */
static void lock_scope(pl_attempts *a, int64_t now_ms)
{
    unsigned level = a->lock_level < 20 ? a->lock_level : 20;
    int64_t delay = (int64_t)PL_PAIRING_LOCK_BASE_S << level;
    a->locked_until = now_ms / 1000 + (delay < PL_PAIRING_LOCK_MAX_S ? delay : PL_PAIRING_LOCK_MAX_S);
    a->lock_level++;
    a->failures = 0;
}

static int begin_fn(pl_attempts *a, void *arg)
{
    change *ch = arg;
    pl_pairing *p = ch->p;
    int64_t now = ch->now;
    /* A clock set back must not stretch a wait beyond its length. */
    if (a->busy_until_ms > now + PL_PAIRING_ATTEMPT_MS)
        a->busy_until_ms = 0;
    if (a->retry_at_ms > now + PL_PAIRING_RETRY_MS)
        a->retry_at_ms = 0;
    if (a->locked_until > now / 1000) {
        ch->result = PL_ERR_LOCKED;
        return 0;
    }
    if (a->busy_until_ms > now || a->retry_at_ms > now) {
        ch->result = PL_ERR_BUSY;
        return 0;
    }
    if (p->fixed) {
        /* Attempts are counted as they begin, so that none in flight
         * escapes the budget. */
        if (a->failures >= p->max_failures) {
            lock_scope(a, now);
            ch->result = PL_ERR_LOCKED;
            return 1;
        }
        a->failures++;
    }
    a->busy_until_ms = now + PL_PAIRING_ATTEMPT_MS;
    a->busy_token = p->attempt;
    ch->result = PL_OK;
    return 1;
}

int pl__pairing_begin(void *ctx, const char **code)
{
    pl_pairing *p = ctx;
    if (p->attempt)
        return PL_ERR_BUSY;
    do
        randombytes_buf(&p->attempt, sizeof p->attempt);
    while (!p->attempt);
    change ch = {p, pl__pairing_clock_ms(), PL_ERR_LOCKED};
    int rc = pl__keystore_update_attempts(p->ks, PL_PAIRING_SCOPE, begin_fn, &ch);
    if (rc != PL_OK || ch.result != PL_OK) {
        p->attempt = 0;
        return rc == PL_OK ? ch.result : PL_ERR_LOCKED; /* unreadable or unwritable state fails closed */
    }
    if (!p->fixed)
        p->failures++; /* counted as failed before anything is revealed */
    *code = p->code;
    return PL_OK;
}

static int end_fn(pl_attempts *a, void *arg)
{
    change *ch = arg;
    pl_pairing *p = ch->p;
    if (a->busy_token == p->attempt) {
        a->busy_until_ms = 0;
        a->busy_token = 0;
    }
    if (ch->result == PL_OK) {
        if (p->fixed) {
            a->failures = 0;
            a->lock_level = 0;
            a->locked_until = 0;
        }
        return 1;
    }
    a->retry_at_ms = ch->now + PL_PAIRING_RETRY_MS;
    if (p->fixed && a->failures >= p->max_failures)
        lock_scope(a, ch->now);
    return 1;
}

void pl__pairing_end(void *ctx, int result)
{
    pl_pairing *p = ctx;
    if (!p->attempt)
        return;
    change ch = {p, pl__pairing_clock_ms(), result};
    /* If this fails, the scope stays busy until PL_PAIRING_ATTEMPT_MS
     * has passed, and a fixed code's failure stays counted. */
    (void)pl__keystore_update_attempts(p->ks, PL_PAIRING_SCOPE, end_fn, &ch);
    p->attempt = 0;
    if (p->fixed)
        return;
    if (result == PL_OK) {
        p->failures = 0;
    } else if (p->failures >= p->max_failures) {
        /* A generated code is replaced; the scope's state is untouched,
         * so a fixed code in the same scope keeps its count and lock. */
        pl__code_generate(p->code, p->digits);
        p->failures = 0;
        p->code_changed = 1;
    }
}
