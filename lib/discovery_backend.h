/* SPDX-License-Identifier: ISC */
/*
 * The private discovery backend interface. A backend (Avahi, built-in
 * mDNS, Network.framework) implements pl_discovery_ops and reports
 * what it sees through the pl__publication_* and pl__browser_*
 * functions; the generic layer (discovery.c) owns the public objects,
 * validates input, merges what a backend reports per interface and
 * protocol into one instance view, and decides which events the
 * application sees. Backends hold their own state in the priv fields.
 */
#ifndef PL_DISCOVERY_BACKEND_H
#define PL_DISCOVERY_BACKEND_H

#include "internal.h"

typedef struct pl_discovery_ops {
    const char *name;
    /* Connect. Must not call back. PL_OK, PL_ERR_DAEMON, PL_ERR_NOMEM, ... */
    int (*open)(pl_discovery *d);
    void (*close)(pl_discovery *d);
    /* Start publishing p (name, type, port and txt are set). */
    int (*publish)(pl_publication *p);
    /* p->txt was replaced: announce it. On error the caller restores the old record. */
    int (*publish_update_txt)(pl_publication *p);
    /* Withdraw p and release p->priv. Must not call back. */
    void (*unpublish)(pl_publication *p);
    /* Start browsing b->type in b->domain. */
    int (*browse)(pl_browser *b);
    /* Stop browsing and release b->priv. Must not call back. */
    void (*unbrowse)(pl_browser *b);
    /* Optional: the backend's publications accept connections themselves
     * (Network.framework's nw_listener listens where it advertises). Hand
     * what p accepts to l as links, until p is withdrawn. NULL: the
     * application's listener accepts on the port it publishes. */
    int (*accept_into)(pl_publication *p, pl_listener *l);
} pl_discovery_ops;

struct pl_discovery {
    const pl_poll *poll;
    const pl_discovery_ops *ops;
    const void *options; /* backend-specific options, set only during ops->open, else NULL */
    void *priv;
    pl_publication *pubs;
    pl_browser *browsers;
};

struct pl_publication {
    pl_discovery *d;
    pl_publication *next;
    char *name;
    char *type;
    uint16_t port;
    pl_txt *txt;
    pl_publish_cb cb;
    void *userdata;
    void *priv;
    int busy;   /* inside the application's callback */
    int zombie; /* freed by the application during the callback */
};

struct pl_instance;

struct pl_browser {
    pl_discovery *d;
    pl_browser *next;
    char *type;
    char *domain;
    pl_browse_cb cb;
    void *userdata;
    void *priv;
    struct pl_instance *instances;
    uint64_t seq;
    int types;       /* browsing the service types (PL_SERVICE_TYPES), not instances of one */
    int all_for_now; /* 0; 1: the backend's first answers are in (PL_BROWSE_ALL_FOR_NOW waits for the
                        ADDs being settled); 2: sent, or the browser failed */
    int busy;
    int zombie;
};

/* The meta-type whose browse lists the service types on the network (RFC 6763 9). */

/* What a backend resolved for one instance on one interface and protocol. */
typedef struct pl_resolved {
    const char *name, *type, *domain, *host;
    int iface;    /* backend's interface index, or -1 */
    int proto;    /* backend's protocol tag (e.g. IPv4/IPv6 query), or -1 */
    uint16_t port;
    const uint8_t *txt; /* RFC 6763 wire format */
    size_t txt_len;
    const pl_address *address; /* NULL if none */
} pl_resolved;

/* Open a discovery object on one given backend with backend-specific
 * options (visible to ops->open as d->options, during that call only).
 * Same contract as pl_discovery_new(). */
int pl__discovery_open(const pl_poll *poll, const pl_discovery_ops *ops, const void *options,
                       pl_discovery **out);

/* Backend → generic layer. Each may run the application's callback and
 * so may free the object: touch nothing of it after the call, except
 * as the return value allows. */
/* Returns 1 if p is still alive afterwards, 0 if the application freed it. */
int pl__publication_event(pl_publication *p, pl_publish_event ev, int status);
/* Change the instance name (after a conflict). No callback. PL_OK or PL_ERR_NOMEM. */
int pl__publication_set_name(pl_publication *p, const char *name);
/* The instance exists on iface/proto and is being resolved there. Never calls back. */
void pl__browser_seen(pl_browser *b, const char *name, const char *type, const char *domain,
                      int iface, int proto);
/* These two return 1 if b is still alive afterwards, 0 if the application freed it.
 * Browsing the service types (b->types): r->name is a type ("_http._tcp"),
 * with no host, port, TXT or address. */
int pl__browser_resolved(pl_browser *b, const pl_resolved *r);
int pl__browser_lost(pl_browser *b, const char *name, const char *type, const char *domain,
                     int iface, int proto);
/* The daemon went away: every instance is reported removed. */
void pl__browser_lost_all(pl_browser *b);
void pl__browser_failed(pl_browser *b, int status);
/* The answers to the backend's first query are in, and every instance
 * seen by then has resolved (pl__browser_resolved) or will not soon: the
 * application gets PL_BROWSE_ALL_FOR_NOW once the ADDs under way are out
 * (the first call only counts). */
void pl__browser_all_for_now(pl_browser *b);

#ifdef PL_HAVE_AVAHI
extern const pl_discovery_ops pl__avahi_ops;
#endif
#ifdef PL_HAVE_MDNS
/* Options of the built-in mDNS backend (pl_discovery_new_mdns()). */
typedef struct pl__mdns_options {
    const char *const *interfaces; /* interface names; n == 0: the default choice */
    size_t n;
} pl__mdns_options;
extern const pl_discovery_ops pl__mdns_ops;
#endif

#endif
