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
#include "internal.h"

#include "mdns/dns.h"
#include "mdns/engine.h"

#include <stdio.h>
#include <sys/socket.h>

/* ---------------------------------------------------------------- types */

enum { ST_PROBING = 0, ST_ANNOUNCING, ST_ESTABLISHED, ST_IDLE /* the host only: not started */ };

#define PROBES 3
#define PROBE_INTERVAL 250
#define ANNOUNCEMENTS 2
#define ANNOUNCE_INTERVAL 1000
#define BROWSE_MAX_INTERVAL (3600 * 1000)
#define RESOLVE_QUERIES 5
#define MDNS_PORT 5353

typedef struct group {
    uint32_t id; /* 0: the host */
    int state;
    int count;     /* probes or announcements sent in this state */
    int64_t next;  /* when the next one is due */
    int renamed;   /* a RENAMED to report before the next ESTABLISHED */
    int reported;  /* ESTABLISHED reported since the last (re)start */
    int renames;
    int failed;
    int fail_pending; /* a FAILED not queued yet (the event queue was full) */
} mgroup;

typedef struct pub {
    mgroup g;
    char name[64];
    char type[64];
    char domain[64];
    uint16_t port;
    uint8_t *txt;
    uint16_t txt_len;
    pl_dns_name svc;  /* type.domain */
    pl_dns_name inst; /* name.type.domain */
} pub;

typedef struct link {
    uint32_t ifindex;
    int family;
    size_t n;
    pl_mdns_addr addrs[PL_MDNS_MAX_ADDRS];
} mlink;

typedef struct centry {
    int link;
    uint16_t type;
    uint16_t rdlen;
    uint32_t ttl;
    int64_t recv, expire;
    uint64_t seq;  /* arrival order: breaks ties between records received in the same millisecond */
    int refreshed; /* refresh queries sent (80 %, 90 %) */
    pl_dns_name name;
    uint8_t *rdata; /* uncompressed */
} centry;

typedef struct inst {
    int link;
    char name[64];
    pl_dns_name full;
    uint32_t sig;           /* of the last RESOLVED report, 0: none */
    int complete;
    int queries;            /* resolve queries sent */
    int64_t next_query;
    pl_dns_name target;     /* the SRV target last seen */
    int has_target;
    int mark;
} minst;

typedef struct browse {
    uint32_t id;
    char type[64], domain[64];
    pl_dns_name name;
    int64_t next;
    int64_t interval;
    minst *insts;
    size_t n_insts;
} browse;

typedef struct qpkt {
    int64_t due;
    uint32_t tags[8];
    int n_tags; /* -1: tagged with every group */
    pl_mdns_packet p;
} qpkt;

typedef struct qevent {
    struct qevent *next;
    pl_mdns_event ev;
    uint8_t txt[];
} qevent;

struct pl_mdns {
    uint32_t rng;
    char host_label[64];
    char host_text[72];
    pl_dns_name host_name;
    pl_dns_name services; /* _services._dns-sd._udp.local */
    mgroup host;
    mlink links[PL_MDNS_MAX_LINKS];
    size_t n_links;
    pub *pubs[PL_MDNS_MAX_PUBLICATIONS];
    size_t n_pubs;
    uint32_t next_pub_id;
    browse *browses[PL_MDNS_MAX_BROWSES];
    size_t n_browses;
    uint32_t next_browse_id;
    centry *cache[PL_MDNS_MAX_CACHE];
    size_t n_cache;
    uint64_t cache_seq;
    qpkt *queue[PL_MDNS_MAX_QUEUE];
    size_t n_queue;
    qevent *ev_head, *ev_tail;
    size_t n_events;
    qevent *ev_current;
    int64_t clock;    /* the time of the current call */
    int64_t retry_at; /* an event could not be queued: run process() then; -1: none */
};

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

static int64_t rnd_between(pl_mdns *m, int lo, int hi)
{
    return lo + (int64_t)(rnd(m) % (uint32_t)(hi - lo + 1));
}

static uint32_t fnv(uint32_t h, const void *data, size_t n)
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
static size_t rdata_of(const pl_dns_record *r, uint8_t *buf, size_t cap)
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
static const uint8_t *rdata_view(const pl_dns_record *r, uint8_t *buf, size_t cap, size_t *n)
{
    switch (r->type) {
    case PL_DNS_A:
    case PL_DNS_AAAA:
    case PL_DNS_PTR:
    case PL_DNS_SRV:
        *n = rdata_of(r, buf, cap);
        return buf;
    default:
        *n = r->rdata ? r->rdlen : 0;
        return r->rdata ? r->rdata : buf;
    }
}

/* Equality of RDATA: names inside PTR and SRV compare case-insensitively. */
static int rdata_equal(uint16_t type, const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
    if (an != bn)
        return 0;
    if (type == PL_DNS_PTR)
        return wire_equal_ci(a, b, an);
    if (type == PL_DNS_SRV)
        return an >= 6 && memcmp(a, b, 6) == 0 && wire_equal_ci(a + 6, b + 6, an - 6);
    return memcmp(a, b, an) == 0;
}

/* Decode uncompressed RDATA back into r (the inverse of rdata_of). r->rdata borrows data. */
static int record_set_rdata(pl_dns_record *r, const uint8_t *data, size_t n)
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

static qevent *event_push(pl_mdns *m, pl_mdns_event_type type, uint32_t id, const mlink *l,
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

typedef struct orr {
    pl_dns_record r;
    uint32_t group;
    int shared;
    uint8_t data[16]; /* rdata storage for A/AAAA */
} orr;

typedef struct orrs {
    orr *v;
    size_t n, cap;
} orrs;

static orr *orrs_add(orrs *l)
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

static void host_records(pl_mdns *m, const mlink *l, orrs *out)
{
    for (size_t i = 0; i < l->n; i++) {
        orr *o = orrs_add(out);
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
static void pub_records(pl_mdns *m, const pub *p, int which, orrs *out)
{
    orr *o;
    if (which & 1) {
        if ((o = orrs_add(out))) {
            o->r.name = p->svc;
            o->r.type = PL_DNS_PTR;
            o->r.ttl = PL_MDNS_TTL_OTHER;
            o->r.u.ptr = p->inst;
            o->group = p->g.id;
            o->shared = 1;
        }
        if ((o = orrs_add(out))) {
            o->r.name = m->services;
            o->r.type = PL_DNS_PTR;
            o->r.ttl = PL_MDNS_TTL_OTHER;
            o->r.u.ptr = p->svc;
            o->group = p->g.id;
            o->shared = 1;
        }
    }
    if (which & 2) {
        if ((o = orrs_add(out))) {
            o->r.name = p->inst;
            o->r.type = PL_DNS_SRV;
            o->r.cache_flush = 1;
            o->r.ttl = PL_MDNS_TTL_HOST;
            o->r.u.srv.port = p->port;
            o->r.u.srv.target = m->host_name;
            o->group = p->g.id;
        }
        if ((o = orrs_add(out))) {
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

static int orrs_has(const orrs *l, const pl_dns_record *r)
{
    uint8_t a[PL_DNS_MAX_NAME + 8], b[PL_DNS_MAX_NAME + 8];
    size_t an, bn;
    const uint8_t *ad = rdata_view(r, a, sizeof a, &an);
    for (size_t i = 0; i < l->n; i++) {
        const pl_dns_record *x = &l->v[i].r;
        if (x->type != r->type || !pl_dns_name_equal(&x->name, &r->name))
            continue;
        const uint8_t *bd = rdata_view(x, b, sizeof b, &bn);
        if (rdata_equal(r->type, ad, an, bd, bn))
            return 1;
    }
    return 0;
}

/* ---------------------------------------------------------------- output */

typedef struct builder {
    pl_mdns *m;
    int link;
    int64_t due;
    int unicast;
    pl_mdns_addr dst;
    uint16_t dst_port;
    uint16_t id, flags;
    uint32_t tags[8];
    int n_tags;
    pl_dns_writer w;
    uint8_t buf[PL_MDNS_PACKET_SIZE];
    int nonempty;
    const pl_dns_question *repeat_q; /* questions repeated in every packet (legacy unicast) */
    size_t n_repeat_q;
} builder;

static void b_reset(builder *b)
{
    pl_dns_writer_init(&b->w, b->buf, sizeof b->buf, b->id, b->flags);
    b->nonempty = 0;
    for (size_t i = 0; i < b->n_repeat_q; i++)
        pl_dns_write_question(&b->w, &b->repeat_q[i]);
}

static void b_init(builder *b, pl_mdns *m, int link, int64_t due, uint16_t flags)
{
    memset(b, 0, sizeof *b);
    b->m = m;
    b->link = link;
    b->due = due;
    b->flags = flags;
    b_reset(b);
}

static void b_tag(builder *b, uint32_t group)
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

static void b_flush(builder *b)
{
    if (b->nonempty)
        queue_packet(b->m, b, pl_dns_writer_finish(&b->w));
    b_reset(b);
}

static void b_question(builder *b, const pl_dns_question *q)
{
    if (pl_dns_write_question(&b->w, q) != PL_OK) {
        b_flush(b);
        if (pl_dns_write_question(&b->w, q) != PL_OK)
            return;
    }
    b->nonempty = 1;
}

/* A record into section; returns 0 if it could not be written even into an empty packet. */
static int b_record(builder *b, int section, const pl_dns_record *r, int may_split)
{
    if (pl_dns_write_record(&b->w, section, r) == PL_OK) {
        b->nonempty = 1;
        return 1;
    }
    if (!may_split)
        return 0;
    b_flush(b);
    if (pl_dns_write_record(&b->w, section, r) == PL_OK) {
        b->nonempty = 1;
        return 1;
    }
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
static void queue_drop_group(pl_mdns *m, uint32_t id)
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

/* ---------------------------------------------------------------- engine */

static void name_from(pl_dns_name *n, const char *first, const char *suffix)
{
    if (pl_dns_name_from_labels(n, first, suffix) != PL_OK) {
        n->len = 1;
        n->wire[0] = 0;
    }
}

static void host_set_label(pl_mdns *m, const char *label)
{
    snprintf(m->host_label, sizeof m->host_label, "%s", label);
    snprintf(m->host_text, sizeof m->host_text, "%s.local", m->host_label);
    name_from(&m->host_name, m->host_label, "local");
}

static void group_start(pl_mdns *m, mgroup *g, int64_t now)
{
    g->state = ST_PROBING;
    g->count = 0;
    g->next = now + rnd_between(m, 0, PROBE_INTERVAL);
    g->reported = 0;
}

int pl_mdns_new(const char *host_label, uint32_t seed, pl_mdns **out)
{
    pl_mdns *m = calloc(1, sizeof *m);
    if (!m)
        return PL_ERR_NOMEM;
    m->rng = seed ? seed : 0x2545f491u;
    char label[64];
    snprintf(label, sizeof label, "%s", host_label && host_label[0] ? host_label : "peerlink");
    char *dot = strchr(label, '.');
    if (dot)
        *dot = 0;
    if (!label[0])
        snprintf(label, sizeof label, "peerlink");
    host_set_label(m, label);
    if (pl_dns_name_from_text(&m->services, "_services._dns-sd._udp.local") != PL_OK) {
        free(m);
        return PL_ERR_INVALID;
    }
    m->next_pub_id = 1;
    m->next_browse_id = 1;
    m->retry_at = -1;
    group_start(m, &m->host, 0);
    m->host.state = ST_IDLE; /* started by the first link or publication */
    m->host.next = -1;
    *out = m;
    return PL_OK;
}

static void cache_remove_at(pl_mdns *m, size_t i)
{
    free(m->cache[i]->rdata);
    free(m->cache[i]);
    m->cache[i] = m->cache[--m->n_cache];
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
        cache_remove_at(m, m->n_cache - 1);
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

static int host_live(const pl_mdns *m)
{
    return m->host.state == ST_ANNOUNCING || m->host.state == ST_ESTABLISHED;
}

/* Send records (answers) with ttl_override (>= 0) on every link, due now. */
static void send_records_all_links(pl_mdns *m, const orrs *recs, int with_host, long ttl_override,
                                   int64_t now)
{
    for (size_t li = 0; li < m->n_links; li++) {
        builder *b = malloc(sizeof *b);
        if (!b)
            return;
        b_init(b, m, (int)li, now, PL_DNS_FLAG_RESPONSE);
        for (size_t i = 0; i < recs->n; i++) {
            pl_dns_record r = recs->v[i].r;
            if (ttl_override >= 0)
                r.ttl = (uint32_t)ttl_override;
            b_record(b, 1, &r, 1);
        }
        if (with_host) {
            orrs h = {0};
            host_records(m, &m->links[li], &h);
            for (size_t i = 0; i < h.n; i++) {
                if (ttl_override >= 0)
                    h.v[i].r.ttl = (uint32_t)ttl_override;
                b_record(b, recs->n ? 3 : 1, &h.v[i].r, 1);
            }
            free(h.v);
        }
        b_flush(b);
        free(b);
    }
}

static void pub_goodbye(pl_mdns *m, const pub *p, int64_t now)
{
    if (p->g.state == ST_PROBING && p->g.count == 0)
        return; /* nothing was ever sent */
    orrs recs = {0};
    pub_records(m, p, 3, &recs);
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
    send_records_all_links(m, &recs, 0, 0, now);
    free(recs.v);
}

void pl_mdns_shutdown(pl_mdns *m, int64_t now)
{
    for (size_t i = m->n_pubs; i-- > 0;) {
        queue_drop_group(m, m->pubs[i]->g.id);
        pub_goodbye(m, m->pubs[i], now);
        free(m->pubs[i]->txt);
        free(m->pubs[i]);
        m->pubs[i] = NULL;
        m->n_pubs = i;
    }
    if (host_live(m) || (m->host.state == ST_PROBING && m->host.count > 0)) {
        orrs none = {0};
        send_records_all_links(m, &none, 1, 0, now);
    }
    m->host.state = ST_IDLE;
    m->host.count = 0;
    m->host.next = -1;
}

/* Announce the established host records again (twice, from now). */
static void host_reannounce(pl_mdns *m, int64_t now)
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
        group_start(m, &m->host, now);
    else
        host_reannounce(m, now); /* new addresses */
    /* Browses query on the new link soon. */
    for (size_t i = 0; i < m->n_browses; i++) {
        browse *b = m->browses[i];
        b->interval = 1000;
        b->next = now + rnd_between(m, 20, 120);
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
    group_start(m, &p->g, now);
    m->pubs[m->n_pubs++] = p;
    if (m->host.state == ST_IDLE)
        group_start(m, &m->host, now);
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
    queue_drop_group(m, id); /* delayed answers with the old record */
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
    queue_drop_group(m, id);
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
    if (pl_dns_name_from_text(&b->name, svc) != PL_OK) {
        free(b);
        return PL_ERR_INVALID;
    }
    b->id = m->next_browse_id++;
    /* RFC 6762 5.2: the first query after 20-120 ms, then 1 s, doubling. */
    b->next = now + rnd_between(m, 20, 120);
    b->interval = 1000;
    m->browses[m->n_browses++] = b;
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

/* ---------------------------------------------------------------- renaming */

void pl_mdns_alternative_service_name(const char *name, char *out)
{
    char base[64];
    snprintf(base, sizeof base, "%s", name);
    unsigned long n = 1;
    char *hash = strrchr(base, '#');
    if (hash && hash > base && hash[-1] == ' ' && hash[1]) {
        char *end;
        unsigned long v = strtoul(hash + 1, &end, 10);
        if (!*end && hash[1] >= '1' && hash[1] <= '9' && v < 1000000) {
            n = v;
            hash[-1] = 0;
        }
    }
    char suffix[16];
    snprintf(suffix, sizeof suffix, " #%lu", n + 1);
    size_t room = 63 - strlen(suffix);
    size_t len = strlen(base);
    if (len > room) {
        len = room;
        while (len > 0 && ((unsigned char)base[len] & 0xC0) == 0x80)
            len--; /* do not cut a UTF-8 sequence */
        base[len] = 0;
    }
    size_t bl = strlen(base), sl = strlen(suffix);
    memcpy(out, base, bl);
    memcpy(out + bl, suffix, sl + 1);
}

void pl_mdns_alternative_host_name(const char *label, char *out)
{
    char base[64];
    snprintf(base, sizeof base, "%s", label);
    unsigned long n = 1;
    char *dash = strrchr(base, '-');
    if (dash && dash > base && dash[1] >= '1' && dash[1] <= '9') {
        char *end;
        unsigned long v = strtoul(dash + 1, &end, 10);
        if (!*end && v < 1000000) {
            n = v;
            *dash = 0;
        }
    }
    char suffix[16];
    snprintf(suffix, sizeof suffix, "-%lu", n + 1);
    size_t room = 63 - strlen(suffix);
    if (strlen(base) > room)
        base[room] = 0;
    size_t bl = strlen(base), sl = strlen(suffix);
    memcpy(out, base, bl);
    memcpy(out + bl, suffix, sl + 1);
}

/* Queue what p has to report: FAILED, or RENAMED and ESTABLISHED once
 * announced. A flag is cleared only when its event was queued. */
static void pub_report(pl_mdns *m, pub *p)
{
    mgroup *g = &p->g;
    if (g->failed) {
        if (g->fail_pending && event_push(m, PL_MDNS_EV_FAILED, g->id, NULL, p->name, NULL, 0))
            g->fail_pending = 0;
        return;
    }
    if (g->reported || g->count == 0 || (g->state != ST_ANNOUNCING && g->state != ST_ESTABLISHED))
        return;
    if (g->renamed) {
        if (!event_push(m, PL_MDNS_EV_RENAMED, g->id, NULL, p->name, NULL, 0))
            return;
        g->renamed = 0;
    }
    if (event_push(m, PL_MDNS_EV_ESTABLISHED, g->id, NULL, p->name, NULL, 0))
        g->reported = 1;
}

static void pub_fail(pl_mdns *m, pub *p)
{
    p->g.failed = 1;
    p->g.next = -1;
    p->g.fail_pending = 1;
    pub_report(m, p);
}

static void pub_rename(pl_mdns *m, pub *p, int64_t now)
{
    queue_drop_group(m, p->g.id);
    if (++p->g.renames > PL_MDNS_MAX_RENAMES) {
        pub_fail(m, p);
        return;
    }
    char alt[64];
    pl_mdns_alternative_service_name(p->name, alt);
    char svc[140];
    snprintf(svc, sizeof svc, "%s.%s", p->type, p->domain);
    pl_dns_name inst;
    if (pl_dns_name_from_labels(&inst, alt, svc) != PL_OK) {
        pub_fail(m, p);
        return;
    }
    memcpy(p->name, alt, sizeof p->name);
    p->inst = inst;
    p->g.renamed = 1;
    group_start(m, &p->g, now);
}

static void host_rename(pl_mdns *m, int64_t now)
{
    char alt[64];
    pl_mdns_alternative_host_name(m->host_label, alt);
    host_set_label(m, alt);
    group_start(m, &m->host, now);
    m->host.renames++;
    /* The SRV records name the host: announce them again once it is live. */
    for (size_t i = 0; i < m->n_pubs; i++) {
        pub *p = m->pubs[i];
        queue_drop_group(m, p->g.id);
        if (p->g.state != ST_PROBING) {
            p->g.state = ST_ANNOUNCING;
            p->g.count = 0;
            p->g.next = now;
        }
    }
}

/* ---------------------------------------------------------------- probing and announcing */

static void send_probe(pl_mdns *m, const pl_dns_name *name, const orrs *auth, int link_host, int64_t now)
{
    for (size_t li = 0; li < m->n_links; li++) {
        builder *b = malloc(sizeof *b);
        if (!b)
            return;
        b_init(b, m, (int)li, now, 0);
        pl_dns_question q = {.name = *name, .type = PL_DNS_ANY, .qclass = PL_DNS_CLASS_IN};
        b_question(b, &q);
        orrs h = {0};
        const orrs *a = auth;
        if (link_host) {
            host_records(m, &m->links[li], &h);
            a = &h;
        }
        for (size_t i = 0; i < a->n; i++)
            b_record(b, 2, &a->v[i].r, 0);
        free(h.v);
        b_flush(b);
        free(b);
    }
}

static void group_step(pl_mdns *m, mgroup *g, pub *p, int64_t now)
{
    if (g->failed || g->next < 0 || g->next > now)
        return;
    if (g->state == ST_PROBING) {
        if (g->count < PROBES) {
            if (p) {
                orrs a = {0};
                pub_records(m, p, 2, &a);
                send_probe(m, &p->inst, &a, 0, now);
                free(a.v);
            } else {
                send_probe(m, &m->host_name, NULL, 1, now);
            }
            g->count++;
            g->next = now + PROBE_INTERVAL;
            return;
        }
        if (p && !host_live(m)) {
            g->next = m->host.next > now ? m->host.next : now + PROBE_INTERVAL;
            return; /* the SRV target must be ours before the service is announced */
        }
        g->state = ST_ANNOUNCING;
        g->count = 0;
    }
    if (g->state == ST_ANNOUNCING) {
        if (p && !host_live(m)) {
            /* The host name is being probed again (a rename or a conflict):
             * nothing naming it, and none of its records, before it is ours.
             * The announcements start over once it is live. */
            g->count = 0;
            g->next = m->host.next > now ? m->host.next : now + PROBE_INTERVAL;
            return;
        }
        orrs recs = {0};
        if (p)
            pub_records(m, p, 3, &recs);
        send_records_all_links(m, &recs, 1, -1, now);
        free(recs.v);
        g->count++;
        g->next = now + ANNOUNCE_INTERVAL;
        if (g->count >= ANNOUNCEMENTS) {
            g->state = ST_ESTABLISHED;
            g->next = -1;
        }
        if (p)
            pub_report(m, p);
    }
}

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
    const uint8_t *v = rdata_view(r, t->d, sizeof t->d, &t->n);
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
        host_records(m, &m->links[li], out);
}

/* 1 if every authority record of msg for name is one of ours: our own probe, come back. */
static int probe_is_ours(const orrs *ours, const pl_dns_message *msg, const pl_dns_name *name)
{
    const pl_dns_record *auth = msg->records + msg->n_answers;
    int any = 0;
    for (size_t i = 0; i < msg->n_authority; i++) {
        if (!pl_dns_name_equal(&auth[i].name, name))
            continue;
        if (!orrs_has(ours, &auth[i]))
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
    return same_name_type && !orrs_has(ours, r);
}

static void check_conflicts(pl_mdns *m, int li, const pl_dns_message *msg, int64_t now)
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
            if (r->ttl == 0 && orrs_has(&h, r)) {
                /* A goodbye for one of our host records: another responder on
                 * this host that shares the name went away. Announce ours again
                 * so that caches keep the address (RFC 6762 10.1). */
                host_reannounce(m, now);
                continue;
            }
            int hit = h.n ? conflicts(&h, r) : r->ttl != 0;
            if (hit) {
                if (m->host.state == ST_PROBING)
                    host_rename(m, now);
                else
                    group_start(m, &m->host, now);
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
        pub_records(m, p, 2, &ours);
        for (size_t i = 0; i < n; i++) {
            if (conflicts(&ours, &msg->records[i])) {
                if (p->g.state == ST_PROBING)
                    pub_rename(m, p, now);
                else
                    group_start(m, &p->g, now);
                break;
            }
        }
        free(ours.v);
    }
}

/* A probe from someone else for a name we are probing too (RFC 6762 8.2). */
static void check_probe_tie(pl_mdns *m, int li, const pl_dns_message *msg, int64_t now)
{
    if (!msg->n_authority)
        return;
    if (m->host.state == ST_PROBING) {
        orrs h = {0}, all = {0};
        host_records(m, &m->links[li], &h);
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
        pub_records(m, p, 2, &ours);
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
    if (!host_live(m))
        return;
    host_records(m, l, out);
    for (size_t i = 0; i < m->n_pubs; i++)
        if (m->pubs[i]->g.state != ST_PROBING && !m->pubs[i]->g.failed)
            pub_records(m, m->pubs[i], 3, out);
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
            ad = rdata_view(r, a, sizeof a, &an);
        const uint8_t *bd = rdata_view(k, b, sizeof b, &bn);
        if (rdata_equal(r->type, ad, an, bd, bn))
            return 1;
    }
    return 0;
}

static void answer_query(pl_mdns *m, int li, const pl_dns_message *msg, const pl_mdns_addr *src,
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
            if (known(msg, &o->r) || orrs_has(&ans, &o->r))
                continue;
            orr *n = orrs_add(&ans);
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
            if (!want || orrs_has(&ans, &o->r) || orrs_has(&add, &o->r))
                continue;
            orr *n = orrs_add(&add);
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
        b_reset(b);
    } else {
        int64_t due = now;
        if (delay && !msg->n_authority)
            due += rnd_between(m, 20, 120);
        b_init(b, m, li, due, PL_DNS_FLAG_RESPONSE);
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
            b_tag(b, list->v[i].group);
            b_record(b, sec, &r, 1);
        }
    }
    b_flush(b);
    free(b);
out:
    free(mine.v);
    free(ans.v);
    free(add.v);
}

/* ---------------------------------------------------------------- input: cache */

static void cache_put(pl_mdns *m, int li, const pl_dns_record *r, int64_t now)
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
        n = rdata_of(r, d, sizeof d);
        if (!n)
            return;
    }
    int64_t expire = r->ttl ? now + (int64_t)r->ttl * 1000 : now + 1000;
    for (size_t i = 0; i < m->n_cache; i++) {
        centry *c = m->cache[i];
        if (c->link != li || c->type != r->type || !pl_dns_name_equal(&c->name, &r->name) ||
            !rdata_equal(r->type, c->rdata, c->rdlen, data, n))
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
        cache_remove_at(m, victim);
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
static void cache_flush(pl_mdns *m, int li, const pl_dns_record *r, int64_t now)
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

/* ---------------------------------------------------------------- browsing */

static const centry *cache_newest(pl_mdns *m, int li, const pl_dns_name *name, uint16_t type, int64_t now)
{
    const centry *best = NULL;
    for (size_t i = 0; i < m->n_cache; i++) {
        const centry *c = m->cache[i];
        if (c->link != li || c->type != type || c->expire <= now || !pl_dns_name_equal(&c->name, name))
            continue;
        /* Live records before goodbyes, then the newest (last received). */
        if (!best || (best->ttl == 0 && c->ttl != 0) || ((best->ttl == 0) == (c->ttl == 0) && c->seq > best->seq))
            best = c;
    }
    return best;
}

static void send_resolve_query(pl_mdns *m, int li, minst *in, int64_t now)
{
    builder *b = malloc(sizeof *b);
    if (!b)
        return;
    b_init(b, m, li, now, 0);
    pl_dns_question q = {.name = in->full, .type = PL_DNS_SRV, .qclass = PL_DNS_CLASS_IN};
    b_question(b, &q);
    q.type = PL_DNS_TXT;
    b_question(b, &q);
    if (in->has_target) {
        q.name = in->target;
        q.type = PL_DNS_A;
        b_question(b, &q);
        q.type = PL_DNS_AAAA;
        b_question(b, &q);
    }
    b_flush(b);
    free(b);
}

static void browse_update_one(pl_mdns *m, browse *b, int64_t now)
{
    for (size_t i = 0; i < b->n_insts; i++)
        b->insts[i].mark = 0;
    for (size_t ci = 0; ci < m->n_cache; ci++) {
        const centry *c = m->cache[ci];
        if (c->type != PL_DNS_PTR || c->expire <= now || !pl_dns_name_equal(&c->name, &b->name))
            continue;
        pl_dns_name target, parent;
        target.len = (uint8_t)c->rdlen;
        memcpy(target.wire, c->rdata, c->rdlen);
        pl_dns_name_parent(&target, &parent);
        if (!pl_dns_name_equal(&parent, &b->name))
            continue;
        minst *in = NULL;
        for (size_t i = 0; i < b->n_insts; i++) {
            if (b->insts[i].link == c->link && pl_dns_name_equal(&b->insts[i].full, &target)) {
                in = &b->insts[i];
                break;
            }
        }
        if (!in) {
            char label[64];
            if (pl_dns_name_first_label(&target, label, sizeof label) != PL_OK || !label[0])
                continue;
            if (b->n_insts >= PL_MDNS_MAX_INSTANCES)
                continue;
            minst *v = realloc(b->insts, (b->n_insts + 1) * sizeof *v);
            if (!v)
                continue;
            b->insts = v;
            in = &b->insts[b->n_insts];
            memset(in, 0, sizeof *in);
            in->link = c->link;
            in->full = target;
            memcpy(in->name, label, sizeof label);
            in->next_query = now; /* resolve at once if the answer lacked something */
            if (!event_push(m, PL_MDNS_EV_SEEN, b->id, &m->links[c->link], in->name, NULL, 0))
                continue; /* not tracked: seen again on a later update */
            b->n_insts++;
        }
        in->mark = 1;
    }
    for (size_t i = 0; i < b->n_insts;) {
        minst *in = &b->insts[i];
        if (!in->mark) {
            if (!event_push(m, PL_MDNS_EV_LOST, b->id, &m->links[in->link], in->name, NULL, 0)) {
                i++; /* kept: reported lost on a later update */
                continue;
            }
            b->insts[i] = b->insts[--b->n_insts];
            continue;
        }
        i++;
        const mlink *l = &m->links[in->link];
        const centry *srv = cache_newest(m, in->link, &in->full, PL_DNS_SRV, now);
        const centry *txt = cache_newest(m, in->link, &in->full, PL_DNS_TXT, now);
        const centry *addr = NULL;
        in->has_target = 0;
        if (srv && srv->rdlen > 6) {
            in->has_target = 1;
            in->target.len = (uint8_t)(srv->rdlen - 6);
            memcpy(in->target.wire, srv->rdata + 6, srv->rdlen - 6);
            uint16_t mine = l->family == AF_INET ? PL_DNS_A : PL_DNS_AAAA;
            uint16_t other = l->family == AF_INET ? PL_DNS_AAAA : PL_DNS_A;
            addr = cache_newest(m, in->link, &in->target, mine, now);
            if (!addr)
                addr = cache_newest(m, in->link, &in->target, other, now);
        }
        in->complete = srv && txt && addr;
        if (!in->complete)
            continue;
        uint32_t sig = fnv(2166136261u, srv->rdata, srv->rdlen);
        sig = fnv(sig, txt->rdata, txt->rdlen);
        sig = fnv(sig, addr->rdata, addr->rdlen);
        sig |= 1;
        if (sig == in->sig)
            continue;
        qevent *q = event_push(m, PL_MDNS_EV_RESOLVED, b->id, l, in->name, txt->rdata, txt->rdlen);
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
}

static void browse_update(pl_mdns *m, int64_t now)
{
    for (size_t i = 0; i < m->n_browses; i++)
        browse_update_one(m, m->browses[i], now);
}

static void send_browse_query(pl_mdns *m, browse *b, int64_t now)
{
    for (size_t li = 0; li < m->n_links; li++) {
        builder *w = malloc(sizeof *w);
        if (!w)
            return;
        b_init(w, m, (int)li, now, 0);
        pl_dns_question q = {.name = b->name, .type = PL_DNS_PTR, .qclass = PL_DNS_CLASS_IN};
        b_question(w, &q);
        /* Known answers (RFC 6762 7.1): PTRs with more than half their TTL left. */
        for (size_t i = 0; i < m->n_cache; i++) {
            const centry *c = m->cache[i];
            if (c->link != (int)li || c->type != PL_DNS_PTR || c->ttl == 0 ||
                !pl_dns_name_equal(&c->name, &b->name))
                continue;
            int64_t left = (c->expire - now) / 1000;
            if (left <= (int64_t)c->ttl / 2)
                continue;
            pl_dns_record r;
            memset(&r, 0, sizeof r);
            r.name = c->name;
            r.type = PL_DNS_PTR;
            r.rrclass = PL_DNS_CLASS_IN;
            r.ttl = (uint32_t)left;
            if (record_set_rdata(&r, c->rdata, c->rdlen) != 0)
                continue;
            if (!b_record(w, 1, &r, 0))
                break; /* the rest would need a multi-packet query (TC): not sent */
        }
        b_flush(w);
        free(w);
    }
}

/* Is cache entry c something a browse needs kept fresh? */
static int wanted(pl_mdns *m, const centry *c)
{
    for (size_t i = 0; i < m->n_browses; i++) {
        browse *b = m->browses[i];
        if (c->type == PL_DNS_PTR && pl_dns_name_equal(&c->name, &b->name))
            return 1;
        for (size_t k = 0; k < b->n_insts; k++) {
            const minst *in = &b->insts[k];
            if (in->link != c->link)
                continue;
            if ((c->type == PL_DNS_SRV || c->type == PL_DNS_TXT) && pl_dns_name_equal(&c->name, &in->full))
                return 1;
            if ((c->type == PL_DNS_A || c->type == PL_DNS_AAAA) && in->has_target &&
                pl_dns_name_equal(&c->name, &in->target))
                return 1;
        }
    }
    return 0;
}

static int64_t refresh_time(const centry *c)
{
    if (c->ttl == 0 || c->refreshed >= 2)
        return -1;
    return c->recv + (int64_t)c->ttl * (c->refreshed ? 900 : 800);
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
            check_conflicts(m, li, msg, now);
            size_t n = msg->n_answers + msg->n_authority + msg->n_additional;
            for (size_t i = 0; i < n; i++)
                cache_flush(m, li, &msg->records[i], now);
            for (size_t i = 0; i < n; i++)
                if (i < msg->n_answers || i >= msg->n_answers + msg->n_authority)
                    cache_put(m, li, &msg->records[i], now);
            browse_update(m, now);
        }
    } else if ((msg->flags & 0x7800) == 0) {
        check_probe_tie(m, li, msg, now);
        static const pl_mdns_addr none;
        answer_query(m, li, msg, src ? src : &none, src_port, now);
    }
    pl_dns_free(msg);
}

void pl_mdns_process(pl_mdns *m, int64_t now)
{
    m->clock = now;
    if (m->retry_at >= 0) {
        /* Events that did not fit in the queue: queued now if there is room
         * (the browses are re-derived below). */
        m->retry_at = -1;
        for (size_t i = 0; i < m->n_pubs; i++)
            pub_report(m, m->pubs[i]);
    }
    group_step(m, &m->host, NULL, now);
    for (size_t i = 0; i < m->n_pubs; i++)
        group_step(m, &m->pubs[i]->g, m->pubs[i], now);
    for (size_t i = 0; i < m->n_browses; i++) {
        browse *b = m->browses[i];
        if (b->next <= now) {
            send_browse_query(m, b, now);
            b->next = now + b->interval;
            b->interval = b->interval * 2 > BROWSE_MAX_INTERVAL ? BROWSE_MAX_INTERVAL : b->interval * 2;
        }
        for (size_t k = 0; k < b->n_insts; k++) {
            minst *in = &b->insts[k];
            if (in->complete || in->queries >= RESOLVE_QUERIES || in->next_query > now)
                continue;
            send_resolve_query(m, in->link, in, now);
            in->next_query = now + (1000 << in->queries);
            in->queries++;
        }
    }
    /* Refresh queries at 80 % and 90 % of the TTL (RFC 6762 5.2), expiry. */
    for (size_t i = 0; i < m->n_cache;) {
        centry *c = m->cache[i];
        if (c->expire <= now) {
            cache_remove_at(m, i);
            continue;
        }
        int64_t rt = refresh_time(c);
        if (rt >= 0 && rt <= now) {
            c->refreshed++;
            if (wanted(m, c)) {
                builder *b = malloc(sizeof *b);
                if (b) {
                    b_init(b, m, c->link, now, 0);
                    pl_dns_question q = {.name = c->name, .type = c->type, .qclass = PL_DNS_CLASS_IN};
                    b_question(b, &q);
                    b_flush(b);
                    free(b);
                }
            }
        }
        i++;
    }
    browse_update(m, now);
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
        for (size_t k = 0; k < b->n_insts; k++)
            if (!b->insts[k].complete && b->insts[k].queries < RESOLVE_QUERIES)
                at_most(&t, b->insts[k].next_query);
    }
    for (size_t i = 0; i < m->n_cache; i++) {
        at_most(&t, m->cache[i]->expire);
        at_most(&t, refresh_time(m->cache[i]));
    }
    for (size_t i = 0; i < m->n_queue; i++)
        at_most(&t, m->queue[i]->due);
    at_most(&t, m->retry_at);
    return t;
}
