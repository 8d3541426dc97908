/* SPDX-License-Identifier: ISC */
/* Unit tests for the mDNS message codec (lib/mdns/dns.c). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <peerlink/common.h>

#include "mdns/dns.h"

/* ------------------------------------------------------------ helpers */

static pl_dns_name mkname(const char *text) {
    pl_dns_name n;
    assert_int_equal(pl_dns_name_from_text(&n, text), PL_OK);
    return n;
}

static void assert_name_text(const pl_dns_name *n, const char *text) {
    char buf[1100];
    assert_int_equal(pl_dns_name_to_text(n, buf, sizeof(buf)), PL_OK);
    assert_string_equal(buf, text);
}

/* Hex string (whitespace ignored) into a malloc'd buffer. */
static uint8_t *from_hex(const char *hex, size_t *len) {
    uint8_t *out = malloc(strlen(hex) / 2 + 1);
    assert_non_null(out);
    size_t n = 0;
    int hi = -1;
    for (const char *p = hex; *p; p++) {
        int v;
        if (*p >= '0' && *p <= '9')
            v = *p - '0';
        else if (*p >= 'a' && *p <= 'f')
            v = *p - 'a' + 10;
        else if (*p >= 'A' && *p <= 'F')
            v = *p - 'A' + 10;
        else
            continue;
        if (hi < 0) {
            hi = v;
        } else {
            out[n++] = (uint8_t)(hi << 4 | v);
            hi = -1;
        }
    }
    assert_true(hi < 0);
    *len = n;
    return out;
}

/* A 12-byte header with the given counts. */
static size_t header(uint8_t *p, uint16_t qd, uint16_t an, uint16_t ns, uint16_t ar) {
    memset(p, 0, 12);
    p[4] = (uint8_t)(qd >> 8); p[5] = (uint8_t)qd;
    p[6] = (uint8_t)(an >> 8); p[7] = (uint8_t)an;
    p[8] = (uint8_t)(ns >> 8); p[9] = (uint8_t)ns;
    p[10] = (uint8_t)(ar >> 8); p[11] = (uint8_t)ar;
    return 12;
}

static size_t append(uint8_t *p, size_t at, const void *bytes, size_t n) {
    memcpy(p + at, bytes, n);
    return at + n;
}

/* Parse expecting failure; *out must stay untouched. */
static void expect_parse_error(const uint8_t *pkt, size_t len, int err) {
    pl_dns_message *sentinel = (pl_dns_message *)(uintptr_t)0x1234;
    pl_dns_message *m = sentinel;
    assert_int_equal(pl_dns_parse(pkt, len, &m), err);
    assert_ptr_equal(m, sentinel);
}

static pl_dns_record mkrecord(const char *owner, uint16_t type, uint32_t ttl, int flush) {
    pl_dns_record r;
    memset(&r, 0, sizeof(r));
    r.name = mkname(owner);
    r.type = type;
    r.rrclass = PL_DNS_CLASS_IN;
    r.cache_flush = flush;
    r.ttl = ttl;
    return r;
}

/* ------------------------------------------------------------ round trips */

static void test_roundtrip_questions(void **state) {
    (void)state;
    uint8_t buf[512];
    pl_dns_writer w;
    pl_dns_writer_init(&w, buf, sizeof(buf), 0x1234, 0);
    pl_dns_question q1 = {mkname("_peerlink._tcp.local"), PL_DNS_PTR, PL_DNS_CLASS_IN, 0};
    pl_dns_question q2 = {mkname("My Box._peerlink._tcp.local"), PL_DNS_ANY, PL_DNS_CLASS_IN, 1};
    pl_dns_question q3 = {mkname("."), PL_DNS_AAAA, 3, 0};
    assert_int_equal(pl_dns_write_question(&w, &q1), PL_OK);
    assert_int_equal(pl_dns_write_question(&w, &q2), PL_OK);
    assert_int_equal(pl_dns_write_question(&w, &q3), PL_OK);
    size_t n = pl_dns_writer_finish(&w);
    /* 12 + (22 + 4) + (7 + 2 + 4) + (1 + 4) */
    assert_int_equal(n, 12 + 26 + 13 + 5);

    pl_dns_message *m = NULL;
    assert_int_equal(pl_dns_parse(buf, n, &m), PL_OK);
    assert_int_equal(m->id, 0x1234);
    assert_int_equal(m->flags, 0);
    assert_int_equal(m->n_questions, 3);
    assert_int_equal(m->n_answers + m->n_authority + m->n_additional, 0);
    assert_true(pl_dns_name_equal(&m->questions[0].name, &q1.name));
    assert_int_equal(m->questions[0].type, PL_DNS_PTR);
    assert_int_equal(m->questions[0].qclass, PL_DNS_CLASS_IN);
    assert_false(m->questions[0].unicast_response);
    assert_true(pl_dns_name_equal(&m->questions[1].name, &q2.name));
    assert_int_equal(m->questions[1].type, PL_DNS_ANY);
    assert_int_equal(m->questions[1].qclass, PL_DNS_CLASS_IN);
    assert_true(m->questions[1].unicast_response);
    assert_int_equal(m->questions[2].name.len, 1);
    assert_int_equal(m->questions[2].type, PL_DNS_AAAA);
    assert_int_equal(m->questions[2].qclass, 3);
    /* The unicast bit is on the wire as the top bit of the class. */
    assert_int_equal(buf[12 + 26 + 7 + 2 + 2], 0x80);
    pl_dns_free(m);
}

static void test_roundtrip_records(void **state) {
    (void)state;
    static const uint8_t txt[] = "\x04v=01\x07id=abcd";
    static const uint8_t bitmap[] = {0x00, 0x05, 0x00, 0x00, 0x80, 0x00, 0x40}; /* TXT, SRV */
    static const uint8_t hinfo[] = {0x03, 'x', '8', '6', 0x05, 'L', 'i', 'n', 'u', 'x'};
    pl_dns_record rs[9];
    int sections[9] = {1, 1, 1, 2, 3, 3, 3, 3, 3};

    rs[0] = mkrecord("_peerlink._tcp.local", PL_DNS_PTR, 4500, 0);
    rs[0].u.ptr = mkname("My Box._peerlink._tcp.local");
    rs[1] = mkrecord("My Box._peerlink._tcp.local", PL_DNS_SRV, 120, 1);
    rs[1].u.srv.priority = 1;
    rs[1].u.srv.weight = 2;
    rs[1].u.srv.port = 4433;
    rs[1].u.srv.target = mkname("mybox.local");
    rs[2] = mkrecord("My Box._peerlink._tcp.local", PL_DNS_TXT, 4500, 1);
    rs[2].rdata = txt;
    rs[2].rdlen = sizeof(txt) - 1;
    rs[3] = mkrecord("mybox.local", PL_DNS_A, 120, 1); /* authority: a probe's proposed record */
    memcpy(rs[3].u.a, "\xc0\xa8\x01\x14", 4);
    rs[4] = mkrecord("mybox.local", PL_DNS_AAAA, 120, 1);
    memcpy(rs[4].u.aaaa, "\xfe\x80\0\0\0\0\0\0\0\0\0\0\0\0\0\x01", 16);
    rs[5] = mkrecord("mybox.local", PL_DNS_NSEC, 120, 1);
    rs[5].u.nsec.next = mkname("mybox.local");
    rs[5].rdata = bitmap;
    rs[5].rdlen = sizeof(bitmap);
    rs[6] = mkrecord("mybox.local", 13 /* HINFO: unknown, raw */, 0, 0);
    rs[6].rdata = hinfo;
    rs[6].rdlen = sizeof(hinfo);
    rs[7] = mkrecord("Empty._peerlink._tcp.local", PL_DNS_TXT, 4500, 0); /* empty TXT */
    rs[8] = mkrecord(".", 0xFFEE, 0xFFFFFFFFu, 0);
    rs[8].rrclass = 0x7FFF;

    uint8_t buf[1500];
    pl_dns_writer w;
    pl_dns_writer_init(&w, buf, sizeof(buf), 0, PL_DNS_FLAG_RESPONSE);
    for (size_t i = 0; i < 9; i++)
        assert_int_equal(pl_dns_write_record(&w, sections[i], &rs[i]), PL_OK);
    size_t n = pl_dns_writer_finish(&w);

    pl_dns_message *m = NULL;
    assert_int_equal(pl_dns_parse(buf, n, &m), PL_OK);
    assert_int_equal(m->flags, PL_DNS_FLAG_RESPONSE);
    assert_int_equal(m->n_questions, 0);
    assert_null(m->questions);
    assert_int_equal(m->n_answers, 3);
    assert_int_equal(m->n_authority, 1);
    assert_int_equal(m->n_additional, 5);
    for (size_t i = 0; i < 9; i++) {
        const pl_dns_record *a = &m->records[i], *e = &rs[i];
        assert_true(pl_dns_name_equal(&a->name, &e->name));
        assert_int_equal(a->type, e->type);
        assert_int_equal(a->rrclass, e->rrclass);
        assert_int_equal(a->cache_flush, e->cache_flush);
        assert_int_equal(a->ttl, e->ttl);
    }
    assert_true(pl_dns_name_equal(&m->records[0].u.ptr, &rs[0].u.ptr));
    assert_int_equal(m->records[1].u.srv.priority, 1);
    assert_int_equal(m->records[1].u.srv.weight, 2);
    assert_int_equal(m->records[1].u.srv.port, 4433);
    assert_true(pl_dns_name_equal(&m->records[1].u.srv.target, &rs[1].u.srv.target));
    assert_int_equal(m->records[2].rdlen, sizeof(txt) - 1);
    assert_memory_equal(m->records[2].rdata, txt, sizeof(txt) - 1);
    assert_memory_equal(m->records[3].u.a, rs[3].u.a, 4);
    assert_memory_equal(m->records[4].u.aaaa, rs[4].u.aaaa, 16);
    assert_true(pl_dns_name_equal(&m->records[5].u.nsec.next, &rs[5].u.nsec.next));
    assert_int_equal(m->records[5].rdlen, sizeof(bitmap));
    assert_memory_equal(m->records[5].rdata, bitmap, sizeof(bitmap));
    assert_int_equal(m->records[6].rdlen, sizeof(hinfo));
    assert_memory_equal(m->records[6].rdata, hinfo, sizeof(hinfo));
    /* An empty TXT goes out as one empty string (a single zero byte). */
    assert_int_equal(m->records[7].rdlen, 1);
    assert_int_equal(m->records[7].rdata[0], 0);
    assert_int_equal(m->records[8].rdlen, 0);
    assert_int_equal(m->records[8].name.len, 1);
    pl_dns_free(m);
}

/*
 * The writer's exact output for a typical service announcement, checked
 * by hand below. python-zeroconf 0.47.3 (an independent implementation)
 * produces the very same 148 bytes for these records (see
 * ZEROCONF_RESPONSE_HEX in test_parse_zeroconf_response).
 */
static const uint8_t announce_expected[] = {
    /* 0: header: id 0, flags 0x8400, qd 0, an 1, ns 0, ar 4 */
    0x00, 0x00, 0x84, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x04,
    /* 12: answer PTR owner _peerlink._tcp.local, written in full:
     * "_peerlink" at 12 (0x0c), "_tcp" at 22, "local" at 27 (0x1b) */
    0x09, '_', 'p', 'e', 'e', 'r', 'l', 'i', 'n', 'k',
    0x04, '_', 't', 'c', 'p',
    0x05, 'l', 'o', 'c', 'a', 'l', 0x00,
    /* 34: type PTR, class IN, ttl 4500, rdlength 9 */
    0x00, 0x0c, 0x00, 0x01, 0x00, 0x00, 0x11, 0x94, 0x00, 0x09,
    /* 44 (0x2c): "My Box" then pointer to 12 (_peerlink._tcp.local) */
    0x06, 'M', 'y', ' ', 'B', 'o', 'x', 0xc0, 0x0c,
    /* 53: SRV owner = whole name at 44 */
    0xc0, 0x2c,
    /* type SRV, class IN|flush, ttl 120, rdlength 14 */
    0x00, 0x21, 0x80, 0x01, 0x00, 0x00, 0x00, 0x78, 0x00, 0x0e,
    /* 65: priority 0, weight 0, port 4433 */
    0x00, 0x00, 0x00, 0x00, 0x11, 0x51,
    /* 71 (0x47): target "mybox" then pointer to 27 (local) */
    0x05, 'm', 'y', 'b', 'o', 'x', 0xc0, 0x1b,
    /* 79: TXT owner = name at 44; type TXT, IN|flush, ttl 4500, rdlength 13 */
    0xc0, 0x2c, 0x00, 0x10, 0x80, 0x01, 0x00, 0x00, 0x11, 0x94, 0x00, 0x0d,
    0x04, 'v', '=', '0', '1', 0x07, 'i', 'd', '=', 'a', 'b', 'c', 'd',
    /* 104: A owner = mybox.local at 71; IN|flush, ttl 120, rdlength 4 */
    0xc0, 0x47, 0x00, 0x01, 0x80, 0x01, 0x00, 0x00, 0x00, 0x78, 0x00, 0x04,
    192, 168, 1, 20,
    /* 120: AAAA owner = name at 71; IN|flush, ttl 120, rdlength 16 */
    0xc0, 0x47, 0x00, 0x1c, 0x80, 0x01, 0x00, 0x00, 0x00, 0x78, 0x00, 0x10,
    0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01,
};

#define ZEROCONF_RESPONSE_HEX                                                            \
    "000084000000000100000004095f706565726c696e6b045f746370056c6f63616c00000c000100"     \
    "0011940009064d7920426f78c00cc02c0021800100000078000e000000001151056d79626f78c0"     \
    "1bc02c0010800100001194000d04763d30310769643d61626364c04700018001000000780004c0"     \
    "a80114c047001c8001000000780010fe800000000000000000000000000001"

static size_t write_announcement(uint8_t *buf, size_t cap) {
    static const uint8_t txt[] = "\x04v=01\x07id=abcd";
    pl_dns_writer w;
    pl_dns_writer_init(&w, buf, cap, 0, PL_DNS_FLAG_RESPONSE);
    pl_dns_record r = mkrecord("_peerlink._tcp.local", PL_DNS_PTR, 4500, 0);
    assert_int_equal(pl_dns_name_from_labels(&r.u.ptr, "My Box", "_peerlink._tcp.local"), PL_OK);
    assert_int_equal(pl_dns_write_record(&w, 1, &r), PL_OK);
    r = mkrecord("My Box._peerlink._tcp.local", PL_DNS_SRV, 120, 1);
    r.u.srv.port = 4433;
    r.u.srv.target = mkname("mybox.local");
    assert_int_equal(pl_dns_write_record(&w, 3, &r), PL_OK);
    r = mkrecord("My Box._peerlink._tcp.local", PL_DNS_TXT, 4500, 1);
    r.rdata = txt;
    r.rdlen = sizeof(txt) - 1;
    assert_int_equal(pl_dns_write_record(&w, 3, &r), PL_OK);
    r = mkrecord("mybox.local", PL_DNS_A, 120, 1);
    memcpy(r.u.a, "\xc0\xa8\x01\x14", 4);
    assert_int_equal(pl_dns_write_record(&w, 3, &r), PL_OK);
    r = mkrecord("MYBOX.Local", PL_DNS_AAAA, 120, 1); /* case-insensitive match */
    memcpy(r.u.aaaa, "\xfe\x80\0\0\0\0\0\0\0\0\0\0\0\0\0\x01", 16);
    assert_int_equal(pl_dns_write_record(&w, 3, &r), PL_OK);
    return pl_dns_writer_finish(&w);
}

static void test_compression_exact(void **state) {
    (void)state;
    uint8_t buf[PL_DNS_MAX_MESSAGE];
    size_t n = write_announcement(buf, sizeof(buf));
    assert_int_equal(n, sizeof(announce_expected));
    assert_memory_equal(buf, announce_expected, sizeof(announce_expected));

    size_t zlen = 0;
    uint8_t *z = from_hex(ZEROCONF_RESPONSE_HEX, &zlen);
    assert_int_equal(zlen, n);
    assert_memory_equal(z, buf, n);
    free(z);

    /* Without compression the same records would take far more room. */
    size_t uncompressed = 12 + (22 + 10 + 29) + (29 + 10 + 6 + 13) + (29 + 10 + 13) +
                          (13 + 10 + 4) + (13 + 10 + 16);
    assert_true(n < uncompressed);
}

/* ------------------------------------------------------------ parsing */

/*
 * ZEROCONF_RESPONSE_HEX was produced offline by python-zeroconf 0.47.3
 * (Debian python3-zeroconf, /usr/bin/python3; no network):
 *   out = DNSOutgoing(const._FLAGS_QR_RESPONSE | const._FLAGS_AA)
 *   out.add_answer_at_time(DNSPointer("_peerlink._tcp.local.", const._TYPE_PTR,
 *       const._CLASS_IN, 4500, "My Box._peerlink._tcp.local."), 0)
 *   out.add_additional_answer(DNSService("My Box._peerlink._tcp.local.", const._TYPE_SRV,
 *       const._CLASS_IN | const._CLASS_UNIQUE, 120, 0, 0, 4433, "mybox.local."))
 *   out.add_additional_answer(DNSText(..., const._TYPE_TXT, ... | const._CLASS_UNIQUE,
 *       4500, b"\x04v=01\x07id=abcd"))
 *   out.add_additional_answer(DNSAddress("mybox.local.", const._TYPE_A, ..., 120,
 *       socket.inet_aton("192.168.1.20")))
 *   out.add_additional_answer(DNSAddress("mybox.local.", const._TYPE_AAAA, ..., 120,
 *       socket.inet_pton(socket.AF_INET6, "fe80::1")))
 *   out.packets()[0].hex()
 */
static void test_parse_zeroconf_response(void **state) {
    (void)state;
    size_t len = 0;
    uint8_t *pkt = from_hex(ZEROCONF_RESPONSE_HEX, &len);
    assert_int_equal(len, 148);
    pl_dns_message *m = NULL;
    assert_int_equal(pl_dns_parse(pkt, len, &m), PL_OK);
    assert_int_equal(m->flags, 0x8400);
    assert_int_equal(m->n_questions, 0);
    assert_int_equal(m->n_answers, 1);
    assert_int_equal(m->n_authority, 0);
    assert_int_equal(m->n_additional, 4);

    const pl_dns_record *r = &m->records[0];
    assert_int_equal(r->type, PL_DNS_PTR);
    assert_name_text(&r->name, "_peerlink._tcp.local");
    assert_name_text(&r->u.ptr, "My\\032Box._peerlink._tcp.local");
    char label[64];
    assert_int_equal(pl_dns_name_first_label(&r->u.ptr, label, sizeof(label)), PL_OK);
    assert_string_equal(label, "My Box");
    assert_int_equal(r->ttl, 4500);
    assert_false(r->cache_flush);

    r = &m->records[1];
    assert_int_equal(r->type, PL_DNS_SRV);
    assert_true(pl_dns_name_equal(&r->name, &m->records[0].u.ptr));
    assert_true(r->cache_flush);
    assert_int_equal(r->rrclass, PL_DNS_CLASS_IN);
    assert_int_equal(r->ttl, 120);
    assert_int_equal(r->u.srv.port, 4433);
    assert_name_text(&r->u.srv.target, "mybox.local");

    r = &m->records[2];
    assert_int_equal(r->type, PL_DNS_TXT);
    assert_int_equal(r->rdlen, 13);
    assert_memory_equal(r->rdata, "\x04v=01\x07id=abcd", 13);

    r = &m->records[3];
    assert_int_equal(r->type, PL_DNS_A);
    assert_name_text(&r->name, "mybox.local");
    assert_memory_equal(r->u.a, "\xc0\xa8\x01\x14", 4);

    r = &m->records[4];
    assert_int_equal(r->type, PL_DNS_AAAA);
    assert_name_text(&r->name, "mybox.local");
    assert_int_equal(r->u.aaaa[0], 0xfe);
    assert_int_equal(r->u.aaaa[15], 0x01);
    pl_dns_free(m);
    free(pkt);
}

/*
 * Produced like the response above with python-zeroconf 0.47.3:
 *   q = DNSOutgoing(const._FLAGS_QR_QUERY)
 *   q.add_question(DNSQuestion("_peerlink._tcp.local.", const._TYPE_PTR, const._CLASS_IN))
 *   qq = DNSQuestion("My Box._peerlink._tcp.local.", const._TYPE_SRV, const._CLASS_IN)
 *   qq.unicast = True; q.add_question(qq)
 *   q.add_answer_at_time(DNSPointer("_peerlink._tcp.local.", const._TYPE_PTR, const._CLASS_IN,
 *       4500, "Other._peerlink._tcp.local."), 0)          # a known answer
 *   q.packets()[0].hex()
 */
#define ZEROCONF_QUERY_HEX                                                               \
    "000000000002000100000000095f706565726c696e6b045f746370056c6f63616c00000c0001064d"   \
    "7920426f78c00c00218001c00c000c0001000011940008054f74686572c00c"

static void test_parse_zeroconf_query(void **state) {
    (void)state;
    size_t len = 0;
    uint8_t *pkt = from_hex(ZEROCONF_QUERY_HEX, &len);
    assert_int_equal(len, 71);
    pl_dns_message *m = NULL;
    assert_int_equal(pl_dns_parse(pkt, len, &m), PL_OK);
    assert_int_equal(m->flags, 0);
    assert_int_equal(m->n_questions, 2);
    assert_int_equal(m->n_answers, 1);
    assert_name_text(&m->questions[0].name, "_peerlink._tcp.local");
    assert_int_equal(m->questions[0].type, PL_DNS_PTR);
    assert_int_equal(m->questions[0].qclass, PL_DNS_CLASS_IN);
    assert_false(m->questions[0].unicast_response);
    assert_name_text(&m->questions[1].name, "My\\032Box._peerlink._tcp.local");
    assert_int_equal(m->questions[1].type, PL_DNS_SRV);
    assert_true(m->questions[1].unicast_response);
    assert_int_equal(m->questions[1].qclass, PL_DNS_CLASS_IN);
    assert_int_equal(m->records[0].type, PL_DNS_PTR);
    assert_int_equal(m->records[0].ttl, 4500);
    assert_name_text(&m->records[0].u.ptr, "Other._peerlink._tcp.local");
    pl_dns_free(m);
    free(pkt);
}

/* A hand-built packet: pointers to a whole name, into the middle of a
 * name, a chain of two pointers, compressed PTR and SRV RDATA. */
static void test_parse_handbuilt_compression(void **state) {
    (void)state;
    uint8_t p[256];
    size_t n = header(p, 1, 3, 0, 0);
    /* 12: question "a.example.local" ANY; "example" at 14, "local" at 22 */
    static const uint8_t q[] = {1, 'a', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 5, 'l', 'o', 'c', 'a', 'l', 0,
                                0x00, 0xff, 0x80, 0x01};
    n = append(p, n, q, sizeof(q)); /* n = 33 */
    /* 33: PTR owner "b" + ptr to 14 (example.local); target "c" + ptr to 33 (b.example.local) */
    static const uint8_t r1[] = {1, 'b', 0xc0, 14, 0x00, 0x0c, 0x00, 0x01, 0, 0, 0, 10, 0, 4,
                                 1, 'c', 0xc0, 33};
    n = append(p, n, r1, sizeof(r1)); /* n = 51; "c" at 47 */
    /* 51: SRV owner ptr to 47 (c.b.example.local, via 33 and 14); target ptr to 22 (local) */
    static const uint8_t r2[] = {0xc0, 47, 0x00, 0x21, 0x80, 0x01, 0, 0, 0, 20, 0, 8,
                                 0, 1, 0, 2, 0x1f, 0x90, 0xc0, 22};
    n = append(p, n, r2, sizeof(r2)); /* n = 71 */
    /* 71: TXT owner ptr to 51 (itself a pointer to 47): chain of two */
    static const uint8_t r3[] = {0xc0, 51, 0x00, 0x10, 0x00, 0x01, 0, 0, 0, 30, 0, 3, 2, 'k', '='};
    n = append(p, n, r3, sizeof(r3));

    pl_dns_message *m = NULL;
    assert_int_equal(pl_dns_parse(p, n, &m), PL_OK);
    assert_int_equal(m->n_questions, 1);
    assert_name_text(&m->questions[0].name, "a.example.local");
    assert_int_equal(m->questions[0].type, PL_DNS_ANY);
    assert_true(m->questions[0].unicast_response);
    assert_name_text(&m->records[0].name, "b.example.local");
    assert_name_text(&m->records[0].u.ptr, "c.b.example.local");
    assert_int_equal(m->records[0].ttl, 10);
    assert_name_text(&m->records[1].name, "c.b.example.local");
    assert_int_equal(m->records[1].u.srv.priority, 1);
    assert_int_equal(m->records[1].u.srv.weight, 2);
    assert_int_equal(m->records[1].u.srv.port, 8080);
    assert_name_text(&m->records[1].u.srv.target, "local");
    assert_true(m->records[1].cache_flush);
    assert_name_text(&m->records[2].name, "c.b.example.local");
    assert_int_equal(m->records[2].rdlen, 3);
    assert_memory_equal(m->records[2].rdata, "\x02k=", 3);
    pl_dns_free(m);
}

/* Names of exactly 255 bytes parse; 256 do not, also when built by pointers. */
static void test_parse_name_length_limit(void **state) {
    (void)state;
    uint8_t p[600];
    /* labels 63, 63, 63, 61: 64 * 3 + 62 + 1 = 255 */
    for (int extra = 0; extra <= 1; extra++) {
        size_t n = header(p, 1, 0, 0, 0);
        for (int i = 0; i < 4; i++) {
            uint8_t l = (uint8_t)(i < 3 ? 63 : 61 + extra);
            p[n++] = l;
            memset(p + n, 'a' + i, l);
            n += l;
        }
        p[n++] = 0;
        static const uint8_t tc[] = {0, 1, 0, 1};
        n = append(p, n, tc, 4);
        if (extra == 0) {
            pl_dns_message *m = NULL;
            assert_int_equal(pl_dns_parse(p, n, &m), PL_OK);
            assert_int_equal(m->questions[0].name.len, 255);
            pl_dns_free(m);
        } else {
            expect_parse_error(p, n, PL_ERR_MALFORMED);
        }
    }
    /* Via compression: q1 = 63.63.63.<root> (193 bytes), q2 = 61 or 62 byte label + pointer. */
    for (int extra = 0; extra <= 1; extra++) {
        size_t n = header(p, 2, 0, 0, 0);
        for (int i = 0; i < 3; i++) {
            p[n++] = 63;
            memset(p + n, 'a' + i, 63);
            n += 63;
        }
        p[n++] = 0;
        n = append(p, n, "\x00\x01\x00\x01", 4);
        uint8_t l = (uint8_t)(61 + extra);
        p[n++] = l;
        memset(p + n, 'z', l);
        n += l;
        p[n++] = 0xc0;
        p[n++] = 12;
        n = append(p, n, "\x00\x01\x00\x01", 4);
        if (extra == 0) {
            pl_dns_message *m = NULL;
            assert_int_equal(pl_dns_parse(p, n, &m), PL_OK);
            assert_int_equal(m->questions[1].name.len, 255);
            pl_dns_free(m);
        } else {
            expect_parse_error(p, n, PL_ERR_MALFORMED);
        }
    }
    /* Many short labels: 128 labels of 1 byte = 256 + 1 bytes. */
    size_t n = header(p, 1, 0, 0, 0);
    for (int i = 0; i < 128; i++) {
        p[n++] = 1;
        p[n++] = 'x';
    }
    p[n++] = 0;
    n = append(p, n, "\x00\x01\x00\x01", 4);
    expect_parse_error(p, n, PL_ERR_MALFORMED);
}

static void test_parse_pointer_limit(void **state) {
    (void)state;
    /* Record 1: owner "a" (root-terminated) at 12, type 99 with raw RDATA
     * holding a chain of k pointers (each to the previous, the first to 12);
     * record 2's owner points at the last one: k + 1 pointers in all. */
    for (int k = 31; k <= 32; k++) {
        uint8_t p[200];
        size_t n = header(p, 0, 2, 0, 0);
        n = append(p, n, "\x01" "a\x00", 3);
        n = append(p, n, "\x00\x63\x00\x01\x00\x00\x00\x00", 8);
        p[n++] = 0;
        p[n++] = (uint8_t)(2 * k);
        size_t base = n;
        for (int i = 0; i < k; i++) {
            size_t target = i == 0 ? 12 : base + 2 * (size_t)(i - 1);
            p[n++] = 0xc0;
            p[n++] = (uint8_t)target;
        }
        p[n++] = 0xc0;
        p[n++] = (uint8_t)(base + 2 * (size_t)(k - 1));
        n = append(p, n, "\x00\x63\x00\x01\x00\x00\x00\x00\x00\x00", 10);
        if (k + 1 <= PL_DNS_MAX_POINTERS) {
            pl_dns_message *m = NULL;
            assert_int_equal(pl_dns_parse(p, n, &m), PL_OK);
            assert_name_text(&m->records[1].name, "a");
            pl_dns_free(m);
        } else {
            expect_parse_error(p, n, PL_ERR_MALFORMED);
        }
    }
}

static void test_parse_malformed_pointers(void **state) {
    (void)state;
    uint8_t p[64];
    size_t n;

    /* Self pointer: the question's name is a pointer to itself. */
    n = header(p, 1, 0, 0, 0);
    n = append(p, n, "\xc0\x0c\x00\x01\x00\x01", 6);
    expect_parse_error(p, n, PL_ERR_MALFORMED);

    /* A label followed by a pointer to that label's start (a loop). */
    n = header(p, 1, 0, 0, 0);
    n = append(p, n, "\x01" "a\xc0\x0c\x00\x01\x00\x01", 8);
    expect_parse_error(p, n, PL_ERR_MALFORMED);

    /* Two pointers pointing at each other: 12 -> 14, 14 -> 12. */
    n = header(p, 1, 0, 0, 0);
    n = append(p, n, "\xc0\x0e\xc0\x0c\x00\x01\x00\x01", 8);
    expect_parse_error(p, n, PL_ERR_MALFORMED);

    /* A loop entered through a backward pointer: record 1 (type 99, raw
     * RDATA never read as a name) holds at 23 the bytes 01 'x' c0 1b, a
     * label and a pointer forward to 27; record 2's owner at 27 is a
     * pointer back to 23. Following it leads to 27 again. */
    for (int loop = 1; loop >= 0; loop--) {
        n = header(p, 0, 2, 0, 0);
        n = append(p, n, "\x00\x00\x63\x00\x01\x00\x00\x00\x00\x00\x04", 11); /* 12..22 */
        n = append(p, n, loop ? "\x01x\xc0\x1b" : "\x01x\x00\x00", 4);            /* 23..26 */
        n = append(p, n, "\xc0\x17\x00\x63\x00\x01\x00\x00\x00\x00\x00\x00", 12);
        if (loop) {
            expect_parse_error(p, n, PL_ERR_MALFORMED);
        } else {
            pl_dns_message *m = NULL;
            assert_int_equal(pl_dns_parse(p, n, &m), PL_OK);
            assert_name_text(&m->records[1].name, "x");
            pl_dns_free(m);
        }
    }
    /* A label then a pointer to the run holding it (second name in the packet). */
    n = header(p, 2, 0, 0, 0);
    n = append(p, n, "\x01" "a\x00\x00\x01\x00\x01", 7);     /* 12..18 */
    n = append(p, n, "\x01" "b\xc0\x13\x00\x01\x00\x01", 8); /* 19: b, ptr -> 19 */
    expect_parse_error(p, n, PL_ERR_MALFORMED);

    /* Forward pointer (to a valid name further on). */
    n = header(p, 1, 0, 0, 0);
    n = append(p, n, "\xc0\x12\x00\x01\x00\x01\x01" "a\x00", 9);
    expect_parse_error(p, n, PL_ERR_MALFORMED);

    /* Pointer beyond the end of the packet. */
    n = header(p, 1, 0, 0, 0);
    n = append(p, n, "\xc3\xff\x00\x01\x00\x01", 6);
    expect_parse_error(p, n, PL_ERR_MALFORMED);

    /* Pointer into the header. */
    n = header(p, 1, 0, 0, 0);
    n = append(p, n, "\xc0\x04\x00\x01\x00\x01", 6);
    expect_parse_error(p, n, PL_ERR_MALFORMED);

    /* Pointer cut in half by the end of the packet: "abc" then a lone 0xc0. */
    n = header(p, 1, 0, 0, 0);
    n = append(p, n, "\x03" "abc\xc0", 5);
    expect_parse_error(p, n, PL_ERR_MALFORMED);
}

static void test_parse_malformed_labels(void **state) {
    (void)state;
    uint8_t p[128];
    size_t n;

    /* Label length 64 (0x40: an extended label type) and 0x80. */
    static const uint8_t bad_types[] = {0x40, 0x41, 0x7f, 0x80, 0xbf};
    for (size_t i = 0; i < sizeof(bad_types); i++) {
        n = header(p, 1, 0, 0, 0);
        p[n++] = bad_types[i];
        memset(p + n, 'x', 70);
        n += 70;
        p[n++] = 0;
        n = append(p, n, "\x00\x01\x00\x01", 4);
        expect_parse_error(p, n, PL_ERR_MALFORMED);
    }
    /* 63 is fine. */
    n = header(p, 1, 0, 0, 0);
    p[n++] = 63;
    memset(p + n, 'x', 63);
    n += 63;
    p[n++] = 0;
    n = append(p, n, "\x00\x01\x00\x01", 4);
    pl_dns_message *m = NULL;
    assert_int_equal(pl_dns_parse(p, n, &m), PL_OK);
    pl_dns_free(m);

    /* Label running past the end. */
    n = header(p, 1, 0, 0, 0);
    n = append(p, n, "\x09" "abc", 4);
    n = append(p, n, "\x00\x01\x00\x01", 4);
    expect_parse_error(p, n, PL_ERR_MALFORMED);

    /* No terminating zero before the end. */
    n = header(p, 1, 0, 0, 0);
    n = append(p, n, "\x01" "a\x01" "b\x01" "c", 6);
    expect_parse_error(p, n, PL_ERR_MALFORMED);
}

static void test_parse_truncated(void **state) {
    (void)state;
    uint8_t full[64];
    size_t n = header(full, 1, 1, 0, 0);
    n = append(full, n, "\x01" "a\x00\x00\x01\x00\x01", 7);                       /* question, ends at 19 */
    n = append(full, n, "\x01" "b\x00\x00\x01\x00\x01\x00\x00\x00\x78\x00\x04", 13); /* A header, ends 32 */
    n = append(full, n, "\x0a\x00\x00\x01", 4);                                    /* rdata, ends 36 */
    pl_dns_message *m = NULL;
    assert_int_equal(pl_dns_parse(full, n, &m), PL_OK);
    assert_memory_equal(m->records[0].u.a, "\x0a\x00\x00\x01", 4);
    pl_dns_free(m);
    /* Every shorter prefix fails: header (< 12), question, record, rdata. */
    for (size_t len = 0; len < n; len++)
        expect_parse_error(full, len, PL_ERR_MALFORMED);
    expect_parse_error(NULL, 0, PL_ERR_MALFORMED);

    /* rdlength beyond the end. */
    uint8_t p[64];
    memcpy(p, full, n);
    p[31] = 5;
    expect_parse_error(p, n, PL_ERR_MALFORMED);
    p[30] = 0xff;
    expect_parse_error(p, n, PL_ERR_MALFORMED);
    /* A with rdlength 5 (and the byte present). */
    memcpy(p, full, n);
    p[31] = 5;
    p[n] = 0;
    expect_parse_error(p, n + 1, PL_ERR_MALFORMED);
    /* A with rdlength 3. */
    memcpy(p, full, n);
    p[31] = 3;
    expect_parse_error(p, n - 1, PL_ERR_MALFORMED);
    /* AAAA with rdlength 4. */
    memcpy(p, full, n);
    p[23] = 28;
    expect_parse_error(p, n, PL_ERR_MALFORMED);
}

static void test_parse_rdata_mismatch(void **state) {
    (void)state;
    uint8_t p[128];
    size_t n, rd;

    /* SRV with a trailing junk byte inside rdlength. */
    n = header(p, 0, 1, 0, 0);
    n = append(p, n, "\x01" "s\x00\x00\x21\x00\x01\x00\x00\x00\x78", 11);
    rd = n;
    n = append(p, n, "\x00\x0a", 2); /* 6 + 3 for the name + 1 junk byte */
    n = append(p, n, "\x00\x00\x00\x00\x00\x50\x01" "h\x00" "J", 10);
    pl_dns_message *m = NULL;
    expect_parse_error(p, n, PL_ERR_MALFORMED);
    p[rd + 1] = 0x09; /* without the junk (which becomes trailing bytes after the message) */
    assert_int_equal(pl_dns_parse(p, n, &m), PL_OK);
    assert_int_equal(m->records[0].u.srv.port, 80);
    assert_name_text(&m->records[0].u.srv.target, "h");
    pl_dns_free(m);
    p[rd + 1] = 0x08; /* name runs past rdlength */
    expect_parse_error(p, n, PL_ERR_MALFORMED);
    p[rd + 1] = 0x06; /* no room for a name at all */
    expect_parse_error(p, n, PL_ERR_MALFORMED);

    /* PTR whose name is shorter / longer than rdlength. */
    n = header(p, 0, 1, 0, 0);
    n = append(p, n, "\x01" "p\x00\x00\x0c\x00\x01\x00\x00\x00\x78", 11);
    rd = n;
    n = append(p, n, "\x00\x04\x01" "t\x00" "J", 6);
    expect_parse_error(p, n, PL_ERR_MALFORMED);
    p[rd + 1] = 2;
    expect_parse_error(p, n, PL_ERR_MALFORMED);
    p[rd + 1] = 3;
    assert_int_equal(pl_dns_parse(p, n, &m), PL_OK);
    assert_name_text(&m->records[0].u.ptr, "t");
    pl_dns_free(m);
    p[rd + 1] = 0; /* empty PTR RDATA */
    expect_parse_error(p, n, PL_ERR_MALFORMED);

    /* NSEC whose next name runs past rdlength; then a good one. */
    n = header(p, 0, 1, 0, 0);
    n = append(p, n, "\x01" "h\x00\x00\x2f\x80\x01\x00\x00\x00\x78", 11);
    rd = n;
    n = append(p, n, "\x00\x02\x01" "h\x00\x00\x01\x40", 8);
    expect_parse_error(p, n, PL_ERR_MALFORMED);
    p[rd + 1] = 6;
    assert_int_equal(pl_dns_parse(p, n, &m), PL_OK);
    assert_name_text(&m->records[0].u.nsec.next, "h");
    assert_int_equal(m->records[0].rdlen, 3);
    assert_memory_equal(m->records[0].rdata, "\x00\x01\x40", 3);
    assert_true(m->records[0].cache_flush);
    pl_dns_free(m);
}

static void test_parse_counts(void **state) {
    (void)state;
    uint8_t p[2048];
    size_t n;

    /* 65535 records claimed by a 20-byte packet: refused before allocating. */
    n = header(p, 0, 65535, 0, 0);
    n = append(p, n, "\x00\x00\x01\x00\x01\x00\x00", 8);
    expect_parse_error(p, n, PL_ERR_TOO_LARGE);
    n = header(p, 65535, 65535, 65535, 65535);
    expect_parse_error(p, n, PL_ERR_TOO_LARGE);
    /* Within the entry limit but impossible for the length: malformed, fast. */
    n = header(p, 0, 200, 0, 0);
    n = append(p, n, "\x00\x00\x01\x00\x01\x00\x00\x00\x00\x00\x00", 11);
    expect_parse_error(p, n, PL_ERR_MALFORMED);

    /* Total entries > 256 (spread over the sections). */
    n = header(p, 100, 100, 0, 57);
    memset(p + n, 0, sizeof(p) - n);
    expect_parse_error(p, sizeof(p), PL_ERR_TOO_LARGE);

    /* Exactly 256: 256 root-name questions. */
    n = header(p, 256, 0, 0, 0);
    for (int i = 0; i < 256; i++)
        n = append(p, n, "\x00\x00\x01\x00\x01", 5);
    pl_dns_message *m = NULL;
    assert_int_equal(pl_dns_parse(p, n, &m), PL_OK);
    assert_int_equal(m->n_questions, 256);
    pl_dns_free(m);

    /* Over the message size limit. */
    uint8_t *big = calloc(1, PL_DNS_MAX_MESSAGE + 1);
    assert_non_null(big);
    expect_parse_error(big, PL_DNS_MAX_MESSAGE + 1, PL_ERR_TOO_LARGE);
    pl_dns_message *m2 = NULL;
    assert_int_equal(pl_dns_parse(big, PL_DNS_MAX_MESSAGE, &m2), PL_OK); /* empty, padded */
    pl_dns_free(m2);
    free(big);
    pl_dns_free(NULL);
}

/* ------------------------------------------------------------ writer */

static void test_writer_too_large(void **state) {
    (void)state;
    uint8_t buf[100];
    pl_dns_writer w;
    pl_dns_writer_init(&w, buf, sizeof(buf), 7, PL_DNS_FLAG_RESPONSE);
    pl_dns_question q = {mkname("_peerlink._tcp.local"), PL_DNS_PTR, PL_DNS_CLASS_IN, 0};
    assert_int_equal(pl_dns_write_question(&w, &q), PL_OK); /* 12 + 26 = 38 */
    pl_dns_record r = mkrecord("_peerlink._tcp.local", PL_DNS_PTR, 4500, 0);
    r.u.ptr = mkname("Some Long Instance Name._peerlink._tcp.local");
    assert_int_equal(pl_dns_write_record(&w, 1, &r), PL_OK); /* 2 + 10 + 26 = 38: 76 */

    /* Fails in the RDATA: owner and fixed part fit, the target does not. */
    pl_dns_record big = mkrecord("Some Long Instance Name._peerlink._tcp.local", PL_DNS_SRV, 120, 1);
    big.u.srv.port = 1;
    big.u.srv.target = mkname("a-rather-long-host-name-that-does-not-fit.local");
    pl_dns_writer before = w;
    assert_int_equal(pl_dns_write_record(&w, 3, &big), PL_ERR_TOO_LARGE);
    assert_memory_equal(&w, &before, sizeof(w));
    /* Fails in the owner name. */
    pl_dns_record big2 = mkrecord("another-name-that-is-not-compressible-at-all.example", PL_DNS_A, 1, 0);
    assert_int_equal(pl_dns_write_record(&w, 2, &big2), PL_ERR_TOO_LARGE);
    assert_memory_equal(&w, &before, sizeof(w));
    /* Questions after records are out of order. */
    assert_int_equal(pl_dns_write_question(&w, &q), PL_ERR_INVALID);
    assert_memory_equal(&w, &before, sizeof(w));
    /* A smaller record still fits, in section 2 (the failures did not move the section). */
    pl_dns_record a = mkrecord("Some Long Instance Name._peerlink._tcp.local", PL_DNS_A, 120, 1);
    memcpy(a.u.a, "\x01\x02\x03\x04", 4);
    assert_int_equal(pl_dns_write_record(&w, 2, &a), PL_OK); /* 2 + 10 + 4 = 16: 92 */
    /* Fill to exactly the capacity: TXT of 8 - 2 - 10 = ... 100 - 92 = 8 bytes, too small */
    pl_dns_record t = mkrecord(".", PL_DNS_TXT, 0, 0);
    before = w;
    assert_int_equal(pl_dns_write_record(&w, 3, &t), PL_ERR_TOO_LARGE); /* 1 + 10 + 1 = 12 > 8 */
    assert_memory_equal(&w, &before, sizeof(w));
    pl_dns_record u = mkrecord(".", 99, 0, 0); /* empty unknown type: 1 + 10 + 0 = 11 */
    assert_int_equal(pl_dns_write_record(&w, 3, &u), PL_ERR_TOO_LARGE);
    pl_dns_question rq = {mkname("."), PL_DNS_A, PL_DNS_CLASS_IN, 0};
    assert_int_equal(pl_dns_write_question(&w, &rq), PL_ERR_INVALID);

    size_t n = pl_dns_writer_finish(&w);
    assert_int_equal(n, 92);
    pl_dns_message *m = NULL;
    assert_int_equal(pl_dns_parse(buf, n, &m), PL_OK);
    assert_int_equal(m->id, 7);
    assert_int_equal(m->n_questions, 1);
    assert_int_equal(m->n_answers, 1);
    assert_int_equal(m->n_authority, 1);
    assert_int_equal(m->n_additional, 0);
    assert_name_text(&m->records[0].u.ptr, "Some\\032Long\\032Instance\\032Name._peerlink._tcp.local");
    assert_memory_equal(m->records[1].u.a, "\x01\x02\x03\x04", 4);
    pl_dns_free(m);

    /* A record exactly filling the buffer is accepted. */
    uint8_t small[12 + 11];
    pl_dns_writer_init(&w, small, sizeof(small), 0, 0);
    assert_int_equal(pl_dns_write_record(&w, 1, &u), PL_OK);
    assert_int_equal(pl_dns_writer_finish(&w), sizeof(small));
    before = w;
    assert_int_equal(pl_dns_write_record(&w, 1, &u), PL_ERR_TOO_LARGE);
    assert_memory_equal(&w, &before, sizeof(w));
    /* A buffer too small for the header: everything is too large. */
    pl_dns_writer_init(&w, small, 11, 0, 0);
    assert_int_equal(pl_dns_write_record(&w, 1, &u), PL_ERR_TOO_LARGE);
    assert_int_equal(pl_dns_writer_finish(&w), 0);

    /* Filling a full-size packet with records until one fails. */
    uint8_t *max = malloc(PL_DNS_MAX_MESSAGE);
    assert_non_null(max);
    pl_dns_writer_init(&w, max, PL_DNS_MAX_MESSAGE, 0, PL_DNS_FLAG_RESPONSE);
    size_t written = 0;
    for (int i = 0; i < 10000; i++) {
        char label[32];
        snprintf(label, sizeof(label), "host-%d", i);
        pl_dns_record h = mkrecord("x.local", PL_DNS_A, 120, 1);
        assert_int_equal(pl_dns_name_from_labels(&h.name, label, "local"), PL_OK);
        before = w;
        int rc = pl_dns_write_record(&w, 1, &h);
        if (rc == PL_ERR_TOO_LARGE) {
            assert_memory_equal(&w, &before, sizeof(w));
            break;
        }
        assert_int_equal(rc, PL_OK);
        written++;
    }
    assert_true(written > 200);
    n = pl_dns_writer_finish(&w);
    assert_true(n <= PL_DNS_MAX_MESSAGE);
    /* More than 256 entries would be refused by the parser; check a prefix. */
    m = NULL;
    int prc = pl_dns_parse(max, n, &m);
    if (written <= PL_DNS_MAX_ENTRIES) {
        assert_int_equal(prc, PL_OK);
        pl_dns_free(m);
    } else {
        assert_int_equal(prc, PL_ERR_TOO_LARGE);
    }
    free(max);
}

static void test_writer_sections(void **state) {
    (void)state;
    uint8_t buf[512];
    pl_dns_writer w;
    pl_dns_writer_init(&w, buf, sizeof(buf), 0, 0);
    pl_dns_record r = mkrecord("a.local", PL_DNS_A, 1, 0);
    assert_int_equal(pl_dns_write_record(&w, 0, &r), PL_ERR_INVALID);
    assert_int_equal(pl_dns_write_record(&w, 4, &r), PL_ERR_INVALID);
    assert_int_equal(pl_dns_write_record(&w, -1, &r), PL_ERR_INVALID);
    assert_int_equal(pl_dns_write_record(&w, 2, &r), PL_OK);
    assert_int_equal(pl_dns_write_record(&w, 1, &r), PL_ERR_INVALID);
    assert_int_equal(pl_dns_write_record(&w, 2, &r), PL_OK);
    assert_int_equal(pl_dns_write_record(&w, 3, &r), PL_OK);
    assert_int_equal(pl_dns_write_record(&w, 2, &r), PL_ERR_INVALID);
    pl_dns_question q = {mkname("a.local"), PL_DNS_A, PL_DNS_CLASS_IN, 0};
    assert_int_equal(pl_dns_write_question(&w, &q), PL_ERR_INVALID);
    assert_int_equal(w.counts[0], 0);
    assert_int_equal(w.counts[1], 0);
    assert_int_equal(w.counts[2], 2);
    assert_int_equal(w.counts[3], 1);

    /* Invalid names and RDATA are refused. */
    pl_dns_record bad = r;
    bad.name.len = 3; /* wire "\x01" "a\x05": no final zero */
    bad.name.wire[2] = 5;
    assert_int_equal(pl_dns_write_record(&w, 3, &bad), PL_ERR_INVALID);
    bad = mkrecord("a.local", PL_DNS_TXT, 1, 0);
    bad.rdlen = 3; /* rdata NULL */
    assert_int_equal(pl_dns_write_record(&w, 3, &bad), PL_ERR_INVALID);
    bad = mkrecord("a.local", PL_DNS_PTR, 1, 0); /* u.ptr all zero: len 0 */
    assert_int_equal(pl_dns_write_record(&w, 3, &bad), PL_ERR_INVALID);
    pl_dns_question bq = q;
    bq.name.len = 0;
    pl_dns_writer w2;
    pl_dns_writer_init(&w2, buf, sizeof(buf), 0, 0);
    assert_int_equal(pl_dns_write_question(&w2, &bq), PL_ERR_INVALID);

    size_t n = pl_dns_writer_finish(&w);
    pl_dns_message *m = NULL;
    assert_int_equal(pl_dns_parse(buf, n, &m), PL_OK);
    assert_int_equal(m->n_authority, 2);
    assert_int_equal(m->n_additional, 1);
    pl_dns_free(m);
}

/* Suffix compression picks the longest match, compares case-insensitively
 * and also compresses against names inside RDATA. */
static void test_writer_compression_suffixes(void **state) {
    (void)state;
    uint8_t buf[512];
    pl_dns_writer w;
    pl_dns_writer_init(&w, buf, sizeof(buf), 0, 0);
    pl_dns_question q = {mkname("a.b.c.local"), PL_DNS_ANY, PL_DNS_CLASS_IN, 0};
    assert_int_equal(pl_dns_write_question(&w, &q), PL_OK); /* labels at 12, 14, 16, 18 */
    q.name = mkname("X.B.C.LOCAL");
    assert_int_equal(pl_dns_write_question(&w, &q), PL_OK);
    /* 29: 01 'X' c0 0e */
    static const uint8_t e1[] = {1, 'X', 0xc0, 14, 0x00, 0xff, 0x00, 0x01};
    assert_memory_equal(buf + 29, e1, sizeof(e1));
    q.name = mkname("c.local");
    assert_int_equal(pl_dns_write_question(&w, &q), PL_OK);
    static const uint8_t e2[] = {0xc0, 16, 0x00, 0xff, 0x00, 0x01};
    assert_memory_equal(buf + 37, e2, sizeof(e2));
    q.name = mkname("y.X.b.c.local"); /* longest: X.b.c.local at 29 */
    assert_int_equal(pl_dns_write_question(&w, &q), PL_OK);
    static const uint8_t e3[] = {1, 'y', 0xc0, 29, 0x00, 0xff, 0x00, 0x01};
    assert_memory_equal(buf + 43, e3, sizeof(e3));
    q.name = mkname("other");
    assert_int_equal(pl_dns_write_question(&w, &q), PL_OK);
    static const uint8_t e4[] = {5, 'o', 't', 'h', 'e', 'r', 0, 0x00, 0xff, 0x00, 0x01};
    assert_memory_equal(buf + 51, e4, sizeof(e4));
    q.name = mkname(".");
    assert_int_equal(pl_dns_write_question(&w, &q), PL_OK);
    assert_int_equal(buf[62], 0);
    /* NSEC: next name never compressed. */
    pl_dns_record r = mkrecord("other", PL_DNS_NSEC, 1, 0);
    r.u.nsec.next = mkname("other");
    assert_int_equal(pl_dns_write_record(&w, 1, &r), PL_OK);
    static const uint8_t e5[] = {0xc0, 51, 0x00, 0x2f, 0x00, 0x01, 0, 0, 0, 1, 0, 7,
                                 5, 'o', 't', 'h', 'e', 'r', 0};
    assert_memory_equal(buf + 67, e5, sizeof(e5));
    size_t n = pl_dns_writer_finish(&w);
    assert_int_equal(n, 67 + sizeof(e5));
    pl_dns_message *m = NULL;
    assert_int_equal(pl_dns_parse(buf, n, &m), PL_OK);
    /* The suffix was compressed against "b.c.local": same name, its case. */
    assert_name_text(&m->questions[1].name, "X.b.c.local");
    pl_dns_name upper = mkname("X.B.C.LOCAL");
    assert_true(pl_dns_name_equal(&m->questions[1].name, &upper));
    assert_name_text(&m->questions[3].name, "y.X.b.c.local");
    assert_int_equal(m->records[0].rdlen, 0);
    pl_dns_free(m);
}

/* ------------------------------------------------------------ names */

static void test_name_from_text(void **state) {
    (void)state;
    pl_dns_name n;
    assert_int_equal(pl_dns_name_from_text(&n, "My\\.Box._http._tcp.local"), PL_OK);
    static const uint8_t e1[] = "\x06My.Box\x05_http\x04_tcp\x05local";
    assert_int_equal(n.len, sizeof(e1));
    assert_memory_equal(n.wire, e1, sizeof(e1));
    assert_int_equal(pl_dns_name_from_text(&n, "a\\\\b.local."), PL_OK);
    assert_memory_equal(n.wire, "\x03" "a\\b\x05local", 11);
    assert_int_equal(n.len, 11);
    assert_int_equal(pl_dns_name_from_text(&n, "\\065bc\\032d\\000.x"), PL_OK);
    assert_int_equal(n.len, 1 + 6 + 2 + 1);
    assert_memory_equal(n.wire, "\x06" "Abc d\0" "\x01x", 10);
    assert_int_equal(pl_dns_name_from_text(&n, "\\a\\b"), PL_OK); /* \X quotes X */
    assert_memory_equal(n.wire, "\x02" "ab", 4);
    assert_int_equal(pl_dns_name_from_text(&n, "."), PL_OK);
    assert_int_equal(n.len, 1);
    assert_int_equal(n.wire[0], 0);
    assert_int_equal(pl_dns_name_from_text(&n, ""), PL_OK);
    assert_int_equal(n.len, 1);

    static const char *bad[] = {"a..b", ".a", "a.b..", "..", "\\256", "\\1a", "\\12", "abc\\",
                                "x.\\"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        n.len = 77;
        assert_int_equal(pl_dns_name_from_text(&n, bad[i]), PL_ERR_INVALID);
        assert_int_equal(n.len, 77); /* untouched */
    }
    assert_int_equal(pl_dns_name_from_text(NULL, "a"), PL_ERR_INVALID);
    assert_int_equal(pl_dns_name_from_text(&n, NULL), PL_ERR_INVALID);

    /* Label and name length limits. */
    char text[400];
    memset(text, 'a', 63);
    text[63] = '\0';
    assert_int_equal(pl_dns_name_from_text(&n, text), PL_OK);
    assert_int_equal(n.len, 65);
    memset(text, 'a', 64);
    text[64] = '\0';
    assert_int_equal(pl_dns_name_from_text(&n, text), PL_ERR_INVALID);
    /* "\065" x 63 is 63 bytes: fine; one more is too many. */
    text[0] = '\0';
    for (int i = 0; i < 63; i++)
        strcat(text, "\\065");
    assert_int_equal(pl_dns_name_from_text(&n, text), PL_OK);
    strcat(text, "\\065");
    assert_int_equal(pl_dns_name_from_text(&n, text), PL_ERR_INVALID);
    /* 127 labels "a." + "a" is 254 + 1 = 255 bytes; one more label too many. */
    size_t t = 0;
    for (int i = 0; i < 127; i++) {
        text[t++] = 'a';
        text[t++] = '.';
    }
    text[t - 1] = '\0';
    assert_int_equal(pl_dns_name_from_text(&n, text), PL_OK);
    assert_int_equal(n.len, 255);
    text[t - 1] = '.';
    text[t] = 'b';
    text[t + 1] = '\0';
    assert_int_equal(pl_dns_name_from_text(&n, text), PL_ERR_INVALID);
    text[t] = '\0'; /* trailing dot: still 255 */
    assert_int_equal(pl_dns_name_from_text(&n, text), PL_OK);
    assert_int_equal(n.len, 255);
}

static void test_name_from_labels(void **state) {
    (void)state;
    pl_dns_name n;
    assert_int_equal(pl_dns_name_from_labels(&n, "My.Box \\ 1", "_peerlink._tcp.local"), PL_OK);
    assert_int_equal(n.wire[0], 10);
    assert_memory_equal(n.wire + 1, "My.Box \\ 1", 10);
    assert_name_text(&n, "My\\.Box\\032\\\\\\0321._peerlink._tcp.local");
    pl_dns_name back;
    char text[256];
    assert_int_equal(pl_dns_name_to_text(&n, text, sizeof(text)), PL_OK);
    assert_int_equal(pl_dns_name_from_text(&back, text), PL_OK);
    assert_true(pl_dns_name_equal(&n, &back));
    assert_int_equal(n.len, back.len);
    assert_memory_equal(n.wire, back.wire, n.len);

    assert_int_equal(pl_dns_name_from_labels(&n, "host", NULL), PL_OK);
    assert_int_equal(n.len, 6);
    assert_int_equal(pl_dns_name_from_labels(&n, "host", "."), PL_OK);
    assert_int_equal(n.len, 6);
    assert_int_equal(pl_dns_name_from_labels(&n, "", "local"), PL_ERR_INVALID);
    assert_int_equal(pl_dns_name_from_labels(&n, NULL, "local"), PL_ERR_INVALID);
    assert_int_equal(pl_dns_name_from_labels(&n, "x", "a..b"), PL_ERR_INVALID);
    char l[80];
    memset(l, 'q', 63);
    l[63] = '\0';
    assert_int_equal(pl_dns_name_from_labels(&n, l, "local"), PL_OK);
    l[63] = 'q';
    l[64] = '\0';
    assert_int_equal(pl_dns_name_from_labels(&n, l, "local"), PL_ERR_INVALID);
    /* Total over 255: 63-byte first label + 3 * 63 + ... */
    char suffix[300];
    memset(suffix, 's', 63);
    suffix[63] = '.';
    memset(suffix + 64, 's', 63);
    suffix[127] = '.';
    memset(suffix + 128, 's', 63);
    suffix[191] = '\0'; /* suffix wire: 3 * 64 + 1 = 193; + 64 = 257 */
    l[63] = '\0';
    assert_int_equal(pl_dns_name_from_labels(&n, l, suffix), PL_ERR_INVALID);
    assert_int_equal(pl_dns_name_from_labels(&n, "q", suffix), PL_OK); /* 2 + 193 */
    assert_int_equal(n.len, 195);
}

static void test_name_equal(void **state) {
    (void)state;
    pl_dns_name a = mkname("MY Box._PeerLink._tcp.LOCAL");
    pl_dns_name b = mkname("my box._peerlink._TCP.local");
    assert_true(pl_dns_name_equal(&a, &b));
    assert_true(pl_dns_name_equal(&b, &a));
    pl_dns_name c = mkname("my box._peerlink._tcp.local.x");
    assert_false(pl_dns_name_equal(&a, &c));
    pl_dns_name d = mkname("a.bc");
    pl_dns_name e = mkname("ab.c");
    assert_false(pl_dns_name_equal(&d, &e)); /* same length, different labels */
    pl_dns_name f = mkname("a.b\\195\\137"); /* non-ASCII bytes compare exactly */
    pl_dns_name g = mkname("a.b\\227\\137");
    assert_false(pl_dns_name_equal(&f, &g));
    pl_dns_name h = mkname("[.local"); /* '[' is 'Z' + 1, '{' is 'z' + 1 */
    pl_dns_name i = mkname("{.local");
    assert_false(pl_dns_name_equal(&h, &i));
    pl_dns_name r1 = mkname("."), r2 = mkname("");
    assert_true(pl_dns_name_equal(&r1, &r2));
    assert_false(pl_dns_name_equal(&a, NULL));
}

static void test_name_to_text(void **state) {
    (void)state;
    pl_dns_name n;
    char buf[1100];
    n = mkname(".");
    assert_name_text(&n, ".");
    assert_int_equal(pl_dns_name_to_text(&n, buf, 1), PL_ERR_TOO_LARGE);
    n.len = 5;
    memcpy(n.wire, "\x03" "\x01\x7f\\\x00", 5);
    assert_name_text(&n, "\\001\\127\\\\");
    assert_int_equal(pl_dns_name_from_labels(&n, "a.b c", "d\\\\e"), PL_OK);
    assert_name_text(&n, "a\\.b\\032c.d\\\\e");
    assert_int_equal(pl_dns_name_to_text(&n, buf, 15), PL_OK); /* 14 chars + NUL */
    assert_int_equal(pl_dns_name_to_text(&n, buf, 14), PL_ERR_TOO_LARGE);
    assert_int_equal(pl_dns_name_to_text(&n, buf, 0), PL_ERR_TOO_LARGE);
    /* UTF-8 passes through. */
    n = mkname("Caf\\195\\169.local");
    assert_name_text(&n, "Caf\xc3\xa9.local");
    /* Worst case: 255 bytes all needing \DDD. */
    pl_dns_name w;
    size_t p = 0;
    for (int i = 0; i < 4; i++) {
        size_t l = i < 3 ? 63 : 61;
        w.wire[p++] = (uint8_t)l;
        memset(w.wire + p, 0x01, l);
        p += l;
    }
    w.wire[p++] = 0;
    w.len = (uint8_t)p;
    assert_int_equal(w.len, 255);
    assert_int_equal(pl_dns_name_to_text(&w, buf, sizeof(buf)), PL_OK);
    assert_int_equal(strlen(buf), 250 * 4 + 3);
    pl_dns_name back;
    assert_int_equal(pl_dns_name_from_text(&back, buf), PL_OK);
    assert_true(pl_dns_name_equal(&w, &back));
}

static void test_name_first_label_parent(void **state) {
    (void)state;
    pl_dns_name n, par;
    char label[64];
    assert_int_equal(pl_dns_name_from_labels(&n, "My.Box", "_peerlink._tcp.local"), PL_OK);
    assert_int_equal(pl_dns_name_first_label(&n, label, sizeof(label)), PL_OK);
    assert_string_equal(label, "My.Box");
    assert_int_equal(pl_dns_name_first_label(&n, label, 6), PL_ERR_INVALID);
    assert_int_equal(pl_dns_name_first_label(&n, label, 7), PL_OK);
    pl_dns_name_parent(&n, &par);
    pl_dns_name e = mkname("_peerlink._tcp.local");
    assert_true(pl_dns_name_equal(&par, &e));
    assert_int_equal(par.len, e.len);
    pl_dns_name_parent(&par, &par); /* in place */
    assert_name_text(&par, "_tcp.local");
    pl_dns_name_parent(&par, &par);
    pl_dns_name_parent(&par, &par);
    assert_int_equal(par.len, 1);
    assert_int_equal(pl_dns_name_first_label(&par, label, sizeof(label)), PL_ERR_INVALID);
    pl_dns_name_parent(&par, &par); /* root stays root */
    assert_int_equal(par.len, 1);
    assert_int_equal(par.wire[0], 0);

    /* 63-byte label into a 64-byte buffer. */
    char l63[64];
    memset(l63, 'x', 63);
    l63[63] = '\0';
    assert_int_equal(pl_dns_name_from_labels(&n, l63, "local"), PL_OK);
    assert_int_equal(pl_dns_name_first_label(&n, label, sizeof(label)), PL_OK);
    assert_string_equal(label, l63);
    /* A label with a NUL byte cannot be a C string. */
    n = mkname("a\\000b.local");
    assert_int_equal(pl_dns_name_first_label(&n, label, sizeof(label)), PL_ERR_INVALID);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_questions),
        cmocka_unit_test(test_roundtrip_records),
        cmocka_unit_test(test_compression_exact),
        cmocka_unit_test(test_parse_zeroconf_response),
        cmocka_unit_test(test_parse_zeroconf_query),
        cmocka_unit_test(test_parse_handbuilt_compression),
        cmocka_unit_test(test_parse_name_length_limit),
        cmocka_unit_test(test_parse_pointer_limit),
        cmocka_unit_test(test_parse_malformed_pointers),
        cmocka_unit_test(test_parse_malformed_labels),
        cmocka_unit_test(test_parse_truncated),
        cmocka_unit_test(test_parse_rdata_mismatch),
        cmocka_unit_test(test_parse_counts),
        cmocka_unit_test(test_writer_too_large),
        cmocka_unit_test(test_writer_sections),
        cmocka_unit_test(test_writer_compression_suffixes),
        cmocka_unit_test(test_name_from_text),
        cmocka_unit_test(test_name_from_labels),
        cmocka_unit_test(test_name_equal),
        cmocka_unit_test(test_name_to_text),
        cmocka_unit_test(test_name_first_label_parent),
    };
    return cmocka_run_group_tests_name("dns", tests, NULL, NULL);
}
