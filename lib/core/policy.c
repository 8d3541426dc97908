/* SPDX-License-Identifier: ISC */
/* The session's clocked policy, sans-I/O. See session.h. */
#include "policy.h"

#include <string.h>

#include <peerlink/common.h>

void pl_policy_init(pl_policy *s, int initiator, int resume_ms, int keepalive_ms)
{
    memset(s, 0, sizeof *s);
    s->initiator = initiator;
    s->resume_ms = resume_ms > 0 ? resume_ms : 0;
    s->keepalive_ms = keepalive_ms > 0 ? keepalive_ms : 0;
    s->lost_at = s->dial_at = s->alive_at = s->ack_at = -1;
}

/* What belongs to the link that just ended or began: probes, a pending Ack. */
static void link_reset(pl_policy *s)
{
    s->alive_at = -1;
    s->ack_at = -1;
    s->unacked_in = 0;
    s->rx_seen = 0;
    s->ping_out = 0;
}

int pl_policy_link_open(pl_policy *s, int64_t now)
{
    int resumed = s->interrupted;
    link_reset(s);
    s->open = 1;
    s->interrupted = 0;
    s->lost_at = s->dial_at = -1;
    s->rx_seen = 1; /* the handshake was input */
    if (s->keepalive_ms > 0)
        s->alive_at = now + s->keepalive_ms;
    return resumed;
}

int pl_policy_interrupt(pl_policy *s, int64_t now)
{
    link_reset(s);
    s->open = 0;
    if (s->initiator) {
        s->dial_at = now + s->backoff_ms;
        s->backoff_ms = !s->backoff_ms ? PL_POLICY_DIAL_FIRST_MS
                        : s->backoff_ms * 2 > PL_POLICY_DIAL_MAX_MS ? PL_POLICY_DIAL_MAX_MS
                                                                     : s->backoff_ms * 2;
    }
    if (s->interrupted)
        return 0;
    s->interrupted = 1;
    s->lost_at = now + s->resume_ms;
    return 1;
}

void pl_policy_dial_now(pl_policy *s, int64_t now)
{
    if (s->initiator && s->interrupted)
        s->dial_at = now;
}

void pl_policy_carried(pl_policy *s, size_t delivered_bytes)
{
    s->backoff_ms = 0;
    s->unacked_in += delivered_bytes;
}

int pl_policy_ack_now(pl_policy *s, int64_t now, const pl_stream *st, int ping_owed)
{
    uint64_t owed = pl_stream_delivered(st) - st->rx_acked;
    if (!owed && !ping_owed)
        return 0;
    int peer_eof_delivered = st->peer_eof && !st->held_eos;
    if (ping_owed || peer_eof_delivered || s->unacked_in >= PL_POLICY_ACK_NOW_BYTES ||
        owed >= PL_POLICY_ACK_NOW_MESSAGES)
        return 1;
    if (s->ack_at < 0) /* never pushed back: a steady trickle still gets its Acks */
        s->ack_at = now + PL_POLICY_ACK_DELAY_MS;
    return 0;
}

void pl_policy_ack_sent(pl_policy *s)
{
    s->ack_at = -1;
    s->unacked_in = 0;
}

void pl_policy_set_keepalive(pl_policy *s, int64_t now, int keepalive_ms)
{
    s->keepalive_ms = keepalive_ms > 0 ? keepalive_ms : 0;
    s->ping_out = 0;
    s->rx_seen = 1;
    s->alive_at = s->open && s->keepalive_ms ? now + s->keepalive_ms : -1;
}

unsigned pl_policy_due(pl_policy *s, int64_t now, int reading_stopped)
{
    unsigned due = 0;
    if (s->interrupted && s->lost_at >= 0 && now >= s->lost_at)
        return PL_POLICY_GIVE_UP;
    if (s->interrupted && s->dial_at >= 0 && now >= s->dial_at) {
        s->dial_at = -1;
        due |= PL_POLICY_DIAL;
    }
    if (s->ack_at >= 0 && now >= s->ack_at) {
        s->ack_at = -1;
        due |= PL_POLICY_ACK;
    }
    if (s->alive_at >= 0 && now >= s->alive_at) {
        /* Nothing arrived for a whole period: ask for an Ack; still nothing
         * a period later: the link is dead. While the shell reads nothing
         * it judges nothing, and Pings so that the peer, which gets no Acks
         * from us, still hears that we are alive. */
        s->alive_at = now + s->keepalive_ms;
        if (reading_stopped) {
            due |= PL_POLICY_PING;
            s->ping_out = 0;
        } else if (s->rx_seen) {
            s->ping_out = 0;
        } else if (s->ping_out) {
            return PL_POLICY_DEAD;
        } else {
            due |= PL_POLICY_PING;
            s->ping_out = 1;
        }
        s->rx_seen = 0;
    }
    return due;
}

static int64_t earliest(int64_t a, int64_t b)
{
    return a < 0 ? b : b < 0 ? a : a < b ? a : b;
}

int64_t pl_policy_deadline(const pl_policy *s)
{
    int64_t d = earliest(s->ack_at, s->alive_at);
    if (s->interrupted)
        d = earliest(d, earliest(s->lost_at, s->dial_at));
    return d;
}

int pl_policy_resumable_error(int status)
{
    return status != PL_ERR_ABORTED && status != PL_ERR_NOMEM && status != PL_ERR_STATE &&
           status != PL_ERR_INVALID;
}

int pl_policy_our_dial_wins(const uint8_t self_id[32], const uint8_t peer_id[32])
{
    return memcmp(self_id, peer_id, 32) < 0;
}

/* ---------------------------------------------------------------- pairing attempts */

static int64_t lock_length_s(uint32_t level)
{
    int64_t delay = (int64_t)PL_PAIRING_LOCK_BASE_S << (level < 20 ? level : 20);
    return delay < PL_PAIRING_LOCK_MAX_S ? delay : PL_PAIRING_LOCK_MAX_S;
}

int64_t pl_pairing_backoff_ms(uint32_t n)
{
    uint32_t level = n / PL_PAIRING_BACKOFF_STEP;
    int64_t pause = (int64_t)PL_PAIRING_RETRY_MS << (level < 20 ? level : 20);
    return pause < PL_PAIRING_BACKOFF_MAX_MS ? pause : PL_PAIRING_BACKOFF_MAX_MS;
}

/* Bring *t (0: not set) back to at most limit; 1 if it changed. */
static int bound(int64_t *t, int64_t limit)
{
    if (!*t || *t <= limit)
        return 0;
    *t = limit;
    return 1;
}

int pl_pairing_bound_times(pl_attempts *a, int64_t now_ms)
{
    /* The longest each could justly be: the lock last set (level - 1),
     * one attempt, the longer of the two pauses the state allows. */
    int64_t pause = pl_pairing_backoff_ms(a->gen_failures);
    if (pause < PL_PAIRING_RETRY_MS)
        pause = PL_PAIRING_RETRY_MS;
    int changed = 0;
    changed |= bound(&a->locked_until, now_ms / 1000 + lock_length_s(a->lock_level ? a->lock_level - 1 : 0));
    changed |= bound(&a->busy_until_ms, now_ms + PL_PAIRING_ATTEMPT_MS);
    changed |= bound(&a->retry_at_ms, now_ms + pause);
    return changed;
}

/* Is the time t (0: not set, even before 1970) still to come at now? */
static int pending(int64_t t, int64_t now)
{
    return t && t > now;
}

/* A fixed code's budget is spent: lock the scope, each time twice as long. */
static void lock_scope(pl_attempts *a, int64_t now_ms)
{
    a->locked_until = now_ms / 1000 + lock_length_s(a->lock_level);
    a->lock_level++;
    a->failures = 0;
}

int pl_pairing_attempt_begin(pl_attempts *a, int64_t now_ms, pl_pairing_rule rule, uint64_t token,
                             int *spent, int *changed)
{
    *spent = 0;
    *changed = pl_pairing_bound_times(a, now_ms);
    if (pending(a->locked_until, now_ms / 1000))
        return PL_ERR_LOCKED;
    if (!rule.fixed && a->gen_failures >= PL_PAIRING_BUDGET) {
        *spent = 1;
        return PL_ERR_LOCKED;
    }
    if (pending(a->busy_until_ms, now_ms) || pending(a->retry_at_ms, now_ms))
        return PL_ERR_BUSY;
    /* Attempts are counted as they begin, so that none in flight escapes
     * a budget. */
    if (rule.fixed) {
        if (a->failures >= rule.max_failures) {
            lock_scope(a, now_ms);
            *changed = 1;
            return PL_ERR_LOCKED;
        }
        a->failures++;
    } else {
        a->gen_failures++;
    }
    a->busy_until_ms = now_ms + PL_PAIRING_ATTEMPT_MS;
    a->busy_token = token;
    *changed = 1;
    return PL_OK;
}

int pl_pairing_attempt_end(pl_attempts *a, int64_t now_ms, pl_pairing_rule rule, uint64_t token, int result)
{
    if (a->busy_token == token) {
        a->busy_until_ms = 0;
        a->busy_token = 0;
    }
    if (result == PL_OK) {
        if (rule.fixed) {
            a->failures = 0;
            a->lock_level = 0;
            a->locked_until = 0;
        } else if (a->gen_failures) {
            a->gen_failures--; /* counted when it began; the budget is for failures */
        }
        return 0;
    }
    if (rule.fixed) {
        a->retry_at_ms = now_ms + PL_PAIRING_RETRY_MS;
        if (a->failures >= rule.max_failures)
            lock_scope(a, now_ms);
        return 0;
    }
    a->retry_at_ms = now_ms + pl_pairing_backoff_ms(a->gen_failures);
    return a->gen_failures >= PL_PAIRING_BUDGET;
}

void pl_pairing_open_budget(pl_attempts *a)
{
    a->gen_failures = 0;
}

void pl_pairing_window_open(pl_pairing_window *w, int64_t now, unsigned seconds, int keep_open)
{
    w->closes_at = seconds ? now + (int64_t)seconds * 1000 : -1;
    w->keep_open = keep_open;
}

int pl_pairing_window_over(const pl_pairing_window *w, int64_t now)
{
    return w->closes_at >= 0 && now >= w->closes_at;
}

int pl_pairing_window_closes(const pl_pairing_window *w, int result, int spent, int *status)
{
    if (result == PL_OK && !w->keep_open) {
        *status = PL_OK;
        return 1;
    }
    if (result != PL_OK && spent) {
        *status = PL_ERR_LOCKED;
        return 1;
    }
    return 0;
}

static int source_index(const pl_pairing_sources *s, int family, const uint8_t addr[16])
{
    for (int i = 0; i < PL_PAIRING_SOURCES; i++)
        if (s->e[i].until && s->e[i].family == family && memcmp(s->e[i].addr, addr, 16) == 0)
            return i;
    return -1;
}

int pl_pairing_source_paused(const pl_pairing_sources *s, int family, const uint8_t addr[16], int64_t now)
{
    int i = source_index(s, family, addr);
    return i >= 0 && now < s->e[i].until;
}

void pl_pairing_source_died(pl_pairing_sources *s, int family, const uint8_t addr[16], int64_t now)
{
    int i = source_index(s, family, addr);
    if (i >= 0 && now >= s->e[i].until + PL_PAIRING_SOURCE_PAUSE_MAX_MS)
        s->e[i].strikes = 0; /* quiet for a long pause: a fresh start */
    if (i < 0) {
        i = 0;
        for (int j = 1; j < PL_PAIRING_SOURCES; j++)
            if (s->e[j].until < s->e[i].until)
                i = j;
        s->e[i].family = family;
        memcpy(s->e[i].addr, addr, 16);
        s->e[i].strikes = 0;
    }
    unsigned k = s->e[i].strikes < 5 ? s->e[i].strikes : 5;
    int64_t pause = (int64_t)PL_PAIRING_SOURCE_PAUSE_MS << k;
    s->e[i].until = now + (pause < PL_PAIRING_SOURCE_PAUSE_MAX_MS ? pause : PL_PAIRING_SOURCE_PAUSE_MAX_MS);
    if (s->e[i].until == 0)
        s->e[i].until = 1; /* 0 marks a free slot */
    s->e[i].strikes++;
}
