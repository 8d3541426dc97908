/* SPDX-License-Identifier: ISC */
/*
 * Unit tests of the handshake's crypto building blocks: CPace
 * (lib/core/cpace.c) and HKDF-SHA512 (lib/core/hkdf.c).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include <peerlink/common.h>

#include "crypto.h"

/* ---- helpers ---- */

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decode hex (whitespace ignored) into out; returns the byte count. */
static size_t unhex(const char *hex, uint8_t *out, size_t cap)
{
    size_t n = 0;
    int hi = -1;
    for (const char *p = hex; *p; p++) {
        if (*p == ' ' || *p == '\n')
            continue;
        int v = hexval(*p);
        assert_true(v >= 0);
        if (hi < 0) {
            hi = v;
        } else {
            assert_true(n < cap);
            out[n++] = (uint8_t)(hi << 4 | v);
            hi = -1;
        }
    }
    assert_true(hi < 0);
    return n;
}

/* Assert that buf[0..len) equals the hex string. */
static void assert_hex(const uint8_t *buf, size_t len, const char *hex)
{
    uint8_t want[512];
    size_t n = unhex(hex, want, sizeof want);
    assert_int_equal(len, n);
    assert_memory_equal(buf, want, n);
}

/* ---- CPace test vectors ----
 *
 * From draft-irtf-cfrg-cpace (CFRG), appendix "Test vector for CPace using
 * group ristretto255 and hash SHA-512" (suite CPACE-RISTR255-SHA512), as
 * copied into /work/shared/vectors/cpace-ristretto255-sha512.md. The hex
 * strings below are that file's values, byte for byte.
 */

static const uint8_t tc_PRS[] = "Password"; /* 8 bytes, without the NUL */
#define TC_PRS_LEN 8
static const char tc_CI_hex[] = "0b415f696e69746961746f720b425f726573706f6e646572";
static const char tc_sid_hex[] = "7e4b4791d6a8ef019b936c79fb7f2c57";
static const char tc_gen_string_hex[] = /* 170 bytes */
    "11435061636552697374726574746f3235350850617373776f726464"
    "00000000000000000000000000000000000000000000000000000000"
    "00000000000000000000000000000000000000000000000000000000"
    "00000000000000000000000000000000000000000000000000000000"
    "00000000000000000000000000000000180b415f696e69746961746f"
    "720b425f726573706f6e646572107e4b4791d6a8ef019b936c79fb7f"
    "2c57";
static const char tc_gen_hash_hex[] =
    "da6d3ddc8802fca9058755ffd3ebde08a9c2c74945901a258482a288"
    "b6663af06bf645c93cd1c51512307199c80e84908916d983b34af772"
    "05f90851a657ee27";
static const char tc_g_hex[] =
    "222b6b195fe84b1652badb6f6a3ae3d24341e7306967f0b8115b40d5698c7e56";
static const uint8_t tc_ADa[] = {0x41, 0x44, 0x61}; /* "ADa" */
static const uint8_t tc_ADb[] = {0x41, 0x44, 0x62}; /* "ADb" */
static const char tc_ya_hex[] =
    "da3d23700a9e5699258aef94dc060dfda5ebb61f02a5ea77fad53f4ff0976d08";
static const char tc_Ya_hex[] =
    "d6bac480f2c386c394efc7c47adb9925dcd2630b64f240c50f8d0eec482b9157";
static const char tc_yb_hex[] =
    "d2316b454718c35362d83d69df6320f38578ed5984651435e2949762d900b80d";
static const char tc_Yb_hex[] =
    "3ea7e0b19560d7c0b0f5734f63b955286dfa8232b5ebe63324e2d9e7433f7258";
static const char tc_K_hex[] =
    "80b69a8a76457ab6a4d7f887a4bf6b55a2f80ac19c333f917a05fc9887c8b40f";
static const char tc_isk_input_hex[] = /* lv_cat(DSI,sid,K)||transcript_ir, 146 bytes */
    "15435061636552697374726574746f3235355f49534b107e4b4791d6"
    "a8ef019b936c79fb7f2c572080b69a8a76457ab6a4d7f887a4bf6b55"
    "a2f80ac19c333f917a05fc9887c8b40f20d6bac480f2c386c394efc7"
    "c47adb9925dcd2630b64f240c50f8d0eec482b915703414461203ea7"
    "e0b19560d7c0b0f5734f63b955286dfa8232b5ebe63324e2d9e7433f"
    "725803414462";
static const char tc_ISK_IR_hex[] =
    "b69effbf61b51d56401c0f65601abe428de8206feaaf0e32198896dc"
    "ae7b35cd2b38950a39dfd5d4a79164614c2984f7daa460b588c1e80c"
    "3fa2068af7900447";
/* scalar_mult test cases */
static const char tc_s_hex[] =
    "7cd0e075fa7955ba52c02759a6c90dbbfc10e6d40aea8d283e407d88cf538a05";
static const char tc_X_hex[] =
    "2c3c6b8c4f3800e7aef6864025b4ed79bd599117e427c41bd47d93d654b4a51c";
static const char tc_sX_hex[] =
    "7c13645fe790a468f62c39beb7388e541d8405d1ade69d1778c5fe3e7f6b600e";
static const char tc_Y_i1_hex[] =
    "2b3c6b8c4f3800e7aef6864025b4ed79bd599117e427c41bd47d93d654b4a51c";

typedef struct tc {
    uint8_t CI[24], sid[16], g[32], ya[32], Ya[32], yb[32], Yb[32], K[32], isk[64];
    uint8_t s[32], X[32], sX[32], Y_i1[32];
} tc;

static void load_tc(tc *t)
{
    assert_int_equal(unhex(tc_CI_hex, t->CI, sizeof t->CI), 24);
    assert_int_equal(unhex(tc_sid_hex, t->sid, sizeof t->sid), 16);
    assert_int_equal(unhex(tc_g_hex, t->g, sizeof t->g), 32);
    assert_int_equal(unhex(tc_ya_hex, t->ya, sizeof t->ya), 32);
    assert_int_equal(unhex(tc_Ya_hex, t->Ya, sizeof t->Ya), 32);
    assert_int_equal(unhex(tc_yb_hex, t->yb, sizeof t->yb), 32);
    assert_int_equal(unhex(tc_Yb_hex, t->Yb, sizeof t->Yb), 32);
    assert_int_equal(unhex(tc_K_hex, t->K, sizeof t->K), 32);
    assert_int_equal(unhex(tc_ISK_IR_hex, t->isk, sizeof t->isk), 64);
    assert_int_equal(unhex(tc_s_hex, t->s, sizeof t->s), 32);
    assert_int_equal(unhex(tc_X_hex, t->X, sizeof t->X), 32);
    assert_int_equal(unhex(tc_sX_hex, t->sX, sizeof t->sX), 32);
    assert_int_equal(unhex(tc_Y_i1_hex, t->Y_i1, sizeof t->Y_i1), 32);
}

/* generator_string(DSI, PRS, CI, sid, 128) built with lv_cat: the 170 bytes
 * of the vector, whose SHA-512 and from_hash give the vector's hash and g. */
static void test_cpace_generator_string(void **state)
{
    (void)state;
    tc t;
    load_tc(&t);
    static const uint8_t zpad[100];
    uint8_t s[256];
    size_t n = 0;
    n = pl_cpace_lv_cat(s, sizeof s, n, (const uint8_t *)"CPaceRistretto255", 17);
    n = pl_cpace_lv_cat(s, sizeof s, n, tc_PRS, TC_PRS_LEN);
    n = pl_cpace_lv_cat(s, sizeof s, n, zpad, sizeof zpad); /* ZPAD length: 100 */
    n = pl_cpace_lv_cat(s, sizeof s, n, t.CI, sizeof t.CI);
    n = pl_cpace_lv_cat(s, sizeof s, n, t.sid, sizeof t.sid);
    assert_int_equal(n, 170);
    assert_hex(s, n, tc_gen_string_hex);

    uint8_t h[64], g[32];
    crypto_hash_sha512(h, s, n);
    assert_hex(h, sizeof h, tc_gen_hash_hex);
    crypto_core_ristretto255_from_hash(g, h);
    assert_memory_equal(g, t.g, 32);
}

static void test_cpace_generator(void **state)
{
    (void)state;
    tc t;
    load_tc(&t);
    uint8_t g[32];
    assert_int_equal(pl_cpace_generator(tc_PRS, TC_PRS_LEN, t.CI, sizeof t.CI, t.sid,
                                        sizeof t.sid, g),
                     PL_OK);
    assert_memory_equal(g, t.g, 32);
}

static void test_cpace_messages(void **state)
{
    (void)state;
    tc t;
    load_tc(&t);
    uint8_t y[32], Y[32];
    assert_int_equal(pl_cpace_message(t.g, t.ya, y, Y), PL_OK);
    assert_memory_equal(y, t.ya, 32);
    assert_memory_equal(Y, t.Ya, 32);
    assert_int_equal(pl_cpace_message(t.g, t.yb, y, Y), PL_OK);
    assert_memory_equal(y, t.yb, 32);
    assert_memory_equal(Y, t.Yb, 32);
    /* y may alias y_out */
    memcpy(y, t.ya, 32);
    assert_int_equal(pl_cpace_message(t.g, y, y, Y), PL_OK);
    assert_memory_equal(Y, t.Ya, 32);
}

/* K = scalar_mult_vfy(ya, Yb) = scalar_mult_vfy(yb, Ya): the vector's K, via
 * libsodium (pl_cpace_isk_ir does not expose K; its ISK implies it). */
static void test_cpace_K(void **state)
{
    (void)state;
    tc t;
    load_tc(&t);
    uint8_t K[32];
    assert_int_equal(crypto_scalarmult_ristretto255(K, t.ya, t.Yb), 0);
    assert_memory_equal(K, t.K, 32);
    assert_int_equal(crypto_scalarmult_ristretto255(K, t.yb, t.Ya), 0);
    assert_memory_equal(K, t.K, 32);
}

/* The ISK hash input built with lv_cat: the vector's 146 bytes. */
static void test_cpace_isk_input(void **state)
{
    (void)state;
    tc t;
    load_tc(&t);
    uint8_t s[256], h[64];
    size_t n = 0;
    n = pl_cpace_lv_cat(s, sizeof s, n, (const uint8_t *)"CPaceRistretto255_ISK", 21);
    n = pl_cpace_lv_cat(s, sizeof s, n, t.sid, sizeof t.sid);
    n = pl_cpace_lv_cat(s, sizeof s, n, t.K, sizeof t.K);
    size_t prefix = n;
    n = pl_cpace_lv_cat(s, sizeof s, n, t.Ya, 32);
    n = pl_cpace_lv_cat(s, sizeof s, n, tc_ADa, sizeof tc_ADa);
    n = pl_cpace_lv_cat(s, sizeof s, n, t.Yb, 32);
    n = pl_cpace_lv_cat(s, sizeof s, n, tc_ADb, sizeof tc_ADb);
    assert_int_equal(n - prefix, 74); /* transcript_ir */
    assert_int_equal(n, 146);
    assert_hex(s, n, tc_isk_input_hex);
    crypto_hash_sha512(h, s, n);
    assert_memory_equal(h, t.isk, 64);
}

/* ISK_IR from both sides: initiator (ya, Yb), responder (yb, Ya). */
static void test_cpace_isk_ir(void **state)
{
    (void)state;
    tc t;
    load_tc(&t);
    uint8_t isk_a[64], isk_b[64];
    assert_int_equal(pl_cpace_isk_ir(t.ya, t.Yb, t.sid, sizeof t.sid, t.Ya, tc_ADa,
                                     sizeof tc_ADa, t.Yb, tc_ADb, sizeof tc_ADb, isk_a),
                     PL_OK);
    assert_memory_equal(isk_a, t.isk, 64);
    assert_int_equal(pl_cpace_isk_ir(t.yb, t.Ya, t.sid, sizeof t.sid, t.Ya, tc_ADa,
                                     sizeof tc_ADa, t.Yb, tc_ADb, sizeof tc_ADb, isk_b),
                     PL_OK);
    assert_memory_equal(isk_b, t.isk, 64);

    /* The transcript order matters: swapped roles give another ISK. */
    assert_int_equal(pl_cpace_isk_ir(t.ya, t.Yb, t.sid, sizeof t.sid, t.Yb, tc_ADb,
                                     sizeof tc_ADb, t.Ya, tc_ADa, sizeof tc_ADa, isk_a),
                     PL_OK);
    assert_memory_not_equal(isk_a, t.isk, 64);
    /* Another sid, another ISK. */
    assert_int_equal(pl_cpace_isk_ir(t.ya, t.Yb, t.sid, 15, t.Ya, tc_ADa, sizeof tc_ADa, t.Yb,
                                     tc_ADb, sizeof tc_ADb, isk_a),
                     PL_OK);
    assert_memory_not_equal(isk_a, t.isk, 64);
}

/* "Test case for scalar_mult with valid inputs": libsodium's
 * crypto_scalarmult_ristretto255 (our scalar_mult_vfy) matches. */
static void test_cpace_scalar_mult_valid(void **state)
{
    (void)state;
    tc t;
    load_tc(&t);
    uint8_t out[32];
    assert_int_equal(crypto_scalarmult_ristretto255(out, t.s, t.X), 0);
    assert_memory_equal(out, t.sX, 32);
    /* X as a peer message is accepted by pl_cpace_isk_ir. */
    uint8_t isk[64];
    assert_int_equal(pl_cpace_isk_ir(t.s, t.X, t.sid, sizeof t.sid, t.X, NULL, 0, t.X, NULL, 0,
                                     isk),
                     PL_OK);
}

/* "Invalid inputs for scalar_mult_vfy": Y_i1 (does not decode) and
 * Y_i2 == G.I (all zero) must abort the protocol. */
static void test_cpace_invalid_points(void **state)
{
    (void)state;
    tc t;
    load_tc(&t);
    static const uint8_t identity[32];
    uint8_t out[32], isk[64];

    assert_int_equal(crypto_scalarmult_ristretto255(out, t.s, t.Y_i1), -1);
    assert_int_equal(crypto_scalarmult_ristretto255(out, t.s, identity), -1);

    assert_int_equal(pl_cpace_isk_ir(t.s, t.Y_i1, t.sid, sizeof t.sid, t.Ya, tc_ADa,
                                     sizeof tc_ADa, t.Y_i1, tc_ADb, sizeof tc_ADb, isk),
                     PL_ERR_PROTOCOL);
    assert_int_equal(pl_cpace_isk_ir(t.s, identity, t.sid, sizeof t.sid, t.Ya, tc_ADa,
                                     sizeof tc_ADa, identity, tc_ADb, sizeof tc_ADb, isk),
                     PL_ERR_PROTOCOL);
    /* With the vector's own scalars too. */
    assert_int_equal(pl_cpace_isk_ir(t.ya, t.Y_i1, t.sid, sizeof t.sid, t.Ya, tc_ADa,
                                     sizeof tc_ADa, t.Y_i1, tc_ADb, sizeof tc_ADb, isk),
                     PL_ERR_PROTOCOL);
    assert_int_equal(pl_cpace_isk_ir(t.yb, identity, t.sid, sizeof t.sid, identity, tc_ADa,
                                     sizeof tc_ADa, t.Yb, tc_ADb, sizeof tc_ADb, isk),
                     PL_ERR_PROTOCOL);

    /* A zero scalar makes our own message the identity: refused. */
    static const uint8_t zero[32];
    uint8_t y[32], Y[32];
    assert_int_equal(pl_cpace_message(t.g, zero, y, Y), PL_ERR_PROTOCOL);
    /* So does a generator that does not decode. */
    assert_int_equal(pl_cpace_message(t.Y_i1, t.ya, y, Y), PL_ERR_PROTOCOL);
}

/* Run both parties with random scalars; returns whether the ISKs match. */
static int run_pair(const char *code_a, const char *code_b)
{
    static const uint8_t ci[] = "peerlink-test-ci";
    uint8_t sid[16];
    randombytes_buf(sid, sizeof sid);
    uint8_t ga[32], gb[32], ya[32], yb[32], Ya[32], Yb[32], isk_a[64], isk_b[64];

    assert_int_equal(pl_cpace_generator((const uint8_t *)code_a, strlen(code_a), ci,
                                        sizeof ci - 1, sid, sizeof sid, ga),
                     PL_OK);
    assert_int_equal(pl_cpace_generator((const uint8_t *)code_b, strlen(code_b), ci,
                                        sizeof ci - 1, sid, sizeof sid, gb),
                     PL_OK);
    assert_int_equal(pl_cpace_message(ga, NULL, ya, Ya), PL_OK);
    assert_int_equal(pl_cpace_message(gb, NULL, yb, Yb), PL_OK);
    assert_memory_not_equal(ya, yb, 32);

    assert_int_equal(pl_cpace_isk_ir(ya, Yb, sid, sizeof sid, Ya, tc_ADa, sizeof tc_ADa, Yb,
                                     tc_ADb, sizeof tc_ADb, isk_a),
                     PL_OK);
    assert_int_equal(pl_cpace_isk_ir(yb, Ya, sid, sizeof sid, Ya, tc_ADa, sizeof tc_ADa, Yb,
                                     tc_ADb, sizeof tc_ADb, isk_b),
                     PL_OK);
    sodium_memzero(ya, sizeof ya);
    sodium_memzero(yb, sizeof yb);
    return memcmp(isk_a, isk_b, 64) == 0;
}

static void test_cpace_round_trip(void **state)
{
    (void)state;
    for (int i = 0; i < 8; i++)
        assert_true(run_pair("123-456", "123-456"));
    for (int i = 0; i < 8; i++)
        assert_false(run_pair("123-456", "123-457"));
    assert_false(run_pair("123-456", ""));
}

static void test_cpace_lv_cat(void **state)
{
    (void)state;
    uint8_t buf[300];
    uint8_t part[200];
    memset(part, 0xab, sizeof part);

    /* empty part: just the length byte */
    assert_int_equal(pl_cpace_lv_cat(buf, sizeof buf, 0, NULL, 0), 1);
    assert_int_equal(buf[0], 0);
    /* 127: one length byte; 128: LEB128 0x80 0x01; 200: 0xc8 0x01 */
    assert_int_equal(pl_cpace_lv_cat(buf, sizeof buf, 0, part, 127), 128);
    assert_int_equal(buf[0], 0x7f);
    assert_int_equal(pl_cpace_lv_cat(buf, sizeof buf, 0, part, 128), 130);
    assert_int_equal(buf[0], 0x80);
    assert_int_equal(buf[1], 0x01);
    assert_int_equal(buf[2], 0xab);
    assert_int_equal(pl_cpace_lv_cat(buf, sizeof buf, 0, part, 200), 202);
    assert_int_equal(buf[0], 0xc8);
    assert_int_equal(buf[1], 0x01);
    /* appends at off */
    assert_int_equal(pl_cpace_lv_cat(buf, sizeof buf, 5, part, 3), 9);
    assert_int_equal(buf[5], 3);
    /* exactly fits, one short, off past cap */
    assert_int_equal(pl_cpace_lv_cat(buf, 10, 6, part, 3), 10);
    assert_int_equal(pl_cpace_lv_cat(buf, 9, 6, part, 3), 0);
    assert_int_equal(pl_cpace_lv_cat(buf, 130, 0, part, 128), 130);
    assert_int_equal(pl_cpace_lv_cat(buf, 129, 0, part, 128), 0);
    assert_int_equal(pl_cpace_lv_cat(buf, 10, 11, part, 0), 0);
    assert_int_equal(pl_cpace_lv_cat(buf, 10, 10, part, 0), 0);
    /* huge length: no overflow */
    assert_int_equal(pl_cpace_lv_cat(buf, sizeof buf, 0, part, SIZE_MAX), 0);
    assert_int_equal(pl_cpace_lv_cat(buf, sizeof buf, 10, part, SIZE_MAX - 5), 0);
    /* NULL */
    assert_int_equal(pl_cpace_lv_cat(NULL, 10, 0, part, 1), 0);
    assert_int_equal(pl_cpace_lv_cat(buf, 10, 0, NULL, 1), 0);
}

static void test_cpace_bounds(void **state)
{
    (void)state;
    static uint8_t big[1025];
    memset(big, 'x', sizeof big);
    uint8_t g[32], y[32], Y[32], isk[64];
    tc t;
    load_tc(&t);

    /* at the bounds: accepted */
    assert_int_equal(pl_cpace_generator(big, 1024, big, 1024, big, 255, g), PL_OK);
    assert_int_equal(pl_cpace_message(g, NULL, y, Y), PL_OK);
    assert_int_equal(pl_cpace_generator(NULL, 0, NULL, 0, NULL, 0, g), PL_OK);
    assert_int_equal(pl_cpace_generator(big, 200, NULL, 0, NULL, 0, g), PL_OK); /* no zpad */
    /* over: PL_ERR_INVALID */
    assert_int_equal(pl_cpace_generator(big, 1025, big, 1, big, 1, g), PL_ERR_INVALID);
    assert_int_equal(pl_cpace_generator(big, 1, big, 1025, big, 1, g), PL_ERR_INVALID);
    assert_int_equal(pl_cpace_generator(big, 1, big, 1, big, 256, g), PL_ERR_INVALID);
    assert_int_equal(pl_cpace_generator(big, SIZE_MAX, big, 1, big, 1, g), PL_ERR_INVALID);
    /* NULL with a length, NULL output */
    assert_int_equal(pl_cpace_generator(NULL, 1, big, 1, big, 1, g), PL_ERR_INVALID);
    assert_int_equal(pl_cpace_generator(big, 1, big, 1, big, 1, NULL), PL_ERR_INVALID);
    assert_int_equal(pl_cpace_message(NULL, NULL, y, Y), PL_ERR_INVALID);
    assert_int_equal(pl_cpace_message(g, NULL, NULL, Y), PL_ERR_INVALID);
    assert_int_equal(pl_cpace_message(g, NULL, y, NULL), PL_ERR_INVALID);

    /* isk: sid at / over its bound, large AD (not bounded: hashed as a stream) */
    assert_int_equal(pl_cpace_isk_ir(t.ya, t.Yb, big, 255, t.Ya, big, sizeof big, t.Yb, big,
                                     sizeof big, isk),
                     PL_OK);
    assert_int_equal(pl_cpace_isk_ir(t.ya, t.Yb, big, 256, t.Ya, NULL, 0, t.Yb, NULL, 0, isk),
                     PL_ERR_INVALID);
    assert_int_equal(pl_cpace_isk_ir(t.ya, t.Yb, NULL, 1, t.Ya, NULL, 0, t.Yb, NULL, 0, isk),
                     PL_ERR_INVALID);
    assert_int_equal(pl_cpace_isk_ir(t.ya, t.Yb, NULL, 0, t.Ya, NULL, 1, t.Yb, NULL, 0, isk),
                     PL_ERR_INVALID);
    assert_int_equal(pl_cpace_isk_ir(t.ya, t.Yb, NULL, 0, t.Ya, NULL, 0, t.Yb, NULL, 0, NULL),
                     PL_ERR_INVALID);
    assert_int_equal(pl_cpace_isk_ir(NULL, t.Yb, NULL, 0, t.Ya, NULL, 0, t.Yb, NULL, 0, isk),
                     PL_ERR_INVALID);
    assert_int_equal(pl_cpace_isk_ir(t.ya, NULL, NULL, 0, t.Ya, NULL, 0, t.Yb, NULL, 0, isk),
                     PL_ERR_INVALID);
}

/* ---- HKDF-SHA512 ----
 *
 * RFC 5869 gives no SHA-512 vectors. Every expected value below was
 * computed independently with Python 3's hmac and hashlib modules (a
 * straightforward RFC 5869 Extract/Expand over HMAC-SHA512), not with
 * this code. info = label || ctx.
 */

static void test_hkdf_salt_ikm_label_ctx(void **state)
{
    (void)state;
    uint8_t prk[64], okm[80];
    pl_hkdf_extract((const uint8_t *)"salt", 4, (const uint8_t *)"ikm", 3, prk);
    assert_hex(prk, sizeof prk,
               "56cc15664b2dcaa57ae910751a1c03a80768a7abb0d4bf491d99d7949bc2c3a7"
               "7d423e8b8c91379f35b9966744d12fbb4440f42bbaa0159fc78cd635983cb506");
    assert_int_equal(pl_hkdf_expand(prk, sizeof prk, "label", (const uint8_t *)"ctx", 3, okm,
                                    sizeof okm),
                     PL_OK);
    assert_hex(okm, sizeof okm,
               "6ac76aaa09577135105bdfe6a95d8f42715436d441656ca86d5909458fc47b31"
               "1d0b3ce01cebedae445fb6df398e780c1499548f45309aefaed1d5c90536c3b8"
               "9c3f2653502c289b33b23081d56e382c");
    /* The same info split differently between label and ctx: same output. */
    uint8_t okm2[80];
    assert_int_equal(pl_hkdf_expand(prk, sizeof prk, "labelctx", NULL, 0, okm2, sizeof okm2),
                     PL_OK);
    assert_memory_equal(okm, okm2, sizeof okm);
    /* A prefix of the output is the shorter output. */
    assert_int_equal(pl_hkdf_expand(prk, sizeof prk, "label", (const uint8_t *)"ctx", 3, okm2, 17),
                     PL_OK);
    assert_memory_equal(okm, okm2, 17);
}

/* RFC 5869 test case 1's inputs, with SHA-512 (values from Python). */
static void test_hkdf_rfc5869_tc1_inputs(void **state)
{
    (void)state;
    uint8_t ikm[22], salt[13], info[10], prk[64], okm[42];
    memset(ikm, 0x0b, sizeof ikm);
    for (size_t i = 0; i < sizeof salt; i++)
        salt[i] = (uint8_t)i;
    for (size_t i = 0; i < sizeof info; i++)
        info[i] = (uint8_t)(0xf0 + i);
    pl_hkdf_extract(salt, sizeof salt, ikm, sizeof ikm, prk);
    assert_hex(prk, sizeof prk,
               "665799823737ded04a88e47e54a5890bb2c3d247c7a4254a8e61350723590a26"
               "c36238127d8661b88cf80ef802d57e2f7cebcf1e00e083848be19929c61b4237");
    assert_int_equal(pl_hkdf_expand(prk, sizeof prk, "", info, sizeof info, okm, sizeof okm),
                     PL_OK);
    assert_hex(okm, sizeof okm,
               "832390086cda71fb47625bb5ceb168e4c8e26a1a16ed34d9fc7fe92c14815793"
               "38da362cb8d9f925d7cb");
}

/* RFC 5869 test case 3's inputs (empty salt and info), with SHA-512
 * (values from Python). An empty salt equals 64 zero bytes. */
static void test_hkdf_rfc5869_tc3_inputs(void **state)
{
    (void)state;
    uint8_t ikm[22], prk[64], prk0[64], okm[42];
    static const uint8_t zeros[64];
    memset(ikm, 0x0b, sizeof ikm);
    /* Empty salt given as a non-NULL pointer: hkdf.c passes salt straight
     * to crypto_auth_hmacsha512_init, whose key argument libsodium declares
     * nonnull, so (NULL, 0) is undefined behaviour there (UBSan flags it). */
    pl_hkdf_extract(zeros, 0, ikm, sizeof ikm, prk);
    assert_hex(prk, sizeof prk,
               "fd200c4987ac491313bd4a2a13287121247239e11c9ef82802044b66ef357e5b"
               "194498d0682611382348572a7b1611de54764094286320578a863f36562b0df6");
    pl_hkdf_extract(zeros, sizeof zeros, ikm, sizeof ikm, prk0);
    assert_memory_equal(prk, prk0, 64);
    assert_int_equal(pl_hkdf_expand(prk, sizeof prk, "", NULL, 0, okm, sizeof okm), PL_OK);
    assert_hex(okm, sizeof okm,
               "f5fa02b18298a72a8c23898a8703472c6eb179dc204c03425c970e3b164bf90f"
               "ff22d04836d0e2343bac");
}

/* A PRK shorter than 64 bytes (16 x 'k'), info "x", 130 bytes (3 blocks);
 * value from Python. */
static void test_hkdf_short_prk(void **state)
{
    (void)state;
    uint8_t prk[16], okm[130];
    memset(prk, 'k', sizeof prk);
    assert_int_equal(pl_hkdf_expand(prk, sizeof prk, "x", NULL, 0, okm, sizeof okm), PL_OK);
    assert_hex(okm, sizeof okm,
               "94deb38a8512292902aedbd68db7e1525b1400b495eef85a4e2b7610b5ab40af"
               "9973eb62b58880da567b93c59d16b9f7b53e9fcda053a9f58b696ea35194612f"
               "96acafaf3df9e47d78cafb9e533e56e1187f28ec3bd42ad8cd1c14786b78d1a6"
               "14114ae6920155546936165a69737707d6b6f6ca75eafc6d631ed3c486f9ccb5"
               "d70e");
}

/* out_len: 255 * 64 is the maximum (its SHA-512 from Python, for the tc3
 * PRK and empty info); one more is rejected. */
static void test_hkdf_max_len(void **state)
{
    (void)state;
    uint8_t ikm[22], prk[64], h[64];
    memset(ikm, 0x0b, sizeof ikm);
    pl_hkdf_extract(ikm, 0, ikm, sizeof ikm, prk); /* empty salt, non-NULL pointer */

    uint8_t *okm = malloc(255 * 64 + 1);
    assert_non_null(okm);
    assert_int_equal(pl_hkdf_expand(prk, sizeof prk, "", NULL, 0, okm, 255 * 64), PL_OK);
    crypto_hash_sha512(h, okm, 255 * 64);
    assert_hex(h, sizeof h,
               "d3b6867f2c2f1874fdb8f73ec2b540d09e6d52d3f9c380a288ad62b544efc809"
               "d7ff5365e5ea506f052790444fc5c0bf669789ad98620663c3655a12e6b9a315");
    assert_int_equal(pl_hkdf_expand(prk, sizeof prk, "", NULL, 0, okm, 255 * 64 + 1),
                     PL_ERR_INVALID);
    assert_int_equal(pl_hkdf_expand(prk, sizeof prk, "", NULL, 0, okm, SIZE_MAX),
                     PL_ERR_INVALID);
    free(okm);

    /* other invalid arguments */
    uint8_t out[8];
    assert_int_equal(pl_hkdf_expand(NULL, 64, "", NULL, 0, out, 8), PL_ERR_INVALID);
    assert_int_equal(pl_hkdf_expand(prk, 64, NULL, NULL, 0, out, 8), PL_ERR_INVALID);
    assert_int_equal(pl_hkdf_expand(prk, 64, "", NULL, 1, out, 8), PL_ERR_INVALID);
    assert_int_equal(pl_hkdf_expand(prk, 64, "", NULL, 0, NULL, 8), PL_ERR_INVALID);
    assert_int_equal(pl_hkdf_expand(prk, 64, "", NULL, 0, NULL, 0), PL_OK);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cpace_generator_string),
        cmocka_unit_test(test_cpace_generator),
        cmocka_unit_test(test_cpace_messages),
        cmocka_unit_test(test_cpace_K),
        cmocka_unit_test(test_cpace_isk_input),
        cmocka_unit_test(test_cpace_isk_ir),
        cmocka_unit_test(test_cpace_scalar_mult_valid),
        cmocka_unit_test(test_cpace_invalid_points),
        cmocka_unit_test(test_cpace_round_trip),
        cmocka_unit_test(test_cpace_lv_cat),
        cmocka_unit_test(test_cpace_bounds),
        cmocka_unit_test(test_hkdf_salt_ikm_label_ctx),
        cmocka_unit_test(test_hkdf_rfc5869_tc1_inputs),
        cmocka_unit_test(test_hkdf_rfc5869_tc3_inputs),
        cmocka_unit_test(test_hkdf_short_prk),
        cmocka_unit_test(test_hkdf_max_len),
    };
    return cmocka_run_group_tests_name("crypto", tests, NULL, NULL);
}
