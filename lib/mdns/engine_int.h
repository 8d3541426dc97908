/* SPDX-License-Identifier: ISC */
/*
 * What the parts of the built-in mDNS engine share (engine.c: the engine,
 * its records and output; publish.c: probing, announcing, renaming;
 * input.c: conflicts, answers and the cache; browse.c: browsing). Not
 * installed; sans-I/O like the rest of the engine (tests/layering.sh).
 */
#ifndef PL_MDNS_ENGINE_INT_H
#define PL_MDNS_ENGINE_INT_H

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
#define REFRESH_QUERIES 4 /* per record received: at 80, 85, 90 and 95 % of its TTL (RFC 6762 5.2) */
/* PL_MDNS_EV_ALL_FOR_NOW: the answer window after a browse's first query
 * (responders answer a shared record within 20-120 ms, and may hold it
 * up to 500 ms more to aggregate, RFC 6762 6 and 6.4; Avahi waits one
 * second too), then at most this long for the instances seen in it to
 * resolve. */
#define ALL_FOR_NOW_WINDOW 1000
#define ALL_FOR_NOW_RESOLVE 1000
#define MDNS_PORT 5353
/* What one neighbour can make the cache hold and cost (RFC 6762 does not
 * bound it; docs/MDNS.md "Bounds against a flood"): */
#define CACHE_NEW_PER_PACKET 64                /* new records taken from one packet, the rest ignored */
#define CACHE_PER_SOURCE (PL_MDNS_MAX_CACHE / 4) /* entries attributed to one source address and link */
#define CACHE_PER_SET 16 /* records of one unique name and type (SRV, TXT, A, AAAA) per link; PTRs are shared */
#define CACHE_BUCKETS 2048 /* buckets of each cache index (a power of two, twice PL_MDNS_MAX_CACHE) */
#define CHANGED_SLOTS 2048 /* the names one packet changed (a power of two); more: every browse is re-derived */
/* RFC 6762 6: a record is multicast on a link at most once a second, except
 * in answer to a probe. Remembered per (link, record) in a direct-mapped
 * table: a collision forgets one, which costs at most one extra answer. */
#define ANSWER_INTERVAL 1000
#define ANSWER_SLOTS 1024

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

struct msrc;

/* A cached record. Indexed twice (docs/MDNS.md "The cache"): by its key
 * (link, type, name, rdata) to find it again, and by its set (link, type,
 * name) to find the records of a name; and listed with the other entries
 * of the source address that first sent it, oldest receipt first. */
typedef struct centry {
    int link;
    uint16_t type;
    uint16_t rdlen;
    uint32_t ttl;
    int64_t recv, expire;
    uint64_t seq;  /* arrival order: breaks ties between records received in the same millisecond */
    int refreshed; /* refresh queries sent (80, 85, 90, 95 % of the TTL, each plus refresh_jitter) */
    int refresh_jitter; /* 0-20 thousandths of the TTL, drawn when the record arrives (RFC 6762 5.2) */
    pl_dns_name name;
    uint8_t *rdata; /* uncompressed */
    uint32_t hname, hset, hkey; /* hashes of the name, of the set and of the key */
    size_t idx;                 /* in m->cache */
    struct centry *next_key;    /* the key index's bucket */
    struct centry *next_set, *prev_set; /* the set index's bucket */
    struct msrc *src;
    int confirmed;                /* received again since it was added */
    struct centry *older, *newer; /* the source's entries (confirmed or not) by receipt */
} centry;

/* A source address on a link with entries in the cache (input.c). */
typedef struct msrc {
    int link;
    pl_mdns_addr addr;
    size_t n;      /* entries attributed to it */
    size_t nprob;  /* of which unconfirmed */
    size_t pos;    /* in m->srcs, which is sorted by nprob, largest first */
    centry *prob_oldest, *prob_newest, *conf_oldest, *conf_newest;
} msrc;

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
    uint32_t hfull, htarget; /* name hashes of full and target */
    int afn_wait;           /* seen in the answer window, unresolved then: ALL_FOR_NOW waits for it */
} minst;

enum { AFN_QUERY = 0 /* before the first query */, AFN_WINDOW, AFN_RESOLVING, AFN_DONE };

typedef struct browse {
    uint32_t id;
    char type[64], domain[64];
    pl_dns_name name;
    uint32_t hname; /* pl__mdns_name_hash of name */
    pl_dns_name domain_name;
    int types; /* the service types (_services._dns-sd._udp): each PTR target is a type, nothing to resolve */
    int64_t next;
    int64_t interval;
    minst *insts;
    size_t n_insts, cap_insts;
    int untracked;  /* a PTR was left out: PL_MDNS_MAX_INSTANCES reached */
    int afn;        /* AFN_*: where the browse is on the way to PL_MDNS_EV_ALL_FOR_NOW */
    int64_t afn_at; /* AFN_WINDOW: when the window ends; AFN_RESOLVING: the latest it comes */
    /* Links (bit = index, PL_MDNS_MAX_LINKS <= 32) where another host asked
     * our question since our last query: the next one is not sent there (RFC 6762 7.3). */
    uint32_t asked_by_other;
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
    uint32_t hash_basis; /* of the cache's hashes: from the seed */
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
    centry *by_key[CACHE_BUCKETS], *by_set[CACHE_BUCKETS];
    /* Sources, most unconfirmed entries first (input.c). The sources with
     * more than c are srcs[0 .. above[c]), so that a count moves by one in
     * O(1) (a swap to the edge of its run). */
    msrc *srcs[PL_MDNS_MAX_CACHE + 1];
    size_t n_srcs;
    uint16_t above[PL_MDNS_MAX_CACHE + 1];
    /* The response being taken into the cache (pl__mdns_cache_begin). */
    int in_link;
    pl_mdns_addr in_addr;
    msrc *in_src; /* its source, once it added an entry (kept until cache_end even if empty) */
    size_t in_new;   /* new entries it added */
    uint64_t in_seq; /* m->cache_seq before it */
    uint32_t changed[CHANGED_SLOTS]; /* hashes of (link, name) of what it changed, 0: free */
    uint16_t changed_used[CHANGED_SLOTS / 2]; /* the slots taken, to clear them */
    size_t n_changed;
    int changed_all; /* too many: re-derive every browse in full */
    struct {
        uint32_t key;
        uint16_t seen; /* pl__mdns_drop_duplicate_answers: the other's copy (its index + 1), 0: none */
        int64_t at;
    } multicast[ANSWER_SLOTS]; /* when a record was last multicast (or goes: at > now), by (link, record) */
    qpkt *queue[PL_MDNS_MAX_QUEUE];
    size_t n_queue;
    qevent *ev_head, *ev_tail;
    size_t n_events;
    qevent *ev_current;
    int64_t clock;    /* the time of the current call */
    int64_t retry_at; /* an event could not be queued: run process() then; -1: none */
    /* Browses are re-derived from what changed, and in full (every instance) by the
     * process() after a browse or link is added or an event could not be queued
     * (full_next), and at full_at (-1: none) when a browse had more PTRs than
     * PL_MDNS_MAX_INSTANCES and one of its instances went: the others may fit now. */
    int full_next;
    int64_t full_at;
};

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

int pl__mdns_addr_is_ours(const pl_mdns *m, const pl_mdns_addr *a);
void pl__mdns_answer_query(pl_mdns *m, int li, const pl_dns_message *msg, const pl_mdns_addr *src,
                           uint16_t src_port, int64_t now);
void pl__mdns_b_flush(builder *b);
void pl__mdns_b_init(builder *b, pl_mdns *m, int link, int64_t due, uint16_t flags);
void pl__mdns_b_question(builder *b, const pl_dns_question *q);
int pl__mdns_b_record(builder *b, int section, const pl_dns_record *r, int may_split);
void pl__mdns_b_reset(builder *b);
void pl__mdns_b_tag(builder *b, uint32_t group);
void pl__mdns_browse_seen_query(pl_mdns *m, int li, const pl_dns_message *msg, const pl_mdns_addr *src,
                                int64_t now);
void pl__mdns_browse_update(pl_mdns *m, int all, int64_t now);
void pl__mdns_cache_begin(pl_mdns *m, int li, const pl_mdns_addr *src);
int pl__mdns_cache_changed(const pl_mdns *m, int li, uint32_t hname);
void pl__mdns_cache_end(pl_mdns *m);
const centry *pl__mdns_cache_find(pl_mdns *m, int li, uint16_t type, const pl_dns_name *name,
                                  const uint8_t *data, size_t n);
const centry *pl__mdns_cache_next_in_set(pl_mdns *m, const centry *c, int li, uint16_t type,
                                         const pl_dns_name *name, uint32_t hset, uint64_t after);
void pl__mdns_cache_flush(pl_mdns *m, int li, const pl_dns_record *r, int64_t now);
void pl__mdns_cache_put(pl_mdns *m, int li, const pl_dns_record *r, int64_t now);
void pl__mdns_cache_remove(pl_mdns *m, centry *c);
uint32_t pl__mdns_cache_set_hash(int li, uint16_t type, uint32_t hname);
void pl__mdns_check_conflicts(pl_mdns *m, int li, const pl_dns_message *msg, int64_t now);
void pl__mdns_check_probe_tie(pl_mdns *m, int li, const pl_dns_message *msg, int64_t now);
void pl__mdns_drop_duplicate_answers(pl_mdns *m, int li, const pl_dns_message *msg, int64_t now);
qevent *pl__mdns_event_push(pl_mdns *m, pl_mdns_event_type type, uint32_t id, const mlink *l, const char *name,
                            const uint8_t *txt, size_t txt_len);
uint32_t pl__mdns_fnv(uint32_t h, const void *data, size_t n);
uint32_t pl__mdns_name_hash(const pl_mdns *m, const pl_dns_name *n);
int pl__mdns_multicast_recent(pl_mdns *m, int li, const pl_dns_record *r, int64_t now);
void pl__mdns_group_start(pl_mdns *m, mgroup *g, int64_t now);
void pl__mdns_group_step(pl_mdns *m, mgroup *g, pub *p, int64_t now);
int pl__mdns_host_live(const pl_mdns *m);
void pl__mdns_host_reannounce(pl_mdns *m, int64_t now);
void pl__mdns_host_records(pl_mdns *m, const mlink *l, orrs *out);
void pl__mdns_host_rename(pl_mdns *m, int64_t now);
void pl__mdns_host_set_label(pl_mdns *m, const char *label);
orr *pl__mdns_orrs_add(orrs *l);
int pl__mdns_orrs_has(const orrs *l, const pl_dns_record *r);
void pl__mdns_pub_records(pl_mdns *m, const pub *p, int which, orrs *out);
void pl__mdns_pub_rename(pl_mdns *m, pub *p, int64_t now);
void pl__mdns_pub_report(pl_mdns *m, pub *p);
void pl__mdns_queue_drop_group(pl_mdns *m, uint32_t id);
int pl__mdns_rdata_equal(uint16_t type, const uint8_t *a, size_t an, const uint8_t *b, size_t bn);
size_t pl__mdns_rdata_of(const pl_dns_record *r, uint8_t *buf, size_t cap);
const uint8_t *pl__mdns_rdata_view(const pl_dns_record *r, uint8_t *buf, size_t cap, size_t *n);
int pl__mdns_record_set_rdata(pl_dns_record *r, const uint8_t *data, size_t n);
int64_t pl__mdns_refresh_time(const centry *c);
int64_t pl__mdns_rnd_between(pl_mdns *m, int lo, int hi);
void pl__mdns_send_browse_query(pl_mdns *m, browse *b, int64_t now);
void pl__mdns_send_records_all_links(pl_mdns *m, const orrs *recs, int with_host, long ttl_override,
                                     int64_t now);
void pl__mdns_send_resolve_query(pl_mdns *m, int li, minst *in, int64_t now);
int pl__mdns_wanted(pl_mdns *m, const centry *c);

#endif
