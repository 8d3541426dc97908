/* SPDX-License-Identifier: ISC */
/* Unit tests for DNS-SD TXT records (lib/core/txt.c). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include <peerlink/txt.h>

/* Encode txt into a fresh malloc'd buffer; returns it and its size. */
static uint8_t *encode_all(const pl_txt *t, size_t *n) {
    size_t need = 0;
    assert_int_equal(pl_txt_encode(t, NULL, 0, &need), PL_OK);
    assert_true(need >= 1);
    uint8_t *buf = malloc(need);
    assert_non_null(buf);
    size_t got = 0;
    assert_int_equal(pl_txt_encode(t, buf, need, &got), PL_OK);
    assert_int_equal(got, need);
    *n = got;
    return buf;
}

/* Assert that key maps to the given string value (value == NULL: boolean). */
static void check_value(const pl_txt *t, const char *key, const char *value) {
    const void *v = (const void *)1;
    size_t len = 99;
    assert_int_equal(pl_txt_get(t, key, &v, &len), PL_OK);
    if (value == NULL) {
        assert_null(v);
        assert_int_equal(len, 0);
    } else {
        assert_non_null(v);
        assert_int_equal(len, strlen(value));
        assert_memory_equal(v, value, len);
    }
}

static pl_txt *new_txt(void) {
    pl_txt *t = NULL;
    assert_int_equal(pl_txt_new(&t), PL_OK);
    assert_non_null(t);
    return t;
}

static void test_limits(void **state) {
    (void)state;
    assert_int_equal(pl_txt_max_size(), 65535);
    assert_int_equal(pl_txt_max_string(), 255);
    assert_int_equal(pl_txt_max_size(), PL_TXT_MAX_SIZE);
    assert_int_equal(pl_txt_max_string(), PL_TXT_MAX_STRING);
}

static void test_new_free_invalid(void **state) {
    (void)state;
    assert_int_equal(pl_txt_new(NULL), PL_ERR_INVALID);
    pl_txt_free(NULL);
    pl_txt *t = new_txt();
    assert_int_equal(pl_txt_count(t), 0);
    assert_int_equal(pl_txt_count(NULL), 0);
    pl_txt_free(t);
}

static void test_empty_record_encoding(void **state) {
    (void)state;
    pl_txt *t = new_txt();
    size_t n = 0;
    uint8_t *buf = encode_all(t, &n);
    assert_int_equal(n, 1);
    assert_int_equal(buf[0], 0);
    pl_txt *d = NULL;
    assert_int_equal(pl_txt_decode(buf, n, &d), PL_OK);
    assert_int_equal(pl_txt_count(d), 0);
    assert_true(pl_txt_equal(t, d));
    free(buf);
    pl_txt_free(d);
    pl_txt_free(t);
}

static void test_known_wire_bytes(void **state) {
    (void)state;
    pl_txt *t = new_txt();
    assert_int_equal(pl_txt_set_str(t, "txtvers", "1"), PL_OK);
    assert_int_equal(pl_txt_set_str(t, "a", NULL), PL_OK);
    static const uint8_t want[] = {0x09, 't', 'x', 't', 'v', 'e', 'r', 's', '=', '1', 0x01, 'a'};
    size_t n = 0;
    uint8_t *buf = encode_all(t, &n);
    assert_int_equal(n, sizeof(want));
    assert_memory_equal(buf, want, sizeof(want));
    free(buf);
    pl_txt_free(t);
}

static void test_round_trip(void **state) {
    (void)state;
    pl_txt *t = new_txt();
    assert_int_equal(pl_txt_set_str(t, "txtvers", "1"), PL_OK);
    assert_int_equal(pl_txt_set_str(t, "path", "/index.html"), PL_OK);
    assert_int_equal(pl_txt_set_str(t, "flag", NULL), PL_OK);
    assert_int_equal(pl_txt_set_str(t, "empty", ""), PL_OK);
    assert_int_equal(pl_txt_set_str(t, "Key With Spaces", "v a l"), PL_OK);
    assert_int_equal(pl_txt_count(t), 5);

    size_t n = 0;
    uint8_t *buf = encode_all(t, &n);
    pl_txt *d = NULL;
    assert_int_equal(pl_txt_decode(buf, n, &d), PL_OK);
    assert_true(pl_txt_equal(t, d));
    assert_int_equal(pl_txt_count(d), 5);
    check_value(d, "txtvers", "1");
    check_value(d, "path", "/index.html");
    check_value(d, "flag", NULL);
    check_value(d, "empty", "");
    check_value(d, "key with spaces", "v a l");

    /* Re-encoding the decoded record gives the same bytes. */
    size_t n2 = 0;
    uint8_t *buf2 = encode_all(d, &n2);
    assert_int_equal(n, n2);
    assert_memory_equal(buf, buf2, n);
    free(buf);
    free(buf2);
    pl_txt_free(d);
    pl_txt_free(t);
}

static void test_boolean_vs_empty(void **state) {
    (void)state;
    pl_txt *t = new_txt();
    assert_int_equal(pl_txt_set(t, "b", NULL, 0), PL_OK);
    assert_int_equal(pl_txt_set(t, "e", "", 0), PL_OK);
    assert_int_equal(pl_txt_set(t, "x", NULL, 1), PL_ERR_INVALID);
    assert_int_equal(pl_txt_count(t), 2);
    check_value(t, "b", NULL);
    check_value(t, "e", "");

    static const uint8_t want[] = {0x01, 'b', 0x02, 'e', '='};
    size_t n = 0;
    uint8_t *buf = encode_all(t, &n);
    assert_int_equal(n, sizeof(want));
    assert_memory_equal(buf, want, n);
    free(buf);

    /* The two records differ only in boolean vs empty: not equal. */
    pl_txt *u = new_txt();
    assert_int_equal(pl_txt_set(u, "b", "", 0), PL_OK);
    assert_int_equal(pl_txt_set(u, "e", "", 0), PL_OK);
    assert_false(pl_txt_equal(t, u));

    /* Decoding keeps the distinction. */
    pl_txt *d = NULL;
    assert_int_equal(pl_txt_decode(want, sizeof(want), &d), PL_OK);
    check_value(d, "b", NULL);
    check_value(d, "e", "");
    pl_txt_free(d);
    pl_txt_free(u);
    pl_txt_free(t);
}

static void test_case_insensitive_replace(void **state) {
    (void)state;
    pl_txt *t = new_txt();
    assert_int_equal(pl_txt_set_str(t, "first", "1"), PL_OK);
    assert_int_equal(pl_txt_set_str(t, "Mid", "2"), PL_OK);
    assert_int_equal(pl_txt_set_str(t, "last", "3"), PL_OK);
    check_value(t, "mid", "2");
    check_value(t, "MID", "2");

    /* Replace keeps position and takes the new spelling. */
    assert_int_equal(pl_txt_set_str(t, "mID", "two"), PL_OK);
    assert_int_equal(pl_txt_count(t), 3);
    const char *k = NULL;
    const void *v = NULL;
    size_t len = 0;
    assert_int_equal(pl_txt_at(t, 1, &k, &v, &len), PL_OK);
    assert_string_equal(k, "mID");
    assert_int_equal(len, 3);
    assert_memory_equal(v, "two", 3);
    assert_int_equal(pl_txt_at(t, 0, &k, NULL, NULL), PL_OK);
    assert_string_equal(k, "first");
    assert_int_equal(pl_txt_at(t, 2, &k, NULL, NULL), PL_OK);
    assert_string_equal(k, "last");

    /* Replace a value with a boolean and back. */
    assert_int_equal(pl_txt_set_str(t, "LAST", NULL), PL_OK);
    check_value(t, "last", NULL);
    assert_int_equal(pl_txt_set_str(t, "last", "x"), PL_OK);
    check_value(t, "Last", "x");
    assert_int_equal(pl_txt_count(t), 3);

    /* Case folding is ASCII only: '[' (0x5B) is not the lower case of anything. */
    assert_int_equal(pl_txt_get(t, "FIRS[", NULL, NULL), PL_ERR_NOT_FOUND);
    pl_txt_free(t);
}

static void test_equal_case_insensitive_keys(void **state) {
    (void)state;
    pl_txt *a = new_txt(), *b = new_txt();
    assert_true(pl_txt_equal(a, b));
    assert_int_equal(pl_txt_set_str(a, "Key", "v"), PL_OK);
    assert_false(pl_txt_equal(a, b));
    assert_int_equal(pl_txt_set_str(b, "kEY", "v"), PL_OK);
    assert_true(pl_txt_equal(a, b));
    /* Values compare byte for byte. */
    assert_int_equal(pl_txt_set_str(b, "key", "V"), PL_OK);
    assert_false(pl_txt_equal(a, b));
    assert_int_equal(pl_txt_set_str(b, "key", "v"), PL_OK);
    /* Order matters. */
    assert_int_equal(pl_txt_set_str(a, "x", NULL), PL_OK);
    assert_int_equal(pl_txt_set_str(a, "y", NULL), PL_OK);
    assert_int_equal(pl_txt_set_str(b, "y", NULL), PL_OK);
    assert_int_equal(pl_txt_set_str(b, "x", NULL), PL_OK);
    assert_false(pl_txt_equal(a, b));
    assert_true(pl_txt_equal(a, a));
    assert_false(pl_txt_equal(a, NULL));
    assert_false(pl_txt_equal(NULL, b));
    assert_true(pl_txt_equal(NULL, NULL));
    pl_txt_free(a);
    pl_txt_free(b);
}

static void test_invalid_keys(void **state) {
    (void)state;
    pl_txt *t = new_txt();
    assert_int_equal(pl_txt_set_str(t, NULL, "v"), PL_ERR_INVALID);
    assert_int_equal(pl_txt_set_str(t, "", "v"), PL_ERR_INVALID);
    assert_int_equal(pl_txt_set_str(t, "a=b", "v"), PL_ERR_INVALID);
    assert_int_equal(pl_txt_set_str(t, "=", "v"), PL_ERR_INVALID);
    assert_int_equal(pl_txt_set_str(t, "del\x7f", "v"), PL_ERR_INVALID);
    assert_int_equal(pl_txt_set_str(t, "ctl\x19", "v"), PL_ERR_INVALID);
    assert_int_equal(pl_txt_set_str(t, "tab\t", "v"), PL_ERR_INVALID);
    assert_int_equal(pl_txt_set_str(t, "caf\xc3\xa9", "v"), PL_ERR_INVALID);
    assert_int_equal(pl_txt_set_str(t, "\x80", NULL), PL_ERR_INVALID);
    assert_int_equal(pl_txt_set_str(NULL, "k", "v"), PL_ERR_INVALID);
    assert_int_equal(pl_txt_count(t), 0);
    /* Edges of the allowed range are fine. */
    assert_int_equal(pl_txt_set_str(t, " ", "space"), PL_OK);
    assert_int_equal(pl_txt_set_str(t, "~", "tilde"), PL_OK);
    assert_int_equal(pl_txt_count(t), 2);
    /* Lookups with bad keys are invalid, not just absent. */
    assert_int_equal(pl_txt_get(t, "", NULL, NULL), PL_ERR_INVALID);
    assert_int_equal(pl_txt_get(t, NULL, NULL, NULL), PL_ERR_INVALID);
    assert_int_equal(pl_txt_get(t, "a=b", NULL, NULL), PL_ERR_INVALID);
    assert_int_equal(pl_txt_get(NULL, "k", NULL, NULL), PL_ERR_INVALID);
    assert_int_equal(pl_txt_remove(t, ""), PL_ERR_INVALID);
    assert_int_equal(pl_txt_remove(t, "\x7f"), PL_ERR_INVALID);
    assert_int_equal(pl_txt_remove(NULL, "k"), PL_ERR_INVALID);
    pl_txt_free(t);
}

static void test_string_bound(void **state) {
    (void)state;
    pl_txt *t = new_txt();
    char key[300];
    uint8_t val[300];
    memset(val, 'v', sizeof(val));

    /* "k=" + 253 bytes = 255: accepted. */
    assert_int_equal(pl_txt_set(t, "k", val, 253), PL_OK);
    /* 256 bytes: refused, previous value kept. */
    assert_int_equal(pl_txt_set(t, "k", val, 254), PL_ERR_TOO_LARGE);
    const void *v = NULL;
    size_t len = 0;
    assert_int_equal(pl_txt_get(t, "k", &v, &len), PL_OK);
    assert_int_equal(len, 253);
    assert_int_equal(pl_txt_set(t, "other", val, 300), PL_ERR_TOO_LARGE);
    assert_int_equal(pl_txt_set(t, "other", val, SIZE_MAX), PL_ERR_TOO_LARGE);
    assert_int_equal(pl_txt_count(t), 1);

    /* Boolean key of 255 accepted, 256 refused. */
    memset(key, 'a', sizeof(key));
    key[255] = '\0';
    assert_int_equal(pl_txt_set(t, key, NULL, 0), PL_OK);
    key[255] = 'a';
    key[256] = '\0';
    assert_int_equal(pl_txt_set(t, key, NULL, 0), PL_ERR_TOO_LARGE);
    assert_int_equal(pl_txt_get(t, key, NULL, NULL), PL_ERR_NOT_FOUND);
    assert_int_equal(pl_txt_remove(t, key), PL_ERR_NOT_FOUND);
    key[299] = '\0';
    assert_int_equal(pl_txt_set(t, key, NULL, 0), PL_ERR_TOO_LARGE);
    /* A 255-byte key with "=" and an empty value is 256 bytes. */
    key[255] = '\0';
    assert_int_equal(pl_txt_set(t, key, "", 0), PL_ERR_TOO_LARGE);
    check_value(t, key, NULL);
    assert_int_equal(pl_txt_count(t), 2);

    /* pl_txt_set_str applies the same bound. */
    char sval[300];
    memset(sval, 'x', sizeof(sval));
    sval[299] = '\0';
    assert_int_equal(pl_txt_set_str(t, "s", sval), PL_ERR_TOO_LARGE);
    sval[253] = '\0';
    assert_int_equal(pl_txt_set_str(t, "s", sval), PL_OK);

    /* The encoded string uses a length byte of 255. */
    size_t n = 0;
    uint8_t *buf = encode_all(t, &n);
    assert_int_equal(n, 3 * 256);
    assert_int_equal(buf[0], 255);
    assert_int_equal(buf[256], 255);
    assert_int_equal(buf[512], 255);
    pl_txt *d = NULL;
    assert_int_equal(pl_txt_decode(buf, n, &d), PL_OK);
    assert_true(pl_txt_equal(t, d));
    pl_txt_free(d);
    free(buf);
    pl_txt_free(t);
}

/* Fill t with 255-byte strings (256 wire bytes each) named k000, k001, ... */
static void fill_with(pl_txt *t, size_t count) {
    uint8_t val[250]; /* "kNNN=" + 250 = 255 bytes */
    memset(val, 'z', sizeof(val));
    for (size_t i = 0; i < count; i++) {
        char key[8];
        key[0] = 'k';
        key[1] = (char)('0' + (i / 100) % 10);
        key[2] = (char)('0' + (i / 10) % 10);
        key[3] = (char)('0' + i % 10);
        key[4] = '\0';
        assert_int_equal(pl_txt_set(t, key, val, sizeof(val)), PL_OK);
    }
}

static void test_record_bound(void **state) {
    (void)state;
    pl_txt *t = new_txt();
    /* 255 strings of 256 wire bytes = 65280; 255 bytes left. */
    fill_with(t, 255);
    size_t n = 0;
    assert_int_equal(pl_txt_encode(t, NULL, 0, &n), PL_OK);
    assert_int_equal(n, 65280);

    /* 255 more wire bytes: 1 + "r=" + 252 = 255 fits exactly (65535). */
    uint8_t val[300];
    memset(val, 'r', sizeof(val));
    assert_int_equal(pl_txt_set(t, "r", val, 253), PL_ERR_TOO_LARGE);
    assert_int_equal(pl_txt_count(t), 255);
    assert_int_equal(pl_txt_set(t, "r", val, 252), PL_OK);
    assert_int_equal(pl_txt_encode(t, NULL, 0, &n), PL_OK);
    assert_int_equal(n, PL_TXT_MAX_SIZE);

    /* Full: even a 1-byte boolean does not fit; replacing with a larger value does not. */
    assert_int_equal(pl_txt_set(t, "q", NULL, 0), PL_ERR_TOO_LARGE);
    assert_int_equal(pl_txt_set(t, "R", val, 253), PL_ERR_TOO_LARGE);
    /* Replacing with a value of the same or smaller size is fine at the bound. */
    const void *v = NULL;
    size_t len = 0;
    assert_int_equal(pl_txt_get(t, "r", &v, &len), PL_OK);
    assert_int_equal(len, 252);
    assert_int_equal(pl_txt_set(t, "R", val, 252), PL_OK);
    assert_int_equal(pl_txt_set(t, "r", NULL, 0), PL_OK);
    assert_int_equal(pl_txt_count(t), 256);
    assert_int_equal(pl_txt_encode(t, NULL, 0, &n), PL_OK);
    assert_int_equal(n, 65280 + 2);

    /* A removal frees room again. */
    assert_int_equal(pl_txt_set(t, "r", val, 252), PL_OK);
    assert_int_equal(pl_txt_remove(t, "k000"), PL_OK);
    assert_int_equal(pl_txt_set(t, "q", NULL, 0), PL_OK);

    /* A full-size record round-trips. */
    uint8_t *buf = encode_all(t, &n);
    pl_txt *d = NULL;
    assert_int_equal(pl_txt_decode(buf, n, &d), PL_OK);
    assert_true(pl_txt_equal(t, d));
    pl_txt_free(d);
    free(buf);
    pl_txt_free(t);
}

static void test_decode_too_large(void **state) {
    (void)state;
    size_t n = PL_TXT_MAX_SIZE + 1;
    uint8_t *buf = calloc(1, n);
    assert_non_null(buf);
    pl_txt *d = (pl_txt *)0x1;
    assert_int_equal(pl_txt_decode(buf, n, &d), PL_ERR_TOO_LARGE);
    assert_ptr_equal(d, (pl_txt *)0x1);
    /* Exactly the bound is accepted (all zero-length strings). */
    d = NULL;
    assert_int_equal(pl_txt_decode(buf, PL_TXT_MAX_SIZE, &d), PL_OK);
    assert_int_equal(pl_txt_count(d), 0);
    pl_txt_free(d);
    free(buf);
}

static void test_decode_malformed(void **state) {
    (void)state;
    pl_txt *d = (pl_txt *)0x1;
    static const uint8_t short1[] = {0x05, 'a', 'b'};
    assert_int_equal(pl_txt_decode(short1, sizeof(short1), &d), PL_ERR_MALFORMED);
    /* A good string followed by a truncated one: still an error, nothing leaked. */
    static const uint8_t short2[] = {0x03, 'a', '=', '1', 0x04, 'b', '=', '2'};
    assert_int_equal(pl_txt_decode(short2, sizeof(short2), &d), PL_ERR_MALFORMED);
    static const uint8_t short3[] = {0x01, 'a', 0x01};
    assert_int_equal(pl_txt_decode(short3, sizeof(short3), &d), PL_ERR_MALFORMED);
    static const uint8_t short4[] = {0xff};
    assert_int_equal(pl_txt_decode(short4, sizeof(short4), &d), PL_ERR_MALFORMED);
    assert_ptr_equal(d, (pl_txt *)0x1);
    /* Bad arguments. */
    assert_int_equal(pl_txt_decode(short1, sizeof(short1), NULL), PL_ERR_INVALID);
    assert_int_equal(pl_txt_decode(NULL, 3, &d), PL_ERR_INVALID);
    assert_ptr_equal(d, (pl_txt *)0x1);
}

static void test_decode_empty_inputs(void **state) {
    (void)state;
    pl_txt *d = NULL;
    assert_int_equal(pl_txt_decode(NULL, 0, &d), PL_OK);
    assert_int_equal(pl_txt_count(d), 0);
    pl_txt_free(d);
    d = NULL;
    static const uint8_t zero[] = {0x00};
    assert_int_equal(pl_txt_decode(zero, 1, &d), PL_OK);
    assert_int_equal(pl_txt_count(d), 0);
    pl_txt_free(d);
}

static void test_decode_skips(void **state) {
    (void)state;
    static const uint8_t in[] = {
        0x00,                          /* zero-length string */
        0x02, '=', 'x',                /* empty key */
        0x01, '=',                     /* empty key, empty value */
        0x03, 'a', '=', '1',           /* kept */
        0x00,                          /* zero-length string */
        0x04, 'b', 0x7f, '=', '2',     /* key byte 0x7F */
        0x04, 'c', 0x19, '=', '3',     /* key byte 0x19 */
        0x04, 0xc3, 0xa9, '=', '4',    /* non-ASCII key */
        0x02, 'd', 0x80,               /* non-ASCII boolean key */
        0x04, 'e', '=', 0x80, 0x01,    /* non-ASCII value is fine */
        0x01, 'f',                     /* boolean, kept */
    };
    pl_txt *d = NULL;
    assert_int_equal(pl_txt_decode(in, sizeof(in), &d), PL_OK);
    assert_int_equal(pl_txt_count(d), 3);
    const char *k = NULL;
    const void *v = NULL;
    size_t len = 0;
    assert_int_equal(pl_txt_at(d, 0, &k, &v, &len), PL_OK);
    assert_string_equal(k, "a");
    assert_int_equal(len, 1);
    assert_memory_equal(v, "1", 1);
    assert_int_equal(pl_txt_at(d, 1, &k, &v, &len), PL_OK);
    assert_string_equal(k, "e");
    assert_int_equal(len, 2);
    assert_memory_equal(v, "\x80\x01", 2);
    assert_int_equal(pl_txt_at(d, 2, &k, &v, &len), PL_OK);
    assert_string_equal(k, "f");
    assert_null(v);
    assert_int_equal(len, 0);
    assert_int_equal(pl_txt_at(d, 3, &k, &v, &len), PL_ERR_NOT_FOUND);
    pl_txt_free(d);
}

static void test_decode_first_wins(void **state) {
    (void)state;
    static const uint8_t in[] = {
        0x03, 'K', '=', '1', 0x01, 'x', 0x03, 'k', '=', '2', 0x01, 'k', 0x03, 'X', '=', '9',
    };
    pl_txt *d = NULL;
    assert_int_equal(pl_txt_decode(in, sizeof(in), &d), PL_OK);
    assert_int_equal(pl_txt_count(d), 2);
    check_value(d, "k", "1");
    check_value(d, "x", NULL);
    const char *k = NULL;
    assert_int_equal(pl_txt_at(d, 0, &k, NULL, NULL), PL_OK);
    assert_string_equal(k, "K");
    /* Re-encoding drops the duplicates. */
    static const uint8_t want[] = {0x03, 'K', '=', '1', 0x01, 'x'};
    size_t n = 0;
    uint8_t *buf = encode_all(d, &n);
    assert_int_equal(n, sizeof(want));
    assert_memory_equal(buf, want, n);
    free(buf);
    pl_txt_free(d);
}

static void test_value_with_nul_and_equals(void **state) {
    (void)state;
    static const uint8_t val[] = {'a', 0x00, '=', 'b', '=', 0x00, 0xff};
    pl_txt *t = new_txt();
    assert_int_equal(pl_txt_set(t, "bin", val, sizeof(val)), PL_OK);
    const void *v = NULL;
    size_t len = 0;
    assert_int_equal(pl_txt_get(t, "bin", &v, &len), PL_OK);
    assert_int_equal(len, sizeof(val));
    assert_memory_equal(v, val, sizeof(val));

    size_t n = 0;
    uint8_t *buf = encode_all(t, &n);
    assert_int_equal(n, 1 + 3 + 1 + sizeof(val));
    assert_int_equal(buf[0], 3 + 1 + sizeof(val));
    assert_memory_equal(buf + 1, "bin=", 4);
    assert_memory_equal(buf + 5, val, sizeof(val));

    pl_txt *d = NULL;
    assert_int_equal(pl_txt_decode(buf, n, &d), PL_OK);
    assert_int_equal(pl_txt_get(d, "BIN", &v, &len), PL_OK);
    assert_int_equal(len, sizeof(val));
    assert_memory_equal(v, val, sizeof(val));
    assert_true(pl_txt_equal(t, d));
    /* A value differing after the NUL is different. */
    static const uint8_t val2[] = {'a', 0x00, '=', 'b', '=', 0x00, 0xfe};
    assert_int_equal(pl_txt_set(d, "bin", val2, sizeof(val2)), PL_OK);
    assert_false(pl_txt_equal(t, d));
    free(buf);
    pl_txt_free(d);
    pl_txt_free(t);
}

static void test_encode_buffer_sizes(void **state) {
    (void)state;
    pl_txt *t = new_txt();
    assert_int_equal(pl_txt_set_str(t, "a", "1"), PL_OK); /* 4 bytes */
    assert_int_equal(pl_txt_set_str(t, "b", NULL), PL_OK); /* 2 bytes */
    size_t n = 0;
    /* Size query. */
    assert_int_equal(pl_txt_encode(t, NULL, 0, &n), PL_OK);
    assert_int_equal(n, 6);
    /* NULL buffer with a capacity: TOO_LARGE, size still reported. */
    n = 0;
    assert_int_equal(pl_txt_encode(t, NULL, 100, &n), PL_ERR_TOO_LARGE);
    assert_int_equal(n, 6);
    /* Too small: nothing written. */
    uint8_t buf[16];
    memset(buf, 0xAA, sizeof(buf));
    n = 0;
    assert_int_equal(pl_txt_encode(t, buf, 5, &n), PL_ERR_TOO_LARGE);
    assert_int_equal(n, 6);
    for (size_t i = 0; i < sizeof(buf); i++)
        assert_int_equal(buf[i], 0xAA);
    assert_int_equal(pl_txt_encode(t, buf, 0, &n), PL_ERR_TOO_LARGE);
    assert_int_equal(buf[0], 0xAA);
    /* Exact and larger buffers. */
    assert_int_equal(pl_txt_encode(t, buf, 6, &n), PL_OK);
    assert_int_equal(n, 6);
    assert_memory_equal(buf, "\x03" "a=1" "\x01" "b", 6);
    assert_int_equal(buf[6], 0xAA);
    assert_int_equal(pl_txt_encode(t, buf, sizeof(buf), &n), PL_OK);
    assert_int_equal(n, 6);
    /* out_len may be NULL. */
    assert_int_equal(pl_txt_encode(t, buf, sizeof(buf), NULL), PL_OK);
    /* Empty record needs one byte. */
    pl_txt *e = new_txt();
    assert_int_equal(pl_txt_encode(e, buf, 0, &n), PL_ERR_TOO_LARGE);
    assert_int_equal(n, 1);
    assert_int_equal(pl_txt_encode(e, buf, 1, &n), PL_OK);
    assert_int_equal(buf[0], 0);
    assert_int_equal(pl_txt_encode(NULL, buf, sizeof(buf), &n), PL_ERR_INVALID);
    pl_txt_free(e);
    pl_txt_free(t);
}

static void test_dup(void **state) {
    (void)state;
    pl_txt *t = new_txt();
    assert_int_equal(pl_txt_set_str(t, "a", "1"), PL_OK);
    assert_int_equal(pl_txt_set_str(t, "b", NULL), PL_OK);
    assert_int_equal(pl_txt_set(t, "c", "x\0y", 3), PL_OK);
    pl_txt *c = NULL;
    assert_int_equal(pl_txt_dup(t, &c), PL_OK);
    assert_non_null(c);
    assert_ptr_not_equal(c, t);
    assert_true(pl_txt_equal(t, c));
    /* Deep copy: changing the copy leaves the original alone. */
    assert_int_equal(pl_txt_set_str(c, "a", "2"), PL_OK);
    check_value(t, "a", "1");
    check_value(c, "a", "2");
    const void *v1 = NULL, *v2 = NULL;
    assert_int_equal(pl_txt_get(t, "c", &v1, NULL), PL_OK);
    assert_int_equal(pl_txt_get(c, "c", &v2, NULL), PL_OK);
    assert_ptr_not_equal(v1, v2);
    pl_txt_free(t);
    /* The copy outlives the original. */
    check_value(c, "b", NULL);
    pl_txt_free(c);

    /* Empty record and bad arguments. */
    pl_txt *e = new_txt();
    pl_txt *ec = (pl_txt *)0x1;
    assert_int_equal(pl_txt_dup(NULL, &ec), PL_ERR_INVALID);
    assert_ptr_equal(ec, (pl_txt *)0x1);
    assert_int_equal(pl_txt_dup(e, NULL), PL_ERR_INVALID);
    assert_int_equal(pl_txt_dup(e, &ec), PL_OK);
    assert_int_equal(pl_txt_count(ec), 0);
    assert_true(pl_txt_equal(e, ec));
    pl_txt_free(ec);
    pl_txt_free(e);
}

static void test_remove(void **state) {
    (void)state;
    pl_txt *t = new_txt();
    assert_int_equal(pl_txt_set_str(t, "a", "1"), PL_OK);
    assert_int_equal(pl_txt_set_str(t, "b", "2"), PL_OK);
    assert_int_equal(pl_txt_set_str(t, "c", NULL), PL_OK);
    assert_int_equal(pl_txt_remove(t, "B"), PL_OK);
    assert_int_equal(pl_txt_remove(t, "b"), PL_ERR_NOT_FOUND);
    assert_int_equal(pl_txt_count(t), 2);
    const char *k = NULL;
    assert_int_equal(pl_txt_at(t, 0, &k, NULL, NULL), PL_OK);
    assert_string_equal(k, "a");
    assert_int_equal(pl_txt_at(t, 1, &k, NULL, NULL), PL_OK);
    assert_string_equal(k, "c");
    static const uint8_t want[] = {0x03, 'a', '=', '1', 0x01, 'c'};
    size_t n = 0;
    uint8_t *buf = encode_all(t, &n);
    assert_int_equal(n, sizeof(want));
    assert_memory_equal(buf, want, n);
    free(buf);
    assert_int_equal(pl_txt_remove(t, "c"), PL_OK);
    assert_int_equal(pl_txt_remove(t, "a"), PL_OK);
    assert_int_equal(pl_txt_count(t), 0);
    assert_int_equal(pl_txt_remove(t, "a"), PL_ERR_NOT_FOUND);
    buf = encode_all(t, &n);
    assert_int_equal(n, 1);
    assert_int_equal(buf[0], 0);
    free(buf);
    pl_txt_free(t);
}

static void test_get_and_at_optional_outputs(void **state) {
    (void)state;
    pl_txt *t = new_txt();
    assert_int_equal(pl_txt_set_str(t, "a", "xyz"), PL_OK);
    assert_int_equal(pl_txt_get(t, "a", NULL, NULL), PL_OK);
    size_t len = 0;
    assert_int_equal(pl_txt_get(t, "a", NULL, &len), PL_OK);
    assert_int_equal(len, 3);
    assert_int_equal(pl_txt_get(t, "missing", NULL, NULL), PL_ERR_NOT_FOUND);
    assert_int_equal(pl_txt_at(t, 0, NULL, NULL, NULL), PL_OK);
    assert_int_equal(pl_txt_at(t, 1, NULL, NULL, NULL), PL_ERR_NOT_FOUND);
    assert_int_equal(pl_txt_at(t, SIZE_MAX, NULL, NULL, NULL), PL_ERR_NOT_FOUND);
    assert_int_equal(pl_txt_at(NULL, 0, NULL, NULL, NULL), PL_ERR_INVALID);
    pl_txt_free(t);
}

static void test_set_from_own_value(void **state) {
    (void)state;
    /* Setting a key from a value borrowed from the same record is safe. */
    pl_txt *t = new_txt();
    assert_int_equal(pl_txt_set_str(t, "a", "hello"), PL_OK);
    const void *v = NULL;
    size_t len = 0;
    assert_int_equal(pl_txt_get(t, "a", &v, &len), PL_OK);
    assert_int_equal(pl_txt_set(t, "a", v, len - 1), PL_OK);
    check_value(t, "a", "hell");
    assert_int_equal(pl_txt_get(t, "a", &v, &len), PL_OK);
    for (int i = 0; i < 20; i++) {
        char key[4] = {'k', (char)('a' + i), '\0', '\0'};
        assert_int_equal(pl_txt_set(t, key, v, len), PL_OK);
    }
    check_value(t, "kt", "hell");
    pl_txt_free(t);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_new_free_invalid),
        cmocka_unit_test(test_empty_record_encoding),
        cmocka_unit_test(test_known_wire_bytes),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_boolean_vs_empty),
        cmocka_unit_test(test_case_insensitive_replace),
        cmocka_unit_test(test_equal_case_insensitive_keys),
        cmocka_unit_test(test_invalid_keys),
        cmocka_unit_test(test_string_bound),
        cmocka_unit_test(test_record_bound),
        cmocka_unit_test(test_decode_too_large),
        cmocka_unit_test(test_decode_malformed),
        cmocka_unit_test(test_decode_empty_inputs),
        cmocka_unit_test(test_decode_skips),
        cmocka_unit_test(test_decode_first_wins),
        cmocka_unit_test(test_value_with_nul_and_equals),
        cmocka_unit_test(test_encode_buffer_sizes),
        cmocka_unit_test(test_dup),
        cmocka_unit_test(test_remove),
        cmocka_unit_test(test_get_and_at_optional_outputs),
        cmocka_unit_test(test_set_from_own_value),
    };
    return cmocka_run_group_tests_name("txt", tests, NULL, NULL);
}
