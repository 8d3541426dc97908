/* SPDX-License-Identifier: ISC */
/*
 * The "mdns" discovery backend: the thin socket shell around the
 * sans-I/O engine (engine.c), driven by the application's pl_poll.
 *
 * Two UDP sockets on port 5353 (IPv4 and, where available, IPv6), both
 * with SO_REUSEADDR and SO_REUSEPORT so that another responder on the
 * host (avahi-daemon, Android's mdnsd / MdnsResponder, a second
 * peerlink process) shares the port. The group (224.0.0.251, ff02::fb)
 * is joined on each chosen interface; packets are sent per interface
 * (IP_MULTICAST_IF / IPV6_MULTICAST_IF) with TTL / hop limit 255;
 * IP_PKTINFO / IPV6_RECVPKTINFO tell which interface a packet came in
 * on; IP_RECVTTL / IPV6_RECVHOPLIMIT let off-link packets (TTL / hop
 * limit not 255) be dropped (see on_link()). Multicast loopback stays on, so that two processes on one host
 * see each other; the engine recognises its own records when they come
 * back (identical data is never a conflict).
 *
 * Interfaces: the list given to pl_discovery_new_mdns(), else the
 * comma-separated names in PEERLINK_MDNS_INTERFACES, else every
 * interface that is up and multicast-capable. A named interface must
 * exist (else PL_ERR_NOT_FOUND), be up and multicast-capable (a loopback
 * one need not say so: Linux loops multicast back on lo regardless) and
 * join the group (else PL_ERR_NO_INTERFACE, or PL_ERR_PERMISSION); with
 * none named, an unusable interface is skipped, and with none left
 * publishing fails with PL_ERR_NO_INTERFACE. IPv6 is not used on a
 * loopback interface (Linux has no IPv6 multicast route on lo).
 * Addresses are read once, when the backend opens.
 */
#include "discovery_backend.h"

#include "mdns/engine.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MDNS_PORT 5353
#define MAX_IFACES 32

typedef struct mdns_iface {
    uint32_t ifindex;
    int loopback;
    struct in_addr v4; /* first IPv4 address, for IP_MULTICAST_IF */
    int has_v4;
    /* Its subnets: a legacy query is answered only from an address on one. */
    struct {
        int family;
        uint8_t addr[16], mask[16];
    } nets[PL_MDNS_MAX_ADDRS];
    size_t n_nets;
} mdns_iface;

typedef struct mdns_ctx {
    pl_discovery *d;
    pl_mdns *m;
    int fd4, fd6;
    int ttl4, ttl6; /* IP_RECVTTL / IPV6_RECVHOPLIMIT are on: the TTL is checked */
    pl_watch *w4, *w6;
    pl_timeout *timer;
    int pumping, again;
    size_t n_links; /* (interface, family) pairs that joined the group */
    size_t n_ifs;
    mdns_iface ifs[MAX_IFACES];
} mdns_ctx;

typedef struct mdns_obj {
    uint32_t id;
} mdns_obj;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---------------------------------------------------------------- sending */

static void send_packet(mdns_ctx *c, const pl_mdns_packet *p)
{
    if (p->family == AF_INET && c->fd4 >= 0) {
        struct ip_mreqn mr;
        memset(&mr, 0, sizeof mr);
        mr.imr_ifindex = (int)p->ifindex;
        for (size_t i = 0; i < c->n_ifs; i++)
            if (c->ifs[i].ifindex == p->ifindex && c->ifs[i].has_v4)
                mr.imr_address = c->ifs[i].v4;
        setsockopt(c->fd4, IPPROTO_IP, IP_MULTICAST_IF, &mr, sizeof mr);
        struct sockaddr_in sa;
        memset(&sa, 0, sizeof sa);
        sa.sin_family = AF_INET;
        if (p->unicast) {
            memcpy(&sa.sin_addr, p->dst.addr, 4);
            sa.sin_port = htons(p->dst_port);
        } else {
            sa.sin_addr.s_addr = htonl(0xE00000FBu); /* 224.0.0.251 */
            sa.sin_port = htons(MDNS_PORT);
        }
        sendto(c->fd4, p->data, p->len, 0, (struct sockaddr *)&sa, sizeof sa);
    } else if (p->family == AF_INET6 && c->fd6 >= 0) {
        unsigned idx = p->ifindex;
        setsockopt(c->fd6, IPPROTO_IPV6, IPV6_MULTICAST_IF, &idx, sizeof idx);
        struct sockaddr_in6 sa;
        memset(&sa, 0, sizeof sa);
        sa.sin6_family = AF_INET6;
        sa.sin6_scope_id = p->ifindex;
        if (p->unicast) {
            memcpy(&sa.sin6_addr, p->dst.addr, 16);
            sa.sin6_port = htons(p->dst_port);
        } else {
            inet_pton(AF_INET6, "ff02::fb", &sa.sin6_addr);
            sa.sin6_port = htons(MDNS_PORT);
        }
        sendto(c->fd6, p->data, p->len, 0, (struct sockaddr *)&sa, sizeof sa);
    }
}

static void send_due(mdns_ctx *c, int64_t now)
{
    pl_mdns_packet *p = malloc(sizeof *p);
    if (!p)
        return;
    while (pl_mdns_next_packet(c->m, now, p))
        send_packet(c, p);
    free(p);
}

static void reschedule(mdns_ctx *c)
{
    int64_t t = pl_mdns_next_deadline(c->m);
    if (t < 0) {
        c->d->poll->timeout_update(c->timer, -1);
        return;
    }
    int64_t ms = t - now_ms();
    if (ms < 0)
        ms = 0;
    if (ms > 24 * 3600 * 1000)
        ms = 24 * 3600 * 1000;
    c->d->poll->timeout_update(c->timer, (int)ms);
}

/* An object-changing call from the application: run the engine from the loop soon. */
static void kick(mdns_ctx *c)
{
    if (c->pumping)
        c->again = 1;
    else
        c->d->poll->timeout_update(c->timer, 0);
}

/* ---------------------------------------------------------------- events to the generic layer */

static pl_publication *pub_of(pl_discovery *d, uint32_t id)
{
    for (pl_publication *p = d->pubs; p; p = p->next)
        if (p->priv && ((mdns_obj *)p->priv)->id == id)
            return p;
    return NULL;
}

static pl_browser *browser_of(pl_discovery *d, uint32_t id)
{
    for (pl_browser *b = d->browsers; b; b = b->next)
        if (b->priv && ((mdns_obj *)b->priv)->id == id)
            return b;
    return NULL;
}

static void dispatch(mdns_ctx *c, const pl_mdns_event *ev)
{
    pl_discovery *d = c->d;
    if (ev->type == PL_MDNS_EV_ESTABLISHED || ev->type == PL_MDNS_EV_RENAMED || ev->type == PL_MDNS_EV_FAILED) {
        pl_publication *p = pub_of(d, ev->id);
        if (!p)
            return;
        if (ev->type == PL_MDNS_EV_RENAMED) {
            if (pl__publication_set_name(p, ev->name) == PL_OK)
                pl__publication_event(p, PL_PUBLISH_RENAMED, PL_OK);
        } else if (ev->type == PL_MDNS_EV_ESTABLISHED) {
            pl__publication_event(p, PL_PUBLISH_ESTABLISHED, PL_OK);
        } else {
            pl__publication_event(p, PL_PUBLISH_FAILED, PL_ERR_COLLISION);
        }
        return;
    }
    pl_browser *b = browser_of(d, ev->id);
    if (!b)
        return;
    int iface = (int)ev->ifindex, proto = ev->family;
    switch (ev->type) {
    case PL_MDNS_EV_SEEN:
        pl__browser_seen(b, ev->name, b->type, b->domain, iface, proto);
        break;
    case PL_MDNS_EV_RESOLVED: {
        pl_address a;
        memset(&a, 0, sizeof a);
        a.family = ev->addr.family;
        memcpy(a.addr, ev->addr.addr, 16);
        a.ifindex = ev->ifindex;
        pl_resolved r = {ev->name, b->type, b->domain, ev->host, iface, proto, ev->port,
                         ev->txt, ev->txt_len, ev->has_addr ? &a : NULL};
        pl__browser_resolved(b, &r);
        break;
    }
    case PL_MDNS_EV_LOST:
        pl__browser_lost(b, ev->name, b->type, b->domain, iface, proto);
        break;
    case PL_MDNS_EV_ALL_FOR_NOW:
        pl__browser_all_for_now(b);
        break;
    default:
        break;
    }
}

/* Hand the engine's events to the generic layer. */
static void dispatch_events(mdns_ctx *c)
{
    pl_mdns_event ev;
    while (pl_mdns_next_event(c->m, &ev))
        dispatch(c, &ev); /* may publish, free publications and browsers: all looked up again */
}

static void pump(mdns_ctx *c)
{
    if (c->pumping) {
        c->again = 1;
        return;
    }
    c->pumping = 1;
    do {
        c->again = 0;
        int64_t now = now_ms();
        pl_mdns_process(c->m, now);
        send_due(c, now);
        dispatch_events(c);
    } while (c->again);
    c->pumping = 0;
    reschedule(c);
}

static void on_timer(pl_timeout *t, void *userdata)
{
    pump(userdata);
}

/* ---------------------------------------------------------------- receiving */

/* Is a packet on link-local grounds? RFC 6762 11: only packets from
 * the local link count. A router decrements the TTL / hop limit, and we
 * (like every conforming responder and querier) send with 255, so 255
 * proves the sender is on the link; anything else is dropped -- except
 * a query addressed to the mDNS group (224.0.0.251 / ff02::fb): the group
 * is link-scoped (never forwarded), and one-shot "legacy" queriers such
 * as dig send with the default multicast TTL of 1 (RFC 6762 6.7).
 * ttl < 0: not known (the socket option is unavailable): accepted. */
static int on_link(const uint8_t *pkt, size_t n, int ttl, int to_group)
{
    if (ttl < 0 || ttl == 255)
        return 1;
    int response = n >= 3 && (pkt[2] & 0x80);
    return to_group && !response;
}

static void add_net(mdns_iface *f, int family, const uint8_t *addr, const void *mask, size_t len)
{
    if (f->n_nets >= PL_MDNS_MAX_ADDRS)
        return;
    f->nets[f->n_nets].family = family;
    memcpy(f->nets[f->n_nets].addr, addr, len);
    memcpy(f->nets[f->n_nets].mask, mask, len);
    f->n_nets++;
}

/* Is src on one of the subnets of interface ifindex? IPv6 link-local
 * addresses always are. A legacy query (source port not 5353) is answered
 * by unicast to its source (RFC 6762 6.7): only a source on the link may
 * have one, or a 38-byte query spoofed from anywhere would send an answer
 * many times its size there (RFC 6762 11). */
static int src_on_subnet(const mdns_ctx *c, uint32_t ifindex, const pl_mdns_addr *src)
{
    if (src->family == AF_INET6 && src->addr[0] == 0xfe && (src->addr[1] & 0xc0) == 0x80)
        return 1;
    size_t len = src->family == AF_INET ? 4 : 16;
    for (size_t k = 0; k < c->n_ifs; k++) {
        if (c->ifs[k].ifindex != ifindex)
            continue;
        for (size_t i = 0; i < c->ifs[k].n_nets; i++) {
            const uint8_t *a = c->ifs[k].nets[i].addr, *m = c->ifs[k].nets[i].mask;
            if (c->ifs[k].nets[i].family != src->family)
                continue;
            size_t b = 0;
            while (b < len && (a[b] & m[b]) == (src->addr[b] & m[b]))
                b++;
            if (b == len)
                return 1;
        }
    }
    return 0;
}

/* Read what fd has (at most 64 packets) into the engine. */
static void read_socket(mdns_ctx *c, int fd, uint8_t *buf)
{
    int v4 = fd == c->fd4;
    for (int i = 0; i < 64; i++) {
        union {
            struct sockaddr_in v4;
            struct sockaddr_in6 v6;
        } from;
        union {
            char buf[256];
            struct cmsghdr align;
        } ctl;
        struct iovec iov = {buf, 9000};
        struct msghdr mh;
        memset(&mh, 0, sizeof mh);
        mh.msg_name = &from;
        mh.msg_namelen = sizeof from;
        mh.msg_iov = &iov;
        mh.msg_iovlen = 1;
        mh.msg_control = ctl.buf;
        mh.msg_controllen = sizeof ctl.buf;
        ssize_t n = recvmsg(fd, &mh, MSG_DONTWAIT);
        if (n < 0)
            break;
        if (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC))
            continue; /* cut short, or its interface / TTL lost: not trusted */
        uint32_t ifindex = 0;
        int ttl = (v4 ? c->ttl4 : c->ttl6) ? -2 : -1; /* -2: expected, not received */
        int to_group = 0;
        for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
            if (v4 && cm->cmsg_level == IPPROTO_IP && cm->cmsg_type == IP_PKTINFO &&
                cm->cmsg_len >= CMSG_LEN(sizeof(struct in_pktinfo))) {
                struct in_pktinfo pi;
                memcpy(&pi, CMSG_DATA(cm), sizeof pi);
                ifindex = (uint32_t)pi.ipi_ifindex;
                to_group = pi.ipi_addr.s_addr == htonl(0xE00000FBu); /* 224.0.0.251 */
            } else if (v4 && cm->cmsg_level == IPPROTO_IP && cm->cmsg_type == IP_TTL &&
                       cm->cmsg_len >= CMSG_LEN(sizeof(int))) {
                int t;
                memcpy(&t, CMSG_DATA(cm), sizeof t);
                ttl = t;
            } else if (!v4 && cm->cmsg_level == IPPROTO_IPV6 && cm->cmsg_type == IPV6_PKTINFO &&
                       cm->cmsg_len >= CMSG_LEN(sizeof(struct in6_pktinfo))) {
                struct in6_pktinfo pi;
                memcpy(&pi, CMSG_DATA(cm), sizeof pi);
                ifindex = pi.ipi6_ifindex;
                static const uint8_t group6[16] = {0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xfb};
                to_group = memcmp(&pi.ipi6_addr, group6, 16) == 0;
            } else if (!v4 && cm->cmsg_level == IPPROTO_IPV6 && cm->cmsg_type == IPV6_HOPLIMIT &&
                       cm->cmsg_len >= CMSG_LEN(sizeof(int))) {
                int t;
                memcpy(&t, CMSG_DATA(cm), sizeof t);
                ttl = t;
            }
        }
        if (!ifindex || ttl == -2 || !on_link(buf, (size_t)n, ttl, to_group))
            continue;
        pl_mdns_addr src;
        memset(&src, 0, sizeof src);
        uint16_t port;
        int family;
        if (v4) {
            family = AF_INET;
            src.family = AF_INET;
            memcpy(src.addr, &from.v4.sin_addr, 4);
            port = ntohs(from.v4.sin_port);
        } else {
            family = AF_INET6;
            src.family = AF_INET6;
            memcpy(src.addr, &from.v6.sin6_addr, 16);
            port = ntohs(from.v6.sin6_port);
        }
        int response = n >= 3 && (buf[2] & 0x80);
        if (port != MDNS_PORT && !response && !src_on_subnet(c, ifindex, &src))
            continue; /* a legacy query from off the link: no answer to send there */
        pl_mdns_input(c->m, ifindex, family, buf, (size_t)n, &src, port, now_ms());
        /* Take the events at once: 64 packets can hold more than the
         * engine's event queue. (pumping: a publish or free from a
         * callback only asks for another round, run by pump() next.) */
        int pumping = c->pumping;
        c->pumping = 1;
        dispatch_events(c);
        c->pumping = pumping;
    }
}

static void on_readable(pl_watch *w, int fd, unsigned events, void *userdata)
{
    mdns_ctx *c = userdata;
    uint8_t *buf = malloc(9000);
    if (!buf)
        return;
    /* Both sockets: a responder's IPv4 and IPv6 copies of one announcement
     * then usually reach the generic layer together, and the first event
     * carries both addresses. */
    if (c->fd4 >= 0)
        read_socket(c, c->fd4, buf);
    if (c->fd6 >= 0)
        read_socket(c, c->fd6, buf);
    free(buf);
    pump(c);
}

/* ---------------------------------------------------------------- sockets and interfaces */

/* *ttl_on: the TTL / hop limit of received packets will be reported.
 * The socket, or a negative pl_error (logged at level if_fail). */
static int open_socket(int family, int *ttl_on, pl_log_level if_fail)
{
    const char *fam = family == AF_INET ? "IPv4" : "IPv6";
    int fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        int e = errno;
        pl__log(if_fail, "mdns: %s socket: %s", fam, strerror(e));
        return pl__errno_error(e);
    }
    int one = 1, ttl = 255;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
#ifdef SO_REUSEPORT
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
#endif
    int ok;
    if (family == AF_INET) {
        unsigned char cttl = 255, loop = 1;
        setsockopt(fd, IPPROTO_IP, IP_MULTICAST_TTL, &cttl, sizeof cttl);
        setsockopt(fd, IPPROTO_IP, IP_MULTICAST_LOOP, &loop, sizeof loop);
        setsockopt(fd, IPPROTO_IP, IP_TTL, &ttl, sizeof ttl);
        setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof one);
        *ttl_on = setsockopt(fd, IPPROTO_IP, IP_RECVTTL, &one, sizeof one) == 0;
#ifdef IP_MULTICAST_ALL
        int zero = 0; /* only the groups joined on this socket */
        setsockopt(fd, IPPROTO_IP, IP_MULTICAST_ALL, &zero, sizeof zero);
#endif
        struct sockaddr_in sa;
        memset(&sa, 0, sizeof sa);
        sa.sin_family = AF_INET;
        sa.sin_port = htons(MDNS_PORT);
        ok = bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
    } else {
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
        setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, &ttl, sizeof ttl);
        setsockopt(fd, IPPROTO_IPV6, IPV6_UNICAST_HOPS, &ttl, sizeof ttl);
        setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_LOOP, &one, sizeof one);
        setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof one);
        *ttl_on = setsockopt(fd, IPPROTO_IPV6, IPV6_RECVHOPLIMIT, &one, sizeof one) == 0;
        struct sockaddr_in6 sa;
        memset(&sa, 0, sizeof sa);
        sa.sin6_family = AF_INET6;
        sa.sin6_port = htons(MDNS_PORT);
        ok = bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
    }
    if (!ok) {
        int e = errno;
        pl__log(if_fail, "mdns: %s bind to port %d: %s%s", fam, MDNS_PORT, strerror(e),
                e == EADDRINUSE ? " (another responder holds the port without SO_REUSEPORT)" : "");
        close(fd);
        return pl__errno_error(e);
    }
    return fd;
}

/* Join the group on one interface; logs a failure. 0, or the errno. */
static int join_group(mdns_ctx *c, const mdns_iface *f, const char *name, int family)
{
    int r;
    if (family == AF_INET) {
        struct ip_mreqn mr;
        memset(&mr, 0, sizeof mr);
        mr.imr_multiaddr.s_addr = htonl(0xE00000FBu);
        mr.imr_address = f->v4;
        mr.imr_ifindex = (int)f->ifindex;
        r = setsockopt(c->fd4, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mr, sizeof mr);
    } else {
        struct ipv6_mreq mr;
        memset(&mr, 0, sizeof mr);
        inet_pton(AF_INET6, "ff02::fb", &mr.ipv6mr_multiaddr);
        mr.ipv6mr_interface = f->ifindex;
        r = setsockopt(c->fd6, IPPROTO_IPV6, IPV6_JOIN_GROUP, &mr, sizeof mr);
    }
    if (r == 0 || errno == EADDRINUSE) /* EADDRINUSE: joined already */
        return 0;
    int e = errno;
    pl__log(PL_LOG_WARNING, "mdns: interface %s: joining %s: %s", name,
            family == AF_INET ? "224.0.0.251" : "ff02::fb", strerror(e));
    return e;
}

/* Is a the first entry of its interface in the list? */
static int first_entry(const struct ifaddrs *list, const struct ifaddrs *a)
{
    for (; list != a; list = list->ifa_next)
        if (list->ifa_name && strcmp(list->ifa_name, a->ifa_name) == 0)
            return 0;
    return 1;
}

/* Why an interface with these flags cannot be used, or NULL. */
static const char *unusable(unsigned flags)
{
    if (!(flags & IFF_UP))
        return "it is down";
    if (!(flags & IFF_MULTICAST) && !(flags & IFF_LOOPBACK))
        return "it cannot do multicast (no MULTICAST flag)";
    return NULL;
}

/* Choose the interfaces and declare their links. */
static int setup_links(mdns_ctx *c, const char *const *names, size_t n_names)
{
    uint32_t want[MAX_IFACES];
    size_t n_want = 0;
    for (size_t i = 0; i < n_names; i++) {
        unsigned idx = if_nametoindex(names[i]);
        if (!idx) {
            pl__log(PL_LOG_ERROR, "mdns: interface %s: no such interface", names[i]);
            return PL_ERR_NOT_FOUND;
        }
        if (n_want < MAX_IFACES)
            want[n_want++] = idx;
    }
    struct ifaddrs *ifa = NULL;
    if (getifaddrs(&ifa) != 0) {
        int e = errno;
        pl__log(PL_LOG_ERROR, "mdns: listing interfaces: %s", strerror(e));
        return pl__errno_error(e);
    }
    /* A named interface must be usable: a silent mDNS is hard to diagnose. */
    for (size_t i = 0; i < n_names; i++) {
        for (struct ifaddrs *a = ifa; a; a = a->ifa_next) {
            const char *why = a->ifa_name && strcmp(a->ifa_name, names[i]) == 0 ? unusable(a->ifa_flags) : NULL;
            if (why) {
                pl__log(PL_LOG_ERROR, "mdns: interface %s cannot be used: %s", names[i], why);
                freeifaddrs(ifa);
                return PL_ERR_NO_INTERFACE;
            }
        }
    }
    /* Pass 1: the interfaces. */
    for (struct ifaddrs *a = ifa; a; a = a->ifa_next) {
        if (!a->ifa_name)
            continue;
        unsigned idx = if_nametoindex(a->ifa_name);
        if (!idx)
            continue;
        int chosen;
        if (n_names) {
            chosen = 0;
            for (size_t i = 0; i < n_want; i++)
                chosen |= want[i] == idx;
        } else {
            chosen = (a->ifa_flags & IFF_UP) && (a->ifa_flags & IFF_MULTICAST);
        }
        size_t k = 0;
        while (k < c->n_ifs && c->ifs[k].ifindex != idx)
            k++;
        if (!chosen) {
            /* Once per interface (its first entry): why it is left out. */
            if (!n_names && first_entry(ifa, a))
                pl__log(PL_LOG_DEBUG, "mdns: interface %s skipped: %s", a->ifa_name,
                        (a->ifa_flags & IFF_UP) ? "it cannot do multicast (no MULTICAST flag)" : "it is down");
            continue;
        }
        if (k == c->n_ifs) {
            if (c->n_ifs >= MAX_IFACES) {
                pl__log(PL_LOG_WARNING, "mdns: interface %s skipped: more than %d interfaces", a->ifa_name,
                        MAX_IFACES);
                continue;
            }
            c->n_ifs++;
            memset(&c->ifs[k], 0, sizeof c->ifs[k]);
            c->ifs[k].ifindex = idx;
            c->ifs[k].loopback = (a->ifa_flags & IFF_LOOPBACK) != 0;
        }
        if (a->ifa_addr && a->ifa_addr->sa_family == AF_INET && !c->ifs[k].has_v4) {
            c->ifs[k].v4 = ((struct sockaddr_in *)a->ifa_addr)->sin_addr;
            c->ifs[k].has_v4 = 1;
        }
    }
    /* Pass 2: addresses per interface, links, group membership. */
    int64_t now = now_ms();
    for (size_t k = 0; k < c->n_ifs; k++) {
        pl_mdns_addr addrs[PL_MDNS_MAX_ADDRS];
        size_t n = 0;
        int has6 = 0;
        for (struct ifaddrs *a = ifa; a; a = a->ifa_next) {
            if (!a->ifa_name || !a->ifa_addr || if_nametoindex(a->ifa_name) != c->ifs[k].ifindex)
                continue;
            if (n >= PL_MDNS_MAX_ADDRS)
                break;
            if (a->ifa_addr->sa_family == AF_INET) {
                addrs[n].family = AF_INET;
                memcpy(addrs[n].addr, &((struct sockaddr_in *)a->ifa_addr)->sin_addr, 4);
                if (a->ifa_netmask)
                    add_net(&c->ifs[k], AF_INET, addrs[n].addr, &((struct sockaddr_in *)a->ifa_netmask)->sin_addr, 4);
                n++;
            } else if (a->ifa_addr->sa_family == AF_INET6) {
                addrs[n].family = AF_INET6;
                memcpy(addrs[n].addr, &((struct sockaddr_in6 *)a->ifa_addr)->sin6_addr, 16);
                if (a->ifa_netmask)
                    add_net(&c->ifs[k], AF_INET6, addrs[n].addr,
                            &((struct sockaddr_in6 *)a->ifa_netmask)->sin6_addr, 16);
                n++;
                has6 = 1;
            }
        }
        uint32_t idx = c->ifs[k].ifindex;
        char name[IF_NAMESIZE] = "?";
        if_indextoname(idx, name);
        int joined = 0, err = 0;
        if (c->ifs[k].has_v4 && c->fd4 >= 0) {
            int e = join_group(c, &c->ifs[k], name, AF_INET);
            if (!e) {
                pl_mdns_link_set(c->m, idx, AF_INET, addrs, n, now);
                joined |= 1;
            }
            err = err ? err : e;
        }
        if (has6 && !c->ifs[k].loopback && c->fd6 >= 0) {
            int e = join_group(c, &c->ifs[k], name, AF_INET6);
            if (!e) {
                pl_mdns_link_set(c->m, idx, AF_INET6, addrs, n, now);
                joined |= 2;
            }
            err = err ? err : e;
        }
        if (joined) {
            c->n_links += (joined & 1) + (joined >> 1);
            pl__log(PL_LOG_INFO, "mdns: using interface %s (%s%s%s)", name, joined & 1 ? "IPv4" : "",
                    joined == 3 ? ", " : "", joined & 2 ? "IPv6" : "");
        } else if (n_names) {
            pl__log(PL_LOG_ERROR, "mdns: interface %s cannot be used: %s", name,
                    err ? strerror(err) : "it has no address of a family with an open socket");
            freeifaddrs(ifa);
            return err ? (pl__errno_error(err) == PL_ERR_PERMISSION ? PL_ERR_PERMISSION : PL_ERR_NO_INTERFACE)
                       : PL_ERR_NO_INTERFACE;
        } else {
            pl__log(PL_LOG_WARNING, "mdns: interface %s skipped: %s", name,
                    err ? "the group could not be joined" : "it has no usable address");
        }
    }
    freeifaddrs(ifa);
    if (!c->n_links)
        pl__log(PL_LOG_WARNING, "mdns: no usable interface (none up with multicast and an address): "
                                "publishing will fail, browsing finds nothing");
    return PL_OK;
}

/* Split PEERLINK_MDNS_INTERFACES into names[]; returns how many. */
static size_t env_interfaces(char *buf, size_t cap, const char **names, size_t max)
{
    const char *env = getenv("PEERLINK_MDNS_INTERFACES");
    if (!env || !env[0])
        return 0;
    snprintf(buf, cap, "%s", env);
    size_t n = 0;
    for (char *save = NULL, *tok = strtok_r(buf, ", ", &save); tok && n < max; tok = strtok_r(NULL, ", ", &save))
        names[n++] = tok;
    return n;
}

/* ---------------------------------------------------------------- ops */

static void ctx_free(mdns_ctx *c)
{
    const pl_poll *poll = c->d->poll;
    if (c->w4)
        poll->watch_free(c->w4);
    if (c->w6)
        poll->watch_free(c->w6);
    if (c->timer)
        poll->timeout_free(c->timer);
    if (c->fd4 >= 0)
        close(c->fd4);
    if (c->fd6 >= 0)
        close(c->fd6);
    pl_mdns_free(c->m);
    free(c);
}

static int md_open(pl_discovery *d)
{
    const pl__mdns_options *opt = d->options;
    mdns_ctx *c = calloc(1, sizeof *c);
    if (!c)
        return PL_ERR_NOMEM;
    c->d = d;
    c->fd4 = c->fd6 = -1;
    char host[256] = "";
    if (gethostname(host, sizeof host - 1) != 0)
        host[0] = 0;
    host[sizeof host - 1] = 0;
    char *dot = strchr(host, '.');
    if (dot)
        *dot = 0;
    host[63] = 0; /* one DNS label at most */
    int err = pl_mdns_new(host, (uint32_t)getpid() ^ (uint32_t)now_ms(), &c->m);
    if (err != PL_OK) {
        free(c);
        return err;
    }
    /* One family missing is normal (IPv6 disabled): an error only without both. */
    c->fd4 = open_socket(AF_INET, &c->ttl4, PL_LOG_ERROR);
    c->fd6 = open_socket(AF_INET6, &c->ttl6, PL_LOG_INFO);
    if (c->fd4 < 0 && c->fd6 < 0) {
        err = c->fd4;
        c->fd4 = c->fd6 = -1;
        ctx_free(c);
        return err;
    }
    if (c->fd4 < 0)
        c->fd4 = -1;
    if (c->fd6 < 0)
        c->fd6 = -1;
    char envbuf[1024];
    const char *envnames[MAX_IFACES];
    const char *const *names = NULL;
    size_t n = 0;
    if (opt && opt->n) {
        names = opt->interfaces;
        n = opt->n;
    } else {
        n = env_interfaces(envbuf, sizeof envbuf, envnames, MAX_IFACES);
        names = envnames;
    }
    err = setup_links(c, names, n);
    if (err == PL_OK) {
        const pl_poll *poll = d->poll;
        c->timer = poll->timeout_new(poll, -1, on_timer, c);
        if (c->fd4 >= 0)
            c->w4 = poll->watch_new(poll, c->fd4, PL_WATCH_IN, on_readable, c);
        if (c->fd6 >= 0)
            c->w6 = poll->watch_new(poll, c->fd6, PL_WATCH_IN, on_readable, c);
        if (!c->timer || (c->fd4 >= 0 && !c->w4) || (c->fd6 >= 0 && !c->w6))
            err = PL_ERR_NOMEM;
    }
    if (err != PL_OK) {
        ctx_free(c);
        return err;
    }
    d->priv = c;
    return PL_OK;
}

static void md_close(pl_discovery *d)
{
    mdns_ctx *c = d->priv;
    int64_t now = now_ms();
    pl_mdns_shutdown(c->m, now);
    send_due(c, now);
    ctx_free(c);
    d->priv = NULL;
}

static int txt_wire(const pl_txt *txt, uint8_t **out, size_t *len)
{
    *len = 0;
    pl_txt_encode(txt, NULL, 0, len);
    *out = malloc(*len ? *len : 1);
    if (!*out)
        return PL_ERR_NOMEM;
    int err = pl_txt_encode(txt, *out, *len, len);
    if (err != PL_OK)
        free(*out);
    return err;
}

static int md_publish(pl_publication *p)
{
    mdns_ctx *c = p->d->priv;
    if (!c->n_links) {
        pl__log(PL_LOG_ERROR, "mdns: cannot publish \"%s\": no usable network interface", p->name);
        return PL_ERR_NO_INTERFACE;
    }
    mdns_obj *o = calloc(1, sizeof *o);
    if (!o)
        return PL_ERR_NOMEM;
    uint8_t *txt;
    size_t len;
    int err = txt_wire(p->txt, &txt, &len);
    if (err == PL_OK && len > PL_MDNS_MAX_TXT) {
        pl__log(PL_LOG_ERROR, "mdns: cannot publish \"%s\": its TXT record is %zu bytes, the limit is %d",
                p->name, len, PL_MDNS_MAX_TXT);
        free(txt);
        free(o);
        return PL_ERR_TOO_LARGE; /* the TXT record cannot be sent (docs/MDNS.md) */
    }
    if (err == PL_OK) {
        err = pl_mdns_publish(c->m, p->name, p->type, "local", p->port, txt, len, now_ms(), &o->id);
        free(txt);
    }
    if (err != PL_OK) {
        free(o);
        return err == PL_ERR_TOO_LARGE || err == PL_ERR_UNSUPPORTED ? PL_ERR_BACKEND : err;
    }
    p->priv = o;
    kick(c);
    return PL_OK;
}

static int md_publish_update_txt(pl_publication *p)
{
    mdns_ctx *c = p->d->priv;
    mdns_obj *o = p->priv;
    uint8_t *txt;
    size_t len;
    int err = txt_wire(p->txt, &txt, &len);
    if (err != PL_OK)
        return err;
    err = pl_mdns_update_txt(c->m, o->id, txt, len, now_ms());
    free(txt);
    if (err == PL_ERR_TOO_LARGE)
        pl__log(PL_LOG_ERROR, "mdns: cannot update \"%s\": its TXT record is %zu bytes, the limit is %d",
                p->name, len, PL_MDNS_MAX_TXT);
    if (err == PL_OK)
        kick(c);
    return err == PL_ERR_NOT_FOUND ? PL_ERR_BACKEND : err;
}

static void md_unpublish(pl_publication *p)
{
    mdns_ctx *c = p->d->priv;
    mdns_obj *o = p->priv;
    int64_t now = now_ms();
    pl_mdns_unpublish(c->m, o->id, now);
    send_due(c, now); /* the goodbyes, now: the discovery may be freed next */
    free(o);
    p->priv = NULL;
    if (!c->pumping)
        reschedule(c);
}

static int md_browse(pl_browser *b)
{
    mdns_ctx *c = b->d->priv;
    mdns_obj *o = calloc(1, sizeof *o);
    if (!o)
        return PL_ERR_NOMEM;
    int err = pl_mdns_browse(c->m, b->type, b->domain, now_ms(), &o->id);
    if (err != PL_OK) {
        free(o);
        return err == PL_ERR_TOO_LARGE ? PL_ERR_BACKEND : err;
    }
    b->priv = o;
    kick(c);
    return PL_OK;
}

static void md_unbrowse(pl_browser *b)
{
    mdns_ctx *c = b->d->priv;
    mdns_obj *o = b->priv;
    pl_mdns_unbrowse(c->m, o->id);
    free(o);
    b->priv = NULL;
}

const pl_discovery_ops pl__mdns_ops = {
    .name = "mdns",
    .open = md_open,
    .close = md_close,
    .publish = md_publish,
    .publish_update_txt = md_publish_update_txt,
    .unpublish = md_unpublish,
    .browse = md_browse,
    .unbrowse = md_unbrowse,
};

int pl_discovery_new_mdns(const pl_poll *poll, const char *const *interfaces, size_t n,
                          pl_discovery **out)
{
    if (!pl__poll_ok(poll) || !out || (n && !interfaces) || n > MAX_IFACES)
        return PL_ERR_INVALID;
    for (size_t i = 0; i < n; i++)
        if (!interfaces[i] || !interfaces[i][0] || strlen(interfaces[i]) >= IF_NAMESIZE)
            return PL_ERR_INVALID;
    pl__mdns_options opt = {interfaces, n};
    return pl__discovery_open(poll, &pl__mdns_ops, &opt, out);
}
