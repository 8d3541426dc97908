/* The responder's pairing policy (see pairing.h and docs/PROTOCOL.md, "Attempt limits"). */
#include "pairing.h"

#include <sodium.h>
#include <time.h>

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

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

int pl__pairing_begin(void *ctx, const char **code)
{
    pl_pairing *p = ctx;
    if (p->busy || mono_ms() < p->retry_at_ms)
        return PL_ERR_BUSY;
    pl_attempts a;
    int rc = pl__keystore_get_attempts(p->ks, PL_PAIRING_SCOPE, &a);
    if (rc != PL_OK)
        return PL_ERR_LOCKED; /* an unreadable counter fails closed */
    if (a.locked_until > (int64_t)time(NULL))
        return PL_ERR_LOCKED;
    /* Counted as failed before anything is revealed; pair_end(PL_OK) undoes it. */
    a.failures++;
    a.locked_until = 0;
    rc = pl__keystore_put_attempts(p->ks, PL_PAIRING_SCOPE, &a);
    if (rc != PL_OK)
        return PL_ERR_LOCKED;
    p->busy = 1;
    *code = p->code;
    return PL_OK;
}

void pl__pairing_end(void *ctx, int result)
{
    pl_pairing *p = ctx;
    p->busy = 0;
    pl_attempts a;
    if (pl__keystore_get_attempts(p->ks, PL_PAIRING_SCOPE, &a) != PL_OK)
        return; /* stays locked: begin fails closed */
    if (result == PL_OK) {
        memset(&a, 0, sizeof a);
    } else {
        p->retry_at_ms = mono_ms() + PL_PAIRING_RETRY_MS;
        if (a.failures >= p->max_failures) {
            a.failures = 0;
            if (p->fixed) {
                unsigned level = a.lock_level < 20 ? a.lock_level : 20;
                int64_t delay = (int64_t)PL_PAIRING_LOCK_BASE_S << level;
                a.locked_until = (int64_t)time(NULL) + (delay < PL_PAIRING_LOCK_MAX_S ? delay : PL_PAIRING_LOCK_MAX_S);
                a.lock_level++;
            } else {
                pl__code_generate(p->code, p->digits);
                p->code_changed = 1;
            }
        }
    }
    pl__keystore_put_attempts(p->ks, PL_PAIRING_SCOPE, &a);
}
