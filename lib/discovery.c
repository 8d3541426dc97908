/* SPDX-License-Identifier: ISC */
/*
 * The generic discovery layer: public objects, input validation, the
 * backend table, and the merge of per-interface, per-protocol reports
 * into one view per instance with add / update / remove events.
 */
#include "discovery_backend.h"

#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>

#ifdef PL_HAVE_APPLE
extern const pl_discovery_ops pl__apple_ops; /* lib/backends/apple/apple.c */
#endif
#ifdef PL_HAVE_NAN
extern const pl_discovery_ops pl__nan_ops; /* lib/backends/nan/wpas.c */
#define NAN_NAME ",nan"
#else
#define NAN_NAME ""
#endif

static const pl_discovery_ops *const backends[] = {
#ifdef PL_HAVE_APPLE
    &pl__apple_ops, /* Network.framework: first on Apple platforms */
#endif
#ifdef PL_HAVE_AVAHI
    &pl__avahi_ops,
#endif
#ifdef PL_HAVE_MDNS
    &pl__mdns_ops, /* the embedded default: used when no Avahi daemon answers */
#endif
#ifdef PL_HAVE_NAN
    &pl__nan_ops, /* Wi-Fi Aware (experimental, docs/WIFI-AWARE.md): only when named */
#endif
    NULL,
};

/* Never the default: Wi-Fi Aware finds peers in radio range, not on the network the others browse. */
static int named_only(const pl_discovery_ops *ops)
{
#ifdef PL_HAVE_NAN
    return ops == &pl__nan_ops;
#else
    (void)ops;
    return 0;
#endif
}

const char *pl_discovery_backends(void)
{
#ifdef PL_HAVE_APPLE /* in the order of backends[] */
#if defined(PL_HAVE_AVAHI) && defined(PL_HAVE_MDNS)
    return "apple,avahi,mdns";
#elif defined(PL_HAVE_AVAHI)
    return "apple,avahi";
#elif defined(PL_HAVE_MDNS)
    return "apple,mdns";
#else
    return "apple";
#endif
#endif
#if defined(PL_HAVE_AVAHI) && defined(PL_HAVE_MDNS)
    return "avahi,mdns" NAN_NAME;
#elif defined(PL_HAVE_AVAHI)
    return "avahi" NAN_NAME;
#elif defined(PL_HAVE_MDNS)
    return "mdns" NAN_NAME;
#else
    return "";
#endif
}

/* ---------------------------------------------------------------- addresses */

int pl_address_to_string(const pl_address *a, char *buf, size_t cap)
{
    if (!a || !buf || (a->family != AF_INET && a->family != AF_INET6))
        return PL_ERR_INVALID;
    char host[INET6_ADDRSTRLEN];
    if (!inet_ntop(a->family, a->addr, host, sizeof host))
        return PL_ERR_INVALID;
    char scope[IF_NAMESIZE + 1] = "";
    if (a->family == AF_INET6 && a->ifindex && IN6_IS_ADDR_LINKLOCAL((const struct in6_addr *)a->addr)) {
        char ifname[IF_NAMESIZE];
        if (if_indextoname(a->ifindex, ifname))
            snprintf(scope, sizeof scope, "%s", ifname);
        else
            snprintf(scope, sizeof scope, "%u", a->ifindex);
    }
    int n = snprintf(buf, cap, "%s%s%s", host, scope[0] ? "%" : "", scope);
    if (n < 0 || (size_t)n >= cap)
        return PL_ERR_TOO_LARGE;
    return PL_OK;
}

static int address_equal(const pl_address *x, const pl_address *y)
{
    size_t n = x->family == AF_INET ? 4 : 16;
    return x->family == y->family && x->ifindex == y->ifindex && memcmp(x->addr, y->addr, n) == 0;
}

/* ---------------------------------------------------------------- validation */

/* "_name._tcp" or "_name._udp"; name: 1..15 letters, digits, hyphens (RFC 6335 5.1). */
static int valid_type(const char *t)
{
    if (!t || t[0] != '_')
        return 0;
    const char *dot = strchr(t, '.');
    size_t n = dot ? (size_t)(dot - t - 1) : 0;
    if (n < 1 || n > 15)
        return 0;
    for (size_t i = 1; i <= n; i++) {
        char c = t[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-'))
            return 0;
    }
    return strcmp(dot, "._tcp") == 0 || strcmp(dot, "._udp") == 0;
}

static int valid_name(const char *n)
{
    size_t len = n ? strlen(n) : 0;
    return len >= 1 && len <= 63;
}

/* ---------------------------------------------------------------- services */

int pl_service_name_equal(const char *a, const char *b)
{
    if (!a || !b)
        return 0;
    for (;; a++, b++) {
        unsigned char x = (unsigned char)*a, y = (unsigned char)*b;
        /* ASCII letters only: a byte of a UTF-8 sequence is never in A-Z. */
        if (x >= 'A' && x <= 'Z')
            x = (unsigned char)(x + 32);
        if (y >= 'A' && y <= 'Z')
            y = (unsigned char)(y + 32);
        if (x != y)
            return 0;
        if (!x)
            return 1;
    }
}

/* Room for s and its NUL in a copy's block (0 for NULL). */
static size_t str_room(const char *s)
{
    return s ? strlen(s) + 1 : 0;
}

static const char *str_place(char **at, const char *s)
{
    if (!s)
        return NULL;
    size_t n = strlen(s) + 1;
    memcpy(*at, s, n);
    const char *copy = *at;
    *at += n;
    return copy;
}

int pl_service_dup(const pl_service *svc, pl_service **out)
{
    if (!svc || !out || (svc->n_addresses && !svc->addresses))
        return PL_ERR_INVALID;
    /* One block: the struct, the addresses (aligned after it), the strings;
     * the TXT record is its own object. */
    size_t n = svc->n_addresses;
    if (n > (SIZE_MAX / 2) / sizeof(pl_address))
        return PL_ERR_NOMEM;
    size_t strings = str_room(svc->name) + str_room(svc->type) + str_room(svc->domain) + str_room(svc->host);
    pl_service *c = malloc(sizeof *c + n * sizeof(pl_address) + strings);
    if (!c)
        return PL_ERR_NOMEM;
    pl_txt *txt = NULL;
    int err = svc->txt ? pl_txt_dup(svc->txt, &txt) : pl_txt_new(&txt);
    if (err != PL_OK) {
        free(c);
        return err;
    }
    pl_address *addrs = (pl_address *)(c + 1);
    if (n)
        memcpy(addrs, svc->addresses, n * sizeof *addrs);
    char *at = (char *)(addrs + n);
    c->name = str_place(&at, svc->name);
    c->type = str_place(&at, svc->type);
    c->domain = str_place(&at, svc->domain);
    c->host = str_place(&at, svc->host);
    c->port = svc->port;
    c->txt = txt;
    c->n_addresses = n;
    c->addresses = n ? addrs : NULL;
    *out = c;
    return PL_OK;
}

void pl_service_free(pl_service *svc)
{
    if (!svc)
        return;
    pl_txt_free((pl_txt *)svc->txt); /* the copy's own record */
    free(svc);
}

/* ---------------------------------------------------------------- discovery */

int pl__discovery_open(const pl_poll *poll, const pl_discovery_ops *ops, const void *options,
                       pl_discovery **out)
{
    pl_discovery *d = calloc(1, sizeof *d);
    if (!d)
        return PL_ERR_NOMEM;
    d->poll = poll;
    d->ops = ops;
    d->options = options;
    int err = ops->open(d);
    d->options = NULL;
    if (err != PL_OK) {
        free(d);
        return err;
    }
    *out = d;
    return PL_OK;
}

int pl_discovery_new(const pl_poll *poll, const char *backend, pl_discovery **out)
{
    if (!pl__poll_ok(poll) || !out)
        return PL_ERR_INVALID;
    int err = PL_ERR_UNSUPPORTED;
    for (size_t i = 0; backends[i]; i++) {
        const pl_discovery_ops *ops = backends[i];
        if (backend ? strcmp(backend, ops->name) != 0 : named_only(ops))
            continue;
        err = pl__discovery_open(poll, ops, NULL, out);
        if (err == PL_OK) {
            pl__log(PL_LOG_INFO, "discovery: using backend %s", ops->name);
            return PL_OK;
        }
        pl__log(backend ? PL_LOG_ERROR : PL_LOG_INFO, "discovery: backend %s: %s", ops->name, pl_strerror(err));
    }
    if (err == PL_ERR_UNSUPPORTED)
        pl__log(PL_LOG_ERROR, "discovery: no backend \"%s\" in this build (it has: %s)",
                backend ? backend : "", pl_discovery_backends());
    else if (!backend)
        pl__log(PL_LOG_ERROR, "discovery: no backend could be opened (last error: %s)", pl_strerror(err));
    return err;
}

static void publication_destroy(pl_publication *p);
static void browser_destroy(pl_browser *b);

void pl_discovery_free(pl_discovery *d)
{
    if (!d)
        return;
    while (d->pubs)
        pl_publication_free(d->pubs);
    while (d->browsers)
        pl_browser_free(d->browsers);
    d->ops->close(d);
    free(d);
}

const char *pl_discovery_backend(const pl_discovery *d)
{
    return d ? d->ops->name : NULL;
}

/* ---------------------------------------------------------------- publications */

int pl_publish(pl_discovery *d, const char *name, const char *type, uint16_t port,
               const pl_txt *txt, pl_publish_cb cb, void *userdata, pl_publication **out)
{
    if (!d || !out)
        return PL_ERR_INVALID;
    if (!valid_name(name)) {
        pl__log(PL_LOG_ERROR, "publish: the instance name must be 1 to 63 bytes (it is %zu)",
                name ? strlen(name) : 0);
        return PL_ERR_INVALID;
    }
    if (!valid_type(type)) {
        pl__log(PL_LOG_ERROR, "publish: bad service type \"%.64s\": want \"_name._tcp\" or \"_name._udp\", "
                              "name 1 to 15 letters, digits or hyphens", type ? type : "(null)");
        return PL_ERR_INVALID;
    }
    pl_publication *p = calloc(1, sizeof *p);
    if (!p)
        return PL_ERR_NOMEM;
    p->d = d;
    p->port = port;
    p->cb = cb;
    p->userdata = userdata;
    p->name = pl__strdup(name);
    p->type = pl__strdup(type);
    int err = txt ? pl_txt_dup(txt, &p->txt) : pl_txt_new(&p->txt);
    if (err == PL_OK && (!p->name || !p->type))
        err = PL_ERR_NOMEM;
    if (err == PL_OK)
        err = d->ops->publish(p);
    if (err != PL_OK) {
        publication_destroy(p);
        return err;
    }
    p->next = d->pubs;
    d->pubs = p;
    *out = p;
    return PL_OK;
}

int pl_publication_set_txt(pl_publication *p, const pl_txt *txt)
{
    if (!p || p->zombie)
        return PL_ERR_INVALID;
    pl_txt *fresh = NULL;
    int err = txt ? pl_txt_dup(txt, &fresh) : pl_txt_new(&fresh);
    if (err != PL_OK)
        return err;
    pl_txt *old = p->txt;
    p->txt = fresh;
    err = p->d->ops->publish_update_txt(p);
    if (err != PL_OK) {
        p->txt = old;
        pl_txt_free(fresh);
        return err;
    }
    pl_txt_free(old);
    return PL_OK;
}

const char *pl_publication_name(const pl_publication *p)
{
    return p ? p->name : NULL;
}

static void publication_destroy(pl_publication *p)
{
    free(p->name);
    free(p->type);
    pl_txt_free(p->txt);
    free(p);
}

void pl_publication_free(pl_publication *p)
{
    if (!p || p->zombie)
        return;
    for (pl_publication **pp = &p->d->pubs; *pp; pp = &(*pp)->next) {
        if (*pp == p) {
            *pp = p->next;
            break;
        }
    }
    if (p->priv)
        p->d->ops->unpublish(p);
    if (p->busy) {
        p->zombie = 1; /* freed when the callback returns */
        return;
    }
    publication_destroy(p);
}

int pl__publication_set_name(pl_publication *p, const char *name)
{
    char *n = pl__strdup(name);
    if (!n)
        return PL_ERR_NOMEM;
    free(p->name);
    p->name = n;
    return PL_OK;
}

int pl__publication_event(pl_publication *p, pl_publish_event ev, int status)
{
    if (ev == PL_PUBLISH_RENAMED)
        pl__log(PL_LOG_WARNING, "publish: the name was taken on the network: renamed to \"%s\"", p->name);
    else if (ev == PL_PUBLISH_FAILED)
        pl__log(PL_LOG_ERROR, "publish: \"%s\" failed: %s", p->name, pl_strerror(status));
    else if (ev == PL_PUBLISH_ESTABLISHED)
        pl__log(PL_LOG_DEBUG, "publish: \"%s\" established", p->name);
    if (!p->cb)
        return 1;
    p->busy++;
    p->cb(p, ev, status, p->name, p->userdata);
    if (--p->busy == 0 && p->zombie) {
        publication_destroy(p);
        return 0;
    }
    return !p->zombie;
}

/* ---------------------------------------------------------------- browsing */

/* How long a new instance's ADD waits for the interfaces and protocols
 * it was seen on but not yet resolved on, so that the first event
 * carries every address in the usual case. */
#define SETTLE_MS 250

/* One instance as reported on one interface and protocol. */
struct pl_source {
    struct pl_source *next;
    int iface, proto;
    int resolved;  /* host, port, txt and address are set */
    uint64_t seq;  /* when it was last resolved: the newest one gives host, port and TXT */
    char *host;
    uint16_t port;
    pl_txt *txt;
    int has_address;
    pl_address address;
};

struct pl_instance {
    struct pl_instance *next;
    pl_browser *b;
    char *name, *type, *domain;
    struct pl_source *sources;
    int announced;
    pl_timeout *settle; /* bounds the wait before ADD */
    /* The view last shown to the application. */
    char *host;
    uint16_t port;
    pl_txt *txt;
    pl_address *addresses;
    size_t n_addresses;
};

static void source_free(struct pl_source *s)
{
    free(s->host);
    pl_txt_free(s->txt);
    free(s);
}

static void instance_free(struct pl_instance *in)
{
    while (in->sources) {
        struct pl_source *s = in->sources;
        in->sources = s->next;
        source_free(s);
    }
    if (in->settle)
        in->b->d->poll->timeout_free(in->settle);
    free(in->name);
    free(in->type);
    free(in->domain);
    free(in->host);
    pl_txt_free(in->txt);
    free(in->addresses);
    free(in);
}

static struct pl_instance **instance_find(pl_browser *b, const char *name, const char *type,
                                          const char *domain)
{
    struct pl_instance **pi = &b->instances;
    for (; *pi; pi = &(*pi)->next) {
        struct pl_instance *in = *pi;
        if (pl_service_name_equal(in->name, name) && strcasecmp(in->type, type) == 0 &&
            strcasecmp(in->domain, domain) == 0)
            break;
    }
    return pi;
}

static struct pl_instance *instance_get(pl_browser *b, const char *name, const char *type,
                                        const char *domain)
{
    struct pl_instance **pi = instance_find(b, name, type, domain);
    if (*pi)
        return *pi;
    struct pl_instance *in = calloc(1, sizeof *in);
    if (!in)
        return NULL;
    in->b = b;
    in->name = pl__strdup(name);
    in->type = pl__strdup(type);
    in->domain = pl__strdup(domain);
    if (!in->name || !in->type || !in->domain) {
        instance_free(in);
        return NULL;
    }
    *pi = in;
    return in;
}

static struct pl_source *source_get(struct pl_instance *in, int iface, int proto)
{
    struct pl_source *s = in->sources;
    while (s && !(s->iface == iface && s->proto == proto))
        s = s->next;
    if (s)
        return s;
    s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->iface = iface;
    s->proto = proto;
    s->next = in->sources;
    in->sources = s;
    return s;
}

/* Recompute the instance's view from its resolved sources. Returns 1 if
 * it changed, 0 if not (or nothing is resolved), or a negative error
 * (the old view is kept). */
static int instance_refresh(struct pl_instance *in)
{
    struct pl_source *newest = NULL;
    size_t n = 0;
    for (struct pl_source *s = in->sources; s; s = s->next) {
        if (!s->resolved)
            continue;
        if (!newest || s->seq > newest->seq)
            newest = s;
        n += s->has_address;
    }
    if (!newest)
        return 0;
    pl_address *addrs = calloc(n ? n : 1, sizeof *addrs);
    if (!addrs)
        return PL_ERR_NOMEM;
    size_t k = 0;
    for (struct pl_source *s = in->sources; s; s = s->next) {
        if (!s->resolved || !s->has_address)
            continue;
        size_t j = 0;
        while (j < k && !address_equal(&addrs[j], &s->address))
            j++;
        if (j == k)
            addrs[k++] = s->address;
    }
    int same_addrs = k == in->n_addresses;
    for (size_t i = 0; same_addrs && i < k; i++) {
        size_t j = 0;
        while (j < in->n_addresses && !address_equal(&addrs[i], &in->addresses[j]))
            j++;
        same_addrs = j < in->n_addresses;
    }
    int changed = !same_addrs || newest->port != in->port || !in->host ||
                  strcmp(newest->host, in->host) != 0 || !in->txt ||
                  !pl_txt_equal(newest->txt, in->txt);
    if (!changed) {
        free(addrs);
        return 0;
    }
    char *host = pl__strdup(newest->host);
    pl_txt *txt = NULL;
    if (!host || pl_txt_dup(newest->txt, &txt) != PL_OK) {
        free(host);
        free(addrs);
        return PL_ERR_NOMEM;
    }
    free(in->host);
    pl_txt_free(in->txt);
    free(in->addresses);
    in->host = host;
    in->txt = txt;
    in->port = newest->port;
    in->addresses = addrs;
    in->n_addresses = k;
    return 1;
}

/* Keep b allocated across calls that may run the application's callback
 * (as browser_emit() does for one): release() returns 0 if it was freed. */
static void hold(pl_browser *b)
{
    b->busy++;
}

static int release(pl_browser *b)
{
    if (--b->busy == 0 && b->zombie) {
        browser_destroy(b);
        return 0;
    }
    return !b->zombie;
}

/* Run the application's callback; returns 0 if the browser was freed during it. */
static int browser_emit(pl_browser *b, pl_browse_event ev, int status, const struct pl_instance *in)
{
    if (!b->cb)
        return 1;
    pl_service svc;
    const pl_service *sp = NULL;
    if (in) {
        svc.name = in->name;
        svc.type = in->type;
        svc.domain = in->domain;
        svc.host = in->host;
        svc.port = in->port;
        svc.txt = in->txt;
        svc.n_addresses = in->n_addresses;
        svc.addresses = in->addresses;
        sp = &svc;
    }
    hold(b);
    b->cb(b, ev, status, sp, b->userdata);
    return release(b);
}

/* Send PL_BROWSE_ALL_FOR_NOW if the backend's first answers are in and
 * no instance waits for its ADD (those are under SETTLE_MS away). Must be
 * the caller's last use of b. */
static void all_for_now_check(pl_browser *b)
{
    if (b->all_for_now != 1)
        return;
    for (const struct pl_instance *in = b->instances; in; in = in->next)
        if (in->settle)
            return; /* announce() checks again */
    b->all_for_now = 2;
    browser_emit(b, PL_BROWSE_ALL_FOR_NOW, PL_OK, NULL);
}

static void announce(struct pl_instance *in)
{
    pl_browser *b = in->b;
    if (in->settle)
        b->d->poll->timeout_free(in->settle);
    in->settle = NULL;
    in->announced = 1;
    if (browser_emit(b, PL_BROWSE_ADD, PL_OK, in))
        all_for_now_check(b);
}

static void settle_expired(pl_timeout *t, void *userdata)
{
    announce(userdata);
}

/* Something about in changed: tell the application what it must know.
 * Must be the caller's last use of b and in. */
static void instance_report(struct pl_instance *in)
{
    int changed = instance_refresh(in);
    if (changed < 0)
        return;
    if (in->announced) {
        if (changed)
            browser_emit(in->b, PL_BROWSE_UPDATE, PL_OK, in);
        return;
    }
    if (!in->host)
        return; /* nothing resolved yet */
    int pending = 0;
    for (struct pl_source *s = in->sources; s; s = s->next)
        pending |= !s->resolved;
    if (!pending) {
        announce(in);
        return;
    }
    if (!in->settle) {
        const pl_poll *poll = in->b->d->poll;
        in->settle = poll->timeout_new(poll, SETTLE_MS, settle_expired, in);
        if (!in->settle)
            announce(in);
    }
}

void pl__browser_seen(pl_browser *b, const char *name, const char *type, const char *domain,
                      int iface, int proto)
{
    struct pl_instance *in = instance_get(b, name, type, domain);
    if (in)
        source_get(in, iface, proto);
}

int pl__browser_resolved(pl_browser *b, const pl_resolved *r)
{
    struct pl_instance *in = instance_get(b, r->name, r->type, r->domain);
    if (!in)
        return 1;
    pl_txt *txt = NULL;
    /* A record that does not parse is shown as an empty one rather than hiding the instance. */
    if (pl_txt_decode(r->txt, r->txt_len, &txt) != PL_OK && pl_txt_new(&txt) != PL_OK)
        return 1;
    char *host = pl__strdup(r->host ? r->host : "");
    struct pl_source *s = host ? source_get(in, r->iface, r->proto) : NULL;
    if (!s) {
        free(host);
        pl_txt_free(txt);
        return 1;
    }
    free(s->host);
    pl_txt_free(s->txt);
    s->resolved = 1;
    s->host = host;
    s->txt = txt;
    s->port = r->port;
    s->seq = ++b->seq;
    s->has_address = r->address != NULL;
    if (r->address)
        s->address = *r->address;
    hold(b);
    instance_report(in);
    return release(b);
}

int pl__browser_lost(pl_browser *b, const char *name, const char *type, const char *domain,
                     int iface, int proto)
{
    struct pl_instance **pi = instance_find(b, name, type, domain);
    struct pl_instance *in = *pi;
    if (!in)
        return 1;
    for (struct pl_source **ps = &in->sources; *ps; ps = &(*ps)->next) {
        if ((*ps)->iface == iface && (*ps)->proto == proto) {
            struct pl_source *s = *ps;
            *ps = s->next;
            source_free(s);
            break;
        }
    }
    int resolved = 0;
    for (struct pl_source *s = in->sources; s; s = s->next)
        resolved |= s->resolved;
    if (resolved || (in->sources && !in->announced)) {
        hold(b);
        instance_report(in);
        return release(b);
    }
    /* Nothing resolved is left: it is gone as far as the application can
     * tell (a source that resolves later brings it back as ADD). */
    *pi = in->next;
    /* in is unlinked, so it outlives the browser if the callback frees it. */
    int alive = in->announced ? browser_emit(b, PL_BROWSE_REMOVE, PL_OK, in) : 1;
    instance_free(in);
    if (!alive)
        return 0;
    hold(b);
    all_for_now_check(b); /* it may have been the ADD the browser waited for */
    return release(b);
}

void pl__browser_lost_all(pl_browser *b)
{
    while (b->instances) {
        struct pl_instance *in = b->instances;
        b->instances = in->next;
        int alive = in->announced ? browser_emit(b, PL_BROWSE_REMOVE, PL_OK, in) : 1;
        instance_free(in);
        if (!alive)
            return;
    }
    all_for_now_check(b);
}

void pl__browser_failed(pl_browser *b, int status)
{
    b->all_for_now = 2; /* an inert browser has no "for now" */
    browser_emit(b, PL_BROWSE_FAILED, status, NULL);
}

void pl__browser_all_for_now(pl_browser *b)
{
    if (b->all_for_now == 0)
        b->all_for_now = 1;
    all_for_now_check(b);
}

int pl_browse(pl_discovery *d, const char *type, const char *domain, pl_browse_cb cb,
              void *userdata, pl_browser **out)
{
    int types = type && strcasecmp(type, PL_SERVICE_TYPES) == 0;
    if (!d || !out || !(types || valid_type(type)) || (domain && !domain[0]))
        return PL_ERR_INVALID;
    pl_browser *b = calloc(1, sizeof *b);
    if (!b)
        return PL_ERR_NOMEM;
    b->d = d;
    b->cb = cb;
    b->userdata = userdata;
    b->types = types;
    b->type = pl__strdup(types ? PL_SERVICE_TYPES : type);
    b->domain = pl__strdup(domain ? domain : "local");
    int err = (b->type && b->domain) ? d->ops->browse(b) : PL_ERR_NOMEM;
    if (err != PL_OK) {
        browser_destroy(b);
        return err;
    }
    b->next = d->browsers;
    d->browsers = b;
    *out = b;
    return PL_OK;
}

static void browser_destroy(pl_browser *b)
{
    while (b->instances) {
        struct pl_instance *in = b->instances;
        b->instances = in->next;
        instance_free(in);
    }
    free(b->type);
    free(b->domain);
    free(b);
}

void pl_browser_free(pl_browser *b)
{
    if (!b || b->zombie)
        return;
    for (pl_browser **pb = &b->d->browsers; *pb; pb = &(*pb)->next) {
        if (*pb == b) {
            *pb = b->next;
            break;
        }
    }
    if (b->priv)
        b->d->ops->unbrowse(b);
    if (b->busy) {
        b->zombie = 1;
        return;
    }
    browser_destroy(b);
}
