/* SPDX-License-Identifier: ISC */
/*
 * peerlink — event-loop integration.
 *
 * peerlink never owns a thread and never blocks. Everything it does
 * happens inside callbacks that the application's event loop invokes.
 * An application plugs its loop in through a pl_poll vtable (modelled
 * on Avahi's AvahiPoll), or uses the built-in loop pl_loop, which can
 * itself be driven from another loop through one file descriptor
 * (pl_loop_get_fd + pl_loop_next_timeout + pl_loop_process, in the
 * manner of DNSServiceRefSockFD + DNSServiceProcessResult).
 *
 * Threading: a pl_poll, and every peerlink object created with it,
 * must be used from one thread at a time: the thread that runs the
 * loop. peerlink calls back only from inside that loop's dispatch.
 * Other threads hand work to the built-in loop with pl_loop_post(),
 * and stop it with pl_loop_quit().
 */
#ifndef PEERLINK_POLL_H
#define PEERLINK_POLL_H

#include <peerlink/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/** I/O conditions, as a bit mask. */
typedef enum pl_watch_event {
    PL_WATCH_IN = 1,  /**< readable */
    PL_WATCH_OUT = 2, /**< writable */
    PL_WATCH_ERR = 4, /**< error condition (reported whether asked for or not) */
    PL_WATCH_HUP = 8  /**< hang-up (reported whether asked for or not) */
} pl_watch_event;

typedef struct pl_watch pl_watch;     /**< an I/O watch, owned by the poll implementation */
typedef struct pl_timeout pl_timeout; /**< a timer, owned by the poll implementation */
typedef struct pl_poll pl_poll;

/** Called when fd has one of the requested events; events holds what happened. */
typedef void (*pl_watch_cb)(pl_watch *w, int fd, unsigned events, void *userdata);
/** Called once when a timeout expires. It stays allocated (and disarmed) until freed. */
typedef void (*pl_timeout_cb)(pl_timeout *t, void *userdata);

/**
 * The event-loop vtable. An implementation must allow every function
 * to be called from inside any watch or timeout callback, including
 * freeing the watch or timeout whose callback is running.
 *
 * Timeouts are relative: ms milliseconds from the moment of the call;
 * ms < 0 disarms the timer; ms == 0 fires on the next loop iteration
 * (never from inside timeout_new or timeout_update).
 */
struct pl_poll {
    /** sizeof(pl_poll), set by whoever fills the table: the library reads only the members it
     *  covers, so that later versions can append members; a size below the first version's
     *  is refused with PL_ERR_INVALID. */
    size_t size;
    void *userdata; /**< for the implementation */
    /** Watch fd for events (a mask of pl_watch_event). NULL on failure. */
    pl_watch *(*watch_new)(const pl_poll *api, int fd, unsigned events, pl_watch_cb cb,
                           void *userdata);
    /** Change the events watched. */
    void (*watch_update)(pl_watch *w, unsigned events);
    /** Stop watching and release w. Does not close the fd. */
    void (*watch_free)(pl_watch *w);
    /** A timer firing after ms milliseconds (ms < 0: created disarmed). NULL on failure. */
    pl_timeout *(*timeout_new)(const pl_poll *api, int ms, pl_timeout_cb cb, void *userdata);
    /** Re-arm (ms >= 0) or disarm (ms < 0) a timer. */
    void (*timeout_update)(pl_timeout *t, int ms);
    /** Release a timer, armed or not. */
    void (*timeout_free)(pl_timeout *t);
};

/* ------------------------------------------------------------------ */
/* The built-in loop                                                    */
/* ------------------------------------------------------------------ */

/**
 * A simple poll(2)-based event loop. Not thread-safe: one thread at a time, except
 * pl_loop_post(), pl_loop_wakeup() and pl_loop_quit(), which any thread may call.
 */
typedef struct pl_loop pl_loop;

/**
 * Create a loop. On success *out receives it and PL_OK is returned; on
 * failure *out is untouched and PL_ERR_INVALID, PL_ERR_NOMEM or PL_ERR_IO
 * (no descriptor for its wake-up: an eventfd, or a pipe) is returned.
 * The caller owns the loop and frees it with pl_loop_free().
 */
PL_EXPORT int pl_loop_new(pl_loop **out);

/**
 * Free a loop and every watch and timeout still registered with it.
 * Objects created on the loop's poll vtable must be freed first.
 * Functions posted with pl_loop_post() and not yet run are dropped, not
 * called (to run them, call pl_loop_process() before pl_loop_quit():
 * a quit loop runs nothing more). Every other thread
 * must have stopped calling pl_loop_post(), pl_loop_wakeup() and
 * pl_loop_quit() on it before: a call on a freed loop is undefined.
 * NULL is accepted. Must not be called from inside the loop's dispatch.
 */
PL_EXPORT void pl_loop_free(pl_loop *loop);

/** The vtable to hand to peerlink objects. Owned by the loop, valid until pl_loop_free(). */
PL_EXPORT const pl_poll *pl_loop_get_poll(pl_loop *loop);

/**
 * Wait up to timeout_ms (negative: no limit other than the next timer)
 * for I/O or timers, then dispatch every ready callback once. When a
 * timer is already due, timeout_ms is not 0 and the iteration before this
 * one polled, this one runs the due timers without looking at the
 * descriptors (no poll(2)): I/O waits at most that one iteration.
 * Returns the number of callbacks dispatched (>= 0), PL_ERR_STATE if
 * pl_loop_quit() was called, or PL_ERR_IO if poll(2) failed (errno set;
 * EINTR is not a failure and returns 0).
 */
PL_EXPORT int pl_loop_iterate(pl_loop *loop, int timeout_ms);

/**
 * Run until pl_loop_quit() is called. Returns PL_OK after a quit, or
 * PL_ERR_IO if poll(2) failed.
 */
PL_EXPORT int pl_loop_run(pl_loop *loop);

/**
 * Make pl_loop_run() return, and the next pl_loop_iterate() return PL_ERR_STATE (a wait in progress
 * ends at once). Callable from callbacks, from any thread, and from a signal handler
 * (async-signal-safe: an atomic store and a write(2)). NULL is ignored.
 */
PL_EXPORT void pl_loop_quit(pl_loop *loop);

/**
 * Run fn(arg) in the loop's thread, from inside a later pl_loop_iterate() (never inside this call),
 * the functions posted by one thread in the order they were posted, each exactly once. Any thread
 * may call it, the loop's own included; it does not block. Not async-signal-safe (it allocates):
 * from a signal handler use pl_loop_wakeup() or pl_loop_quit(). Each run counts as one dispatched
 * callback in pl_loop_iterate()'s result. Returns PL_OK, PL_ERR_INVALID (loop or fn NULL) or
 * PL_ERR_NOMEM (nothing posted). See pl_loop_free() for what happens to functions not yet run.
 */
PL_EXPORT int pl_loop_post(pl_loop *loop, void (*fn)(void *arg), void *arg);

/**
 * Make a wait in pl_loop_iterate() or pl_loop_run() (or on pl_loop_get_fd()) end soon, from any
 * thread or a signal handler (async-signal-safe: one write(2), errno preserved). The loop then
 * dispatches what is ready and, under pl_loop_run(), waits again: use it to make the loop's thread
 * look at state of the application's own. NULL is ignored.
 */
PL_EXPORT void pl_loop_wakeup(pl_loop *loop);

/**
 * One file descriptor that becomes readable whenever any watch of the
 * loop is ready, or a function was posted, or the loop was woken or told
 * to quit (Linux: an epoll descriptor). Together with
 * pl_loop_next_timeout() and pl_loop_process() it lets an application
 * run peerlink from its own loop. The descriptor is owned by the loop.
 * Returns the fd (>= 0), PL_ERR_UNSUPPORTED where the platform has no
 * such descriptor, or PL_ERR_IO.
 */
PL_EXPORT int pl_loop_get_fd(pl_loop *loop);

/**
 * Milliseconds until the earliest armed timer is due (0 if one is due
 * now), or -1 if no timer is armed.
 */
PL_EXPORT int pl_loop_next_timeout(pl_loop *loop);

/**
 * Dispatch whatever is ready now without waiting, the descriptors always
 * included. Equivalent to pl_loop_iterate(loop, 0).
 */
PL_EXPORT int pl_loop_process(pl_loop *loop);

#ifdef __cplusplus
}
#endif
#endif
