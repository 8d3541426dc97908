/* SPDX-License-Identifier: ISC */
/*
 * The Apple backend's platform-independent logic: TXT bytes in and out
 * of the project's codec, Bonjour name normalisation, the interface
 * diff between two browse results, the reporting of a browse change to
 * the generic discovery layer, error mapping, and the choice of the
 * endpoint a connection goes to. Plain C; unit-tested on Linux
 * (tests/unit/test_apple_logic.c). Network.framework types never
 * appear here: the Apple sources copy what they need out of them.
 */
#ifndef PL_APPLE_LOGIC_H
#define PL_APPLE_LOGIC_H

#include "discovery_backend.h"

/* nw_error_domain_t values (Network/error.h); apple.c checks them with static asserts. */
#define PL_NW_DOMAIN_POSIX 1
#define PL_NW_DOMAIN_DNS 2
#define PL_NW_DOMAIN_TLS 3
/* DNSServiceErrorType values (dns_sd.h); checked the same way. */
#define PL_DNS_ERR_NO_MEMORY (-65539)
#define PL_DNS_ERR_BAD_PARAM (-65540)
#define PL_DNS_ERR_NAME_CONFLICT (-65548)
#define PL_DNS_ERR_SERVICE_NOT_RUNNING (-65563)
#define PL_DNS_ERR_POLICY_DENIED (-65570)

/*
 * The status reported when the user denied local network access (the
 * privacy prompt, or Settings > Privacy > Local Network): PL_ERR_DENIED
 * for discovery and connections alike; pl_apple_local_network_denied()
 * also tells it. See docs/APPLE.md.
 */
#define PL_APPLE_DENIED_DISCOVERY PL_ERR_DENIED
#define PL_APPLE_DENIED_CONNECT PL_ERR_DENIED

/* What an error means to the object that got it. */
typedef enum pl_apple_for {
    PL_APPLE_FOR_BROWSE = 0,
    PL_APPLE_FOR_PUBLISH = 1,
    PL_APPLE_FOR_CONNECT = 2
} pl_apple_for;

/* A Network.framework error (domain, code) as a pl_error. *denied (may be NULL) is set to 1 for a policy denial. */
int pl__apple_map_error(int domain, int code, pl_apple_for what, int *denied);

/*
 * The object entered the waiting state with this error. Returns 1 if
 * waiting cannot end by itself (the user denied local network access):
 * report failure now instead of waiting forever; 0 to keep waiting
 * (the network may come back). domain 0 (no error) keeps waiting.
 */
int pl__apple_waiting_is_fatal(int domain, int code);

/* ---------------------------------------------------------------- TXT */

/*
 * Encode txt (NULL: empty) for nw_txt_record_create_with_bytes(): RFC
 * 6763 wire format from the project's codec, never empty (an empty
 * record is the single zero byte the RFC prescribes, since
 * Network.framework refuses a zero length). *out is malloc'd.
 * PL_OK, PL_ERR_NOMEM, or the codec's error.
 */
int pl__apple_txt_to_bytes(const pl_txt *txt, uint8_t **out, size_t *len);

/*
 * Copy raw TXT bytes seen by Network.framework (bytes NULL or len 0:
 * no record) into a malloc'd buffer for the loop. A record longer than
 * PL_TXT_MAX_SIZE is replaced by an empty one (the generic layer would
 * refuse it). PL_OK or PL_ERR_NOMEM.
 */
int pl__apple_txt_copy(const uint8_t *bytes, size_t len, uint8_t **out, size_t *out_len);

/* ---------------------------------------------------------------- names */

/*
 * Copy a Bonjour type or domain as the rest of the library spells it:
 * without the trailing dot ("_peerlink._tcp.", "local." -> "_peerlink._tcp",
 * "local"). NULL or "" gives dflt. PL_OK, PL_ERR_TOO_LARGE, PL_ERR_INVALID.
 */
int pl__apple_normalize(const char *in, const char *dflt, char *out, size_t cap);

/* ---------------------------------------------------------------- browse changes */

/* One browse result as the loop sees it (everything copied out of Network.framework). */
typedef struct pl_apple_result {
    int *ifaces; /* interface indexes; an empty list is reported as the one interface -1 */
    size_t n_ifaces;
    uint8_t *txt; /* wire format, malloc'd; NULL/0: no record */
    size_t txt_len;
} pl_apple_result;

/* A change between an old and a new result of one instance (either may be absent). */
typedef struct pl_apple_change {
    char *name, *type, *domain; /* normalised */
    int has_old, has_new;
    pl_apple_result old, new_;
} pl_apple_change;

void pl__apple_change_clear(pl_apple_change *c);

/*
 * Report a change to the generic layer: lost on every interface of the
 * old result that the new one lacks, then resolved (with the new TXT,
 * host "" and port 0: Network.framework connects to the Bonjour
 * endpoint itself, see pl_apple_connect()) on every interface of the
 * new one. Each report may run the application's callback, which may
 * free b; alive(actx) is asked after each one and must return 0 once b
 * was freed (the backend's unbrowse hook knows). The caller must not
 * touch b afterwards unless alive(actx) says so.
 */
void pl__apple_apply_change(pl_browser *b, const pl_apple_change *c, int (*alive)(void *), void *actx);

/* ---------------------------------------------------------------- connecting */

typedef enum pl_apple_target_kind {
    PL_APPLE_TARGET_BONJOUR = 0, /* name, type, domain */
    PL_APPLE_TARGET_ADDRESS = 1, /* address, port */
    PL_APPLE_TARGET_HOST = 2     /* host, port */
} pl_apple_target_kind;

typedef struct pl_apple_target {
    pl_apple_target_kind kind;
    char name[64], type[64], domain[256];
    char host[256];
    char port[6];      /* decimal, for nw_endpoint_create_host() */
    char address[PL_ADDRSTRLEN]; /* numeric, with %scope for link-local */
} pl_apple_target;

/*
 * Where pl_apple_connect() connects: the Bonjour service (name, type,
 * domain) when svc has a type, so that Network.framework resolves it
 * and races every address itself (Happy Eyeballs); otherwise the first
 * address with the port; otherwise host and port. PL_OK or PL_ERR_INVALID.
 */
int pl__apple_target(const pl_service *svc, pl_apple_target *t);

#endif
