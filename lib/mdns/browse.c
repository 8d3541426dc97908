/* SPDX-License-Identifier: ISC */
/*
 * The built-in mDNS engine: browsing and resolving (RFC 6763), derived
 * from the cache. See engine.c.
 */
#include "mdns/engine_int.h"

/* ---------------------------------------------------------------- browsing */

static const centry *cache_newest(pl_mdns *m, int li, const pl_dns_name *name, uint32_t hname, uint16_t type,
                                  int64_t now)
{
    const centry *best = NULL;
    uint32_t hset = pl__mdns_cache_set_hash(li, type, hname);
    for (const centry *c = NULL; (c = pl__mdns_cache_next_in_set(m, c, li, type, name, hset, 0));) {
        if (c->expire <= now)
            continue;
        /* Live records before goodbyes, then the newest (last received). */
        if (!best || (best->ttl == 0 && c->ttl != 0) || ((best->ttl == 0) == (c->ttl == 0) && c->seq > best->seq))
            best = c;
    }
    return best;
}

void pl__mdns_send_resolve_query(pl_mdns *m, int li, minst *in, int64_t now)
{
    builder *b = malloc(sizeof *b);
    if (!b)
        return;
    pl__mdns_b_init(b, m, li, now, 0);
    pl_dns_question q = {.name = in->full, .type = PL_DNS_SRV, .qclass = PL_DNS_CLASS_IN};
    pl__mdns_b_question(b, &q);
    q.type = PL_DNS_TXT;
    pl__mdns_b_question(b, &q);
    if (in->has_target) {
        q.name = in->target;
        q.type = PL_DNS_A;
        pl__mdns_b_question(b, &q);
        q.type = PL_DNS_AAAA;
        pl__mdns_b_question(b, &q);
    }
    pl__mdns_b_flush(b);
    free(b);
}

/* The name a PTR target has as an instance of b, into label (64 bytes):
 * its first label; for a browse of the service types, the type the target
 * names ("_http._tcp" for "_http._tcp.local"). 0 if it is none of b's. */
static int instance_label(const browse *b, const pl_dns_name *target, char label[64])
{
    pl_dns_name parent, domain;
    pl_dns_name_parent(target, &parent);
    if (!b->types)
        return pl_dns_name_equal(&parent, &b->name) &&
               pl_dns_name_first_label(target, label, 64) == PL_OK && label[0];
    char service[64], proto[64];
    pl_dns_name_parent(&parent, &domain);
    if (!pl_dns_name_equal(&domain, &b->domain_name) ||
        pl_dns_name_first_label(target, service, sizeof service) != PL_OK ||
        pl_dns_name_first_label(&parent, proto, sizeof proto) != PL_OK || service[0] != '_' ||
        strchr(service, '.') || (strcasecmp(proto, "_tcp") != 0 && strcasecmp(proto, "_udp") != 0))
        return 0;
    return snprintf(label, 64, "%s.%s", service, proto) < 64;
}

/* PL_MDNS_EV_ALL_FOR_NOW, once (see ALL_FOR_NOW_WINDOW): when the window
 * after the first query is over, wait for the instances seen then that
 * have not resolved, at most ALL_FOR_NOW_RESOLVE ms. After the instances'
 * events of this update, so that their RESOLVED come first. */
static void all_for_now_update(pl_mdns *m, browse *b, int64_t now)
{
    if (b->afn == AFN_WINDOW && now >= b->afn_at) {
        for (size_t i = 0; i < b->n_insts; i++)
            b->insts[i].afn_wait = b->insts[i].sig == 0; /* no RESOLVED yet */
        b->afn = AFN_RESOLVING;
        b->afn_at = now + ALL_FOR_NOW_RESOLVE;
    }
    if (b->afn != AFN_RESOLVING)
        return;
    int waiting = 0;
    for (size_t i = 0; i < b->n_insts; i++)
        waiting |= b->insts[i].afn_wait && b->insts[i].sig == 0;
    if (waiting && now < b->afn_at)
        return;
    if (!pl__mdns_event_push(m, PL_MDNS_EV_ALL_FOR_NOW, b->id, NULL, NULL, NULL, 0))
        return; /* a full event queue: the next update pushes it */
    b->afn = AFN_DONE;
    b->afn_at = -1;
}

/* b's instances by (link, full name), for one update: indexes + 1 into
 * b->insts, open addressing (PL_MDNS_MAX_INSTANCES fill it at most half). */
#define INST_SLOTS (2 * PL_MDNS_MAX_INSTANCES)

static size_t inst_slot(int link, uint32_t hfull)
{
    return (hfull ^ (uint32_t)link * 0x9e3779b1u) % INST_SLOTS;
}

static void inst_map_add(uint16_t *map, const minst *in, size_t idx)
{
    size_t i = inst_slot(in->link, in->hfull);
    while (map[i])
        i = (i + 1) % INST_SLOTS;
    map[i] = (uint16_t)(idx + 1);
}

static minst *inst_map_find(uint16_t *map, browse *b, int link, const pl_dns_name *full, uint32_t hfull)
{
    for (size_t i = inst_slot(link, hfull); map[i]; i = (i + 1) % INST_SLOTS) {
        minst *in = &b->insts[map[i] - 1];
        if (in->link == link && in->hfull == hfull && pl_dns_name_equal(&in->full, full))
            return in;
    }
    return NULL;
}

/* A live PTR of b on link li (its entry, in the cache's key index): the instances seen. */
static void browse_ptr(pl_mdns *m, browse *b, uint16_t *map, const centry *c, int64_t now)
{
    if (c->expire <= now)
        return;
    pl_dns_name target;
    target.len = (uint8_t)c->rdlen;
    memcpy(target.wire, c->rdata, c->rdlen);
    uint32_t hfull = pl__mdns_name_hash(m, &target);
    if (inst_map_find(map, b, c->link, &target, hfull))
        return;
    char label[64];
    if (!instance_label(b, &target, label))
        return;
    if (b->n_insts >= PL_MDNS_MAX_INSTANCES) {
        b->untracked = 1;
        return;
    }
    if (b->n_insts == b->cap_insts) {
        size_t cap = b->cap_insts ? 2 * b->cap_insts : 8;
        minst *v = realloc(b->insts, cap * sizeof *v);
        if (!v)
            return;
        b->insts = v;
        b->cap_insts = cap;
    }
    minst *in = &b->insts[b->n_insts];
    memset(in, 0, sizeof *in);
    in->link = c->link;
    in->full = target;
    in->hfull = hfull;
    memcpy(in->name, label, sizeof label);
    in->next_query = now; /* resolve at once if the answer lacked something */
    if (!pl__mdns_event_push(m, PL_MDNS_EV_SEEN, b->id, &m->links[c->link], in->name, NULL, 0))
        return; /* not tracked: seen again on the next full update (retry_at) */
    inst_map_add(map, in, b->n_insts);
    b->n_insts++;
}

/* Re-derive b from the cache: every instance (all), or only those whose
 * records the response being taken changed (pl__mdns_cache_changed). The
 * work is that of the instances looked at, each found through the cache's
 * indexes, never a scan of the cache. */
static void browse_update_one(pl_mdns *m, browse *b, int all, int64_t now)
{
    uint16_t map[INST_SLOTS];
    int mapped = 0;
    if (all)
        b->untracked = 0; /* set again below if still so */
    uint32_t hb = b->hname;
    for (size_t li = 0; li < m->n_links; li++) {
        if (!all && !pl__mdns_cache_changed(m, (int)li, hb))
            continue; /* no PTR of b changed on this link */
        if (!mapped) {
            memset(map, 0, sizeof map);
            for (size_t i = 0; i < b->n_insts; i++)
                inst_map_add(map, &b->insts[i], i);
            mapped = 1;
        }
        uint32_t hset = pl__mdns_cache_set_hash((int)li, PL_DNS_PTR, hb);
        uint64_t after = all ? 0 : m->in_seq;
        const centry *c = NULL;
        while ((c = pl__mdns_cache_next_in_set(m, c, (int)li, PL_DNS_PTR, &b->name, hset, after)))
            browse_ptr(m, b, map, c, now);
    }
    for (size_t i = 0; i < b->n_insts;) {
        minst *in = &b->insts[i];
        if (!all && !pl__mdns_cache_changed(m, in->link, in->hfull) &&
            !(in->has_target && pl__mdns_cache_changed(m, in->link, in->htarget))) {
            i++;
            continue;
        }
        const centry *ptr = pl__mdns_cache_find(m, in->link, PL_DNS_PTR, &b->name, in->full.wire, in->full.len);
        if (!ptr || ptr->expire <= now) {
            if (!pl__mdns_event_push(m, PL_MDNS_EV_LOST, b->id, &m->links[in->link], in->name, NULL, 0)) {
                i++; /* kept: reported lost on a later update */
                continue;
            }
            b->insts[i] = b->insts[--b->n_insts];
            if (b->untracked && (m->full_at < 0 || m->full_at > now + 1000))
                m->full_at = now + 1000; /* a left-out PTR may fit: at most once a second */
            continue;
        }
        i++;
        const mlink *l = &m->links[in->link];
        if (b->types) {
            /* A service type: nothing to resolve, reported once. */
            in->complete = 1;
            if (!in->sig && pl__mdns_event_push(m, PL_MDNS_EV_RESOLVED, b->id, l, in->name, NULL, 0))
                in->sig = 1;
            continue;
        }
        const centry *srv = cache_newest(m, in->link, &in->full, in->hfull, PL_DNS_SRV, now);
        const centry *txt = cache_newest(m, in->link, &in->full, in->hfull, PL_DNS_TXT, now);
        const centry *addr = NULL;
        in->has_target = 0;
        if (srv && srv->rdlen > 6) {
            in->has_target = 1;
            in->target.len = (uint8_t)(srv->rdlen - 6);
            memcpy(in->target.wire, srv->rdata + 6, srv->rdlen - 6);
            in->htarget = pl__mdns_name_hash(m, &in->target);
            uint16_t mine = l->family == AF_INET ? PL_DNS_A : PL_DNS_AAAA;
            uint16_t other = l->family == AF_INET ? PL_DNS_AAAA : PL_DNS_A;
            addr = cache_newest(m, in->link, &in->target, in->htarget, mine, now);
            if (!addr)
                addr = cache_newest(m, in->link, &in->target, in->htarget, other, now);
        }
        in->complete = srv && txt && addr;
        if (!in->complete)
            continue;
        uint32_t sig = pl__mdns_fnv(2166136261u, srv->rdata, srv->rdlen);
        sig = pl__mdns_fnv(sig, txt->rdata, txt->rdlen);
        sig = pl__mdns_fnv(sig, addr->rdata, addr->rdlen);
        sig |= 1;
        if (sig == in->sig)
            continue;
        qevent *q = pl__mdns_event_push(m, PL_MDNS_EV_RESOLVED, b->id, l, in->name, txt->rdata, txt->rdlen);
        if (!q)
            continue; /* sig unchanged: reported on a later update */
        in->sig = sig;
        in->queries = 0;
        q->ev.port = (uint16_t)(srv->rdata[4] << 8 | srv->rdata[5]);
        if (pl_dns_name_to_text(&in->target, q->ev.host, sizeof q->ev.host) != PL_OK)
            q->ev.host[0] = 0;
        size_t hl = strlen(q->ev.host);
        if (hl && q->ev.host[hl - 1] == '.')
            q->ev.host[hl - 1] = 0;
        q->ev.has_addr = 1;
        q->ev.addr.family = addr->type == PL_DNS_A ? AF_INET : AF_INET6;
        memcpy(q->ev.addr.addr, addr->rdata, addr->rdlen);
    }
    all_for_now_update(m, b, now);
}

void pl__mdns_browse_update(pl_mdns *m, int all, int64_t now)
{
    for (size_t i = 0; i < m->n_browses; i++)
        browse_update_one(m, m->browses[i], all, now);
}

/* The TTL a cached PTR goes with as a known answer (RFC 6762 7.1): more than half of it is left.
 * 0: it is none. */
static uint32_t known_answer_ttl(const centry *c, int64_t now)
{
    if (c->ttl == 0 || c->expire <= now)
        return 0;
    int64_t left = (c->expire - now) / 1000;
    return left > (int64_t)c->ttl / 2 ? (uint32_t)left : 0;
}

_Static_assert(PL_MDNS_MAX_LINKS <= 32, "browse.asked_by_other holds a bit per link");

/* Would our query for b on link li carry each known answer of msg (its PTRs of b's name)? */
static int known_answers_ours(pl_mdns *m, int li, const browse *b, const pl_dns_message *msg, int64_t now)
{
    for (size_t i = 0; i < msg->n_answers; i++) {
        const pl_dns_record *r = &msg->records[i];
        if (r->type != PL_DNS_PTR || !pl_dns_name_equal(&r->name, &b->name))
            continue;
        const centry *c = pl__mdns_cache_find(m, li, PL_DNS_PTR, &b->name, r->u.ptr.wire, r->u.ptr.len);
        if (!c || !known_answer_ttl(c, now))
            return 0;
    }
    return 1;
}

/* RFC 6762 7.3, duplicate question suppression: another host asked a
 * browse's question on link li (PTR, class IN, QM: answered by multicast,
 * so we hear the answers), with no known answer that ours would not carry
 * (one that only it listed would be held back from us). Our next query on
 * that link counts as sent: skipped, its schedule unchanged. Not after a
 * query with the TC bit (more known answers follow, 7.2), nor one from our
 * own addresses (our query looped back). Each browse is looked at once a
 * packet: at most PL_MDNS_MAX_BROWSES times its records. */
void pl__mdns_browse_seen_query(pl_mdns *m, int li, const pl_dns_message *msg, const pl_mdns_addr *src,
                                int64_t now)
{
    if (msg->flags & 0x0200)
        return;
    uint8_t looked[PL_MDNS_MAX_BROWSES] = {0};
    int ours = -1;
    for (size_t q = 0; q < msg->n_questions; q++) {
        const pl_dns_question *qu = &msg->questions[q];
        if (qu->type != PL_DNS_PTR || qu->qclass != PL_DNS_CLASS_IN || qu->unicast_response)
            continue;
        uint32_t h = pl__mdns_name_hash(m, &qu->name);
        for (size_t i = 0; i < m->n_browses; i++) {
            browse *b = m->browses[i];
            if (looked[i] || b->hname != h || !pl_dns_name_equal(&b->name, &qu->name))
                continue;
            looked[i] = 1;
            if (b->asked_by_other & (1u << li))
                continue;
            if (ours < 0)
                ours = pl__mdns_addr_is_ours(m, src);
            if (ours)
                return;
            if (known_answers_ours(m, li, b, msg, now))
                b->asked_by_other |= 1u << li;
        }
    }
}

void pl__mdns_send_browse_query(pl_mdns *m, browse *b, int64_t now)
{
    uint32_t skip = b->asked_by_other;
    b->asked_by_other = 0;
    for (size_t li = 0; li < m->n_links; li++) {
        if (skip & (1u << li))
            continue; /* another host asked it (pl__mdns_browse_seen_query) */
        builder *w = malloc(sizeof *w);
        if (!w)
            return;
        pl__mdns_b_init(w, m, (int)li, now, 0);
        pl_dns_question q = {.name = b->name, .type = PL_DNS_PTR, .qclass = PL_DNS_CLASS_IN};
        pl__mdns_b_question(w, &q);
        /* Known answers (RFC 6762 7.1): PTRs with more than half their TTL left. */
        uint32_t hset = pl__mdns_cache_set_hash((int)li, PL_DNS_PTR, b->hname);
        for (const centry *c = NULL;
             (c = pl__mdns_cache_next_in_set(m, c, (int)li, PL_DNS_PTR, &b->name, hset, 0));) {
            uint32_t ttl = known_answer_ttl(c, now);
            if (!ttl)
                continue;
            pl_dns_record r;
            memset(&r, 0, sizeof r);
            r.name = c->name;
            r.type = PL_DNS_PTR;
            r.rrclass = PL_DNS_CLASS_IN;
            r.ttl = ttl;
            if (pl__mdns_record_set_rdata(&r, c->rdata, c->rdlen) != 0)
                continue;
            if (!pl__mdns_b_record(w, 1, &r, 0))
                break; /* the rest would need a multi-packet query (TC): not sent */
        }
        pl__mdns_b_flush(w);
        free(w);
    }
}

/* Is cache entry c something a browse needs kept fresh? */
int pl__mdns_wanted(pl_mdns *m, const centry *c)
{
    for (size_t i = 0; i < m->n_browses; i++) {
        browse *b = m->browses[i];
        if (c->type == PL_DNS_PTR && pl_dns_name_equal(&c->name, &b->name))
            return 1;
        for (size_t k = 0; k < b->n_insts; k++) {
            const minst *in = &b->insts[k];
            if (in->link != c->link)
                continue;
            if ((c->type == PL_DNS_SRV || c->type == PL_DNS_TXT) && c->hname == in->hfull &&
                pl_dns_name_equal(&c->name, &in->full))
                return 1;
            if ((c->type == PL_DNS_A || c->type == PL_DNS_AAAA) && in->has_target && c->hname == in->htarget &&
                pl_dns_name_equal(&c->name, &in->target))
                return 1;
        }
    }
    return 0;
}

int64_t pl__mdns_refresh_time(const centry *c)
{
    if (c->ttl == 0 || c->refreshed >= REFRESH_QUERIES)
        return -1;
    return c->recv + (int64_t)c->ttl * (800 + 50 * c->refreshed + c->refresh_jitter);
}
