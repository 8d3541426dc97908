/* SPDX-License-Identifier: ISC */
/*
 * pl_poll on Grand Central Dispatch (peerlink/apple.h): watches are
 * DISPATCH_SOURCE_TYPE_READ / _WRITE sources, timers are
 * DISPATCH_SOURCE_TYPE_TIMER sources, all targeting one serial queue,
 * so callbacks run one at a time on it. Plain C with blocks, manual
 * retain/release (see nw.h).
 *
 * The rules of pl_poll hold: any function may be called from inside any
 * callback, including freeing the watch or timer whose callback runs
 * (dispatch_source_cancel stops further handler invocations; the
 * object's memory goes in the cancel handler, after the last one);
 * the caller may close a watched fd right after watch_free (dispatch
 * forbids closing a source's descriptor before its cancel handler has
 * run, so the sources watch a dup of it, closed in that handler);
 * a timer of 0 ms fires on a later turn of the queue, never inside
 * timeout_new or timeout_update.
 */
#include "backends/apple/nw.h"

#include <fcntl.h>
#include <unistd.h>

struct pl_apple_poll {
    pl_poll api;
    dispatch_queue_t q;
};

struct pl_watch {
    pl_apple_poll *p;
    int fd;    /* the caller's, reported to the callback */
    int dupfd; /* what the sources watch; closed by the last cancel handler */
    unsigned events;
    dispatch_source_t rd, wr; /* resumed while the event is wanted */
    int rd_on, wr_on;
    int dead;
    pl_watch_cb cb;
    void *userdata;
    int pending_cancels; /* sources whose cancel handler has not run yet */
};

struct pl_timeout {
    pl_apple_poll *p;
    dispatch_source_t t;
    int armed; /* the source is resumed */
    int dead;
    pl_timeout_cb cb;
    void *userdata;
};

static void src_set(dispatch_source_t s, int *on, int want)
{
    if (want && !*on)
        dispatch_resume(s);
    else if (!want && *on)
        dispatch_suspend(s);
    *on = want;
}

static void watch_fire(pl_watch *w, unsigned ev)
{
    if (!w->dead && (w->events & ev))
        w->cb(w, w->fd, ev, w->userdata);
}

static void watch_gone(pl_watch *w)
{
    if (--w->pending_cancels == 0) {
        close(w->dupfd);
        free(w);
    }
}

static dispatch_source_t watch_source(pl_watch *w, dispatch_source_type_t type, unsigned ev)
{
    dispatch_source_t s = PL_DISPATCH_TAKE(dispatch_source_create(type, (uintptr_t)w->dupfd, 0, w->p->q));
    if (!s)
        return NULL;
    dispatch_source_set_event_handler(s, ^{
        watch_fire(w, ev);
    });
    dispatch_source_set_cancel_handler(s, ^{
        watch_gone(w);
    });
    return s;
}

static pl_watch *gw_new(const pl_poll *api, int fd, unsigned events, pl_watch_cb cb, void *userdata)
{
    pl_watch *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->p = api->userdata;
    w->fd = fd;
    w->dupfd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    w->cb = cb;
    w->userdata = userdata;
    if (w->dupfd < 0) {
        free(w);
        return NULL;
    }
    w->rd = watch_source(w, DISPATCH_SOURCE_TYPE_READ, PL_WATCH_IN);
    w->wr = watch_source(w, DISPATCH_SOURCE_TYPE_WRITE, PL_WATCH_OUT);
    if (!w->rd || !w->wr) {
        /* Never resumed, so never cancelled: release directly (a suspended source may be released after resume only). */
        if (w->rd) {
            dispatch_resume(w->rd);
            dispatch_source_cancel(w->rd);
            w->pending_cancels++;
            PL_DISPATCH_RELEASE(w->rd);
        }
        if (w->wr) {
            dispatch_resume(w->wr);
            dispatch_source_cancel(w->wr);
            w->pending_cancels++;
            PL_DISPATCH_RELEASE(w->wr);
        }
        if (!w->pending_cancels) {
            close(w->dupfd);
            free(w);
        } else {
            w->dead = 1;
        }
        return NULL;
    }
    w->pending_cancels = 2;
    w->events = events;
    src_set(w->rd, &w->rd_on, (events & PL_WATCH_IN) != 0);
    src_set(w->wr, &w->wr_on, (events & PL_WATCH_OUT) != 0);
    return w;
}

static void gw_update(pl_watch *w, unsigned events)
{
    w->events = events;
    src_set(w->rd, &w->rd_on, (events & PL_WATCH_IN) != 0);
    src_set(w->wr, &w->wr_on, (events & PL_WATCH_OUT) != 0);
}

static void gw_free(pl_watch *w)
{
    w->dead = 1;
    /* A suspended source must be resumed before it can be cancelled and released. */
    src_set(w->rd, &w->rd_on, 1);
    src_set(w->wr, &w->wr_on, 1);
    dispatch_source_cancel(w->rd);
    dispatch_source_cancel(w->wr);
    PL_DISPATCH_RELEASE(w->rd);
    PL_DISPATCH_RELEASE(w->wr);
    /* w is freed by the last cancel handler, on the queue, after any handler in flight. */
}

static void timer_arm(pl_timeout *t, int ms)
{
    if (ms < 0) {
        if (t->armed)
            dispatch_suspend(t->t);
        t->armed = 0;
        return;
    }
    dispatch_source_set_timer(t->t, dispatch_time(DISPATCH_TIME_NOW, (int64_t)ms * NSEC_PER_MSEC),
                              DISPATCH_TIME_FOREVER, NSEC_PER_MSEC);
    if (!t->armed)
        dispatch_resume(t->t);
    t->armed = 1;
}

static pl_timeout *gt_new(const pl_poll *api, int ms, pl_timeout_cb cb, void *userdata)
{
    pl_timeout *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->p = api->userdata;
    t->cb = cb;
    t->userdata = userdata;
    t->t = PL_DISPATCH_TAKE(dispatch_source_create(DISPATCH_SOURCE_TYPE_TIMER, 0, 0, t->p->q));
    if (!t->t) {
        free(t);
        return NULL;
    }
    dispatch_source_set_event_handler(t->t, ^{
        if (t->dead || !t->armed)
            return;
        /* One shot: disarm, then call (the callback may re-arm or free t). */
        dispatch_suspend(t->t);
        t->armed = 0;
        t->cb(t, t->userdata);
    });
    dispatch_source_set_cancel_handler(t->t, ^{
        free(t);
    });
    timer_arm(t, ms);
    return t;
}

static void gt_update(pl_timeout *t, int ms)
{
    timer_arm(t, ms);
}

static void gt_free(pl_timeout *t)
{
    t->dead = 1;
    if (!t->armed)
        dispatch_resume(t->t); /* cancel and release need a resumed source */
    t->armed = 1;
    dispatch_source_cancel(t->t);
    PL_DISPATCH_RELEASE(t->t);
}

int pl_apple_poll_new(pl_apple_poll **out)
{
    if (!out)
        return PL_ERR_INVALID;
    pl_apple_poll *p = calloc(1, sizeof *p);
    if (!p)
        return PL_ERR_NOMEM;
    p->q = PL_DISPATCH_TAKE(dispatch_queue_create("org.peerlink.loop", DISPATCH_QUEUE_SERIAL));
    if (!p->q) {
        free(p);
        return PL_ERR_NOMEM;
    }
    p->api.size = sizeof p->api;
    p->api.userdata = p;
    p->api.watch_new = gw_new;
    p->api.watch_update = gw_update;
    p->api.watch_free = gw_free;
    p->api.timeout_new = gt_new;
    p->api.timeout_update = gt_update;
    p->api.timeout_free = gt_free;
    *out = p;
    return PL_OK;
}

const pl_poll *pl_apple_poll_get(pl_apple_poll *p)
{
    return p ? &p->api : NULL;
}

void pl_apple_poll_async(pl_apple_poll *p, void (*fn)(void *ctx), void *ctx)
{
    if (p && fn)
        dispatch_async_f(p->q, ctx, fn);
}

void pl_apple_poll_free(pl_apple_poll *p)
{
    if (!p)
        return;
    /* Cancel handlers still queued keep the queue alive by their own references. */
    PL_DISPATCH_RELEASE(p->q);
    free(p);
}
