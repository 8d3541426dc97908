/* SPDX-License-Identifier: ISC */
/* Unit tests of the record layer (lib/core/record.c). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include <peerlink/common.h>

#include "buf.h"
#include "crypto.h"
#include "frame.h"
#include "record.h"

/* ---- helpers ---- */

/* 0x00..0x1f */
static void test_key(uint8_t key[PL_RECORD_KEY])
{
    for (int i = 0; i < PL_RECORD_KEY; i++)
        key[i] = (uint8_t)i;
}

/* The DATA frame of "hello". */
static const uint8_t hello_frame[] = {0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05,
                                      0x68, 0x65, 0x6c, 0x6c, 0x6f};

/*
 * The sealed RECORD frames of hello_frame under key 0x00..0x1f at counter
 * 0 and 1. Computed independently of libsodium with /usr/bin/python3 and
 * the `cryptography` module (48.0.0, OpenSSL backend):
 *
 *   hdr   = bytes([1, 3, 0, 0]) + (len(inner) + 16).to_bytes(4, "big")
 *   nonce = b"\0" * 4 + counter.to_bytes(8, "big")
 *   rec   = hdr + ChaCha20Poly1305(key).encrypt(nonce, inner, hdr)
 *
 * Counter 1 pins the big-endian nonce layout (counter 0 cannot).
 */
static const uint8_t hello_rec0[] = {
    0x01, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1d, 0x19, 0xba, 0x42, 0x31, 0xad,
    0xe6, 0xa6, 0xd4, 0x7b, 0x04, 0x30, 0x0d, 0xc0, 0x2f, 0x85, 0x22, 0x05, 0x1e,
    0x05, 0xab, 0xcc, 0x7a, 0xa6, 0xaa, 0xb5, 0x0b, 0x26, 0x70, 0x3d};
static const uint8_t hello_rec1[] = {
    0x01, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1d, 0x68, 0x5e, 0x7c, 0xd9, 0x31,
    0x0a, 0xb8, 0x7f, 0x45, 0x14, 0x12, 0x43, 0xdc, 0x6d, 0x24, 0x29, 0xae, 0x35,
    0xce, 0x63, 0x7e, 0xcc, 0xfe, 0x9b, 0xbe, 0x22, 0x40, 0x29, 0x6c};

/* HKDF-Expand(SHA-512, key 0x00..0x1f, info "peerlink rekey", 32), same
 * python3 + cryptography: HKDFExpand(hashes.SHA512(), 32, b"peerlink rekey"). */
static const uint8_t rekeyed_key1[] = {
    0x3b, 0xfc, 0x8a, 0x85, 0x89, 0x82, 0x07, 0x93, 0x4b, 0x1f, 0x67, 0x80, 0xad, 0x1c, 0xaf, 0x2a,
    0x04, 0xbf, 0xb9, 0x8f, 0x27, 0x41, 0xb7, 0xab, 0x7d, 0x2d, 0x3f, 0xff, 0x80, 0x48, 0xa9, 0xc9};

/* A RECORD frame (header + payload) as a standalone copy. */
typedef struct rec {
    uint8_t *p;
    size_t len;
} rec;

static rec seal_one(pl_record_dir *d, const uint8_t *inner, size_t inner_len)
{
    pl_buf b;
    rec r;
    pl_buf_init(&b);
    assert_int_equal(pl_record_seal(d, inner, inner_len, &b), PL_OK);
    assert_int_equal(pl_buf_size(&b), PL_FRAME_HEADER_SIZE + inner_len + PL_RECORD_TAG);
    r.len = pl_buf_size(&b);
    r.p = malloc(r.len);
    assert_non_null(r.p);
    memcpy(r.p, pl_buf_head(&b), r.len);
    pl_buf_clear(&b);
    return r;
}

/* Open r with d; on PL_OK check the plaintext against want. */
static int open_one(pl_record_dir *d, const rec *r, const uint8_t *want, size_t want_len)
{
    size_t plen = r->len - PL_FRAME_HEADER_SIZE;
    uint8_t *out = malloc(plen > 0 ? plen : 1);
    size_t out_len = 12345;
    int rc;
    assert_non_null(out);
    rc = pl_record_open(d, r->p, r->p + PL_FRAME_HEADER_SIZE, plen, out, &out_len);
    if (rc == PL_OK) {
        assert_int_equal(out_len, want_len);
        if (want_len > 0)
            assert_memory_equal(out, want, want_len);
    } else {
        assert_int_equal(out_len, 0);
    }
    free(out);
    return rc;
}

static void rec_free(rec *r)
{
    free(r->p);
    r->p = NULL;
}

/* An inner DATA frame carrying n bytes of a pattern. */
static uint8_t *inner_frame(size_t n, uint8_t seed, size_t *len)
{
    pl_buf b;
    uint8_t *p = malloc(n > 0 ? n : 1), *f;
    assert_non_null(p);
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(seed + i * 7);
    pl_buf_init(&b);
    assert_int_equal(pl_frame_encode_message(&b, PL_FRAME_DATA, p, n), PL_OK);
    *len = pl_buf_size(&b);
    f = malloc(*len);
    assert_non_null(f);
    memcpy(f, pl_buf_head(&b), *len);
    pl_buf_clear(&b);
    free(p);
    return f;
}

static int all_zero(const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i] != 0)
            return 0;
    return 1;
}

/* ---- tests ---- */

static void test_round_trip(void **state)
{
    uint8_t key[PL_RECORD_KEY];
    pl_record_dir tx, rx;
    (void)state;
    test_key(key);
    pl_record_init(&tx, key, 0);
    pl_record_init(&rx, key, 0);
    assert_int_equal(tx.rekey_interval, PL_RECORD_REKEY_INTERVAL);
    assert_int_equal(tx.counter, 0);
    assert_int_equal(tx.epoch, 0);
    assert_true(tx.ready);

    static const size_t sizes[] = {0, 8, 13, 100, 1000, PL_RECORD_MAX_INNER};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        uint8_t *inner = malloc(sizes[i] > 0 ? sizes[i] : 1);
        rec r;
        pl_frame_header h;
        assert_non_null(inner);
        for (size_t j = 0; j < sizes[i]; j++)
            inner[j] = (uint8_t)(j * 31 + i);
        r = seal_one(&tx, inner, sizes[i]);
        assert_int_equal(pl_frame_header_decode(r.p, &h), PL_OK);
        assert_int_equal(h.version, PL_FRAME_VERSION);
        assert_int_equal(h.type, PL_FRAME_RECORD);
        assert_int_equal(h.flags, 0);
        assert_int_equal(h.length, sizes[i] + PL_RECORD_TAG);
        assert_int_equal(open_one(&rx, &r, inner, sizes[i]), PL_OK);
        assert_int_equal(tx.counter, i + 1);
        assert_int_equal(rx.counter, i + 1);
        rec_free(&r);
        free(inner);
    }
    pl_record_clear(&tx);
    pl_record_clear(&rx);
}

/* Seal appends after what out already holds. */
static void test_seal_appends(void **state)
{
    uint8_t key[PL_RECORD_KEY];
    pl_record_dir tx;
    pl_buf b;
    (void)state;
    test_key(key);
    pl_record_init(&tx, key, 0);
    pl_buf_init(&b);
    assert_int_equal(pl_buf_append(&b, "xyz", 3), PL_OK);
    assert_int_equal(pl_record_seal(&tx, hello_frame, sizeof hello_frame, &b), PL_OK);
    assert_int_equal(pl_record_seal(&tx, hello_frame, sizeof hello_frame, &b), PL_OK);
    assert_int_equal(pl_buf_size(&b), 3 + sizeof hello_rec0 + sizeof hello_rec1);
    assert_memory_equal(pl_buf_head(&b), "xyz", 3);
    assert_memory_equal(pl_buf_head(&b) + 3, hello_rec0, sizeof hello_rec0);
    assert_memory_equal(pl_buf_head(&b) + 3 + sizeof hello_rec0, hello_rec1, sizeof hello_rec1);
    pl_buf_clear(&b);
    pl_record_clear(&tx);
}

static void test_vector(void **state)
{
    uint8_t key[PL_RECORD_KEY];
    pl_record_dir tx, rx;
    rec r0, r1, v0 = {(uint8_t *)hello_rec0, sizeof hello_rec0},
                v1 = {(uint8_t *)hello_rec1, sizeof hello_rec1};
    (void)state;
    test_key(key);
    pl_record_init(&tx, key, 0);
    r0 = seal_one(&tx, hello_frame, sizeof hello_frame);
    r1 = seal_one(&tx, hello_frame, sizeof hello_frame);
    assert_int_equal(r0.len, sizeof hello_rec0);
    assert_memory_equal(r0.p, hello_rec0, sizeof hello_rec0);
    assert_int_equal(r1.len, sizeof hello_rec1);
    assert_memory_equal(r1.p, hello_rec1, sizeof hello_rec1);

    /* The pinned bytes open too. */
    pl_record_init(&rx, key, 0);
    assert_int_equal(open_one(&rx, &v0, hello_frame, sizeof hello_frame), PL_OK);
    assert_int_equal(open_one(&rx, &v1, hello_frame, sizeof hello_frame), PL_OK);
    rec_free(&r0);
    rec_free(&r1);
    pl_record_clear(&tx);
    pl_record_clear(&rx);
}

/* A sealed record goes through the deframer as a type-3 message. */
static void test_deframer_carries_records(void **state)
{
    uint8_t key[PL_RECORD_KEY], out[64];
    pl_record_dir tx, rx;
    pl_deframer df;
    pl_message m;
    pl_buf b;
    size_t used = 0, out_len = 0, pos = 0;
    int got = 0;
    (void)state;
    test_key(key);
    pl_record_init(&tx, key, 0);
    pl_record_init(&rx, key, 0);
    pl_buf_init(&b);
    assert_int_equal(pl_record_seal(&tx, hello_frame, sizeof hello_frame, &b), PL_OK);
    assert_int_equal(pl_record_seal(&tx, hello_frame, sizeof hello_frame, &b), PL_OK);
    pl_deframer_init(&df, PL_FRAME_MAX_PAYLOAD);
    while (pos < pl_buf_size(&b)) {
        int rc = pl_deframer_feed(&df, pl_buf_head(&b) + pos, pl_buf_size(&b) - pos, &used, &m, NULL, NULL);
        assert_true(rc >= 0);
        pos += used;
        if (rc == 1) {
            uint8_t hdr[PL_FRAME_HEADER_SIZE];
            pl_frame_header h = {PL_FRAME_VERSION, PL_FRAME_RECORD, 0, (uint32_t)m.len};
            assert_int_equal(m.type, PL_FRAME_RECORD);
            pl_frame_header_encode(&h, hdr);
            assert_int_equal(pl_record_open(&rx, hdr, m.data, m.len, out, &out_len), PL_OK);
            assert_int_equal(out_len, sizeof hello_frame);
            assert_memory_equal(out, hello_frame, sizeof hello_frame);
            got++;
        }
    }
    assert_int_equal(got, 2);
    pl_deframer_clear(&df);
    pl_buf_clear(&b);
    pl_record_clear(&tx);
    pl_record_clear(&rx);
}

/* Every single-bit change of header, ciphertext or tag fails; failures do not advance the counter. */
static void test_bit_flips(void **state)
{
    uint8_t key[PL_RECORD_KEY];
    pl_record_dir tx, rx;
    rec r;
    (void)state;
    test_key(key);
    pl_record_init(&tx, key, 0);
    pl_record_init(&rx, key, 0);
    r = seal_one(&tx, hello_frame, sizeof hello_frame);
    for (size_t bit = 0; bit < r.len * 8; bit++) {
        r.p[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        if (bit / 8 >= 4 && bit / 8 < 8) {
            /* A length bit: open the real payload under the altered header. */
            uint8_t out[64];
            size_t out_len = 99;
            assert_int_equal(pl_record_open(&rx, r.p, r.p + 8, r.len - 8, out, &out_len),
                             PL_ERR_AUTH);
            assert_int_equal(out_len, 0);
        } else {
            assert_int_equal(open_one(&rx, &r, NULL, 0), PL_ERR_AUTH);
        }
        r.p[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        assert_int_equal(rx.counter, 0);
    }
    assert_int_equal(open_one(&rx, &r, hello_frame, sizeof hello_frame), PL_OK);
    assert_int_equal(rx.counter, 1);
    rec_free(&r);
    pl_record_clear(&tx);
    pl_record_clear(&rx);
}

static void test_replay(void **state)
{
    uint8_t key[PL_RECORD_KEY];
    pl_record_dir tx, rx;
    rec r0, r1;
    (void)state;
    test_key(key);
    pl_record_init(&tx, key, 0);
    pl_record_init(&rx, key, 0);
    r0 = seal_one(&tx, hello_frame, sizeof hello_frame);
    r1 = seal_one(&tx, hello_frame, sizeof hello_frame);
    assert_int_equal(open_one(&rx, &r0, hello_frame, sizeof hello_frame), PL_OK);
    assert_int_equal(open_one(&rx, &r1, hello_frame, sizeof hello_frame), PL_OK);
    assert_int_equal(open_one(&rx, &r0, NULL, 0), PL_ERR_AUTH);
    assert_int_equal(open_one(&rx, &r1, NULL, 0), PL_ERR_AUTH);
    assert_int_equal(rx.counter, 2);
    rec_free(&r0);
    rec_free(&r1);
    pl_record_clear(&tx);
    pl_record_clear(&rx);
}

static void test_reorder(void **state)
{
    uint8_t key[PL_RECORD_KEY];
    pl_record_dir tx, rx;
    rec r0, r1;
    (void)state;
    test_key(key);
    pl_record_init(&tx, key, 0);
    pl_record_init(&rx, key, 0);
    r0 = seal_one(&tx, hello_frame, sizeof hello_frame);
    r1 = seal_one(&tx, hello_frame, sizeof hello_frame);
    /* Same length and plaintext: only the nonce tells them apart. */
    assert_int_equal(open_one(&rx, &r1, NULL, 0), PL_ERR_AUTH);
    assert_int_equal(rx.counter, 0);
    /* A swapped pair is caught at either position (fresh receiver each time). */
    pl_record_clear(&rx);
    pl_record_init(&rx, key, 0);
    assert_int_equal(open_one(&rx, &r1, NULL, 0), PL_ERR_AUTH);
    pl_record_clear(&rx);
    pl_record_init(&rx, key, 0);
    assert_int_equal(open_one(&rx, &r0, hello_frame, sizeof hello_frame), PL_OK);
    assert_int_equal(open_one(&rx, &r0, NULL, 0), PL_ERR_AUTH);
    rec_free(&r0);
    rec_free(&r1);
    pl_record_clear(&tx);
    pl_record_clear(&rx);
}

static void test_wrong_direction_key(void **state)
{
    uint8_t k_c2s[PL_RECORD_KEY], k_s2c[PL_RECORD_KEY];
    pl_record_dir c_tx, c_rx, s_tx, s_rx;
    rec a, b;
    (void)state;
    test_key(k_c2s);
    for (int i = 0; i < PL_RECORD_KEY; i++)
        k_s2c[i] = (uint8_t)(0x80 + i);
    pl_record_init(&c_tx, k_c2s, 0);
    pl_record_init(&s_rx, k_c2s, 0);
    pl_record_init(&s_tx, k_s2c, 0);
    pl_record_init(&c_rx, k_s2c, 0);
    a = seal_one(&s_tx, hello_frame, sizeof hello_frame);
    /* The server's record fed back to the server's receiver (reflection). */
    assert_int_equal(open_one(&s_rx, &a, NULL, 0), PL_ERR_AUTH);
    assert_int_equal(open_one(&c_rx, &a, hello_frame, sizeof hello_frame), PL_OK);
    b = seal_one(&c_tx, hello_frame, sizeof hello_frame);
    assert_int_equal(open_one(&c_rx, &b, NULL, 0), PL_ERR_AUTH);
    assert_int_equal(open_one(&s_rx, &b, hello_frame, sizeof hello_frame), PL_OK);
    rec_free(&a);
    rec_free(&b);
    pl_record_clear(&c_tx);
    pl_record_clear(&c_rx);
    pl_record_clear(&s_tx);
    pl_record_clear(&s_rx);
}

static void test_truncated(void **state)
{
    uint8_t key[PL_RECORD_KEY], payload[PL_RECORD_TAG] = {0}, out[PL_RECORD_TAG];
    pl_record_dir rx;
    (void)state;
    test_key(key);
    pl_record_init(&rx, key, 0);
    for (size_t n = 0; n < PL_RECORD_TAG; n++) {
        uint8_t hdr[PL_FRAME_HEADER_SIZE];
        pl_frame_header h = {PL_FRAME_VERSION, PL_FRAME_RECORD, 0, (uint32_t)n};
        size_t out_len = 7;
        pl_frame_header_encode(&h, hdr);
        assert_int_equal(pl_record_open(&rx, hdr, n ? payload : NULL, n, out, &out_len),
                         PL_ERR_MALFORMED);
        assert_int_equal(out_len, 0);
    }
    /* The truncated prefix of a real record too. */
    {
        size_t out_len = 7;
        uint8_t hdr[PL_FRAME_HEADER_SIZE];
        pl_frame_header h = {PL_FRAME_VERSION, PL_FRAME_RECORD, 0, 15};
        pl_frame_header_encode(&h, hdr);
        assert_int_equal(pl_record_open(&rx, hdr, hello_rec0 + 8, 15, out, &out_len),
                         PL_ERR_MALFORMED);
        /* Shorter than the header claims (a tag's worth is there). */
        assert_int_equal(
            pl_record_open(&rx, hello_rec0, hello_rec0 + 8, sizeof hello_rec0 - 8 - 1, out, &out_len),
            PL_ERR_AUTH);
    }
    /* An empty ciphertext with a wrong tag is an authentication failure, not malformed. */
    {
        uint8_t hdr[PL_FRAME_HEADER_SIZE];
        pl_frame_header h = {PL_FRAME_VERSION, PL_FRAME_RECORD, 0, PL_RECORD_TAG};
        size_t out_len = 7;
        pl_frame_header_encode(&h, hdr);
        assert_int_equal(pl_record_open(&rx, hdr, payload, PL_RECORD_TAG, NULL, &out_len),
                         PL_ERR_AUTH);
    }
    assert_int_equal(rx.counter, 0);
    pl_record_clear(&rx);
}

/* An empty inner (not a real frame, but the layer does not care) round trips with NULL out. */
static void test_empty_inner(void **state)
{
    uint8_t key[PL_RECORD_KEY];
    pl_record_dir tx, rx;
    size_t out_len = 5;
    rec r;
    (void)state;
    test_key(key);
    pl_record_init(&tx, key, 0);
    pl_record_init(&rx, key, 0);
    r = seal_one(&tx, NULL, 0);
    assert_int_equal(r.len, PL_FRAME_HEADER_SIZE + PL_RECORD_TAG);
    assert_int_equal(pl_record_open(&rx, r.p, r.p + 8, PL_RECORD_TAG, NULL, &out_len), PL_OK);
    assert_int_equal(out_len, 0);
    rec_free(&r);
    pl_record_clear(&tx);
    pl_record_clear(&rx);
}

static void test_rekey(void **state)
{
    uint8_t key[PL_RECORD_KEY], expect[PL_RECORD_KEY], tmp[PL_RECORD_KEY];
    pl_record_dir tx, rx, rx_other;
    rec recs[10];
    (void)state;
    test_key(key);
    pl_record_init(&tx, key, 3);
    pl_record_init(&rx, key, 3);
    pl_record_init(&rx_other, key, 4);
    for (int i = 0; i < 10; i++) {
        size_t ilen;
        uint8_t *inner = inner_frame((size_t)i * 10, (uint8_t)i, &ilen);
        recs[i] = seal_one(&tx, inner, ilen);
        assert_int_equal(open_one(&rx, &recs[i], inner, ilen), PL_OK);
        assert_int_equal(tx.epoch, (uint64_t)(i + 1) / 3);
        assert_int_equal(tx.counter, (uint64_t)(i + 1) % 3);
        assert_int_equal(rx.epoch, tx.epoch);
        assert_int_equal(rx.counter, tx.counter);
        assert_memory_equal(rx.key, tx.key, PL_RECORD_KEY);
        if (i == 2) /* first rekey: pinned (python3 + cryptography) */
            assert_memory_equal(tx.key, rekeyed_key1, PL_RECORD_KEY);
        if (i < 3) {
            assert_int_equal(open_one(&rx_other, &recs[i], inner, ilen), PL_OK);
        } else if (i == 3) {
            /* Record 3 is under the new key for the sender, the old one (counter 3) here. */
            assert_int_equal(open_one(&rx_other, &recs[i], NULL, 0), PL_ERR_AUTH);
            assert_int_equal(rx_other.epoch, 0);
            assert_int_equal(rx_other.counter, 3);
        }
        free(inner);
    }
    assert_int_equal(tx.epoch, 3);
    assert_int_equal(rx.epoch, 3);
    assert_int_equal(tx.counter, 1);
    assert_memory_not_equal(tx.key, key, PL_RECORD_KEY);
    /* key_3 = Expand(Expand(Expand(key_0))) */
    memcpy(expect, key, PL_RECORD_KEY);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(pl_hkdf_expand(expect, PL_RECORD_KEY, "peerlink rekey", NULL, 0, tmp,
                                        PL_RECORD_KEY),
                         PL_OK);
        memcpy(expect, tmp, PL_RECORD_KEY);
    }
    assert_memory_equal(tx.key, expect, PL_RECORD_KEY);
    /* Old records do not open in the new epoch. */
    assert_int_equal(open_one(&rx, &recs[9], NULL, 0), PL_ERR_AUTH);
    assert_int_equal(open_one(&rx, &recs[0], NULL, 0), PL_ERR_AUTH);
    for (int i = 0; i < 10; i++)
        rec_free(&recs[i]);
    pl_record_clear(&tx);
    pl_record_clear(&rx);
    pl_record_clear(&rx_other);
}

/* rekey_interval 1: a new key for every record. */
static void test_rekey_every_record(void **state)
{
    uint8_t key[PL_RECORD_KEY];
    pl_record_dir tx, rx;
    (void)state;
    test_key(key);
    pl_record_init(&tx, key, 1);
    pl_record_init(&rx, key, 1);
    for (int i = 0; i < 5; i++) {
        rec r = seal_one(&tx, hello_frame, sizeof hello_frame);
        assert_int_equal(tx.counter, 0);
        assert_int_equal(tx.epoch, (uint64_t)i + 1);
        assert_int_equal(open_one(&rx, &r, hello_frame, sizeof hello_frame), PL_OK);
        if (i == 0) /* the record of epoch 0 counter 0 is the pinned vector */
            assert_memory_equal(r.p, hello_rec0, sizeof hello_rec0);
        rec_free(&r);
    }
    pl_record_clear(&tx);
    pl_record_clear(&rx);
}

static void test_max_inner(void **state)
{
    uint8_t key[PL_RECORD_KEY];
    pl_record_dir tx, rx;
    size_t ilen;
    uint8_t *inner, *big;
    pl_frame_header h;
    pl_buf b;
    rec r;
    (void)state;
    test_key(key);
    pl_record_init(&tx, key, 0);
    pl_record_init(&rx, key, 0);
    inner = inner_frame(PL_RECORD_MAX_INNER_PAYLOAD, 9, &ilen);
    assert_int_equal(ilen, PL_RECORD_MAX_INNER);
    r = seal_one(&tx, inner, ilen);
    assert_int_equal(r.len, PL_FRAME_HEADER_SIZE + PL_FRAME_MAX_PAYLOAD);
    assert_int_equal(pl_frame_header_decode(r.p, &h), PL_OK);
    assert_int_equal(h.length, PL_FRAME_MAX_PAYLOAD);
    assert_int_equal(open_one(&rx, &r, inner, ilen), PL_OK);

    /* max + 1: rejected, nothing appended, counter unchanged */
    big = calloc(1, PL_RECORD_MAX_INNER + 1);
    assert_non_null(big);
    pl_buf_init(&b);
    assert_int_equal(pl_buf_append(&b, "ab", 2), PL_OK);
    assert_int_equal(pl_record_seal(&tx, big, PL_RECORD_MAX_INNER + 1, &b), PL_ERR_INVALID);
    assert_int_equal(pl_record_seal(&tx, big, SIZE_MAX, &b), PL_ERR_INVALID);
    assert_int_equal(pl_buf_size(&b), 2);
    assert_int_equal(tx.counter, 1);
    pl_buf_clear(&b);
    free(big);
    free(inner);
    rec_free(&r);
    pl_record_clear(&tx);
    pl_record_clear(&rx);
}

static void test_unkeyed(void **state)
{
    pl_record_dir d;
    pl_buf b;
    uint8_t out[32];
    size_t out_len = 3;
    (void)state;
    memset(&d, 0, sizeof d);
    pl_buf_init(&b);
    assert_int_equal(pl_record_seal(&d, hello_frame, sizeof hello_frame, &b), PL_ERR_INVALID);
    assert_int_equal(pl_buf_size(&b), 0);
    assert_int_equal(pl_record_open(&d, hello_rec0, hello_rec0 + 8, sizeof hello_rec0 - 8, out,
                                    &out_len),
                     PL_ERR_INVALID);
    assert_int_equal(out_len, 0);
    /* cleared is unkeyed too */
    {
        uint8_t key[PL_RECORD_KEY];
        test_key(key);
        pl_record_init(&d, key, 0);
        pl_record_clear(&d);
        assert_int_equal(pl_record_seal(&d, hello_frame, sizeof hello_frame, &b), PL_ERR_INVALID);
        assert_int_equal(pl_buf_size(&b), 0);
    }
    pl_buf_clear(&b);
}

static void test_clear_wipes(void **state)
{
    uint8_t key[PL_RECORD_KEY];
    pl_record_dir d;
    pl_buf b;
    (void)state;
    memset(key, 0xA5, sizeof key);
    pl_record_init(&d, key, 2);
    pl_buf_init(&b);
    for (int i = 0; i < 3; i++) /* past one rekey */
        assert_int_equal(pl_record_seal(&d, hello_frame, sizeof hello_frame, &b), PL_OK);
    assert_false(all_zero(d.key, sizeof d.key));
    assert_int_equal(d.epoch, 1);
    pl_record_clear(&d);
    assert_true(all_zero(d.key, sizeof d.key));
    assert_true(all_zero(&d, sizeof d));
    assert_int_equal(d.ready, 0);
    pl_buf_clear(&b);
}

/* libsodium's and libcrypto's ChaCha20-Poly1305 (where the build has libcrypto's) seal the same
 * bytes, the published vectors among them, and each opens what the other sealed. */
static void test_both_implementations(void **state)
{
    (void)state;
    uint8_t key[PL_RECORD_KEY];
    test_key(key);
    pl_record_dir s, c;
    assert_int_equal(pl_record_init_with(&s, key, 0, PL_AEAD_LIBSODIUM), PL_OK);
    assert_int_equal(pl_record_impl(&s, PL_RECORD_MAX_INNER), PL_AEAD_LIBSODIUM);
    int rc = pl_record_init_with(&c, key, 0, PL_AEAD_LIBCRYPTO);
    if (strcmp(pl_aead_implementation(), "libcrypto") != 0) {
        assert_int_equal(rc, PL_ERR_UNSUPPORTED);
        assert_int_equal(c.ready, 0);
        pl_record_clear(&s);
        skip(); /* a libsodium-only build: test_vector covers it */
    }
    assert_int_equal(rc, PL_OK);
    assert_int_equal(pl_record_impl(&c, 0), PL_AEAD_LIBCRYPTO); /* named: every length */
    /* The vectors (computed by python3's cryptography, above) at counters 0 and 1. */
    for (int i = 0; i < 2; i++) {
        rec r = seal_one(&c, hello_frame, sizeof hello_frame);
        assert_int_equal(r.len, sizeof hello_rec0);
        assert_memory_equal(r.p, i == 0 ? hello_rec0 : hello_rec1, r.len);
        rec_free(&r);
    }
    pl_record_clear(&c);
    pl_record_clear(&s);

    /* Sizes around the 64-byte blocks, and the largest record; two rekeys on the way. */
    static const size_t sizes[] = {0, 1, 55, 56, 63, 64, 65, 1000, PL_RECORD_MAX_INNER_PAYLOAD};
    pl_record_dir s_tx, c_tx, s_rx, c_rx;
    assert_int_equal(pl_record_init_with(&s_tx, key, 4, PL_AEAD_LIBSODIUM), PL_OK);
    assert_int_equal(pl_record_init_with(&c_tx, key, 4, PL_AEAD_LIBCRYPTO), PL_OK);
    assert_int_equal(pl_record_init_with(&s_rx, key, 4, PL_AEAD_LIBSODIUM), PL_OK);
    assert_int_equal(pl_record_init_with(&c_rx, key, 4, PL_AEAD_LIBCRYPTO), PL_OK);
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t len;
        uint8_t *inner = inner_frame(sizes[i], (uint8_t)i, &len);
        rec a = seal_one(&s_tx, inner, len), b = seal_one(&c_tx, inner, len);
        assert_int_equal(a.len, b.len);
        assert_memory_equal(a.p, b.p, a.len);
        assert_int_equal(open_one(&c_rx, &a, inner, len), PL_OK); /* sodium's, opened by libcrypto */
        assert_int_equal(open_one(&s_rx, &b, inner, len), PL_OK); /* and the other way */
        rec_free(&a);
        rec_free(&b);
        free(inner);
    }
    assert_int_equal(c_rx.epoch, 2);

    /* A flipped bit: libcrypto decrypts before it checks, so what it wrote must be wiped. */
    size_t len;
    uint8_t *inner = inner_frame(300, 9, &len);
    rec r = seal_one(&c_tx, inner, len);
    r.p[PL_FRAME_HEADER_SIZE + 10] ^= 0x20;
    size_t plen = r.len - PL_FRAME_HEADER_SIZE, out_len = 1;
    uint8_t *out = malloc(plen);
    assert_non_null(out);
    memset(out, 0xEE, plen);
    assert_int_equal(pl_record_open(&c_rx, r.p, r.p + PL_FRAME_HEADER_SIZE, plen, out, &out_len), PL_ERR_AUTH);
    assert_true(all_zero(out, plen - PL_RECORD_TAG));
    assert_int_equal(out_len, 0);
    r.p[PL_FRAME_HEADER_SIZE + 10] ^= 0x20; /* the counter did not move: the real one still opens */
    assert_int_equal(open_one(&c_rx, &r, inner, len), PL_OK);
    free(out);
    rec_free(&r);
    free(inner);

    /* A rollback (engine.c restores a copy of the direction when a message
     * cannot be sealed whole) across a rekey: libcrypto's context, which keeps
     * the key of the epoch it last used, is keyed again for the copy's.
     * (First libsodium's direction catches up with the record sealed above.) */
    inner = inner_frame(1, 0, &len);
    r = seal_one(&s_tx, inner, len);
    rec_free(&r);
    free(inner);
    assert_int_equal(s_tx.counter, c_tx.counter);
    pl_record_dir saved_s = s_tx, saved_c = c_tx;
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < 4; i++) {
            size_t n;
            uint8_t *f = inner_frame(100, (uint8_t)(40 + i), &n);
            rec a = seal_one(&s_tx, f, n), b = seal_one(&c_tx, f, n);
            assert_int_equal(a.len, b.len);
            assert_memory_equal(a.p, b.p, a.len);
            rec_free(&a);
            rec_free(&b);
            free(f);
        }
        assert_int_equal(c_tx.epoch, saved_c.epoch + 1);
        if (round == 0) {
            s_tx = saved_s;
            c_tx = saved_c;
        }
    }
    pl_record_clear(&s_tx);
    pl_record_clear(&c_tx);
    pl_record_clear(&s_rx);
    pl_record_clear(&c_rx);
}

/* An inner frame sealed from parts (as the engine does: its header, the
 * sequence number, the message's bytes) is the record of the whole frame,
 * with either implementation, whatever the cut, empty parts included; too
 * long in all is refused with out unchanged. */
static void test_seal_parts(void **state)
{
    (void)state;
    uint8_t key[PL_RECORD_KEY];
    test_key(key);
    size_t len;
    uint8_t *inner = inner_frame(1000, 7, &len);
    const pl_aead_impl impls[] = {PL_AEAD_LIBSODIUM, PL_AEAD_LIBCRYPTO};
    for (size_t k = 0; k < 2; k++) {
        pl_record_dir whole, parted;
        if (pl_record_init_with(&whole, key, 0, impls[k]) != PL_OK)
            continue; /* a libsodium-only build */
        assert_int_equal(pl_record_init_with(&parted, key, 0, impls[k]), PL_OK);
        const size_t cuts[][2] = {{0, 0}, {8, 16}, {8, 8}, {1, 999}, {len, len}, {64, 65}};
        for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
            rec want = seal_one(&whole, inner, len);
            size_t a = cuts[i][0], b = cuts[i][1];
            pl_record_part parts[3] = {{inner, a}, {a < b ? inner + a : NULL, b - a}, {inner + b, len - b}};
            pl_buf out;
            pl_buf_init(&out);
            assert_int_equal(pl_record_seal_parts(&parted, parts, 3, &out), PL_OK);
            assert_int_equal(pl_buf_size(&out), want.len);
            assert_memory_equal(pl_buf_head(&out), want.p, want.len);
            pl_buf_clear(&out);
            rec_free(&want);
        }
        /* in place: the frame already where its ciphertext goes */
        rec want = seal_one(&whole, inner, len);
        pl_buf out;
        pl_buf_init(&out);
        assert_int_equal(pl_buf_reserve(&out, PL_FRAME_HEADER_SIZE + len + PL_RECORD_TAG), PL_OK);
        memcpy(out.data + PL_FRAME_HEADER_SIZE, inner, len);
        pl_record_part in_place[2] = {{out.data + PL_FRAME_HEADER_SIZE, 10},
                                      {out.data + PL_FRAME_HEADER_SIZE + 10, len - 10}};
        assert_int_equal(pl_record_seal_parts(&parted, in_place, 2, &out), PL_OK);
        assert_memory_equal(pl_buf_head(&out), want.p, want.len);
        rec_free(&want);
        /* too long in all: nothing appended, the counter unmoved */
        uint64_t counter = parted.counter;
        size_t before = pl_buf_size(&out);
        pl_record_part big[2] = {{inner, len}, {inner, PL_RECORD_MAX_INNER - len + 1}};
        uint8_t *spare = calloc(1, PL_RECORD_MAX_INNER);
        assert_non_null(spare);
        big[1].p = spare;
        assert_int_equal(pl_record_seal_parts(&parted, big, 2, &out), PL_ERR_INVALID);
        assert_int_equal(pl_buf_size(&out), before);
        assert_int_equal(parted.counter, counter);
        free(spare);
        pl_buf_clear(&out);
        pl_record_clear(&whole);
        pl_record_clear(&parted);
    }
    free(inner);
}

/* Directions with different keys sharing one cache of libcrypto contexts
 * (the sessions of a node), interleaved, seal and open the bytes libsodium
 * does: a context holding another direction's key is keyed again. */
static void test_shared_cache(void **state)
{
    (void)state;
    pl_aead_cache *cache = pl_aead_cache_new();
    if (!cache) {
        assert_string_not_equal(pl_aead_implementation(), "libcrypto");
        skip(); /* a libsodium-only build */
    }
    uint8_t k1[PL_RECORD_KEY], k2[PL_RECORD_KEY];
    test_key(k1);
    memcpy(k2, k1, sizeof k2);
    k2[0] ^= 1;
    pl_record_dir ctx_[2], crx[2], stx[2];
    for (int i = 0; i < 2; i++) {
        pl_record_init_cached(&ctx_[i], i ? k2 : k1, 3, cache);
        pl_record_init_cached(&crx[i], i ? k2 : k1, 3, cache);
        assert_int_equal(pl_record_init_with(&stx[i], i ? k2 : k1, 3, PL_AEAD_LIBSODIUM), PL_OK);
        assert_int_equal(pl_record_impl(&ctx_[i], PL_RECORD_EVP_FROM), PL_AEAD_LIBCRYPTO);
    }
    for (int n = 0; n < 12; n++) {
        int i = (n * 7 / 3) % 2; /* runs of one direction, then the other */
        size_t len;
        uint8_t *inner = inner_frame(PL_RECORD_EVP_FROM + (size_t)n, (uint8_t)n, &len); /* libcrypto's lengths */
        rec a = seal_one(&stx[i], inner, len), b = seal_one(&ctx_[i], inner, len);
        assert_int_equal(a.len, b.len);
        assert_memory_equal(a.p, b.p, a.len);
        assert_int_equal(open_one(&crx[i], &b, inner, len), PL_OK);
        rec_free(&a);
        rec_free(&b);
        free(inner);
    }
    for (int i = 0; i < 2; i++) {
        pl_record_clear(&ctx_[i]);
        pl_record_clear(&crx[i]);
        pl_record_clear(&stx[i]);
    }
    pl_aead_cache_free(cache);
}

/* A direction made with the default implementation (pl_record_init(), and
 * a node's cached one) leaves inner frames shorter than PL_RECORD_EVP_FROM
 * to libsodium, whose calls cost less, and the longer ones to libcrypto
 * where the build has it; either way its records are the bytes both
 * implementations seal, and open with either. */
static void test_default_splits_by_length(void **state)
{
    (void)state;
    uint8_t key[PL_RECORD_KEY];
    test_key(key);
    int evp = strcmp(pl_aead_implementation(), "libcrypto") == 0;
    pl_aead_cache *cache = pl_aead_cache_new();
    assert_true(evp == (cache != NULL));
    pl_record_dir def_tx, def_rx, cached_tx, s_tx, s_rx, c_rx;
    pl_record_init(&def_tx, key, 0);
    pl_record_init(&def_rx, key, 0);
    pl_record_init_cached(&cached_tx, key, 0, cache);
    assert_int_equal(pl_record_init_with(&s_tx, key, 0, PL_AEAD_LIBSODIUM), PL_OK);
    assert_int_equal(pl_record_init_with(&s_rx, key, 0, PL_AEAD_LIBSODIUM), PL_OK);
    if (evp)
        assert_int_equal(pl_record_init_with(&c_rx, key, 0, PL_AEAD_LIBCRYPTO), PL_OK);
    const pl_aead_impl small = PL_AEAD_LIBSODIUM, large = evp ? PL_AEAD_LIBCRYPTO : PL_AEAD_LIBSODIUM;
    for (int k = 0; k < 2; k++) {
        const pl_record_dir *d = k ? &cached_tx : &def_tx;
        assert_int_equal(pl_record_impl(d, 0), small);
        assert_int_equal(pl_record_impl(d, PL_RECORD_EVP_FROM - 1), small);
        assert_int_equal(pl_record_impl(d, PL_RECORD_EVP_FROM), large);
        assert_int_equal(pl_record_impl(d, PL_RECORD_MAX_INNER), large);
    }
    /* Inner frames of 8 bytes (a header alone) up to the largest, across the boundary. */
    const size_t payloads[] = {0, 56, PL_RECORD_EVP_FROM - 1 - PL_FRAME_HEADER_SIZE,
                               PL_RECORD_EVP_FROM - PL_FRAME_HEADER_SIZE, 1000, PL_RECORD_MAX_INNER_PAYLOAD};
    for (size_t i = 0; i < sizeof payloads / sizeof payloads[0]; i++) {
        size_t len;
        uint8_t *inner = inner_frame(payloads[i], (uint8_t)i, &len);
        rec a = seal_one(&s_tx, inner, len), b = seal_one(&def_tx, inner, len), c = seal_one(&cached_tx, inner, len);
        assert_int_equal(a.len, b.len);
        assert_memory_equal(a.p, b.p, a.len);
        assert_int_equal(a.len, c.len);
        assert_memory_equal(a.p, c.p, a.len);
        assert_int_equal(open_one(&def_rx, &a, inner, len), PL_OK); /* libsodium's, opened by the default */
        assert_int_equal(open_one(&s_rx, &b, inner, len), PL_OK);   /* the default's, by libsodium */
        if (evp)
            assert_int_equal(open_one(&c_rx, &c, inner, len), PL_OK); /* and by libcrypto */
        rec_free(&a);
        rec_free(&b);
        rec_free(&c);
        free(inner);
    }
    pl_record_clear(&def_tx);
    pl_record_clear(&def_rx);
    pl_record_clear(&cached_tx);
    pl_record_clear(&s_tx);
    pl_record_clear(&s_rx);
    if (evp)
        pl_record_clear(&c_rx);
    pl_aead_cache_free(cache);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_shared_cache),
        cmocka_unit_test(test_default_splits_by_length),
        cmocka_unit_test(test_seal_appends),
        cmocka_unit_test(test_vector),
        cmocka_unit_test(test_deframer_carries_records),
        cmocka_unit_test(test_bit_flips),
        cmocka_unit_test(test_replay),
        cmocka_unit_test(test_reorder),
        cmocka_unit_test(test_wrong_direction_key),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_empty_inner),
        cmocka_unit_test(test_rekey),
        cmocka_unit_test(test_rekey_every_record),
        cmocka_unit_test(test_max_inner),
        cmocka_unit_test(test_unkeyed),
        cmocka_unit_test(test_clear_wipes),
        cmocka_unit_test(test_both_implementations),
        cmocka_unit_test(test_seal_parts),
    };
    if (sodium_init() < 0)
        return 1;
    return cmocka_run_group_tests_name("record", tests, NULL, NULL);
}
