/* SPDX-License-Identifier: ISC */
/* The retain/release ledger. See ledger.h. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "backends/apple/ledger.h"

#include <pthread.h>
#include <stdlib.h>

typedef struct entry {
    const void *obj;
    size_t count;
    const char *what, *file; /* of the first take still held; static strings */
    int line;
} entry;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static entry *entries;
static size_t n_entries, cap_entries;
static void (*fault)(const void *, const char *, int);

static entry *find(const void *obj)
{
    for (size_t i = 0; i < n_entries; i++)
        if (entries[i].obj == obj)
            return &entries[i];
    return NULL;
}

void *pl__ledger_take(void *obj, const char *what, const char *file, int line)
{
    if (!obj)
        return obj;
    pthread_mutex_lock(&mu);
    entry *e = find(obj);
    if (!e) {
        if (n_entries == cap_entries) {
            size_t cap = cap_entries ? cap_entries * 2 : 64;
            entry *ne = realloc(entries, cap * sizeof *ne);
            if (!ne) {
                /* Out of memory in a debug aid: stop counting rather than fail the caller. */
                pthread_mutex_unlock(&mu);
                return obj;
            }
            entries = ne;
            cap_entries = cap;
        }
        e = &entries[n_entries++];
        e->obj = obj;
        e->count = 0;
        e->what = what;
        e->file = file;
        e->line = line;
    }
    e->count++;
    pthread_mutex_unlock(&mu);
    return obj;
}

int pl__ledger_release(const void *obj, const char *file, int line)
{
    if (!obj)
        return 0;
    pthread_mutex_lock(&mu);
    entry *e = find(obj);
    int ok = e != NULL;
    if (e && --e->count == 0)
        *e = entries[--n_entries];
    void (*fn)(const void *, const char *, int) = fault;
    pthread_mutex_unlock(&mu);
    if (ok)
        return 0;
    if (fn) {
        fn(obj, file, line);
    } else {
        fprintf(stderr, "peerlink: %s:%d: release of %p, which is not held (double release?)\n", file, line,
                obj);
        abort();
    }
    return -1;
}

size_t pl__ledger_outstanding(void)
{
    pthread_mutex_lock(&mu);
    size_t n = 0;
    for (size_t i = 0; i < n_entries; i++)
        n += entries[i].count;
    pthread_mutex_unlock(&mu);
    return n;
}

size_t pl__ledger_count(const void *obj)
{
    pthread_mutex_lock(&mu);
    entry *e = find(obj);
    size_t n = e ? e->count : 0;
    pthread_mutex_unlock(&mu);
    return n;
}

size_t pl__ledger_report(FILE *f)
{
    pthread_mutex_lock(&mu);
    for (size_t i = 0; i < n_entries; i++)
        fprintf(f, "peerlink: held %zu x %p (%s) taken at %s:%d\n", entries[i].count, entries[i].obj,
                entries[i].what, entries[i].file, entries[i].line);
    size_t n = n_entries;
    pthread_mutex_unlock(&mu);
    return n;
}

void pl__ledger_reset(void)
{
    pthread_mutex_lock(&mu);
    free(entries);
    entries = NULL;
    n_entries = cap_entries = 0;
    pthread_mutex_unlock(&mu);
}

void pl__ledger_set_fault_handler(void (*fn)(const void *obj, const char *file, int line))
{
    pthread_mutex_lock(&mu);
    fault = fn;
    pthread_mutex_unlock(&mu);
}
