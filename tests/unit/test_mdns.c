/* SPDX-License-Identifier: ISC */
/*
 * Unit tests of the sans-I/O mDNS engine (lib/mdns/engine.c) on a fake
 * clock: engines are wired to each other in memory (every packet one
 * sends reaches all of them, itself included, as multicast loopback
 * does), and the packets and events are recorded with their times.
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

#include <peerlink/common.h>

#include "mdns/dns.h"
#include "mdns/engine.h"

#define MAXE 3
#define MAXLOG 2048

typedef struct sent {
    int64_t t;
    size_t len;
    uint8_t data[PL_MDNS_PACKET_SIZE];
} sent;

typedef struct evrec {
    int64_t t;
    pl_mdns_event ev;
    uint8_t txt[256];
} evrec;

typedef struct sim {
    pl_mdns *e[MAXE];
    pl_mdns_addr addr[MAXE];
    int n;
    int64_t now;
    int deliver; /* 0: packets go nowhere */
    sent log[MAXE][MAXLOG];
    size_t n_log[MAXE];
    evrec ev[MAXE][256];
    size_t n_ev[MAXE];
} sim;

static sim *sim_new(int n, const char *const *labels)
{
    sim *s = calloc(1, sizeof *s);
    assert_non_null(s);
    s->n = n;
    s->deliver = 1;
    for (int i = 0; i < n; i++) {
        assert_int_equal(pl_mdns_new(labels[i], 1234 + (uint32_t)i, &s->e[i]), PL_OK);
        s->addr[i].family = AF_INET;
        uint8_t a[4] = {192, 0, 2, (uint8_t)(10 + i)};
        memcpy(s->addr[i].addr, a, 4);
        assert_int_equal(pl_mdns_link_set(s->e[i], 1, AF_INET, &s->addr[i], 1, 0), PL_OK);
    }
    return s;
}

static void sim_free(sim *s)
{
    for (int i = 0; i < s->n; i++)
        pl_mdns_free(s->e[i]);
    free(s);
}

static void drain_events(sim *s, int i)
{
    pl_mdns_event ev;
    while (pl_mdns_next_event(s->e[i], &ev)) {
        if (s->n_ev[i] >= 256)
            continue;
        evrec *r = &s->ev[i][s->n_ev[i]++];
        r->t = s->now;
        r->ev = ev;
        size_t n = ev.txt_len < sizeof r->txt ? ev.txt_len : sizeof r->txt;
        memcpy(r->txt, ev.txt, n);
        r->ev.txt = r->txt;
    }
}

/* Send what is due, deliver it, until nothing moves at this instant. */
static void sim_flush(sim *s)
{
    static pl_mdns_packet p;
    for (int round = 0; round < 100; round++) {
        int any = 0;
        for (int i = 0; i < s->n; i++) {
            while (pl_mdns_next_packet(s->e[i], s->now, &p)) {
                any = 1;
                if (s->n_log[i] < MAXLOG) {
                    sent *l = &s->log[i][s->n_log[i]++];
                    l->t = s->now;
                    l->len = p.len;
                    memcpy(l->data, p.data, p.len);
                }
                if (!s->deliver)
                    continue;
                for (int j = 0; j < s->n; j++)
                    pl_mdns_input(s->e[j], p.ifindex, p.family, p.data, p.len, &s->addr[i], 5353, s->now);
            }
        }
        for (int i = 0; i < s->n; i++)
            drain_events(s, i);
        if (!any)
            return;
    }
}

static void sim_run(sim *s, int64_t until)
{
    while (s->now <= until) {
        for (int i = 0; i < s->n; i++) {
            int64_t d = pl_mdns_next_deadline(s->e[i]);
            if (d >= 0 && d <= s->now)
                pl_mdns_process(s->e[i], s->now);
        }
        sim_flush(s);
        int64_t next = -1;
        for (int i = 0; i < s->n; i++) {
            int64_t d = pl_mdns_next_deadline(s->e[i]);
            if (d >= 0 && (next < 0 || d < next))
                next = d;
        }
        if (next <= s->now)
            next = s->now + 1;
        if (next > until) {
            s->now = until + 1;
            break;
        }
        s->now = next;
    }
    s->now = until;
}

/* Does packet l hold a record (section 0: any) of type with owner name? With what TTL? */
static int has_record(const sent *l, int qr, const char *name, uint16_t type, uint32_t *ttl, size_t *section)
{
    pl_dns_message *m = NULL;
    if (pl_dns_parse(l->data, l->len, &m) != PL_OK)
        return 0;
    int found = 0;
    pl_dns_name n;
    pl_dns_name_from_text(&n, name);
    if (((m->flags & 0x8000) != 0) == qr) {
        size_t total = m->n_answers + m->n_authority + m->n_additional;
        for (size_t i = 0; i < total && !found; i++) {
            if (m->records[i].type == type && pl_dns_name_equal(&m->records[i].name, &n)) {
                found = 1;
                if (ttl)
                    *ttl = m->records[i].ttl;
                if (section)
                    *section = i < m->n_answers ? 1 : i < m->n_answers + m->n_authority ? 2 : 3;
            }
        }
    }
    pl_dns_free(m);
    return found;
}

static int has_question(const sent *l, const char *name, uint16_t type)
{
    pl_dns_message *m = NULL;
    if (pl_dns_parse(l->data, l->len, &m) != PL_OK)
        return 0;
    pl_dns_name n;
    pl_dns_name_from_text(&n, name);
    int found = 0;
    if (!(m->flags & 0x8000))
        for (size_t i = 0; i < m->n_questions; i++)
            found |= m->questions[i].type == type && pl_dns_name_equal(&m->questions[i].name, &n);
    pl_dns_free(m);
    return found;
}

static const evrec *find_event(sim *s, int i, pl_mdns_event_type type, const char *name, size_t from)
{
    for (size_t k = from; k < s->n_ev[i]; k++)
        if (s->ev[i][k].ev.type == type && (!name || strcmp(s->ev[i][k].ev.name, name) == 0))
            return &s->ev[i][k];
    return NULL;
}

#define INST "Box._peerlink._tcp.local"
static const uint8_t TXT1[] = "\x03k=v";
static const uint8_t TXT2[] = "\x03k=w\x04" "flag";

/* ---------------------------------------------------------------- tests */

static void test_probe_and_announce_timing(void **state)
{
    const char *labels[] = {"alpha"};
    sim *s = sim_new(1, labels);
    s->deliver = 1; /* it hears itself: its own probes must not count as conflicts */
    uint32_t id;
    assert_int_equal(pl_mdns_publish(s->e[0], "Box", "_peerlink._tcp", "local", 4242, TXT1, 4, 0, &id), PL_OK);
    sim_run(s, 5000);
    int64_t probes[8], ann[8];
    int np = 0, na = 0;
    for (size_t k = 0; k < s->n_log[0]; k++) {
        const sent *l = &s->log[0][k];
        size_t sec = 0;
        if (has_question(l, INST, PL_DNS_ANY) && has_record(l, 0, INST, PL_DNS_SRV, NULL, &sec)) {
            assert_int_equal(sec, 2); /* proposed records in the authority section */
            if (np < 8)
                probes[np++] = l->t;
        }
        if (has_record(l, 1, INST, PL_DNS_SRV, NULL, NULL) && has_record(l, 1, INST, PL_DNS_TXT, NULL, NULL) &&
            has_record(l, 1, "_peerlink._tcp.local", PL_DNS_PTR, NULL, NULL) && na < 8)
            ann[na++] = l->t;
    }
    assert_int_equal(np, 3);
    assert_true(probes[0] >= 0 && probes[0] <= 250);
    assert_int_equal(probes[1] - probes[0], 250);
    assert_int_equal(probes[2] - probes[1], 250);
    assert_int_equal(na, 2);
    assert_true(ann[0] >= probes[2] + 250);
    assert_int_equal(ann[1] - ann[0], 1000);
    const evrec *est = find_event(s, 0, PL_MDNS_EV_ESTABLISHED, "Box", 0);
    assert_non_null(est);
    assert_int_equal(est->t, ann[0]);
    assert_null(find_event(s, 0, PL_MDNS_EV_RENAMED, NULL, 0));
    /* The host name was probed and announced too. */
    int host_ann = 0;
    for (size_t k = 0; k < s->n_log[0]; k++)
        host_ann |= has_record(&s->log[0][k], 1, "alpha.local", PL_DNS_A, NULL, NULL);
    assert_true(host_ann);
    assert_string_equal(pl_mdns_host_name(s->e[0]), "alpha.local");
    sim_free(s);
}

static void test_conflict_renames(void **state)
{
    const char *labels[] = {"alpha", "beta"};
    sim *s = sim_new(2, labels);
    uint32_t a, b;
    assert_int_equal(pl_mdns_publish(s->e[0], "Twin", "_peerlink._tcp", "local", 4250, TXT1, 4, 0, &a), PL_OK);
    sim_run(s, 3000);
    assert_non_null(find_event(s, 0, PL_MDNS_EV_ESTABLISHED, "Twin", 0));
    assert_int_equal(pl_mdns_publish(s->e[1], "Twin", "_peerlink._tcp", "local", 4251, TXT1, 4, s->now, &b), PL_OK);
    sim_run(s, 8000);
    const evrec *ren = find_event(s, 1, PL_MDNS_EV_RENAMED, NULL, 0);
    assert_non_null(ren);
    assert_string_equal(ren->ev.name, "Twin #2");
    assert_non_null(find_event(s, 1, PL_MDNS_EV_ESTABLISHED, "Twin #2", 0));
    assert_null(find_event(s, 1, PL_MDNS_EV_ESTABLISHED, "Twin", 0));
    assert_string_equal(pl_mdns_publication_name(s->e[1], b), "Twin #2");
    /* The first keeps its name and reports nothing more. */
    assert_null(find_event(s, 0, PL_MDNS_EV_RENAMED, NULL, 0));
    assert_string_equal(pl_mdns_publication_name(s->e[0], a), "Twin");
    sim_free(s);
}

static void test_simultaneous_probes_end_distinct(void **state)
{
    const char *labels[] = {"alpha", "beta"};
    sim *s = sim_new(2, labels);
    uint32_t a, b;
    assert_int_equal(pl_mdns_publish(s->e[0], "Twin", "_peerlink._tcp", "local", 4250, TXT1, 4, 0, &a), PL_OK);
    assert_int_equal(pl_mdns_publish(s->e[1], "Twin", "_peerlink._tcp", "local", 4251, TXT1, 4, 0, &b), PL_OK);
    sim_run(s, 10000);
    assert_non_null(find_event(s, 0, PL_MDNS_EV_ESTABLISHED, NULL, 0));
    assert_non_null(find_event(s, 1, PL_MDNS_EV_ESTABLISHED, NULL, 0));
    assert_string_not_equal(pl_mdns_publication_name(s->e[0], a), pl_mdns_publication_name(s->e[1], b));
    sim_free(s);
}

static void test_host_conflict_renames_host(void **state)
{
    const char *labels[] = {"same", "same"};
    sim *s = sim_new(2, labels);
    uint32_t a, b;
    /* The second engine comes up once the first owns the name. */
    pl_mdns_free(s->e[1]);
    assert_int_equal(pl_mdns_new("same", 99, &s->e[1]), PL_OK);
    assert_int_equal(pl_mdns_publish(s->e[0], "One", "_peerlink._tcp", "local", 1, NULL, 0, 0, &a), PL_OK);
    sim_run(s, 3000);
    assert_int_equal(pl_mdns_link_set(s->e[1], 1, AF_INET, &s->addr[1], 1, s->now), PL_OK);
    assert_int_equal(pl_mdns_publish(s->e[1], "Two", "_peerlink._tcp", "local", 2, NULL, 0, s->now, &b), PL_OK);
    sim_run(s, 8000);
    assert_string_equal(pl_mdns_host_name(s->e[0]), "same.local");
    assert_string_equal(pl_mdns_host_name(s->e[1]), "same-2.local");
    assert_non_null(find_event(s, 1, PL_MDNS_EV_ESTABLISHED, "Two", 0));
    sim_free(s);
}

/* Feed engine e a query for name/type with one known answer PTR -> target of ttl. */
static void query_with_known(sim *s, int e, const char *name, uint16_t type, const char *known_target,
                             uint32_t ttl)
{
    uint8_t buf[512];
    pl_dns_writer w;
    pl_dns_writer_init(&w, buf, sizeof buf, 0, 0);
    pl_dns_question q;
    memset(&q, 0, sizeof q);
    pl_dns_name_from_text(&q.name, name);
    q.type = type;
    q.qclass = PL_DNS_CLASS_IN;
    assert_int_equal(pl_dns_write_question(&w, &q), PL_OK);
    if (known_target) {
        pl_dns_record r;
        memset(&r, 0, sizeof r);
        r.name = q.name;
        r.type = PL_DNS_PTR;
        r.rrclass = PL_DNS_CLASS_IN;
        r.ttl = ttl;
        pl_dns_name_from_text(&r.u.ptr, known_target);
        assert_int_equal(pl_dns_write_record(&w, 1, &r), PL_OK);
    }
    size_t len = pl_dns_writer_finish(&w);
    pl_mdns_addr src = {AF_INET, {192, 0, 2, 99}};
    pl_mdns_input(s->e[e], 1, AF_INET, buf, len, &src, 5353, s->now);
}

static size_t responses_since(sim *s, int e, size_t from, const char *name, uint16_t type)
{
    size_t n = 0;
    for (size_t k = from; k < s->n_log[e]; k++)
        n += has_record(&s->log[e][k], 1, name, type, NULL, NULL);
    return n;
}

static void test_answers_and_known_answer_suppression(void **state)
{
    const char *labels[] = {"alpha"};
    sim *s = sim_new(1, labels);
    uint32_t id;
    assert_int_equal(pl_mdns_publish(s->e[0], "Box", "_peerlink._tcp", "local", 4242, TXT1, 4, 0, &id), PL_OK);
    sim_run(s, 4000); /* established, announcements done */
    s->deliver = 0;

    /* Known with a full TTL: suppressed. */
    size_t mark = s->n_log[0];
    query_with_known(s, 0, "_peerlink._tcp.local", PL_DNS_PTR, INST, 4500);
    sim_run(s, s->now + 500);
    assert_int_equal(responses_since(s, 0, mark, "_peerlink._tcp.local", PL_DNS_PTR), 0);

    /* Known with less than half the TTL left: answered, after 20-120 ms, with SRV/TXT/A as additionals. */
    mark = s->n_log[0];
    int64_t asked = s->now;
    query_with_known(s, 0, "_peerlink._tcp.local", PL_DNS_PTR, INST, 2000);
    sim_run(s, s->now + 500);
    assert_int_equal(responses_since(s, 0, mark, "_peerlink._tcp.local", PL_DNS_PTR), 1);
    const sent *l = &s->log[0][mark];
    assert_true(l->t >= asked + 20 && l->t <= asked + 120);
    size_t sec = 0;
    assert_true(has_record(l, 1, INST, PL_DNS_SRV, NULL, &sec));
    assert_int_equal(sec, 3);
    assert_true(has_record(l, 1, INST, PL_DNS_TXT, NULL, NULL));
    assert_true(has_record(l, 1, "alpha.local", PL_DNS_A, NULL, NULL));

    /* ANY for the instance: SRV and TXT, at once (unique records), once a second has passed since
     * they were multicast as additionals (RFC 6762 6). */
    sim_run(s, s->now + 1000);
    mark = s->n_log[0];
    asked = s->now;
    query_with_known(s, 0, INST, PL_DNS_ANY, NULL, 0);
    sim_run(s, s->now + 10);
    assert_int_equal(s->n_log[0] - mark, 1);
    l = &s->log[0][mark];
    assert_int_equal(l->t, asked);
    assert_true(has_record(l, 1, INST, PL_DNS_SRV, NULL, &sec));
    assert_int_equal(sec, 1);
    assert_true(has_record(l, 1, INST, PL_DNS_TXT, NULL, NULL));

    /* A/AAAA of the host (a second after it went out as an additional), and nothing for a name we do
     * not own. */
    sim_run(s, s->now + 1000);
    mark = s->n_log[0];
    query_with_known(s, 0, "alpha.local", PL_DNS_A, NULL, 0);
    query_with_known(s, 0, "other.local", PL_DNS_A, NULL, 0);
    sim_run(s, s->now + 200);
    assert_int_equal(s->n_log[0] - mark, 1);
    assert_true(has_record(&s->log[0][mark], 1, "alpha.local", PL_DNS_A, NULL, NULL));
    sim_free(s);
}

static void test_goodbye_on_withdraw_and_shutdown(void **state)
{
    const char *labels[] = {"alpha"};
    sim *s = sim_new(1, labels);
    uint32_t id, id2;
    assert_int_equal(pl_mdns_publish(s->e[0], "Box", "_peerlink._tcp", "local", 4242, TXT1, 4, 0, &id), PL_OK);
    assert_int_equal(pl_mdns_publish(s->e[0], "Other", "_peerlink._tcp", "local", 4243, NULL, 0, 0, &id2), PL_OK);
    sim_run(s, 4000);
    size_t mark = s->n_log[0];
    pl_mdns_unpublish(s->e[0], id, s->now);
    sim_flush(s);
    assert_int_equal(s->n_log[0] - mark, 1);
    uint32_t ttl = 99;
    const sent *l = &s->log[0][mark];
    assert_true(has_record(l, 1, "_peerlink._tcp.local", PL_DNS_PTR, &ttl, NULL));
    assert_int_equal(ttl, 0);
    assert_true(has_record(l, 1, INST, PL_DNS_SRV, &ttl, NULL));
    assert_int_equal(ttl, 0);
    assert_true(has_record(l, 1, INST, PL_DNS_TXT, &ttl, NULL));
    assert_int_equal(ttl, 0);
    /* "Other" still has the type: its _services PTR stays. */
    assert_false(has_record(l, 1, "_services._dns-sd._udp.local", PL_DNS_PTR, NULL, NULL));
    assert_null(pl_mdns_publication_name(s->e[0], id));

    mark = s->n_log[0];
    pl_mdns_shutdown(s->e[0], s->now);
    sim_flush(s);
    assert_true(s->n_log[0] - mark >= 2);
    int other = 0, host = 0;
    for (size_t k = mark; k < s->n_log[0]; k++) {
        ttl = 99;
        if (has_record(&s->log[0][k], 1, "Other._peerlink._tcp.local", PL_DNS_SRV, &ttl, NULL))
            other = ttl == 0;
        if (has_record(&s->log[0][k], 1, "alpha.local", PL_DNS_A, &ttl, NULL))
            host = ttl == 0;
    }
    assert_true(other);
    assert_true(host);
    sim_free(s);
}

static void test_browse_backoff(void **state)
{
    const char *labels[] = {"alpha"};
    sim *s = sim_new(1, labels);
    s->deliver = 0;
    uint32_t id;
    assert_int_equal(pl_mdns_browse(s->e[0], "_peerlink._tcp", "local", 0, &id), PL_OK);
    sim_run(s, 6 * 3600 * 1000LL);
    int64_t t[64] = {0};
    int n = 0;
    for (size_t k = 0; k < s->n_log[0] && n < 64; k++)
        if (has_question(&s->log[0][k], "_peerlink._tcp.local", PL_DNS_PTR))
            t[n++] = s->log[0][k].t;
    assert_true(n >= 14);
    assert_true(t[0] >= 20 && t[0] <= 120);
    int64_t want = 1000;
    for (int i = 1; i < n; i++) {
        assert_int_equal(t[i] - t[i - 1], want);
        want = want * 2 > 3600000 ? 3600000 : want * 2;
    }
    assert_int_equal(t[n - 1] - t[n - 2], 3600000);
    sim_free(s);
}

/* A response with the records of instance "Far" on engine e, with ttl. */
static void feed_far_to(pl_mdns *m, uint32_t ttl, int64_t now);

static void feed_far(sim *s, int e, uint32_t ttl)
{
    feed_far_to(s->e[e], ttl, s->now);
    sim_flush(s);
}

static void feed_far_to(pl_mdns *m, uint32_t ttl, int64_t now)
{
    uint8_t buf[512];
    pl_dns_writer w;
    pl_dns_writer_init(&w, buf, sizeof buf, 0, PL_DNS_FLAG_RESPONSE);
    pl_dns_record r;
    memset(&r, 0, sizeof r);
    r.rrclass = PL_DNS_CLASS_IN;
    r.ttl = ttl;
    pl_dns_name_from_text(&r.name, "_peerlink._tcp.local");
    r.type = PL_DNS_PTR;
    pl_dns_name_from_text(&r.u.ptr, "Far._peerlink._tcp.local");
    assert_int_equal(pl_dns_write_record(&w, 1, &r), PL_OK);
    pl_dns_name_from_text(&r.name, "Far._peerlink._tcp.local");
    r.type = PL_DNS_SRV;
    r.cache_flush = 1;
    r.u.srv.port = 7000;
    pl_dns_name_from_text(&r.u.srv.target, "far.local");
    assert_int_equal(pl_dns_write_record(&w, 1, &r), PL_OK);
    r.type = PL_DNS_TXT;
    r.rdata = TXT1;
    r.rdlen = 4;
    assert_int_equal(pl_dns_write_record(&w, 1, &r), PL_OK);
    pl_dns_name_from_text(&r.name, "far.local");
    r.type = PL_DNS_A;
    uint8_t a[4] = {192, 0, 2, 77};
    memcpy(r.u.a, a, 4);
    r.rdata = NULL;
    r.rdlen = 0;
    assert_int_equal(pl_dns_write_record(&w, 1, &r), PL_OK);
    size_t len = pl_dns_writer_finish(&w);
    pl_mdns_addr src = {AF_INET, {192, 0, 2, 77}};
    pl_mdns_input(m, 1, AF_INET, buf, len, &src, 5353, now);
}

static void test_cache_expiry_and_goodbye(void **state)
{
    const char *labels[] = {"alpha"};
    sim *s = sim_new(1, labels);
    s->deliver = 0;
    uint32_t id;
    assert_int_equal(pl_mdns_browse(s->e[0], "_peerlink._tcp", "local", 0, &id), PL_OK);
    sim_run(s, 500);
    feed_far(s, 0, 10);
    const evrec *r = find_event(s, 0, PL_MDNS_EV_RESOLVED, "Far", 0);
    assert_non_null(r);
    assert_int_equal(r->ev.port, 7000);
    assert_string_equal(r->ev.host, "far.local");
    assert_int_equal(r->ev.addr.addr[3], 77);
    assert_int_equal(r->ev.txt_len, 4);
    assert_memory_equal(r->ev.txt, TXT1, 4);
    int64_t fed = s->now;
    /* Refresh queries at 80, 85, 90 and 95 % of the TTL (10 s), each the
     * same 0-2 % of it later (RFC 6762 5.2), then expiry at 100 %. */
    size_t mark = s->n_log[0];
    sim_run(s, fed + 9990);
    assert_null(find_event(s, 0, PL_MDNS_EV_LOST, "Far", 0));
    int refreshes = 0;
    int64_t jitter = -1;
    for (size_t k = mark; k < s->n_log[0]; k++) {
        if (!has_question(&s->log[0][k], "Far._peerlink._tcp.local", PL_DNS_SRV))
            continue;
        int64_t late = s->log[0][k].t - (fed + 8000 + 500 * refreshes);
        assert_true(late >= 0 && late <= 200);
        if (jitter < 0)
            jitter = late;
        assert_int_equal(late, jitter);
        refreshes++;
    }
    assert_int_equal(refreshes, 4);
    /* Drawn per record: the TXT record's refreshes keep their own offset. */
    int64_t txt_jitter = -1;
    for (size_t k = mark; k < s->n_log[0] && txt_jitter < 0; k++)
        if (has_question(&s->log[0][k], "Far._peerlink._tcp.local", PL_DNS_TXT))
            txt_jitter = s->log[0][k].t - (fed + 8000);
    assert_true(txt_jitter >= 0 && txt_jitter <= 200);
    assert_true(txt_jitter != jitter);
    sim_run(s, fed + 10001);
    const evrec *lost = find_event(s, 0, PL_MDNS_EV_LOST, "Far", 0);
    assert_non_null(lost);
    assert_int_equal(lost->t, fed + 10000);

    /* A goodbye (TTL 0) removes it one second later. */
    feed_far(s, 0, 4500);
    size_t from = s->n_ev[0];
    assert_non_null(find_event(s, 0, PL_MDNS_EV_SEEN, "Far", 0));
    sim_run(s, s->now + 100);
    int64_t bye = s->now;
    feed_far(s, 0, 0);
    sim_run(s, bye + 999);
    assert_null(find_event(s, 0, PL_MDNS_EV_LOST, "Far", from));
    sim_run(s, bye + 1001);
    lost = find_event(s, 0, PL_MDNS_EV_LOST, "Far", from);
    assert_non_null(lost);
    assert_int_equal(lost->t, bye + 1000);
    sim_free(s);
}

static void test_two_engines_discover_update_withdraw(void **state)
{
    const char *labels[] = {"alpha", "beta"};
    sim *s = sim_new(2, labels);
    uint32_t pub, br;
    assert_int_equal(pl_mdns_browse(s->e[1], "_peerlink._tcp", "local", 0, &br), PL_OK);
    assert_int_equal(pl_mdns_publish(s->e[0], "Box", "_peerlink._tcp", "local", 4242, TXT1, 4, 0, &pub), PL_OK);
    sim_run(s, 5000);
    assert_non_null(find_event(s, 1, PL_MDNS_EV_SEEN, "Box", 0));
    const evrec *r = find_event(s, 1, PL_MDNS_EV_RESOLVED, "Box", 0);
    assert_non_null(r);
    assert_int_equal(r->ev.id, br);
    assert_int_equal(r->ev.ifindex, 1);
    assert_int_equal(r->ev.family, AF_INET);
    assert_int_equal(r->ev.port, 4242);
    assert_string_equal(r->ev.host, "alpha.local");
    assert_int_equal(r->ev.has_addr, 1);
    assert_memory_equal(r->ev.addr.addr, s->addr[0].addr, 4);
    assert_memory_equal(r->ev.txt, TXT1, 4);

    /* A TXT update is announced and seen. */
    size_t from = s->n_ev[1];
    assert_int_equal(pl_mdns_update_txt(s->e[0], pub, TXT2, 9, s->now), PL_OK);
    sim_run(s, s->now + 3000);
    r = find_event(s, 1, PL_MDNS_EV_RESOLVED, "Box", from);
    assert_non_null(r);
    assert_int_equal(r->ev.txt_len, 9);
    assert_memory_equal(r->ev.txt, TXT2, 9);
    assert_null(find_event(s, 1, PL_MDNS_EV_LOST, "Box", from));

    /* A browser started later finds it at once, the cache of the first one is kept quiet. */
    uint32_t br2;
    from = s->n_ev[0];
    assert_int_equal(pl_mdns_browse(s->e[0], "_peerlink._tcp", "local", s->now, &br2), PL_OK);
    sim_run(s, s->now + 1000);
    r = find_event(s, 0, PL_MDNS_EV_RESOLVED, "Box", from);
    assert_non_null(r); /* it sees its own publication, as Avahi shows local services */

    /* Withdrawal: goodbye, gone one second later. */
    from = s->n_ev[1];
    int64_t t0 = s->now;
    pl_mdns_unpublish(s->e[0], pub, s->now);
    sim_run(s, s->now + 2000);
    const evrec *lost = find_event(s, 1, PL_MDNS_EV_LOST, "Box", from);
    assert_non_null(lost);
    assert_true(lost->t - t0 <= 1100);
    sim_free(s);
}

static void test_alternative_names(void **state)
{
    char out[64];
    pl_mdns_alternative_service_name("Kitchen", out);
    assert_string_equal(out, "Kitchen #2");
    pl_mdns_alternative_service_name("Kitchen #2", out);
    assert_string_equal(out, "Kitchen #3");
    pl_mdns_alternative_service_name("Kitchen #9", out);
    assert_string_equal(out, "Kitchen #10");
    pl_mdns_alternative_service_name("#2", out);
    assert_string_equal(out, "#2 #2");
    char longname[64];
    memset(longname, 'x', 63);
    longname[63] = 0;
    pl_mdns_alternative_service_name(longname, out);
    assert_int_equal(strlen(out), 63);
    assert_string_equal(out + 60, " #2");
    /* Never cut a UTF-8 sequence: 31 two-byte characters + "x". */
    char utf[64] = "";
    for (int i = 0; i < 31; i++)
        strcat(utf, "\xc3\xa9");
    strcat(utf, "x");
    pl_mdns_alternative_service_name(utf, out);
    assert_true(strlen(out) <= 63);
    assert_string_equal(out + strlen(out) - 3, " #2");
    assert_int_equal((strlen(out) - 3) % 2, 0);
    pl_mdns_alternative_host_name("box", out);
    assert_string_equal(out, "box-2");
    pl_mdns_alternative_host_name("box-2", out);
    assert_string_equal(out, "box-3");
}

static void test_bad_input_is_ignored(void **state)
{
    const char *labels[] = {"alpha"};
    sim *s = sim_new(1, labels);
    uint32_t id;
    assert_int_equal(pl_mdns_browse(s->e[0], "_peerlink._tcp", "local", 0, &id), PL_OK);
    assert_int_equal(pl_mdns_browse(s->e[0], "_peerlink._tcp", "example.com", 0, &id), PL_ERR_UNSUPPORTED);
    assert_int_equal(pl_mdns_publish(s->e[0], "", "_peerlink._tcp", "local", 1, NULL, 0, 0, &id), PL_ERR_INVALID);
    uint8_t junk[64];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (uint8_t)(i * 37 + 11);
    pl_mdns_addr src = {AF_INET, {192, 0, 2, 5}};
    for (size_t n = 0; n <= sizeof junk; n++)
        pl_mdns_input(s->e[0], 1, AF_INET, junk, n, &src, 5353, 0);
    pl_mdns_input(s->e[0], 99, AF_INET, junk, sizeof junk, &src, 5353, 0); /* unknown link */
    sim_run(s, 100);
    sim_free(s);
}

/* A host with two interfaces on one network (here: the two ends of a veth
 * pair in one namespace) hears every packet it sends on one on the other,
 * with the other interface's addresses. Those are its own, not a conflict:
 * it must establish its host name and service, unrenamed. */
static void test_own_packets_on_a_second_link_are_not_conflicts(void **state)
{
    (void)state;
    pl_mdns *m;
    assert_int_equal(pl_mdns_new("twolinks", 7, &m), PL_OK);
    pl_mdns_addr a0 = {AF_INET, {192, 0, 2, 1}};
    pl_mdns_addr a1 = {AF_INET6, {0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2}};
    assert_int_equal(pl_mdns_link_set(m, 1, AF_INET, &a0, 1, 0), PL_OK);
    assert_int_equal(pl_mdns_link_set(m, 2, AF_INET6, &a1, 1, 0), PL_OK);
    uint32_t id;
    assert_int_equal(pl_mdns_publish(m, "Box", "_peerlink._tcp", "local", 4242, NULL, 0, 0, &id), PL_OK);
    int established = 0, renamed = 0;
    static pl_mdns_packet p;
    for (int64_t now = 0; now <= 10000; now += 10) {
        pl_mdns_process(m, now);
        while (pl_mdns_next_packet(m, now, &p)) {
            /* What goes out of link 1 comes back in on link 2, and the other way. */
            uint32_t other = p.ifindex == 1 ? 2 : 1;
            const pl_mdns_addr *src = p.ifindex == 1 ? &a0 : &a1;
            pl_mdns_input(m, other, other == 1 ? AF_INET : AF_INET6, p.data, p.len, src, 5353, now);
        }
        pl_mdns_event ev;
        while (pl_mdns_next_event(m, &ev)) {
            established += ev.type == PL_MDNS_EV_ESTABLISHED;
            renamed += ev.type == PL_MDNS_EV_RENAMED;
        }
    }
    assert_int_equal(renamed, 0);
    assert_int_equal(established, 1);
    assert_string_equal(pl_mdns_publication_name(m, id), "Box");
    assert_string_equal(pl_mdns_host_name(m), "twolinks.local");
    pl_mdns_free(m);
}

/* Probes (queries for name, ANY) engine e sent from log index from on. */
static size_t probes_since(sim *s, int e, size_t from, const char *name)
{
    size_t n = 0;
    for (size_t k = from; k < s->n_log[e]; k++)
        n += has_question(&s->log[e][k], name, PL_DNS_ANY);
    return n;
}

/* Does packet l answer (a response, answer section) name with A addr? */
static int has_a_answer(const sent *l, const char *name, const uint8_t addr[4])
{
    pl_dns_message *m = NULL;
    if (pl_dns_parse(l->data, l->len, &m) != PL_OK)
        return 0;
    pl_dns_name n;
    pl_dns_name_from_text(&n, name);
    int found = 0;
    if (m->flags & 0x8000)
        for (size_t i = 0; i < m->n_answers; i++)
            found |= m->records[i].type == PL_DNS_A && pl_dns_name_equal(&m->records[i].name, &n) &&
                     memcmp(m->records[i].u.a, addr, 4) == 0;
    pl_dns_free(m);
    return found;
}

/* A response from 192.0.2.99 with name A addr (cache-flush, TTL ttl) on engine e. */
static void feed_a(sim *s, int e, const char *name, const uint8_t addr[4], uint32_t ttl)
{
    uint8_t buf[512];
    pl_dns_writer w;
    pl_dns_writer_init(&w, buf, sizeof buf, 0, PL_DNS_FLAG_RESPONSE);
    pl_dns_record r;
    memset(&r, 0, sizeof r);
    r.rrclass = PL_DNS_CLASS_IN;
    r.ttl = ttl;
    r.cache_flush = 1;
    pl_dns_name_from_text(&r.name, name);
    r.type = PL_DNS_A;
    memcpy(r.u.a, addr, 4);
    assert_int_equal(pl_dns_write_record(&w, 1, &r), PL_OK);
    size_t len = pl_dns_writer_finish(&w);
    pl_mdns_addr src = {AF_INET, {192, 0, 2, 99}};
    pl_mdns_input(s->e[e], 1, AF_INET, buf, len, &src, 5353, s->now);
    sim_flush(s);
}

/* Someone at 192.0.2.99 claims name. */
static void feed_foreign_a(sim *s, int e, const char *name)
{
    static const uint8_t theirs[4] = {192, 0, 2, 99};
    feed_a(s, e, name, theirs, PL_MDNS_TTL_HOST);
}

/* The host name is probed once: a publication after it is established
 * probes the instance only. */
static void test_second_publication_does_not_reprobe_host(void **state)
{
    (void)state;
    const char *labels[] = {"alpha"};
    sim *s = sim_new(1, labels);
    uint32_t a, b;
    assert_int_equal(pl_mdns_publish(s->e[0], "Box", "_peerlink._tcp", "local", 1, TXT1, 4, 0, &a), PL_OK);
    sim_run(s, 5000);
    assert_non_null(find_event(s, 0, PL_MDNS_EV_ESTABLISHED, "Box", 0));
    assert_int_equal(probes_since(s, 0, 0, "alpha.local"), 3);
    size_t from = s->n_log[0];
    size_t ev_from = s->n_ev[0];
    int64_t t0 = s->now;
    assert_int_equal(pl_mdns_publish(s->e[0], "Other", "_peerlink._tcp", "local", 2, TXT1, 4, t0, &b), PL_OK);
    sim_run(s, t0 + 5000);
    assert_int_equal(probes_since(s, 0, from, "alpha.local"), 0);
    assert_int_equal(probes_since(s, 0, from, "Other._peerlink._tcp.local"), 3);
    const evrec *est = find_event(s, 0, PL_MDNS_EV_ESTABLISHED, "Other", ev_from);
    assert_non_null(est);
    /* 3 probes 250 ms apart after at most 250 ms, announced 250 ms after the last. */
    assert_true(est->t <= t0 + 250 + 2 * 250 + 250);
    assert_string_equal(pl_mdns_host_name(s->e[0]), "alpha.local");
    sim_free(s);
}

/* RFC 6762 9: a conflicting A record for the established host name sends
 * it back to probing (same name); a conflict while probing renames it. */
static void test_conflict_after_host_established(void **state)
{
    (void)state;
    const char *labels[] = {"alpha"};
    sim *s = sim_new(1, labels);
    sim_run(s, 5000);
    assert_int_equal(probes_since(s, 0, 0, "alpha.local"), 3);
    assert_true(responses_since(s, 0, 0, "alpha.local", PL_DNS_A) >= 2);
    size_t from = s->n_log[0];
    /* Someone else claims alpha.local: probe it again, under the same name. */
    feed_foreign_a(s, 0, "alpha.local");
    sim_run(s, 5000 + 260); /* the first probe after 0-250 ms */
    assert_true(probes_since(s, 0, from, "alpha.local") >= 1);
    assert_string_equal(pl_mdns_host_name(s->e[0]), "alpha.local");
    /* Left alone, the probe wins and the name is announced again. */
    sim_run(s, 10000);
    assert_int_equal(probes_since(s, 0, from, "alpha.local"), 3);
    assert_true(responses_since(s, 0, from, "alpha.local", PL_DNS_A) >= 2);
    assert_string_equal(pl_mdns_host_name(s->e[0]), "alpha.local");
    /* Claimed again, and defended while we probe: renamed. */
    from = s->n_log[0];
    feed_foreign_a(s, 0, "alpha.local");
    sim_run(s, 10000 + 260); /* still probing: 3 probes take at least 500 ms */
    assert_true(probes_since(s, 0, from, "alpha.local") >= 1);
    feed_foreign_a(s, 0, "alpha.local");
    assert_string_equal(pl_mdns_host_name(s->e[0]), "alpha-2.local");
    sim_run(s, 15000);
    assert_int_equal(probes_since(s, 0, from, "alpha-2.local"), 3);
    assert_true(responses_since(s, 0, from, "alpha-2.local", PL_DNS_A) >= 2);
    sim_free(s);
}

/* Re-declaring a link once the host name is established announces the
 * new addresses (twice, 1 s apart, the first at once) without probing. */
static void test_link_set_after_established_reannounces(void **state)
{
    (void)state;
    const char *labels[] = {"alpha"};
    sim *s = sim_new(1, labels);
    sim_run(s, 5000);
    assert_int_equal(probes_since(s, 0, 0, "alpha.local"), 3);
    size_t from = s->n_log[0];
    pl_mdns_addr na = {AF_INET, {192, 0, 2, 50}};
    assert_int_equal(pl_mdns_link_set(s->e[0], 1, AF_INET, &na, 1, s->now), PL_OK);
    sim_run(s, 10000);
    assert_int_equal(probes_since(s, 0, from, "alpha.local"), 0);
    int64_t ann[8];
    int n = 0;
    for (size_t k = from; k < s->n_log[0]; k++)
        if (has_a_answer(&s->log[0][k], "alpha.local", na.addr) && n < 8)
            ann[n++] = s->log[0][k].t;
    assert_int_equal(n, 2);
    assert_int_equal(ann[0], 5000);
    assert_int_equal(ann[1] - ann[0], 1000);
    sim_free(s);
}

/* After a host rename, nothing naming the new host name (the SRV records
 * pointing at it, its A records) goes out before its probes are done;
 * the services are announced again once it is live. */
static void test_no_announcement_before_renamed_host_is_probed(void **state)
{
    (void)state;
    const char *labels[] = {"alpha"};
    sim *s = sim_new(1, labels);
    uint32_t id;
    assert_int_equal(pl_mdns_publish(s->e[0], "Box", "_peerlink._tcp", "local", 1, TXT1, 4, 0, &id), PL_OK);
    sim_run(s, 5000);
    assert_non_null(find_event(s, 0, PL_MDNS_EV_ESTABLISHED, "Box", 0));
    /* Claimed: probe again; claimed while probing: renamed to alpha-2. */
    feed_foreign_a(s, 0, "alpha.local");
    sim_run(s, 5000 + 260);
    feed_foreign_a(s, 0, "alpha.local");
    assert_string_equal(pl_mdns_host_name(s->e[0]), "alpha-2.local");
    size_t from = s->n_log[0];
    sim_run(s, 12000);
    size_t last_probe = 0, probes = 0, first_srv = 0, first_a = 0;
    for (size_t k = from; k < s->n_log[0]; k++) {
        const sent *l = &s->log[0][k];
        if (has_question(l, "alpha-2.local", PL_DNS_ANY)) {
            probes++;
            last_probe = k;
        }
        if (!first_srv && has_record(l, 1, INST, PL_DNS_SRV, NULL, NULL))
            first_srv = k;
        if (!first_a && has_record(l, 1, "alpha-2.local", PL_DNS_A, NULL, NULL))
            first_a = k;
    }
    assert_int_equal(probes, 3);
    assert_true(first_srv > last_probe); /* announced again, after the probes only */
    assert_true(first_a > last_probe);
    assert_true(s->log[0][first_srv].t >= s->log[0][last_probe].t + 250);
    sim_free(s);
}

/* A TXT record of n bytes: strings of "k=" and filler, byte fill. */
static void big_txt(uint8_t *out, size_t n, uint8_t fill)
{
    size_t i = 0;
    while (i < n) {
        size_t len = n - i - 1 > 255 ? 255 : n - i - 1;
        out[i++] = (uint8_t)len;
        for (size_t k = 0; k < len; k++)
            out[i++] = k < 2 ? (uint8_t)"k="[k] : fill;
    }
}

/* A query for name TXT listing a TXT record (rdata, len) as a known answer, from port 5353. */
static void query_txt_with_known(sim *s, int e, const char *name, const uint8_t *rdata, size_t len)
{
    static uint8_t buf[PL_MDNS_PACKET_SIZE];
    pl_dns_writer w;
    pl_dns_writer_init(&w, buf, sizeof buf, 0, 0);
    pl_dns_question q;
    memset(&q, 0, sizeof q);
    pl_dns_name_from_text(&q.name, name);
    q.type = PL_DNS_TXT;
    q.qclass = PL_DNS_CLASS_IN;
    assert_int_equal(pl_dns_write_question(&w, &q), PL_OK);
    pl_dns_record r;
    memset(&r, 0, sizeof r);
    r.name = q.name;
    r.type = PL_DNS_TXT;
    r.rrclass = PL_DNS_CLASS_IN;
    r.ttl = PL_MDNS_TTL_OTHER;
    r.rdata = rdata;
    r.rdlen = (uint16_t)len;
    assert_int_equal(pl_dns_write_record(&w, 1, &r), PL_OK);
    size_t n = pl_dns_writer_finish(&w);
    pl_mdns_addr src = {AF_INET, {192, 0, 2, 99}};
    pl_mdns_input(s->e[e], 1, AF_INET, buf, n, &src, 5353, s->now);
}

/* Known-answer suppression compares large TXT records in full: another
 * 300-byte TXT listed as known does not suppress ours. */
static void test_large_txt_known_answer_compared_in_full(void **state)
{
    (void)state;
    const char *labels[] = {"alpha"};
    sim *s = sim_new(1, labels);
    uint8_t ours[300], other[300];
    big_txt(ours, sizeof ours, 'a');
    big_txt(other, sizeof other, 'b');
    uint32_t id;
    assert_int_equal(pl_mdns_publish(s->e[0], "Box", "_peerlink._tcp", "local", 1, ours, sizeof ours, 0, &id),
                     PL_OK);
    sim_run(s, 5000);
    assert_non_null(find_event(s, 0, PL_MDNS_EV_ESTABLISHED, "Box", 0));
    s->deliver = 0;
    size_t mark = s->n_log[0];
    query_txt_with_known(s, 0, INST, other, sizeof other);
    sim_run(s, s->now + 200);
    assert_int_equal(responses_since(s, 0, mark, INST, PL_DNS_TXT), 1);
    /* Our own record as the known answer: suppressed. */
    mark = s->n_log[0];
    query_txt_with_known(s, 0, INST, ours, sizeof ours);
    sim_run(s, s->now + 200);
    assert_int_equal(responses_since(s, 0, mark, INST, PL_DNS_TXT), 0);
    sim_free(s);
}

/* TXT records are bounded by PL_MDNS_MAX_TXT; at the bound, with the
 * longest names, the TXT goes out in every probe and announcement. */
static void test_txt_size_bound(void **state)
{
    (void)state;
    char host[64], name[64], type[64];
    memset(host, 'h', 63);
    host[63] = 0;
    memset(name, 'n', 63);
    name[63] = 0;
    memset(type, 't', 63);
    type[0] = '_';
    memcpy(type + 58, "._tcp", 6);
    const char *labels[] = {host};
    sim *s = sim_new(1, labels);
    static uint8_t txt[PL_MDNS_MAX_TXT + 1];
    big_txt(txt, sizeof txt, 'x');
    uint32_t id;
    assert_int_equal(pl_mdns_publish(s->e[0], name, type, "local", 1, txt, PL_MDNS_MAX_TXT + 1, 0, &id),
                     PL_ERR_TOO_LARGE);
    assert_int_equal(pl_mdns_publish(s->e[0], name, type, "local", 1, NULL, 3, 0, &id), PL_ERR_INVALID);
    big_txt(txt, PL_MDNS_MAX_TXT, 'x');
    assert_int_equal(pl_mdns_publish(s->e[0], name, type, "local", 1, txt, PL_MDNS_MAX_TXT, 0, &id), PL_OK);
    assert_int_equal(pl_mdns_update_txt(s->e[0], id, NULL, 3, 0), PL_ERR_INVALID);
    assert_int_equal(pl_mdns_update_txt(s->e[0], id, txt, PL_MDNS_MAX_TXT + 1, 0), PL_ERR_TOO_LARGE);
    sim_run(s, 5000);
    assert_non_null(find_event(s, 0, PL_MDNS_EV_ESTABLISHED, name, 0));
    char inst[200];
    snprintf(inst, sizeof inst, "%s.%s.local", name, type);
    size_t probes = 0, probes_txt = 0, ann = 0, ann_txt = 0;
    for (size_t k = 0; k < s->n_log[0]; k++) {
        const sent *l = &s->log[0][k];
        if (has_question(l, inst, PL_DNS_ANY)) {
            probes++;
            probes_txt += has_record(l, 0, inst, PL_DNS_TXT, NULL, NULL);
        }
        if (has_record(l, 1, inst, PL_DNS_SRV, NULL, NULL)) {
            ann++;
            ann_txt += has_record(l, 1, inst, PL_DNS_TXT, NULL, NULL);
        }
    }
    assert_int_equal(probes, 3);
    assert_int_equal(probes_txt, 3);
    assert_true(ann >= 2);
    /* The TXT may travel in its own packet of the announcement. */
    size_t txt_sent = 0;
    for (size_t k = 0; k < s->n_log[0]; k++)
        txt_sent += has_record(&s->log[0][k], 1, inst, PL_DNS_TXT, NULL, NULL);
    assert_true(txt_sent >= 2);
    (void)ann_txt;
    sim_free(s);
}

/* Count and take engine m's events. */
static void take_events(pl_mdns *m, size_t counts[8])
{
    pl_mdns_event ev;
    while (pl_mdns_next_event(m, &ev))
        counts[ev.type]++;
}

/* Feed PTRs type -> "i<k>.type" for k in [0, n) with ttl, many per packet, from 192.0.2.host. */
static void feed_ptrs(pl_mdns *m, const char *type, int n, uint32_t ttl, int64_t now, uint8_t host)
{
    static uint8_t buf[PL_MDNS_PACKET_SIZE];
    pl_mdns_addr src = {AF_INET, {192, 0, 2, host}};
    for (int k = 0; k < n;) {
        pl_dns_writer w;
        pl_dns_writer_init(&w, buf, sizeof buf, 0, PL_DNS_FLAG_RESPONSE);
        for (int j = 0; j < 32 && k < n; j++, k++) {
            pl_dns_record r;
            memset(&r, 0, sizeof r);
            r.type = PL_DNS_PTR;
            r.rrclass = PL_DNS_CLASS_IN;
            r.ttl = ttl;
            pl_dns_name_from_text(&r.name, type);
            char t[128];
            snprintf(t, sizeof t, "i%d.%s", k, type);
            pl_dns_name_from_text(&r.u.ptr, t);
            assert_int_equal(pl_dns_write_record(&w, 1, &r), PL_OK);
        }
        size_t len = pl_dns_writer_finish(&w);
        pl_mdns_input(m, 1, AF_INET, buf, len, &src, 5353, now);
    }
}

/* Events that find the queue full are not lost: the state is kept as it
 * was, the deadline is due, and the next process() queues them. */
static void test_full_event_queue_loses_nothing(void **state)
{
    (void)state;
    pl_mdns *m;
    assert_int_equal(pl_mdns_new("alpha", 3, &m), PL_OK);
    pl_mdns_addr a = {AF_INET, {192, 0, 2, 1}};
    assert_int_equal(pl_mdns_link_set(m, 1, AF_INET, &a, 1, 0), PL_OK);
    static const char *const types[] = {"_a._tcp.local", "_b._tcp.local", "_c._tcp.local", "_d._tcp.local"};
    uint32_t bid;
    for (int t = 0; t < 4; t++) {
        char ty[8];
        snprintf(ty, sizeof ty, "_%c._tcp", 'a' + t);
        assert_int_equal(pl_mdns_browse(m, ty, "local", 0, &bid), PL_OK);
    }
    static pl_mdns_packet p;
    size_t counts[8] = {0};
    /* 1024 SEEN fill the queue (PL_MDNS_MAX_EVENTS == PL_MDNS_MAX_CACHE == 1024), from four
     * hosts (one may hold a quarter of the cache). */
    for (int t = 0; t < 4; t++)
        feed_ptrs(m, types[t], 256, 4500, 0, (uint8_t)(100 + t));
    uint32_t id;
    assert_int_equal(pl_mdns_publish(m, "Box", "_peerlink._tcp", "local", 1, NULL, 0, 0, &id), PL_OK);
    int64_t now = 0;
    for (; now <= 3000; now += 10) {
        pl_mdns_process(m, now);
        while (pl_mdns_next_packet(m, now, &p))
            ;
    }
    /* The ESTABLISHED did not fit: it is due again. */
    assert_true(pl_mdns_next_deadline(m) >= 0 && pl_mdns_next_deadline(m) <= now);
    take_events(m, counts);
    assert_int_equal(counts[PL_MDNS_EV_SEEN], 1024);
    assert_int_equal(counts[PL_MDNS_EV_ESTABLISHED], 0);
    pl_mdns_process(m, now);
    take_events(m, counts);
    assert_int_equal(counts[PL_MDNS_EV_ESTABLISHED], 1);

    /* One event waiting, then 1024 LOST: one does not fit, and comes next. */
    uint32_t id2;
    assert_int_equal(pl_mdns_publish(m, "Box2", "_peerlink._tcp", "local", 1, NULL, 0, now, &id2), PL_OK);
    int64_t until = now + 3000;
    for (; now <= until; now += 10) {
        pl_mdns_process(m, now);
        while (pl_mdns_next_packet(m, now, &p))
            ;
    }
    for (int t = 0; t < 4; t++)
        feed_ptrs(m, types[t], 256, 0, now, (uint8_t)(100 + t));
    now += 1001;
    pl_mdns_process(m, now);
    take_events(m, counts);
    assert_int_equal(counts[PL_MDNS_EV_ESTABLISHED], 2);
    assert_int_equal(counts[PL_MDNS_EV_LOST], 1023);
    assert_true(pl_mdns_next_deadline(m) >= 0 && pl_mdns_next_deadline(m) <= now);
    pl_mdns_process(m, now);
    take_events(m, counts);
    assert_int_equal(counts[PL_MDNS_EV_LOST], 1024);

    /* One event waiting, then 1024 SEEN: one does not fit, and comes next. */
    uint32_t id3;
    assert_int_equal(pl_mdns_publish(m, "Box3", "_peerlink._tcp", "local", 1, NULL, 0, now, &id3), PL_OK);
    until = now + 3000;
    for (; now <= until; now += 10) {
        pl_mdns_process(m, now);
        while (pl_mdns_next_packet(m, now, &p))
            ;
    }
    for (int t = 0; t < 4; t++)
        feed_ptrs(m, types[t], 256, 4500, now, (uint8_t)(100 + t));
    take_events(m, counts);
    assert_int_equal(counts[PL_MDNS_EV_ESTABLISHED], 3);
    assert_int_equal(counts[PL_MDNS_EV_SEEN], 1024 + 1023);
    assert_true(pl_mdns_next_deadline(m) >= 0 && pl_mdns_next_deadline(m) <= now);
    pl_mdns_process(m, now);
    take_events(m, counts);
    assert_int_equal(counts[PL_MDNS_EV_SEEN], 1024 + 1024);
    assert_int_equal(counts[PL_MDNS_EV_LOST], 1024);
    pl_mdns_free(m);
}

/* Two engines on one simulated link, packets delivered at once. */
static void tie_pump(pl_mdns *a, pl_mdns *b, int64_t now)
{
    static pl_mdns_packet p;
    pl_mdns_addr sa = {AF_INET, {192, 0, 2, 1}}, sb = {AF_INET, {192, 0, 2, 2}};
    pl_mdns_process(a, now);
    pl_mdns_process(b, now);
    while (pl_mdns_next_packet(a, now, &p)) {
        pl_mdns_input(a, 1, AF_INET, p.data, p.len, &sa, 5353, now);
        pl_mdns_input(b, 1, AF_INET, p.data, p.len, &sa, 5353, now);
    }
    while (pl_mdns_next_packet(b, now, &p)) {
        pl_mdns_input(a, 1, AF_INET, p.data, p.len, &sb, 5353, now);
        pl_mdns_input(b, 1, AF_INET, p.data, p.len, &sb, 5353, now);
    }
}

static int tie_resolved(pl_mdns *b, const char *want)
{
    pl_mdns_event ev;
    int hit = 0;
    while (pl_mdns_next_event(b, &ev) > 0)
        if (ev.type == PL_MDNS_EV_RESOLVED && ev.txt_len == strlen(want) + 1 &&
            memcmp(ev.txt + 1, want, strlen(want)) == 0)
            hit = 1;
    return hit;
}

/* A TXT update that reaches a cache in the same millisecond as the value it
 * replaces is reported at once (the last record received wins the tie),
 * not only with the second announcement a second later. */
static void test_txt_update_in_the_same_millisecond(void **state)
{
    (void)state;
    pl_mdns *a, *b;
    assert_int_equal(pl_mdns_new("hosta", 1, &a), PL_OK);
    assert_int_equal(pl_mdns_new("hostb", 2, &b), PL_OK);
    pl_mdns_addr aa = {AF_INET, {192, 0, 2, 1}}, ab = {AF_INET, {192, 0, 2, 2}};
    assert_int_equal(pl_mdns_link_set(a, 1, AF_INET, &aa, 1, 0), PL_OK);
    assert_int_equal(pl_mdns_link_set(b, 1, AF_INET, &ab, 1, 0), PL_OK);
    uint32_t bid, pid;
    assert_int_equal(pl_mdns_browse(b, "_x._tcp", NULL, 0, &bid), PL_OK);
    int64_t t = 0;
    for (; t < 5000; t++) {
        tie_pump(a, b, t);
        tie_resolved(b, "-");
    }
    assert_int_equal(pl_mdns_publish(a, "inst", "_x._tcp", NULL, 1, (const uint8_t *)"\4k=a0", 5, t, &pid), PL_OK);
    int64_t end = t + 5000;
    for (; t < end && !tie_resolved(b, "k=a0"); t++)
        tie_pump(a, b, t);
    assert_true(t < end);
    t--; /* the millisecond in which k=a0 arrived */
    /* Same millisecond: the update goes out and arrives now. */
    assert_int_equal(pl_mdns_update_txt(a, pid, (const uint8_t *)"\4k=b0", 5, t), PL_OK);
    int64_t t1 = t;
    for (; t < t1 + 5000 && !tie_resolved(b, "k=b0"); t++)
        tie_pump(a, b, t);
    assert_true(t - t1 < 100);
    pl_mdns_free(a);
    pl_mdns_free(b);
}

/* Another responder on this host that shares our host name sends goodbyes
 * (TTL 0) for it when it stops: we announce our host records again. */
static void test_goodbye_for_our_host_name_is_countered(void **state)
{
    (void)state;
    const char *labels[] = {"alpha"};
    sim *s = sim_new(1, labels);
    sim_run(s, 5000);
    size_t from = s->n_log[0];
    feed_a(s, 0, "alpha.local", s->addr[0].addr, 0); /* a goodbye for our own address */
    sim_run(s, 7000);
    int announced = 0;
    for (size_t k = from; k < s->n_log[0]; k++)
        announced += has_a_answer(&s->log[0][k], "alpha.local", s->addr[0].addr);
    assert_true(announced >= 1);
    assert_int_equal(probes_since(s, 0, from, "alpha.local"), 0);
    assert_string_equal(pl_mdns_host_name(s->e[0]), "alpha.local");
    sim_free(s);
}

/* ---------------------------------------------------------------- all for now */

/* The time of engine e's first PTR query for name at or after from, or -1. */
static int64_t first_query(sim *s, int e, const char *name, int64_t from)
{
    for (size_t k = 0; k < s->n_log[e]; k++)
        if (s->log[e][k].t >= from && has_question(&s->log[e][k], name, PL_DNS_PTR))
            return s->log[e][k].t;
    return -1;
}

/* How many events of type engine e has had from index from, and the index of the first (or -1). */
static size_t count_events(sim *s, int e, pl_mdns_event_type type, size_t from, long *first)
{
    size_t n = 0;
    *first = -1;
    for (size_t k = from; k < s->n_ev[e]; k++) {
        if (s->ev[e][k].ev.type != type)
            continue;
        if (!n)
            *first = (long)k;
        n++;
    }
    return n;
}

/* Only the PTR of instance "Far" (no SRV, TXT or address): seen, not resolved. */
static void feed_far_ptr(sim *s, int e)
{
    uint8_t buf[256];
    pl_dns_writer w;
    pl_dns_writer_init(&w, buf, sizeof buf, 0, PL_DNS_FLAG_RESPONSE);
    pl_dns_record r;
    memset(&r, 0, sizeof r);
    r.rrclass = PL_DNS_CLASS_IN;
    r.ttl = 4500;
    r.type = PL_DNS_PTR;
    pl_dns_name_from_text(&r.name, "_peerlink._tcp.local");
    pl_dns_name_from_text(&r.u.ptr, "Far._peerlink._tcp.local");
    assert_int_equal(pl_dns_write_record(&w, 1, &r), PL_OK);
    size_t len = pl_dns_writer_finish(&w);
    pl_mdns_addr src = {AF_INET, {192, 0, 2, 77}};
    pl_mdns_input(s->e[e], 1, AF_INET, buf, len, &src, 5353, s->now);
    sim_flush(s);
}

/* An instance published before the browse starts: it is resolved from the
 * answer to the first query, and ALL_FOR_NOW follows once, exactly
 * ALL_FOR_NOW_WINDOW (1 s) after that query. */
static void test_all_for_now_after_the_answer_window(void **state)
{
    (void)state;
    const char *labels[] = {"alpha", "beta"};
    sim *s = sim_new(2, labels);
    uint32_t pub, br;
    assert_int_equal(pl_mdns_publish(s->e[0], "Box", "_peerlink._tcp", "local", 4242, TXT1, 4, 0, &pub), PL_OK);
    sim_run(s, 5000);
    int64_t t0 = s->now;
    assert_int_equal(pl_mdns_browse(s->e[1], "_peerlink._tcp", "local", t0, &br), PL_OK);
    sim_run(s, t0 + 60000);
    int64_t q = first_query(s, 1, "_peerlink._tcp.local", t0);
    assert_true(q >= t0 + 20 && q <= t0 + 120);
    long afn, res;
    assert_int_equal(count_events(s, 1, PL_MDNS_EV_ALL_FOR_NOW, 0, &afn), 1); /* once, in a minute of browsing */
    assert_int_equal(s->ev[1][afn].ev.id, br);
    assert_int_equal(s->ev[1][afn].t, q + 1000);
    assert_true(count_events(s, 1, PL_MDNS_EV_RESOLVED, 0, &res) >= 1);
    assert_string_equal(s->ev[1][res].ev.name, "Box");
    assert_true(res < afn);
    assert_true(s->ev[1][res].t < q + 1000);
    sim_free(s);
}

/* Nothing answers: ALL_FOR_NOW one second after the first query all the same. */
static void test_all_for_now_with_no_answer(void **state)
{
    (void)state;
    const char *labels[] = {"alpha"};
    sim *s = sim_new(1, labels);
    s->deliver = 0;
    uint32_t br;
    assert_int_equal(pl_mdns_browse(s->e[0], "_none._tcp", "local", 0, &br), PL_OK);
    sim_run(s, 999); /* the first query is at 20-120 ms: no ALL_FOR_NOW before 1020 */
    long afn;
    assert_int_equal(count_events(s, 0, PL_MDNS_EV_ALL_FOR_NOW, 0, &afn), 0);
    sim_run(s, 10000);
    int64_t q = first_query(s, 0, "_none._tcp.local", 0);
    assert_int_equal(count_events(s, 0, PL_MDNS_EV_ALL_FOR_NOW, 0, &afn), 1);
    assert_int_equal(s->ev[0][afn].t, q + 1000);
    sim_free(s);
}

/* An instance seen in the window but not resolved by its end: ALL_FOR_NOW
 * waits for it, and comes right after its RESOLVED. */
static void test_all_for_now_waits_for_a_resolve(void **state)
{
    (void)state;
    const char *labels[] = {"alpha"};
    sim *s = sim_new(1, labels);
    s->deliver = 0;
    uint32_t br;
    assert_int_equal(pl_mdns_browse(s->e[0], "_peerlink._tcp", "local", 0, &br), PL_OK);
    sim_run(s, 500);
    feed_far_ptr(s, 0);
    assert_non_null(find_event(s, 0, PL_MDNS_EV_SEEN, "Far", 0));
    int64_t q = first_query(s, 0, "_peerlink._tcp.local", 0);
    sim_run(s, q + 1600); /* the window is over, the resolve is not */
    long afn, res;
    assert_int_equal(count_events(s, 0, PL_MDNS_EV_ALL_FOR_NOW, 0, &afn), 0);
    feed_far(s, 0, 4500);
    int64_t fed = s->now;
    assert_int_equal(count_events(s, 0, PL_MDNS_EV_RESOLVED, 0, &res), 1);
    assert_int_equal(count_events(s, 0, PL_MDNS_EV_ALL_FOR_NOW, 0, &afn), 1);
    assert_true(res < afn);
    assert_int_equal(s->ev[0][afn].t, fed);
    sim_free(s);
}

/* ... but not for more than ALL_FOR_NOW_RESOLVE (1 s) after the window. */
static void test_all_for_now_waits_at_most_a_second(void **state)
{
    (void)state;
    const char *labels[] = {"alpha"};
    sim *s = sim_new(1, labels);
    s->deliver = 0;
    uint32_t br;
    assert_int_equal(pl_mdns_browse(s->e[0], "_peerlink._tcp", "local", 0, &br), PL_OK);
    sim_run(s, 500);
    feed_far_ptr(s, 0);
    sim_run(s, 30000);
    int64_t q = first_query(s, 0, "_peerlink._tcp.local", 0);
    long afn, res;
    assert_int_equal(count_events(s, 0, PL_MDNS_EV_RESOLVED, 0, &res), 0);
    assert_int_equal(count_events(s, 0, PL_MDNS_EV_ALL_FOR_NOW, 0, &afn), 1);
    assert_int_equal(s->ev[0][afn].t, q + 2000);
    sim_free(s);
}

/* Browsing "_services._dns-sd._udp" lists the types published (RFC 6763 9),
 * once each, with nothing to resolve; a type withdrawn is lost. */
static void test_browse_service_types(void **state)
{
    (void)state;
    const char *labels[] = {"alpha", "beta"};
    sim *s = sim_new(2, labels);
    uint32_t p1, p2, p3, br;
    assert_int_equal(pl_mdns_publish(s->e[0], "Box", "_peerlink._tcp", "local", 4242, TXT1, 4, 0, &p1), PL_OK);
    assert_int_equal(pl_mdns_publish(s->e[0], "Box 2", "_peerlink._tcp", "local", 4243, TXT1, 4, 0, &p2), PL_OK);
    assert_int_equal(pl_mdns_publish(s->e[0], "Web", "_http._tcp", "local", 80, NULL, 0, 0, &p3), PL_OK);
    sim_run(s, 5000);
    int64_t t0 = s->now;
    assert_int_equal(pl_mdns_browse(s->e[1], "_services._dns-sd._udp", "local", t0, &br), PL_OK);
    sim_run(s, t0 + 3000);
    const char *types[] = {"_peerlink._tcp", "_http._tcp"};
    long afn;
    assert_int_equal(count_events(s, 1, PL_MDNS_EV_ALL_FOR_NOW, 0, &afn), 1);
    assert_int_equal(count_events(s, 1, PL_MDNS_EV_RESOLVED, 0, &(long){0}), 2);
    for (int i = 0; i < 2; i++) {
        const evrec *r = find_event(s, 1, PL_MDNS_EV_RESOLVED, types[i], 0);
        assert_non_null(r);
        assert_int_equal(r->ev.id, br);
        assert_int_equal(r->ev.port, 0);
        assert_string_equal(r->ev.host, "");
        assert_int_equal(r->ev.txt_len, 0);
        assert_int_equal(r->ev.has_addr, 0);
        assert_true(r - s->ev[1] < afn);
        assert_non_null(find_event(s, 1, PL_MDNS_EV_SEEN, types[i], 0));
    }
    assert_null(find_event(s, 1, PL_MDNS_EV_SEEN, "Box", 0)); /* types, not instances */
    /* The last instance of a type withdrawn: the type goes. */
    size_t from = s->n_ev[1];
    pl_mdns_unpublish(s->e[0], p3, s->now);
    pl_mdns_unpublish(s->e[0], p2, s->now);
    sim_run(s, s->now + 3000);
    assert_non_null(find_event(s, 1, PL_MDNS_EV_LOST, "_http._tcp", from));
    assert_null(find_event(s, 1, PL_MDNS_EV_LOST, "_peerlink._tcp", from));
    assert_null(find_event(s, 1, PL_MDNS_EV_RESOLVED, NULL, from));
    sim_free(s);
}

/* ---------------------------------------------------------------- floods (issue 13) */

/* PTRs type -> "f<tag>-<k>.type", n of them in one response of up to 9,000 bytes, from src. */
static void feed_flood(pl_mdns *m, const char *type, uint32_t tag, int n, uint32_t ttl,
                       const pl_mdns_addr *src, int64_t now)
{
    static uint8_t buf[PL_DNS_MAX_MESSAGE];
    pl_dns_writer w;
    pl_dns_writer_init(&w, buf, sizeof buf, 0, PL_DNS_FLAG_RESPONSE);
    pl_dns_record r;
    memset(&r, 0, sizeof r);
    r.type = PL_DNS_PTR;
    r.rrclass = PL_DNS_CLASS_IN;
    r.ttl = ttl;
    pl_dns_name_from_text(&r.name, type);
    for (int k = 0; k < n; k++) {
        char label[32];
        snprintf(label, sizeof label, "f%u-%d", (unsigned)tag, k);
        assert_int_equal(pl_dns_name_from_labels(&r.u.ptr, label, type), PL_OK);
        assert_int_equal(pl_dns_write_record(&w, 1, &r), PL_OK);
    }
    size_t len = pl_dns_writer_finish(&w);
    pl_mdns_input(m, 1, AF_INET, buf, len, src, 5353, now);
}

/* A flood of long-TTL records, from one source and then from ever new
 * ones (more than the cache holds), evicts nothing of a responder that
 * keeps refreshing its records (short TTLs: today's "earliest expiry
 * first" eviction took those first). */
/* Run what is due at now, drop the packets; count LOST of "Far" and RESOLVED of browse id. */
static void flood_pump(pl_mdns *m, int64_t now, uint32_t id, size_t *lost_far, size_t *resolved)
{
    static pl_mdns_packet p;
    int64_t d = pl_mdns_next_deadline(m);
    if (d >= 0 && d <= now)
        pl_mdns_process(m, now);
    while (pl_mdns_next_packet(m, now, &p))
        ;
    pl_mdns_event ev;
    while (pl_mdns_next_event(m, &ev)) {
        *lost_far += ev.type == PL_MDNS_EV_LOST && strcmp(ev.name, "Far") == 0;
        *resolved += ev.type == PL_MDNS_EV_RESOLVED && ev.id == id && strcmp(ev.name, "Far") == 0;
    }
}

static void test_flood_keeps_a_refreshing_responder(void **state)
{
    (void)state;
    pl_mdns *m;
    assert_int_equal(pl_mdns_new("alpha", 3, &m), PL_OK);
    pl_mdns_addr a = {AF_INET, {192, 0, 2, 1}};
    assert_int_equal(pl_mdns_link_set(m, 1, AF_INET, &a, 1, 0), PL_OK);
    uint32_t id, flood;
    assert_int_equal(pl_mdns_browse(m, "_peerlink._tcp", "local", 0, &id), PL_OK);
    assert_int_equal(pl_mdns_browse(m, "_flood._tcp", "local", 0, &flood), PL_OK);
    size_t lost = 0, resolved = 0;
    feed_far_to(m, 120, 0);
    flood_pump(m, 0, id, &lost, &resolved);
    feed_far_to(m, 120, 1000); /* announced twice (RFC 6762 8.3) */
    flood_pump(m, 1000, id, &lost, &resolved);
    assert_int_equal(resolved, 1);
    pl_mdns_addr one = {AF_INET, {192, 0, 2, 66}};
    int64_t now = 1000;
    for (uint32_t p = 0; p < 40; p++) {
        now += 50;
        feed_flood(m, "_flood._tcp.local", p, 64, 4500, &one, now);
        pl_mdns_addr other = {AF_INET, {10, 0, (uint8_t)(p >> 8), (uint8_t)p}};
        feed_flood(m, "_flood._tcp.local", 1000 + p, 64, 4500, &other, now);
        if (p % 20 == 19)
            feed_far_to(m, 120, now); /* refreshed every second */
        flood_pump(m, now, id, &lost, &resolved);
    }
    assert_int_equal(lost, 0);
    /* All four records are still cached: a new browse resolves Far at once. */
    uint32_t again;
    assert_int_equal(pl_mdns_browse(m, "_peerlink._tcp", "local", now, &again), PL_OK);
    resolved = 0;
    pl_mdns_process(m, now);
    flood_pump(m, now, again, &lost, &resolved);
    assert_int_equal(resolved, 1);
    pl_mdns_free(m);
}

static size_t count_seen(pl_mdns *m, uint32_t id)
{
    size_t n = 0;
    pl_mdns_event ev;
    while (pl_mdns_next_event(m, &ev))
        n += ev.id == id && ev.type == PL_MDNS_EV_SEEN;
    return n;
}

/* One response adds at most 64 new records (CACHE_NEW_PER_PACKET,
 * engine_int.h), one source at most 256 entries (CACHE_PER_SOURCE). */
static void test_flood_caps_per_packet_and_source(void **state)
{
    (void)state;
    pl_mdns *m;
    assert_int_equal(pl_mdns_new("alpha", 3, &m), PL_OK);
    pl_mdns_addr a = {AF_INET, {192, 0, 2, 1}};
    assert_int_equal(pl_mdns_link_set(m, 1, AF_INET, &a, 1, 0), PL_OK);
    uint32_t id;
    assert_int_equal(pl_mdns_browse(m, "_flood._tcp", "local", 0, &id), PL_OK);
    pl_mdns_process(m, 0);
    pl_mdns_addr src = {AF_INET, {192, 0, 2, 66}};
    feed_flood(m, "_flood._tcp.local", 0, 200, 4500, &src, 0);
    assert_int_equal(count_seen(m, id), 64);
    /* The same again: the 64 are refreshed, 64 more are new. */
    feed_flood(m, "_flood._tcp.local", 0, 200, 4500, &src, 1);
    assert_int_equal(count_seen(m, id), 64);
    for (uint32_t p = 1; p < 8; p++)
        feed_flood(m, "_flood._tcp.local", p, 64, 4500, &src, 2);
    assert_int_equal(count_seen(m, id), 256 - 128);
    /* Another source still gets in. */
    pl_mdns_addr other = {AF_INET, {192, 0, 2, 67}};
    feed_flood(m, "_flood._tcp.local", 100, 8, 4500, &other, 3);
    assert_int_equal(count_seen(m, id), 0); /* PL_MDNS_MAX_INSTANCES (256) reached: cached, not reported */
    uint32_t id2;
    assert_int_equal(pl_mdns_browse(m, "_flood._tcp", "local", 3, &id2), PL_OK);
    pl_mdns_process(m, 3);
    assert_int_equal(count_seen(m, id2), 256);
    pl_mdns_free(m);
}

/* RFC 6762 6: a record is multicast at most once a second on a link,
 * except in defence against a probe. */
static void test_answers_at_most_once_a_second(void **state)
{
    const char *labels[] = {"alpha"};
    sim *s = sim_new(1, labels);
    uint32_t id;
    assert_int_equal(pl_mdns_publish(s->e[0], "Box", "_peerlink._tcp", "local", 4242, TXT1, 4, 0, &id), PL_OK);
    sim_run(s, 4000);
    s->deliver = 0;
    size_t mark = s->n_log[0];
    query_with_known(s, 0, "_peerlink._tcp.local", PL_DNS_PTR, NULL, 0);
    sim_run(s, s->now + 300);
    query_with_known(s, 0, "_peerlink._tcp.local", PL_DNS_PTR, NULL, 0);
    sim_run(s, s->now + 300);
    assert_int_equal(responses_since(s, 0, mark, "_peerlink._tcp.local", PL_DNS_PTR), 1);
    /* A probe for our name is answered at once all the same. */
    mark = s->n_log[0];
    uint8_t buf[512];
    pl_dns_writer w;
    pl_dns_writer_init(&w, buf, sizeof buf, 0, 0);
    pl_dns_question q;
    memset(&q, 0, sizeof q);
    pl_dns_name_from_text(&q.name, INST);
    q.type = PL_DNS_ANY;
    q.qclass = PL_DNS_CLASS_IN;
    assert_int_equal(pl_dns_write_question(&w, &q), PL_OK);
    pl_dns_record r;
    memset(&r, 0, sizeof r);
    r.name = q.name;
    r.type = PL_DNS_SRV;
    r.rrclass = PL_DNS_CLASS_IN;
    r.ttl = 120;
    r.u.srv.port = 1;
    pl_dns_name_from_text(&r.u.srv.target, "other.local");
    assert_int_equal(pl_dns_write_record(&w, 2, &r), PL_OK);
    size_t len = pl_dns_writer_finish(&w);
    pl_mdns_addr src = {AF_INET, {192, 0, 2, 99}};
    pl_mdns_input(s->e[0], 1, AF_INET, buf, len, &src, 5353, s->now);
    sim_run(s, s->now);
    assert_int_equal(responses_since(s, 0, mark, INST, PL_DNS_SRV), 1);
    /* A second after the answer, the PTR is answered again. */
    sim_run(s, s->now + 1000);
    mark = s->n_log[0];
    query_with_known(s, 0, "_peerlink._tcp.local", PL_DNS_PTR, NULL, 0);
    sim_run(s, s->now + 300);
    assert_int_equal(responses_since(s, 0, mark, "_peerlink._tcp.local", PL_DNS_PTR), 1);
    sim_free(s);
}

/* ---- duplicate question and answer suppression (RFC 6762 7.3, 7.4) */

#define PTYPE "_peerlink._tcp.local"
#define SERVICES "_services._dns-sd._udp.local"

/* Feed engine e a query from src with PTR questions for names[0..n), QU bit if qu, no known answer. */
static void ptr_query_from(sim *s, int e, const char *const *names, size_t n, const pl_mdns_addr *src, int qu)
{
    uint8_t buf[512];
    pl_dns_writer w;
    pl_dns_writer_init(&w, buf, sizeof buf, 0, 0);
    for (size_t i = 0; i < n; i++) {
        pl_dns_question q;
        memset(&q, 0, sizeof q);
        pl_dns_name_from_text(&q.name, names[i]);
        q.type = PL_DNS_PTR;
        q.qclass = PL_DNS_CLASS_IN;
        q.unicast_response = qu;
        assert_int_equal(pl_dns_write_question(&w, &q), PL_OK);
    }
    size_t len = pl_dns_writer_finish(&w);
    pl_mdns_input(s->e[e], 1, AF_INET, buf, len, src, 5353, s->now);
}

/* Feed engine e a response from another host with one PTR name -> target of ttl. */
static void ptr_response_from_other(sim *s, int e, const char *name, const char *target, uint32_t ttl)
{
    uint8_t buf[512];
    pl_dns_writer w;
    pl_dns_writer_init(&w, buf, sizeof buf, 0, PL_DNS_FLAG_RESPONSE);
    pl_dns_record r;
    memset(&r, 0, sizeof r);
    pl_dns_name_from_text(&r.name, name);
    r.type = PL_DNS_PTR;
    r.rrclass = PL_DNS_CLASS_IN;
    r.ttl = ttl;
    pl_dns_name_from_text(&r.u.ptr, target);
    assert_int_equal(pl_dns_write_record(&w, 1, &r), PL_OK);
    size_t len = pl_dns_writer_finish(&w);
    pl_mdns_addr src = {AF_INET, {192, 0, 2, 99}};
    pl_mdns_input(s->e[e], 1, AF_INET, buf, len, &src, 5353, s->now);
}

static size_t ptr_queries_since(sim *s, int e, size_t from, const char *name)
{
    size_t n = 0;
    for (size_t k = from; k < s->n_log[e]; k++)
        n += has_question(&s->log[e][k], name, PL_DNS_PTR);
    return n;
}

/* RFC 6762 7.3: another host's query with our browse's question and no
 * known answer we would not send stands for our next query; one listing a
 * record we lack, a QU one, or our own looped back does not. Each case is
 * fed before the next query is due (they are 1, 2, 4, 8, 16 s apart). */
static void test_duplicate_question_suppression(void **state)
{
    const char *labels[] = {"alpha"};
    sim *s = sim_new(1, labels);
    s->deliver = 0;
    const char *type[] = {PTYPE};
    pl_mdns_addr other = {AF_INET, {192, 0, 2, 99}};
    uint32_t id;
    assert_int_equal(pl_mdns_browse(s->e[0], "_peerlink._tcp", "local", 0, &id), PL_OK);
    ptr_query_from(s, 0, type, 1, &other, 0);
    sim_run(s, 500);
    assert_int_equal(ptr_queries_since(s, 0, 0, PTYPE), 0);
    sim_run(s, 1500); /* the next one is sent */
    assert_int_equal(ptr_queries_since(s, 0, 0, PTYPE), 1);
    /* It lists an instance we do not know: ours goes, so that we hear that one. */
    query_with_known(s, 0, PTYPE, PL_DNS_PTR, "Far._peerlink._tcp.local", 4500);
    sim_run(s, 3500);
    assert_int_equal(ptr_queries_since(s, 0, 0, PTYPE), 2);
    /* Once we know it, the same query stands for ours. */
    feed_far(s, 0, 4500);
    query_with_known(s, 0, PTYPE, PL_DNS_PTR, "Far._peerlink._tcp.local", 4500);
    sim_run(s, 7500);
    assert_int_equal(ptr_queries_since(s, 0, 0, PTYPE), 2);
    /* Our own query (our address) and a QU one (answered by unicast) do not. */
    ptr_query_from(s, 0, type, 1, &s->addr[0], 0);
    sim_run(s, 15500);
    assert_int_equal(ptr_queries_since(s, 0, 0, PTYPE), 3);
    ptr_query_from(s, 0, type, 1, &other, 1);
    sim_run(s, 31500);
    assert_int_equal(ptr_queries_since(s, 0, 0, PTYPE), 4);
    sim_free(s);
}

/* Two browsers of one type on a link: the one whose query comes first asks
 * for both, the other sends none, and both find the instance. */
static void test_duplicate_question_two_browsers(void **state)
{
    const char *labels[] = {"alpha", "beta", "gamma"};
    sim *s = sim_new(3, labels);
    uint32_t id, b0, b1;
    assert_int_equal(pl_mdns_publish(s->e[2], "Box", "_peerlink._tcp", "local", 4242, TXT1, 4, 0, &id), PL_OK);
    sim_run(s, 4000);
    size_t m0 = s->n_log[0], m1 = s->n_log[1];
    assert_int_equal(pl_mdns_browse(s->e[0], "_peerlink._tcp", "local", s->now, &b0), PL_OK);
    assert_int_equal(pl_mdns_browse(s->e[1], "_peerlink._tcp", "local", s->now, &b1), PL_OK);
    sim_run(s, s->now + 20000);
    size_t q0 = ptr_queries_since(s, 0, m0, PTYPE), q1 = ptr_queries_since(s, 1, m1, PTYPE);
    assert_true(q0 + q1 >= 4);
    assert_true(q0 == 0 || q1 == 0);
    assert_non_null(find_event(s, 0, PL_MDNS_EV_RESOLVED, "Box", 0));
    assert_non_null(find_event(s, 1, PL_MDNS_EV_RESOLVED, "Box", 0));
    sim_free(s);
}

/* RFC 6762 7.4: a record of a delayed answer that another host multicasts
 * first, with at least our TTL, is taken out of our answer. */
static void test_duplicate_answer_suppression(void **state)
{
    const char *labels[] = {"alpha"};
    sim *s = sim_new(1, labels);
    uint32_t id;
    assert_int_equal(pl_mdns_publish(s->e[0], "Box", "_peerlink._tcp", "local", 4242, TXT1, 4, 0, &id), PL_OK);
    sim_run(s, 4000);
    s->deliver = 0;
    pl_mdns_addr other = {AF_INET, {192, 0, 2, 99}};
    const char *both[] = {PTYPE, SERVICES};
    /* The whole answer (the PTR, its SRV, TXT and address) stays unsent. */
    size_t mark = s->n_log[0];
    ptr_query_from(s, 0, both, 1, &other, 0);
    ptr_response_from_other(s, 0, PTYPE, INST, 4500);
    sim_run(s, s->now + 500);
    assert_int_equal(s->n_log[0] - mark, 0);
    /* A copy with less than our TTL does not count. */
    sim_run(s, s->now + 1000);
    mark = s->n_log[0];
    ptr_query_from(s, 0, both, 1, &other, 0);
    ptr_response_from_other(s, 0, PTYPE, INST, 4000);
    sim_run(s, s->now + 500);
    assert_int_equal(responses_since(s, 0, mark, PTYPE, PL_DNS_PTR), 1);
    /* Two answers, one sent by the other: the rest still goes. */
    sim_run(s, s->now + 1000);
    mark = s->n_log[0];
    ptr_query_from(s, 0, both, 2, &other, 0);
    ptr_response_from_other(s, 0, SERVICES, PTYPE, 4500);
    sim_run(s, s->now + 500);
    assert_int_equal(s->n_log[0] - mark, 1);
    const sent *l = &s->log[0][mark];
    assert_true(has_record(l, 1, PTYPE, PL_DNS_PTR, NULL, NULL));
    assert_false(has_record(l, 1, SERVICES, PL_DNS_PTR, NULL, NULL));
    assert_true(has_record(l, 1, INST, PL_DNS_SRV, NULL, NULL));
    sim_free(s);
}

/* Two responders share the _services PTR of their type: asked for it, the
 * later one hears the other's answer first and sends none. */
static void test_duplicate_answer_two_responders(void **state)
{
    const char *labels[] = {"alpha", "beta"};
    sim *s = sim_new(2, labels);
    uint32_t a, b;
    assert_int_equal(pl_mdns_publish(s->e[0], "Box", "_peerlink._tcp", "local", 4242, TXT1, 4, 0, &a), PL_OK);
    assert_int_equal(pl_mdns_publish(s->e[1], "Cox", "_peerlink._tcp", "local", 4243, TXT1, 4, 0, &b), PL_OK);
    sim_run(s, 5000);
    size_t m0 = s->n_log[0], m1 = s->n_log[1];
    const char *services[] = {SERVICES};
    pl_mdns_addr other = {AF_INET, {192, 0, 2, 99}};
    ptr_query_from(s, 0, services, 1, &other, 0);
    ptr_query_from(s, 1, services, 1, &other, 0);
    sim_run(s, s->now + 500);
    size_t n0 = responses_since(s, 0, m0, SERVICES, PL_DNS_PTR);
    size_t n1 = responses_since(s, 1, m1, SERVICES, PL_DNS_PTR);
    assert_int_equal(n0 + n1, 1);
    sim_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_probe_and_announce_timing),
        cmocka_unit_test(test_conflict_renames),
        cmocka_unit_test(test_simultaneous_probes_end_distinct),
        cmocka_unit_test(test_host_conflict_renames_host),
        cmocka_unit_test(test_answers_and_known_answer_suppression),
        cmocka_unit_test(test_goodbye_on_withdraw_and_shutdown),
        cmocka_unit_test(test_browse_backoff),
        cmocka_unit_test(test_cache_expiry_and_goodbye),
        cmocka_unit_test(test_two_engines_discover_update_withdraw),
        cmocka_unit_test(test_alternative_names),
        cmocka_unit_test(test_bad_input_is_ignored),
        cmocka_unit_test(test_own_packets_on_a_second_link_are_not_conflicts),
        cmocka_unit_test(test_txt_update_in_the_same_millisecond),
        cmocka_unit_test(test_goodbye_for_our_host_name_is_countered),
        cmocka_unit_test(test_second_publication_does_not_reprobe_host),
        cmocka_unit_test(test_conflict_after_host_established),
        cmocka_unit_test(test_link_set_after_established_reannounces),
        cmocka_unit_test(test_no_announcement_before_renamed_host_is_probed),
        cmocka_unit_test(test_large_txt_known_answer_compared_in_full),
        cmocka_unit_test(test_txt_size_bound),
        cmocka_unit_test(test_full_event_queue_loses_nothing),
        cmocka_unit_test(test_all_for_now_after_the_answer_window),
        cmocka_unit_test(test_all_for_now_with_no_answer),
        cmocka_unit_test(test_all_for_now_waits_for_a_resolve),
        cmocka_unit_test(test_all_for_now_waits_at_most_a_second),
        cmocka_unit_test(test_browse_service_types),
        cmocka_unit_test(test_flood_keeps_a_refreshing_responder),
        cmocka_unit_test(test_flood_caps_per_packet_and_source),
        cmocka_unit_test(test_answers_at_most_once_a_second),
        cmocka_unit_test(test_duplicate_question_suppression),
        cmocka_unit_test(test_duplicate_question_two_browsers),
        cmocka_unit_test(test_duplicate_answer_suppression),
        cmocka_unit_test(test_duplicate_answer_two_responders),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
