/* SPDX-License-Identifier: ISC */
/*
 * The Avahi discovery backend: avahi-client over D-Bus, driven by the
 * application's pl_poll through an AvahiPoll adapter (no thread).
 *
 * TXT records cross the boundary in RFC 6763 wire format, so the
 * project's own codec (txt.c) is the only one that interprets them.
 *
 * Daemon restarts: when avahi-daemon goes away, every Avahi object is
 * dropped, browsers report each instance as removed, and a new client
 * is created with AVAHI_CLIENT_NO_FAIL; when it reaches RUNNING again,
 * every publication and browser is registered anew.
 */
#include "discovery_backend.h"

#include <avahi-client/client.h>
#include <avahi-client/lookup.h>
#include <avahi-client/publish.h>
#include <avahi-common/alternative.h>
#include <avahi-common/error.h>
#include <avahi-common/malloc.h>
#include <avahi-common/strlst.h>
#include <avahi-common/watch.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>

/* ---------------------------------------------------------------- AvahiPoll over pl_poll */

struct AvahiWatch {
    const pl_poll *poll;
    pl_watch *w;
    AvahiWatchCallback cb;
    void *userdata;
    AvahiWatchEvent last;
};

struct AvahiTimeout {
    const pl_poll *poll;
    pl_timeout *t;
    AvahiTimeoutCallback cb;
    void *userdata;
};

typedef struct avahi_ctx {
    AvahiPoll api;
    AvahiClient *client;
    pl_discovery *d;
} avahi_ctx;

static unsigned to_pl_events(AvahiWatchEvent e)
{
    return ((e & AVAHI_WATCH_IN) ? PL_WATCH_IN : 0) | ((e & AVAHI_WATCH_OUT) ? PL_WATCH_OUT : 0);
}

static void aw_dispatch(pl_watch *w, int fd, unsigned events, void *userdata)
{
    AvahiWatch *aw = userdata;
    AvahiWatchEvent e = 0;
    if (events & PL_WATCH_IN)
        e |= AVAHI_WATCH_IN;
    if (events & PL_WATCH_OUT)
        e |= AVAHI_WATCH_OUT;
    if (events & PL_WATCH_ERR)
        e |= AVAHI_WATCH_ERR;
    if (events & PL_WATCH_HUP)
        e |= AVAHI_WATCH_HUP;
    aw->last = e;
    aw->cb(aw, fd, e, aw->userdata);
}

static AvahiWatch *aw_new(const AvahiPoll *api, int fd, AvahiWatchEvent event, AvahiWatchCallback cb,
                          void *userdata)
{
    const avahi_ctx *ctx = api->userdata;
    AvahiWatch *aw = calloc(1, sizeof *aw);
    if (!aw)
        return NULL;
    aw->poll = ctx->d->poll;
    aw->cb = cb;
    aw->userdata = userdata;
    aw->w = aw->poll->watch_new(aw->poll, fd, to_pl_events(event), aw_dispatch, aw);
    if (!aw->w) {
        free(aw);
        return NULL;
    }
    return aw;
}

static void aw_update(AvahiWatch *aw, AvahiWatchEvent event)
{
    aw->poll->watch_update(aw->w, to_pl_events(event));
}

static AvahiWatchEvent aw_get_events(AvahiWatch *aw)
{
    return aw->last;
}

static void aw_free(AvahiWatch *aw)
{
    aw->poll->watch_free(aw->w);
    free(aw);
}

/* Avahi gives absolute gettimeofday() times; pl_poll takes relative ms. */
static int relative_ms(const struct timeval *tv)
{
    if (!tv)
        return -1;
    struct timeval now;
    gettimeofday(&now, NULL);
    long long ms = (long long)(tv->tv_sec - now.tv_sec) * 1000 + (tv->tv_usec - now.tv_usec + 999) / 1000;
    if (ms < 0)
        return 0;
    return ms > INT32_MAX ? INT32_MAX : (int)ms;
}

static void at_dispatch(pl_timeout *t, void *userdata)
{
    AvahiTimeout *at = userdata;
    at->cb(at, at->userdata);
}

static AvahiTimeout *at_new(const AvahiPoll *api, const struct timeval *tv, AvahiTimeoutCallback cb,
                            void *userdata)
{
    const avahi_ctx *ctx = api->userdata;
    AvahiTimeout *at = calloc(1, sizeof *at);
    if (!at)
        return NULL;
    at->poll = ctx->d->poll;
    at->cb = cb;
    at->userdata = userdata;
    at->t = at->poll->timeout_new(at->poll, relative_ms(tv), at_dispatch, at);
    if (!at->t) {
        free(at);
        return NULL;
    }
    return at;
}

static void at_update(AvahiTimeout *at, const struct timeval *tv)
{
    at->poll->timeout_update(at->t, relative_ms(tv));
}

static void at_free(AvahiTimeout *at)
{
    at->poll->timeout_free(at->t);
    free(at);
}

/* ---------------------------------------------------------------- helpers */

static int map_error(int aerr)
{
    switch (aerr) {
    case AVAHI_OK: return PL_OK;
    case AVAHI_ERR_NO_MEMORY: return PL_ERR_NOMEM;
    case AVAHI_ERR_COLLISION: return PL_ERR_COLLISION;
    case AVAHI_ERR_INVALID_SERVICE_NAME:
    case AVAHI_ERR_INVALID_SERVICE_TYPE:
    case AVAHI_ERR_INVALID_RECORD:
    case AVAHI_ERR_INVALID_PORT: return PL_ERR_INVALID;
    case AVAHI_ERR_NO_DAEMON:
    case AVAHI_ERR_DISCONNECTED:
    case AVAHI_ERR_DBUS_ERROR: return PL_ERR_DAEMON;
    case AVAHI_ERR_ACCESS_DENIED:
    case AVAHI_ERR_NOT_PERMITTED: return PL_ERR_PERMISSION;
    default:
        pl__log(PL_LOG_ERROR, "avahi: %s", avahi_strerror(aerr)); /* PL_ERR_BACKEND alone says little */
        return PL_ERR_BACKEND;
    }
}

/* pl_txt → AvahiStringList via the wire format. *out NULL for an empty record. */
static int txt_to_strlst(const pl_txt *txt, AvahiStringList **out)
{
    *out = NULL;
    if (pl_txt_count(txt) == 0)
        return PL_OK;
    size_t len = 0;
    pl_txt_encode(txt, NULL, 0, &len);
    uint8_t *buf = malloc(len);
    if (!buf)
        return PL_ERR_NOMEM;
    int err = pl_txt_encode(txt, buf, len, &len);
    if (err == PL_OK && avahi_string_list_parse(buf, len, out) < 0)
        err = PL_ERR_NOMEM;
    free(buf);
    return err;
}

static AvahiClient *client_of(pl_discovery *d)
{
    return ((avahi_ctx *)d->priv)->client;
}

static int client_running(pl_discovery *d)
{
    AvahiClient *c = client_of(d);
    return c && avahi_client_get_state(c) == AVAHI_CLIENT_S_RUNNING;
}

/* ---------------------------------------------------------------- publishing */

typedef struct apub {
    AvahiEntryGroup *group;
    int renamed; /* a rename to report before the next ESTABLISHED */
} apub;

static void group_cb(AvahiEntryGroup *g, AvahiEntryGroupState state, void *userdata);

/* Bound on renames in one go: a network where 100 alternatives are taken is broken. */
#define MAX_RENAMES 100

static int pick_alternative(pl_publication *p)
{
    char *alt = avahi_alternative_service_name(p->name);
    if (!alt)
        return PL_ERR_NOMEM;
    int err = pl__publication_set_name(p, alt);
    avahi_free(alt);
    return err;
}

/* Add the service to a fresh or reset group and commit. A name taken by
 * another client of the same daemon is replaced by the next alternative
 * at once, and the rename is reported with the ESTABLISHED that follows. */
static int pub_register(pl_publication *p)
{
    apub *ap = p->priv;
    AvahiClient *c = client_of(p->d);
    if (!ap->group) {
        ap->group = avahi_entry_group_new(c, group_cb, p);
        if (!ap->group)
            return map_error(avahi_client_errno(c));
    }
    AvahiStringList *l = NULL;
    int err = txt_to_strlst(p->txt, &l);
    if (err != PL_OK)
        return err;
    int aerr;
    for (int tries = 0;; tries++) {
        aerr = avahi_entry_group_add_service_strlst(ap->group, AVAHI_IF_UNSPEC, AVAHI_PROTO_UNSPEC, 0,
                                                    p->name, p->type, NULL, NULL, p->port, l);
        if (aerr != AVAHI_ERR_COLLISION || tries >= MAX_RENAMES)
            break;
        if ((err = pick_alternative(p)) != PL_OK)
            break;
        ap->renamed = 1;
    }
    avahi_string_list_free(l);
    if (err != PL_OK)
        return err;
    if (aerr == AVAHI_OK)
        aerr = avahi_entry_group_commit(ap->group);
    return map_error(aerr);
}

static void group_cb(AvahiEntryGroup *g, AvahiEntryGroupState state, void *userdata)
{
    pl_publication *p = userdata;
    apub *ap = p->priv;
    if (!ap || (ap->group && ap->group != g))
        return;
    int err;
    switch (state) {
    case AVAHI_ENTRY_GROUP_ESTABLISHED:
        if (ap->renamed) {
            ap->renamed = 0;
            if (!pl__publication_event(p, PL_PUBLISH_RENAMED, PL_OK))
                return;
        }
        pl__publication_event(p, PL_PUBLISH_ESTABLISHED, PL_OK);
        break;
    case AVAHI_ENTRY_GROUP_COLLISION:
        /* Someone on the network has the name: take the next one. */
        err = pick_alternative(p);
        if (err == PL_OK) {
            ap->renamed = 1;
            avahi_entry_group_reset(g);
            err = pub_register(p);
        }
        if (err != PL_OK)
            pl__publication_event(p, PL_PUBLISH_FAILED, err);
        break;
    case AVAHI_ENTRY_GROUP_FAILURE:
        pl__publication_event(p, PL_PUBLISH_FAILED,
                              map_error(avahi_client_errno(avahi_entry_group_get_client(g))));
        break;
    default:
        break;
    }
}

static int av_publish(pl_publication *p)
{
    apub *ap = calloc(1, sizeof *ap);
    if (!ap)
        return PL_ERR_NOMEM;
    p->priv = ap;
    if (!client_running(p->d))
        return PL_OK; /* registered when the client reaches RUNNING */
    int err = pub_register(p);
    if (err != PL_OK) {
        if (ap->group)
            avahi_entry_group_free(ap->group);
        free(ap);
        p->priv = NULL;
    }
    return err;
}

static int av_publish_update_txt(pl_publication *p)
{
    apub *ap = p->priv;
    if (!ap->group || avahi_entry_group_is_empty(ap->group))
        return PL_OK; /* announced with the new record when registered */
    AvahiStringList *l = NULL;
    int err = txt_to_strlst(p->txt, &l);
    if (err != PL_OK)
        return err;
    int aerr = avahi_entry_group_update_service_txt_strlst(ap->group, AVAHI_IF_UNSPEC, AVAHI_PROTO_UNSPEC,
                                                           0, p->name, p->type, NULL, l);
    avahi_string_list_free(l);
    return map_error(aerr);
}

static void av_unpublish(pl_publication *p)
{
    apub *ap = p->priv;
    if (ap->group)
        avahi_entry_group_free(ap->group); /* withdraws: Avahi sends the goodbyes */
    free(ap);
    p->priv = NULL;
}

/* ---------------------------------------------------------------- browsing */

typedef struct aresolver {
    struct aresolver *next;
    pl_browser *b;
    AvahiIfIndex iface;
    AvahiProtocol proto;
    char *name, *type, *domain;
    AvahiServiceResolver *r;
    int done;    /* it reported FOUND or FAILURE */
    int awaited; /* it was there at Avahi's ALL_FOR_NOW: PL_BROWSE_ALL_FOR_NOW waits until it is done */
} aresolver;

typedef struct abrowse {
    AvahiServiceBrowser *sb;
    AvahiServiceTypeBrowser *tb; /* browsing the service types (b->types) instead */
    aresolver *resolvers;
    int all_for_now; /* Avahi's ALL_FOR_NOW came; not reported on yet */
} abrowse;

static void resolver_free(aresolver *ar)
{
    if (ar->r)
        avahi_service_resolver_free(ar->r);
    free(ar->name);
    free(ar->type);
    free(ar->domain);
    free(ar);
}

static void browse_drop(abrowse *ab)
{
    while (ab->resolvers) {
        aresolver *ar = ab->resolvers;
        ab->resolvers = ar->next;
        resolver_free(ar);
    }
    if (ab->sb)
        avahi_service_browser_free(ab->sb);
    ab->sb = NULL;
    if (ab->tb)
        avahi_service_type_browser_free(ab->tb);
    ab->tb = NULL;
}

/* Avahi's ALL_FOR_NOW came and every resolver it found then is done:
 * the generic layer sends PL_BROWSE_ALL_FOR_NOW after the ADDs under way. */
static void all_for_now_check(pl_browser *b)
{
    abrowse *ab = b->priv;
    if (!ab->all_for_now)
        return;
    for (const aresolver *ar = ab->resolvers; ar; ar = ar->next)
        if (ar->awaited && !ar->done)
            return;
    ab->all_for_now = 0;
    pl__browser_all_for_now(b);
}

static void resolve_cb(AvahiServiceResolver *r, AvahiIfIndex iface, AvahiProtocol proto,
                       AvahiResolverEvent event, const char *name, const char *type,
                       const char *domain, const char *host, const AvahiAddress *a, uint16_t port,
                       AvahiStringList *txt, AvahiLookupResultFlags flags, void *userdata)
{
    aresolver *ar = userdata;
    pl_browser *b = ar->b;
    ar->done = 1;
    if (event != AVAHI_RESOLVER_FOUND) {
        /* A failed resolution leaves the instance unreported until it resolves
         * (the resolver goes on); PL_BROWSE_ALL_FOR_NOW does not wait for it. */
        all_for_now_check(b);
        return;
    }
    pl_address addr = {0};
    const pl_address *ap = NULL;
    if (a && a->proto == AVAHI_PROTO_INET) {
        addr.family = AF_INET;
        memcpy(addr.addr, &a->data.ipv4.address, 4);
        ap = &addr;
    } else if (a && a->proto == AVAHI_PROTO_INET6) {
        addr.family = AF_INET6;
        memcpy(addr.addr, a->data.ipv6.address, 16);
        ap = &addr;
    }
    addr.ifindex = iface > 0 ? (uint32_t)iface : 0;
    /* An AvahiStringList is kept in reverse order and serialised back to
     * front, but the one a resolver hands over arrives in record order
     * (checked against python-zeroconf's raw TXT bytes), so it is
     * reversed here to serialise into the order on the wire. */
    AvahiStringList *ordered = avahi_string_list_reverse(avahi_string_list_copy(txt));
    if (txt && !ordered)
        return;
    size_t len = avahi_string_list_serialize(ordered, NULL, 0);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf) {
        avahi_string_list_free(ordered);
        return;
    }
    len = avahi_string_list_serialize(ordered, buf, len);
    avahi_string_list_free(ordered);
    pl_resolved res = {name, type, domain, host, iface, proto, port, buf, len, ap};
    int alive = pl__browser_resolved(b, &res); /* may free b (and ar) */
    free(buf);
    if (alive)
        all_for_now_check(b);
}

static void browse_cb(AvahiServiceBrowser *sb, AvahiIfIndex iface, AvahiProtocol proto,
                      AvahiBrowserEvent event, const char *name, const char *type,
                      const char *domain, AvahiLookupResultFlags flags, void *userdata)
{
    pl_browser *b = userdata;
    abrowse *ab = b->priv;
    aresolver **pr = &ab->resolvers;
    if (event == AVAHI_BROWSER_NEW || event == AVAHI_BROWSER_REMOVE) {
        while (*pr && !((*pr)->iface == iface && (*pr)->proto == proto && strcmp((*pr)->name, name) == 0 &&
                        strcasecmp((*pr)->type, type) == 0 && strcasecmp((*pr)->domain, domain) == 0))
            pr = &(*pr)->next;
    }
    switch (event) {
    case AVAHI_BROWSER_NEW: {
        if (*pr)
            return;
        aresolver *ar = calloc(1, sizeof *ar);
        if (!ar)
            return;
        ar->b = b;
        ar->iface = iface;
        ar->proto = proto;
        ar->name = pl__strdup(name);
        ar->type = pl__strdup(type);
        ar->domain = pl__strdup(domain);
        if (ar->name && ar->type && ar->domain)
            ar->r = avahi_service_resolver_new(avahi_service_browser_get_client(sb), iface, proto, name,
                                               type, domain, proto, 0, resolve_cb, ar);
        if (!ar->r) {
            resolver_free(ar);
            return;
        }
        ar->next = ab->resolvers;
        ab->resolvers = ar;
        pl__browser_seen(b, name, type, domain, iface, proto);
        break;
    }
    case AVAHI_BROWSER_REMOVE:
        if (*pr) {
            aresolver *ar = *pr;
            *pr = ar->next;
            resolver_free(ar);
        }
        if (pl__browser_lost(b, name, type, domain, iface, proto))
            all_for_now_check(b); /* it may have been the one resolve waited for */
        break;
    case AVAHI_BROWSER_ALL_FOR_NOW:
        /* Wait for the resolves of what it found so far, so that their ADDs come first. */
        for (aresolver *ar = ab->resolvers; ar; ar = ar->next)
            ar->awaited = 1;
        ab->all_for_now = 1;
        all_for_now_check(b);
        break;
    case AVAHI_BROWSER_FAILURE:
        pl__browser_failed(b, map_error(avahi_client_errno(avahi_service_browser_get_client(sb))));
        break;
    default:
        break;
    }
}

/* Browsing the service types (RFC 6763 9): each type is an instance with
 * nothing to resolve. */
static void type_browse_cb(AvahiServiceTypeBrowser *tb, AvahiIfIndex iface, AvahiProtocol proto,
                           AvahiBrowserEvent event, const char *type, const char *domain,
                           AvahiLookupResultFlags flags, void *userdata)
{
    pl_browser *b = userdata;
    switch (event) {
    case AVAHI_BROWSER_NEW: {
        pl_resolved res = {type, b->type, domain, "", iface, proto, 0, NULL, 0, NULL};
        pl__browser_resolved(b, &res);
        break;
    }
    case AVAHI_BROWSER_REMOVE:
        pl__browser_lost(b, type, b->type, domain, iface, proto);
        break;
    case AVAHI_BROWSER_ALL_FOR_NOW:
        pl__browser_all_for_now(b);
        break;
    case AVAHI_BROWSER_FAILURE:
        pl__browser_failed(b, map_error(avahi_client_errno(avahi_service_type_browser_get_client(tb))));
        break;
    default:
        break;
    }
}

static int browse_start(pl_browser *b)
{
    abrowse *ab = b->priv;
    AvahiClient *c = client_of(b->d);
    ab->all_for_now = 0;
    if (b->types) {
        ab->tb = avahi_service_type_browser_new(c, AVAHI_IF_UNSPEC, AVAHI_PROTO_UNSPEC, b->domain, 0,
                                                type_browse_cb, b);
        return ab->tb ? PL_OK : map_error(avahi_client_errno(c));
    }
    ab->sb = avahi_service_browser_new(c, AVAHI_IF_UNSPEC, AVAHI_PROTO_UNSPEC, b->type, b->domain, 0,
                                       browse_cb, b);
    return ab->sb ? PL_OK : map_error(avahi_client_errno(c));
}

static int av_browse(pl_browser *b)
{
    abrowse *ab = calloc(1, sizeof *ab);
    if (!ab)
        return PL_ERR_NOMEM;
    b->priv = ab;
    if (!client_running(b->d))
        return PL_OK; /* started when the client reaches RUNNING */
    int err = browse_start(b);
    if (err != PL_OK) {
        free(ab);
        b->priv = NULL;
    }
    return err;
}

static void av_unbrowse(pl_browser *b)
{
    abrowse *ab = b->priv;
    browse_drop(ab);
    free(ab);
    b->priv = NULL;
}

/* ---------------------------------------------------------------- the client */

static void client_cb(AvahiClient *c, AvahiClientState state, void *userdata);

static void daemon_lost(avahi_ctx *ctx)
{
    pl_discovery *d = ctx->d;
    pl__log(PL_LOG_WARNING, "avahi: lost the connection to avahi-daemon");
    for (pl_publication *p = d->pubs; p; p = p->next) {
        apub *ap = p->priv;
        ap->group = NULL; /* owned by the client freed below */
    }
    for (pl_browser *b = d->browsers; b; b = b->next) {
        abrowse *ab = b->priv;
        while (ab->resolvers) {
            aresolver *ar = ab->resolvers;
            ab->resolvers = ar->next;
            ar->r = NULL;
            resolver_free(ar);
        }
        ab->sb = NULL;
        ab->tb = NULL;
    }
    avahi_client_free(ctx->client);
    ctx->client = NULL; /* the new client's first callback can come from inside avahi_client_new() */
    int aerr = 0;
    ctx->client = avahi_client_new(&ctx->api, AVAHI_CLIENT_NO_FAIL, client_cb, ctx, &aerr);
    /* Report the loss last: the callbacks may free browsers. */
    for (pl_browser *b = d->browsers, *next; b; b = next) {
        next = b->next;
        if (!ctx->client)
            pl__browser_failed(b, PL_ERR_DAEMON);
        else
            pl__browser_lost_all(b);
    }
}

static void client_cb(AvahiClient *c, AvahiClientState state, void *userdata)
{
    avahi_ctx *ctx = userdata;
    if (!ctx->client)
        ctx->client = c; /* the first callback can come from inside avahi_client_new() */
    pl_discovery *d = ctx->d;
    switch (state) {
    case AVAHI_CLIENT_S_RUNNING:
        for (pl_browser *b = d->browsers, *next; b; b = next) {
            next = b->next;
            abrowse *ab = b->priv;
            if (!ab->sb && !ab->tb && browse_start(b) != PL_OK)
                pl__browser_failed(b, PL_ERR_BACKEND);
        }
        for (pl_publication *p = d->pubs, *next; p; p = next) {
            next = p->next;
            apub *ap = p->priv;
            if (ap->group && !avahi_entry_group_is_empty(ap->group))
                continue;
            int err = pub_register(p);
            if (err != PL_OK)
                pl__publication_event(p, PL_PUBLISH_FAILED, err);
        }
        break;
    case AVAHI_CLIENT_S_COLLISION:
    case AVAHI_CLIENT_S_REGISTERING:
        /* The host name changes: withdraw and register again once RUNNING. */
        for (pl_publication *p = d->pubs; p; p = p->next) {
            apub *ap = p->priv;
            if (ap->group)
                avahi_entry_group_reset(ap->group);
        }
        break;
    case AVAHI_CLIENT_FAILURE:
        if (avahi_client_errno(c) == AVAHI_ERR_DISCONNECTED)
            daemon_lost(ctx);
        break;
    default:
        break;
    }
}

static int av_open(pl_discovery *d)
{
    avahi_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx)
        return PL_ERR_NOMEM;
    ctx->d = d;
    ctx->api.userdata = ctx;
    ctx->api.watch_new = aw_new;
    ctx->api.watch_update = aw_update;
    ctx->api.watch_get_events = aw_get_events;
    ctx->api.watch_free = aw_free;
    ctx->api.timeout_new = at_new;
    ctx->api.timeout_update = at_update;
    ctx->api.timeout_free = at_free;
    d->priv = ctx;
    /* Without NO_FAIL, so that a missing daemon is reported now. */
    int aerr = 0;
    AvahiClient *c = avahi_client_new(&ctx->api, 0, client_cb, ctx, &aerr);
    if (!c) {
        free(ctx);
        d->priv = NULL;
        /* INFO: pl_discovery_new() then tries the next backend; it logs the outcome. */
        pl__log(PL_LOG_INFO, "avahi: cannot use avahi-daemon: %s", avahi_strerror(aerr));
        if (aerr == AVAHI_ERR_NO_MEMORY)
            return PL_ERR_NOMEM;
        return aerr == AVAHI_ERR_ACCESS_DENIED || aerr == AVAHI_ERR_NOT_PERMITTED ? PL_ERR_PERMISSION
                                                                                 : PL_ERR_DAEMON;
    }
    ctx->client = c;
    return PL_OK;
}

static void av_close(pl_discovery *d)
{
    avahi_ctx *ctx = d->priv;
    if (ctx->client)
        avahi_client_free(ctx->client);
    free(ctx);
    d->priv = NULL;
}

const pl_discovery_ops pl__avahi_ops = {
    .name = "avahi",
    .open = av_open,
    .close = av_close,
    .publish = av_publish,
    .publish_update_txt = av_publish_update_txt,
    .unpublish = av_unpublish,
    .browse = av_browse,
    .unbrowse = av_unbrowse,
};
