/* SPDX-License-Identifier: ISC */
/*
 * The session's clocked policy, sans-I/O (docs/PROTOCOL.md sections 8.3,
 * 8.5, 8.8 and 8.11): when to acknowledge, when to probe a silent link
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

#endif
