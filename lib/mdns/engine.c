/* SPDX-License-Identifier: ISC */
/*
 * The built-in mDNS responder and querier, sans-I/O (see engine.h and
 * docs/MDNS.md). Everything here is plain computation on the caller's
 * clock and the caller's bytes; packets go out through a queue.
 *
 * Model:
 *  - links: (ifindex, family) pairs, each with the interface's addresses;
 *    everything is published on every link, and the cache and the
 *    browse results are kept per link;
 *  - groups: the host name (A/AAAA) and each publication (PTR, SRV,
 *    TXT, and the _services._dns-sd._udp PTR) go through
 *    PROBING -> ANNOUNCING -> ESTABLISHED; a conflict while probing
 *    renames, a conflict later sends the group back to probing; the
 *    host starts IDLE until the first link or publication (and is IDLE
 *    again after a shutdown);
 *  - the cache holds PTR/SRV/TXT/A/AAAA records per link with their
 *    TTLs; browse results are re-derived from it after every change and
 *    compared with what was last reported.
 */
#include "mdns/engine_int.h"

/* ---------------------------------------------------------------- small helpers */

static uint32_t rnd(pl_mdns *m)
{
    uint32_t x = m->rng;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    m->rng = x ? x : 0x9e3779b9u;
    return m->rng;
}

int64_t pl__mdns_rnd_between(pl_mdns *m, int lo, int hi)
{
    return lo + (int64_t)(rnd(m) % (uint32_t)(hi - lo + 1));
}

uint32_t pl__mdns_fnv(uint32_t h, const void *data, size_t n)
{
    const uint8_t *p = data;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 16777619u;
    }
    return h;
}

static int lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

static int wire_equal_ci(const uint8_t *a, const uint8_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (lower(a[i]) != lower(b[i]))
            return 0;
    return 1;
}

/* Uncompressed RDATA of a record (as parsed or as built). Returns its length, 0 if it does not fit. */
size_t pl__mdns_rdata_of(const pl_dns_record *r, uint8_t *buf, size_t cap)
{
    size_t n;
    switch (r->type) {
    case PL_DNS_A:
        n = 4;
        if (cap < n)
            return 0;
        memcpy(buf, r->u.a, 4);
        return n;
    case PL_DNS_AAAA:
        n = 16;
        if (cap < n)
            return 0;
        memcpy(buf, r->u.aaaa, 16);
        return n;
    case PL_DNS_PTR:
        n = r->u.ptr.len;
        if (cap < n)
            return 0;
        memcpy(buf, r->u.ptr.wire, n);
        return n;
    case PL_DNS_SRV:
        n = 6 + (size_t)r->u.srv.target.len;
        if (cap < n)
            return 0;
        buf[0] = (uint8_t)(r->u.srv.priority >> 8);
        buf[1] = (uint8_t)r->u.srv.priority;
        buf[2] = (uint8_t)(r->u.srv.weight >> 8);
        buf[3] = (uint8_t)r->u.srv.weight;
        buf[4] = (uint8_t)(r->u.srv.port >> 8);
        buf[5] = (uint8_t)r->u.srv.port;
        memcpy(buf + 6, r->u.srv.target.wire, r->u.srv.target.len);
        return n;
    default:
        n = r->rdlen;
        if (cap < n || (n && !r->rdata))
            return 0;
        if (n)
            memcpy(buf, r->rdata, n);
        return n;
    }
}

/* The uncompressed RDATA of r: built into buf (cap >= PL_DNS_MAX_NAME + 8)
 * for the types whose data is parsed (A, AAAA, PTR, SRV), the raw bytes
 * themselves for the others (TXT and unknown types, of any length). */
const uint8_t *pl__mdns_rdata_view(const pl_dns_record *r, uint8_t *buf, size_t cap, size_t *n)
{
    switch (r->type) {
    case PL_DNS_A:
    case PL_DNS_AAAA:
    case PL_DNS_PTR:
    case PL_DNS_SRV:
        *n = pl__mdns_rdata_of(r, buf, cap);
        return buf;
    default:
        *n = r->rdata ? r->rdlen : 0;
        return r->rdata ? r->rdata : buf;
    }
}

/* Equality of RDATA: names inside PTR and SRV compare case-insensitively. */
int pl__mdns_rdata_equal(uint16_t type, const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
    if (an != bn)
        return 0;
    if (type == PL_DNS_PTR)
        return wire_equal_ci(a, b, an);
    if (type == PL_DNS_SRV)
        return an >= 6 && memcmp(a, b, 6) == 0 && wire_equal_ci(a + 6, b + 6, an - 6);
    return memcmp(a, b, an) == 0;
}

/* Decode uncompressed RDATA back into r (the inverse of pl__mdns_rdata_of). r->rdata borrows data. */
int pl__mdns_record_set_rdata(pl_dns_record *r, const uint8_t *data, size_t n)
{
    r->rdata = data;
    r->rdlen = (uint16_t)n;
    switch (r->type) {
    case PL_DNS_A:
        if (n != 4)
            return -1;
        memcpy(r->u.a, data, 4);
        break;
    case PL_DNS_AAAA:
        if (n != 16)
            return -1;
        memcpy(r->u.aaaa, data, 16);
        break;
    case PL_DNS_PTR:
        if (n < 1 || n > PL_DNS_MAX_NAME)
            return -1;
        r->u.ptr.len = (uint8_t)n;
        memcpy(r->u.ptr.wire, data, n);
        break;
    case PL_DNS_SRV:
        if (n < 7 || n - 6 > PL_DNS_MAX_NAME)
            return -1;
        r->u.srv.priority = (uint16_t)(data[0] << 8 | data[1]);
        r->u.srv.weight = (uint16_t)(data[2] << 8 | data[3]);
        r->u.srv.port = (uint16_t)(data[4] << 8 | data[5]);
        r->u.srv.target.len = (uint8_t)(n - 6);
        memcpy(r->u.srv.target.wire, data + 6, n - 6);
        break;
    default:
        break;
    }
    return 0;
}

static mlink *link_find(pl_mdns *m, uint32_t ifindex, int family, int *idx)
{
    for (size_t i = 0; i < m->n_links; i++) {
        if (m->links[i].ifindex == ifindex && m->links[i].family == family) {
            if (idx)
                *idx = (int)i;
            return &m->links[i];
        }
    }
    return NULL;
}

static pub *pub_find(const pl_mdns *m, uint32_t id, size_t *idx)
{
    for (size_t i = 0; i < m->n_pubs; i++) {
        if (m->pubs[i]->g.id == id) {
            if (idx)
                *idx = i;
            return m->pubs[i];
        }
    }
    return NULL;
}

/* ---------------------------------------------------------------- events */

qevent *pl__mdns_event_push(pl_mdns *m, pl_mdns_event_type type, uint32_t id, const mlink *l,
                          const char *name, const uint8_t *txt, size_t txt_len)
{
    /* On failure the caller leaves its state as it was, so that the
     * change is reported again by a later process() (see retry_at). */
    qevent *q = m->n_events >= PL_MDNS_MAX_EVENTS ? NULL : calloc(1, sizeof *q + txt_len);
    if (!q) {
        if (m->retry_at < 0)
            m->retry_at = m->clock;
        return NULL;
    }
    q->ev.type = type;
    q->ev.id = id;
    if (l) {
        q->ev.ifindex = l->ifindex;
        q->ev.family = l->family;
    }
    snprintf(q->ev.name, sizeof q->ev.name, "%s", name ? name : "");
    if (txt_len)
        memcpy(q->txt, txt, txt_len);
    q->ev.txt_len = txt_len;
    if (m->ev_tail)
        m->ev_tail->next = q;
    else
        m->ev_head = q;
    m->ev_tail = q;
    m->n_events++;
    return q;
}

int pl_mdns_next_event(pl_mdns *m, pl_mdns_event *ev)
{
    free(m->ev_current);
    m->ev_current = NULL;
    qevent *q = m->ev_head;
    if (!q)
        return 0;
    m->ev_head = q->next;
    if (!m->ev_head)
        m->ev_tail = NULL;
    m->n_events--;
    m->ev_current = q;
    *ev = q->ev;
    ev->txt = q->txt;
    return 1;
}

/* ---------------------------------------------------------------- our records */



orr *pl__mdns_orrs_add(orrs *l)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        orr *v = realloc(l->v, cap * sizeof *v);
        if (!v)
            return NULL;
        l->v = v;
        l->cap = cap;
    }
    orr *o = &l->v[l->n++];
    memset(o, 0, sizeof *o);
    o->r.rrclass = PL_DNS_CLASS_IN;
    return o;
}

void pl__mdns_host_records(pl_mdns *m, const mlink *l, orrs *out)
{
    for (size_t i = 0; i < l->n; i++) {
        orr *o = pl__mdns_orrs_add(out);
        if (!o)
            return;
        o->r.name = m->host_name;
        o->r.cache_flush = 1;
        o->r.ttl = PL_MDNS_TTL_HOST;
        if (l->addrs[i].family == AF_INET) {
            o->r.type = PL_DNS_A;
            memcpy(o->r.u.a, l->addrs[i].addr, 4);
            memcpy(o->data, l->addrs[i].addr, 4);
            o->r.rdata = o->data;
            o->r.rdlen = 4;
        } else {
            o->r.type = PL_DNS_AAAA;
            memcpy(o->r.u.aaaa, l->addrs[i].addr, 16);
            memcpy(o->data, l->addrs[i].addr, 16);
            o->r.rdata = o->data;
            o->r.rdlen = 16;
        }
    }
}

/* The records of p; which: 1 PTRs, 2 SRV+TXT (the unique ones), 3 both. */
void pl__mdns_pub_records(pl_mdns *m, const pub *p, int which, orrs *out)
{
    orr *o;
    if (which & 1) {
        if ((o = pl__mdns_orrs_add(out))) {
            o->r.name = p->svc;
            o->r.type = PL_DNS_PTR;
            o->r.ttl = PL_MDNS_TTL_OTHER;
            o->r.u.ptr = p->inst;
            o->group = p->g.id;
            o->shared = 1;
        }
        if ((o = pl__mdns_orrs_add(out))) {
            o->r.name = m->services;
            o->r.type = PL_DNS_PTR;
            o->r.ttl = PL_MDNS_TTL_OTHER;
            o->r.u.ptr = p->svc;
            o->group = p->g.id;
            o->shared = 1;
        }
    }
    if (which & 2) {
        if ((o = pl__mdns_orrs_add(out))) {
            o->r.name = p->inst;
            o->r.type = PL_DNS_SRV;
            o->r.cache_flush = 1;
            o->r.ttl = PL_MDNS_TTL_HOST;
            o->r.u.srv.port = p->port;
            o->r.u.srv.target = m->host_name;
            o->group = p->g.id;
        }
        if ((o = pl__mdns_orrs_add(out))) {
            o->r.name = p->inst;
            o->r.type = PL_DNS_TXT;
            o->r.cache_flush = 1;
            o->r.ttl = PL_MDNS_TTL_OTHER;
            o->r.rdata = p->txt;
            o->r.rdlen = p->txt_len;
            o->group = p->g.id;
        }
    }
}

int pl__mdns_orrs_has(const orrs *l, const pl_dns_record *r)
{
    uint8_t a[PL_DNS_MAX_NAME + 8], b[PL_DNS_MAX_NAME + 8];
    size_t an, bn;
    const uint8_t *ad = pl__mdns_rdata_view(r, a, sizeof a, &an);
    for (size_t i = 0; i < l->n; i++) {
        const pl_dns_record *x = &l->v[i].r;
        if (x->type != r->type || !pl_dns_name_equal(&x->name, &r->name))
            continue;
        const uint8_t *bd = pl__mdns_rdata_view(x, b, sizeof b, &bn);
        if (pl__mdns_rdata_equal(r->type, ad, an, bd, bn))
            return 1;
    }
    return 0;
}

/* ---------------------------------------------------------------- output */


void pl__mdns_b_reset(builder *b)
{
    pl_dns_writer_init(&b->w, b->buf, sizeof b->buf, b->id, b->flags);
    b->nonempty = 0;
    for (size_t i = 0; i < b->n_repeat_q; i++)
        pl_dns_write_question(&b->w, &b->repeat_q[i]);
}

void pl__mdns_b_init(builder *b, pl_mdns *m, int link, int64_t due, uint16_t flags)
{
    memset(b, 0, sizeof *b);
    b->m = m;
    b->link = link;
    b->due = due;
    b->flags = flags;
    pl__mdns_b_reset(b);
}

void pl__mdns_b_tag(builder *b, uint32_t group)
{
    if (b->n_tags < 0)
        return;
    for (int i = 0; i < b->n_tags; i++)
        if (b->tags[i] == group)
            return;
    if (b->n_tags == 8)
        b->n_tags = -1;
    else
        b->tags[b->n_tags++] = group;
}

static void queue_packet(pl_mdns *m, const builder *b, size_t len)
{
    if (m->n_queue >= PL_MDNS_MAX_QUEUE)
        return; /* dropped: the protocol recovers by repetition */
    qpkt *q = malloc(sizeof *q);
    if (!q)
        return;
    memset(q, 0, offsetof(qpkt, p) + offsetof(pl_mdns_packet, data));
    q->due = b->due;
    q->n_tags = b->n_tags;
    memcpy(q->tags, b->tags, sizeof q->tags);
    q->p.ifindex = m->links[b->link].ifindex;
    q->p.family = m->links[b->link].family;
    q->p.unicast = b->unicast;
    q->p.dst = b->dst;
    q->p.dst_port = b->dst_port;
    q->p.len = len;
    memcpy(q->p.data, b->buf, len);
    m->queue[m->n_queue++] = q;
}

void pl__mdns_b_flush(builder *b)
{
    if (b->nonempty)
        queue_packet(b->m, b, pl_dns_writer_finish(&b->w));
    pl__mdns_b_reset(b);
}

void pl__mdns_b_question(builder *b, const pl_dns_question *q)
{
    if (pl_dns_write_question(&b->w, q) != PL_OK) {
        pl__mdns_b_flush(b);
        if (pl_dns_write_question(&b->w, q) != PL_OK)
            return;
    }
    b->nonempty = 1;
}

/* Record r on link li in m->multicast: its key (never 0) and slot. */
static uint32_t multicast_key(const pl_mdns *m, int li, const pl_dns_record *r)
{
    uint8_t d[PL_DNS_MAX_NAME + 8];
    size_t n;
    const uint8_t *v = pl__mdns_rdata_view(r, d, sizeof d, &n);
    uint32_t k = pl__mdns_fnv(pl__mdns_cache_set_hash(li, r->type, pl__mdns_name_hash(m, &r->name)), v, n);
    return k ? k : 1;
}

/* Was r multicast on link li less than ANSWER_INTERVAL ago (or is it queued to be)? */
int pl__mdns_multicast_recent(pl_mdns *m, int li, const pl_dns_record *r, int64_t now)
{
    uint32_t k = multicast_key(m, li, r);
    size_t i = k % ANSWER_SLOTS;
    return m->multicast[i].key == k && now - m->multicast[i].at < ANSWER_INTERVAL;
}

static int b_wrote(builder *b, const pl_dns_record *r)
{
    b->nonempty = 1;
    if (!b->unicast && (b->flags & 0x8000) && r->ttl) {
        uint32_t k = multicast_key(b->m, b->link, r);
        b->m->multicast[k % ANSWER_SLOTS].key = k;
        b->m->multicast[k % ANSWER_SLOTS].at = b->due;
    }
    return 1;
}

/* A record into section; returns 0 if it could not be written even into an empty packet. */
int pl__mdns_b_record(builder *b, int section, const pl_dns_record *r, int may_split)
{
    if (pl_dns_write_record(&b->w, section, r) == PL_OK)
        return b_wrote(b, r);
    if (!may_split)
        return 0;
    pl__mdns_b_flush(b);
    if (pl_dns_write_record(&b->w, section, r) == PL_OK)
        return b_wrote(b, r);
    return 0;
}

int pl_mdns_next_packet(pl_mdns *m, int64_t now, pl_mdns_packet *p)
{
    for (size_t i = 0; i < m->n_queue; i++) {
        qpkt *q = m->queue[i];
        if (q->due > now)
            continue;
        memcpy(p, &q->p, offsetof(pl_mdns_packet, data) + q->p.len);
        memmove(&m->queue[i], &m->queue[i + 1], (m->n_queue - i - 1) * sizeof m->queue[0]);
        m->n_queue--;
        free(q);
        return 1;
    }
    return 0;
}

/* Drop delayed answers that hold records of group id (they are withdrawn or renamed). */
void pl__mdns_queue_drop_group(pl_mdns *m, uint32_t id)
{
    size_t k = 0;
    for (size_t i = 0; i < m->n_queue; i++) {
        qpkt *q = m->queue[i];
        int hit = q->n_tags < 0;
        for (int t = 0; !hit && t < q->n_tags; t++)
            hit = q->tags[t] == id;
        if (hit)
            free(q);
        else
            m->queue[k++] = q;
    }
    m->n_queue = k;
}

/* Is r, a record of one of our delayed answers on link li, one that the response being read
 * (seen) carries too, with at least our TTL? Then it counts as multicast now (RFC 6762 7.4). */
static int sent_by_other(pl_mdns *m, int li, const pl_dns_record *r, const pl_dns_message *seen, int64_t now)
{
    uint32_t k = multicast_key(m, li, r);
    size_t slot = k % ANSWER_SLOTS;
    if (m->multicast[slot].key != k || !m->multicast[slot].seen)
        return 0;
    const pl_dns_record *o = &seen->records[m->multicast[slot].seen - 1];
    uint8_t a[PL_DNS_MAX_NAME + 8], b[PL_DNS_MAX_NAME + 8];
    size_t an, bn;
    const uint8_t *ad = pl__mdns_rdata_view(r, a, sizeof a, &an);
    const uint8_t *bd = pl__mdns_rdata_view(o, b, sizeof b, &bn);
    if (o->type != r->type || o->ttl < r->ttl || !pl_dns_name_equal(&o->name, &r->name) ||
        !pl__mdns_rdata_equal(r->type, ad, an, bd, bn))
        return 0;
    m->multicast[slot].at = now; /* the once-a-second rule (6) counts from the other's copy */
    return 1;
}

/* q, a delayed answer on link li, without the records sent_by_other(). Returns 0 if it is left
 * with no answer: it is to be dropped, additional records too (the other response carried
 * those it chose), and these are free to be multicast again at once. */
static int strip_answer(pl_mdns *m, int li, qpkt *q, const pl_dns_message *seen, int64_t now)
{
    pl_dns_message *mine = NULL;
    if (pl_dns_parse(q->p.data, q->p.len, &mine) != PL_OK)
        return 1;
    uint8_t buf[PL_MDNS_PACKET_SIZE];
    pl_dns_writer w;
    pl_dns_writer_init(&w, buf, sizeof buf, mine->id, mine->flags);
    size_t n = mine->n_answers + mine->n_authority + mine->n_additional, answers = 0, dropped = 0;
    int ok = mine->n_questions == 0; /* as we build them: a multicast answer repeats no question */
    for (size_t i = 0; ok && i < n; i++) {
        const pl_dns_record *r = &mine->records[i];
        int sec = i < mine->n_answers ? 1 : i < mine->n_answers + mine->n_authority ? 2 : 3;
        if (sent_by_other(m, li, r, seen, now))
            dropped++;
        else if (pl_dns_write_record(&w, sec, r) == PL_OK)
            answers += sec == 1;
        else
            ok = 0; /* cannot happen (fewer records take no more room): the answer stays whole */
    }
    int keep = 1;
    if (ok && dropped && !answers) {
        keep = 0;
        for (size_t i = mine->n_answers; i < n; i++) {
            uint32_t k = multicast_key(m, li, &mine->records[i]);
            if (m->multicast[k % ANSWER_SLOTS].key == k && m->multicast[k % ANSWER_SLOTS].at == q->due)
                m->multicast[k % ANSWER_SLOTS].at = now - ANSWER_INTERVAL;
        }
    } else if (ok && dropped) {
        q->p.len = pl_dns_writer_finish(&w);
        memcpy(q->p.data, buf, q->p.len);
    }
    pl_dns_free(mine);
    return keep;
}

/* RFC 6762 7.4, duplicate answer suppression: a record of ours waiting in a
 * delayed answer (20-120 ms for a shared record) that another responder has
 * just multicast on the link with at least our TTL counts as sent, and is
 * taken out of our answer. The multicast slots (at > now: queued to go
 * later) find the candidates in O(1) a record; the queue is read only when
 * there is one, and a record taken out is a candidate no more. */
void pl__mdns_drop_duplicate_answers(pl_mdns *m, int li, const pl_dns_message *msg, int64_t now)
{
    size_t slots[PL_DNS_MAX_ENTRIES], n_slots = 0;
    size_t n = msg->n_answers + msg->n_authority + msg->n_additional;
    for (size_t i = 0; i < n && n_slots < PL_DNS_MAX_ENTRIES; i++) {
        const pl_dns_record *r = &msg->records[i];
        if ((i >= msg->n_answers && i < msg->n_answers + msg->n_authority) || r->rrclass != PL_DNS_CLASS_IN ||
            r->ttl == 0)
            continue;
        uint32_t k = multicast_key(m, li, r);
        size_t slot = k % ANSWER_SLOTS;
        if (m->multicast[slot].key != k || m->multicast[slot].at <= now || m->multicast[slot].seen)
            continue;
        m->multicast[slot].seen = (uint16_t)(i + 1);
        slots[n_slots++] = slot;
    }
    if (!n_slots)
        return;
    const mlink *l = &m->links[li];
    size_t k = 0;
    for (size_t i = 0; i < m->n_queue; i++) {
        qpkt *q = m->queue[i];
        /* A delayed multicast response on this link: only answers to queries are (6762 6). */
        int delayed = q->due > now && !q->p.unicast && q->p.ifindex == l->ifindex &&
                      q->p.family == l->family && q->p.len > 2 && (q->p.data[2] & 0x80);
        if (delayed && !strip_answer(m, li, q, msg, now))
            free(q);
        else
            m->queue[k++] = q;
    }
    m->n_queue = k;
    for (size_t i = 0; i < n_slots; i++)
        m->multicast[slots[i]].seen = 0;
}

/* ---------------------------------------------------------------- engine */

static void name_from(pl_dns_name *n, const char *first, const char *suffix)
{
    if (pl_dns_name_from_labels(n, first, suffix) != PL_OK) {
        n->len = 1;
        n->wire[0] = 0;
    }
}

void pl__mdns_host_set_label(pl_mdns *m, const char *label)
{
    snprintf(m->host_label, sizeof m->host_label, "%s", label);
    snprintf(m->host_text, sizeof m->host_text, "%s.local", m->host_label);
    name_from(&m->host_name, m->host_label, "local");
}

void pl__mdns_group_start(pl_mdns *m, mgroup *g, int64_t now)
{
    g->state = ST_PROBING;
    g->count = 0;
    g->next = now + pl__mdns_rnd_between(m, 0, PROBE_INTERVAL);
    g->reported = 0;
}

int pl_mdns_new(const char *host_label, uint32_t seed, pl_mdns **out)
{
    pl_mdns *m = calloc(1, sizeof *m);
    if (!m)
        return PL_ERR_NOMEM;
    m->rng = seed ? seed : 0x2545f491u;
    m->hash_basis = 2166136261u ^ (m->rng * 0x9e3779b1u); /* not from rnd(): the delays stay as they were */
    char label[64];
    snprintf(label, sizeof label, "%s", host_label && host_label[0] ? host_label : "peerlink");
    char *dot = strchr(label, '.');
    if (dot)
        *dot = 0;
    if (!label[0])
        snprintf(label, sizeof label, "peerlink");
    pl__mdns_host_set_label(m, label);
    if (pl_dns_name_from_text(&m->services, "_services._dns-sd._udp.local") != PL_OK) {
        free(m);
        return PL_ERR_INVALID;
    }
    m->next_pub_id = 1;
    m->next_browse_id = 1;
    m->retry_at = -1;
    m->full_at = -1;
    pl__mdns_group_start(m, &m->host, 0);
    m->host.state = ST_IDLE; /* started by the first link or publication */
    m->host.next = -1;
    *out = m;
    return PL_OK;
}

void pl_mdns_free(pl_mdns *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->n_pubs; i++) {
        free(m->pubs[i]->txt);
        free(m->pubs[i]);
    }
    for (size_t i = 0; i < m->n_browses; i++) {
        free(m->browses[i]->insts);
        free(m->browses[i]);
    }
    while (m->n_cache)
        pl__mdns_cache_remove(m, m->cache[m->n_cache - 1]);
    for (size_t i = 0; i < m->n_queue; i++)
        free(m->queue[i]);
    while (m->ev_head) {
        qevent *q = m->ev_head;
        m->ev_head = q->next;
        free(q);
    }
    free(m->ev_current);
    free(m);
}

const char *pl_mdns_host_name(const pl_mdns *m)
{
    return m->host_text;
}

/* Is a one of the addresses of our links (a packet from it is one of ours, looped back)? */
int pl__mdns_addr_is_ours(const pl_mdns *m, const pl_mdns_addr *a)
{
    size_t n = a->family == AF_INET ? 4 : 16;
    for (size_t li = 0; li < m->n_links; li++) {
        const mlink *l = &m->links[li];
        for (size_t i = 0; i < l->n; i++)
            if (l->addrs[i].family == a->family && memcmp(l->addrs[i].addr, a->addr, n) == 0)
                return 1;
    }
    return 0;
}

int pl__mdns_host_live(const pl_mdns *m)
{
    return m->host.state == ST_ANNOUNCING || m->host.state == ST_ESTABLISHED;
}

/* Send records (answers) with ttl_override (>= 0) on every link, due now. */
void pl__mdns_send_records_all_links(pl_mdns *m, const orrs *recs, int with_host, long ttl_override,
                                   int64_t now)
{
    for (size_t li = 0; li < m->n_links; li++) {
        builder *b = malloc(sizeof *b);
        if (!b)
            return;
        pl__mdns_b_init(b, m, (int)li, now, PL_DNS_FLAG_RESPONSE);
        for (size_t i = 0; i < recs->n; i++) {
            pl_dns_record r = recs->v[i].r;
            if (ttl_override >= 0)
                r.ttl = (uint32_t)ttl_override;
            pl__mdns_b_record(b, 1, &r, 1);
        }
        if (with_host) {
            orrs h = {0};
            pl__mdns_host_records(m, &m->links[li], &h);
            for (size_t i = 0; i < h.n; i++) {
                if (ttl_override >= 0)
                    h.v[i].r.ttl = (uint32_t)ttl_override;
                pl__mdns_b_record(b, recs->n ? 3 : 1, &h.v[i].r, 1);
            }
            free(h.v);
        }
        pl__mdns_b_flush(b);
        free(b);
    }
}

static void pub_goodbye(pl_mdns *m, const pub *p, int64_t now)
{
    if (p->g.state == ST_PROBING && p->g.count == 0)
        return; /* nothing was ever sent */
    orrs recs = {0};
    pl__mdns_pub_records(m, p, 3, &recs);
    /* The _services PTR stays while another publication of the type does. */
    for (size_t i = 0; i < m->n_pubs; i++) {
        if (m->pubs[i] != p && pl_dns_name_equal(&m->pubs[i]->svc, &p->svc)) {
            for (size_t k = 0; k < recs.n; k++) {
                if (pl_dns_name_equal(&recs.v[k].r.name, &m->services)) {
                    recs.v[k] = recs.v[--recs.n];
                    break;
                }
            }
            break;
        }
    }
    pl__mdns_send_records_all_links(m, &recs, 0, 0, now);
    free(recs.v);
}

void pl_mdns_shutdown(pl_mdns *m, int64_t now)
{
    for (size_t i = m->n_pubs; i-- > 0;) {
        pl__mdns_queue_drop_group(m, m->pubs[i]->g.id);
        pub_goodbye(m, m->pubs[i], now);
        free(m->pubs[i]->txt);
        free(m->pubs[i]);
        m->pubs[i] = NULL;
        m->n_pubs = i;
    }
    if (pl__mdns_host_live(m) || (m->host.state == ST_PROBING && m->host.count > 0)) {
        orrs none = {0};
        pl__mdns_send_records_all_links(m, &none, 1, 0, now);
    }
    m->host.state = ST_IDLE;
    m->host.count = 0;
    m->host.next = -1;
}

/* Announce the established host records again (twice, from now). */
void pl__mdns_host_reannounce(pl_mdns *m, int64_t now)
{
    if (m->host.state != ST_ESTABLISHED)
        return;
    m->host.state = ST_ANNOUNCING;
    m->host.count = 0;
    m->host.next = now;
}

int pl_mdns_link_set(pl_mdns *m, uint32_t ifindex, int family, const pl_mdns_addr *addrs, size_t n,
                     int64_t now)
{
    if ((family != AF_INET && family != AF_INET6) || (n && !addrs))
        return PL_ERR_INVALID;
    if (n > PL_MDNS_MAX_ADDRS)
        n = PL_MDNS_MAX_ADDRS;
    mlink *l = link_find(m, ifindex, family, NULL);
    if (!l) {
        if (m->n_links >= PL_MDNS_MAX_LINKS)
            return PL_ERR_TOO_LARGE;
        l = &m->links[m->n_links++];
        memset(l, 0, sizeof *l);
        l->ifindex = ifindex;
        l->family = family;
    }
    l->n = 0;
    for (size_t i = 0; i < n; i++)
        if (addrs[i].family == AF_INET || addrs[i].family == AF_INET6)
            l->addrs[l->n++] = addrs[i];
    if (m->host.state == ST_IDLE)
        pl__mdns_group_start(m, &m->host, now);
    else
        pl__mdns_host_reannounce(m, now); /* new addresses */
    /* Browses query on the new link soon. */
    m->full_next = 1;
    for (size_t i = 0; i < m->n_browses; i++) {
        browse *b = m->browses[i];
        b->interval = 1000;
        b->next = now + pl__mdns_rnd_between(m, 20, 120);
    }
    return PL_OK;
}

static int valid_type(const char *t)
{
    size_t n = t ? strlen(t) : 0;
    return n >= 7 && n < 64 && t[0] == '_';
}

int pl_mdns_publish(pl_mdns *m, const char *name, const char *type, const char *domain,
                    uint16_t port, const uint8_t *txt, size_t txt_len, int64_t now, uint32_t *id)
{
    if (!name || !name[0] || strlen(name) > 63 || !valid_type(type) || (txt_len && !txt))
        return PL_ERR_INVALID;
    if (!domain)
        domain = "local";
    if (strcasecmp(domain, "local") != 0)
        return PL_ERR_UNSUPPORTED;
    if (txt_len > PL_MDNS_MAX_TXT)
        return PL_ERR_TOO_LARGE; /* it would not fit in a probe or announcement packet */
    if (m->n_pubs >= PL_MDNS_MAX_PUBLICATIONS)
        return PL_ERR_TOO_LARGE;
    pub *p = calloc(1, sizeof *p);
    if (!p)
        return PL_ERR_NOMEM;
    snprintf(p->name, sizeof p->name, "%s", name);
    snprintf(p->type, sizeof p->type, "%s", type);
    snprintf(p->domain, sizeof p->domain, "%s", domain);
    p->port = port;
    char svc[140];
    snprintf(svc, sizeof svc, "%s.%s", type, domain);
    if (pl_dns_name_from_text(&p->svc, svc) != PL_OK ||
        pl_dns_name_from_labels(&p->inst, name, svc) != PL_OK) {
        free(p);
        return PL_ERR_INVALID;
    }
    /* An empty record is one zero byte (RFC 6763 6.1). */
    p->txt = malloc(txt_len ? txt_len : 1);
    if (!p->txt) {
        free(p);
        return PL_ERR_NOMEM;
    }
    if (txt_len)
        memcpy(p->txt, txt, txt_len);
    else
        p->txt[0] = 0;
    p->txt_len = (uint16_t)(txt_len ? txt_len : 1);
    p->g.id = m->next_pub_id++;
    pl__mdns_group_start(m, &p->g, now);
    m->pubs[m->n_pubs++] = p;
    if (m->host.state == ST_IDLE)
        pl__mdns_group_start(m, &m->host, now);
    *id = p->g.id;
    return PL_OK;
}

int pl_mdns_update_txt(pl_mdns *m, uint32_t id, const uint8_t *txt, size_t txt_len, int64_t now)
{
    pub *p = pub_find(m, id, NULL);
    if (!p)
        return PL_ERR_NOT_FOUND;
    if (txt_len && !txt)
        return PL_ERR_INVALID;
    if (txt_len > PL_MDNS_MAX_TXT)
        return PL_ERR_TOO_LARGE;
    uint8_t *t = malloc(txt_len ? txt_len : 1);
    if (!t)
        return PL_ERR_NOMEM;
    if (txt_len)
        memcpy(t, txt, txt_len);
    else
        t[0] = 0;
    free(p->txt);
    p->txt = t;
    p->txt_len = (uint16_t)(txt_len ? txt_len : 1);
    pl__mdns_queue_drop_group(m, id); /* delayed answers with the old record */
    if (p->g.state != ST_PROBING) {
        p->g.state = ST_ANNOUNCING;
        p->g.count = 0;
        p->g.next = now;
    }
    return PL_OK;
}

void pl_mdns_unpublish(pl_mdns *m, uint32_t id, int64_t now)
{
    size_t i;
    pub *p = pub_find(m, id, &i);
    if (!p)
        return;
    pl__mdns_queue_drop_group(m, id);
    m->pubs[i] = m->pubs[--m->n_pubs];
    pub_goodbye(m, p, now);
    free(p->txt);
    free(p);
}

const char *pl_mdns_publication_name(const pl_mdns *m, uint32_t id)
{
    pub *p = pub_find(m, id, NULL);
    return p ? p->name : NULL;
}

int pl_mdns_browse(pl_mdns *m, const char *type, const char *domain, int64_t now, uint32_t *id)
{
    if (!valid_type(type))
        return PL_ERR_INVALID;
    if (!domain)
        domain = "local";
    if (strcasecmp(domain, "local") != 0)
        return PL_ERR_UNSUPPORTED;
    if (m->n_browses >= PL_MDNS_MAX_BROWSES)
        return PL_ERR_TOO_LARGE;
    browse *b = calloc(1, sizeof *b);
    if (!b)
        return PL_ERR_NOMEM;
    snprintf(b->type, sizeof b->type, "%s", type);
    snprintf(b->domain, sizeof b->domain, "%s", domain);
    char svc[140];
    snprintf(svc, sizeof svc, "%s.%s", type, domain);
    if (pl_dns_name_from_text(&b->name, svc) != PL_OK ||
        pl_dns_name_from_text(&b->domain_name, domain) != PL_OK) {
        free(b);
        return PL_ERR_INVALID;
    }
    b->hname = pl__mdns_name_hash(m, &b->name);
    b->types = pl_dns_name_equal(&b->name, &m->services); /* the domain is "local", as m->services' */
    b->afn = AFN_QUERY;
    b->afn_at = -1;
    b->id = m->next_browse_id++;
    /* RFC 6762 5.2: the first query after 20-120 ms, then 1 s, doubling. */
    b->next = now + pl__mdns_rnd_between(m, 20, 120);
    b->interval = 1000;
    m->browses[m->n_browses++] = b;
    m->full_next = 1; /* what the cache holds already */
    *id = b->id;
    return PL_OK;
}

void pl_mdns_unbrowse(pl_mdns *m, uint32_t id)
{
    for (size_t i = 0; i < m->n_browses; i++) {
        if (m->browses[i]->id == id) {
            free(m->browses[i]->insts);
            free(m->browses[i]);
            m->browses[i] = m->browses[--m->n_browses];
            return;
        }
    }
}

/* ---------------------------------------------------------------- entry points */

void pl_mdns_input(pl_mdns *m, uint32_t ifindex, int family, const uint8_t *pkt, size_t len,
                   const pl_mdns_addr *src, uint16_t src_port, int64_t now)
{
    int li;
    m->clock = now;
    if (!link_find(m, ifindex, family, &li))
        return;
    pl_dns_message *msg = NULL;
    if (pl_dns_parse(pkt, len, &msg) != PL_OK)
        return;
    if (msg->flags & 0x8000) {
        /* A response: only from port 5353 (RFC 6762 11); update the cache. */
        if (src_port == MDNS_PORT) {
            pl__mdns_check_conflicts(m, li, msg, now);
            pl__mdns_drop_duplicate_answers(m, li, msg, now);
            size_t n = msg->n_answers + msg->n_authority + msg->n_additional;
            pl__mdns_cache_begin(m, li, src);
            for (size_t i = 0; i < n; i++)
                pl__mdns_cache_flush(m, li, &msg->records[i], now);
            for (size_t i = 0; i < n; i++)
                if (i < msg->n_answers || i >= msg->n_answers + msg->n_authority)
                    pl__mdns_cache_put(m, li, &msg->records[i], now);
            /* Only what the response changed (docs/MDNS.md, browsing). */
            pl__mdns_browse_update(m, m->changed_all, now);
            pl__mdns_cache_end(m);
        }
    } else if ((msg->flags & 0x7800) == 0) {
        pl__mdns_check_probe_tie(m, li, msg, now);
        static const pl_mdns_addr none;
        /* A legacy query is answered by unicast: no answer to share with our browses. */
        if (src_port == MDNS_PORT)
            pl__mdns_browse_seen_query(m, li, msg, src ? src : &none, now);
        pl__mdns_answer_query(m, li, msg, src ? src : &none, src_port, now);
    }
    pl_dns_free(msg);
}

void pl_mdns_process(pl_mdns *m, int64_t now)
{
    m->clock = now;
    int all = m->full_next || m->retry_at >= 0 || (m->full_at >= 0 && m->full_at <= now);
    m->full_next = 0;
    if (all)
        m->full_at = -1;
    pl__mdns_cache_begin(m, -1, NULL); /* what expires below */
    if (m->retry_at >= 0) {
        /* Events that did not fit in the queue: queued now if there is room
         * (the browses are re-derived below). */
        m->retry_at = -1;
        for (size_t i = 0; i < m->n_pubs; i++)
            pl__mdns_pub_report(m, m->pubs[i]);
    }
    pl__mdns_group_step(m, &m->host, NULL, now);
    for (size_t i = 0; i < m->n_pubs; i++)
        pl__mdns_group_step(m, &m->pubs[i]->g, m->pubs[i], now);
    for (size_t i = 0; i < m->n_browses; i++) {
        browse *b = m->browses[i];
        if (b->next <= now) {
            pl__mdns_send_browse_query(m, b, now);
            if (b->afn == AFN_QUERY) {
                b->afn = AFN_WINDOW;
                b->afn_at = now + ALL_FOR_NOW_WINDOW;
            }
            b->next = now + b->interval;
            b->interval = b->interval * 2 > BROWSE_MAX_INTERVAL ? BROWSE_MAX_INTERVAL : b->interval * 2;
        }
        for (size_t k = 0; k < b->n_insts; k++) {
            minst *in = &b->insts[k];
            if (in->complete || in->queries >= RESOLVE_QUERIES || in->next_query > now)
                continue;
            pl__mdns_send_resolve_query(m, in->link, in, now);
            in->next_query = now + (1000 << in->queries);
            in->queries++;
        }
    }
    /* Refresh queries at 80, 85, 90 and 95 % of the TTL, each 0-2 % later (RFC 6762 5.2), expiry. */
    for (size_t i = 0; i < m->n_cache;) {
        centry *c = m->cache[i];
        if (c->expire <= now) {
            pl__mdns_cache_remove(m, c);
            continue;
        }
        int64_t rt = pl__mdns_refresh_time(c);
        if (rt >= 0 && rt <= now) {
            c->refreshed++;
            if (pl__mdns_wanted(m, c)) {
                builder *b = malloc(sizeof *b);
                if (b) {
                    pl__mdns_b_init(b, m, c->link, now, 0);
                    pl_dns_question q = {.name = c->name, .type = c->type, .qclass = PL_DNS_CLASS_IN};
                    pl__mdns_b_question(b, &q);
                    pl__mdns_b_flush(b);
                    free(b);
                }
            }
        }
        i++;
    }
    pl__mdns_browse_update(m, all || m->changed_all, now);
}

static void at_most(int64_t *t, int64_t v)
{
    if (v >= 0 && (*t < 0 || v < *t))
        *t = v;
}

int64_t pl_mdns_next_deadline(const pl_mdns *m)
{
    int64_t t = -1;
    if (!m->host.failed)
        at_most(&t, m->host.next);
    for (size_t i = 0; i < m->n_pubs; i++)
        if (!m->pubs[i]->g.failed)
            at_most(&t, m->pubs[i]->g.next);
    for (size_t i = 0; i < m->n_browses; i++) {
        const browse *b = m->browses[i];
        at_most(&t, b->next);
        if (b->afn == AFN_WINDOW || b->afn == AFN_RESOLVING)
            at_most(&t, b->afn_at);
        for (size_t k = 0; k < b->n_insts; k++)
            if (!b->insts[k].complete && b->insts[k].queries < RESOLVE_QUERIES)
                at_most(&t, b->insts[k].next_query);
    }
    for (size_t i = 0; i < m->n_cache; i++) {
        at_most(&t, m->cache[i]->expire);
        at_most(&t, pl__mdns_refresh_time(m->cache[i]));
    }
    for (size_t i = 0; i < m->n_queue; i++)
        at_most(&t, m->queue[i]->due);
    at_most(&t, m->retry_at);
    at_most(&t, m->full_at);
    return t;
}
