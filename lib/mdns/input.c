/* SPDX-License-Identifier: ISC */
/*
 * The built-in mDNS engine: what arrives - conflicts with our records,
 * queries to answer, answers for the cache (RFC 6762 sections 6, 9, 10).
 * See engine.c.
 */
#include "mdns/engine_int.h"

/* ---------------------------------------------------------------- input: conflicts */

/* Order of records for the probe tie-break (RFC 6762 8.2): class, type, then raw rdata. */
typedef struct tb {
    uint16_t type;
    size_t n;
    const uint8_t *ext; /* the record's own raw RDATA (TXT, other types), else NULL: d */
    uint8_t d[PL_DNS_MAX_NAME + 8];
} tb;

static void tb_set(tb *t, const pl_dns_record *r)
{
    t->type = r->type;
    const uint8_t *v = pl__mdns_rdata_view(r, t->d, sizeof t->d, &t->n);
    t->ext = v == t->d ? NULL : v; /* not a pointer into t: qsort moves it */
}

static int tb_cmp(const void *x, const void *y)
{
    const tb *a = x, *b = y;
    if (a->type != b->type)
        return a->type < b->type ? -1 : 1;
    size_t n = a->n < b->n ? a->n : b->n;
    int c = n ? memcmp(a->ext ? a->ext : a->d, b->ext ? b->ext : b->d, n) : 0;
    if (c)
        return c;
    return a->n < b->n ? -1 : a->n > b->n;
}

/* > 0 if ours wins, < 0 if theirs does, 0 if identical. */
static int tie_break(const orrs *ours, const pl_dns_message *msg, const pl_dns_name *name)
{
    size_t no = ours->n, nt = 0;
    const pl_dns_record *auth = msg->records + msg->n_answers;
    for (size_t i = 0; i < msg->n_authority; i++)
        nt += pl_dns_name_equal(&auth[i].name, name);
    tb *a = calloc(no ? no : 1, sizeof *a), *t = calloc(nt ? nt : 1, sizeof *t);
    int r = 0;
    if (!a || !t)
        goto out;
    for (size_t i = 0; i < no; i++)
        tb_set(&a[i], &ours->v[i].r);
    size_t k = 0;
    for (size_t i = 0; i < msg->n_authority; i++) {
        if (!pl_dns_name_equal(&auth[i].name, name))
            continue;
        tb_set(&t[k], &auth[i]);
        k++;
    }
    qsort(a, no, sizeof *a, tb_cmp);
    qsort(t, nt, sizeof *t, tb_cmp);
    for (size_t i = 0; i < no && i < nt; i++) {
        int c = tb_cmp(&a[i], &t[i]);
        if (c) {
            r = c;
            goto out;
        }
    }
    r = no == nt ? 0 : (no > nt ? 1 : -1);
out:
    free(a);
    free(t);
    return r;
}

/* Our host records on every link: a host with two interfaces on one
 * network hears its own packets on the other interface, with the other
 * interface's addresses; those are ours, not a conflict. */
static void host_records_all(pl_mdns *m, orrs *out)
{
    for (size_t li = 0; li < m->n_links; li++)
        pl__mdns_host_records(m, &m->links[li], out);
}

/* 1 if every authority record of msg for name is one of ours: our own probe, come back. */
static int probe_is_ours(const orrs *ours, const pl_dns_message *msg, const pl_dns_name *name)
{
    const pl_dns_record *auth = msg->records + msg->n_answers;
    int any = 0;
    for (size_t i = 0; i < msg->n_authority; i++) {
        if (!pl_dns_name_equal(&auth[i].name, name))
            continue;
        if (!pl__mdns_orrs_has(ours, &auth[i]))
            return 0;
        any = 1;
    }
    return any;
}

/* A record that conflicts with one of the unique records in ours (same name and type, other data)? */
static int conflicts(const orrs *ours, const pl_dns_record *r)
{
    if (r->ttl == 0)
        return 0;
    int same_name_type = 0;
    for (size_t i = 0; i < ours->n; i++) {
        if (ours->v[i].shared)
            continue;
        if (ours->v[i].r.type == r->type && pl_dns_name_equal(&ours->v[i].r.name, &r->name)) {
            same_name_type = 1;
            break;
        }
    }
    return same_name_type && !pl__mdns_orrs_has(ours, r);
}

void pl__mdns_check_conflicts(pl_mdns *m, int li, const pl_dns_message *msg, int64_t now)
{
    size_t n = msg->n_answers + msg->n_authority + msg->n_additional;
    /* The host name, once started (established included: RFC 6762 9). */
    if (m->host.state != ST_IDLE) {
        orrs h = {0};
        host_records_all(m, &h);
        for (size_t i = 0; i < n; i++) {
            const pl_dns_record *r = &msg->records[i];
            if ((r->type != PL_DNS_A && r->type != PL_DNS_AAAA) || !pl_dns_name_equal(&r->name, &m->host_name))
                continue;
            if (r->ttl == 0 && pl__mdns_orrs_has(&h, r)) {
                /* A goodbye for one of our host records: another responder on
                 * this host that shares the name went away. Announce ours again
                 * so that caches keep the address (RFC 6762 10.1). */
                pl__mdns_host_reannounce(m, now);
                continue;
            }
            int hit = h.n ? conflicts(&h, r) : r->ttl != 0;
            if (hit) {
                if (m->host.state == ST_PROBING)
                    pl__mdns_host_rename(m, now);
                else
                    pl__mdns_group_start(m, &m->host, now);
                break;
            }
        }
        free(h.v);
    }
    for (size_t k = 0; k < m->n_pubs; k++) {
        pub *p = m->pubs[k];
        if (p->g.failed)
            continue;
        orrs ours = {0};
        pl__mdns_pub_records(m, p, 2, &ours);
        for (size_t i = 0; i < n; i++) {
            if (conflicts(&ours, &msg->records[i])) {
                if (p->g.state == ST_PROBING)
                    pl__mdns_pub_rename(m, p, now);
                else
                    pl__mdns_group_start(m, &p->g, now);
                break;
            }
        }
        free(ours.v);
    }
}

/* A probe from someone else for a name we are probing too (RFC 6762 8.2). */
void pl__mdns_check_probe_tie(pl_mdns *m, int li, const pl_dns_message *msg, int64_t now)
{
    if (!msg->n_authority)
        return;
    if (m->host.state == ST_PROBING) {
        orrs h = {0}, all = {0};
        pl__mdns_host_records(m, &m->links[li], &h);
        host_records_all(m, &all);
        int hit = 0;
        for (size_t i = 0; i < msg->n_authority; i++)
            hit |= pl_dns_name_equal(&msg->records[msg->n_answers + i].name, &m->host_name);
        if (hit && !probe_is_ours(&all, msg, &m->host_name) && tie_break(&h, msg, &m->host_name) < 0) {
            m->host.count = 0;
            m->host.next = now + 1000; /* lost: probe again in a second */
        }
        free(h.v);
        free(all.v);
    }
    for (size_t k = 0; k < m->n_pubs; k++) {
        pub *p = m->pubs[k];
        if (p->g.state != ST_PROBING || p->g.failed)
            continue;
        int hit = 0;
        for (size_t i = 0; i < msg->n_authority; i++)
            hit |= pl_dns_name_equal(&msg->records[msg->n_answers + i].name, &p->inst);
        if (!hit)
            continue;
        orrs ours = {0};
        pl__mdns_pub_records(m, p, 2, &ours);
        if (tie_break(&ours, msg, &p->inst) < 0) {
            p->g.count = 0;
            p->g.next = now + 1000;
        }
        free(ours.v);
    }
}

/* ---------------------------------------------------------------- input: answering */

static void all_live_records(pl_mdns *m, const mlink *l, orrs *out)
{
    if (!pl__mdns_host_live(m))
        return;
    pl__mdns_host_records(m, l, out);
    for (size_t i = 0; i < m->n_pubs; i++)
        if (m->pubs[i]->g.state != ST_PROBING && !m->pubs[i]->g.failed)
            pl__mdns_pub_records(m, m->pubs[i], 3, out);
}

/* The query lists r as a known answer with at least half our TTL (RFC 6762 7.1). */
static int known(const pl_dns_message *msg, const pl_dns_record *r)
{
    uint8_t a[PL_DNS_MAX_NAME + 8], b[PL_DNS_MAX_NAME + 8];
    size_t an = 0, bn;
    const uint8_t *ad = NULL;
    for (size_t i = 0; i < msg->n_answers; i++) {
        const pl_dns_record *k = &msg->records[i];
        if (k->type != r->type || !pl_dns_name_equal(&k->name, &r->name) || k->ttl < r->ttl / 2)
            continue;
        if (!ad)
            ad = pl__mdns_rdata_view(r, a, sizeof a, &an);
        const uint8_t *bd = pl__mdns_rdata_view(k, b, sizeof b, &bn);
        if (pl__mdns_rdata_equal(r->type, ad, an, bd, bn))
            return 1;
    }
    return 0;
}

void pl__mdns_answer_query(pl_mdns *m, int li, const pl_dns_message *msg, const pl_mdns_addr *src,
                         uint16_t src_port, int64_t now)
{
    orrs mine = {0}, ans = {0}, add = {0};
    all_live_records(m, &m->links[li], &mine);
    if (!mine.n)
        goto out;
    int legacy = src_port != MDNS_PORT;
    int delay = 0;
    for (size_t q = 0; q < msg->n_questions; q++) {
        const pl_dns_question *qu = &msg->questions[q];
        if (qu->qclass != PL_DNS_CLASS_IN && qu->qclass != PL_DNS_ANY)
            continue;
        for (size_t i = 0; i < mine.n; i++) {
            const orr *o = &mine.v[i];
            if (!pl_dns_name_equal(&o->r.name, &qu->name) || (qu->type != PL_DNS_ANY && qu->type != o->r.type))
                continue;
            if (known(msg, &o->r) || pl__mdns_orrs_has(&ans, &o->r))
                continue;
            orr *n = pl__mdns_orrs_add(&ans);
            if (!n)
                goto out;
            *n = *o;
            if (n->r.type == PL_DNS_A || n->r.type == PL_DNS_AAAA)
                n->r.rdata = n->data;
            delay |= o->shared;
        }
    }
    if (!ans.n)
        goto out;
    /* Additional records (RFC 6763 12): SRV, TXT and addresses for a PTR; addresses for an SRV. */
    for (size_t i = 0; i < ans.n; i++) {
        const pl_dns_record *r = &ans.v[i].r;
        for (size_t k = 0; k < mine.n; k++) {
            const orr *o = &mine.v[k];
            int want = 0;
            if (r->type == PL_DNS_PTR && (o->r.type == PL_DNS_SRV || o->r.type == PL_DNS_TXT))
                want = pl_dns_name_equal(&o->r.name, &r->u.ptr);
            if ((o->r.type == PL_DNS_A || o->r.type == PL_DNS_AAAA) &&
                ((r->type == PL_DNS_SRV) || (r->type == PL_DNS_PTR && !pl_dns_name_equal(&r->name, &m->services))))
                want = 1;
            if (!want || pl__mdns_orrs_has(&ans, &o->r) || pl__mdns_orrs_has(&add, &o->r))
                continue;
            orr *n = pl__mdns_orrs_add(&add);
            if (!n)
                break;
            *n = *o;
            if (n->r.type == PL_DNS_A || n->r.type == PL_DNS_AAAA)
                n->r.rdata = n->data;
        }
    }
    builder *b = malloc(sizeof *b);
    if (!b)
        goto out;
    if (legacy) {
        /* RFC 6762 6.7: unicast to the source with the query's id and question, TTL <= 10. */
        memset(b, 0, sizeof *b);
        b->m = m;
        b->link = li;
        b->due = now;
        b->id = msg->id;
        b->flags = PL_DNS_FLAG_RESPONSE;
        b->unicast = 1;
        b->dst = *src;
        b->dst_port = src_port;
        b->repeat_q = msg->questions;
        b->n_repeat_q = msg->n_questions > 4 ? 4 : msg->n_questions;
        pl__mdns_b_reset(b);
    } else {
        int64_t due = now;
        if (delay && !msg->n_authority)
            due += pl__mdns_rnd_between(m, 20, 120);
        pl__mdns_b_init(b, m, li, due, PL_DNS_FLAG_RESPONSE);
    }
    for (int sec = 1; sec <= 3; sec += 2) {
        orrs *list = sec == 1 ? &ans : &add;
        for (size_t i = 0; i < list->n; i++) {
            pl_dns_record r = list->v[i].r;
            if (legacy) {
                r.cache_flush = 0;
                if (r.ttl > 10)
                    r.ttl = 10;
            }
            pl__mdns_b_tag(b, list->v[i].group);
            pl__mdns_b_record(b, sec, &r, 1);
        }
    }
    pl__mdns_b_flush(b);
    free(b);
out:
    free(mine.v);
    free(ans.v);
    free(add.v);
}

/* ---------------------------------------------------------------- input: cache */

void pl__mdns_cache_put(pl_mdns *m, int li, const pl_dns_record *r, int64_t now)
{
    if (r->type != PL_DNS_PTR && r->type != PL_DNS_SRV && r->type != PL_DNS_TXT && r->type != PL_DNS_A &&
        r->type != PL_DNS_AAAA)
        return;
    if (r->rrclass != PL_DNS_CLASS_IN)
        return;
    uint8_t d[PL_DNS_MAX_NAME + 8];
    const uint8_t *data = d;
    size_t n;
    if (r->type == PL_DNS_TXT) {
        data = r->rdata;
        n = r->rdlen;
    } else {
        n = pl__mdns_rdata_of(r, d, sizeof d);
        if (!n)
            return;
    }
    int64_t expire = r->ttl ? now + (int64_t)r->ttl * 1000 : now + 1000;
    for (size_t i = 0; i < m->n_cache; i++) {
        centry *c = m->cache[i];
        if (c->link != li || c->type != r->type || !pl_dns_name_equal(&c->name, &r->name) ||
            !pl__mdns_rdata_equal(r->type, c->rdata, c->rdlen, data, n))
            continue;
        if (r->ttl == 0 && c->ttl == 0)
            return;
        c->ttl = r->ttl;
        c->recv = now;
        c->seq = ++m->cache_seq;
        c->expire = expire;
        c->refreshed = 0;
        if (r->type == PL_DNS_PTR || r->type == PL_DNS_SRV)
            memcpy(c->rdata, data, n); /* the sender's spelling */
        return;
    }
    if (r->ttl == 0)
        return; /* a goodbye for something unknown */
    if (m->n_cache >= PL_MDNS_MAX_CACHE) {
        size_t victim = 0;
        for (size_t i = 1; i < m->n_cache; i++)
            if (m->cache[i]->expire < m->cache[victim]->expire)
                victim = i;
        pl__mdns_cache_remove_at(m, victim);
    }
    centry *c = calloc(1, sizeof *c);
    if (!c)
        return;
    c->rdata = malloc(n ? n : 1);
    if (!c->rdata) {
        free(c);
        return;
    }
    if (n)
        memcpy(c->rdata, data, n);
    c->rdlen = (uint16_t)n;
    c->link = li;
    c->type = r->type;
    c->name = r->name;
    c->ttl = r->ttl;
    c->recv = now;
    c->seq = ++m->cache_seq;
    c->expire = expire;
    m->cache[m->n_cache++] = c;
}

/* RFC 6762 10.2: a cache-flush record makes other data for its name and
 * type received more than a second ago expire within a second. */
void pl__mdns_cache_flush(pl_mdns *m, int li, const pl_dns_record *r, int64_t now)
{
    if (!r->cache_flush || r->ttl == 0)
        return;
    for (size_t i = 0; i < m->n_cache; i++) {
        centry *c = m->cache[i];
        if (c->link == li && c->type == r->type && c->recv < now - 1000 && pl_dns_name_equal(&c->name, &r->name) &&
            c->expire > now + 1000) {
            c->expire = now + 1000;
            c->ttl = 0;
        }
    }
}
