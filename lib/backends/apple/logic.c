/* SPDX-License-Identifier: ISC */
/* Platform-independent logic of the Apple backend. See logic.h. */
#include "backends/apple/logic.h"

#include <errno.h>
#include <stdio.h>
#include <sys/socket.h>

int pl__apple_map_error(int domain, int code, pl_apple_for what, int *denied)
{
    if (denied)
        *denied = 0;
    if (domain == PL_NW_DOMAIN_DNS) {
        switch (code) {
        case 0: return PL_OK;
        case PL_DNS_ERR_POLICY_DENIED:
            if (denied)
                *denied = 1;
            return what == PL_APPLE_FOR_CONNECT ? PL_APPLE_DENIED_CONNECT : PL_APPLE_DENIED_DISCOVERY;
        case PL_DNS_ERR_NO_MEMORY: return PL_ERR_NOMEM;
        case PL_DNS_ERR_BAD_PARAM: return PL_ERR_INVALID;
        case PL_DNS_ERR_NAME_CONFLICT: return PL_ERR_COLLISION;
        case PL_DNS_ERR_SERVICE_NOT_RUNNING: return PL_ERR_DAEMON;
        default: return what == PL_APPLE_FOR_CONNECT ? PL_ERR_CONNECT : PL_ERR_BACKEND;
        }
    }
    if (domain == PL_NW_DOMAIN_POSIX) {
        switch (code) {
        case 0: return PL_OK;
        case ENOMEM:
        case ENOBUFS: return PL_ERR_NOMEM;
        case EINVAL: return PL_ERR_INVALID;
        case ETIMEDOUT: return PL_ERR_TIMEOUT;
        case ECONNRESET:
        case EPIPE:
        case ENOTCONN: return PL_ERR_CLOSED;
        case EADDRINUSE: return PL_ERR_IO;
        case ECONNREFUSED:
        case EHOSTUNREACH:
        case ENETUNREACH:
        case ENETDOWN:
        case EHOSTDOWN: return what == PL_APPLE_FOR_CONNECT ? PL_ERR_CONNECT : PL_ERR_BACKEND;
        default: return what == PL_APPLE_FOR_CONNECT ? PL_ERR_IO : PL_ERR_BACKEND;
        }
    }
    if (domain == PL_NW_DOMAIN_TLS)
        return PL_ERR_PROTOCOL; /* peerlink never asks for TLS; a TLS error is foreign */
    return what == PL_APPLE_FOR_CONNECT ? PL_ERR_IO : PL_ERR_BACKEND;
}

int pl__apple_waiting_is_fatal(int domain, int code)
{
    return domain == PL_NW_DOMAIN_DNS && code == PL_DNS_ERR_POLICY_DENIED;
}

/* ---------------------------------------------------------------- TXT */

int pl__apple_txt_to_bytes(const pl_txt *txt, uint8_t **out, size_t *len)
{
    pl_txt *empty = NULL;
    if (!txt) {
        int rc = pl_txt_new(&empty);
        if (rc != PL_OK)
            return rc;
        txt = empty;
    }
    size_t n = 0;
    int rc = pl_txt_encode(txt, NULL, 0, &n);
    uint8_t *buf = rc == PL_OK ? malloc(n ? n : 1) : NULL;
    if (rc == PL_OK && !buf)
        rc = PL_ERR_NOMEM;
    if (rc == PL_OK)
        rc = pl_txt_encode(txt, buf, n, &n);
    pl_txt_free(empty);
    if (rc != PL_OK) {
        free(buf);
        return rc;
    }
    if (n == 0) { /* the codec writes the zero byte itself; keep the promise regardless */
        buf[0] = 0;
        n = 1;
    }
    *out = buf;
    *len = n;
    return PL_OK;
}

int pl__apple_txt_copy(const uint8_t *bytes, size_t len, uint8_t **out, size_t *out_len)
{
    if (!bytes || len > PL_TXT_MAX_SIZE)
        len = 0;
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf)
        return PL_ERR_NOMEM;
    if (len)
        memcpy(buf, bytes, len);
    *out = buf;
    *out_len = len;
    return PL_OK;
}

/* ---------------------------------------------------------------- names */

int pl__apple_normalize(const char *in, const char *dflt, char *out, size_t cap)
{
    if (!out || !cap)
        return PL_ERR_INVALID;
    if (!in || !in[0])
        in = dflt;
    if (!in)
        return PL_ERR_INVALID;
    size_t n = strlen(in);
    if (n > 1 && in[n - 1] == '.')
        n--;
    if (n + 1 > cap)
        return PL_ERR_TOO_LARGE;
    memcpy(out, in, n);
    out[n] = 0;
    return PL_OK;
}

/* ---------------------------------------------------------------- browse changes */

static void result_clear(pl_apple_result *r)
{
    free(r->ifaces);
    free(r->txt);
    memset(r, 0, sizeof *r);
}

void pl__apple_change_clear(pl_apple_change *c)
{
    free(c->name);
    free(c->type);
    free(c->domain);
    result_clear(&c->old);
    result_clear(&c->new_);
    memset(c, 0, sizeof *c);
}

static const int no_iface = -1;

static void ifaces_of(const pl_apple_result *r, const int **list, size_t *n)
{
    if (r->n_ifaces) {
        *list = r->ifaces;
        *n = r->n_ifaces;
    } else {
        *list = &no_iface;
        *n = 1;
    }
}

static int contains(const int *list, size_t n, int v)
{
    for (size_t i = 0; i < n; i++)
        if (list[i] == v)
            return 1;
    return 0;
}

void pl__apple_apply_change(pl_browser *b, const pl_apple_change *c, int (*alive)(void *), void *actx)
{
    const int *oi = NULL, *ni = NULL;
    size_t on = 0, nn = 0;
    if (c->has_old)
        ifaces_of(&c->old, &oi, &on);
    if (c->has_new)
        ifaces_of(&c->new_, &ni, &nn);
    /* Mark every new interface as seen first, so that the generic layer
     * waits for all of them before its ADD instead of announcing the
     * first one alone. pl__browser_seen never calls back. */
    for (size_t i = 0; i < nn; i++)
        pl__browser_seen(b, c->name, c->type, c->domain, ni[i], -1);
    /* Each report below may run the application's callback, which may
     * free b: ask the backend after each one whether b still lives. */
    for (size_t i = 0; i < on; i++) {
        if (contains(ni, nn, oi[i]))
            continue;
        pl__browser_lost(b, c->name, c->type, c->domain, oi[i], -1);
        if (!alive(actx))
            return;
    }
    for (size_t i = 0; i < nn; i++) {
        pl_resolved r = {
            .name = c->name,
            .type = c->type,
            .domain = c->domain,
            .host = "",
            .iface = ni[i],
            .proto = -1,
            .port = 0,
            .txt = c->new_.txt,
            .txt_len = c->new_.txt_len,
            .address = NULL,
        };
        pl__browser_resolved(b, &r);
        if (!alive(actx))
            return;
    }
}

/* ---------------------------------------------------------------- connecting */

int pl__apple_target(const pl_service *svc, pl_apple_target *t)
{
    if (!svc || !t)
        return PL_ERR_INVALID;
    memset(t, 0, sizeof *t);
    if (svc->type && svc->type[0]) {
        if (!svc->name || !svc->name[0] || strlen(svc->name) >= sizeof t->name ||
            strlen(svc->type) >= sizeof t->type)
            return PL_ERR_INVALID;
        t->kind = PL_APPLE_TARGET_BONJOUR;
        memcpy(t->name, svc->name, strlen(svc->name) + 1);
        if (pl__apple_normalize(svc->type, NULL, t->type, sizeof t->type) != PL_OK ||
            pl__apple_normalize(svc->domain, "local", t->domain, sizeof t->domain) != PL_OK)
            return PL_ERR_INVALID;
        return PL_OK;
    }
    if (svc->port == 0)
        return PL_ERR_INVALID;
    snprintf(t->port, sizeof t->port, "%u", (unsigned)svc->port);
    if (svc->n_addresses && svc->addresses) {
        t->kind = PL_APPLE_TARGET_ADDRESS;
        return pl_address_to_string(&svc->addresses[0], t->address, sizeof t->address) == PL_OK
                   ? PL_OK
                   : PL_ERR_INVALID;
    }
    if (svc->host && svc->host[0] && strlen(svc->host) < sizeof t->host) {
        t->kind = PL_APPLE_TARGET_HOST;
        memcpy(t->host, svc->host, strlen(svc->host) + 1);
        return PL_OK;
    }
    return PL_ERR_INVALID;
}
