/* SPDX-License-Identifier: ISC */
/*
 * The built-in multicast DNS responder and querier (RFC 6762) with
 * DNS-SD (RFC 6763), sans-I/O.
 *
 * The engine owns no socket, no clock and no thread. Its caller (the
 * socket shell, lib/backends/mdns/socket.c, or a unit test):
 *  - declares links: one per (interface, address family) it has a
 *    socket for, with the interface's addresses;
 *  - feeds every packet received with pl_mdns_input();
 *  - calls pl_mdns_process() when pl_mdns_next_deadline() is reached;
 *  - after every call, takes the packets to send with
 *    pl_mdns_next_packet() and the events with pl_mdns_next_event().
 * Time is a caller-supplied monotonic clock in milliseconds.
 *
 * Every name the engine publishes is probed (3 probes 250 ms apart,
 * RFC 6762 8.1) and announced (twice, 1 s apart, 8.3); a conflict
 * renames a service "Name #2", "Name #3"... and the host "host-2",
 * "host-3"... as Avahi does. Browsing queries with the RFC 6762 5.2
 * back-off (1 s, doubling, at most 60 min), keeps a TTL-honouring
 * cache per link and reports instances per link. See docs/MDNS.md.
 *
 * Threading: none; one engine is used by one thread at a time.
 */
#ifndef PL_MDNS_ENGINE_H
#define PL_MDNS_ENGINE_H

#include <stddef.h>
#include <stdint.h>

/* Bounds. */
#define PL_MDNS_MAX_LINKS 32
#define PL_MDNS_MAX_ADDRS 16         /* addresses per link */
#define PL_MDNS_MAX_PUBLICATIONS 64
#define PL_MDNS_MAX_BROWSES 32
#define PL_MDNS_MAX_CACHE 1024       /* cached records, all links */
#define PL_MDNS_MAX_INSTANCES 256    /* instances tracked per browse and link */
#define PL_MDNS_MAX_QUEUE 256        /* packets waiting to be sent */
#define PL_MDNS_MAX_EVENTS 1024      /* events waiting to be taken */
#define PL_MDNS_PACKET_SIZE 1440     /* packets built (fits an Ethernet MTU) */
#define PL_MDNS_MAX_RENAMES 100
/* TXT wire data accepted by pl_mdns_publish / pl_mdns_update_txt. A probe
 * (never split) must hold the question and the SRV and TXT records in one
 * packet: 1440 - 12 (header) - 139 (question, longest instance name, 135
 * bytes) - 89 (SRV, longest host name, 71 bytes) - 12 (TXT record header,
 * compressed owner) = 1188. RFC 6763 6.2 advises at most 1300. */
#define PL_MDNS_MAX_TXT 1188

/* TTLs (RFC 6762 10): host-bound records 120 s, others 75 min. */
#define PL_MDNS_TTL_HOST 120
#define PL_MDNS_TTL_OTHER 4500

typedef struct pl_mdns pl_mdns;

typedef struct pl_mdns_addr {
    int family;       /* AF_INET or AF_INET6 */
    uint8_t addr[16];
} pl_mdns_addr;

/* Create an engine whose host name is host_label + ".local" (the label
 * is truncated to 63 bytes; NULL or "" gives "peerlink"). seed varies
 * the random delays. PL_OK, PL_ERR_NOMEM. */
int pl_mdns_new(const char *host_label, uint32_t seed, pl_mdns **out);
/* Free without sending anything (call pl_mdns_shutdown first for goodbyes). */
void pl_mdns_free(pl_mdns *m);
/* Queue goodbyes (TTL 0) for everything published, due now. */
void pl_mdns_shutdown(pl_mdns *m, int64_t now);

/* The current host name, "label.local". */
const char *pl_mdns_host_name(const pl_mdns *m);

/* Declare a link: ifindex and family (AF_INET / AF_INET6) identify it;
 * addrs are the interface's addresses (both families may be given: they
 * are all published on the link). Re-declaring a link replaces its
 * addresses (the host records are announced again). PL_OK,
 * PL_ERR_TOO_LARGE (too many links or addresses), PL_ERR_INVALID. */
int pl_mdns_link_set(pl_mdns *m, uint32_t ifindex, int family, const pl_mdns_addr *addrs,
                     size_t n, int64_t now);

/* Publish a service instance. name: 1..63 bytes; type "_x._tcp";
 * domain "local"; txt in RFC 6763 wire form (copied; len 0 means an
 * empty record; NULL with len > 0 is PL_ERR_INVALID). *id identifies it
 * in events. PL_OK, PL_ERR_INVALID, PL_ERR_TOO_LARGE (txt_len >
 * PL_MDNS_MAX_TXT, or PL_MDNS_MAX_PUBLICATIONS reached), PL_ERR_NOMEM. */
int pl_mdns_publish(pl_mdns *m, const char *name, const char *type, const char *domain,
                    uint16_t port, const uint8_t *txt, size_t txt_len, int64_t now, uint32_t *id);
/* Replace the TXT record and announce it. PL_OK, PL_ERR_NOT_FOUND,
 * PL_ERR_INVALID (txt NULL with len > 0), PL_ERR_TOO_LARGE (txt_len >
 * PL_MDNS_MAX_TXT; the old record stays), PL_ERR_NOMEM. */
int pl_mdns_update_txt(pl_mdns *m, uint32_t id, const uint8_t *txt, size_t txt_len, int64_t now);
/* Withdraw: goodbyes are queued, due now; no event follows. */
void pl_mdns_unpublish(pl_mdns *m, uint32_t id, int64_t now);
/* Current instance name of a publication, or NULL. */
const char *pl_mdns_publication_name(const pl_mdns *m, uint32_t id);

/* Browse type ("_x._tcp") in domain ("local"). type
 * "_services._dns-sd._udp" browses the service types (RFC 6763 9): each
 * type is reported as an instance named "_x._tcp", SEEN then RESOLVED at
 * once with port 0, host "", no TXT and no address, and LOST. Once the
 * first answers are in (docs/MDNS.md), PL_MDNS_EV_ALL_FOR_NOW comes once.
 * PL_OK, PL_ERR_INVALID, PL_ERR_UNSUPPORTED (a domain other than
 * "local"), PL_ERR_TOO_LARGE, PL_ERR_NOMEM. */
int pl_mdns_browse(pl_mdns *m, const char *type, const char *domain, int64_t now, uint32_t *id);
/* Stop browsing; no event follows. */
void pl_mdns_unbrowse(pl_mdns *m, uint32_t id);

/* A received packet: on link (ifindex, family), from src (port). */
void pl_mdns_input(pl_mdns *m, uint32_t ifindex, int family, const uint8_t *pkt, size_t len,
                   const pl_mdns_addr *src, uint16_t src_port, int64_t now);
/* Run what is due at now. */
void pl_mdns_process(pl_mdns *m, int64_t now);
/* When pl_mdns_process() should run next (absolute ms), or -1: never. */
int64_t pl_mdns_next_deadline(const pl_mdns *m);

/* A packet to send. */
typedef struct pl_mdns_packet {
    uint32_t ifindex;
    int family;
    int unicast;          /* 0: to the mDNS group, port 5353; 1: to dst/dst_port */
    pl_mdns_addr dst;
    uint16_t dst_port;
    size_t len;
    uint8_t data[PL_MDNS_PACKET_SIZE];
} pl_mdns_packet;
/* Take the next packet due at now into *p: 1, or 0 if none is due. */
int pl_mdns_next_packet(pl_mdns *m, int64_t now, pl_mdns_packet *p);

typedef enum pl_mdns_event_type {
    PL_MDNS_EV_ESTABLISHED = 1, /* publication id live under name */
    PL_MDNS_EV_RENAMED,         /* publication id renamed to name (before its ESTABLISHED) */
    PL_MDNS_EV_FAILED,          /* publication id: no free name found */
    PL_MDNS_EV_SEEN,            /* browse id: instance name exists on the link */
    PL_MDNS_EV_RESOLVED,        /* browse id: instance resolved (again, if it changed) */
    PL_MDNS_EV_LOST,            /* browse id: instance gone from the link */
    PL_MDNS_EV_ALL_FOR_NOW      /* browse id: the answers to its first query are in, and the instances seen
                                   in them have resolved (RESOLVED came first) or had their time: once,
                                   ALL_FOR_NOW_WINDOW ms after the first query, or up to
                                   ALL_FOR_NOW_RESOLVE ms later (engine_int.h) */
} pl_mdns_event_type;

typedef struct pl_mdns_event {
    pl_mdns_event_type type;
    uint32_t id;
    uint32_t ifindex;
    int family;
    char name[64];      /* instance name */
    char host[256];     /* RESOLVED: SRV target, dotted, no final dot */
    uint16_t port;      /* RESOLVED */
    const uint8_t *txt; /* RESOLVED: wire form, borrowed until the next call of the engine */
    size_t txt_len;
    int has_addr;       /* RESOLVED */
    pl_mdns_addr addr;
} pl_mdns_event;
/* Take the next event into *ev: 1, or 0 if none. */
int pl_mdns_next_event(pl_mdns *m, pl_mdns_event *ev);

/* "Name" -> "Name #2", "Name #2" -> "Name #3" (Avahi's style), kept
 * within 63 bytes on a UTF-8 boundary. out has room for 64 bytes. */
void pl_mdns_alternative_service_name(const char *name, char *out);
/* "host" -> "host-2", "host-2" -> "host-3". */
void pl_mdns_alternative_host_name(const char *label, char *out);

#endif
