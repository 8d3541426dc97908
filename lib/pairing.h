/*
 * The responder's pairing policy: which code is accepted, how failed
 * attempts are counted (persisted in the keystore, so that a restart
 * does not reset them), when a generated code is replaced and when a
 * fixed code is locked. Used by listeners and by responder sessions
 * over application byte channels. Not installed.
 */
#ifndef PL_PAIRING_H
#define PL_PAIRING_H

#include "keystore_internal.h"

#define PL_CODE_MAX 32
#define PL_DEFAULT_CODE_DIGITS 6
#define PL_DEFAULT_MAX_FAILURES 10
/* After a failed attempt, the next one is refused (PL_ERR_BUSY) for this long. */
#define PL_PAIRING_RETRY_MS 1000
/* A fixed code locks for LOCK_BASE << lock_level seconds, at most LOCK_MAX. */
#define PL_PAIRING_LOCK_BASE_S 60
#define PL_PAIRING_LOCK_MAX_S 86400
/* The keystore scope of the attempt counter: one per keystore (device). */
#define PL_PAIRING_SCOPE "pairing"

typedef struct pl_pairing {
    pl_keystore *ks;
    char code[PL_CODE_MAX + 1];
    int fixed;             /* the application's code; else generated */
    unsigned digits;       /* length of generated codes */
    unsigned max_failures;
    int busy;              /* an attempt is in progress */
    int64_t retry_at_ms;   /* monotonic: no attempt before this */
    int code_changed;      /* a new code was generated and not yet reported */
} pl_pairing;

/* code: the fixed code (1..32 printable ASCII), or NULL to generate codes
 * of digits digits (4..12; 0: 6). max_failures 0: 10. PL_OK or PL_ERR_INVALID. */
int pl__pairing_init(pl_pairing *p, pl_keystore *ks, const char *code, unsigned digits,
                     unsigned max_failures);
void pl__pairing_clear(pl_pairing *p);
/* Engine hooks (ctx = the pl_pairing). */
int pl__pairing_begin(void *ctx, const char **code);
void pl__pairing_end(void *ctx, int result);
/* A fresh numeric code of n digits into buf (n + 1 bytes), uniformly random. */
void pl__code_generate(char *buf, unsigned n);

#endif
