/* SPDX-License-Identifier: ISC */
/*
 * Private to the Network.framework sources (apple.c, transport.c):
 * the library's dispatch queue, retain/release discipline, and the
 * transport entry points the discovery backend uses.
 *
 * Memory: plain C, no ARC. In C, OS_OBJECT_USE_OBJC is 0, so nw_* and
 * dispatch_* objects are reference counted by hand. Every object that
 * comes back retained (NW_RETURNS_RETAINED, dispatch_*_create) is
 * taken through PL_NW_TAKE / PL_DISPATCH_TAKE and released with
 * PL_NW_RELEASE / PL_DISPATCH_RELEASE exactly once; an object kept
 * beyond the callback that lent it is retained with PL_NW_RETAIN.
 * In debug builds the ledger (ledger.h) checks the pairing at run time,
 * and scripts/apple-typecheck checks statically that every call of an
 * NW_RETURNS_RETAINED function is taken.
 *
 * Blocks: every block here is passed straight to Network.framework or
 * dispatch, which copy what they keep (Block_copy) and release it
 * when done; the library stores no block itself, so it needs no
 * Block_copy / Block_release of its own. Blocks capture only plain
 * pointers to reference-counted contexts, whose count accounts for the
 * handler: a handler's reference is given back with the object's final
 * "cancelled" state, the last callback Network.framework makes.
 */
#ifndef PL_APPLE_NW_H
#define PL_APPLE_NW_H

#include <Network/Network.h>
#include <dispatch/dispatch.h>

#include <peerlink/apple.h>

#include "backends/apple/chan.h"
#include "backends/apple/hop.h"
#include "backends/apple/ledger.h"
#include "backends/apple/logic.h"
#include "discovery_backend.h"

#if OS_OBJECT_USE_OBJC
#error "peerlink's Apple backend is plain C with manual retain/release: build it as C, not Objective-C"
#endif
#ifndef __BLOCKS__
#error "peerlink's Apple backend needs blocks: compile with -fblocks"
#endif

#if !defined(NDEBUG) || defined(PL_NW_LEDGER)
#define PL_NW_TAKE(expr) pl__ledger_take((void *)(expr), #expr, __FILE__, __LINE__)
#define PL_NW_RETAIN(obj) pl__ledger_take(nw_retain(obj), "nw_retain(" #obj ")", __FILE__, __LINE__)
#define PL_NW_RELEASE(obj)                                                                              \
    do {                                                                                                \
        if (obj) {                                                                                      \
            pl__ledger_release((obj), __FILE__, __LINE__);                                              \
            nw_release(obj);                                                                            \
        }                                                                                               \
    } while (0)
#define PL_DISPATCH_TAKE(expr) pl__ledger_take((void *)(expr), #expr, __FILE__, __LINE__)
#define PL_DISPATCH_RELEASE(obj)                                                                        \
    do {                                                                                                \
        if (obj) {                                                                                      \
            pl__ledger_release((obj), __FILE__, __LINE__);                                              \
            dispatch_release(obj);                                                                      \
        }                                                                                               \
    } while (0)
#else
#define PL_NW_TAKE(expr) (expr)
#define PL_NW_RETAIN(obj) nw_retain(obj)
#define PL_NW_RELEASE(obj)                                                                              \
    do {                                                                                                \
        if (obj)                                                                                        \
            nw_release(obj);                                                                            \
    } while (0)
#define PL_DISPATCH_TAKE(expr) (expr)
#define PL_DISPATCH_RELEASE(obj)                                                                        \
    do {                                                                                                \
        if (obj)                                                                                        \
            dispatch_release(obj);                                                                      \
    } while (0)
#endif

/* The one serial queue every Network.framework object of the library reports on. Never released. */
dispatch_queue_t pl__nw_queue(void);

/* TCP parameters for sessions: no TLS (the session encrypts), no Nagle, peer-to-peer (AWDL) allowed. Retained. */
nw_parameters_t pl__nw_parameters(void);

/* A Network.framework error as a pl_error; notes a policy denial (pl_apple_local_network_denied). */
int pl__nw_error(nw_error_t err, pl_apple_for what);
/* The waiting state can only end in failure (local network access denied): 1, after noting it. */
int pl__nw_waiting_fatal(nw_error_t err);
/* Something got going: access is not denied (any more). */
void pl__nw_not_denied(void);

/*
 * An inbound connection from a listener (retained by the caller, whose
 * reference this takes): make it a pending session of acceptor a, or
 * refuse it (a NULL). Loop thread.
 */
void pl__nw_accept(const pl_poll *poll, pl_chan_acceptor *a, nw_connection_t conn);
/* Refuse an inbound connection (takes the caller's reference). Any thread. */
void pl__nw_refuse(nw_connection_t conn);

extern const pl_discovery_ops pl__apple_ops;

#endif
