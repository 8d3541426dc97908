/* SPDX-License-Identifier: ISC */
/*
 * peerlink — DNS-SD discovery: publish a service instance, browse a type.
 *
 * A pl_discovery is a connection to one discovery backend: "avahi"
 * (avahi-daemon over D-Bus) or "mdns" (the library's built-in mDNS
 * responder and querier, no daemon; see docs/MDNS.md), or, experimental,
 * "nan" (Wi-Fi Aware discovery through wpa_supplicant on Linux; see
 * docs/WIFI-AWARE.md). Publications and browsers hang off it.
 *
 * Callback rules (all objects here):
 *  - callbacks run only from inside the pl_poll loop given to
 *    pl_discovery_new(), never from inside a constructor;
 *  - data handed to a callback is borrowed for the duration of the call;
 *  - an object may be freed from inside its own callback.
 * Threading: not thread-safe; use every object from the loop's thread.
 */
#ifndef PEERLINK_DISCOVERY_H
#define PEERLINK_DISCOVERY_H

#include <peerlink/common.h>
#include <peerlink/poll.h>
#include <peerlink/txt.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Room for any string from pl_address_to_string(), with its NUL. */
#define PL_ADDRSTRLEN 64

/** One network address of a peer. */
typedef struct pl_address {
    int family;       /**< AF_INET or AF_INET6 */
    uint8_t addr[16]; /**< 4 (AF_INET) or 16 (AF_INET6) bytes in network order */
    uint32_t ifindex; /**< interface it was seen on (the scope of a link-local address); 0 if unknown */
} pl_address;

/**
 * Format an address: "192.0.2.1", "2001:db8::1", or "fe80::1%eth0" for
 * a link-local IPv6 address (the interface name, or its index if the
 * name is unknown). PL_OK, PL_ERR_INVALID, or PL_ERR_TOO_LARGE if cap
 * is smaller than needed (PL_ADDRSTRLEN always suffices).
 */
PL_EXPORT int pl_address_to_string(const pl_address *a, char *buf, size_t cap);

/** A service instance as a browser sees it. Everything is borrowed. */
typedef struct pl_service {
    const char *name;   /**< instance name, UTF-8 */
    const char *type;   /**< e.g. "_peerlink._tcp" */
    const char *domain; /**< e.g. "local" */
    const char *host;   /**< target host name, e.g. "box.local" */
    uint16_t port;
    const pl_txt *txt;  /**< never NULL (possibly empty) */
    size_t n_addresses;
    const pl_address *addresses; /**< every address known, across interfaces and families */
} pl_service;

/**
 * A deep copy of svc (its strings, TXT record and addresses) that the
 * caller owns, e.g. to keep a browse result past its callback; free it
 * with pl_service_free(). Strings that are NULL stay NULL; a NULL txt
 * becomes an empty record, so the copy's txt is never NULL. Any thread
 * (it touches svc and the new copy only). Returns PL_OK with *out set,
 * or PL_ERR_INVALID (svc or out NULL, addresses NULL with n_addresses
 * > 0) / PL_ERR_NOMEM with *out untouched.
 */
PL_EXPORT int pl_service_dup(const pl_service *svc, pl_service **out);

/** Free a copy made by pl_service_dup(). NULL is accepted. Never pass a browser's (borrowed) svc. */
PL_EXPORT void pl_service_free(pl_service *svc);

/**
 * 1 if two instance names are the same name, as DNS-SD compares them
 * (RFC 6762 section 16): ASCII letters A-Z and a-z match case-insensitively,
 * every other byte exactly (no Unicode case folding or normalisation);
 * else 0 (also when either is NULL). What pl_connect_by_name() and the
 * rediscovery of a pl_connect() session (pl_session_set_discovery())
 * match names with.
 */
PL_EXPORT int pl_service_name_equal(const char *a, const char *b);

typedef struct pl_discovery pl_discovery;
typedef struct pl_publication pl_publication;
typedef struct pl_browser pl_browser;

/**
 * Connect to a discovery backend. backend names one ("avahi", "mdns",
 * "nan"); NULL picks the default: the first of pl_discovery_backends() that
 * opens, so "avahi" when its daemon answers and else the built-in
 * "mdns" engine ("nan" is used only when named: it reaches devices in
 * radio range through the wpa_supplicant control socket that
 * PEERLINK_NAN_CTRL names, else the only one in /run/wpa_supplicant, and
 * fails with PL_ERR_NO_WIFI_AWARE where wpa_supplicant has no NAN USD,
 * before 2.11; see docs/WIFI-AWARE.md). poll must outlive the object.
 * Returns PL_OK with *out set; on failure *out is untouched and no
 * callback is ever made: PL_ERR_UNSUPPORTED (no such backend in this
 * build), PL_ERR_DAEMON (the backend's daemon is unreachable),
 * PL_ERR_PERMISSION (the daemon or the system refused access), the
 * errors of pl_discovery_new_mdns() for "mdns" (its interfaces from
 * PEERLINK_MDNS_INTERFACES), PL_ERR_NOMEM, PL_ERR_INVALID. With NULL,
 * the last backend's error. Which backend was chosen, and why another
 * could not be opened, is logged (pl_set_log()).
 * Once connected, a backend that loses its daemon reconnects by itself
 * and restores every publication and browser (see PL_BROWSE_REMOVE).
 */
PL_EXPORT int pl_discovery_new(const pl_poll *poll, const char *backend, pl_discovery **out);

/**
 * Open the built-in mDNS backend ("mdns") on chosen interfaces.
 * interfaces: n interface names (e.g. {"lo"} for the loopback interface
 * alone, or {"wlan0"}); n == 0 (interfaces may then be NULL) means the
 * default: the names in the environment variable PEERLINK_MDNS_INTERFACES
 * (comma-separated) if set, else every interface that is up and
 * multicast-capable (others are skipped; with none left the object is made
 * but pl_publish() fails with PL_ERR_NO_INTERFACE and browsing finds
 * nothing). A named interface must exist, be up and multicast-capable
 * (loopback excepted) and join the mDNS group. The names are read during
 * the call only. Each failure is also logged (pl_set_log()) with its cause.
 * The backend binds UDP port 5353 (IPv4, and IPv6 except on loopback)
 * with SO_REUSEADDR and SO_REUSEPORT, so it shares the port with another
 * responder on the host (avahi-daemon, Android's system responder).
 * poll must outlive the object; threading as for every object here.
 * Returns PL_OK with *out set; on failure *out is untouched and no
 * callback is ever made: PL_ERR_INVALID (NULL poll or out, an empty or
 * over-long name, more than 32 names), PL_ERR_NOT_FOUND (no interface
 * of that name), PL_ERR_NO_INTERFACE (a named interface is down, cannot
 * do multicast, has no address or cannot join the group),
 * PL_ERR_PERMISSION (the system refused the socket, the bind or the group
 * join: EACCES / EPERM), PL_ERR_IO (no socket could be bound to port 5353
 * for another reason, or the interfaces could not be listed), PL_ERR_NOMEM.
 */
PL_EXPORT int pl_discovery_new_mdns(const pl_poll *poll, const char *const *interfaces, size_t n,
                                    pl_discovery **out);

/**
 * Free the connection, withdrawing every publication and stopping
 * every browser still attached to it (those handles become invalid;
 * no further callbacks). NULL is accepted. Not from inside a callback
 * of one of its publications or browsers (free those instead).
 */
PL_EXPORT void pl_discovery_free(pl_discovery *d);

/** Name of the backend in use ("avahi" or "mdns"). Static string. */
PL_EXPORT const char *pl_discovery_backend(const pl_discovery *d);

/**
 * Comma-separated names of the backends compiled into this build, in
 * order of preference for the default ("nan", last, is never a default).
 * Static string.
 */
PL_EXPORT const char *pl_discovery_backends(void);

/* ------------------------------------------------------------------ */

typedef enum pl_publish_event {
    PL_PUBLISH_ESTABLISHED = 0, /**< the instance is live under name */
    PL_PUBLISH_RENAMED = 1,     /**< name was taken; the instance is now name (reported just before its ESTABLISHED) */
    PL_PUBLISH_FAILED = 2       /**< status says why; the publication stays allocated but inert */
} pl_publish_event;

/** name is the current instance name (borrowed); status is PL_OK except for FAILED. */
typedef void (*pl_publish_cb)(pl_publication *p, pl_publish_event ev, int status,
                              const char *name, void *userdata);

/**
 * Publish an instance. name: UTF-8, 1..63 bytes (one DNS label). type:
 * "_app._tcp" or "_app._udp", app being 1..15 letters, digits or hyphens
 * (RFC 6335). txt may be NULL (empty record); it is copied.
 * cb may be NULL. Returns PL_OK with *out set (callbacks follow from
 * the loop), or with *out untouched: PL_ERR_INVALID (a rule above broken),
 * PL_ERR_NOMEM, PL_ERR_BACKEND, PL_ERR_PERMISSION (Avahi refused access),
 * PL_ERR_NO_INTERFACE (the "mdns" backend has no usable interface),
 * or PL_ERR_TOO_LARGE for a TXT record the backend
 * cannot send (the built-in "mdns" backend: over 1188 bytes encoded, see
 * docs/MDNS.md; "nan": when the record, the name and 4 bytes exceed 255
 * bytes, see docs/WIFI-AWARE.md; each "key=value" string is at most 255 bytes anyway,
 * see txt.h). Each failure is also logged (pl_set_log()) with the rule or limit. A name conflict on the network renames the instance
 * ("name #2", ...) and reports PL_PUBLISH_RENAMED.
 */
PL_EXPORT int pl_publish(pl_discovery *d, const char *name, const char *type, uint16_t port,
                         const pl_txt *txt, pl_publish_cb cb, void *userdata,
                         pl_publication **out);

/**
 * Replace the TXT record of a live publication (copied). PL_OK or an
 * error (PL_ERR_TOO_LARGE as for pl_publish()); the old record stays
 * on error.
 */
PL_EXPORT int pl_publication_set_txt(pl_publication *p, const pl_txt *txt);

/** The current instance name (it changes on a rename). Borrowed until the next callback or free. */
PL_EXPORT const char *pl_publication_name(const pl_publication *p);

/** Withdraw the instance (goodbye packets are sent by the backend) and free p. NULL is accepted. */
PL_EXPORT void pl_publication_free(pl_publication *p);

/* ------------------------------------------------------------------ */

/** The type whose browsing lists the service types on the network (RFC 6763 section 9): see pl_browse(). */
#define PL_SERVICE_TYPES "_services._dns-sd._udp"

typedef enum pl_browse_event {
    PL_BROWSE_ADD = 0,    /**< a new instance, resolved: port, TXT and addresses are known.
                               It waits until every interface and protocol the instance was
                               seen on has resolved, at most 250 ms after the first did;
                               addresses resolved later come as UPDATE */
    PL_BROWSE_UPDATE = 1, /**< its TXT, port, host or addresses changed */
    PL_BROWSE_REMOVE = 2, /**< it is gone (also sent for every instance when the daemon goes away) */
    PL_BROWSE_FAILED = 3, /**< status says why; svc is NULL; the browser stays allocated but inert */
    PL_BROWSE_ALL_FOR_NOW = 4 /**< the answers to the first query are in, and every instance among them
                                   that resolved has had its ADD: what is on the network now has been
                                   listed (Avahi's AVAHI_BROWSER_ALL_FOR_NOW, "avahi-browse -t").
                                   svc is NULL, status PL_OK. Sent once per browser (not after
                                   FAILED); browsing goes on, and later changes come as usual.
                                   When: see pl_browse(). */
} pl_browse_event;

/** svc is borrowed for the call (NULL for FAILED and ALL_FOR_NOW); for REMOVE it is the last state seen. */
typedef void (*pl_browse_cb)(pl_browser *b, pl_browse_event ev, int status,
                             const pl_service *svc, void *userdata);

/**
 * Browse type in domain (NULL: the default, "local"). Every event
 * carries the complete instance: name, port, TXT and all addresses.
 *
 * PL_BROWSE_ALL_FOR_NOW comes once the first answers are in. "avahi":
 * after Avahi's own ALL_FOR_NOW (one second after its first query) and
 * once every instance found by then has resolved (its ADD came before)
 * or failed to. "mdns" (docs/MDNS.md): one second after the first query
 * (responders answer within 20-120 ms, up to 500 ms more when they
 * aggregate, RFC 6762 sections 6 and 6.4), then once every instance seen
 * by then has resolved, or at most one second more. An instance that
 * resolves later comes as a later ADD. "apple": one second after
 * Network.framework's browser is first ready (its results carry their
 * TXT, so each instance's ADD comes with it). "nan": 2 seconds after its
 * subscription starts (Wi-Fi Aware has no end of answers); it reports an
 * instance removed once not heard from for 10 seconds (docs/WIFI-AWARE.md).
 *
 * type "_services._dns-sd._udp" (RFC 6763 section 9) browses the service
 * types on the network instead of instances: each type is an instance
 * whose name is the type ("_http._tcp"), type "_services._dns-sd._udp",
 * domain as browsed, host "", port 0, an empty TXT record and no
 * address; only ADD, REMOVE, FAILED and ALL_FOR_NOW come. (Such an svc
 * cannot be given to pl_connect().)
 *
 * Returns PL_OK with *out set, or PL_ERR_INVALID / PL_ERR_NOMEM /
 * PL_ERR_BACKEND with *out untouched; PL_ERR_UNSUPPORTED for the service
 * types on "nan".
 */
PL_EXPORT int pl_browse(pl_discovery *d, const char *type, const char *domain, pl_browse_cb cb,
                        void *userdata, pl_browser **out);

/** Stop browsing and free b. No callback follows. NULL is accepted. */
PL_EXPORT void pl_browser_free(pl_browser *b);

#ifdef __cplusplus
}
#endif
#endif
