/* SPDX-License-Identifier: ISC */
/*
 * A retain/release ledger for debug builds: every object the Apple
 * backend receives retained (an NW_RETURNS_RETAINED result, a
 * dispatch_*_create, or its own nw_retain) is recorded when taken and
 * struck off when released, so that a double release aborts at the
 * line that made it and leaks can be listed. Plain C; tested on Linux.
 *
 * Enabled unless NDEBUG is defined (or with PL_NW_LEDGER=1 forced);
 * in release builds the macros in nwobj.h compile to the bare calls.
 */
#ifndef PL_APPLE_LEDGER_H
#define PL_APPLE_LEDGER_H

#include <stddef.h>
#include <stdio.h>

/* Record one reference to obj (NULL is ignored). Returns obj, so that it wraps an expression. */
void *pl__ledger_take(void *obj, const char *what, const char *file, int line);

/*
 * Strike one reference to obj off. Returns 0, or -1 if the ledger holds
 * none: a release without a matching take (double release, or a
 * borrowed object released). NULL returns 0.
 */
int pl__ledger_release(const void *obj, const char *file, int line);

/* References held, summed over all objects. */
size_t pl__ledger_outstanding(void);

/* References held for obj. */
size_t pl__ledger_count(const void *obj);

/* Print every held reference, with where it was taken, to f. Returns how many lines. */
size_t pl__ledger_report(FILE *f);

/* Forget everything (tests). */
void pl__ledger_reset(void);

/* Called on a bad release when set (tests); the default prints and aborts. */
void pl__ledger_set_fault_handler(void (*fn)(const void *obj, const char *file, int line));

#endif
