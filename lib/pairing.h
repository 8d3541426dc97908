/* SPDX-License-Identifier: ISC */
/*
 * The responder's pairing policy: which code is accepted, how attempts
 * are admitted and counted, when a generated code is replaced and when
 * a fixed code is locked. Used by listeners and by responder sessions
 * over application byte channels. Not installed.
 *
 * Everything that limits attempts lives in one keystore item per scope
 * (PL_PAIRING_SCOPE: one per keystore, that is per device), changed
 * under the store's lock: one attempt in progress at a time, the pause
 * after a failure, the failure count of fixed codes and their lock. So
 * the limits hold whichever listener or byte session an attempt
 * reaches, however many policy objects there are, and across processes
 * sharing one keystore directory. A policy object keeps only its code
 * and, for a generated code, the failures against that code.
 */
#ifndef PL_PAIRING_H
#define PL_PAIRING_H

#include "keystore_internal.h"

#define PL_CODE_MAX 32
#define PL_DEFAULT_CODE_DIGITS 6
#define PL_DEFAULT_MAX_FAILURES 10
/* After a failed attempt, the next one is refused (PL_ERR_BUSY) for this long. */
#define PL_PAIRING_RETRY_MS 1000
/* An attempt holds the scope until it ends, or this long at most (a
 * process that died in an attempt does not block pairing for good). */
#define PL_PAIRING_ATTEMPT_MS 10000
/* A fixed code locks for LOCK_BASE << lock_level seconds, at most LOCK_MAX. */
#define PL_PAIRING_LOCK_BASE_S 60
#define PL_PAIRING_LOCK_MAX_S 86400
/* The keystore scope of the attempt state: one per keystore (device). */
#define PL_PAIRING_SCOPE "pairing"

typedef struct pl_pairing {
    pl_keystore *ks;
    char code[PL_CODE_MAX + 1];
    int fixed;             /* the application's code; else generated */
    unsigned digits;       /* length of generated codes */
    unsigned max_failures;
    unsigned failures;     /* generated code: attempts against this code that did not succeed */
    uint64_t attempt;      /* the token of this object's attempt in progress; 0: none */
    int code_changed;      /* a new code was generated and not yet reported */
} pl_pairing;

/* code: the fixed code (1..32 printable ASCII), or NULL to generate codes
 * of digits digits (4..12; 0: 6). max_failures 0: 10. PL_OK or PL_ERR_INVALID. */
int pl__pairing_init(pl_pairing *p, pl_keystore *ks, const char *code, unsigned digits,
                     unsigned max_failures);
void pl__pairing_clear(pl_pairing *p);
/* Engine hooks (ctx = the pl_pairing). begin: PL_OK with *code, or
 * PL_ERR_BUSY (an attempt is in progress in the scope, or the pause
 * after a failure), PL_ERR_LOCKED (a fixed code's budget is spent, or
 * the attempt state cannot be read or written: it fails closed). The
 * attempt counts as failed from begin until end(PL_OK). */
int pl__pairing_begin(void *ctx, const char **code);
void pl__pairing_end(void *ctx, int result);
/* 1 while this object's attempt is in progress. */
static inline int pl__pairing_busy(const pl_pairing *p) { return p->attempt != 0; }
/* A fresh numeric code of n digits into buf (n + 1 bytes), uniformly random. */
void pl__code_generate(char *buf, unsigned n);
/* The clock of the attempt state: Unix time in ms (shared by processes).
 * Tests may replace it. */
extern int64_t (*pl__pairing_clock_ms)(void);

#endif
