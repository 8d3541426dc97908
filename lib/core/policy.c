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
