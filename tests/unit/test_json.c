/* SPDX-License-Identifier: ISC */
/*
 * Unit tests for the JSON output of `plcat -b --json` (examples/json.c).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <peerlink/peerlink.h>

#include "../../examples/json.h"

/* ------------------------------------------------------------------ base64 */

static void check_b64(const char *in, const char *expected)
{
    char *got = plcat_base64((const uint8_t *)in, strlen(in));
    assert_non_null(got);
    assert_string_equal(got, expected);
    free(got);
}

/* Test vectors from RFC 4648, section 10. */
static void test_base64_rfc4648(void **state)
{
    (void)state;
    check_b64("", "");
    check_b64("f", "Zg==");
    check_b64("fo", "Zm8=");
    check_b64("foo", "Zm9v");
    check_b64("foob", "Zm9vYg==");
    check_b64("fooba", "Zm9vYmE=");
    check_b64("foobar", "Zm9vYmFy");
}

static void test_base64_binary(void **state)
{
    (void)state;
    static const uint8_t bin[] = {0xFF, 0x00};
    static const uint8_t all[] = {0xFB, 0xFF, 0xBF};
    char *got = plcat_base64(bin, sizeof bin);
    assert_non_null(got);
    assert_string_equal(got, "/wA=");
    free(got);
    got = plcat_base64(all, sizeof all);
    assert_non_null(got);
    assert_string_equal(got, "+/+/");
    free(got);
}

/* ------------------------------------------------------------------ UTF-8 */

#define VALID(s) plcat_utf8_valid((const uint8_t *)(s), sizeof(s) - 1)

static void test_utf8_valid(void **state)
{
    (void)state;
    assert_int_equal(VALID(""), 1);
    assert_int_equal(VALID("plain ASCII ~\x7f"), 1);
    assert_int_equal(VALID("\xC3\xA9"), 1);         /* U+00E9, 2 bytes */
    assert_int_equal(VALID("\xE2\x82\xAC"), 1);     /* U+20AC, 3 bytes */
    assert_int_equal(VALID("\xF0\x9F\x98\x80"), 1); /* U+1F600, 4 bytes */
    assert_int_equal(VALID("\xF4\x8F\xBF\xBF"), 1); /* U+10FFFF, the last one */
    assert_int_equal(VALID("\xED\x9F\xBF"), 1);     /* U+D7FF, just below the surrogates */
    assert_int_equal(VALID("a\0b"), 1);             /* NUL is valid UTF-8 */
}

static void test_utf8_invalid(void **state)
{
    (void)state;
    assert_int_equal(VALID("\xC0\x80"), 0);         /* overlong NUL */
    assert_int_equal(VALID("\xC1\xBF"), 0);         /* overlong */
    assert_int_equal(VALID("\xE0\x80\xAF"), 0);     /* overlong 3-byte */
    assert_int_equal(VALID("\xF0\x80\x80\xAF"), 0); /* overlong 4-byte */
    assert_int_equal(VALID("\xED\xA0\x80"), 0);     /* surrogate U+D800 */
    assert_int_equal(VALID("\xED\xBF\xBF"), 0);     /* surrogate U+DFFF */
    assert_int_equal(VALID("\xF4\x90\x80\x80"), 0); /* U+110000 */
    assert_int_equal(VALID("\xF5\x80\x80\x80"), 0);
    assert_int_equal(VALID("\xE2\x82"), 0);         /* truncated */
    assert_int_equal(VALID("ok\xE2\x82"), 0);       /* truncated at the end */
    assert_int_equal(VALID("\x80"), 0);             /* lone continuation */
    assert_int_equal(VALID("\xC3\x28"), 0);         /* bad continuation */
    assert_int_equal(VALID("\xFF"), 0);
}

/* ------------------------------------------------------------------ events */

static pl_address addr4(const char *s)
{
    pl_address a;
    memset(&a, 0, sizeof a);
    a.family = AF_INET;
    assert_int_equal(inet_pton(AF_INET, s, a.addr), 1);
    return a;
}

static pl_address addr6(const char *s)
{
    pl_address a;
    memset(&a, 0, sizeof a);
    a.family = AF_INET6;
    assert_int_equal(inet_pton(AF_INET6, s, a.addr), 1);
    return a;
}

static pl_service base_service(const pl_txt *txt)
{
    pl_service svc;
    memset(&svc, 0, sizeof svc);
    svc.name = "box";
    svc.type = "_peerlink._tcp";
    svc.domain = "local";
    svc.host = "box.local";
    svc.port = 4242;
    svc.txt = txt;
    return svc;
}

static void test_event_full(void **state)
{
    (void)state;
    static const uint8_t bin[] = {0xFF, 0x00};
    pl_txt *txt = NULL;
    assert_int_equal(pl_txt_new(&txt), PL_OK);
    assert_int_equal(pl_txt_set_str(txt, "a", "1"), PL_OK);
    assert_int_equal(pl_txt_set(txt, "flag", NULL, 0), PL_OK);
    assert_int_equal(pl_txt_set(txt, "e", "", 0), PL_OK);
    assert_int_equal(pl_txt_set(txt, "bin", bin, sizeof bin), PL_OK);

    pl_address addrs[2] = {addr4("192.0.2.1"), addr6("2001:db8::1")};
    pl_service svc = base_service(txt);
    svc.name = "My \"box\"\nline2";
    svc.n_addresses = 2;
    svc.addresses = addrs;

    char *line = NULL;
    assert_int_equal(plcat_json_event("add", &svc, &line), 0);
    assert_non_null(line);
    assert_string_equal(line,
                        "{\"event\":\"add\",\"name\":\"My \\\"box\\\"\\nline2\","
                        "\"type\":\"_peerlink._tcp\",\"domain\":\"local\",\"host\":\"box.local\","
                        "\"port\":4242,\"addresses\":[\"192.0.2.1\",\"2001:db8::1\"],"
                        "\"txt\":{\"a\":\"1\",\"flag\":true,\"e\":\"\",\"bin\":{\"base64\":\"/wA=\"}}}");
    free(line);
    pl_txt_free(txt);
}

static void test_event_empty(void **state)
{
    (void)state;
    pl_txt *txt = NULL;
    assert_int_equal(pl_txt_new(&txt), PL_OK);
    pl_service svc = base_service(txt);
    svc.port = 0;

    char *line = NULL;
    assert_int_equal(plcat_json_event("remove", &svc, &line), 0);
    assert_string_equal(line, "{\"event\":\"remove\",\"name\":\"box\",\"type\":\"_peerlink._tcp\","
                              "\"domain\":\"local\",\"host\":\"box.local\",\"port\":0,"
                              "\"addresses\":[],\"txt\":{}}");
    free(line);
    pl_txt_free(txt);
}

static void test_event_escapes(void **state)
{
    (void)state;
    static const uint8_t nul_value[] = {'x', 0x00, 'y'};
    pl_txt *txt = NULL;
    assert_int_equal(pl_txt_new(&txt), PL_OK);
    assert_int_equal(pl_txt_set(txt, "z", nul_value, sizeof nul_value), PL_OK);
    assert_int_equal(pl_txt_set_str(txt, "k\\\"", "\xC3\xA9\t\x01\x7f"), PL_OK);

    pl_service svc = base_service(txt);
    /* backslash, control characters, DEL, valid UTF-8, invalid bytes */
    svc.name = "a\\b\b\f\r\t\x01\x1f\x7f \xE2\x82\xAC \xC0\x80 \xE2\x82";
    svc.host = NULL;

    char *line = NULL;
    assert_int_equal(plcat_json_event("update", &svc, &line), 0);
    assert_string_equal(line,
                        "{\"event\":\"update\","
                        "\"name\":\"a\\\\b\\b\\f\\r\\t\\u0001\\u001f\x7f \xE2\x82\xAC "
                        "\xEF\xBF\xBD\xEF\xBF\xBD \xEF\xBF\xBD\xEF\xBF\xBD\","
                        "\"type\":\"_peerlink._tcp\",\"domain\":\"local\",\"host\":null,"
                        "\"port\":4242,\"addresses\":[],"
                        "\"txt\":{\"z\":\"x\\u0000y\",\"k\\\\\\\"\":\"\xC3\xA9\\t\\u0001\x7f\"}}");
    assert_int_equal(plcat_utf8_valid((const uint8_t *)line, strlen(line)), 1);
    free(line);
    pl_txt_free(txt);
}

/* A long name and many attributes make the buffer grow several times. */
static void test_event_large(void **state)
{
    (void)state;
    pl_txt *txt = NULL;
    assert_int_equal(pl_txt_new(&txt), PL_OK);
    char value[201];
    memset(value, '"', 200); /* every byte doubles when escaped */
    value[200] = '\0';
    char key[8];
    for (int i = 0; i < 40; i++) {
        snprintf(key, sizeof key, "k%d", i);
        assert_int_equal(pl_txt_set_str(txt, key, value), PL_OK);
    }
    char name[2001];
    memset(name, '\n', 2000);
    name[2000] = '\0';

    pl_address addrs[50];
    for (int i = 0; i < 50; i++)
        addrs[i] = addr4("198.51.100.7");
    pl_service svc = base_service(txt);
    svc.name = name;
    svc.n_addresses = 50;
    svc.addresses = addrs;

    char *line = NULL;
    assert_int_equal(plcat_json_event("add", &svc, &line), 0);
    size_t expect = strlen("{\"event\":\"add\",\"name\":\"\",\"type\":\"_peerlink._tcp\","
                           "\"domain\":\"local\",\"host\":\"box.local\",\"port\":4242,"
                           "\"addresses\":[],\"txt\":{}}")
                    + 2000 * 2                          /* "\n" escapes */
                    + 50 * strlen("\"198.51.100.7\"") + 49 /* addresses and commas */
                    + 39;                               /* commas between attributes */
    for (int i = 0; i < 40; i++) {
        snprintf(key, sizeof key, "k%d", i);
        expect += strlen(key) + 2 + 1 + 2 + 400; /* "key":"…" */
    }
    assert_int_equal(strlen(line), expect);
    assert_int_equal(line[strlen(line) - 1], '}');
    free(line);
    pl_txt_free(txt);
}

static void test_event_bad_args(void **state)
{
    (void)state;
    char *line = (char *)"untouched";
    assert_int_equal(plcat_json_event("add", NULL, &line), -1);
    assert_string_equal(line, "untouched");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_base64_rfc4648),
        cmocka_unit_test(test_base64_binary),
        cmocka_unit_test(test_utf8_valid),
        cmocka_unit_test(test_utf8_invalid),
        cmocka_unit_test(test_event_full),
        cmocka_unit_test(test_event_empty),
        cmocka_unit_test(test_event_escapes),
        cmocka_unit_test(test_event_large),
        cmocka_unit_test(test_event_bad_args),
    };
    return cmocka_run_group_tests_name("json", tests, NULL, NULL);
}
