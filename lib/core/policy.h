/* SPDX-License-Identifier: ISC */
/*
 * The session's clocked policy, sans-I/O (docs/PROTOCOL.md sections 8.3,
 * 8.5, 8.8 and 8.11) - and, at the end of this file, the responder's
 * pairing policy (section 11.2): when to acknowledge, when to probe a silent link
 * and when to declare it dead, how long an interrupted session waits,
 * when the dialling side dials again, and which of two simultaneous
 * dials survives. The stream itself (sequence numbers, what is
 * unacknowledged, what is held) is the engine's (engine.h); this is
 * what a shell needs to drive it over time, over any kind of link.
 *
 * Driven like the built-in mDNS engine: the shell passes `now` (ms on a
 * monotonic clock of its choice) into every call, asks
 * pl_policy_deadline() when to call pl_policy_due() next, and does
 * what pl_policy_due() returns. No clock is read here, no timer is
 * owned, nothing is sent: the shell queues the Ack or Ping with the
 * engine, drops the link, dials or ends the session.
 */
#ifndef PL_CORE_POLICY_H
#define PL_CORE_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include "engine.h"

/* Acknowledgements: at once once this much was delivered since the last
 * Ack, else after ACK_DELAY (one Ack then covers a burst, and a reply
 * need not wait behind one). */
#define PL_POLICY_ACK_NOW_BYTES (32u * 1024u)
#define PL_POLICY_ACK_NOW_MESSAGES 16
#define PL_POLICY_ACK_DELAY_MS 5
/* Dialling again: the first attempt at once, then a back-off from
 * FIRST doubling up to MAX between attempts. */
#define PL_POLICY_DIAL_FIRST_MS 50
#define PL_POLICY_DIAL_MAX_MS 2000
/* Defaults of the reference implementation. */
#define PL_POLICY_DEFAULT_RESUME_MS 30000
#define PL_POLICY_DEFAULT_KEEPALIVE_MS 5000

/* What is due (a bit set). */
enum {
    PL_POLICY_ACK = 1,     /* queue an Ack (pl_engine_ack), then pl_policy_ack_sent() */
    PL_POLICY_PING = 2,    /* queue a Ping (pl_engine_ping) */
    PL_POLICY_DEAD = 4,    /* the link is silent: drop it (then pl_policy_interrupt()) */
    PL_POLICY_GIVE_UP = 8, /* interrupted too long: end the session (PL_ERR_TIMEOUT) */
    PL_POLICY_DIAL = 16    /* dialling side, interrupted: dial a new link now */
};

typedef struct pl_policy {
    /* policy */
    int initiator;        /* this side dials new links */
    int resume_ms;        /* how long the session may stay interrupted; 0: a broken link ends it */
    int keepalive_ms;     /* probe a silent link this often; 0: never */
    /* state (times in the shell's ms, -1: not set) */
    int open;             /* a link is open (its handshake completed) */
    int interrupted;      /* the link is gone and the session waits for a new one */
    int64_t lost_at;      /* interrupted: given up then */
    int64_t dial_at;      /* dialling side, interrupted: the next dial */
    unsigned backoff_ms;  /* the pause before the dial after the next; 0 again once a link carries data */
    int64_t alive_at;     /* open: the next keepalive tick */
    int rx_seen;          /* input arrived since the last tick */
    int ping_out;         /* a Ping is unanswered */
    int64_t ack_at;       /* a delayed Ack is due then */
    size_t unacked_in;    /* bytes delivered since our last Ack */
} pl_policy;

/* A session with the reference defaults for its role: resumable for 30 s,
 * keepalive every 5 s (each may be 0). */
void pl_policy_init(pl_policy *s, int initiator, int resume_ms, int keepalive_ms);

/* A link's handshake completed: probing starts. Returns 1 if this link
 * continues an interrupted session (the shell reports a resumption). */
int pl_policy_link_open(pl_policy *s, int64_t now);
/* The link broke (or was dropped) and the session goes on: interrupted
 * from now (the wait runs from the first break, not from this one), and
 * on the dialling side the next dial is scheduled, backing off. Returns
 * 1 the first time (the shell reports the interruption), else 0. */
int pl_policy_interrupt(pl_policy *s, int64_t now);
/* Dialling side, interrupted: dial at once (new addresses are known). */
void pl_policy_dial_now(pl_policy *s, int64_t now);

/* Input arrived on the open link. */
static inline void pl_policy_input(pl_policy *s) { s->rx_seen = 1; }
/* The link carries the session (a message or an Ack arrived): the next
 * break dials again at once. A delivered message also counts toward the
 * next Ack (bytes). */
void pl_policy_carried(pl_policy *s, size_t delivered_bytes);
/* After a batch of input: 1 if an Ack is due now (queue it, then
 * pl_policy_ack_sent()); 0 if none is due, or one is scheduled (see
 * pl_policy_deadline()). st is the engine's stream, ping_owed its flag. */
int pl_policy_ack_now(pl_policy *s, int64_t now, const pl_stream *st, int ping_owed);
/* An Ack was queued: nothing is owed any more. */
void pl_policy_ack_sent(pl_policy *s);
/* Change the keepalive period (0: off); takes effect at once on an open link. */
void pl_policy_set_keepalive(pl_policy *s, int64_t now, int keepalive_ms);

/* What is due at now (PL_POLICY_* bits), and the timers advanced past
 * it. reading_stopped: the shell reads nothing now (the application left
 * it holding its receive limit): the link is not judged, a Ping tells the
 * peer we are alive. PL_POLICY_GIVE_UP and PL_POLICY_DEAD come alone. */
unsigned pl_policy_due(pl_policy *s, int64_t now, int reading_stopped);
/* The earliest time something may be due, or -1 for none. */
int64_t pl_policy_deadline(const pl_policy *s);

/* A link failure the session may outlive (section 8.11): not the peer's
 * Abort, not a local failure (memory, state, argument). */
int pl_policy_resumable_error(int status);

/* Section 8.8: a new session from peer is about to open while we dial it:
 * 1 if our dial survives (our id is the smaller, byte-wise), else 0. */
int pl_policy_our_dial_wins(const uint8_t self_id[32], const uint8_t peer_id[32]);

/* ---------------------------------------------------------------- pairing attempts
 *
 * The responder's pairing policy (docs/PROTOCOL.md sections 8.11 and
 * 11.2), sans-I/O like the rest of this file: every decision about
 * pairing attempts is taken here, from the state and the `now` passed in.
 * The shells are lib/pairing.c (the state of a keystore scope, read and
 * written under the store's lock) and lib/listener.c (a listener's
 * window and its per-source pauses).
 *
 * Times in pl_attempts are Unix time (wall clock): the state is shared by
 * every process that opens the keystore, and survives restarts, and no
 * other clock is common to those. Each deadline in it is bounded on every
 * read by its own length: one further ahead than that (a clock set back,
 * a device without a real-time clock that boots in 1970) is brought back
 * to now + its length and written back. So a clock that jumps back waits
 * at most one full length; a clock that jumps forward ends waits early.
 * The budgets are counts, not times, so the odds of section 11.2 hold
 * whatever the clock does. The window and the per-source pauses are
 * in-process and use the shell's monotonic clock.
 */

/* Failed attempts at one code: a generated code is replaced (the
 * application's default; pl_listener_set_pairing() may change it), a
 * fixed code locks the scope. */
#define PL_DEFAULT_MAX_FAILURES 10
/* The pause after a failed attempt (attempts in it get PL_ERR_BUSY). For
 * generated codes it doubles with every BACKOFF_STEP failures counted
 * against the budget, up to BACKOFF_MAX: 1 s for the first 9, 2 s from
 * the 10th, ... 64 s from the 60th. */
#define PL_PAIRING_RETRY_MS 1000
#define PL_PAIRING_BACKOFF_STEP 10
#define PL_PAIRING_BACKOFF_MAX_MS 64000
/* Generated codes: failed attempts per opening of pairing, across code
 * replacements and across every listener, byte session and process of the
 * scope. Then generated codes are refused (PL_ERR_LOCKED) until the
 * application opens pairing again: an attacker's total chance per opening
 * is at most BUDGET / 10^digits (0.01 % for 6 digits). */
#define PL_PAIRING_BUDGET 100
/* An admitted attempt (the initiator's PairStart answered) holds the
 * scope's one-at-a-time slot until it ends, or this long at most; the
 * listener gives the handshake the same deadline from then. What is left
 * is one round trip and four scalar multiplications: 3 s covers a slow
 * radio link with room to spare, and bounds a silent holder. */
#define PL_PAIRING_ATTEMPT_MS 3000
/* A fixed code locks for LOCK_BASE << level seconds, at most LOCK_MAX. */
#define PL_PAIRING_LOCK_BASE_S 60
#define PL_PAIRING_LOCK_MAX_S 86400
/* A listener's pairing window (Matter caps commissioning windows at 900 s). */
#define PL_PAIRING_WINDOW_S 900
#define PL_PAIRING_WINDOW_MAX_S 86400
/* A listener's source whose admitted attempt died before the initiator's
 * key confirmation (a silent holder) may not begin another for
 * SOURCE_PAUSE, doubling with each such death up to SOURCE_PAUSE_MAX
 * (10 s ... 320 s); the listener remembers SOURCES sources. */
#define PL_PAIRING_SOURCE_PAUSE_MS 10000
#define PL_PAIRING_SOURCE_PAUSE_MAX_MS 320000
#define PL_PAIRING_SOURCES 16

/* The attempt state of a keystore scope (persisted: lib/keystore.c). */
typedef struct pl_attempts {
    uint32_t failures;     /* attempts against fixed codes that began and did not succeed */
    uint32_t lock_level;   /* how many times a fixed code was locked (the delay doubles each time) */
    int64_t locked_until;  /* Unix time in seconds; 0 if not locked */
    int64_t busy_until_ms; /* Unix time in ms: an attempt is in progress until then at the latest */
    uint64_t busy_token;   /* which attempt (random): only its end clears busy_until_ms */
    int64_t retry_at_ms;   /* Unix time in ms: no attempt begins before this (the pause after a failure) */
    uint32_t gen_failures; /* attempts against generated codes that began and did not succeed since
                              pairing was last opened with a generated code: the budget and the back-off */
} pl_attempts;

/* What an attempt is held to. */
typedef struct pl_pairing_rule {
    int fixed;             /* the application's code (else generated) */
    unsigned max_failures; /* fixed: failures before the lock */
} pl_pairing_rule;

/* Bring the deadlines of a within their lengths of now_ms (see above).
 * Returns 1 if it changed a (write it back). */
int pl_pairing_bound_times(pl_attempts *a, int64_t now_ms);
/* An attempt (token: random, nonzero) wants to begin at now_ms. PL_OK: it
 * is admitted and counted as failed (until pl_pairing_attempt_end(PL_OK)),
 * so attempts in flight cannot exceed a budget. PL_ERR_BUSY: another is in
 * progress, or the pause after a failure runs. PL_ERR_LOCKED: a fixed code
 * locked the scope, or (generated) *spent is set: the budget is used up.
 * Returns with *changed = 1 if a must be written back. */
int pl_pairing_attempt_begin(pl_attempts *a, int64_t now_ms, pl_pairing_rule rule, uint64_t token,
                             int *spent, int *changed);
/* The attempt token ended with result (PL_OK or why not). Returns 1 if
 * generated codes' budget is spent now. */
int pl_pairing_attempt_end(pl_attempts *a, int64_t now_ms, pl_pairing_rule rule, uint64_t token, int result);
/* Pairing is opened with a generated code: a fresh budget (and back-off). */
void pl_pairing_open_budget(pl_attempts *a);
/* The pause after a failed attempt at a generated code, n failures counted. */
int64_t pl_pairing_backoff_ms(uint32_t n);

/* A listener's pairing window, in the shell's monotonic ms. */
typedef struct pl_pairing_window {
    int64_t closes_at; /* -1: no time limit */
    int keep_open;     /* stays open after a successful pairing */
} pl_pairing_window;

void pl_pairing_window_open(pl_pairing_window *w, int64_t now, unsigned seconds, int keep_open);
/* 1 if the window is over at now. */
int pl_pairing_window_over(const pl_pairing_window *w, int64_t now);
/* An attempt ended with result; spent: generated codes' budget is spent.
 * 1 if pairing closes now, with *status PL_OK (a peer paired) or
 * PL_ERR_LOCKED (the budget); else 0. */
int pl_pairing_window_closes(const pl_pairing_window *w, int result, int spent, int *status);

/* Sources (family and address) of pairing attempts that died silently. */
typedef struct pl_pairing_sources {
    struct {
        int family;
        uint8_t addr[16];
        int64_t until;    /* no attempt from it begins before this; 0: unused slot */
        unsigned strikes; /* deaths in a row (the pause doubles) */
    } e[PL_PAIRING_SOURCES];
} pl_pairing_sources;

/* 1 if an attempt from the source may not begin at now. */
int pl_pairing_source_paused(const pl_pairing_sources *s, int family, const uint8_t addr[16], int64_t now);
/* An attempt from the source died before the initiator's key
 * confirmation: pause the source (the oldest entry makes room). */
void pl_pairing_source_died(pl_pairing_sources *s, int family, const uint8_t addr[16], int64_t now);

#endif
