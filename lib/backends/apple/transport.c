/* SPDX-License-Identifier: ISC */
/*
 * Sessions over nw_connection: the pl_chan_io of chan.h on
 * Network.framework. This file only moves bytes and states between a
 * connection's dispatch queue and the loop; the session engine does
 * the protocol, and chan.c the glue to it.
 *
 * Happy Eyeballs: one nw_connection per session. Network.framework
 * races the addresses and interfaces of the endpoint inside that one
 * connection and reports only the winner as ready; the also-rans never
 * surface, so they can neither disturb a pairing nor count as failed
 * attempts. An inbound connection becomes a session only once ready.
 */
#include "backends/apple/nw.h"
#include "session_glue.h"

#include <stdatomic.h>
#include <stdio.h>

_Static_assert(nw_error_domain_posix == PL_NW_DOMAIN_POSIX, "nw_error_domain_posix");
_Static_assert(nw_error_domain_dns == PL_NW_DOMAIN_DNS, "nw_error_domain_dns");
_Static_assert(nw_error_domain_tls == PL_NW_DOMAIN_TLS, "nw_error_domain_tls");

/* ---------------------------------------------------------------- shared */

dispatch_queue_t pl__nw_queue(void)
{
    static dispatch_once_t once;
    static dispatch_queue_t q;
    dispatch_once(&once, ^{
        /* Kept for the life of the process: deliberately never released, so not in the ledger. */
        q = dispatch_queue_create("org.peerlink.network", DISPATCH_QUEUE_SERIAL); /* retained-forever */
    });
    return q;
}

nw_parameters_t pl__nw_parameters(void)
{
    nw_parameters_t params = PL_NW_TAKE(nw_parameters_create_secure_tcp(
        NW_PARAMETERS_DISABLE_PROTOCOL, ^(nw_protocol_options_t tcp) { nw_tcp_options_set_no_delay(tcp, true); }));
    if (params)
        nw_parameters_set_include_peer_to_peer(params, true);
    return params;
}

static atomic_int denied;

int pl_apple_local_network_denied(void)
{
    return atomic_load(&denied);
}

void pl__nw_not_denied(void)
{
    atomic_store(&denied, 0);
}

int pl__nw_error(nw_error_t err, pl_apple_for what)
{
    if (!err)
        return PL_OK;
    int was_denied = 0;
    int rc = pl__apple_map_error((int)nw_error_get_error_domain(err), nw_error_get_error_code(err), what,
                                 &was_denied);
    if (was_denied)
        atomic_store(&denied, 1);
    return rc;
}

int pl__nw_waiting_fatal(nw_error_t err)
{
    if (!err || !pl__apple_waiting_is_fatal((int)nw_error_get_error_domain(err), nw_error_get_error_code(err)))
        return 0;
    atomic_store(&denied, 1);
    return 1;
}

/* The path says the user denied local network access (reported this way from iOS/tvOS 14.2, macOS 11). */
static int path_denied(nw_connection_t conn)
{
    int r = 0;
    if (__builtin_available(macOS 11.0, iOS 14.2, tvOS 14.2, *)) {
        nw_path_t path = PL_NW_TAKE(nw_connection_copy_current_path(conn));
        if (path && nw_path_get_status(path) == nw_path_status_unsatisfied &&
            nw_path_get_unsatisfied_reason(path) == nw_path_unsatisfied_reason_local_network_denied)
            r = 1;
        PL_NW_RELEASE(path);
    }
    if (r)
        atomic_store(&denied, 1);
    return r;
}

/* ---------------------------------------------------------------- one connection */

typedef struct nwio {
    pl_ref ref;           /* the glue's (ops->release) + the handlers' (given back at cancelled) */
    nw_connection_t conn; /* ours; released when the last reference goes */
    pl_hop *hop;          /* this connection's hop to the loop (an extra reference of ours) */
    pl_chan *ch;          /* set before the connection starts; never changes */
} nwio;

typedef struct nwev {
    pl_hop_event base;
    nwio *io;
    enum { EV_READY, EV_INPUT, EV_SENT, EV_FAILED, EV_GONE } kind;
    int status;
    size_t len;
    uint8_t *data;
} nwev;

static void nwio_put(nwio *io)
{
    if (!pl__ref_put(&io->ref))
        return;
    PL_NW_RELEASE(io->conn);
    pl__hop_release(io->hop);
    free(io);
}

static void ev_run(pl_hop_event *e)
{
    nwev *ev = (nwev *)e;
    pl_chan *ch = ev->io->ch;
    switch (ev->kind) {
    case EV_READY: pl__chan_ready(ch); break;
    case EV_INPUT: pl__chan_input(ch, ev->data, ev->len); break;
    case EV_SENT: pl__chan_sent(ch, ev->len, ev->status); break;
    case EV_FAILED: pl__chan_failed(ch, ev->status); break;
    case EV_GONE:
        pl__chan_io_release(ch); /* may call nwio_release: the glue's reference */
        nwio_put(ev->io);       /* the handlers' */
        free(ev);
        return;
    }
    free(ev->data);
    free(ev);
}

static void ev_drop(pl_hop_event *e)
{
    nwev *ev = (nwev *)e;
    if (ev->kind == EV_GONE) {
        pl__chan_io_release(ev->io->ch);
        nwio_put(ev->io);
    }
    free(ev->data);
    free(ev);
}

/* From the queue. Out of memory loses the event; the deadline then ends the session. */
static void post(nwio *io, int kind, int status, size_t len, uint8_t *data)
{
    nwev *ev = calloc(1, sizeof *ev);
    if (!ev) {
        free(data);
        if (kind == EV_GONE) { /* never lose the final reference counts */
            pl__chan_io_release(io->ch);
            nwio_put(io);
        }
        return;
    }
    ev->base.run = ev_run;
    ev->base.drop = ev_drop;
    ev->io = io;
    ev->kind = kind;
    ev->status = status;
    ev->len = len;
    ev->data = data;
    pl__hop_post(io->hop, &ev->base);
}

/* ---------------------------------------------------------------- pl_chan_io */

static int io_send(void *ctx, const uint8_t *data, size_t len)
{
    nwio *io = ctx;
    /* DISPATCH_DATA_DESTRUCTOR_DEFAULT: dispatch copies the bytes now. */
    dispatch_data_t dd = PL_DISPATCH_TAKE(dispatch_data_create(data, len, NULL, DISPATCH_DATA_DESTRUCTOR_DEFAULT));
    if (!dd)
        return PL_ERR_NOMEM;
    nw_connection_send(io->conn, dd, NW_CONNECTION_DEFAULT_MESSAGE_CONTEXT, false, ^(nw_error_t err) {
        post(io, EV_SENT, pl__nw_error(err, PL_APPLE_FOR_CONNECT), len, NULL);
    });
    PL_DISPATCH_RELEASE(dd); /* nw_connection_send keeps its own reference */
    return PL_OK;
}

static void io_receive(void *ctx)
{
    nwio *io = ctx;
    nw_connection_receive(io->conn, 1, 65536,
                          ^(dispatch_data_t content, nw_content_context_t context, bool is_complete, nw_error_t err) {
        (void)context;
        size_t n = content ? dispatch_data_get_size(content) : 0;
        if (n) {
            uint8_t *buf = malloc(n);
            if (!buf) {
                post(io, EV_FAILED, PL_ERR_NOMEM, 0, NULL);
                return;
            }
            __block size_t off = 0;
            /* content is lent for the call: copy out, retain nothing. */
            dispatch_data_apply(content, ^bool(dispatch_data_t region, size_t roff, const void *bytes, size_t len) {
                (void)region;
                (void)roff;
                memcpy(buf + off, bytes, len);
                off += len;
                return true;
            });
            post(io, EV_INPUT, PL_OK, n, buf);
        }
        if (err)
            post(io, EV_FAILED, pl__nw_error(err, PL_APPLE_FOR_CONNECT), 0, NULL);
        else if (is_complete)
            post(io, EV_INPUT, PL_OK, 0, NULL); /* the peer ended the stream */
        else if (!n)
            io_receive(io); /* nothing yet: ask again */
    });
}

/* The glue wants nothing more: stop using the loop now. */
static void io_detach(nwio *io)
{
    pl__hop_close(io->hop); /* gives up the creator's reference; ours stays until nwio_put */
}

static void io_finish(void *ctx)
{
    nwio *io = ctx;
    /* The final send goes after every earlier one; cancel once it is out
     * (nw_connection_cancel does not wait for sends in flight). */
    nw_connection_send(io->conn, NULL, NW_CONNECTION_FINAL_MESSAGE_CONTEXT, true, ^(nw_error_t err) {
        (void)err;
        nw_connection_cancel(io->conn);
    });
    io_detach(io);
}

static void io_cancel(void *ctx)
{
    nwio *io = ctx;
    nw_connection_cancel(io->conn);
    io_detach(io);
}

static void io_release(void *ctx)
{
    nwio_put(ctx);
}

static const pl_chan_io nw_chan_io = {
    .send = io_send,
    .receive = io_receive,
    .finish = io_finish,
    .cancel = io_cancel,
    .release = io_release,
};

/* A context for conn (whose reference it takes), with its own hop. NULL on failure (conn untouched). */
static nwio *nwio_new(const pl_poll *poll, nw_connection_t conn)
{
    nwio *io = calloc(1, sizeof *io);
    if (!io)
        return NULL;
    if (pl__hop_new(poll, &io->hop) != PL_OK) {
        free(io);
        return NULL;
    }
    pl__hop_retain(io->hop); /* ours, for posting until the end */
    pl__ref_init(&io->ref);  /* the glue's */
    io->conn = conn;
    return io;
}

/* Undo nwio_new for a connection that never started. conn is not released. */
static void nwio_abandon(nwio *io)
{
    pl__hop_close(io->hop);
    pl__hop_release(io->hop);
    free(io);
}

/* Wire the handlers and start. io->ch is set. */
static void nwio_start(nwio *io)
{
    pl__ref_get(&io->ref); /* the handlers' */
    nw_connection_set_queue(io->conn, pl__nw_queue());
    nw_connection_set_state_changed_handler(io->conn, ^(nw_connection_state_t state, nw_error_t err) {
        switch (state) {
        case nw_connection_state_ready:
            pl__nw_not_denied();
            post(io, EV_READY, PL_OK, 0, NULL);
            break;
        case nw_connection_state_waiting:
            /* Waiting ends by itself when the network comes back, or not at
             * all when access is denied: then fail now instead of hanging. */
            if (pl__nw_waiting_fatal(err) || path_denied(io->conn))
                post(io, EV_FAILED, PL_APPLE_DENIED_CONNECT, 0, NULL);
            break;
        case nw_connection_state_failed:
            post(io, EV_FAILED, err ? pl__nw_error(err, PL_APPLE_FOR_CONNECT) : PL_ERR_CONNECT, 0, NULL);
            break;
        case nw_connection_state_cancelled:
            post(io, EV_GONE, PL_OK, 0, NULL); /* the last callback: gives back the handlers' reference */
            break;
        default:
            break;
        }
    });
    nw_connection_start(io->conn);
}

/* ---------------------------------------------------------------- connecting */

static nw_endpoint_t endpoint_for(const pl_apple_target *t)
{
    switch (t->kind) {
    case PL_APPLE_TARGET_BONJOUR:
        return PL_NW_TAKE(nw_endpoint_create_bonjour_service(t->name, t->type, t->domain));
    case PL_APPLE_TARGET_ADDRESS:
        return PL_NW_TAKE(nw_endpoint_create_host(t->address, t->port));
    case PL_APPLE_TARGET_HOST:
        return PL_NW_TAKE(nw_endpoint_create_host(t->host, t->port));
    }
    return NULL;
}

/* What a session dials, again after a break: the endpoint, kept. */
typedef struct nwtarget {
    const pl_poll *poll;
    nw_endpoint_t ep; /* ours */
} nwtarget;

static void target_free(void *ctx)
{
    nwtarget *t = ctx;
    PL_NW_RELEASE(t->ep);
    free(t);
}

/* A new connection to t's endpoint; NULL on failure. */
static nwio *dial(const nwtarget *t)
{
    nw_parameters_t params = pl__nw_parameters();
    nw_connection_t conn = params ? PL_NW_TAKE(nw_connection_create(t->ep, params)) : NULL;
    PL_NW_RELEASE(params);
    if (!conn)
        return NULL;
    nwio *io = nwio_new(t->poll, conn);
    if (!io)
        PL_NW_RELEASE(conn);
    return io;
}

/* The session's policy asks for a new link: dial the endpoint again. */
static int redial(void *ctx, pl_chan_dialer *d)
{
    nwtarget *t = ctx;
    nwio *io = dial(t);
    if (!io)
        return PL_ERR_NOMEM;
    int rc = pl__chan_redialed(d, io, &io->ch);
    if (rc != PL_OK) {
        nw_connection_t conn = io->conn;
        nwio_abandon(io);
        PL_NW_RELEASE(conn);
        return rc;
    }
    nwio_start(io);
    return PL_OK;
}

int pl_apple_connect(pl_node *node, const pl_service *svc, int timeout_ms, pl_session_cb cb, void *userdata,
                     pl_session **out)
{
    pl_apple_target at;
    const pl_poll *poll = pl_node_poll(node);
    if (!poll || !svc || !out || !svc->name || pl__apple_target(svc, &at) != PL_OK)
        return PL_ERR_INVALID;
    nwtarget *t = calloc(1, sizeof *t);
    if (!t)
        return PL_ERR_NOMEM;
    t->poll = poll;
    t->ep = endpoint_for(&at);
    nwio *io = t->ep ? dial(t) : NULL;
    if (!io) {
        target_free(t);
        return PL_ERR_NOMEM;
    }
    pl_session *c = NULL;
    int rc = pl__chan_connect(node, &nw_chan_io, io, svc->name, timeout_ms, cb, userdata, redial, t, target_free,
                              &io->ch, &c);
    if (rc != PL_OK) {
        nw_connection_t conn = io->conn;
        nwio_abandon(io);
        PL_NW_RELEASE(conn);
        target_free(t);
        return rc;
    }
    /* Before the first kick starts the handshake: the responder stored under
     * svc's name, else the one its discovery hint names (as pl_connect()). */
    pl__session_expect(c, svc->txt);
    nwio_start(io);
    *out = c;
    return PL_OK;
}

/* ---------------------------------------------------------------- accepting */

void pl__nw_refuse(nw_connection_t conn)
{
    nw_connection_set_queue(conn, pl__nw_queue());
    nw_connection_cancel(conn);
    PL_NW_RELEASE(conn);
}

void pl__nw_accept(const pl_poll *poll, pl_chan_acceptor *a, nw_connection_t conn)
{
    nwio *io = a ? nwio_new(poll, conn) : NULL;
    if (!io) {
        pl__nw_refuse(conn);
        return;
    }
    if (pl__chan_accept(a, &nw_chan_io, io, &io->ch) != PL_OK) {
        nwio_abandon(io);
        pl__nw_refuse(conn);
        return;
    }
    nwio_start(io);
}
