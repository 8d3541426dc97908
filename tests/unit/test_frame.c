/* SPDX-License-Identifier: ISC */
/* Unit tests of the frame codec, the deframer and the reassembler (lib/core/frame.c). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include <peerlink/common.h>

#include "buf.h"
#include "frame.h"

/* ---- helpers ---- */

typedef struct collected {
    size_t count;
    uint8_t types[16];
    size_t lens[16];
    uint8_t *data[16];
} collected;

static void collected_free(collected *c)
{
    for (size_t i = 0; i < c->count; i++)
        free(c->data[i]);
    memset(c, 0, sizeof *c);
}

/* Feed in[0..len) to d (all of it, looping over returned messages); store the messages. */
static int feed_all(pl_deframer *d, const uint8_t *in, size_t len, collected *c)
{
    size_t pos = 0;
    while (pos < len) {
        size_t used = 0;
        pl_message m;
        int rc = pl_deframer_feed(d, in + pos, len - pos, &used, &m, NULL, NULL);
        assert_true(used <= len - pos);
        pos += used;
        if (rc < 0)
            return rc;
        if (rc == 1) {
            assert_true(c->count < 16);
            c->types[c->count] = m.type;
            c->lens[c->count] = m.len;
            c->data[c->count] = malloc(m.len ? m.len : 1);
            assert_non_null(c->data[c->count]);
            if (m.len)
                memcpy(c->data[c->count], m.data, m.len);
            c->count++;
        } else {
            assert_int_equal(rc, 0);
            assert_int_equal(pos, len);
        }
    }
    return 0;
}

static uint8_t *pattern(size_t len, uint8_t seed)
{
    uint8_t *p = malloc(len ? len : 1);
    assert_non_null(p);
    for (size_t i = 0; i < len; i++)
        p[i] = (uint8_t)(seed + i * 7 + (i >> 8));
    return p;
}

/* Stream used for the split tests: DATA "hello", CONTROL empty, DATA 20000 bytes, DATA "". */
static void build_stream(pl_buf *out, uint8_t **big)
{
    *big = pattern(20000, 3);
    pl_buf_init(out);
    assert_int_equal(pl_frame_encode_message(out, PL_FRAME_DATA, "hello", 5), PL_OK);
    assert_int_equal(pl_frame_encode_message(out, PL_FRAME_CONTROL, NULL, 0), PL_OK);
    assert_int_equal(pl_frame_encode_message(out, PL_FRAME_DATA, *big, 20000), PL_OK);
    assert_int_equal(pl_frame_encode_message(out, PL_FRAME_DATA, "", 0), PL_OK);
}

static void check_stream(const collected *c, const uint8_t *big)
{
    assert_int_equal(c->count, 4);
    assert_int_equal(c->types[0], PL_FRAME_DATA);
    assert_int_equal(c->lens[0], 5);
    assert_memory_equal(c->data[0], "hello", 5);
    assert_int_equal(c->types[1], PL_FRAME_CONTROL);
    assert_int_equal(c->lens[1], 0);
    assert_int_equal(c->types[2], PL_FRAME_DATA);
    assert_int_equal(c->lens[2], 20000);
    assert_memory_equal(c->data[2], big, 20000);
    assert_int_equal(c->types[3], PL_FRAME_DATA);
    assert_int_equal(c->lens[3], 0);
}

static void put_header(uint8_t *p, uint8_t ver, uint8_t type, uint8_t flags, uint8_t rsvd,
                       uint32_t len)
{
    p[0] = ver;
    p[1] = type;
    p[2] = flags;
    p[3] = rsvd;
    p[4] = (uint8_t)(len >> 24);
    p[5] = (uint8_t)(len >> 16);
    p[6] = (uint8_t)(len >> 8);
    p[7] = (uint8_t)len;
}

/* ---- tests ---- */

static void test_header_bytes(void **state)
{
    (void)state;
    pl_frame_header h = {PL_FRAME_VERSION, PL_FRAME_DATA, PL_FRAME_FLAG_MORE, 0x01020304};
    uint8_t out[PL_FRAME_HEADER_SIZE];
    static const uint8_t want[] = {0x01, 0x02, 0x01, 0x00, 0x01, 0x02, 0x03, 0x04};
    pl_frame_header back;

    pl_frame_header_encode(&h, out);
    assert_memory_equal(out, want, sizeof want);
    /* 0x01020304 > PL_FRAME_MAX_PAYLOAD */
    assert_int_equal(pl_frame_header_decode(out, &back), PL_ERR_TOO_LARGE);

    h.length = PL_FRAME_MAX_PAYLOAD;
    h.flags = 0;
    h.type = PL_FRAME_CONTROL;
    pl_frame_header_encode(&h, out);
    static const uint8_t want2[] = {0x01, 0x01, 0x00, 0x00, 0x00, 0x00, 0x40, 0x00};
    assert_memory_equal(out, want2, sizeof want2);
    assert_int_equal(pl_frame_header_decode(out, &back), PL_OK);
    assert_int_equal(back.version, 1);
    assert_int_equal(back.type, PL_FRAME_CONTROL);
    assert_int_equal(back.flags, 0);
    assert_int_equal(back.length, PL_FRAME_MAX_PAYLOAD);
}

static void test_encode_hello_vector(void **state)
{
    (void)state;
    pl_buf b;
    static const uint8_t want[] = {0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05,
                                   'h',  'e',  'l',  'l',  'o'};
    pl_buf_init(&b);
    assert_int_equal(pl_frame_encode_message(&b, PL_FRAME_DATA, "hello", 5), PL_OK);
    assert_int_equal(pl_buf_size(&b), sizeof want);
    assert_memory_equal(pl_buf_head(&b), want, sizeof want);
    pl_buf_clear(&b);
}

static void test_encode_split(void **state)
{
    (void)state;
    pl_buf b;
    uint8_t *p = pattern(16385, 1);
    pl_frame_header h;

    pl_buf_init(&b);
    assert_int_equal(pl_frame_encode_message(&b, PL_FRAME_DATA, p, 16385), PL_OK);
    assert_int_equal(pl_buf_size(&b), 16385 + 2 * PL_FRAME_HEADER_SIZE);
    assert_int_equal(pl_frame_header_decode(pl_buf_head(&b), &h), PL_OK);
    assert_int_equal(h.flags, PL_FRAME_FLAG_MORE);
    assert_int_equal(h.length, 16384);
    assert_int_equal(pl_frame_header_decode(pl_buf_head(&b) + 8 + 16384, &h), PL_OK);
    assert_int_equal(h.flags, 0);
    assert_int_equal(h.length, 1);
    pl_buf_clear(&b);

    /* exactly one full frame: no MORE */
    assert_int_equal(pl_frame_encode_message(&b, PL_FRAME_DATA, p, 16384), PL_OK);
    assert_int_equal(pl_buf_size(&b), 16384 + PL_FRAME_HEADER_SIZE);
    assert_int_equal(pl_frame_header_decode(pl_buf_head(&b), &h), PL_OK);
    assert_int_equal(h.flags, 0);
    pl_buf_clear(&b);

    /* empty: one empty frame */
    assert_int_equal(pl_frame_encode_message(&b, PL_FRAME_CONTROL, NULL, 0), PL_OK);
    assert_int_equal(pl_buf_size(&b), PL_FRAME_HEADER_SIZE);
    pl_buf_clear(&b);
    free(p);
}

static void test_round_trip_sizes(void **state)
{
    (void)state;
    static const size_t sizes[] = {0, 1, 16384, 16385, 100000};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        pl_buf b;
        pl_deframer d;
        collected c = {0};
        uint8_t *p = pattern(sizes[i], (uint8_t)i);

        pl_buf_init(&b);
        pl_deframer_init(&d, 100000);
        assert_int_equal(pl_frame_encode_message(&b, PL_FRAME_DATA, p, sizes[i]), PL_OK);
        assert_int_equal(feed_all(&d, pl_buf_head(&b), pl_buf_size(&b), &c), 0);
        assert_int_equal(c.count, 1);
        assert_int_equal(c.types[0], PL_FRAME_DATA);
        assert_int_equal(c.lens[0], sizes[i]);
        if (sizes[i])
            assert_memory_equal(c.data[0], p, sizes[i]);
        assert_false(pl_deframer_in_progress(&d));
        collected_free(&c);
        pl_deframer_clear(&d);
        pl_buf_clear(&b);
        free(p);
    }
}

static void test_every_split_point(void **state)
{
    (void)state;
    pl_buf s;
    uint8_t *big;
    build_stream(&s, &big);
    size_t n = pl_buf_size(&s);
    const uint8_t *p = pl_buf_head(&s);

    for (size_t cut = 0; cut <= n; cut++) {
        pl_deframer d;
        collected c = {0};
        pl_deframer_init(&d, 65536);
        assert_int_equal(feed_all(&d, p, cut, &c), 0);
        assert_int_equal(feed_all(&d, p + cut, n - cut, &c), 0);
        check_stream(&c, big);
        assert_false(pl_deframer_in_progress(&d));
        collected_free(&c);
        pl_deframer_clear(&d);
    }
    pl_buf_clear(&s);
    free(big);
}

static void test_byte_by_byte(void **state)
{
    (void)state;
    pl_buf s;
    uint8_t *big;
    pl_deframer d;
    collected c = {0};
    build_stream(&s, &big);

    pl_deframer_init(&d, 65536);
    for (size_t i = 0; i < pl_buf_size(&s); i++) {
        assert_int_equal(feed_all(&d, pl_buf_head(&s) + i, 1, &c), 0);
        if (i + 1 < pl_buf_size(&s))
            assert_true(pl_deframer_in_progress(&d) || c.count > 0);
    }
    check_stream(&c, big);
    collected_free(&c);
    pl_deframer_clear(&d);
    pl_buf_clear(&s);
    free(big);
}

static void test_coalesced(void **state)
{
    (void)state;
    pl_buf s;
    uint8_t *big;
    pl_deframer d;
    size_t used = 0;
    pl_message m;
    build_stream(&s, &big);

    pl_deframer_init(&d, 65536);
    /* One feed of the whole stream returns only the first message. */
    assert_int_equal(pl_deframer_feed(&d, pl_buf_head(&s), pl_buf_size(&s), &used, &m, NULL, NULL), 1);
    assert_int_equal(used, 8 + 5);
    assert_int_equal(m.len, 5);
    assert_memory_equal(m.data, "hello", 5);
    pl_deframer_clear(&d);

    collected c = {0};
    pl_deframer_init(&d, 65536);
    assert_int_equal(feed_all(&d, pl_buf_head(&s), pl_buf_size(&s), &c), 0);
    check_stream(&c, big);
    collected_free(&c);
    pl_deframer_clear(&d);
    pl_buf_clear(&s);
    free(big);
}

static void test_oversized_frame(void **state)
{
    (void)state;
    uint8_t in[8 + 16];
    pl_deframer d;
    size_t used = 0;
    pl_message m;

    memset(in, 0xAA, sizeof in);
    put_header(in, 1, PL_FRAME_DATA, 0, 0, 16385);
    pl_deframer_init(&d, 1u << 20);
    assert_int_equal(pl_deframer_feed(&d, in, sizeof in, &used, &m, NULL, NULL), PL_ERR_TOO_LARGE);
    assert_int_equal(used, 8); /* no payload byte was read */
    assert_int_equal(d.msg.cap, 0); /* nothing was allocated */
    pl_deframer_clear(&d);
}

static void test_message_too_large(void **state)
{
    (void)state;
    uint8_t in[8 + 800 + 8 + 800];
    pl_deframer d;
    size_t used = 0;
    pl_message m;

    memset(in, 0x55, sizeof in);
    put_header(in, 1, PL_FRAME_DATA, PL_FRAME_FLAG_MORE, 0, 800);
    put_header(in + 808, 1, PL_FRAME_DATA, 0, 0, 800);
    pl_deframer_init(&d, 1000);
    assert_int_equal(pl_deframer_feed(&d, in, sizeof in, &used, &m, NULL, NULL), PL_ERR_TOO_LARGE);
    assert_int_equal(used, 816); /* stopped right after the second header */
    assert_int_equal(pl_buf_size(&d.msg), 800);
    assert_true(d.msg.cap < 1600); /* never grown for the second frame */
    pl_deframer_clear(&d);

    /* exactly max_message is fine */
    put_header(in + 808, 1, PL_FRAME_DATA, 0, 0, 200);
    pl_deframer_init(&d, 1000);
    assert_int_equal(pl_deframer_feed(&d, in, 8 + 800 + 8 + 200, &used, &m, NULL, NULL), 1);
    assert_int_equal(m.len, 1000);
    pl_deframer_clear(&d);

    /* a single frame above max_message */
    put_header(in, 1, PL_FRAME_DATA, 0, 0, 1001);
    pl_deframer_init(&d, 1000);
    assert_int_equal(pl_deframer_feed(&d, in, sizeof in, &used, &m, NULL, NULL), PL_ERR_TOO_LARGE);
    assert_int_equal(used, 8);
    pl_deframer_clear(&d);
}

static int feed_one_header(uint8_t ver, uint8_t type, uint8_t flags, uint8_t rsvd)
{
    uint8_t in[8];
    pl_deframer d;
    size_t used = 0;
    pl_message m;
    int rc;
    put_header(in, ver, type, flags, rsvd, 0);
    pl_deframer_init(&d, 1000);
    rc = pl_deframer_feed(&d, in, sizeof in, &used, &m, NULL, NULL);
    pl_deframer_clear(&d);
    return rc;
}

static void test_bad_headers(void **state)
{
    (void)state;
    assert_int_equal(feed_one_header(1, PL_FRAME_DATA, 0, 0), 1);
    assert_int_equal(feed_one_header(0, PL_FRAME_DATA, 0, 0), PL_ERR_VERSION);
    assert_int_equal(feed_one_header(2, PL_FRAME_DATA, 0, 0), PL_ERR_VERSION);
    assert_int_equal(feed_one_header(1, 0, 0, 0), PL_ERR_MALFORMED);
    assert_int_equal(feed_one_header(1, PL_FRAME_RECORD, 0, 0), 1);
    assert_int_equal(feed_one_header(1, 4, 0, 0), PL_ERR_MALFORMED);
    assert_int_equal(feed_one_header(1, 0xFF, 0, 0), PL_ERR_MALFORMED);
    assert_int_equal(feed_one_header(1, PL_FRAME_DATA, 0x02, 0), PL_ERR_MALFORMED);
    assert_int_equal(feed_one_header(1, PL_FRAME_DATA, 0x81, 0), PL_ERR_MALFORMED);
    assert_int_equal(feed_one_header(1, PL_FRAME_DATA, 0, 1), PL_ERR_MALFORMED);
    assert_int_equal(feed_one_header(1, PL_FRAME_CONTROL, 0, 0x80), PL_ERR_MALFORMED);
}

static void test_type_switch(void **state)
{
    (void)state;
    uint8_t in[8 + 3 + 8 + 3];
    pl_deframer d;
    size_t used = 0;
    pl_message m;

    memset(in, 'x', sizeof in);
    put_header(in, 1, PL_FRAME_DATA, PL_FRAME_FLAG_MORE, 0, 3);
    put_header(in + 11, 1, PL_FRAME_CONTROL, 0, 0, 3);
    pl_deframer_init(&d, 1000);
    assert_int_equal(pl_deframer_feed(&d, in, sizeof in, &used, &m, NULL, NULL), PL_ERR_MALFORMED);
    assert_int_equal(used, 19);
    pl_deframer_clear(&d);
}

static void test_in_progress(void **state)
{
    (void)state;
    pl_buf s;
    pl_deframer d;
    size_t used = 0;
    pl_message m;
    uint8_t *p = pattern(20000, 9);

    pl_buf_init(&s);
    assert_int_equal(pl_frame_encode_message(&s, PL_FRAME_DATA, p, 20000), PL_OK);
    pl_deframer_init(&d, 65536);
    assert_false(pl_deframer_in_progress(&d));
    /* part of a header */
    assert_int_equal(pl_deframer_feed(&d, pl_buf_head(&s), 3, &used, &m, NULL, NULL), 0);
    assert_true(pl_deframer_in_progress(&d));
    /* rest of header + part of payload */
    assert_int_equal(pl_deframer_feed(&d, pl_buf_head(&s) + 3, 100, &used, &m, NULL, NULL), 0);
    assert_true(pl_deframer_in_progress(&d));
    /* end of the first frame exactly: a frame boundary, but mid-message */
    assert_int_equal(pl_deframer_feed(&d, pl_buf_head(&s) + 103, 8 + 16384 - 103, &used, &m, NULL, NULL), 0);
    assert_int_equal(d.hdr_have, 0);
    assert_true(pl_deframer_in_progress(&d));
    /* the rest */
    assert_int_equal(pl_deframer_feed(&d, pl_buf_head(&s) + 8 + 16384,
                                      pl_buf_size(&s) - 8 - 16384, &used, &m, NULL, NULL),
                     1);
    assert_int_equal(m.len, 20000);
    assert_memory_equal(m.data, p, 20000);
    assert_false(pl_deframer_in_progress(&d));
    /* an empty feed after a message: still nothing in progress */
    assert_int_equal(pl_deframer_feed(&d, NULL, 0, &used, &m, NULL, NULL), 0);
    assert_int_equal(used, 0);
    assert_false(pl_deframer_in_progress(&d));
    pl_deframer_clear(&d);
    pl_buf_clear(&s);
    free(p);
}

/* A reassembly buffer past 64 KiB is kept for a next message of several
 * frames (no growing anew for each large message) and freed for one of
 * one frame. */
static void test_large_buffer_reuse(void **state)
{
    (void)state;
    const size_t big = 100000;
    uint8_t *a = pattern(big, 1), *b = pattern(big, 2);
    pl_buf s;
    pl_deframer d;
    size_t used = 0;
    pl_message m;
    pl_buf_init(&s);
    assert_int_equal(pl_frame_encode_message(&s, PL_FRAME_DATA, a, big), PL_OK);
    assert_int_equal(pl_frame_encode_message(&s, PL_FRAME_DATA, b, big), PL_OK);
    assert_int_equal(pl_frame_encode_message(&s, PL_FRAME_DATA, "small", 5), PL_OK);
    assert_int_equal(pl_frame_encode_message(&s, PL_FRAME_DATA, a, big), PL_OK);
    pl_deframer_init(&d, 1u << 20);
    const uint8_t *p = pl_buf_head(&s);
    size_t n = pl_buf_size(&s);
    assert_int_equal(pl_deframer_feed(&d, p, n, &used, &m, NULL, NULL), 1);
    assert_int_equal(m.len, big);
    assert_memory_equal(m.data, a, big);
    const uint8_t *storage = d.msg.data;
    size_t cap = d.msg.cap;
    assert_true(cap > 64 * 1024);
    p += used;
    n -= used;
    /* the next message's first header (MORE): the buffer stays */
    assert_int_equal(pl_deframer_feed(&d, p, PL_FRAME_HEADER_SIZE, &used, &m, NULL, NULL), 0);
    assert_int_equal(used, PL_FRAME_HEADER_SIZE);
    assert_int_equal(d.msg.cap, cap);
    p += used;
    n -= used;
    assert_int_equal(pl_deframer_feed(&d, p, n, &used, &m, NULL, NULL), 1);
    assert_int_equal(m.len, big);
    assert_memory_equal(m.data, b, big);
    assert_ptr_equal(d.msg.data, storage); /* the same buffer, not grown again */
    assert_int_equal(d.msg.cap, cap);
    p += used;
    n -= used;
    assert_int_equal(pl_deframer_feed(&d, p, n, &used, &m, NULL, NULL), 1);
    assert_int_equal(m.len, 5);
    assert_memory_equal(m.data, "small", 5);
    assert_true(d.msg.cap <= 64 * 1024); /* freed for the message of one frame */
    p += used;
    n -= used;
    assert_int_equal(pl_deframer_feed(&d, p, n, &used, &m, NULL, NULL), 1);
    assert_int_equal(used, n);
    assert_memory_equal(m.data, a, big);
    pl_deframer_clear(&d);
    assert_null(d.msg.data);
    pl_buf_clear(&s);
    free(a);
    free(b);
}

/* A message of one frame that is whole in the input is handed out from
 * the input; one that is not (split here) is collected, with the same bytes. */
static void test_whole_frame_not_copied(void **state)
{
    (void)state;
    uint8_t *a = pattern(3000, 3);
    pl_buf s;
    pl_deframer d;
    size_t used = 0;
    pl_message m;
    pl_buf_init(&s);
    assert_int_equal(pl_frame_encode_message(&s, PL_FRAME_DATA, a, 3000), PL_OK);
    assert_int_equal(pl_frame_encode_message(&s, PL_FRAME_CONTROL, a, 100), PL_OK);
    pl_deframer_init(&d, 65536);
    const uint8_t *p = pl_buf_head(&s);
    assert_int_equal(pl_deframer_feed(&d, p, pl_buf_size(&s), &used, &m, NULL, NULL), 1);
    assert_int_equal(used, 8 + 3000);
    assert_ptr_equal(m.data, p + 8);
    assert_int_equal(m.len, 3000);
    assert_int_equal(pl_deframer_feed(&d, p + used, 50, &used, &m, NULL, NULL), 0); /* split */
    assert_int_equal(pl_deframer_feed(&d, p + 8 + 3000 + 50, 58, &used, &m, NULL, NULL), 1);
    assert_int_equal(m.type, PL_FRAME_CONTROL);
    assert_int_equal(m.len, 100);
    assert_true(m.data < p || m.data >= p + pl_buf_size(&s));
    assert_memory_equal(m.data, a, 100);
    pl_deframer_clear(&d);
    pl_buf_clear(&s);
    free(a);
}

/* The caller's bound sees each header before any of its payload is
 * stored, with the payload bytes of the message so far; its error ends
 * the feed. */
typedef struct bound_log {
    size_t calls, last_have;
    uint8_t last_type;
    int refuse_type;
} bound_log;

static int log_bound(void *ctx, const pl_frame_header *h, size_t have)
{
    bound_log *b = ctx;
    b->calls++;
    b->last_have = have;
    b->last_type = h->type;
    return h->type == b->refuse_type ? PL_ERR_PROTOCOL : PL_OK;
}

static void test_bound_callback(void **state)
{
    (void)state;
    uint8_t *a = pattern(40000, 4);
    pl_buf s;
    pl_deframer d;
    size_t used = 0;
    pl_message m;
    bound_log b = {0, 0, 0, PL_FRAME_CONTROL};
    pl_buf_init(&s);
    assert_int_equal(pl_frame_encode_message(&s, PL_FRAME_DATA, a, 40000), PL_OK); /* 3 frames */
    assert_int_equal(pl_frame_encode_message(&s, PL_FRAME_CONTROL, a, 10), PL_OK);
    pl_deframer_init(&d, 65536);
    assert_int_equal(pl_deframer_feed(&d, pl_buf_head(&s), pl_buf_size(&s), &used, &m, log_bound, &b), 1);
    assert_int_equal(b.calls, 3);
    assert_int_equal(b.last_have, 2 * PL_FRAME_MAX_PAYLOAD);
    assert_memory_equal(m.data, a, 40000);
    size_t off = used;
    assert_int_equal(pl_deframer_feed(&d, pl_buf_head(&s) + off, pl_buf_size(&s) - off, &used, &m, log_bound, &b),
                     PL_ERR_PROTOCOL);
    assert_int_equal(used, PL_FRAME_HEADER_SIZE); /* nothing of the refused payload */
    assert_int_equal(b.calls, 4);
    assert_int_equal(b.last_have, 0);
    assert_int_equal(pl_deframer_feed(&d, pl_buf_head(&s) + off, 1, &used, &m, log_bound, &b), PL_ERR_STATE);
    pl_deframer_clear(&d);
    pl_buf_clear(&s);
    free(a);
}

/* Write each frame of s into the reassembler's room, in turn; collect the messages. */
static int reasm_all(pl_reasm *r, const pl_buf *s, collected *c, pl_frame_bound bound, void *ctx)
{
    const uint8_t *p = pl_buf_head(s);
    size_t n = pl_buf_size(s);
    while (n > 0) {
        pl_frame_header h;
        assert_int_equal(pl_frame_header_decode(p, &h), PL_OK);
        size_t fl = PL_FRAME_HEADER_SIZE + h.length;
        uint8_t *room = pl_reasm_room(r, fl);
        assert_non_null(room);
        memcpy(room, p, fl);
        pl_message m;
        int rc = pl_reasm_take(r, fl, &m, bound, ctx);
        if (rc < 0)
            return rc;
        if (rc == 1) {
            assert_true(c->count < 16);
            c->types[c->count] = m.type;
            c->lens[c->count] = m.len;
            c->data[c->count] = malloc(m.len ? m.len : 1);
            assert_non_null(c->data[c->count]);
            memcpy(c->data[c->count], m.data, m.len);
            c->count++;
        }
        p += fl;
        n -= fl;
    }
    return 0;
}

/* Frames written in place: messages of one and of several frames, empty
 * ones, the type rule, a length that is not the frame's, the bound. */
static void test_reasm(void **state)
{
    (void)state;
    uint8_t *a = pattern(100000, 5);
    pl_buf s;
    pl_reasm r;
    collected c = {0};
    pl_buf_init(&s);
    pl_reasm_init(&r);
    assert_int_equal(pl_frame_encode_message(&s, PL_FRAME_CONTROL, a + 7, 9), PL_OK);
    assert_int_equal(pl_frame_encode_message(&s, PL_FRAME_DATA, NULL, 0), PL_OK);
    assert_int_equal(pl_frame_encode_message(&s, PL_FRAME_DATA, a, 100000), PL_OK);
    assert_int_equal(pl_frame_encode_message(&s, PL_FRAME_DATA, a + 1, 3 * PL_FRAME_MAX_PAYLOAD), PL_OK);
    assert_int_equal(reasm_all(&r, &s, &c, NULL, NULL), 0);
    assert_int_equal(c.count, 4);
    assert_int_equal(c.types[0], PL_FRAME_CONTROL);
    assert_int_equal(c.lens[0], 9);
    assert_memory_equal(c.data[0], a + 7, 9);
    assert_int_equal(c.lens[1], 0);
    assert_int_equal(c.lens[2], 100000);
    assert_memory_equal(c.data[2], a, 100000);
    assert_int_equal(c.lens[3], 3 * PL_FRAME_MAX_PAYLOAD);
    assert_memory_equal(c.data[3], a + 1, 3 * PL_FRAME_MAX_PAYLOAD);
    assert_false(pl_reasm_in_progress(&r));
    collected_free(&c);

    /* A large buffer is kept for a message of several frames (the last
     * one alone would not have grown it past 64 KiB), and freed after one
     * of one frame. */
    size_t cap = r.buf.cap;
    assert_true(cap > 64 * 1024);
    pl_buf_consume(&s, pl_buf_size(&s));
    assert_int_equal(pl_frame_encode_message(&s, PL_FRAME_DATA, a, 5), PL_OK);
    assert_int_equal(reasm_all(&r, &s, &c, NULL, NULL), 0);
    assert_int_equal(r.buf.cap, cap); /* (still holding the message handed out) */
    assert_non_null(pl_reasm_room(&r, PL_FRAME_HEADER_SIZE));
    assert_true(r.buf.cap <= 64 * 1024);
    collected_free(&c);
    pl_reasm_clear(&r);

    /* a frame of another type in the middle of a message */
    pl_buf_consume(&s, pl_buf_size(&s));
    assert_int_equal(pl_frame_encode_message(&s, PL_FRAME_DATA, a, 20000), PL_OK);
    s.len = PL_FRAME_HEADER_SIZE + PL_FRAME_MAX_PAYLOAD; /* the first frame only */
    assert_int_equal(pl_frame_encode_message(&s, PL_FRAME_CONTROL, a, 3), PL_OK);
    assert_int_equal(reasm_all(&r, &s, &c, NULL, NULL), PL_ERR_MALFORMED);
    pl_reasm_clear(&r);

    /* a header whose length is not the frame's */
    uint8_t *room = pl_reasm_room(&r, PL_FRAME_HEADER_SIZE + 4);
    pl_frame_header h = {PL_FRAME_VERSION, PL_FRAME_DATA, 0, 3};
    pl_message m;
    assert_non_null(room);
    pl_frame_header_encode(&h, room);
    assert_int_equal(pl_reasm_take(&r, PL_FRAME_HEADER_SIZE + 4, &m, NULL, NULL), PL_ERR_PROTOCOL);
    pl_reasm_clear(&r);

    /* the bound sees the header and what the message has so far, and may refuse */
    bound_log b = {0, 0, 0, PL_FRAME_CONTROL};
    pl_buf_consume(&s, pl_buf_size(&s));
    assert_int_equal(pl_frame_encode_message(&s, PL_FRAME_DATA, a, 20000), PL_OK);
    assert_int_equal(pl_frame_encode_message(&s, PL_FRAME_CONTROL, a, 3), PL_OK);
    assert_int_equal(reasm_all(&r, &s, &c, log_bound, &b), PL_ERR_PROTOCOL);
    assert_int_equal(c.count, 1);
    assert_int_equal(b.calls, 3);
    assert_int_equal(b.last_type, PL_FRAME_CONTROL);
    assert_int_equal(b.last_have, 0);
    collected_free(&c);
    pl_reasm_clear(&r);
    assert_null(r.buf.data);
    pl_buf_clear(&s);
    free(a);
}

static void test_buf_basics(void **state)
{
    (void)state;
    pl_buf b;
    uint8_t tmp[300];
    pl_buf_init(&b);
    for (size_t i = 0; i < sizeof tmp; i++)
        tmp[i] = (uint8_t)i;
    for (int r = 0; r < 50; r++) {
        assert_int_equal(pl_buf_append(&b, tmp, sizeof tmp), PL_OK);
        pl_buf_consume(&b, 250);
    }
    assert_int_equal(pl_buf_size(&b), 50 * 50);
    for (size_t i = 0; i < 50 * 50; i++)
        assert_int_equal(pl_buf_head(&b)[i], (uint8_t)((12500 + i) % 300));
    /* size + n overflows, and a size no object can have */
    assert_int_equal(pl_buf_reserve(&b, SIZE_MAX - 10), PL_ERR_NOMEM);
    assert_int_equal(pl_buf_reserve(&b, (size_t)PTRDIFF_MAX), PL_ERR_NOMEM);
    assert_int_equal(pl_buf_size(&b), 50 * 50);
    pl_buf_consume(&b, pl_buf_size(&b));
    assert_int_equal(b.off, 0);
    assert_int_equal(b.len, 0);
    assert_int_equal(pl_buf_reserve(&b, SIZE_MAX), PL_ERR_NOMEM);
    assert_int_equal(pl_buf_append(&b, tmp, 0), PL_OK);
    pl_buf_clear(&b);
    assert_null(b.data);
    assert_int_equal(b.cap, 0);
}

/* Fill an entry of n bytes with bytes derived from its number. */
static void ring_fill(uint8_t *p, size_t n, unsigned id)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(id * 31u + i);
}

static void ring_check(const uint8_t *p, size_t n, unsigned id)
{
    for (size_t i = 0; i < n; i++)
        assert_int_equal(p[i], (uint8_t)(id * 31u + i));
}

/* Wrap-around, growth, dropping the head, taking back the tail, by hand. */
static void test_ring_wrap(void **state)
{
    (void)state;
    pl_ring r;
    uint8_t *p[6];
    pl_ring_init(&r);
    assert_int_equal(pl_ring_size(&r), 0);
    assert_null(pl_ring_push(&r, 0));
    for (unsigned i = 0; i < 3; i++) {
        assert_non_null(p[i] = pl_ring_push(&r, 20));
        ring_fill(p[i], 20, i);
    }
    assert_int_equal(r.cap, 64);
    assert_ptr_equal(p[1], p[0] + 20);
    /* dropping the head moves nothing */
    pl_ring_pop(&r, 20);
    assert_int_equal(pl_ring_size(&r), 40);
    assert_ptr_equal(pl_ring_at(&r, 0), p[1]);
    assert_ptr_equal(pl_ring_at(&r, 20), p[2]);
    ring_check(p[2], 20, 2);
    /* 16 bytes do not fit after the end (4 left): they go to 0, before the head */
    assert_non_null(p[3] = pl_ring_push(&r, 16));
    ring_fill(p[3], 16, 3);
    assert_ptr_equal(p[3], r.data);
    assert_int_equal(r.wrap, 16);
    assert_int_equal(pl_ring_size(&r), 56);
    assert_ptr_equal(pl_ring_at(&r, 40), p[3]);
    /* taken back and pushed again: the same place */
    pl_ring_unpush(&r, 16);
    assert_int_equal(r.wrap, 0);
    assert_int_equal(pl_ring_size(&r), 40);
    assert_ptr_equal(pl_ring_push(&r, 16), p[3]);
    ring_fill(p[3], 16, 3);
    /* 8 bytes fit neither after the end nor before the head (4 left): the
     * ring grows, the entries in order from 0, their offsets unchanged */
    assert_non_null(p[4] = pl_ring_push(&r, 8));
    ring_fill(p[4], 8, 4);
    assert_int_equal(r.cap, 128);
    assert_int_equal(r.head, 0);
    assert_int_equal(r.wrap, 0);
    assert_int_equal(pl_ring_size(&r), 64);
    ring_check(pl_ring_at(&r, 0), 20, 1);
    ring_check(pl_ring_at(&r, 20), 20, 2);
    ring_check(pl_ring_at(&r, 40), 16, 3);
    ring_check(pl_ring_at(&r, 56), 8, 4);
    /* the head leaves across the wrap: after the end of the first part, the
     * entries at 0 are the first; the last one leaving empties the ring */
    pl_ring_pop(&r, 20);
    pl_ring_pop(&r, 20);
    assert_non_null(p[5] = pl_ring_push(&r, 60)); /* after the end: 64 + 60 <= 128 */
    assert_non_null(pl_ring_push(&r, 40));         /* before the head (40) */
    assert_int_equal(r.wrap, 40);
    pl_ring_pop(&r, 16);
    pl_ring_pop(&r, 8);
    pl_ring_pop(&r, 60);
    assert_int_equal(r.head, 0);
    assert_int_equal(r.end, 40);
    assert_int_equal(r.wrap, 0);
    pl_ring_pop(&r, 40);
    assert_int_equal(pl_ring_size(&r), 0);
    assert_int_equal(r.head + r.end + r.wrap, 0);
    /* no memory: nothing added, nothing moved */
    assert_non_null(p[0] = pl_ring_push(&r, 10));
    assert_null(pl_ring_push(&r, SIZE_MAX - 5));
    assert_null(pl_ring_push(&r, (size_t)PTRDIFF_MAX));
    assert_int_equal(pl_ring_size(&r), 10);
    assert_ptr_equal(pl_ring_at(&r, 0), p[0]);
    pl_ring_unpush(&r, 10);
    assert_int_equal(r.head + r.end + r.wrap, 0);
    pl_ring_clear(&r);
    assert_null(r.data);
    assert_int_equal(r.cap, 0);
}

/* Random pushes, pops and unpushes against a model: every entry keeps its
 * bytes and its place until the ring grows, and the storage stays within
 * a bound of what is kept (no growth without need). */
static void test_ring_model(void **state)
{
    (void)state;
    enum { MAXN = 64 };
    size_t len[MAXN];
    unsigned id[MAXN];
    size_t first = 0, count = 0, size = 0, peak = 0, cap = 0;
    unsigned next_id = 0, wraps = 0, grows = 0;
    uint32_t x = 0x9e3779b9u;
    pl_ring r;
    pl_ring_init(&r);
    for (int step = 0; step < 200000; step++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        unsigned op = x % 8;
        size_t n = 1 + (x >> 8) % 300;
        if (op < 4 && count < MAXN) {
            const uint8_t *tail = size ? pl_ring_at(&r, size - len[(first + count - 1) % MAXN]) : NULL;
            size_t wrap = r.wrap;
            uint8_t *p = pl_ring_push(&r, n);
            assert_non_null(p);
            if (r.cap != cap) {
                grows++;
                cap = r.cap;
            } else if (tail) {
                assert_ptr_equal(pl_ring_at(&r, size - len[(first + count - 1) % MAXN]), tail);
            }
            wraps += r.wrap == n && wrap == 0;
            ring_fill(p, n, next_id);
            len[(first + count) % MAXN] = n;
            id[(first + count) % MAXN] = next_id++;
            count++;
            size += n;
        } else if (op < 7 && count > 0) {
            size_t k = len[first];
            const uint8_t *second = count > 1 ? pl_ring_at(&r, k) : NULL;
            pl_ring_pop(&r, k);
            if (second)
                assert_ptr_equal(pl_ring_at(&r, 0), second);
            first = (first + 1) % MAXN;
            count--;
            size -= k;
        } else if (count > 0) {
            size_t k = len[(first + count - 1) % MAXN];
            pl_ring_unpush(&r, k);
            count--;
            size -= k;
        }
        if (size > peak)
            peak = size;
        assert_int_equal(pl_ring_size(&r), size);
        assert_true(r.cap <= 2 * (peak + 2 * 300) || r.cap == 64);
        if (count == 0)
            assert_int_equal(r.head + r.end + r.wrap, 0);
        size_t off = 0;
        for (size_t i = 0; i < count; i++) {
            size_t j = (first + i) % MAXN;
            const uint8_t *p = pl_ring_at(&r, off);
            assert_true(p >= r.data && p + len[j] <= r.data + r.cap);
            ring_check(p, len[j], id[j]);
            off += len[j];
        }
    }
    assert_true(wraps > 100); /* the paths above were taken */
    assert_true(grows > 2);
    pl_ring_clear(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_bytes),
        cmocka_unit_test(test_encode_hello_vector),
        cmocka_unit_test(test_encode_split),
        cmocka_unit_test(test_round_trip_sizes),
        cmocka_unit_test(test_every_split_point),
        cmocka_unit_test(test_byte_by_byte),
        cmocka_unit_test(test_coalesced),
        cmocka_unit_test(test_oversized_frame),
        cmocka_unit_test(test_message_too_large),
        cmocka_unit_test(test_bad_headers),
        cmocka_unit_test(test_type_switch),
        cmocka_unit_test(test_in_progress),
        cmocka_unit_test(test_large_buffer_reuse),
        cmocka_unit_test(test_whole_frame_not_copied),
        cmocka_unit_test(test_bound_callback),
        cmocka_unit_test(test_reasm),
        cmocka_unit_test(test_buf_basics),
        cmocka_unit_test(test_ring_wrap),
        cmocka_unit_test(test_ring_model),
    };
    return cmocka_run_group_tests_name("frame", tests, NULL, NULL);
}
