/* SPDX-License-Identifier: ISC */
/* The responder's pairing policy object (see pairing.h, core/policy.h and
 * docs/PROTOCOL.md, "Attempt limits"). */
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

static pl_pairing_rule rule_of(const pl_pairing *p)
{
    pl_pairing_rule r = {p->fixed, p->max_failures};
    return r;
}

static int open_fn(pl_attempts *a, void *arg)
{
    (void)arg;
    pl_pairing_open_budget(a);
    return 1;
}

int pl__pairing_open(pl_pairing *p)
{
    p->spent = 0;
    return p->fixed ? PL_OK : pl__keystore_update_attempts(p->ks, PL_PAIRING_SCOPE, open_fn, NULL);
}

typedef struct change {
    pl_pairing *p;
    int64_t now; /* ms */
    int result;  /* begin: its answer; end: the attempt's outcome */
    int spent;
} change;

static int begin_fn(pl_attempts *a, void *arg)
{
    change *ch = arg;
    int changed = 0;
    ch->result = pl_pairing_attempt_begin(a, ch->now, rule_of(ch->p), ch->p->attempt, &ch->spent, &changed);
    return changed;
}

int pl__pairing_begin(pl_pairing *p, const char **code)
{
    if (p->attempt)
        return PL_ERR_BUSY;
    do
        randombytes_buf(&p->attempt, sizeof p->attempt);
    while (!p->attempt);
    change ch = {p, pl__pairing_clock_ms(), PL_ERR_LOCKED, 0};
    int rc = pl__keystore_update_attempts(p->ks, PL_PAIRING_SCOPE, begin_fn, &ch);
    if (rc != PL_OK || ch.result != PL_OK) {
        p->attempt = 0;
        if (rc == PL_OK && ch.spent)
            p->spent = 1;
        return rc == PL_OK ? ch.result : PL_ERR_LOCKED; /* unreadable or unwritable state fails closed */
    }
    *code = p->code;
    return PL_OK;
}

static int end_fn(pl_attempts *a, void *arg)
{
    change *ch = arg;
    ch->spent = pl_pairing_attempt_end(a, ch->now, rule_of(ch->p), ch->p->attempt, ch->result);
    return 1;
}

void pl__pairing_end(pl_pairing *p, int result, int answered)
{
    if (!p->attempt)
        return;
    change ch = {p, pl__pairing_clock_ms(), result, 0};
    /* If this fails, the scope stays busy until PL_PAIRING_ATTEMPT_MS
     * has passed, and the failure stays counted. */
    (void)pl__keystore_update_attempts(p->ks, PL_PAIRING_SCOPE, end_fn, &ch);
    p->attempt = 0;
    if (p->fixed)
        return;
    if (ch.spent)
        p->spent = 1;
    if (result == PL_OK) {
        p->failures = 0;
    } else if (answered && ++p->failures >= p->max_failures && !p->spent) {
        /* A generated code is replaced; the scope's state is untouched,
         * so a fixed code in the same scope keeps its count and lock, and
         * the budget runs on across replacements. */
        pl__code_generate(p->code, p->digits);
        p->failures = 0;
        p->code_changed = 1;
    }
}
