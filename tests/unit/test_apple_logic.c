/* SPDX-License-Identifier: ISC */
/*
 * The Apple backend's platform-independent parts, on Linux: the
 * dispatch-queue-to-loop hop (lib/backends/apple/hop.c), the retain/release
 * ledger (ledger.c), TXT conversion, names, error mapping, endpoint
 * choice and the reporting of browse changes to the generic layer
 * (logic.c), and the session glue over an asynchronous transport
 * (chan.c), driven against real peerlink sessions.
 *
 * The stand-ins, and what they do NOT prove:
 *  - Network.framework is absent. Browse changes are fed as the
 *    copied-out pl_apple_change that apple.c builds from nw_browse_result
 *    objects; the copying itself (nw_browse_result_* calls, endpoint
 *    names, nw_txt_record_access_bytes) is only type-checked
 *    (scripts/apple-typecheck), never run. That Network.framework hands
 *    over the TXT record's exact wire bytes, that it reports the old and
 *    new result of an instance as this file assumes, and the order and
 *    kinds of its state changes, are not shown here.
 *  - "A Network.framework TXT record" is a byte buffer: creating one
 *    from bytes and reading them back is modelled as a copy. Whether
 *    nw_txt_record_create_with_bytes re-encodes a dictionary record
 *    differently is not shown.
 *  - The transport is a socketpair with a pl_chan_io written here. It
 *    reports ready, failure and send completions on the loop thread
 *    directly, not from a dispatch queue through the hop; the hop's own
 *    threading is tested separately with POSIX threads standing in for
 *    the queue. Happy Eyeballs inside nw_connection is not modelled: an
 *    "also-ran" is an inbound transport that fails before ready, which
 *    is how an attempt that loses the race would look if it surfaced at
 *    all. That real also-rans never surface is Network.framework's
 *    promise, not shown here.
 *  - The ledger is tested as bookkeeping: that nw_release and friends
 *    really balance the objects' counts is only as good as the calls
 *    the Apple sources make (checked statically by scripts/apple-typecheck).
 *  - Local network privacy: only the mapping of the error Apple
 *    documents (kDNSServiceErr_PolicyDenied) is tested; that the prompt
 *    being denied produces exactly that error is not.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <peerlink/peerlink.h>

#include "backends/apple/chan.h"
#include "backends/apple/hop.h"
#include "backends/apple/ledger.h"
#include "backends/apple/logic.h"
#include "discovery_backend.h"

static pl_loop *loop;
static const pl_poll *lpoll;

static int setup(void **state)
{
    (void)state;
    if (pl_loop_new(&loop) != PL_OK)
        return -1;
    lpoll = pl_loop_get_poll(loop);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    pl_loop_free(loop);
    loop = NULL;
    return 0;
}

/* Iterate until *flag becomes nonzero, at most ~5 s. */
static void run_until(const int *flag)
{
    for (int i = 0; i < 500 && !*flag; i++)
        pl_loop_iterate(loop, 10);
    assert_true(*flag);
}

static void run_for(int ms)
{
    for (int i = 0; i < ms / 10; i++)
        pl_loop_iterate(loop, 10);
}

/* ================================================================ the hop */

typedef struct tev {
    pl_hop_event base;
    int producer, seq;
    int *ran, *dropped;
    int (*last)[8]; /* last seq seen per producer */
    int *order_ok;
    pl_hop *close_me; /* run() closes this hop */
} tev;

static void tev_run(pl_hop_event *e)
{
    tev *ev = (tev *)e;
    (*ev->ran)++;
    if (ev->last) {
        if ((*ev->last)[ev->producer] + 1 != ev->seq)
            *ev->order_ok = 0;
        (*ev->last)[ev->producer] = ev->seq;
    }
    if (ev->close_me)
        pl__hop_close(ev->close_me);
    free(ev);
}

static void tev_drop(pl_hop_event *e)
{
    tev *ev = (tev *)e;
    __atomic_add_fetch(ev->dropped, 1, __ATOMIC_RELAXED);
    free(ev);
}

static tev *tev_new(int producer, int seq, int *ran, int *dropped)
{
    tev *ev = calloc(1, sizeof *ev);
    assert_non_null(ev);
    ev->base.run = tev_run;
    ev->base.drop = tev_drop;
    ev->producer = producer;
    ev->seq = seq;
    ev->ran = ran;
    ev->dropped = dropped;
    return ev;
}

static void test_ref_counts(void **state)
{
    (void)state;
    pl_ref r;
    pl__ref_init(&r);
    pl__ref_get(&r);
    assert_int_equal(pl__ref_count(&r), 2);
    assert_int_equal(pl__ref_put(&r), 0);
    assert_int_equal(pl__ref_put(&r), 1);
}

static void test_hop_runs_in_order_from_the_loop(void **state)
{
    (void)state;
    pl_hop *h;
    assert_int_equal(pl__hop_new(lpoll, &h), PL_OK);
    int ran = 0, dropped = 0, last[8] = {0}, ok = 1;
    for (int i = 1; i <= 100; i++) {
        tev *ev = tev_new(0, i, &ran, &dropped);
        ev->last = &last;
        ev->order_ok = &ok;
        assert_int_equal(pl__hop_post(h, &ev->base), PL_OK);
    }
    assert_int_equal(ran, 0); /* nothing runs inside post */
    assert_int_equal(pl__hop_pending(h), 100);
    pl_loop_iterate(loop, 100);
    assert_int_equal(ran, 100);
    assert_true(ok);
    pl__hop_close(h);
    assert_int_equal(dropped, 0);
}

typedef struct producer_arg {
    pl_hop *h;
    int id, n;
    int *ran, *dropped, (*last)[8], *ok;
} producer_arg;

static void *producer(void *p)
{
    producer_arg *a = p;
    for (int i = 1; i <= a->n; i++) {
        tev *ev = tev_new(a->id, i, a->ran, a->dropped);
        ev->last = a->last;
        ev->order_ok = a->ok;
        pl__hop_post(a->h, &ev->base);
        if (i % 97 == 0)
            sched_yield();
    }
    return NULL;
}

/* Threads stand in for dispatch queues: each one's events arrive in its order, all of them, on the loop. */
static void test_hop_from_threads(void **state)
{
    (void)state;
    pl_hop *h;
    assert_int_equal(pl__hop_new(lpoll, &h), PL_OK);
    int ran = 0, dropped = 0, last[8] = {0}, ok = 1;
    enum { T = 4, N = 5000 };
    pthread_t th[T];
    producer_arg args[T];
    for (int i = 0; i < T; i++) {
        args[i] = (producer_arg){h, i, N, &ran, &dropped, &last, &ok};
        assert_int_equal(pthread_create(&th[i], NULL, producer, &args[i]), 0);
    }
    for (int i = 0; i < 2000 && ran < T * N; i++)
        pl_loop_iterate(loop, 10);
    for (int i = 0; i < T; i++)
        pthread_join(th[i], NULL);
    while (ran < T * N && pl_loop_iterate(loop, 50) > 0)
        ;
    assert_int_equal(ran, T * N);
    assert_int_equal(dropped, 0);
    assert_true(ok);
    for (int i = 0; i < T; i++)
        assert_int_equal(last[i], N);
    pl__hop_close(h);
}

/* After close (loop thread), queued and later events are dropped, never run; a producer's reference keeps the hop valid. */
static void test_hop_close_drops(void **state)
{
    (void)state;
    pl_hop *h;
    assert_int_equal(pl__hop_new(lpoll, &h), PL_OK);
    pl__hop_retain(h); /* a producer's */
    int ran = 0, dropped = 0;
    for (int i = 0; i < 3; i++)
        pl__hop_post(h, &tev_new(0, i, &ran, &dropped)->base);
    pl__hop_close(h);
    assert_int_equal(dropped, 3);
    assert_true(pl__hop_closed(h));
    assert_int_equal(pl__hop_post(h, &tev_new(0, 9, &ran, &dropped)->base), PL_ERR_STATE);
    assert_int_equal(dropped, 4);
    run_for(30);
    assert_int_equal(ran, 0);
    pl__hop_release(h); /* the last reference: freed (ASan checks) */
}

/* An event that closes its own hop: the rest of the batch is dropped. */
static void test_hop_closed_from_inside(void **state)
{
    (void)state;
    pl_hop *h;
    assert_int_equal(pl__hop_new(lpoll, &h), PL_OK);
    int ran = 0, dropped = 0;
    tev *first = tev_new(0, 1, &ran, &dropped);
    first->close_me = h;
    pl__hop_post(h, &first->base);
    pl__hop_post(h, &tev_new(0, 2, &ran, &dropped)->base);
    pl__hop_post(h, &tev_new(0, 3, &ran, &dropped)->base);
    pl_loop_iterate(loop, 100);
    assert_int_equal(ran, 1);
    assert_int_equal(dropped, 2);
}

/* ================================================================ the ledger */

static int faults;
static void on_fault(const void *obj, const char *file, int line)
{
    (void)obj;
    (void)file;
    (void)line;
    faults++;
}

static void test_ledger(void **state)
{
    (void)state;
    pl__ledger_reset();
    pl__ledger_set_fault_handler(on_fault);
    faults = 0;
    int a, b;
    assert_ptr_equal(pl__ledger_take(&a, "nw_connection_create(a)", __FILE__, __LINE__), &a);
    pl__ledger_take(&a, "nw_retain(a)", __FILE__, __LINE__);
    pl__ledger_take(&b, "nw_listener_create(b)", __FILE__, __LINE__);
    assert_null(pl__ledger_take(NULL, "null", __FILE__, __LINE__));
    assert_int_equal(pl__ledger_outstanding(), 3);
    assert_int_equal(pl__ledger_count(&a), 2);
    assert_int_equal(pl__ledger_release(&a, __FILE__, __LINE__), 0);
    assert_int_equal(pl__ledger_release(&a, __FILE__, __LINE__), 0);
    assert_int_equal(pl__ledger_count(&a), 0);
    /* A third release of a is a double release: caught. */
    assert_int_equal(pl__ledger_release(&a, __FILE__, __LINE__), -1);
    assert_int_equal(faults, 1);
    /* b leaks: the report names where it was taken. */
    FILE *f = tmpfile();
    assert_non_null(f);
    assert_int_equal(pl__ledger_report(f), 1);
    rewind(f);
    char line[256] = "";
    assert_non_null(fgets(line, sizeof line, f));
    assert_non_null(strstr(line, "nw_listener_create(b)"));
    fclose(f);
    assert_int_equal(pl__ledger_release(&b, __FILE__, __LINE__), 0);
    assert_int_equal(pl__ledger_outstanding(), 0);
    assert_int_equal(pl__ledger_release(NULL, __FILE__, __LINE__), 0);
    pl__ledger_set_fault_handler(NULL);
    pl__ledger_reset();
}

/* Many threads (queues) taking and releasing concurrently balance out. */
static void *ledger_worker(void *p)
{
    uintptr_t base = (uintptr_t)p;
    for (uintptr_t i = 1; i <= 2000; i++) {
        void *obj = (void *)(base + i * 16);
        pl__ledger_take(obj, "obj", __FILE__, __LINE__);
        pl__ledger_release(obj, __FILE__, __LINE__);
    }
    return NULL;
}

static void test_ledger_threads(void **state)
{
    (void)state;
    pl__ledger_reset();
    pthread_t th[4];
    for (uintptr_t i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&th[i], NULL, ledger_worker, (void *)(0x100000 * (i + 1))), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(pl__ledger_outstanding(), 0);
    pl__ledger_reset();
}

/* ================================================================ TXT, names, errors, endpoints */

/* Stand-in for nw_txt_record_create_with_bytes + nw_txt_record_access_bytes: a copy. */
typedef struct fake_nw_txt {
    uint8_t *bytes;
    size_t len;
} fake_nw_txt;

static void test_txt_round_trip(void **state)
{
    (void)state;
    pl_txt *t;
    assert_int_equal(pl_txt_new(&t), PL_OK);
    assert_int_equal(pl_txt_set_str(t, "model", "kx1"), PL_OK);
    assert_int_equal(pl_txt_set_str(t, "beta", NULL), PL_OK); /* boolean: no '=' */
    assert_int_equal(pl_txt_set(t, "empty", "", 0), PL_OK);   /* "empty=" */
    const uint8_t bin[] = {0, 0xff, '=', 1};
    assert_int_equal(pl_txt_set(t, "bin", bin, sizeof bin), PL_OK);
    uint8_t *bytes;
    size_t len;
    assert_int_equal(pl__apple_txt_to_bytes(t, &bytes, &len), PL_OK);
    /* Exactly what the codec produces: the same bytes on every platform. */
    uint8_t ref[512];
    size_t ref_len;
    assert_int_equal(pl_txt_encode(t, ref, sizeof ref, &ref_len), PL_OK);
    assert_int_equal(len, ref_len);
    assert_memory_equal(bytes, ref, len);
    fake_nw_txt nw = {bytes, len}; /* "nw_txt_record_create_with_bytes" */
    uint8_t *seen;
    size_t seen_len;
    assert_int_equal(pl__apple_txt_copy(nw.bytes, nw.len, &seen, &seen_len), PL_OK); /* "access_bytes" */
    pl_txt *back;
    assert_int_equal(pl_txt_decode(seen, seen_len, &back), PL_OK);
    assert_true(pl_txt_equal(t, back));
    const void *v;
    size_t vl;
    assert_int_equal(pl_txt_get(back, "beta", &v, &vl), PL_OK);
    assert_null(v);
    assert_int_equal(pl_txt_get(back, "empty", &v, &vl), PL_OK);
    assert_non_null(v);
    assert_int_equal(vl, 0);
    free(bytes);
    free(seen);
    pl_txt_free(t);
    pl_txt_free(back);
}

static void test_txt_edges(void **state)
{
    (void)state;
    uint8_t *bytes;
    size_t len;
    /* Empty record (and NULL): the single zero byte, never zero length (Network.framework refuses 0). */
    assert_int_equal(pl__apple_txt_to_bytes(NULL, &bytes, &len), PL_OK);
    assert_int_equal(len, 1);
    assert_int_equal(bytes[0], 0);
    free(bytes);
    pl_txt *t;
    assert_int_equal(pl_txt_new(&t), PL_OK);
    assert_int_equal(pl__apple_txt_to_bytes(t, &bytes, &len), PL_OK);
    assert_int_equal(len, 1);
    free(bytes);
    pl_txt_free(t);
    /* No record seen: an empty one, which decodes as empty. */
    assert_int_equal(pl__apple_txt_copy(NULL, 5, &bytes, &len), PL_OK);
    assert_int_equal(len, 0);
    pl_txt *d;
    assert_int_equal(pl_txt_decode(bytes, len, &d), PL_OK);
    assert_int_equal(pl_txt_count(d), 0);
    pl_txt_free(d);
    free(bytes);
    /* Over the DNS bound: replaced by an empty record rather than refused downstream. */
    uint8_t *big = calloc(1, PL_TXT_MAX_SIZE + 1);
    assert_int_equal(pl__apple_txt_copy(big, PL_TXT_MAX_SIZE + 1, &bytes, &len), PL_OK);
    assert_int_equal(len, 0);
    free(bytes);
    free(big);
}

static void test_names(void **state)
{
    (void)state;
    char out[64];
    assert_int_equal(pl__apple_normalize("_peerlink._tcp.", NULL, out, sizeof out), PL_OK);
    assert_string_equal(out, "_peerlink._tcp");
    assert_int_equal(pl__apple_normalize("local.", "local", out, sizeof out), PL_OK);
    assert_string_equal(out, "local");
    assert_int_equal(pl__apple_normalize(NULL, "local", out, sizeof out), PL_OK);
    assert_string_equal(out, "local");
    assert_int_equal(pl__apple_normalize("", "local", out, sizeof out), PL_OK);
    assert_string_equal(out, "local");
    assert_int_equal(pl__apple_normalize("_a._udp", NULL, out, sizeof out), PL_OK);
    assert_string_equal(out, "_a._udp");
    assert_int_equal(pl__apple_normalize(NULL, NULL, out, sizeof out), PL_ERR_INVALID);
    assert_int_equal(pl__apple_normalize("abcdef.", NULL, out, 4), PL_ERR_TOO_LARGE);
}

static void test_errors(void **state)
{
    (void)state;
    int denied = 0;
    /* The user denied local network access: a clear failure, flagged, never a wait. */
    assert_int_equal(pl__apple_map_error(PL_NW_DOMAIN_DNS, PL_DNS_ERR_POLICY_DENIED, PL_APPLE_FOR_BROWSE, &denied),
                     PL_ERR_DENIED);
    assert_int_equal(denied, 1);
    assert_int_equal(pl__apple_map_error(PL_NW_DOMAIN_DNS, PL_DNS_ERR_POLICY_DENIED, PL_APPLE_FOR_PUBLISH, &denied),
                     PL_ERR_DENIED);
    assert_int_equal(pl__apple_map_error(PL_NW_DOMAIN_DNS, PL_DNS_ERR_POLICY_DENIED, PL_APPLE_FOR_CONNECT, &denied),
                     PL_ERR_DENIED);
    assert_int_equal(denied, 1);
    assert_true(pl__apple_waiting_is_fatal(PL_NW_DOMAIN_DNS, PL_DNS_ERR_POLICY_DENIED));
    /* Other waiting reasons (no network yet) end by themselves: keep waiting. */
    assert_false(pl__apple_waiting_is_fatal(PL_NW_DOMAIN_POSIX, ENETDOWN));
    assert_false(pl__apple_waiting_is_fatal(0, 0));
    assert_int_equal(pl__apple_map_error(PL_NW_DOMAIN_DNS, PL_DNS_ERR_NAME_CONFLICT, PL_APPLE_FOR_PUBLISH, &denied),
                     PL_ERR_COLLISION);
    assert_int_equal(denied, 0);
    assert_int_equal(pl__apple_map_error(PL_NW_DOMAIN_DNS, PL_DNS_ERR_SERVICE_NOT_RUNNING, PL_APPLE_FOR_BROWSE, NULL),
                     PL_ERR_DAEMON);
    assert_int_equal(pl__apple_map_error(PL_NW_DOMAIN_POSIX, ECONNREFUSED, PL_APPLE_FOR_CONNECT, NULL),
                     PL_ERR_CONNECT);
    assert_int_equal(pl__apple_map_error(PL_NW_DOMAIN_POSIX, ECONNRESET, PL_APPLE_FOR_CONNECT, NULL), PL_ERR_CLOSED);
    assert_int_equal(pl__apple_map_error(PL_NW_DOMAIN_POSIX, ETIMEDOUT, PL_APPLE_FOR_CONNECT, NULL), PL_ERR_TIMEOUT);
    assert_int_equal(pl__apple_map_error(PL_NW_DOMAIN_POSIX, EADDRINUSE, PL_APPLE_FOR_PUBLISH, NULL), PL_ERR_IO);
    assert_int_equal(pl__apple_map_error(PL_NW_DOMAIN_TLS, -9800, PL_APPLE_FOR_CONNECT, NULL), PL_ERR_PROTOCOL);
    assert_int_equal(pl__apple_map_error(PL_NW_DOMAIN_DNS, -65537, PL_APPLE_FOR_BROWSE, NULL), PL_ERR_BACKEND);
}

static void test_connect_target(void **state)
{
    (void)state;
    pl_txt *t;
    pl_txt_new(&t);
    pl_apple_target tg;
    /* A browse result of the apple backend: the Bonjour service itself. */
    pl_service s = {.name = "Kitchen", .type = "_peerlink._tcp.", .domain = "local.", .host = "", .txt = t};
    assert_int_equal(pl__apple_target(&s, &tg), PL_OK);
    assert_int_equal(tg.kind, PL_APPLE_TARGET_BONJOUR);
    assert_string_equal(tg.name, "Kitchen");
    assert_string_equal(tg.type, "_peerlink._tcp");
    assert_string_equal(tg.domain, "local");
    s.domain = NULL;
    assert_int_equal(pl__apple_target(&s, &tg), PL_OK);
    assert_string_equal(tg.domain, "local");
    /* No type: an address and port (e.g. from an application's own lookup). */
    pl_address a = {.family = AF_INET, .addr = {192, 0, 2, 7}};
    pl_service s2 = {.name = "x", .port = 4242, .n_addresses = 1, .addresses = &a, .txt = t};
    assert_int_equal(pl__apple_target(&s2, &tg), PL_OK);
    assert_int_equal(tg.kind, PL_APPLE_TARGET_ADDRESS);
    assert_string_equal(tg.address, "192.0.2.7");
    assert_string_equal(tg.port, "4242");
    pl_service s3 = {.name = "x", .host = "box.local", .port = 1, .txt = t};
    assert_int_equal(pl__apple_target(&s3, &tg), PL_OK);
    assert_int_equal(tg.kind, PL_APPLE_TARGET_HOST);
    assert_string_equal(tg.host, "box.local");
    pl_service s4 = {.name = "x", .host = "box.local", .port = 0, .txt = t};
    assert_int_equal(pl__apple_target(&s4, &tg), PL_ERR_INVALID);
    pl_service s5 = {.name = "", .type = "_peerlink._tcp", .txt = t};
    assert_int_equal(pl__apple_target(&s5, &tg), PL_ERR_INVALID);
    pl_txt_free(t);
}

/* ================================================================ browse changes → generic layer */

/* A stand-in backend: the generic layer calls it; it does nothing but note unbrowse. */
static int fake_unbrowsed;
static int fake_open(pl_discovery *d) { (void)d; return PL_OK; }
static void fake_close(pl_discovery *d) { (void)d; }
static int fake_publish(pl_publication *p) { (void)p; return PL_OK; }
static int fake_update(pl_publication *p) { (void)p; return PL_OK; }
static void fake_unpublish(pl_publication *p) { (void)p; }
static int fake_browse(pl_browser *b) { b->priv = &fake_unbrowsed; return PL_OK; }
static void fake_unbrowse(pl_browser *b) { fake_unbrowsed = 1; b->priv = NULL; }
static const pl_discovery_ops fake_ops = {"fake", fake_open, fake_close, fake_publish, fake_update,
                                          fake_unpublish, fake_browse, fake_unbrowse, NULL};

static int alive_probe(void *ctx) { (void)ctx; return !fake_unbrowsed; }

typedef struct bseen {
    int adds, updates, removes, failed;
    char model[16];
    uint16_t port;
    size_t n_addresses;
    char name[64], type[64], domain[64];
    int free_on_add;
} bseen;

static void on_browse(pl_browser *b, pl_browse_event ev, int status, const pl_service *svc, void *ud)
{
    (void)status;
    bseen *s = ud;
    if (ev == PL_BROWSE_ADD)
        s->adds++;
    if (ev == PL_BROWSE_UPDATE)
        s->updates++;
    if (ev == PL_BROWSE_REMOVE)
        s->removes++;
    if (ev == PL_BROWSE_FAILED) {
        s->failed++;
        return;
    }
    const void *v;
    size_t n;
    s->model[0] = 0;
    if (pl_txt_get(svc->txt, "model", &v, &n) == PL_OK && v && n < sizeof s->model) {
        memcpy(s->model, v, n);
        s->model[n] = 0;
    }
    s->port = svc->port;
    s->n_addresses = svc->n_addresses;
    snprintf(s->name, sizeof s->name, "%s", svc->name);
    snprintf(s->type, sizeof s->type, "%s", svc->type);
    snprintf(s->domain, sizeof s->domain, "%s", svc->domain);
    if (s->free_on_add && ev == PL_BROWSE_ADD)
        pl_browser_free(b);
}

static void result_set(pl_apple_result *r, const int *ifaces, size_t n, const char *model)
{
    memset(r, 0, sizeof *r);
    if (n) {
        r->ifaces = malloc(n * sizeof *ifaces);
        memcpy(r->ifaces, ifaces, n * sizeof *ifaces);
        r->n_ifaces = n;
    }
    pl_txt *t;
    pl_txt_new(&t);
    if (model)
        pl_txt_set_str(t, "model", model);
    pl__apple_txt_to_bytes(t, &r->txt, &r->txt_len);
    pl_txt_free(t);
}

static void change_set(pl_apple_change *c, const int *oi, size_t on, const char *om, const int *ni, size_t nn,
                       const char *nm)
{
    memset(c, 0, sizeof *c);
    c->name = strdup("Kitchen");
    c->type = strdup("_peerlink._tcp");
    c->domain = strdup("local");
    if (om) {
        c->has_old = 1;
        result_set(&c->old, oi, on, om);
    }
    if (nm) {
        c->has_new = 1;
        result_set(&c->new_, ni, nn, nm);
    }
}

static pl_discovery *fake_discovery(void)
{
    pl_discovery *d = calloc(1, sizeof *d); /* as pl_discovery_new would make it, on the stand-in backend */
    d->poll = lpoll;
    d->ops = &fake_ops;
    return d;
}

static void test_browse_changes(void **state)
{
    (void)state;
    fake_unbrowsed = 0;
    pl_discovery *d = fake_discovery();
    bseen s = {0};
    pl_browser *b;
    assert_int_equal(pl_browse(d, "_peerlink._tcp", NULL, on_browse, &s, &b), PL_OK);
    pl_apple_change c;
    const int two[] = {4, 7}, one[] = {7};
    /* Added on two interfaces at once: one ADD, with the TXT, no port or addresses (Bonjour endpoint). */
    change_set(&c, NULL, 0, NULL, two, 2, "kx1");
    pl__apple_apply_change(b, &c, alive_probe, NULL);
    pl__apple_change_clear(&c);
    assert_int_equal(s.adds, 1);
    assert_string_equal(s.model, "kx1");
    assert_string_equal(s.name, "Kitchen");
    assert_string_equal(s.type, "_peerlink._tcp");
    assert_string_equal(s.domain, "local");
    assert_int_equal(s.port, 0);
    assert_int_equal(s.n_addresses, 0);
    /* TXT changed: UPDATE. */
    change_set(&c, two, 2, "kx1", two, 2, "kx2");
    pl__apple_apply_change(b, &c, alive_probe, NULL);
    pl__apple_change_clear(&c);
    assert_int_equal(s.updates, 1);
    assert_string_equal(s.model, "kx2");
    /* One interface went away: nothing the application can see changes. */
    change_set(&c, two, 2, "kx2", one, 1, "kx2");
    pl__apple_apply_change(b, &c, alive_probe, NULL);
    pl__apple_change_clear(&c);
    assert_int_equal(s.updates, 1);
    assert_int_equal(s.removes, 0);
    /* Removed: REMOVE with the last state. */
    change_set(&c, one, 1, "kx2", NULL, 0, NULL);
    pl__apple_apply_change(b, &c, alive_probe, NULL);
    pl__apple_change_clear(&c);
    assert_int_equal(s.removes, 1);
    assert_string_equal(s.model, "kx2");
    /* No interface information at all: reported on interface -1, still one ADD. */
    change_set(&c, NULL, 0, NULL, NULL, 0, "kx3");
    pl__apple_apply_change(b, &c, alive_probe, NULL);
    pl__apple_change_clear(&c);
    assert_int_equal(s.adds, 2);
    pl_browser_free(b);
    pl_discovery_free(d);
}

/* The application frees the browser inside ADD: the change stops there (ASan checks no use after free). */
static void test_browse_free_inside_callback(void **state)
{
    (void)state;
    fake_unbrowsed = 0;
    pl_discovery *d = fake_discovery();
    bseen s = {.free_on_add = 1};
    pl_browser *b;
    assert_int_equal(pl_browse(d, "_peerlink._tcp", NULL, on_browse, &s, &b), PL_OK);
    pl_apple_change c;
    const int three[] = {1, 2, 3};
    change_set(&c, NULL, 0, NULL, three, 3, "kx1");
    pl__apple_apply_change(b, &c, alive_probe, NULL);
    pl__apple_change_clear(&c);
    assert_int_equal(s.adds, 1);
    assert_int_equal(fake_unbrowsed, 1);
    pl_discovery_free(d);
}

/* ================================================================ sessions over an asynchronous transport */

/*
 * The stand-in transport: one end of a socketpair. send() writes at
 * once and confirms from the loop a moment later; ready/failure are
 * reported by the test. Every call the glue makes is counted.
 */
typedef struct fake_io {
    int fd;
    pl_watch *w;
    pl_chan *ch;
    int sends, receives, finishes, cancels, released;
    size_t unconfirmed;
    pl_timeout *confirm;
    int want_input;
} fake_io;

static void fio_confirm(pl_timeout *t, void *ud)
{
    (void)t;
    fake_io *io = ud;
    size_t n = io->unconfirmed;
    io->unconfirmed = 0;
    if (n && io->ch)
        pl__chan_sent(io->ch, n, PL_OK);
}

static void fio_readable(pl_watch *w, int fd, unsigned events, void *ud)
{
    (void)w;
    (void)events;
    fake_io *io = ud;
    uint8_t buf[65536];
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    /* One chunk per receive(), as nw_connection_receive() gives it: the
     * glue asks again when it wants more. */
    lpoll->watch_free(io->w);
    io->w = NULL;
    pl__chan_input(io->ch, buf, n > 0 ? (size_t)n : 0);
}

static int fio_send(void *ctx, const uint8_t *data, size_t len)
{
    fake_io *io = ctx;
    io->sends++;
    size_t off = 0;
    while (off < len) {
        /* like nw_connection_send(): a closed peer is an error, never SIGPIPE */
        ssize_t n = send(io->fd, data + off, len - off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return PL_ERR_IO;
        off += (size_t)n;
    }
    io->unconfirmed += len;
    lpoll->timeout_update(io->confirm, 1);
    return PL_OK;
}

static void fio_receive(void *ctx)
{
    fake_io *io = ctx;
    io->receives++;
    if (!io->w && io->fd >= 0)
        io->w = lpoll->watch_new(lpoll, io->fd, PL_WATCH_IN, fio_readable, io);
}

static void fio_stop(fake_io *io)
{
    if (io->w)
        lpoll->watch_free(io->w);
    io->w = NULL;
    if (io->fd >= 0)
        close(io->fd);
    io->fd = -1;
    lpoll->timeout_update(io->confirm, -1);
    /* The transport's final report, as nw's "cancelled" state gives it. */
    pl_chan *ch = io->ch;
    io->ch = NULL;
    pl__chan_io_release(ch);
}

static void fio_finish(void *ctx)
{
    fake_io *io = ctx;
    io->finishes++;
    fio_stop(io);
}

static void fio_cancel(void *ctx)
{
    fake_io *io = ctx;
    io->cancels++;
    fio_stop(io);
}

static void fio_release(void *ctx)
{
    fake_io *io = ctx;
    io->released++;
}

static const pl_chan_io fake_chan_io = {fio_send, fio_receive, fio_finish, fio_cancel, fio_release};

static void fio_init(fake_io *io, int fd)
{
    memset(io, 0, sizeof *io);
    io->fd = fd;
    io->confirm = lpoll->timeout_new(lpoll, -1, fio_confirm, io);
}

static void fio_clear(fake_io *io)
{
    lpoll->timeout_free(io->confirm);
    if (io->w)
        lpoll->watch_free(io->w);
    if (io->fd >= 0)
        close(io->fd);
}

typedef struct cseen {
    pl_session *conn;
    int open, messages, closed, status, eof, interrupted, istatus, resumed, rstatus;
    char last[32];
} cseen;

static void on_conn(pl_session *c, pl_session_event ev, int status, const void *data, size_t len, void *ud)
{
    cseen *s = ud;
    (void)c;
    switch (ev) {
    case PL_SESSION_OPEN: s->open++; break;
    case PL_SESSION_MESSAGE:
        s->messages++;
        snprintf(s->last, sizeof s->last, "%.*s", (int)len, (const char *)data);
        break;
    case PL_SESSION_PEER_EOF: s->eof++; break;
    case PL_SESSION_CLOSED:
        s->closed++;
        s->status = status;
        break;
    case PL_SESSION_INTERRUPTED:
        s->interrupted++;
        s->istatus = status;
        break;
    case PL_SESSION_RESUMED:
        s->resumed++;
        s->rstatus = status;
        break;
    default: break;
    }
}

#define CODE "482913"

/* The glue's initiator over a stand-in transport on one end of a
 * socketpair, a descriptor responder on the other, both pairing with
 * CODE; the transport is not ready yet. Returns the initiator's session. */
/* Two peers in one process: the dialler's keystore and node, the listener's. */
typedef struct peers {
    pl_keystore *cks, *sks;
    pl_node *cnode, *snode;
} peers;

static void peers_open(peers *p)
{
    assert_int_equal(pl_keystore_new_memory(&p->cks), PL_OK);
    assert_int_equal(pl_keystore_new_memory(&p->sks), PL_OK);
    assert_int_equal(pl_node_new(lpoll, p->cks, &p->cnode), PL_OK);
    assert_int_equal(pl_node_new(lpoll, p->sks, &p->snode), PL_OK);
}

static void peers_close(peers *p)
{
    pl_node_free(p->cnode);
    pl_node_free(p->snode);
    pl_keystore_free(p->cks);
    pl_keystore_free(p->sks);
}

/* An inbound transport for the acceptor a (a stand-in on one end of a
 * socketpair) and, on the other end, an initiator pairing with CODE. */
static pl_session *inbound_pair(pl_chan_acceptor *a, pl_node *cnode, fake_io *io, cseen *cli)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    fio_init(io, sv[0]);
    assert_int_equal(pl__chan_accept(a, &fake_chan_io, io, &io->ch), PL_OK);
    pl_session *c;
    assert_int_equal(pl_session_new_fd(cnode, sv[1], PL_ROLE_INITIATOR, "Kitchen", on_conn, cli, &c), PL_OK);
    assert_int_equal(pl_session_set_code(c, CODE), PL_OK);
    return c;
}

static pl_session *glue_pair(fake_io *io, pl_node *cnode, pl_node *snode, cseen *cli, cseen *srv)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    fio_init(io, sv[0]);
    pl_session *c;
    assert_int_equal(pl__chan_connect(cnode, &fake_chan_io, io, "Kitchen", 5000, on_conn, cli, NULL, NULL, NULL,
                                      &io->ch, &c),
                     PL_OK);
    assert_int_equal(pl_session_set_code(c, CODE), PL_OK);
    assert_int_equal(pl_session_new_fd(snode, sv[1], PL_ROLE_RESPONDER, "Kitchen", on_conn, srv, &srv->conn), PL_OK);
    assert_int_equal(pl_session_set_code(srv->conn, CODE), PL_OK);
    return c;
}

/* Initiator through the glue, over a transport that becomes ready late, to a real responder session. */
static void test_chan_initiator_pairs(void **state)
{
    (void)state;
    peers P;
    peers_open(&P);
    pl_node *cnode = P.cnode, *snode = P.snode;
    fake_io io;
    cseen cli = {0}, srv = {0};
    pl_session *c = glue_pair(&io, cnode, snode, &cli, &srv);
    assert_int_equal(pl_session_send(c, "hello", 5), PL_OK); /* held until the handshake is done */
    run_for(100);
    /* Not ready yet: the session's bytes wait in the glue, nothing reached the transport. */
    assert_int_equal(io.sends, 0);
    assert_int_equal(cli.open, 0);
    pl__chan_ready(io.ch);
    run_until(&cli.open);
    run_until(&srv.messages);
    assert_string_equal(srv.last, "hello");
    assert_int_equal(pl_session_paired(c), 1);
    assert_int_equal(pl_session_send(srv.conn, "back", 4), PL_OK);
    run_until(&cli.messages);
    assert_string_equal(cli.last, "back");
    /* Both end: clean close on both sides, then the transport is finished gracefully. */
    pl_session_shutdown(c);
    pl_session_shutdown(srv.conn);
    run_until(&cli.closed);
    run_until(&srv.closed);
    assert_int_equal(cli.status, PL_OK);
    assert_int_equal(srv.status, PL_OK);
    run_for(30);
    assert_int_equal(io.finishes + io.cancels, 1);
    assert_int_equal(io.released, 1); /* the glue let go after the transport's final report */
    pl_session_free(c);
    pl_session_free(srv.conn);
    fio_clear(&io);
    peers_close(&P);
}

/* A paused session over the glue stops asking the transport for input
 * once it holds its bound: the chunk it refused waits in the glue, no
 * receive() is issued until the session has room, and nothing is lost. */
static void test_chan_paused_session_stops_receiving(void **state)
{
    (void)state;
    peers P;
    peers_open(&P);
    pl_node *cnode = P.cnode, *snode = P.snode;
    fake_io io;
    cseen cli = {0}, srv = {0};
    pl_session *c = glue_pair(&io, cnode, snode, &cli, &srv);
    assert_int_equal(pl_session_set_receive_limit(c, 16 * 1024), PL_OK);       /* what the paused side holds */
    assert_int_equal(pl_session_set_send_limit(srv.conn, 4 * 1024 * 1024), PL_OK); /* the sender may send it all */
    pl__chan_ready(io.ch);
    run_until(&cli.open);
    assert_int_equal(pl_session_pause(c, 1), PL_OK);
    enum { N = 300 };
    char buf[4000];
    for (int i = 0; i < N; i++) {
        memset(buf, 'a' + i % 26, sizeof buf);
        snprintf(buf, sizeof buf, "%d", i);
        assert_int_equal(pl_session_send(srv.conn, buf, sizeof buf), PL_OK);
    }
    run_for(200);
    int receives = io.receives;
    run_for(200);
    assert_int_equal(io.receives, receives);                  /* the glue stopped asking */
    assert_int_equal(cli.messages, 0);                        /* paused: nothing delivered */
    assert_true(pl_session_pending(srv.conn) > (size_t)N * 4000 / 2); /* most still waits with the sender */
    assert_int_equal(pl_session_pause(c, 0), PL_OK);
    for (int i = 0; i < 1000 && cli.messages < N; i++)
        pl_loop_iterate(loop, 10);
    assert_int_equal(cli.messages, N);
    char want[32];
    snprintf(want, sizeof want, "%d", N - 1);
    assert_string_equal(cli.last, want);                      /* the last one last */
    assert_true(io.receives > receives);
    pl_session_free(c);
    pl_session_free(srv.conn);
    run_for(30);
    fio_clear(&io);
    peers_close(&P);
}

/* The other headline direction: an iPhone dialling a Linux accessory.
 * The glue's initiator over stand-in transports; after a break the
 * session's policy asks the glue to dial again (the redial function
 * stands in for a new nw_connection to the same endpoint), and the new
 * transport carries the session on: resumed, nothing lost or repeated. */
typedef struct redialer {
    fake_io io[4];
    int n, sv_other[4];
    pl_listener *l;
    fake_io *pending_ready;
} redialer;

static int test_redial(void *target, pl_chan_dialer *d)
{
    redialer *r = target;
    assert_true(r->n < 4);
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    fake_io *io = &r->io[r->n];
    fio_init(io, sv[0]);
    r->sv_other[r->n++] = sv[1];
    int rc = pl__chan_redialed(d, io, &io->ch);
    assert_int_equal(rc, PL_OK);
    assert_int_equal(pl_listener_add_fd(r->l, sv[1]), PL_OK); /* the accessory accepts it */
    r->pending_ready = io; /* ready a moment later, from the loop */
    return PL_OK;
}

static cseen acc_srv;
static void on_acc(pl_listener *l, pl_session *c, void *ud)
{
    (void)l;
    (void)ud;
    acc_srv.conn = c;
    pl_session_set_callback(c, on_conn, &acc_srv);
}

static void test_chan_initiator_redials_and_resumes(void **state)
{
    (void)state;
    peers P;
    peers_open(&P);
    pl_node *cnode = P.cnode, *snode = P.snode;
    memset(&acc_srv, 0, sizeof acc_srv);
    redialer r;
    memset(&r, 0, sizeof r);
    assert_int_equal(pl_listener_new_detached(snode, on_acc, NULL, &r.l), PL_OK);
    assert_int_equal(pl_listener_set_instance(r.l, "Kitchen"), PL_OK);
    assert_int_equal(pl_listener_set_pairing(r.l, CODE, 0, 0), PL_OK);

    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    fake_io io;
    fio_init(&io, sv[0]);
    cseen cli = {0};
    pl_session *c;
    assert_int_equal(pl__chan_connect(cnode, &fake_chan_io, &io, "Kitchen", 5000, on_conn, &cli, test_redial, &r,
                                      NULL, &io.ch, &c), PL_OK);
    assert_int_equal(pl_session_set_code(c, CODE), PL_OK);
    assert_int_equal(pl_listener_add_fd(r.l, sv[1]), PL_OK);
    pl__chan_ready(io.ch);
    run_until(&cli.open);
    for (int i = 0; i < 500 && !acc_srv.conn; i++)
        pl_loop_iterate(loop, 10);
    assert_non_null(acc_srv.conn);
    assert_int_equal(pl_session_send(c, "one", 3), PL_OK);
    run_until(&acc_srv.messages);

    /* The connection breaks on both ends. */
    shutdown(sv[1], SHUT_RDWR);
    pl__chan_failed(io.ch, PL_ERR_CLOSED);
    run_until(&cli.interrupted);
    assert_int_equal(cli.istatus, PL_ERR_CLOSED);
    assert_int_equal(pl_session_send(c, "two", 3), PL_OK); /* queued while interrupted */
    /* The policy dials again at once: a new transport, ready a moment later. */
    for (int i = 0; i < 500 && !r.pending_ready; i++)
        pl_loop_iterate(loop, 10);
    assert_non_null(r.pending_ready);
    pl__chan_ready(r.pending_ready->ch);
    run_until(&cli.resumed);
    run_until(&acc_srv.resumed);
    assert_int_equal(cli.rstatus, PL_OK); /* the same session, not a new one */
    assert_int_equal(acc_srv.rstatus, PL_OK);
    assert_int_equal(r.n, 1);
    for (int i = 0; i < 200 && acc_srv.messages < 2; i++)
        pl_loop_iterate(loop, 10);
    assert_int_equal(acc_srv.messages, 2); /* "one" once, then "two" */
    assert_string_equal(acc_srv.last, "two");
    /* Both end cleanly over the second transport. */
    pl_session_shutdown(c);
    pl_session_shutdown(acc_srv.conn);
    run_until(&cli.closed);
    run_until(&acc_srv.closed);
    assert_int_equal(cli.status, PL_OK);
    assert_int_equal(acc_srv.status, PL_OK);
    pl_session_free(c);
    pl_session_free(acc_srv.conn);
    run_for(30);
    assert_int_equal(io.released, 1);
    assert_int_equal(r.io[0].released, 1);
    fio_clear(&io);
    fio_clear(&r.io[0]);
    pl_listener_free(r.l);
    peers_close(&P);
}

/* The transport fails before ready: CLOSED says PL_ERR_CONNECT (not the session's PL_ERR_CLOSED). */
static void test_chan_initiator_connect_fails(void **state)
{
    (void)state;
    pl_keystore *ks;
    assert_int_equal(pl_keystore_new_memory(&ks), PL_OK);
    pl_node *node;
    assert_int_equal(pl_node_new(lpoll, ks, &node), PL_OK);
    fake_io io;
    fio_init(&io, -1);
    cseen cli = {0};
    pl_session *c;
    assert_int_equal(pl__chan_connect(node, &fake_chan_io, &io, "Kitchen", 5000, on_conn, &cli, NULL, NULL, NULL, &io.ch, &c),
                     PL_OK);
    pl_session_set_code(c, CODE);
    run_for(20);
    pl__chan_failed(io.ch, PL_ERR_CONNECT);
    run_until(&cli.closed);
    assert_int_equal(cli.status, PL_ERR_CONNECT);
    assert_int_equal(cli.open, 0);
    assert_int_equal(io.cancels, 1);
    pl_session_free(c);
    run_for(20);
    assert_int_equal(io.released, 1);
    fio_clear(&io);
    pl_node_free(node);
    pl_keystore_free(ks);
}

/* Never ready: the deadline ends it with PL_ERR_TIMEOUT; never a hang. */
static void test_chan_initiator_times_out(void **state)
{
    (void)state;
    pl_keystore *ks;
    assert_int_equal(pl_keystore_new_memory(&ks), PL_OK);
    pl_node *node;
    assert_int_equal(pl_node_new(lpoll, ks, &node), PL_OK);
    fake_io io;
    fio_init(&io, -1);
    cseen cli = {0};
    pl_session *c;
    assert_int_equal(pl__chan_connect(node, &fake_chan_io, &io, "Kitchen", 150, on_conn, &cli, NULL, NULL, NULL, &io.ch, &c),
                     PL_OK);
    run_until(&cli.closed);
    assert_int_equal(cli.status, PL_ERR_TIMEOUT);
    assert_int_equal(io.cancels, 1);
    pl_session_free(c);
    run_for(20);
    assert_int_equal(io.released, 1);
    fio_clear(&io);
    pl_node_free(node);
    pl_keystore_free(ks);
}

typedef struct accept_ctx {
    int accepted;
    cseen srv;
} accept_ctx;

static void acc_accepted(pl_listener *l, pl_session *c, void *ctx)
{
    accept_ctx *a = ctx;
    (void)l;
    a->accepted++;
    a->srv.conn = c;
    pl_session_set_callback(c, on_conn, &a->srv);
}

/* What pl_listener_publish() sets up through the "apple" backend: a
 * listener (here a detached one, as the publication's nw_listener takes
 * the connections), its instance name and pairing code, and the glue's
 * acceptor feeding it. */
static pl_listener *acc_listener(pl_node *node, accept_ctx *ac, const char *code, pl_chan_acceptor **a)
{
    pl_listener *l;
    assert_int_equal(pl_listener_new_detached(node, acc_accepted, ac, &l), PL_OK);
    assert_int_equal(pl_listener_set_instance(l, "Kitchen"), PL_OK);
    if (code)
        assert_int_equal(pl_listener_set_pairing(l, code, 0, 0), PL_OK);
    assert_int_equal(pl__chan_acceptor_new(l, a), PL_OK);
    return l;
}

/* Inbound attempts that fail before ready (how a losing Happy Eyeballs
 * attempt would look): no session, nothing sent, not handed over, not
 * counted; then a real one pairs. */
static void test_chan_acceptor_also_rans_then_pairing(void **state)
{
    (void)state;
    peers P;
    peers_open(&P);
    pl_node *cnode = P.cnode, *snode = P.snode;
    accept_ctx ac = {0};
    pl_chan_acceptor *a;
    pl_listener *l = acc_listener(snode, &ac, CODE, &a);
    fake_io also[3];
    for (int i = 0; i < 3; i++) {
        fio_init(&also[i], -1);
        assert_int_equal(pl__chan_accept(a, &fake_chan_io, &also[i], &also[i].ch), PL_OK);
    }
    assert_int_equal(pl__chan_acceptor_pending(a), 3);
    for (int i = 0; i < 3; i++)
        pl__chan_failed(also[i].ch, PL_ERR_CONNECT);
    run_for(30);
    assert_int_equal(pl__chan_acceptor_pending(a), 0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(also[i].sends, 0);    /* no session ever wrote to it */
        assert_int_equal(also[i].receives, 0); /* nor read from it */
        assert_int_equal(also[i].cancels, 1);
        assert_int_equal(also[i].released, 1);
        fio_clear(&also[i]);
    }
    assert_int_equal(ac.accepted, 0);

    /* The established one: a real initiator session on the other end of the pipe. */
    fake_io io;
    cseen cli = {0};
    pl_session *c = inbound_pair(a, cnode, &io, &cli);
    run_for(50);
    assert_int_equal(io.sends, 0); /* no session before ready */
    pl__chan_ready(io.ch);
    run_until(&cli.open);
    run_until(&ac.accepted);
    assert_int_equal(pl__chan_acceptor_pending(a), 0);
    assert_int_equal(pl_session_paired(c), 1);
    assert_int_equal(pl_session_send(c, "ping", 4), PL_OK);
    run_until(&ac.srv.messages);
    assert_string_equal(ac.srv.last, "ping");
    /* The peer vanishes: the accepted session learns it from the transport
     * and, accepted by the generic listener, waits to be resumed. */
    pl_session_free(c);
    run_until(&ac.srv.interrupted);
    /* the end of the pipe, or a failed write (its Ack of "ping") if that comes first */
    assert_true(ac.srv.istatus == PL_ERR_CLOSED || ac.srv.istatus == PL_ERR_IO);
    assert_int_equal(ac.srv.closed, 0);
    pl_session_free(ac.srv.conn);
    run_for(20);
    assert_int_equal(io.released, 1);
    fio_clear(&io);
    pl__chan_acceptor_free(a);
    pl_listener_free(l);
    peers_close(&P);
}

/*
 * The headline pairing: a Linux dialler to an iPhone's listener. Here the
 * Apple glue's acceptor over a stand-in transport (what the mock does not
 * prove: Network.framework's own behaviour - see apple_typecheck.sh for
 * the types), a descriptor initiator on the other end. The transport
 * breaks; the initiator comes back over a new transport, which the
 * acceptor hands to the generic listener: the session resumes (no reset,
 * nothing lost or repeated) instead of starting anew.
 */
static void test_chan_acceptor_session_resumes(void **state)
{
    (void)state;
    peers P;
    peers_open(&P);
    pl_node *cnode = P.cnode, *snode = P.snode;
    accept_ctx ac = {0};
    pl_chan_acceptor *a;
    pl_listener *l = acc_listener(snode, &ac, CODE, &a);

    fake_io io;
    cseen cli = {0};
    pl_session *c = inbound_pair(a, cnode, &io, &cli);
    assert_int_equal(pl_session_set_resume(c, 30000), PL_OK);
    pl__chan_ready(io.ch);
    run_until(&cli.open);
    run_until(&ac.accepted);
    assert_int_equal(pl_session_send(c, "one", 3), PL_OK);
    run_until(&ac.srv.messages);
    assert_string_equal(ac.srv.last, "one");

    /* The transport breaks (Network.framework reports a failure). */
    pl__chan_failed(io.ch, PL_ERR_CLOSED);
    run_until(&cli.interrupted);
    run_until(&ac.srv.interrupted);
    assert_int_equal(pl_session_send(c, "two", 3), PL_OK); /* queued while interrupted */

    /* The initiator dials again: a new transport reaches the acceptor. */
    int sv2[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv2), 0);
    fake_io io2;
    fio_init(&io2, sv2[0]);
    assert_int_equal(pl__chan_accept(a, &fake_chan_io, &io2, &io2.ch), PL_OK);
    assert_int_equal(pl_session_attach_fd(c, sv2[1]), PL_OK);
    pl__chan_ready(io2.ch);
    run_until(&cli.resumed);
    run_until(&ac.srv.resumed);
    assert_int_equal(cli.rstatus, PL_OK);     /* the same session, not a new one */
    assert_int_equal(ac.srv.rstatus, PL_OK);
    assert_int_equal(ac.accepted, 1);         /* never handed over a second time */
    for (int i = 0; i < 200 && ac.srv.messages < 2; i++)
        pl_loop_iterate(loop, 10);
    assert_int_equal(ac.srv.messages, 2);     /* "one" once, then "two" */
    assert_string_equal(ac.srv.last, "two");
    assert_int_equal(pl_session_send(ac.srv.conn, "back", 4), PL_OK);
    run_until(&cli.messages);
    assert_string_equal(cli.last, "back");
    /* Both end: clean close. */
    pl_session_shutdown(c);
    pl_session_shutdown(ac.srv.conn);
    run_until(&cli.closed);
    run_until(&ac.srv.closed);
    assert_int_equal(cli.status, PL_OK);
    assert_int_equal(ac.srv.status, PL_OK);
    pl_session_free(c);
    pl_session_free(ac.srv.conn);
    run_for(30);
    assert_int_equal(io.released, 1);
    assert_int_equal(io2.released, 1);
    fio_clear(&io);
    fio_clear(&io2);
    pl__chan_acceptor_free(a);
    pl_listener_free(l);
    peers_close(&P);
}

/* A stand-in for the "apple" backend's publication, which accepts by
 * itself (what it does not prove: Network.framework's nw_listener). */
static pl_chan_acceptor *facc;
static int facc_port = -1;
static int facc_publish(pl_publication *p)
{
    facc_port = p->port;
    p->priv = &facc_port;
    return PL_OK;
}
static void facc_unpublish(pl_publication *p)
{
    p->priv = NULL;
    pl__chan_acceptor_free(facc);
    facc = NULL;
}
static int facc_accept_into(pl_publication *p, pl_listener *l)
{
    (void)p;
    return facc ? PL_ERR_STATE : pl__chan_acceptor_new(l, &facc);
}
static const pl_discovery_ops accepting_ops = {"accepting",   fake_open,     fake_close,
                                               facc_publish,  fake_update,   facc_unpublish,
                                               fake_browse,   fake_unbrowse, facc_accept_into};

/* Portable accessory code on Apple: pl_listener_new() and
 * pl_listener_publish(), as on Linux. Through a backend whose
 * publications accept by themselves, the listener's socket closes, the
 * publication listens on a port of its own, and what it accepts reaches
 * the listener: its pairing code, its instance name, its callback. */
static void test_listener_publish_through_accepting_backend(void **state)
{
    (void)state;
    peers P;
    peers_open(&P);
    pl_node *cnode = P.cnode, *snode = P.snode;
    pl_discovery *d = fake_discovery();
    d->ops = &accepting_ops;
    accept_ctx ac = {0};
    pl_listener *l;
    assert_int_equal(pl_listener_new(snode, 0, acc_accepted, &ac, &l), PL_OK);
    assert_true(pl_listener_port(l) > 0);
    assert_int_equal(pl_listener_set_pairing(l, CODE, 0, 0), PL_OK);
    assert_int_equal(pl_listener_publish(l, d, "Kitchen", "_peerlink._tcp", NULL, NULL, NULL), PL_OK);
    assert_int_equal(facc_port, 0);           /* the publication's own port */
    assert_int_equal(pl_listener_port(l), 0); /* the listener's socket is closed */
    assert_non_null(facc);

    fake_io io;
    cseen cli = {0};
    pl_session *c = inbound_pair(facc, cnode, &io, &cli);
    pl__chan_ready(io.ch);
    run_until(&cli.open);
    run_until(&ac.accepted);
    assert_int_equal(pl_session_paired(c), 1);
    assert_int_equal(pl_session_send(c, "hello", 5), PL_OK);
    run_until(&ac.srv.messages);
    assert_string_equal(ac.srv.last, "hello");

    pl_session_free(c);
    pl_session_free(ac.srv.conn);
    pl_listener_free(l); /* withdraws the publication, which frees its acceptor */
    assert_null(facc);
    run_for(20);
    assert_int_equal(io.released, 1);
    fio_clear(&io);
    pl_discovery_free(d);
    peers_close(&P);
}

/* Freeing the acceptor (the publication is withdrawn) drops transports
 * not ready yet, silently; what became the listener's handshake is the
 * listener's, and goes when the listener does. */
static void test_chan_acceptor_free_with_pending(void **state)
{
    (void)state;
    pl_keystore *ks;
    assert_int_equal(pl_keystore_new_memory(&ks), PL_OK);
    pl_node *node;
    assert_int_equal(pl_node_new(lpoll, ks, &node), PL_OK);
    accept_ctx ac = {0};
    pl_chan_acceptor *a;
    pl_listener *l = acc_listener(node, &ac, NULL, &a);
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    fake_io connecting, ready;
    fio_init(&connecting, -1);
    fio_init(&ready, sv[0]);
    assert_int_equal(pl__chan_accept(a, &fake_chan_io, &connecting, &connecting.ch), PL_OK);
    assert_int_equal(pl__chan_accept(a, &fake_chan_io, &ready, &ready.ch), PL_OK);
    pl__chan_ready(ready.ch); /* a session exists now, in handshake */
    run_for(20);
    assert_int_equal(pl__chan_acceptor_pending(a), 1);
    assert_int_equal(pl_listener_pending(l), 1);
    pl__chan_acceptor_free(a);
    run_for(30);
    assert_int_equal(connecting.cancels, 1);
    assert_int_equal(connecting.released, 1);
    assert_int_equal(ready.finishes + ready.cancels, 0); /* still the listener's */
    pl_listener_free(l);
    run_for(30);
    assert_int_equal(ready.finishes + ready.cancels, 1);
    assert_int_equal(ready.released, 1);
    assert_int_equal(ac.accepted, 0);
    fio_clear(&connecting);
    fio_clear(&ready);
    close(sv[1]);
    pl_node_free(node);
    pl_keystore_free(ks);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ref_counts),
        cmocka_unit_test_setup_teardown(test_hop_runs_in_order_from_the_loop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hop_from_threads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hop_close_drops, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hop_closed_from_inside, setup, teardown),
        cmocka_unit_test(test_ledger),
        cmocka_unit_test(test_ledger_threads),
        cmocka_unit_test(test_txt_round_trip),
        cmocka_unit_test(test_txt_edges),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_connect_target),
        cmocka_unit_test_setup_teardown(test_browse_changes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_browse_free_inside_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chan_initiator_pairs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chan_initiator_redials_and_resumes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chan_paused_session_stops_receiving, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chan_initiator_connect_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chan_initiator_times_out, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chan_acceptor_also_rans_then_pairing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chan_acceptor_session_resumes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chan_acceptor_free_with_pending, setup, teardown),
        cmocka_unit_test_setup_teardown(test_listener_publish_through_accepting_backend, setup, teardown),
    };
    return cmocka_run_group_tests_name("apple_logic", tests, NULL, NULL);
}
