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
/* PL_MDNS_EV_ALL_FOR_NOW: the answer window after a browse's first query
 * (responders answer a shared record within 20-120 ms, and may hold it
 * up to 500 ms more to aggregate, RFC 6762 6 and 6.4; Avahi waits one
 * second too), then at most this long for the instances seen in it to
 * resolve. */
#define ALL_FOR_NOW_WINDOW 1000
#define ALL_FOR_NOW_RESOLVE 1000
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
    int afn_wait;           /* seen in the answer window, unresolved then: ALL_FOR_NOW waits for it */
} minst;

enum { AFN_QUERY = 0 /* before the first query */, AFN_WINDOW, AFN_RESOLVING, AFN_DONE };

typedef struct browse {
    uint32_t id;
    char type[64], domain[64];
    pl_dns_name name;
    pl_dns_name domain_name;
    int types; /* the service types (_services._dns-sd._udp): each PTR target is a type, nothing to resolve */
    int64_t next;
    int64_t interval;
    minst *insts;
    size_t n_insts;
    int afn;        /* AFN_*: where the browse is on the way to PL_MDNS_EV_ALL_FOR_NOW */
    int64_t afn_at; /* AFN_WINDOW: when the window ends; AFN_RESOLVING: the latest it comes */
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

void pl__mdns_answer_query(pl_mdns *m, int li, const pl_dns_message *msg, const pl_mdns_addr *src,
                           uint16_t src_port, int64_t now);
void pl__mdns_b_flush(builder *b);
void pl__mdns_b_init(builder *b, pl_mdns *m, int link, int64_t due, uint16_t flags);
void pl__mdns_b_question(builder *b, const pl_dns_question *q);
int pl__mdns_b_record(builder *b, int section, const pl_dns_record *r, int may_split);
void pl__mdns_b_reset(builder *b);
void pl__mdns_b_tag(builder *b, uint32_t group);
void pl__mdns_browse_update(pl_mdns *m, int64_t now);
void pl__mdns_cache_flush(pl_mdns *m, int li, const pl_dns_record *r, int64_t now);
void pl__mdns_cache_put(pl_mdns *m, int li, const pl_dns_record *r, int64_t now);
void pl__mdns_cache_remove_at(pl_mdns *m, size_t i);
void pl__mdns_check_conflicts(pl_mdns *m, int li, const pl_dns_message *msg, int64_t now);
void pl__mdns_check_probe_tie(pl_mdns *m, int li, const pl_dns_message *msg, int64_t now);
qevent *pl__mdns_event_push(pl_mdns *m, pl_mdns_event_type type, uint32_t id, const mlink *l, const char *name,
                            const uint8_t *txt, size_t txt_len);
uint32_t pl__mdns_fnv(uint32_t h, const void *data, size_t n);
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
