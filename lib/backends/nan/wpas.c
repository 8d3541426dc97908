/* SPDX-License-Identifier: ISC */
/*
 * The "nan" discovery backend on Linux (experimental): Wi-Fi Aware
 * unsynchronized service discovery (NAN USD) through wpa_supplicant's
 * control interface, which has it from version 2.11 when built with
 * CONFIG_NAN_USD=y (hostap's wpa_supplicant/README-NAN-USD).
 *
 * The control interface is a UNIX datagram socket per wireless interface
 * (/run/wpa_supplicant/wlan0). The client binds a socket of its own (an
 * abstract, autobound one here: nothing left on disk), sends one command
 * per datagram and gets one reply per command, in order; after "ATTACH"
 * the same socket also receives events, "<level>EVENT fields...", which a
 * reply never starts with (wpa_ctrl.c tells them apart the same way).
 * open() asks "GET_CAPABILITY nan", which answers "USD" where NAN USD is
 * built in and "FAIL" in 2.10 (Debian 12), and then attaches; both wait
 * a bounded time, as avahi_client_new() does. Everything later is
 * asynchronous: a queue of commands, one in flight at a time.
 *
 *  - pl_publish: "NAN_PUBLISH service_name=<type> ttl=<s> ssi=<hex>", the
 *    SSI holding the name, port and TXT record (ssi.c); a new TXT record:
 *    "NAN_UPDATE_PUBLISH publish_id=<id> ssi=<hex>"; withdrawing:
 *    "NAN_CANCEL_PUBLISH publish_id=<id>".
 *  - pl_browse: "NAN_SUBSCRIBE service_name=<type> ttl=<s>"; each
 *    "NAN-DISCOVERY-RESULT subscribe_id= publish_id= address= ... ssi="
 *    is an instance seen (a publisher repeats it while it publishes).
 *    NAN USD has no message for a publisher that stops: one not heard
 *    from for stale_ms (10 s) is reported removed.
 *  - A publication or subscription that ends by its time to live
 *    ("NAN-PUBLISH-TERMINATED" / "NAN-SUBSCRIBE-TERMINATED ... reason=timeout")
 *    is started again; ended for another reason (user-request: someone
 *    ran NAN_CANCEL_* or NAN_FLUSH; failure) it fails: PL_PUBLISH_FAILED,
 *    or every instance removed and PL_BROWSE_FAILED.
 *  - "PING" every keepalive_ms while idle: a socket that went away (the
 *    daemon stopped) fails the next send or answers nothing; then every
 *    instance is reported removed and the backend reconnects every
 *    keepalive_ms, restoring publications and subscriptions.
 */
#include "backends/nan/nan.h"

#include <dirent.h>
#include <errno.h>
#include <net/if.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define CTRL_DIR "/run/wpa_supplicant" /* Debian's wpa_supplicant.service: -O /run/wpa_supplicant */
#define TTL_S 600            /* a publication's or subscription's time to live; renewed when it runs out */
#define STALE_MS 10000
#define KEEPALIVE_MS 5000
#define WINDOW_MS 2000
#define REPLY_MS 5000        /* for an answer to a command (wpa_ctrl_request() waits 10 s) */
#define OPEN_WAIT_MS 3000    /* for each answer during open() */
#define MSG_MAX 8192         /* wpa_supplicant's CTRL_IFACE_MAX_LEN */
#define READS_PER_WAKE 32    /* datagrams handled per readiness, so that timers get their turn */

typedef enum cmd_kind { CMD_CAPABILITY, CMD_ATTACH, CMD_PING, CMD_PUBLISH, CMD_SUBSCRIBE, CMD_OTHER } cmd_kind;

typedef struct cmd {
    struct cmd *next;
    cmd_kind kind;
    void *owner; /* the npub / nbrowse a PUBLISH / SUBSCRIBE is for; NULL once that is gone */
    int sent;
    char text[];
} cmd;

typedef struct nan_ctx {
    pl_discovery *d;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    size_t max_ssi;
    int stale_ms, keepalive_ms, window_ms;
    int iface;          /* the index of the interface the socket is named after, or -1 */
    int fd;             /* -1 while disconnected */
    int up;             /* attached: publications and subscriptions may be sent */
    int broken;         /* a send failed where no callback may run: the keepalive timer handles it */
    int lost_logged;    /* the loss was logged: reconnection attempts stay quiet */
    int told_no_nan;    /* a reconnection found no NAN USD, and said so */
    pl_watch *w;
    pl_timeout *keepalive; /* PING while idle; reconnect while disconnected */
    pl_timeout *reply;     /* deadline of the command in flight */
    cmd *queue;            /* its head is in flight once sent */
    char *buf;             /* MSG_MAX + 1 */
} nan_ctx;

typedef struct npub {
    pl_publication *p;
    int id;      /* publish_id; 0 if none */
    int pending; /* a NAN_PUBLISH is queued or in flight */
    int dirty;   /* the TXT record changed meanwhile: update once the id is known */
} npub;

struct nbrowse;

typedef struct peer {
    struct peer *next;
    struct nbrowse *nb;
    char address[18]; /* the publisher's MAC address, as the event gives it */
    int publish_id;
    int tag;          /* its source's "proto" in the generic layer */
    char name[64];
    pl_timeout *stale;
} peer;

typedef struct nbrowse {
    pl_browser *b;
    int id;
    int pending;
    int windowed; /* the ALL_FOR_NOW window was started */
    int next_tag;
    peer *peers;
    pl_timeout *window;
} nbrowse;

static nan_ctx *ctx_of(pl_discovery *d)
{
    return d->priv;
}

/* ---------------------------------------------------------------- the socket */

static int error_of(int e)
{
    return e == EACCES || e == EPERM ? PL_ERR_PERMISSION : e == ENOMEM || e == ENOBUFS ? PL_ERR_NOMEM : PL_ERR_DAEMON;
}

/* A socket connected to the control interface, or -errno. */
static int ctrl_connect(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -errno;
    /* wpa_supplicant answers to the sender's address, so the client needs one: an abstract
     * address the kernel picks (Linux autobind) leaves no file behind. */
    struct sockaddr_un local = {.sun_family = AF_UNIX};
    struct sockaddr_un remote = {.sun_family = AF_UNIX};
    memcpy(remote.sun_path, path, strlen(path) + 1);
    if (bind(fd, (struct sockaddr *)&local, sizeof(sa_family_t)) < 0 ||
        connect(fd, (struct sockaddr *)&remote, sizeof remote) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

/* A reply without its trailing newline. */
static void chomp(char *s)
{
    size_t n = strlen(s);
    while (n && (s[n - 1] == '\n' || s[n - 1] == '\r'))
        s[--n] = '\0';
}

/* One command and its answer, waiting at most OPEN_WAIT_MS: for open() only, before ATTACH
 * (so that no event can come first). 0, or -errno (-ETIMEDOUT). */
static int exchange(int fd, const char *command, char *reply, size_t cap)
{
    if (send(fd, command, strlen(command), 0) < 0)
        return -errno;
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    int r;
    do
        r = poll(&pfd, 1, OPEN_WAIT_MS);
    while (r < 0 && errno == EINTR);
    if (r <= 0)
        return r == 0 ? -ETIMEDOUT : -errno;
    ssize_t n = recv(fd, reply, cap - 1, 0);
    if (n < 0)
        return -errno;
    reply[n] = '\0';
    chomp(reply);
    return 0;
}

/* "GET_CAPABILITY nan" answers "USD" (ctrl_iface.c, CONFIG_NAN_USD); later versions may list more. */
static int has_usd(const char *reply)
{
    for (const char *s = reply; *s;) {
        size_t n = strcspn(s, " ");
        if (n == 3 && strncmp(s, "USD", 3) == 0)
            return 1;
        s += n;
        s += strspn(s, " ");
    }
    return 0;
}

/* At INFO from open(), as the avahi backend's causes: pl_discovery_new() logs the error it returns
 * (pl_strerror(PL_ERR_NO_WIFI_AWARE) names the version), so that plcat prints one line. */
static void log_no_nan(const nan_ctx *c, pl_log_level level, const char *reply)
{
    pl__log(level, "nan: wpa_supplicant at %s has no NAN USD (GET_CAPABILITY nan: %s): Wi-Fi Aware "
            "needs wpa_supplicant 2.11 or later built with CONFIG_NAN_USD=y (Debian 12 ships 2.10)",
            c->path, reply);
}

/* The only interface socket in dir (wpa_cli's default, without its P2P device sockets). */
static int find_ctrl(const char *dir, char *out, size_t cap)
{
    DIR *dh = opendir(dir);
    if (!dh) {
        pl__log(PL_LOG_INFO, "nan: no wpa_supplicant control directory %s (%s): is wpa_supplicant running? "
                "PEERLINK_NAN_CTRL names an interface's control socket", dir, strerror(errno));
        return PL_ERR_DAEMON;
    }
    int found = 0;
    char first[256] = "";
    struct dirent *e;
    while ((e = readdir(dh))) {
        if (e->d_name[0] == '.' || strncmp(e->d_name, "p2p-dev-", 8) == 0)
            continue;
        char path[sizeof(((struct sockaddr_un *)0)->sun_path) + 256];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (lstat(path, &st) != 0 || !S_ISSOCK(st.st_mode))
            continue;
        if (found++ == 0)
            snprintf(first, sizeof first, "%s", e->d_name);
        else
            pl__log(PL_LOG_INFO, "nan: control sockets for %s and %s in %s: set PEERLINK_NAN_CTRL to the one "
                    "to use", first, e->d_name, dir);
    }
    closedir(dh);
    if (found != 1) {
        if (!found)
            pl__log(PL_LOG_INFO, "nan: no control socket in %s: is wpa_supplicant running on a wireless "
                    "interface? PEERLINK_NAN_CTRL names one", dir);
        return PL_ERR_DAEMON;
    }
    if ((size_t)snprintf(out, cap, "%s/%s", dir, first) >= cap) {
        pl__log(PL_LOG_INFO, "nan: the control socket path %s/%s is too long", dir, first);
        return PL_ERR_INVALID;
    }
    return PL_OK;
}

/* ---------------------------------------------------------------- the command queue */

static void kick(nan_ctx *c);

#if defined(__GNUC__)
__attribute__((format(printf, 4, 5)))
#endif
static int push(nan_ctx *c, cmd_kind kind, void *owner, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    cmd *k = n < 0 ? NULL : malloc(sizeof *k + (size_t)n + 1);
    if (!k)
        return PL_ERR_NOMEM;
    va_start(ap, fmt);
    vsnprintf(k->text, (size_t)n + 1, fmt, ap);
    va_end(ap);
    k->next = NULL;
    k->kind = kind;
    k->owner = owner;
    k->sent = 0;
    cmd **pk = &c->queue;
    while (*pk)
        pk = &(*pk)->next;
    *pk = k;
    kick(c);
    return PL_OK;
}

/* Send the head of the queue if it is not in flight. Never calls back: a failure
 * is left to the keepalive timer. */
static void kick(nan_ctx *c)
{
    cmd *k = c->queue;
    if (c->fd < 0 || c->broken || !k || k->sent)
        return;
    if (send(c->fd, k->text, strlen(k->text), MSG_DONTWAIT) < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
            c->d->poll->watch_update(c->w, PL_WATCH_IN | PL_WATCH_OUT); /* its queue is full: wait */
            return;
        }
        pl__log(PL_LOG_DEBUG, "nan: sending to %s: %s", c->path, strerror(errno));
        c->broken = 1;
        c->d->poll->timeout_update(c->keepalive, 0);
        return;
    }
    k->sent = 1;
    c->d->poll->timeout_update(c->reply, REPLY_MS);
}

static void queue_free(nan_ctx *c)
{
    while (c->queue) {
        cmd *k = c->queue;
        c->queue = k->next;
        free(k);
    }
}

/* The queued PUBLISH / SUBSCRIBE of owner, which is going away: dropped if not sent yet,
 * else orphaned (its answer's id is then cancelled). */
static void disown(nan_ctx *c, void *owner)
{
    for (cmd **pk = &c->queue; *pk;) {
        cmd *k = *pk;
        if (k->owner != owner) {
            pk = &k->next;
            continue;
        }
        if (k->sent) {
            k->owner = NULL;
            pk = &k->next;
        } else {
            *pk = k->next;
            free(k);
        }
    }
}

/* ---------------------------------------------------------------- publishing */

/* The SSI of p in hex (malloc'd), or NULL with *err set. */
static char *ssi_hex(nan_ctx *c, pl_publication *p, int *err)
{
    size_t len = 0;
    if ((*err = pl__nan_ssi_encode(p->name, p->port, p->txt, c->max_ssi, NULL, &len)) != PL_OK)
        return NULL;
    uint8_t *bin = malloc(len);
    char *hex = malloc(2 * len + 1);
    if (bin && hex && (*err = pl__nan_ssi_encode(p->name, p->port, p->txt, c->max_ssi, bin, &len)) == PL_OK) {
        pl__nan_hex(bin, len, hex);
        free(bin);
        return hex;
    }
    if (!bin || !hex)
        *err = PL_ERR_NOMEM;
    free(bin);
    free(hex);
    return NULL;
}

static int pub_start(nan_ctx *c, npub *np)
{
    int err;
    char *hex = ssi_hex(c, np->p, &err);
    if (!hex)
        return err;
    err = push(c, CMD_PUBLISH, np, "NAN_PUBLISH service_name=%s ttl=%d ssi=%s", np->p->type, TTL_S, hex);
    free(hex);
    if (err == PL_OK) {
        np->pending = 1;
        np->dirty = 0;
    }
    return err;
}

static int nan_publish(pl_publication *p)
{
    nan_ctx *c = ctx_of(p->d);
    size_t len = 0;
    int err = pl__nan_ssi_encode(p->name, p->port, p->txt, c->max_ssi, NULL, &len);
    if (err != PL_OK)
        return err;
    npub *np = calloc(1, sizeof *np);
    if (!np)
        return PL_ERR_NOMEM;
    np->p = p;
    if (c->up && (err = pub_start(c, np)) != PL_OK) {
        free(np);
        return err;
    }
    p->priv = np;
    if (pl__log_wants(PL_LOG_DEBUG)) {
        uint8_t id[PL__NAN_SERVICE_ID_LEN];
        char hex[2 * PL__NAN_SERVICE_ID_LEN + 1];
        pl__nan_service_id(p->type, id);
        pl__nan_hex(id, sizeof id, hex);
        pl__log(PL_LOG_DEBUG, "nan: publishing \"%s\" as %s (service ID %s), %zu bytes of service info",
                p->name, p->type, hex, len);
    }
    return PL_OK;
}

static int nan_publish_update_txt(pl_publication *p)
{
    nan_ctx *c = ctx_of(p->d);
    npub *np = p->priv;
    int err;
    char *hex = ssi_hex(c, p, &err);
    if (!hex)
        return err;
    if (np->id > 0)
        err = push(c, CMD_OTHER, NULL, "NAN_UPDATE_PUBLISH publish_id=%d ssi=%s", np->id, hex);
    else
        np->dirty = np->pending; /* else published with the new record once reconnected */
    free(hex);
    return err;
}

static void nan_unpublish(pl_publication *p)
{
    nan_ctx *c = ctx_of(p->d);
    npub *np = p->priv;
    disown(c, np);
    if (np->id > 0 && c->up)
        push(c, CMD_OTHER, NULL, "NAN_CANCEL_PUBLISH publish_id=%d", np->id);
    free(np);
    p->priv = NULL;
}

/* ---------------------------------------------------------------- browsing */

static int browse_start(nan_ctx *c, nbrowse *nb)
{
    int err = push(c, CMD_SUBSCRIBE, nb, "NAN_SUBSCRIBE service_name=%s ttl=%d", nb->b->type, TTL_S);
    if (err == PL_OK)
        nb->pending = 1;
    return err;
}

static void peer_free(nan_ctx *c, peer *pe)
{
    c->d->poll->timeout_free(pe->stale);
    free(pe);
}

static void peers_free(nan_ctx *c, nbrowse *nb)
{
    while (nb->peers) {
        peer *pe = nb->peers;
        nb->peers = pe->next;
        peer_free(c, pe);
    }
}

/* Not heard from for stale_ms: gone, as far as anyone can tell. */
static void stale_expired(pl_timeout *t, void *userdata)
{
    peer *pe = userdata;
    nbrowse *nb = pe->nb;
    nan_ctx *c = ctx_of(nb->b->d);
    for (peer **pp = &nb->peers; *pp; pp = &(*pp)->next) {
        if (*pp == pe) {
            *pp = pe->next;
            break;
        }
    }
    char name[64];
    memcpy(name, pe->name, sizeof name);
    int tag = pe->tag;
    pl__log(PL_LOG_DEBUG, "nan: %s (publish_id %d) not heard from for %d ms: removed", pe->address,
            pe->publish_id, c->stale_ms);
    peer_free(c, pe);
    pl__browser_lost(nb->b, name, nb->b->type, nb->b->domain, c->iface, tag);
}

static void window_expired(pl_timeout *t, void *userdata)
{
    nbrowse *nb = userdata;
    pl__browser_all_for_now(nb->b);
}

static int nan_browse(pl_browser *b)
{
    nan_ctx *c = ctx_of(b->d);
    if (b->types) {
        pl__log(PL_LOG_ERROR, "nan: Wi-Fi Aware cannot list the service types around: a subscriber "
                "names the one it looks for");
        return PL_ERR_UNSUPPORTED;
    }
    nbrowse *nb = calloc(1, sizeof *nb);
    if (!nb)
        return PL_ERR_NOMEM;
    nb->b = b;
    nb->window = c->d->poll->timeout_new(c->d->poll, -1, window_expired, nb);
    int err = nb->window ? PL_OK : PL_ERR_NOMEM;
    if (err == PL_OK && c->up)
        err = browse_start(c, nb);
    if (err != PL_OK) {
        if (nb->window)
            c->d->poll->timeout_free(nb->window);
        free(nb);
        return err;
    }
    b->priv = nb;
    return PL_OK;
}

static void nan_unbrowse(pl_browser *b)
{
    nan_ctx *c = ctx_of(b->d);
    nbrowse *nb = b->priv;
    disown(c, nb);
    if (nb->id > 0 && c->up)
        push(c, CMD_OTHER, NULL, "NAN_CANCEL_SUBSCRIBE subscribe_id=%d", nb->id);
    peers_free(c, nb);
    c->d->poll->timeout_free(nb->window);
    free(nb);
    b->priv = NULL;
}

/* ---------------------------------------------------------------- events */

/* The value of "key=" among an event's space-separated fields; NULL if absent. */
static const char *field(const char *ev, const char *key, size_t *len)
{
    size_t k = strlen(key);
    for (const char *s = ev; *s;) {
        size_t n = strcspn(s, " ");
        if (n > k && strncmp(s, key, k) == 0 && s[k] == '=') {
            *len = n - k - 1;
            return s + k + 1;
        }
        s += n;
        s += strspn(s, " ");
    }
    return NULL;
}

/* A positive decimal field, or -1. */
static int field_id(const char *ev, const char *key)
{
    size_t n = 0;
    const char *v = field(ev, key, &n);
    if (!v || n < 1 || n > 9)
        return -1;
    int id = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return -1;
        id = id * 10 + (v[i] - '0');
    }
    return id > 0 ? id : -1;
}

static nbrowse *browse_by_id(nan_ctx *c, int id)
{
    for (pl_browser *b = c->d->browsers; b; b = b->next) {
        nbrowse *nb = b->priv;
        if (nb && nb->id == id)
            return nb;
    }
    return NULL;
}

static npub *pub_by_id(nan_ctx *c, int id)
{
    for (pl_publication *p = c->d->pubs; p; p = p->next) {
        npub *np = p->priv;
        if (np && np->id == id)
            return np;
    }
    return NULL;
}

/* NAN-DISCOVERY-RESULT subscribe_id=<own id> publish_id=<peer's id> address=<MAC> fsd= fsd_gas=
 * srv_proto_type= ssi=<hex> (README-NAN-USD; notify.c). */
static void discovery_result(nan_ctx *c, const char *ev)
{
    nbrowse *nb = browse_by_id(c, field_id(ev, "subscribe_id"));
    int publish_id = field_id(ev, "publish_id");
    size_t alen = 0, hlen = 0;
    const char *addr = field(ev, "address", &alen);
    const char *hex = field(ev, "ssi", &hlen);
    if (!nb || publish_id < 0 || !addr || alen != 17 || !hex)
        return; /* another client's subscription, or not what the documentation gives */
    uint8_t ssi[MSG_MAX / 2];
    char name[64];
    uint16_t port = 0;
    const uint8_t *txt = NULL;
    size_t txt_len = 0;
    long n = pl__nan_unhex(hex, hlen, ssi);
    if (n < 0 || pl__nan_ssi_decode(ssi, (size_t)n, name, &port, &txt, &txt_len) != PL_OK) {
        pl__log(PL_LOG_DEBUG, "nan: %.17s (publish_id %d) sends service info that is not peerlink's: ignored",
                addr, publish_id);
        return;
    }
    peer *pe = nb->peers;
    while (pe && !(pe->publish_id == publish_id && strncmp(pe->address, addr, 17) == 0))
        pe = pe->next;
    pl_browser *b = nb->b;
    if (!pe) {
        pe = calloc(1, sizeof *pe);
        if (!pe)
            return;
        pe->stale = c->d->poll->timeout_new(c->d->poll, -1, stale_expired, pe);
        if (!pe->stale) {
            free(pe);
            return;
        }
        pe->nb = nb;
        memcpy(pe->address, addr, 17);
        pe->publish_id = publish_id;
        pe->tag = ++nb->next_tag;
        pe->next = nb->peers;
        nb->peers = pe;
    } else if (strcmp(pe->name, name) != 0) {
        /* The publisher renamed its instance: the old name is gone. */
        c->d->poll->timeout_update(pe->stale, c->stale_ms);
        char old[64];
        memcpy(old, pe->name, sizeof old);
        memcpy(pe->name, name, sizeof name);
        if (!pl__browser_lost(b, old, b->type, b->domain, c->iface, pe->tag))
            return;
    }
    memcpy(pe->name, name, sizeof name);
    c->d->poll->timeout_update(pe->stale, c->stale_ms);
    pl_resolved r = {name, b->type, b->domain, "", c->iface, pe->tag, port, txt, txt_len, NULL};
    pl__browser_resolved(b, &r);
}

static void subscribe_ended(nan_ctx *c, const char *ev)
{
    nbrowse *nb = browse_by_id(c, field_id(ev, "subscribe_id"));
    if (!nb)
        return;
    size_t n = 0;
    const char *reason = field(ev, "reason", &n);
    nb->id = 0;
    if (reason && n == 7 && strncmp(reason, "timeout", 7) == 0) {
        if (browse_start(c, nb) == PL_OK) /* its time to live ran out: renewed */
            return;
    }
    pl_browser *b = nb->b;
    pl__log(PL_LOG_ERROR, "nan: wpa_supplicant ended the subscription to %s (reason=%.*s)", b->type,
            reason ? (int)n : 7, reason ? reason : "unknown");
    peers_free(c, nb);
    pl__browser_lost_all(b);
    pl__browser_failed(b, PL_ERR_BACKEND);
}

static void publish_ended(nan_ctx *c, const char *ev)
{
    npub *np = pub_by_id(c, field_id(ev, "publish_id"));
    if (!np)
        return;
    size_t n = 0;
    const char *reason = field(ev, "reason", &n);
    np->id = 0;
    if (reason && n == 7 && strncmp(reason, "timeout", 7) == 0) {
        if (pub_start(c, np) == PL_OK)
            return;
    }
    pl__log(PL_LOG_ERROR, "nan: wpa_supplicant ended the publication of \"%s\" (reason=%.*s)", np->p->name,
            reason ? (int)n : 7, reason ? reason : "unknown");
    pl__publication_event(np->p, PL_PUBLISH_FAILED, PL_ERR_BACKEND);
}

static void event(nan_ctx *c, char *ev)
{
    if (strncmp(ev, "IFNAME=", 7) == 0) { /* only on the global interface, but harmless */
        ev += strcspn(ev, " ");
        ev += strspn(ev, " ");
    }
    if (ev[0] == '<')
        ev += strcspn(ev, ">") + (strchr(ev, '>') ? 1 : 0);
    chomp(ev);
    /* Prefixes: src/common/wpa_ctrl.h. */
    if (strncmp(ev, "NAN-DISCOVERY-RESULT ", 21) == 0)
        discovery_result(c, ev);
    else if (strncmp(ev, "NAN-SUBSCRIBE-TERMINATED ", 25) == 0)
        subscribe_ended(c, ev);
    else if (strncmp(ev, "NAN-PUBLISH-TERMINATED ", 23) == 0)
        publish_ended(c, ev);
}

/* ---------------------------------------------------------------- replies, loss, reconnection */

static void restore(nan_ctx *c)
{
    pl_discovery *d = c->d;
    for (pl_browser *b = d->browsers, *next; b; b = next) {
        next = b->next;
        nbrowse *nb = b->priv;
        if (nb && !nb->pending && !nb->id && browse_start(c, nb) != PL_OK)
            pl__browser_failed(b, PL_ERR_NOMEM);
    }
    for (pl_publication *p = d->pubs, *next; p; p = next) {
        next = p->next;
        npub *np = p->priv;
        int err;
        if (np && !np->pending && !np->id && (err = pub_start(c, np)) != PL_OK)
            pl__publication_event(p, PL_PUBLISH_FAILED, err);
    }
}

/* Close the connection and forget what wpa_supplicant had for us; the keepalive timer reconnects. */
static void disconnect(nan_ctx *c)
{
    if (c->w)
        c->d->poll->watch_free(c->w);
    c->w = NULL;
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->up = 0;
    c->broken = 0;
    queue_free(c);
    c->d->poll->timeout_update(c->reply, -1);
    c->d->poll->timeout_update(c->keepalive, c->keepalive_ms);
    for (pl_publication *p = c->d->pubs; p; p = p->next) {
        npub *np = p->priv;
        if (np)
            np->id = np->pending = 0;
    }
    for (pl_browser *b = c->d->browsers; b; b = b->next) {
        nbrowse *nb = b->priv;
        if (nb) {
            nb->id = nb->pending = 0;
            peers_free(c, nb);
        }
    }
}

static void lost(nan_ctx *c, const char *why)
{
    if (!c->lost_logged)
        pl__log(PL_LOG_WARNING, "nan: lost wpa_supplicant at %s (%s); reconnecting every %d ms", c->path, why,
                c->keepalive_ms);
    c->lost_logged = 1;
    disconnect(c);
    /* Report last: the callbacks may free browsers. */
    for (pl_browser *b = c->d->browsers, *next; b; b = next) {
        next = b->next;
        pl__browser_lost_all(b);
    }
}

static void reply_for(nan_ctx *c, cmd *k, const char *reply)
{
    int id = 0;
    if (k->kind == CMD_PUBLISH || k->kind == CMD_SUBSCRIBE) {
        char *end;
        long v = strtol(reply, &end, 10);
        id = (end != reply && !*end && v > 0 && v < 1000000) ? (int)v : 0;
    }
    switch (k->kind) {
    case CMD_CAPABILITY:
        if (has_usd(reply)) {
            push(c, CMD_ATTACH, NULL, "ATTACH");
            return;
        }
        if (!c->told_no_nan)
            log_no_nan(c, PL_LOG_ERROR, reply);
        c->told_no_nan = 1;
        disconnect(c); /* tried again later: someone may install a newer one */
        return;
    case CMD_ATTACH:
        if (strcmp(reply, "OK") != 0) {
            disconnect(c);
            return;
        }
        pl__log(PL_LOG_INFO, "nan: reconnected to wpa_supplicant at %s", c->path);
        c->up = 1;
        c->lost_logged = c->told_no_nan = 0;
        restore(c);
        return;
    case CMD_PING:
    case CMD_OTHER:
        if (strcmp(reply, "PONG") != 0 && strcmp(reply, "OK") != 0)
            pl__log(PL_LOG_WARNING, "nan: wpa_supplicant answered \"%s\" to \"%.40s\"", reply, k->text);
        return;
    case CMD_PUBLISH: {
        npub *np = k->owner;
        if (!np) { /* withdrawn meanwhile */
            if (id)
                push(c, CMD_OTHER, NULL, "NAN_CANCEL_PUBLISH publish_id=%d", id);
            return;
        }
        np->pending = 0;
        if (!id) {
            int err = strcmp(reply, "UNKNOWN COMMAND") == 0 ? PL_ERR_NO_WIFI_AWARE : PL_ERR_BACKEND;
            pl__log(PL_LOG_ERROR, "nan: wpa_supplicant refused to publish \"%s\": %s", np->p->name, reply);
            pl__publication_event(np->p, PL_PUBLISH_FAILED, err);
            return;
        }
        np->id = id;
        if (np->dirty) {
            int err;
            char *hex = ssi_hex(c, np->p, &err);
            if (hex)
                push(c, CMD_OTHER, NULL, "NAN_UPDATE_PUBLISH publish_id=%d ssi=%s", id, hex);
            free(hex);
            np->dirty = 0;
        }
        pl__publication_event(np->p, PL_PUBLISH_ESTABLISHED, PL_OK);
        return;
    }
    case CMD_SUBSCRIBE: {
        nbrowse *nb = k->owner;
        if (!nb) {
            if (id)
                push(c, CMD_OTHER, NULL, "NAN_CANCEL_SUBSCRIBE subscribe_id=%d", id);
            return;
        }
        nb->pending = 0;
        if (!id) {
            int err = strcmp(reply, "UNKNOWN COMMAND") == 0 ? PL_ERR_NO_WIFI_AWARE : PL_ERR_BACKEND;
            pl__log(PL_LOG_ERROR, "nan: wpa_supplicant refused to subscribe to %s: %s", nb->b->type, reply);
            pl__browser_failed(nb->b, err);
            return;
        }
        nb->id = id;
        if (!nb->windowed) {
            nb->windowed = 1;
            c->d->poll->timeout_update(nb->window, c->window_ms);
        }
        return;
    }
    }
}

static void on_message(nan_ctx *c, char *msg)
{
    if (msg[0] == '<' || strncmp(msg, "IFNAME=", 7) == 0) {
        event(c, msg);
        return;
    }
    cmd *k = c->queue;
    if (!k || !k->sent)
        return; /* an answer nobody waits for */
    c->queue = k->next;
    c->d->poll->timeout_update(c->reply, -1);
    chomp(msg);
    reply_for(c, k, msg); /* may call back */
    free(k);
    kick(c);
}

static void on_io(pl_watch *w, int fd, unsigned events, void *userdata)
{
    nan_ctx *c = userdata;
    if (events & PL_WATCH_OUT) {
        c->d->poll->watch_update(w, PL_WATCH_IN);
        kick(c);
    }
    for (int i = 0; i < READS_PER_WAKE && c->fd == fd; i++) {
        ssize_t n = recv(fd, c->buf, MSG_MAX, MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
                return;
            lost(c, strerror(errno));
            return;
        }
        c->buf[n] = '\0';
        on_message(c, c->buf);
    }
}

static void on_reply_timeout(pl_timeout *t, void *userdata)
{
    lost(userdata, "no answer");
}

static void on_keepalive(pl_timeout *t, void *userdata)
{
    nan_ctx *c = userdata;
    c->d->poll->timeout_update(t, c->keepalive_ms);
    if (c->broken) {
        lost(c, "the socket is gone");
        return;
    }
    if (c->fd >= 0) {
        if (c->up && !c->queue)
            push(c, CMD_PING, NULL, "PING");
        return;
    }
    int fd = ctrl_connect(c->path);
    if (fd < 0)
        return; /* not back yet */
    c->w = c->d->poll->watch_new(c->d->poll, fd, PL_WATCH_IN, on_io, c);
    if (!c->w) {
        close(fd);
        return;
    }
    c->fd = fd;
    push(c, CMD_CAPABILITY, NULL, "GET_CAPABILITY nan");
}

/* ---------------------------------------------------------------- the connection */

static void ctx_free(nan_ctx *c)
{
    const pl_poll *poll = c->d->poll;
    if (c->w)
        poll->watch_free(c->w);
    if (c->fd >= 0)
        close(c->fd);
    if (c->keepalive)
        poll->timeout_free(c->keepalive);
    if (c->reply)
        poll->timeout_free(c->reply);
    queue_free(c);
    free(c->buf);
    free(c);
}

static int nan_open(pl_discovery *d)
{
    const pl__nan_options *opt = d->options;
    nan_ctx *c = calloc(1, sizeof *c);
    if (!c)
        return PL_ERR_NOMEM;
    c->d = d;
    c->fd = -1;
    c->max_ssi = opt && opt->max_ssi ? opt->max_ssi : PL__NAN_DEFAULT_MAX_SSI;
    c->stale_ms = opt && opt->stale_ms > 0 ? opt->stale_ms : STALE_MS;
    c->keepalive_ms = opt && opt->keepalive_ms > 0 ? opt->keepalive_ms : KEEPALIVE_MS;
    c->window_ms = opt && opt->window_ms > 0 ? opt->window_ms : WINDOW_MS;
    const char *path = opt && opt->ctrl_path ? opt->ctrl_path : getenv("PEERLINK_NAN_CTRL");
    int err = PL_OK;
    if (c->max_ssi > PL__NAN_LIMIT_SSI) {
        pl__log(PL_LOG_INFO, "nan: a service-info cap of %zu bytes is over %d", c->max_ssi, PL__NAN_LIMIT_SSI);
        err = PL_ERR_INVALID;
    }
    else if (path && path[0]) {
        if (strlen(path) >= sizeof c->path) {
            pl__log(PL_LOG_INFO, "nan: the control socket path is over %zu bytes: %.60s...", sizeof c->path - 1,
                    path);
            err = PL_ERR_INVALID;
        } else
            memcpy(c->path, path, strlen(path) + 1);
    } else
        err = find_ctrl(CTRL_DIR, c->path, sizeof c->path);
    if (err != PL_OK) {
        free(c);
        return err;
    }
    const char *base = strrchr(c->path, '/');
    unsigned idx = if_nametoindex(base ? base + 1 : c->path);
    c->iface = idx ? (int)idx : -1;

    char reply[256];
    int fd = ctrl_connect(c->path);
    int e = fd < 0 ? -fd : 0;
    if (!e)
        e = -exchange(fd, "GET_CAPABILITY nan", reply, sizeof reply);
    if (e) {
        pl__log(PL_LOG_INFO, "nan: cannot reach wpa_supplicant's control socket %s: %s (PEERLINK_NAN_CTRL names "
                "it: /run/wpa_supplicant/<wireless interface>)", c->path, strerror(e));
        err = error_of(e);
    } else if (!has_usd(reply)) {
        log_no_nan(c, PL_LOG_INFO, reply);
        err = PL_ERR_NO_WIFI_AWARE;
    } else if ((e = -exchange(fd, "ATTACH", reply, sizeof reply)) != 0 || strcmp(reply, "OK") != 0) {
        pl__log(PL_LOG_INFO, "nan: wpa_supplicant at %s refused to send events (ATTACH: %s)", c->path,
                e ? strerror(e) : reply);
        err = e ? error_of(e) : PL_ERR_DAEMON;
    }
    if (err != PL_OK) {
        if (fd >= 0)
            close(fd);
        free(c);
        return err;
    }
    c->fd = fd;
    c->up = 1;
    c->buf = malloc(MSG_MAX + 1);
    c->w = d->poll->watch_new(d->poll, fd, PL_WATCH_IN, on_io, c);
    c->keepalive = d->poll->timeout_new(d->poll, c->keepalive_ms, on_keepalive, c);
    c->reply = d->poll->timeout_new(d->poll, -1, on_reply_timeout, c);
    if (!c->buf || !c->w || !c->keepalive || !c->reply) {
        ctx_free(c);
        return PL_ERR_NOMEM;
    }
    d->priv = c;
    pl__log(PL_LOG_INFO, "nan: wpa_supplicant at %s has NAN USD; attached for its events", c->path);
    return PL_OK;
}

/* Send what is still queued (the cancels of what was withdrawn last), waiting a bounded
 * time for each answer, so that wpa_supplicant does not go on publishing for the time to
 * live. Events that come meanwhile are dropped; nothing calls back. */
static void drain(nan_ctx *c)
{
    for (int rounds = 0; c->queue && c->fd >= 0 && !c->broken && rounds < 64; rounds++) {
        cmd *k = c->queue;
        if (!k->sent && send(c->fd, k->text, strlen(k->text), 0) < 0)
            return;
        k->sent = 1;
        char reply[64];
        for (;;) {
            struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
            if (poll(&pfd, 1, OPEN_WAIT_MS) <= 0)
                return;
            ssize_t n = recv(c->fd, reply, sizeof reply - 1, 0);
            if (n < 0)
                return;
            reply[n] = '\0';
            if (reply[0] != '<' && strncmp(reply, "IFNAME=", 7) != 0)
                break;
        }
        chomp(reply);
        c->queue = k->next;
        /* Orphans only remain: their ids are cancelled now. */
        if ((k->kind == CMD_PUBLISH || k->kind == CMD_SUBSCRIBE) && atoi(reply) > 0)
            push(c, CMD_OTHER, NULL, k->kind == CMD_PUBLISH ? "NAN_CANCEL_PUBLISH publish_id=%d"
                                                           : "NAN_CANCEL_SUBSCRIBE subscribe_id=%d", atoi(reply));
        free(k);
    }
}

static void nan_close(pl_discovery *d)
{
    nan_ctx *c = d->priv;
    drain(c);
    if (c->fd >= 0 && c->up)
        send(c->fd, "DETACH", 6, MSG_DONTWAIT);
    ctx_free(c);
    d->priv = NULL;
}

const pl_discovery_ops pl__nan_ops = {
    .name = "nan",
    .open = nan_open,
    .close = nan_close,
    .publish = nan_publish,
    .publish_update_txt = nan_publish_update_txt,
    .unpublish = nan_unpublish,
    .browse = nan_browse,
    .unbrowse = nan_unbrowse,
};
