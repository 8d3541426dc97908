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
            /* RFC 6762 6: once a second, but at once in defence against a probe. */
            if (!legacy && !msg->n_authority && pl__mdns_multicast_recent(m, li, &o->r, now))
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
            if (!legacy && !msg->n_authority && pl__mdns_multicast_recent(m, li, &o->r, now))
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

/* Hashes (FNV-1a), case-insensitive where names compare so. */
static uint32_t fnv_ci(uint32_t h, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h ^= (uint8_t)(p[i] >= 'A' && p[i] <= 'Z' ? p[i] + 32 : p[i]);
        h *= 16777619u;
    }
    return h;
}

/* Keyed by the engine's seed (hash_basis), so that a neighbour cannot
 * easily choose names that share a bucket. */
uint32_t pl__mdns_name_hash(const pl_mdns *m, const pl_dns_name *n)
{
    return fnv_ci(m->hash_basis, n->wire, n->len);
}

/* Every bit of a hash into its low bits (FNV's low bits depend only on the low bits of its input). */
static uint32_t mix(uint32_t h)
{
    h ^= h >> 16;
    h *= 0x85ebca6bu;
    h ^= h >> 13;
    h *= 0xc2b2ae35u;
    return h ^ (h >> 16);
}

static size_t bucket(uint32_t h)
{
    return mix(h) & (CACHE_BUCKETS - 1);
}

uint32_t pl__mdns_cache_set_hash(int li, uint16_t type, uint32_t hname)
{
    uint8_t k[6] = {(uint8_t)li, (uint8_t)(li >> 8), (uint8_t)type, (uint8_t)(type >> 8), 0, 0};
    return pl__mdns_fnv(hname, k, sizeof k);
}

static uint32_t key_hash(uint32_t hset, uint16_t type, const uint8_t *data, size_t n)
{
    if (type == PL_DNS_PTR)
        return fnv_ci(hset, data, n);
    if (type == PL_DNS_SRV && n >= 6)
        return fnv_ci(pl__mdns_fnv(hset, data, 6), data + 6, n - 6);
    return pl__mdns_fnv(hset, data, n);
}

/* ---- what a response changed, for the browses (browse.c) */

static uint32_t changed_key(int li, uint32_t hname)
{
    uint32_t h = pl__mdns_fnv(hname, &li, sizeof li);
    return h ? h : 1;
}

static void changed_add(pl_mdns *m, int li, uint32_t hname)
{
    if (m->changed_all)
        return;
    uint32_t k = changed_key(li, hname);
    for (size_t i = mix(k) & (CHANGED_SLOTS - 1);; i = (i + 1) & (CHANGED_SLOTS - 1)) {
        if (m->changed[i] == k)
            return;
        if (!m->changed[i]) {
            m->changed[i] = k;
            m->changed_used[m->n_changed++] = (uint16_t)i;
            if (m->n_changed >= CHANGED_SLOTS / 2)
                m->changed_all = 1;
            return;
        }
    }
}

/* Did the response change a record named hname (or, for a PTR, pointing to it) on link li? */
int pl__mdns_cache_changed(const pl_mdns *m, int li, uint32_t hname)
{
    if (m->changed_all)
        return 1;
    uint32_t k = changed_key(li, hname);
    for (size_t i = mix(k) & (CHANGED_SLOTS - 1); m->changed[i]; i = (i + 1) & (CHANGED_SLOTS - 1))
        if (m->changed[i] == k)
            return 1;
    return 0;
}

static void note_change(pl_mdns *m, const centry *c)
{
    changed_add(m, c->link, c->hname);
    if (c->type == PL_DNS_PTR)
        changed_add(m, c->link, fnv_ci(m->hash_basis, c->rdata, c->rdlen)); /* the instance it names */
}

/* ---- sources: srcs[] sorted by their count of unconfirmed entries, largest first
 *
 * An entry is unconfirmed until it is received a second time: a responder
 * refreshes its records, a flood of ever new names does not. When the cache
 * is full, the oldest unconfirmed entry of the source holding most of them
 * makes room; if none is left, the oldest entry of the source holding most
 * entries. */

static void src_swap(pl_mdns *m, size_t a, size_t b)
{
    msrc *x = m->srcs[a];
    m->srcs[a] = m->srcs[b];
    m->srcs[b] = x;
    m->srcs[a]->pos = a;
    m->srcs[b]->pos = b;
}

/* The source of the response being taken, added with no entry if new. */
static msrc *src_current(pl_mdns *m)
{
    if (m->in_src)
        return m->in_src;
    for (size_t i = 0; i < m->n_srcs; i++) {
        msrc *s = m->srcs[i];
        if (s->link == m->in_link && s->addr.family == m->in_addr.family &&
            memcmp(s->addr.addr, m->in_addr.addr, sizeof s->addr.addr) == 0)
            return m->in_src = s;
    }
    if (m->n_srcs > PL_MDNS_MAX_CACHE)
        return NULL; /* cannot happen: a source has entries, but for the current one */
    msrc *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->link = m->in_link;
    s->addr = m->in_addr;
    s->pos = m->n_srcs;
    m->srcs[m->n_srcs++] = s; /* none unconfirmed: after every other, above[0] unchanged */
    return m->in_src = s;
}

static void src_drop_if_empty(pl_mdns *m, msrc *s)
{
    if (s->n || s == m->in_src)
        return;
    src_swap(m, s->pos, m->n_srcs - 1); /* the sources with none unconfirmed are last */
    m->n_srcs--;
    free(s);
}

/* Entry c (new or refreshed) becomes the newest of its list in s. */
static void src_attach(pl_mdns *m, msrc *s, centry *c)
{
    centry **oldest = c->confirmed ? &s->conf_oldest : &s->prob_oldest;
    centry **newest = c->confirmed ? &s->conf_newest : &s->prob_newest;
    c->src = s;
    c->older = *newest;
    c->newer = NULL;
    if (*newest)
        (*newest)->newer = c;
    else
        *oldest = c;
    *newest = c;
    s->n++;
    if (c->confirmed)
        return;
    src_swap(m, s->pos, m->above[s->nprob]); /* to the front of the sources with as many */
    m->above[s->nprob]++;
    s->nprob++;
}

static void src_detach(pl_mdns *m, centry *c)
{
    msrc *s = c->src;
    centry **oldest = c->confirmed ? &s->conf_oldest : &s->prob_oldest;
    centry **newest = c->confirmed ? &s->conf_newest : &s->prob_newest;
    if (c->older)
        c->older->newer = c->newer;
    else
        *oldest = c->newer;
    if (c->newer)
        c->newer->older = c->older;
    else
        *newest = c->older;
    s->n--;
    if (c->confirmed)
        return;
    s->nprob--;
    src_swap(m, s->pos, m->above[s->nprob] - 1); /* to the back of the sources with as many */
    m->above[s->nprob]--;
}

/* The entry to replace for a new one from s in a full cache, or NULL: s holds as much as any. */
static centry *src_victim(pl_mdns *m, const msrc *s)
{
    const msrc *top = m->srcs[0];
    if (top->nprob)
        return top->nprob > s->nprob ? top->prob_oldest : NULL;
    /* Every entry is confirmed (rare: a flood would have to repeat itself): by entry count. */
    for (size_t i = 1; i < m->n_srcs; i++)
        if (m->srcs[i]->n > top->n)
            top = m->srcs[i];
    return top->n > s->n ? top->conf_oldest : NULL;
}

/* ---- the entries */

static void set_unlink(pl_mdns *m, centry *c)
{
    if (c->prev_set)
        c->prev_set->next_set = c->next_set;
    else
        m->by_set[bucket(c->hset)] = c->next_set;
    if (c->next_set)
        c->next_set->prev_set = c->prev_set;
}

static void set_push(pl_mdns *m, centry *c)
{
    centry **sb = &m->by_set[bucket(c->hset)];
    c->prev_set = NULL;
    c->next_set = *sb;
    if (*sb)
        (*sb)->prev_set = c;
    *sb = c;
}

void pl__mdns_cache_remove(pl_mdns *m, centry *c)
{
    note_change(m, c);
    centry **pp = &m->by_key[bucket(c->hkey)];
    while (*pp != c)
        pp = &(*pp)->next_key;
    *pp = c->next_key;
    set_unlink(m, c);
    m->cache[c->idx] = m->cache[--m->n_cache];
    m->cache[c->idx]->idx = c->idx;
    msrc *s = c->src;
    src_detach(m, c);
    src_drop_if_empty(m, s);
    free(c->rdata);
    free(c);
}

/* The entries of a set received after seq `after` (0: all), newest first:
 * pass NULL for the first. A bucket is kept in receipt order (an entry
 * goes to its front when it arrives and when it is refreshed), so that
 * the walk stops at the first older one. */
const centry *pl__mdns_cache_next_in_set(pl_mdns *m, const centry *c, int li, uint16_t type,
                                         const pl_dns_name *name, uint32_t hset, uint64_t after)
{
    for (c = c ? c->next_set : m->by_set[bucket(hset)]; c && c->seq > after; c = c->next_set)
        if (c->hset == hset && c->link == li && c->type == type && pl_dns_name_equal(&c->name, name))
            return c;
    return NULL;
}

static centry *find_key(pl_mdns *m, int li, uint16_t type, const pl_dns_name *name, uint32_t hkey,
                        const uint8_t *data, size_t n)
{
    for (centry *c = m->by_key[bucket(hkey)]; c; c = c->next_key)
        if (c->hkey == hkey && c->link == li && c->type == type && pl_dns_name_equal(&c->name, name) &&
            pl__mdns_rdata_equal(type, c->rdata, c->rdlen, data, n))
            return c;
    return NULL;
}

const centry *pl__mdns_cache_find(pl_mdns *m, int li, uint16_t type, const pl_dns_name *name,
                                  const uint8_t *data, size_t n)
{
    uint32_t hset = pl__mdns_cache_set_hash(li, type, pl__mdns_name_hash(m, name));
    return find_key(m, li, type, name, key_hash(hset, type, data, n), data, n);
}

void pl__mdns_cache_begin(pl_mdns *m, int li, const pl_mdns_addr *src)
{
    static const pl_mdns_addr none;
    m->in_link = li;
    m->in_addr = src ? *src : none;
    m->in_src = NULL;
    m->in_new = 0;
    m->in_seq = m->cache_seq;
    for (size_t i = 0; i < m->n_changed; i++)
        m->changed[m->changed_used[i]] = 0;
    m->n_changed = 0;
    m->changed_all = 0;
}

void pl__mdns_cache_end(pl_mdns *m)
{
    msrc *s = m->in_src;
    m->in_src = NULL;
    if (s)
        src_drop_if_empty(m, s);
}

/* Records of a response into the cache (between pl__mdns_cache_begin and
 * _end). Each costs O(1) expected: the indexes find it. A new one is
 * ignored past CACHE_NEW_PER_PACKET in the response or CACHE_PER_SOURCE
 * entries of its source; in a full cache it replaces src_victim(). */
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
    uint32_t hname = pl__mdns_name_hash(m, &r->name);
    uint32_t hset = pl__mdns_cache_set_hash(li, r->type, hname);
    uint32_t hkey = key_hash(hset, r->type, data, n);
    centry *c = find_key(m, li, r->type, &r->name, hkey, data, n);
    if (c) {
        if (r->ttl == 0 && c->ttl == 0)
            return;
        c->ttl = r->ttl;
        c->recv = now;
        c->seq = ++m->cache_seq;
        c->expire = expire;
        c->refreshed = 0;
        c->refresh_jitter = (int)pl__mdns_rnd_between(m, 0, 20);
        if (r->type == PL_DNS_PTR || r->type == PL_DNS_SRV)
            memcpy(c->rdata, data, n); /* the sender's spelling */
        /* The newest of its set's bucket and, confirmed, of its source again (it stays with
         * the source that sent it first). */
        set_unlink(m, c);
        set_push(m, c);
        msrc *s = c->src;
        src_detach(m, c);
        c->confirmed = 1;
        src_attach(m, s, c);
        note_change(m, c);
        return;
    }
    if (r->ttl == 0)
        return; /* a goodbye for something unknown */
    if (m->in_new >= CACHE_NEW_PER_PACKET)
        return;
    m->in_new++;
    if (r->type != PL_DNS_PTR) {
        /* A unique record set of many values is no host's: its oldest value makes room. */
        size_t k = 0;
        const centry *oldest = NULL;
        const centry *e = NULL;
        for (; (e = pl__mdns_cache_next_in_set(m, e, li, r->type, &r->name, hset, 0)); k++)
            if (!oldest || e->seq < oldest->seq)
                oldest = e;
        if (k >= CACHE_PER_SET)
            pl__mdns_cache_remove(m, (centry *)oldest);
    }
    msrc *s = src_current(m);
    if (!s || s->n >= CACHE_PER_SOURCE)
        return; /* its own entries stay until they expire: no churn for the browses */
    if (m->n_cache >= PL_MDNS_MAX_CACHE) {
        centry *victim = src_victim(m, s);
        if (!victim)
            return; /* a source takes room only from one that holds more */
        pl__mdns_cache_remove(m, victim);
    }
    c = calloc(1, sizeof *c);
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
    c->refresh_jitter = (int)pl__mdns_rnd_between(m, 0, 20);
    c->hname = hname;
    c->hset = hset;
    c->hkey = hkey;
    c->idx = m->n_cache;
    m->cache[m->n_cache++] = c;
    centry **kb = &m->by_key[bucket(hkey)];
    c->next_key = *kb;
    *kb = c;
    set_push(m, c);
    src_attach(m, s, c);
    note_change(m, c);
}

/* RFC 6762 10.2: a cache-flush record makes other data for its name and
 * type received more than a second ago expire within a second. Honoured
 * for the unique types only: a PTR is shared (a PTR set may hold the whole
 * cache, and a flood of flushes would rescan it for every record). */
void pl__mdns_cache_flush(pl_mdns *m, int li, const pl_dns_record *r, int64_t now)
{
    if (!r->cache_flush || r->ttl == 0 || r->type == PL_DNS_PTR)
        return;
    uint32_t hset = pl__mdns_cache_set_hash(li, r->type, pl__mdns_name_hash(m, &r->name));
    for (const centry *e = NULL; (e = pl__mdns_cache_next_in_set(m, e, li, r->type, &r->name, hset, 0));) {
        centry *c = (centry *)e;
        if (c->recv < now - 1000 && c->expire > now + 1000) {
            c->expire = now + 1000;
            c->ttl = 0;
            note_change(m, c);
        }
    }
}
