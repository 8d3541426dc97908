/* SPDX-License-Identifier: ISC */
/*
 * The "apple" discovery backend: Network.framework's nw_browser and
 * nw_listener (with a Bonjour advertise descriptor), reporting to the
 * generic layer (discovery.c) exactly as the Avahi backend does:
 * pl__browser_seen / resolved / lost per instance and interface, and
 * pl__publication_event / set_name for publications.
 *
 * - Browsing asks for TXT records (nw_browse_descriptor_set_include_txt_record);
 *   without that, browse results carry none.
 * - TXT records cross the boundary as RFC 6763 wire bytes
 *   (nw_txt_record_access_bytes / nw_txt_record_create_with_bytes), so
 *   the project's own codec is the only one that interprets them.
 * - Browse results have no port and no addresses: Network.framework
 *   resolves the Bonjour endpoint when it connects (pl_apple_connect(),
 *   transport.c). Services are reported with host "" and port 0.
 * - A publication is an nw_listener: it listens on the port given to
 *   pl_publish (0: any) and advertises; published by a pl_listener
 *   (pl_listener_publish(), accept_into), its inbound connections become
 *   that listener's links. Without one, they are refused.
 * - Threading: every handler runs on the library's dispatch queue, copies
 *   what it needs out of Network.framework's objects and posts it
 *   through the discovery's hop (hop.h); the loop runs it. Nothing here
 *   calls the application from the queue.
 * - Local network access denied: the browser or listener waits with
 *   kDNSServiceErr_PolicyDenied; that is reported at once as
 *   PL_BROWSE_FAILED / PL_PUBLISH_FAILED (never a silent wait).
 */
#include "backends/apple/nw.h"

#include <dns_sd.h>
#include <stdio.h>

_Static_assert(kDNSServiceErr_PolicyDenied == PL_DNS_ERR_POLICY_DENIED, "kDNSServiceErr_PolicyDenied");
_Static_assert(kDNSServiceErr_NoMemory == PL_DNS_ERR_NO_MEMORY, "kDNSServiceErr_NoMemory");
_Static_assert(kDNSServiceErr_BadParam == PL_DNS_ERR_BAD_PARAM, "kDNSServiceErr_BadParam");
_Static_assert(kDNSServiceErr_NameConflict == PL_DNS_ERR_NAME_CONFLICT, "kDNSServiceErr_NameConflict");
_Static_assert(kDNSServiceErr_ServiceNotRunning == PL_DNS_ERR_SERVICE_NOT_RUNNING, "kDNSServiceErr_ServiceNotRunning");

typedef struct nwdisc {
    pl_hop *hop;
} nwdisc;

typedef struct nwbrowse {
    pl_ref ref;    /* the loop's (until unbrowse) + the handlers' (until cancelled) */
    pl_browser *b; /* loop thread; NULL once unbrowsed */
    nw_browser_t nb;
    pl_hop *hop; /* a reference of ours */
    int cancelled; /* loop thread */
    int ready;            /* loop thread: the browser was ready once */
    pl_timeout *settled;  /* loop thread: PL_BROWSE_ALL_FOR_NOW, ALL_FOR_NOW_MS after ready */
} nwbrowse;

/* As the "mdns" backend: responders answer the first query within 20-120 ms, up to 500 ms
 * more when they aggregate (RFC 6762 sections 6, 6.4); mDNSResponder has what it found by then. */
#define ALL_FOR_NOW_MS 1000

typedef struct nwpub {
    pl_ref ref;
    pl_publication *p; /* loop thread; NULL once unpublished */
    nw_listener_t nl;
    pl_hop *hop;
    int cancelled;
    int established;
    pl_chan_acceptor *acc; /* loop thread: pl_listener_publish() hands inbound connections to its listener */
} nwpub;

/* ---------------------------------------------------------------- events */

typedef enum {
    D_CHANGE,
    D_BROWSE_READY,
    D_BROWSE_FAILED,
    D_BROWSE_GONE,
    D_ADVERTISED,
    D_PUB_FAILED,
    D_PUB_CONN,
    D_PUB_GONE
} dkind;

typedef struct dev {
    pl_hop_event base;
    dkind kind;
    void *target; /* nwbrowse or nwpub; kept alive by its handlers' reference until its GONE */
    int status;
    pl_apple_change change;
    char *name;
    nw_connection_t conn;
} dev;

static void browse_put(nwbrowse *nb)
{
    if (!pl__ref_put(&nb->ref))
        return;
    PL_NW_RELEASE(nb->nb);
    pl__hop_release(nb->hop);
    free(nb);
}

static void pub_put(nwpub *np)
{
    if (!pl__ref_put(&np->ref))
        return;
    PL_NW_RELEASE(np->nl);
    pl__hop_release(np->hop);
    free(np);
}

static void dev_free(dev *ev)
{
    pl__apple_change_clear(&ev->change);
    free(ev->name);
    free(ev);
}

static void dev_drop(pl_hop_event *e)
{
    dev *ev = (dev *)e;
    if (ev->kind == D_PUB_CONN && ev->conn)
        pl__nw_refuse(ev->conn);
    if (ev->kind == D_BROWSE_GONE)
        browse_put(ev->target);
    if (ev->kind == D_PUB_GONE)
        pub_put(ev->target);
    dev_free(ev);
}

static int browse_alive(void *ctx)
{
    return ((nwbrowse *)ctx)->b != NULL;
}

static void browse_cancel(nwbrowse *nb)
{
    if (!nb->cancelled)
        nw_browser_cancel(nb->nb);
    nb->cancelled = 1;
}

static void pub_cancel(nwpub *np)
{
    if (!np->cancelled)
        nw_listener_cancel(np->nl);
    np->cancelled = 1;
}

/* The instance is live under name (NULL: under the name asked for). */
static void run_advertised(nwpub *np, const char *name)
{
    pl_publication *p = np->p;
    if (!p)
        return;
    if (name && strcmp(name, p->name) != 0) {
        /* The name was taken: Bonjour picked the next one ("Name (2)"). */
        if (pl__publication_set_name(p, name) != PL_OK)
            return;
        np->established = 0;
        if (!pl__publication_event(p, PL_PUBLISH_RENAMED, PL_OK))
            return;
    }
    if (!np->established) {
        np->established = 1;
        pl__publication_event(p, PL_PUBLISH_ESTABLISHED, PL_OK);
    }
}

static void all_for_now_due(pl_timeout *t, void *userdata)
{
    nwbrowse *nb = userdata;
    nb->b->d->poll->timeout_update(t, -1);
    pl__browser_all_for_now(nb->b);
}

/* The browser is ready (the first time): the answers to its first query are in a second later. */
static void run_browse_ready(nwbrowse *nb)
{
    if (!nb->b || nb->ready)
        return;
    nb->ready = 1;
    const pl_poll *poll = nb->b->d->poll;
    nb->settled = poll->timeout_new(poll, ALL_FOR_NOW_MS, all_for_now_due, nb);
    if (!nb->settled)
        pl__browser_all_for_now(nb->b); /* out of memory: say it now rather than never */
}

static void dev_run(pl_hop_event *e)
{
    dev *ev = (dev *)e;
    nwbrowse *nb = ev->target;
    nwpub *np = ev->target;
    switch (ev->kind) {
    case D_CHANGE:
        if (nb->b)
            pl__apple_apply_change(nb->b, &ev->change, browse_alive, nb);
        break;
    case D_BROWSE_READY:
        run_browse_ready(nb);
        break;
    case D_BROWSE_FAILED:
        if (nb->b) {
            browse_cancel(nb); /* inert from now on, as the API says */
            pl__browser_failed(nb->b, ev->status);
        }
        break;
    case D_BROWSE_GONE:
        browse_put(nb);
        break;
    case D_ADVERTISED:
        run_advertised(np, ev->name);
        break;
    case D_PUB_FAILED:
        if (np->p) {
            pub_cancel(np);
            pl__publication_event(np->p, PL_PUBLISH_FAILED, ev->status);
        }
        break;
    case D_PUB_CONN:
        if (np->p && np->acc)
            pl__nw_accept(np->p->d->poll, np->acc, ev->conn);
        else
            pl__nw_refuse(ev->conn);
        ev->conn = NULL;
        break;
    case D_PUB_GONE:
        pub_put(np);
        break;
    }
    dev_free(ev);
}

/* From the queue. ev_out gets filled by the caller before posting. */
static dev *dev_new(dkind kind, void *target)
{
    dev *ev = calloc(1, sizeof *ev);
    if (!ev)
        return NULL;
    ev->base.run = dev_run;
    ev->base.drop = dev_drop;
    ev->kind = kind;
    ev->target = target;
    return ev;
}

/* Post a bare event; a GONE that cannot be allocated still gives its reference back. */
static void post_simple(pl_hop *hop, dkind kind, void *target, int status)
{
    dev *ev = dev_new(kind, target);
    if (!ev) {
        if (kind == D_BROWSE_GONE)
            browse_put(target);
        else if (kind == D_PUB_GONE)
            pub_put(target);
        return;
    }
    ev->status = status;
    pl__hop_post(hop, &ev->base);
}

/* ---------------------------------------------------------------- browsing */

/* Copy one browse result out of Network.framework (queue thread). */
static int copy_result(nw_browse_result_t r, int want_txt, pl_apple_result *out)
{
    size_t count = nw_browse_result_get_interfaces_count(r);
    if (count) {
        int *ifaces = calloc(count, sizeof *ifaces);
        if (!ifaces)
            return PL_ERR_NOMEM;
        __block size_t k = 0;
        nw_browse_result_enumerate_interfaces(r, ^bool(nw_interface_t iface) {
            if (k < count)
                ifaces[k++] = (int)nw_interface_get_index(iface);
            return k < count;
        });
        out->ifaces = ifaces;
        out->n_ifaces = k;
    }
    if (!want_txt)
        return PL_OK;
    __block int rc = PL_OK;
    __block uint8_t *buf = NULL;
    __block size_t len = 0;
    nw_txt_record_t txt = PL_NW_TAKE(nw_browse_result_copy_txt_record_object(r));
    if (txt) {
        nw_txt_record_access_bytes(txt, ^bool(const uint8_t *raw, size_t n) {
            rc = pl__apple_txt_copy(raw, n, &buf, &len); /* raw is lent for the call */
            return true;
        });
        PL_NW_RELEASE(txt);
    }
    if (rc == PL_OK && !buf)
        rc = pl__apple_txt_copy(NULL, 0, &buf, &len); /* no record: an empty one */
    out->txt = buf;
    out->txt_len = len;
    return rc;
}

static int copy_names(nw_browse_result_t r, pl_apple_change *c)
{
    nw_endpoint_t ep = PL_NW_TAKE(nw_browse_result_copy_endpoint(r));
    if (!ep)
        return PL_ERR_NOMEM;
    char type[64], domain[256];
    int rc = PL_ERR_INVALID;
    if (nw_endpoint_get_type(ep) == nw_endpoint_type_bonjour_service) {
        const char *name = nw_endpoint_get_bonjour_service_name(ep);
        rc = pl__apple_normalize(nw_endpoint_get_bonjour_service_type(ep), NULL, type, sizeof type);
        if (rc == PL_OK)
            rc = pl__apple_normalize(nw_endpoint_get_bonjour_service_domain(ep), "local", domain, sizeof domain);
        if (rc == PL_OK) {
            c->name = pl__strdup(name);
            c->type = pl__strdup(type);
            c->domain = pl__strdup(domain);
            rc = (c->name && c->type && c->domain) ? PL_OK : PL_ERR_NOMEM;
        }
    }
    PL_NW_RELEASE(ep);
    return rc;
}

static void results_changed(nwbrowse *nb, nw_browse_result_t old_r, nw_browse_result_t new_r)
{
    nw_browse_result_change_t changes = nw_browse_result_get_changes(old_r, new_r);
    if (changes == nw_browse_result_change_invalid || changes == nw_browse_result_change_identical)
        return;
    dev *ev = dev_new(D_CHANGE, nb);
    if (!ev)
        return;
    pl_apple_change *c = &ev->change;
    int rc = copy_names(new_r ? new_r : old_r, c);
    if (rc == PL_OK && old_r) {
        c->has_old = 1;
        rc = copy_result(old_r, 0, &c->old);
    }
    if (rc == PL_OK && new_r) {
        c->has_new = 1;
        rc = copy_result(new_r, 1, &c->new_);
    }
    if (rc != PL_OK) {
        dev_free(ev); /* a result we cannot copy is left out, as Avahi's failed resolutions are */
        return;
    }
    pl__hop_post(nb->hop, &ev->base);
}

static int ap_browse(pl_browser *b)
{
    nwdisc *nd = b->d->priv;
    nwbrowse *nb = calloc(1, sizeof *nb);
    if (!nb)
        return PL_ERR_NOMEM;
    nw_browse_descriptor_t desc = PL_NW_TAKE(nw_browse_descriptor_create_bonjour_service(b->type, b->domain));
    nw_parameters_t params = PL_NW_TAKE(nw_parameters_create());
    if (desc)
        nw_browse_descriptor_set_include_txt_record(desc, true); /* else results carry no TXT */
    if (params)
        nw_parameters_set_include_peer_to_peer(params, true);
    nb->nb = (desc && params) ? PL_NW_TAKE(nw_browser_create(desc, params)) : NULL;
    PL_NW_RELEASE(desc);
    PL_NW_RELEASE(params);
    if (!nb->nb) {
        free(nb);
        return PL_ERR_BACKEND;
    }
    pl__ref_init(&nb->ref); /* the loop's */
    pl__ref_get(&nb->ref);  /* the handlers' */
    pl__hop_retain(nd->hop);
    nb->hop = nd->hop;
    nb->b = b;
    nw_browser_set_queue(nb->nb, pl__nw_queue());
    nw_browser_set_browse_results_changed_handler(nb->nb,
                                                  ^(nw_browse_result_t old_r, nw_browse_result_t new_r, bool done) {
        (void)done;
        results_changed(nb, old_r, new_r);
    });
    nw_browser_set_state_changed_handler(nb->nb, ^(nw_browser_state_t state, nw_error_t err) {
        switch (state) {
        case nw_browser_state_ready:
            pl__nw_not_denied();
            post_simple(nb->hop, D_BROWSE_READY, nb, PL_OK);
            break;
        case nw_browser_state_waiting:
            if (pl__nw_waiting_fatal(err))
                post_simple(nb->hop, D_BROWSE_FAILED, nb, PL_APPLE_DENIED_DISCOVERY);
            break;
        case nw_browser_state_failed:
            post_simple(nb->hop, D_BROWSE_FAILED, nb, err ? pl__nw_error(err, PL_APPLE_FOR_BROWSE) : PL_ERR_BACKEND);
            break;
        case nw_browser_state_cancelled:
            post_simple(nb->hop, D_BROWSE_GONE, nb, PL_OK); /* the last callback */
            break;
        default:
            break;
        }
    });
    b->priv = nb;
    nw_browser_start(nb->nb);
    return PL_OK;
}

static void ap_unbrowse(pl_browser *b)
{
    nwbrowse *nb = b->priv;
    if (nb->settled)
        b->d->poll->timeout_free(nb->settled);
    nb->settled = NULL;
    nb->b = NULL; /* queued events for it are skipped */
    browse_cancel(nb);
    b->priv = NULL;
    browse_put(nb);
}

/* ---------------------------------------------------------------- publishing */

/* (Re)set the advertise descriptor: the way to change the TXT record. */
static int advertise(nwpub *np, const pl_publication *p)
{
    uint8_t *bytes = NULL;
    size_t n = 0;
    int rc = pl__apple_txt_to_bytes(p->txt, &bytes, &n);
    if (rc != PL_OK)
        return rc;
    nw_txt_record_t txt = PL_NW_TAKE(nw_txt_record_create_with_bytes(bytes, n));
    free(bytes);
    nw_advertise_descriptor_t ad = PL_NW_TAKE(nw_advertise_descriptor_create_bonjour_service(p->name, p->type, NULL));
    if (txt && ad) {
        nw_advertise_descriptor_set_txt_record_object(ad, txt);
        nw_listener_set_advertise_descriptor(np->nl, ad); /* the listener keeps its own reference */
    } else {
        rc = PL_ERR_NOMEM;
    }
    PL_NW_RELEASE(ad);
    PL_NW_RELEASE(txt);
    return rc;
}

static int ap_publish(pl_publication *p)
{
    nwdisc *nd = p->d->priv;
    nwpub *np = calloc(1, sizeof *np);
    if (!np)
        return PL_ERR_NOMEM;
    nw_parameters_t params = pl__nw_parameters();
    if (params && p->port) {
        char port[6];
        snprintf(port, sizeof port, "%u", (unsigned)p->port);
        np->nl = PL_NW_TAKE(nw_listener_create_with_port(port, params));
    } else if (params) {
        np->nl = PL_NW_TAKE(nw_listener_create(params));
    }
    PL_NW_RELEASE(params);
    if (!np->nl) {
        free(np);
        return PL_ERR_BACKEND;
    }
    int rc = advertise(np, p);
    if (rc != PL_OK) {
        PL_NW_RELEASE(np->nl);
        free(np);
        return rc;
    }
    pl__ref_init(&np->ref);
    pl__ref_get(&np->ref);
    pl__hop_retain(nd->hop);
    np->hop = nd->hop;
    np->p = p;
    nw_listener_set_queue(np->nl, pl__nw_queue());
    nw_listener_set_state_changed_handler(np->nl, ^(nw_listener_state_t state, nw_error_t err) {
        switch (state) {
        case nw_listener_state_ready:
            pl__nw_not_denied();
            /* Listening, under the name asked for unless the advertised
             * endpoint says otherwise (then RENAMED and ESTABLISHED again). */
            post_simple(np->hop, D_ADVERTISED, np, PL_OK);
            break;
        case nw_listener_state_waiting:
            if (pl__nw_waiting_fatal(err))
                post_simple(np->hop, D_PUB_FAILED, np, PL_APPLE_DENIED_DISCOVERY);
            break;
        case nw_listener_state_failed:
            post_simple(np->hop, D_PUB_FAILED, np, err ? pl__nw_error(err, PL_APPLE_FOR_PUBLISH) : PL_ERR_BACKEND);
            break;
        case nw_listener_state_cancelled:
            post_simple(np->hop, D_PUB_GONE, np, PL_OK); /* the last callback */
            break;
        default:
            break;
        }
    });
    nw_listener_set_new_connection_handler(np->nl, ^(nw_connection_t conn) {
        /* conn is lent for the call: keep it with a reference of ours. */
        nw_connection_t kept = PL_NW_RETAIN(conn);
        dev *ev = dev_new(D_PUB_CONN, np);
        if (!ev) {
            pl__nw_refuse(kept);
            return;
        }
        ev->conn = kept;
        pl__hop_post(np->hop, &ev->base); /* dropped: refused */
    });
    nw_listener_set_advertised_endpoint_changed_handler(np->nl, ^(nw_endpoint_t ep, bool added) {
        if (!added)
            return;
        dev *ev = dev_new(D_ADVERTISED, np);
        if (!ev)
            return;
        ev->name = pl__strdup(nw_endpoint_get_bonjour_service_name(ep)); /* ep is lent */
        pl__hop_post(np->hop, &ev->base);
    });
    p->priv = np;
    nw_listener_start(np->nl);
    return PL_OK;
}

static int ap_publish_update_txt(pl_publication *p)
{
    nwpub *np = p->priv;
    return np->cancelled ? PL_OK : advertise(np, p);
}

static void ap_unpublish(pl_publication *p)
{
    nwpub *np = p->priv;
    np->p = NULL;
    pl__chan_acceptor_free(np->acc); /* transports not ready yet; the listener keeps its handshakes */
    np->acc = NULL;
    pub_cancel(np); /* withdraws the advertisement */
    p->priv = NULL;
    pub_put(np);
}

/* ---------------------------------------------------------------- accepting */

/* pl_listener_publish() through this backend: the nw_listener's inbound
 * connections become links of l (its policy, its sessions). */
static int ap_accept_into(pl_publication *p, pl_listener *l)
{
    nwpub *np = p->priv;
    if (!np || np->acc)
        return PL_ERR_STATE;
    return pl__chan_acceptor_new(l, &np->acc);
}

/* ---------------------------------------------------------------- the backend */

static int ap_open(pl_discovery *d)
{
    nwdisc *nd = calloc(1, sizeof *nd);
    if (!nd)
        return PL_ERR_NOMEM;
    int rc = pl__hop_new(d->poll, &nd->hop);
    if (rc != PL_OK) {
        free(nd);
        return rc;
    }
    d->priv = nd;
    return PL_OK;
}

static void ap_close(pl_discovery *d)
{
    nwdisc *nd = d->priv;
    /* Browsers and publications are gone already (their cancellations
     * finish on the queue: what they still post is dropped there). */
    pl__hop_close(nd->hop);
    free(nd);
    d->priv = NULL;
}

const pl_discovery_ops pl__apple_ops = {
    .name = "apple",
    .open = ap_open,
    .close = ap_close,
    .publish = ap_publish,
    .publish_update_txt = ap_publish_update_txt,
    .unpublish = ap_unpublish,
    .accept_into = ap_accept_into,
    .browse = ap_browse,
    .unbrowse = ap_unbrowse,
};
