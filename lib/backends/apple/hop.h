/* SPDX-License-Identifier: ISC */
/*
 * The hop from Network.framework's dispatch queue to the application's
 * pl_poll loop, and the reference counts that keep a context alive
 * while a queue may still call back into it. Plain C11 + POSIX threads,
 * no Apple API: it builds and is unit-tested on Linux.
 *
 * A pl_hop is a FIFO of events guarded by a mutex plus a pipe whose
 * read end the loop watches. Any thread may post; the loop thread
 * drains the queue and runs each event's run() in the order the events
 * were posted (per posting thread; a dispatch serial queue is one such
 * order). Once the hop is closed (on the loop thread), queued events
 * and events posted later are dropped: their drop() runs instead of
 * run(), on the thread that closes or posts, so drop() may only release
 * memory and reference counts (never touch loop-owned objects).
 */
#ifndef PL_APPLE_HOP_H
#define PL_APPLE_HOP_H

#include <stdatomic.h>
#include <stddef.h>

#include <peerlink/poll.h>

/* ---------------------------------------------------------------- reference counts */

/* An atomic reference count. The object is destroyed by whoever drops the last reference. */
typedef struct pl_ref {
    atomic_int n;
} pl_ref;

void pl__ref_init(pl_ref *r); /* one reference, the creator's */
void pl__ref_get(pl_ref *r);
/* Returns 1 if this was the last reference: the caller destroys the object. */
int pl__ref_put(pl_ref *r);
int pl__ref_count(pl_ref *r); /* for tests and assertions */

/* ---------------------------------------------------------------- events */

typedef struct pl_hop_event pl_hop_event;
struct pl_hop_event {
    pl_hop_event *next;
    /* On the loop thread. Owns ev: frees it (or reuses it). */
    void (*run)(pl_hop_event *ev);
    /* The hop is closed: release what ev holds and free it. Any thread. */
    void (*drop)(pl_hop_event *ev);
};

typedef struct pl_hop pl_hop;

/*
 * A new hop watched through poll (loop thread). The caller holds one
 * reference; pl__hop_close() gives it up. PL_OK, PL_ERR_IO (pipe),
 * PL_ERR_NOMEM.
 */
int pl__hop_new(const pl_poll *poll, pl_hop **out);

/*
 * Queue ev (any thread). Returns PL_OK, or PL_ERR_STATE after the hop
 * was closed, in which case ev->drop(ev) has already run.
 */
int pl__hop_post(pl_hop *h, pl_hop_event *ev);

/*
 * Run what is queued now (loop thread); the watch calls this. Events
 * posted while it runs wait for the next call. Returns how many ran.
 * Safe when an event closes the hop: the rest are dropped.
 */
size_t pl__hop_drain(pl_hop *h);

/*
 * Stop (loop thread): free the watch, drop queued events, refuse new
 * ones, and give up the creator's reference. Producers that still hold
 * references may keep posting; their events are dropped at once.
 */
void pl__hop_close(pl_hop *h);

void pl__hop_retain(pl_hop *h);  /* any thread */
void pl__hop_release(pl_hop *h); /* any thread; the last one frees */
int pl__hop_closed(pl_hop *h);   /* any thread */
size_t pl__hop_pending(pl_hop *h);

#endif
