/* SPDX-License-Identifier: ISC */
/*
 * Unit tests of the generic discovery layer (lib/discovery.c) on a
 * stand-in backend whose reports the test makes by hand, on the built-in
 * loop: when PL_BROWSE_ALL_FOR_NOW comes, the service-types browse, the
 * copies of pl_service_dup() and the name comparison of
 * pl_service_name_equal(); and pl_connect_by_name() (lib/backends/posix/tcp.c)
 * finding a real listener on loopback through it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <peerlink/peerlink.h>

#include "discovery_backend.h"

static pl_loop *loop;

static int fake_open(pl_discovery *d) { (void)d; return PL_OK; }
static void fake_close(pl_discovery *d) { (void)d; }
static int fake_publish(pl_publication *p) { (void)p; return PL_OK; }
static int fake_update(pl_publication *p) { (void)p; return PL_OK; }
static void fake_unpublish(pl_publication *p) { (void)p; }
static pl_browser *last_browser; /* the newest browser made */
static int n_browsing;
static int fake_browse(pl_browser *b) { b->priv = b; last_browser = b; n_browsing++; return PL_OK; }
static void fake_unbrowse(pl_browser *b) { b->priv = NULL; n_browsing--; }
static const pl_discovery_ops fake_ops = {"fake", fake_open, fake_close, fake_publish, fake_update,
                                          fake_unpublish, fake_browse, fake_unbrowse, NULL};

static int setup(void **state)
{
    pl_discovery *d = NULL;
    if (pl_loop_new(&loop) != PL_OK || pl__discovery_open(pl_loop_get_poll(loop), &fake_ops, NULL, &d) != PL_OK)
        return -1;
    *state = d;
    return 0;
}

static int teardown(void **state)
{
    pl_discovery_free(*state);
    pl_loop_free(loop);
    return 0;
}

/* What a browser reported, in order: "+Name", "-Name", "!" (ALL_FOR_NOW), "x" (FAILED). */
typedef struct seen {
    char log[512];
    int free_on; /* free the browser on this event (+1), 0: never */
    pl_browser *b;
    int n_addrs_last;
} seen;

static void on_browse(pl_browser *b, pl_browse_event ev, int status, const pl_service *svc, void *ud)
{
    seen *s = ud;
    char item[80];
    switch (ev) {
    case PL_BROWSE_ADD: snprintf(item, sizeof item, "+%s;", svc->name); break;
    case PL_BROWSE_UPDATE: snprintf(item, sizeof item, "~%s;", svc->name); break;
    case PL_BROWSE_REMOVE: snprintf(item, sizeof item, "-%s;", svc->name); break;
    case PL_BROWSE_ALL_FOR_NOW:
        assert_null(svc);
        assert_int_equal(status, PL_OK);
        snprintf(item, sizeof item, "!;");
        break;
    default: snprintf(item, sizeof item, "x;"); break;
    }
    if (svc)
        s->n_addrs_last = (int)svc->n_addresses;
    strncat(s->log, item, sizeof s->log - strlen(s->log) - 1);
    if (s->free_on && (int)ev + 1 == s->free_on) {
        pl_browser_free(b);
        s->b = NULL;
    }
}

static void resolve(pl_browser *b, const char *name, int iface, uint8_t last)
{
    pl_address a = {AF_INET, {192, 0, 2, last}, 0};
    pl_resolved r = {name, b->type, "local", "box.local", iface, AF_INET, 4242, (const uint8_t *)"\3k=v", 4, &a};
    pl__browser_resolved(b, &r);
}

/* Run the loop until something is logged, at most 10 s. */
static void run_until_logged(const seen *s)
{
    for (int i = 0; i < 1000 && !s->log[0]; i++)
        pl_loop_iterate(loop, 10);
}

static void test_all_for_now_waits_for_settling_adds(void **state)
{
    pl_discovery *d = *state;
    seen s = {0};
    assert_int_equal(pl_browse(d, "_peerlink._tcp", NULL, on_browse, &s, &s.b), PL_OK);
    /* "A" resolved on one of its two interfaces: its ADD waits (at most 250 ms) for the other. */
    pl__browser_seen(s.b, "A", "_peerlink._tcp", "local", 1, AF_INET);
    pl__browser_seen(s.b, "A", "_peerlink._tcp", "local", 2, AF_INET);
    resolve(s.b, "A", 1, 1);
    /* "B" seen, never resolved: nothing waits for it. */
    pl__browser_seen(s.b, "B", "_peerlink._tcp", "local", 1, AF_INET);
    pl__browser_all_for_now(s.b);
    assert_string_equal(s.log, "");
    run_until_logged(&s); /* the settling timer (250 ms): A's ADD, then ALL_FOR_NOW */
    assert_string_equal(s.log, "+A;!;");
    /* Once only. */
    pl__browser_all_for_now(s.b);
    resolve(s.b, "C", 1, 3);
    assert_string_equal(s.log, "+A;!;+C;");
    pl_browser_free(s.b);
}

static void test_all_for_now_at_once_and_after_a_late_resolve(void **state)
{
    pl_discovery *d = *state;
    seen s = {0};
    assert_int_equal(pl_browse(d, "_peerlink._tcp", NULL, on_browse, &s, &s.b), PL_OK);
    resolve(s.b, "A", 1, 1); /* its only source: ADD at once */
    pl__browser_all_for_now(s.b);
    assert_string_equal(s.log, "+A;!;");
    pl_browser_free(s.b);

    /* Settling, then resolved everywhere: the ADD, then ALL_FOR_NOW, without the timer. */
    seen t = {0};
    assert_int_equal(pl_browse(d, "_peerlink._tcp", NULL, on_browse, &t, &t.b), PL_OK);
    pl__browser_seen(t.b, "A", "_peerlink._tcp", "local", 2, AF_INET);
    resolve(t.b, "A", 1, 1);
    pl__browser_all_for_now(t.b);
    assert_string_equal(t.log, "");
    resolve(t.b, "A", 2, 2);
    assert_string_equal(t.log, "+A;!;");
    assert_int_equal(t.n_addrs_last, 2);
    pl_browser_free(t.b);

    /* Settling, then lost before its ADD: ALL_FOR_NOW needs it no longer. */
    seen u = {0};
    assert_int_equal(pl_browse(d, "_peerlink._tcp", NULL, on_browse, &u, &u.b), PL_OK);
    pl__browser_seen(u.b, "A", "_peerlink._tcp", "local", 2, AF_INET);
    resolve(u.b, "A", 1, 1);
    pl__browser_all_for_now(u.b);
    assert_int_equal(pl__browser_lost(u.b, "A", "_peerlink._tcp", "local", 1, AF_INET), 1);
    assert_int_equal(pl__browser_lost(u.b, "A", "_peerlink._tcp", "local", 2, AF_INET), 1);
    assert_string_equal(u.log, "!;");
    pl_browser_free(u.b);
}

static void test_no_all_for_now_after_failure_and_free_inside(void **state)
{
    pl_discovery *d = *state;
    seen s = {0};
    assert_int_equal(pl_browse(d, "_peerlink._tcp", NULL, on_browse, &s, &s.b), PL_OK);
    pl__browser_failed(s.b, PL_ERR_DAEMON);
    pl__browser_all_for_now(s.b);
    assert_string_equal(s.log, "x;");
    pl_browser_free(s.b);

    /* Freed from inside its ALL_FOR_NOW, and from inside an ADD: the backend learns it. */
    seen t = {.free_on = PL_BROWSE_ALL_FOR_NOW + 1};
    assert_int_equal(pl_browse(d, "_peerlink._tcp", NULL, on_browse, &t, &t.b), PL_OK);
    pl__browser_all_for_now(t.b);
    assert_null(t.b);
    assert_string_equal(t.log, "!;");
    seen u = {.free_on = PL_BROWSE_ADD + 1};
    assert_int_equal(pl_browse(d, "_peerlink._tcp", NULL, on_browse, &u, &u.b), PL_OK);
    pl_browser *b = u.b;
    pl_address a = {AF_INET, {192, 0, 2, 1}, 0};
    pl_resolved r = {"A", "_peerlink._tcp", "local", "box.local", 1, AF_INET, 1, NULL, 0, &a};
    assert_int_equal(pl__browser_resolved(b, &r), 0);
    assert_string_equal(u.log, "+A;");
}

static void test_service_types_browse(void **state)
{
    pl_discovery *d = *state;
    seen s = {0};
    pl_browser *bad;
    assert_int_equal(pl_browse(d, "_services._dns-sd._tcp", NULL, on_browse, &s, &bad), PL_ERR_INVALID);
    assert_int_equal(pl_browse(d, "_services._dns-sd", NULL, on_browse, &s, &bad), PL_ERR_INVALID);
    assert_int_equal(pl_browse(d, "_SERVICES._dns-sd._UDP", NULL, on_browse, &s, &s.b), PL_OK);
    assert_int_equal(s.b->types, 1);
    assert_string_equal(s.b->type, "_services._dns-sd._udp");
    /* A type seen on two interfaces: one ADD; gone from both: one REMOVE. */
    pl_resolved r = {"_http._tcp", s.b->type, "local", "", 1, AF_INET, 0, NULL, 0, NULL};
    pl__browser_resolved(s.b, &r);
    r.iface = 2;
    pl__browser_resolved(s.b, &r);
    assert_string_equal(s.log, "+_http._tcp;");
    assert_int_equal(s.n_addrs_last, 0);
    pl__browser_lost(s.b, "_http._tcp", s.b->type, "local", 1, AF_INET);
    assert_string_equal(s.log, "+_http._tcp;");
    pl__browser_lost(s.b, "_http._tcp", s.b->type, "local", 2, AF_INET);
    assert_string_equal(s.log, "+_http._tcp;-_http._tcp;");
    pl_browser_free(s.b);
}

static void test_name_equal(void **state)
{
    (void)state;
    assert_true(pl_service_name_equal("Kitchen", "kITCHEN"));
    assert_true(pl_service_name_equal("My Box #2", "my box #2"));
    assert_true(pl_service_name_equal("", ""));
    assert_false(pl_service_name_equal("Kitchen", "Kitchen "));
    assert_false(pl_service_name_equal("Kitchen", "Kitche"));
    /* No Unicode folding: "Ü" (C3 9C) and "ü" (C3 BC) differ. */
    assert_true(pl_service_name_equal("K\xc3\xbc" "che", "K\xc3\xbc" "CHE"));
    assert_false(pl_service_name_equal("K\xc3\xbc" "che", "K\xc3\x9c" "che"));
    /* Only letters fold: '@' (0x40) is not '`' (0x60), '[' not '{'. */
    assert_false(pl_service_name_equal("@[", "`{"));
    assert_false(pl_service_name_equal(NULL, "a"));
    assert_false(pl_service_name_equal("a", NULL));
}

static void test_service_dup(void **state)
{
    (void)state;
    char name[] = "Kitchen", type[] = "_peerlink._tcp", domain[] = "local", host[] = "box.local";
    pl_address addrs[3] = {{AF_INET, {192, 0, 2, 1}, 0}, {AF_INET6, {0xfe, 0x80, [15] = 1}, 3},
                           {AF_INET, {198, 51, 100, 7}, 2}};
    pl_txt *txt;
    assert_int_equal(pl_txt_new(&txt), PL_OK);
    assert_int_equal(pl_txt_set(txt, "k", "v", 1), PL_OK);
    pl_service svc = {name, type, domain, host, 4242, txt, 3, addrs};
    pl_service *c = NULL;
    assert_int_equal(pl_service_dup(&svc, &c), PL_OK);
    /* The copy owns everything: the original's memory changes or goes. */
    memset(name, 'x', sizeof name - 1);
    memset(host, 'x', sizeof host - 1);
    memset(addrs, 0, sizeof addrs);
    pl_txt_free(txt);
    assert_string_equal(c->name, "Kitchen");
    assert_string_equal(c->type, "_peerlink._tcp");
    assert_string_equal(c->domain, "local");
    assert_string_equal(c->host, "box.local");
    assert_int_equal(c->port, 4242);
    assert_int_equal(c->n_addresses, 3);
    assert_int_equal(c->addresses[1].family, AF_INET6);
    assert_int_equal(c->addresses[1].addr[15], 1);
    assert_int_equal(c->addresses[1].ifindex, 3);
    assert_int_equal(c->addresses[2].addr[3], 7);
    const void *v;
    size_t len;
    assert_int_equal(pl_txt_get(c->txt, "k", &v, &len), PL_OK);
    assert_int_equal(len, 1);
    assert_memory_equal(v, "v", 1);
    /* A copy of the copy. */
    pl_service *c2 = NULL;
    assert_int_equal(pl_service_dup(c, &c2), PL_OK);
    pl_service_free(c);
    assert_string_equal(c2->host, "box.local");
    assert_int_equal(c2->addresses[0].addr[0], 192);
    pl_service_free(c2);

    /* NULL strings stay NULL; no TXT becomes an empty one; no addresses. */
    pl_service bare = {"Bare", NULL, NULL, NULL, 0, NULL, 0, NULL};
    assert_int_equal(pl_service_dup(&bare, &c), PL_OK);
    assert_string_equal(c->name, "Bare");
    assert_null(c->type);
    assert_null(c->host);
    assert_non_null(c->txt);
    assert_int_equal(pl_txt_count(c->txt), 0);
    assert_int_equal(c->n_addresses, 0);
    assert_null(c->addresses);
    pl_service_free(c);
    pl_service_free(NULL);

    /* Bad input: *out untouched. */
    pl_service *keep = (pl_service *)&bare;
    pl_service broken = {"B", NULL, NULL, NULL, 0, NULL, 2, NULL};
    assert_int_equal(pl_service_dup(&broken, &keep), PL_ERR_INVALID);
    assert_int_equal(pl_service_dup(NULL, &keep), PL_ERR_INVALID);
    assert_int_equal(pl_service_dup(&bare, NULL), PL_ERR_INVALID);
    assert_ptr_equal(keep, &bare);
}

/* ---------------------------------------------------------------- pl_connect_by_name() */

#define CODE "482913"

typedef struct cfix {
    pl_discovery *d;
    pl_keystore *srv_ks, *cli_ks;
    pl_node *srv_node, *cli_node;
    pl_listener *l;
    pl_session *srv, *cli;
    int open, closed, status, srv_open;
} cfix;

static void on_cli(pl_session *c, pl_session_event ev, int status, const void *data, size_t len, void *ud)
{
    cfix *f = ud;
    (void)c;
    (void)data;
    (void)len;
    if (ev == PL_SESSION_OPEN)
        f->open++;
    if (ev == PL_SESSION_CLOSED) {
        f->closed++;
        f->status = status;
    }
}

static void on_accept(pl_listener *l, pl_session *c, void *ud)
{
    cfix *f = ud;
    (void)l;
    f->srv = c;
    f->srv_open++;
    pl_session_set_callback(c, NULL, NULL);
}

static int csetup(void **state)
{
    cfix *f = calloc(1, sizeof *f);
    if (!f || setup((void **)&f->d) != 0)
        return -1;
    const pl_poll *poll = pl_loop_get_poll(loop);
    assert_int_equal(pl_keystore_new_memory(&f->srv_ks), PL_OK);
    assert_int_equal(pl_keystore_new_memory(&f->cli_ks), PL_OK);
    assert_int_equal(pl_node_new(poll, f->srv_ks, &f->srv_node), PL_OK);
    assert_int_equal(pl_node_new(poll, f->cli_ks, &f->cli_node), PL_OK);
    assert_int_equal(pl_listener_new(f->srv_node, 0, on_accept, f, &f->l), PL_OK);
    assert_int_equal(pl_listener_set_instance(f->l, "Kitchen"), PL_OK);
    assert_int_equal(pl_listener_set_pairing(f->l, CODE, 0, 3), PL_OK);
    n_browsing = 0;
    last_browser = NULL;
    *state = f;
    return 0;
}

static int cteardown(void **state)
{
    cfix *f = *state;
    pl_session_free(f->cli);
    pl_session_free(f->srv);
    pl_listener_free(f->l);
    pl_node_free(f->srv_node);
    pl_node_free(f->cli_node);
    pl_keystore_free(f->srv_ks);
    pl_keystore_free(f->cli_ks);
    teardown((void **)&f->d);
    free(f);
    return 0;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Run the loop until *flag is set, at most 10 s (a hang fails the test). */
static void run_until(const int *flag)
{
    int64_t end = now_ms() + 10000;
    while (!*flag && now_ms() < end)
        assert_true(pl_loop_iterate(loop, 50) >= 0);
    assert_true(*flag);
}

/* The browser of pl_connect_by_name() reports name at 127.0.0.1:port. */
static int report(const char *name, uint16_t port)
{
    pl_address a = {AF_INET, {127, 0, 0, 1}, 0};
    pl_resolved r = {name, "_peerlink._tcp", "local", "localhost", 1, AF_INET, port, NULL, 0, &a};
    return pl__browser_resolved(last_browser, &r);
}

/* Asked for in another case, found, connected with the name as the network
 * spells it: the listener's handshake is bound to "Kitchen" and would refuse
 * any other spelling; the peer is stored under it. */
static void test_connect_by_name_any_case(void **state)
{
    cfix *f = *state;
    assert_int_equal(pl_connect_by_name(f->cli_node, f->d, "_peerlink._tcp", "kITCHEN", 5000, on_cli, f, &f->cli),
                     PL_OK);
    /* Set up as a pl_connect() session before it is found. */
    assert_int_equal(pl_session_set_code(f->cli, CODE), PL_OK);
    assert_int_equal(pl_session_set_discovery(f->cli, f->d), PL_OK);
    assert_int_equal(pl_session_send(f->cli, "early", 5), PL_OK);
    assert_int_equal(n_browsing, 1);
    pl_loop_iterate(loop, 10);
    assert_int_equal(f->open + f->closed, 0);
    /* Another instance, and an ALL_FOR_NOW: nothing happens. */
    report("Kitchen 2", 1);
    pl__browser_all_for_now(last_browser);
    pl_loop_iterate(loop, 10);
    assert_int_equal(f->open + f->closed, 0);
    /* The name with nothing to dial (port 0, as anyone on the network may send): still looking. */
    report("Kitchen", 0);
    pl_loop_iterate(loop, 10);
    assert_int_equal(f->open + f->closed, 0);
    report("Kitchen", pl_listener_port(f->l));
    run_until(&f->open);
    assert_int_equal(f->closed, 0);
    assert_int_equal(n_browsing, 0); /* found and connected: the search is over */
    run_until(&f->srv_open);
    assert_int_equal(pl_keystore_forget(f->cli_ks, "Kitchen"), PL_OK);
    assert_int_equal(pl_keystore_forget(f->cli_ks, "kITCHEN"), PL_ERR_NOT_FOUND);
}

static void test_connect_by_name_not_found(void **state)
{
    cfix *f = *state;
    pl_session *c = NULL;
    /* timeout_ms must bound the search. */
    assert_int_equal(pl_connect_by_name(f->cli_node, f->d, "_peerlink._tcp", "Kitchen", 0, on_cli, f, &c),
                     PL_ERR_INVALID);
    assert_int_equal(pl_connect_by_name(f->cli_node, f->d, "_peerlink._tcp", "Kitchen", -1, on_cli, f, &c),
                     PL_ERR_INVALID);
    assert_int_equal(pl_connect_by_name(f->cli_node, f->d, "_services._dns-sd._udp", "Kitchen", 100, on_cli, f, &c),
                     PL_ERR_INVALID);
    assert_int_equal(pl_connect_by_name(f->cli_node, NULL, "_peerlink._tcp", "Kitchen", 100, on_cli, f, &c),
                     PL_ERR_INVALID);
    assert_int_equal(pl_connect_by_name(f->cli_node, f->d, "_peerlink._tcp", "", 100, on_cli, f, &c),
                     PL_ERR_INVALID);
    assert_int_equal(pl_connect_by_name(f->cli_node, f->d, "peerlink", "Kitchen", 100, on_cli, f, &c),
                     PL_ERR_INVALID); /* pl_browse()'s answer */
    assert_null(c);
    assert_int_equal(n_browsing, 0);
    assert_int_equal(pl_connect_by_name(f->cli_node, f->d, "_peerlink._tcp", "Nobody", 200, on_cli, f, &f->cli),
                     PL_OK);
    report("Kitchen", pl_listener_port(f->l)); /* not the one */
    run_until(&f->closed);
    assert_int_equal(f->status, PL_ERR_NOT_FOUND);
    assert_int_equal(f->open, 0);
    assert_int_equal(n_browsing, 0);
    assert_int_equal(f->srv_open, 0);
}

/* Freed while it searches: the search stops, no callback ever comes. */
static void test_connect_by_name_freed_while_searching(void **state)
{
    cfix *f = *state;
    assert_int_equal(pl_connect_by_name(f->cli_node, f->d, "_peerlink._tcp", "Kitchen", 100, on_cli, f, &f->cli),
                     PL_OK);
    pl_loop_iterate(loop, 10);
    assert_int_equal(n_browsing, 1);
    pl_session_free(f->cli);
    f->cli = NULL;
    assert_int_equal(n_browsing, 0);
    for (int i = 0; i < 30; i++)
        pl_loop_iterate(loop, 10); /* past its timeout */
    assert_int_equal(f->open + f->closed, 0);

    /* Browsing fails while it searches: closed with the browser's status. */
    assert_int_equal(pl_connect_by_name(f->cli_node, f->d, "_peerlink._tcp", "Kitchen", 5000, on_cli, f, &f->cli),
                     PL_OK);
    pl_discovery *other = NULL;
    assert_int_equal(pl__discovery_open(pl_loop_get_poll(loop), &fake_ops, NULL, &other), PL_OK);
    assert_int_equal(pl_session_set_discovery(f->cli, other), PL_ERR_STATE);
    pl_discovery_free(other);
    pl__browser_failed(last_browser, PL_ERR_DAEMON);
    assert_int_equal(f->closed, 1);
    assert_int_equal(f->status, PL_ERR_DAEMON);
    assert_int_equal(n_browsing, 0);
}

/* The browser of pl_connect_by_name() reports name at 127.0.0.1:port with
 * the TXT record a listener published (its discovery hint). */
static void report_published(const char *name, uint16_t port, const pl_listener *l)
{
    uint8_t txt[256];
    size_t n = 0;
    assert_int_equal(pl_txt_encode(pl_listener_publication(l)->txt, txt, sizeof txt, &n), PL_OK);
    pl_address a = {AF_INET, {127, 0, 0, 1}, 0};
    pl_resolved r = {name, "_peerlink._tcp", "local", "localhost", 1, AF_INET, port, txt, n, &a};
    pl__browser_resolved(last_browser, &r);
}

static void on_squat_accept(pl_listener *l, pl_session *c, void *ud)
{
    (void)l;
    ++*(int *)ud;
    pl_session_free(c);
}

/* Issue 12: the responder paired as "Kitchen" is renamed "Kitchen #2" by a
 * name conflict with another device that now holds "Kitchen". Asked for
 * "Kitchen" with no code, pl_connect_by_name() finds it by its discovery
 * hint and authenticates it; the session reports the stored name and the
 * claim apart, once discovery has listed the network (a copy of the hint
 * under another name must not win over the responder still under its
 * name). Only the device that holds the name: it is dialled once
 * discovery has listed the network, and refused (NOT_PAIRED). */
static void test_connect_by_name_follows_rename(void **state)
{
    cfix *f = *state;
    const pl_poll *poll = pl_loop_get_poll(loop);
    assert_int_equal(pl_listener_publish(f->l, f->d, "Kitchen", "_peerlink._tcp", NULL, NULL, NULL), PL_OK);
    assert_int_equal(pl_txt_get(pl_listener_publication(f->l)->txt, "pl-hint", NULL, NULL), PL_OK);
    /* Pair with "Kitchen". */
    assert_int_equal(pl_connect_by_name(f->cli_node, f->d, "_peerlink._tcp", "Kitchen", 5000, on_cli, f, &f->cli),
                     PL_OK);
    assert_int_equal(pl_session_set_code(f->cli, CODE), PL_OK);
    report_published("Kitchen", pl_listener_port(f->l), f->l);
    run_until(&f->open);
    assert_string_equal(pl_session_peer_stored_name(f->cli), "Kitchen");
    pl_session_free(f->cli);
    f->cli = NULL;
    f->open = f->srv_open = 0;

    /* A copy of its hint under another name, listed first (here at a port
     * where nothing listens), does not win over "Kitchen" itself. */
    assert_int_equal(pl_connect_by_name(f->cli_node, f->d, "_peerlink._tcp", "Kitchen", 5000, on_cli, f, &f->cli),
                     PL_OK);
    report_published("Copycat", 1, f->l);
    for (int i = 0; i < 20; i++)
        pl_loop_iterate(loop, 10); /* held until the network is listed */
    report_published("Kitchen", pl_listener_port(f->l), f->l);
    run_until(&f->open);
    assert_int_equal(f->closed, 0);
    assert_string_equal(pl_session_peer_stored_name(f->cli), "Kitchen");
    run_until(&f->srv_open);
    pl_session_free(f->cli);
    f->cli = NULL;
    f->open = f->srv_open = 0;

    /* Another device takes "Kitchen"; ours is "Kitchen #2" now. */
    pl_keystore *sks;
    pl_node *snode;
    pl_listener *squat;
    int squat_open = 0;
    assert_int_equal(pl_keystore_new_memory(&sks), PL_OK);
    assert_int_equal(pl_node_new(poll, sks, &snode), PL_OK);
    assert_int_equal(pl_listener_new(snode, 0, on_squat_accept, &squat_open, &squat), PL_OK);
    assert_int_equal(pl_listener_publish(squat, f->d, "Kitchen", "_peerlink._tcp", NULL, NULL, NULL), PL_OK);
    assert_int_equal(pl_listener_set_instance(f->l, "Kitchen #2"), PL_OK); /* what its renamed publication does */
    assert_int_equal(pl_connect_by_name(f->cli_node, f->d, "_peerlink._tcp", "Kitchen", 5000, on_cli, f, &f->cli),
                     PL_OK);
    report_published("Kitchen", pl_listener_port(squat), squat);
    for (int i = 0; i < 40; i++)
        pl_loop_iterate(loop, 10); /* its ADD comes first: held, not dialled */
    assert_int_equal(f->open + f->closed, 0);
    report_published("Kitchen #2", pl_listener_port(f->l), f->l);
    for (int i = 0; i < 20; i++)
        pl_loop_iterate(loop, 10); /* another name: held too, until the network is listed */
    assert_int_equal(f->open + f->closed, 0);
    pl__browser_all_for_now(last_browser);
    run_until(&f->open);
    assert_int_equal(pl_session_paired(f->cli), 0); /* no code */
    assert_string_equal(pl_session_peer_stored_name(f->cli), "Kitchen");
    assert_string_equal(pl_session_peer_name(f->cli), "Kitchen #2"); /* its claim */
    run_until(&f->srv_open);
    assert_int_equal(n_browsing, 0); /* found and connected: the search is over */
    assert_int_equal(squat_open, 0);
    assert_int_equal(f->closed, 0);
    pl_session_free(f->cli);
    f->cli = NULL;

    /* pl_connect() to the instance "Kitchen #2", under which nothing is
     * stored: its hint says which stored responder to expect. */
    f->open = f->srv_open = 0;
    pl_address lo = {AF_INET, {127, 0, 0, 1}, 0};
    pl_service svc = {"Kitchen #2", "_peerlink._tcp", "local", "localhost", pl_listener_port(f->l),
                      pl_listener_publication(f->l)->txt, 1, &lo};
    assert_int_equal(pl_connect(f->cli_node, &svc, 5000, on_cli, f, &f->cli), PL_OK);
    run_until(&f->open);
    assert_string_equal(pl_session_peer_stored_name(f->cli), "Kitchen");
    run_until(&f->srv_open);
    pl_session_free(f->cli);
    f->cli = NULL;

    /* Only the other "Kitchen" is there: dialled once the network is listed, refused. */
    assert_int_equal(pl_connect_by_name(f->cli_node, f->d, "_peerlink._tcp", "Kitchen", 5000, on_cli, f, &f->cli),
                     PL_OK);
    report_published("Kitchen", pl_listener_port(squat), squat);
    for (int i = 0; i < 40; i++)
        pl_loop_iterate(loop, 10);
    assert_int_equal(f->closed, 0);
    pl__browser_all_for_now(last_browser);
    run_until(&f->closed);
    assert_int_equal(f->status, PL_ERR_NOT_PAIRED);
    assert_int_equal(squat_open, 0);
    pl_listener_free(squat);
    pl_node_free(snode);
    pl_keystore_free(sks);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_all_for_now_waits_for_settling_adds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_all_for_now_at_once_and_after_a_late_resolve, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_all_for_now_after_failure_and_free_inside, setup, teardown),
        cmocka_unit_test_setup_teardown(test_service_types_browse, setup, teardown),
        cmocka_unit_test(test_name_equal),
        cmocka_unit_test(test_service_dup),
        cmocka_unit_test_setup_teardown(test_connect_by_name_any_case, csetup, cteardown),
        cmocka_unit_test_setup_teardown(test_connect_by_name_not_found, csetup, cteardown),
        cmocka_unit_test_setup_teardown(test_connect_by_name_follows_rename, csetup, cteardown),
        cmocka_unit_test_setup_teardown(test_connect_by_name_freed_while_searching, csetup, cteardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
