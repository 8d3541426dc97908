/* SPDX-License-Identifier: ISC */
/*
 * The responder's pairing policy object: which code is accepted, and the
 * shell that applies the attempt policy of core/policy.h (where every
 * number and decision is) to the attempt state of the keystore scope.
 * Used by listeners and by responder sessions over application byte
 * channels. Not installed.
 *
 * Everything that limits attempts lives in one keystore item per scope
 * (PL_PAIRING_SCOPE: one per keystore, that is per device), changed
 * under the store's lock: one attempt in progress at a time, the pause
 * after a failure and its back-off, the budget of generated codes, the
 * failure count of fixed codes and their lock. So the limits hold
 * whichever listener or byte session an attempt reaches, however many
 * policy objects there are, and across processes sharing one keystore
 * directory. A policy object keeps only its code and, for a generated
 * code, the failures against that code (when it is replaced).
 */
#ifndef PL_PAIRING_H
#define PL_PAIRING_H

#include "keystore_internal.h"

#define PL_CODE_MAX 32
#define PL_DEFAULT_CODE_DIGITS 6
/* The keystore scope of the attempt state: one per keystore (device). */
#define PL_PAIRING_SCOPE "pairing"

typedef struct pl_pairing {
    pl_keystore *ks;
    char code[PL_CODE_MAX + 1];
    int fixed;             /* the application's code; else generated */
    unsigned digits;       /* length of generated codes */
    unsigned max_failures;
    unsigned failures;     /* generated code: answered attempts against this code that failed */
    uint64_t attempt;      /* the token of this object's attempt in progress; 0: none */
    int code_changed;      /* a new code was generated and not yet reported */
    int spent;             /* generated: the scope's budget is spent; set by begin and end */
} pl_pairing;

/* code: the fixed code (1..32 printable ASCII), or NULL to generate codes
 * of digits digits (4..12; 0: 6). max_failures 0: 10. Touches no
 * keystore. PL_OK or PL_ERR_INVALID. */
int pl__pairing_init(pl_pairing *p, pl_keystore *ks, const char *code, unsigned digits,
                     unsigned max_failures);
/* Pairing opens with p (the application's act): for a generated code the
 * scope's budget starts afresh. PL_OK, or the keystore's error
 * (PL_ERR_CORRUPT, PL_ERR_IO: pairing must not open; it fails closed). */
int pl__pairing_open(pl_pairing *p);
void pl__pairing_clear(pl_pairing *p);
/* An attempt begins: PL_OK with *code (valid until end), or PL_ERR_BUSY
 * (an attempt is in progress in the scope, or the pause after a failure),
 * PL_ERR_LOCKED (a fixed code's lock; the generated codes' budget is spent,
 * then p->spent is set; or the attempt state cannot be read or written:
 * it fails closed). The attempt counts as failed from begin until end(PL_OK). */
int pl__pairing_begin(pl_pairing *p, const char **code);
/* The attempt ended with result. answered: the initiator sent its key
 * confirmation (right or wrong); only such failures count toward
 * replacing a generated code, while every failure counts in the scope
 * (the responder's sealed reply let the initiator test its guess either
 * way). Sets p->code_changed when the code was replaced, p->spent when the
 * budget is spent. */
void pl__pairing_end(pl_pairing *p, int result, int answered);
/* 1 while this object's attempt is in progress. */
static inline int pl__pairing_busy(const pl_pairing *p) { return p->attempt != 0; }
/* A fresh numeric code of n digits into buf (n + 1 bytes), uniformly random. */
void pl__code_generate(char *buf, unsigned n);
/* The clock of the attempt state: Unix time in ms (shared by processes).
 * Tests may replace it. */
extern int64_t (*pl__pairing_clock_ms)(void);

#endif
