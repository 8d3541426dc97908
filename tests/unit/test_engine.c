/* Unit tests of the connection protocol engine (lib/core/engine.c). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include <peerlink/common.h>
#include <peerlink/conn.h>

#include "buf.h"
#include "engine.h"
#include "frame.h"
#include "peerlink.pb-c.h"

/*
 * Our Hello for max_message = 1048576, checked by hand:
 *   frame header: ver 01, type 01 (CONTROL), flags 00, rsvd 00, length 0000000a
 *   Control field 1 (hello), wire type 2: key 0x0a, length 0x08
 *     Hello field 1 (min_version) varint: 08 01
 *     Hello field 2 (max_version) varint: 10 01
 *     Hello field 3 (max_message) varint: 18 80 80 40  (1048576 = 2^20:
 *       7-bit groups 0000000, 0000000, 1000000 -> 0x80 0x80 0x40)
 */
static const uint8_t hello_vector[] = {0x01, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0a, 0x0a,
                                       0x08, 0x08, 0x01, 0x10, 0x01, 0x18, 0x80, 0x80, 0x40};
/* EndOfStream: Control field 2, length 0 */
static const uint8_t eos_vector[] = {0x01, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x12, 0x00};

/* ---- helpers ---- */

#define MAX_EVENTS 32

typedef struct events {
    size_t count;
    pl_engine_event_type type[MAX_EVENTS];
    uint8_t *data[MAX_EVENTS];
    size_t len[MAX_EVENTS];
    int error; /* last error from receive, 0 if none */
} events;

static void events_free(events *ev)
{
    for (size_t i = 0; i < ev->count; i++)
        free(ev->data[i]);
    memset(ev, 0, sizeof *ev);
}

static uint32_t rng_state;

static uint32_t rng_next(void)
{
    uint32_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    rng_state = x;
    return x;
}

/*
 * Move every queued byte from->out into to, recording to's events.
 * max_chunk 0: one piece; otherwise pieces of 1..max_chunk bytes
 * (sizes from rng_next()). Stops at the first error (kept in ev->error).
 */
static void shuttle(pl_engine *from, pl_engine *to, events *ev, size_t max_chunk)
{
    while (pl_buf_size(&from->out) > 0 && ev->error == 0) {
        size_t n = pl_buf_size(&from->out);
        if (max_chunk > 0) {
            size_t c = 1 + rng_next() % max_chunk;
            if (c < n)
                n = c;
        }
        /* Feed this piece until all of it is used. */
        while (n > 0) {
            size_t used = 0;
            pl_engine_event e;
            int rc = pl_engine_receive(to, pl_buf_head(&from->out), n, &used, &e);
            assert_true(used <= n);
            pl_buf_consume(&from->out, used);
            n -= used;
            if (rc < 0) {
                ev->error = rc;
                return;
            }
            if (rc == 1) {
                assert_true(ev->count < MAX_EVENTS);
                ev->type[ev->count] = e.type;
                ev->len[ev->count] = e.len;
                ev->data[ev->count] = malloc(e.len ? e.len : 1);
                assert_non_null(ev->data[ev->count]);
                if (e.len)
                    memcpy(ev->data[ev->count], e.data, e.len);
                ev->count++;
            } else {
                assert_int_equal(rc, 0);
                assert_int_equal(n, 0);
            }
        }
    }
}

/* Feed raw bytes to an engine, recording events. */
static void feed_raw(pl_engine *to, const uint8_t *p, size_t len, events *ev)
{
    pl_engine src;
    pl_engine_init(&src, 0);
    assert_int_equal(pl_buf_append(&src.out, p, len), PL_OK);
    shuttle(&src, to, ev, 0);
    pl_engine_clear(&src);
}

static uint8_t *pattern(size_t len, uint8_t seed)
{
    uint8_t *p = malloc(len ? len : 1);
    assert_non_null(p);
    for (size_t i = 0; i < len; i++)
        p[i] = (uint8_t)(seed ^ (i * 31) ^ (i >> 11));
    return p;
}

/* Two started engines with both Hellos exchanged. */
static void open_pair(pl_engine *a, pl_engine *b, size_t max_a, size_t max_b)
{
    events ea = {0}, eb = {0};
    pl_engine_init(a, max_a);
    pl_engine_init(b, max_b);
    assert_int_equal(pl_engine_start(a), PL_OK);
    assert_int_equal(pl_engine_start(b), PL_OK);
    shuttle(a, b, &eb, 0);
    shuttle(b, a, &ea, 0);
    assert_int_equal(ea.error, 0);
    assert_int_equal(eb.error, 0);
    assert_int_equal(ea.count, 1);
    assert_int_equal(eb.count, 1);
    assert_int_equal(ea.type[0], PL_ENGINE_OPEN);
    assert_int_equal(eb.type[0], PL_ENGINE_OPEN);
    events_free(&ea);
    events_free(&eb);
}

/* A CONTROL frame holding a Hello with the given fields. */
static void build_hello(pl_buf *out, uint32_t min_v, uint32_t max_v, uint64_t max_msg)
{
    Peerlink__Control c = PEERLINK__CONTROL__INIT;
    Peerlink__Hello h = PEERLINK__HELLO__INIT;
    uint8_t buf[64];
    size_t n;
    h.min_version = min_v;
    h.max_version = max_v;
    h.max_message = max_msg;
    c.msg_case = PEERLINK__CONTROL__MSG_HELLO;
    c.hello = &h;
    assert_true(peerlink__control__get_packed_size(&c) <= sizeof buf);
    n = peerlink__control__pack(&c, buf);
    pl_buf_init(out);
    assert_int_equal(pl_frame_encode_message(out, PL_FRAME_CONTROL, buf, n), PL_OK);
}

/* Result of feeding a started engine: the peer's Hello (hello != 0) then raw bytes. */
static int feed_after_hello(int hello, const uint8_t *p, size_t len, events *ev)
{
    pl_engine e;
    pl_engine_init(&e, 1000);
    assert_int_equal(pl_engine_start(&e), PL_OK);
    if (hello) {
        feed_raw(&e, hello_vector, sizeof hello_vector, ev);
        assert_int_equal(ev->error, 0);
        assert_int_equal(ev->type[0], PL_ENGINE_OPEN);
    }
    feed_raw(&e, p, len, ev);
    if (ev->error != 0) {
        assert_true(e.failed);
        assert_int_equal(pl_engine_send(&e, "x", 1), PL_ERR_STATE);
    }
    pl_engine_clear(&e);
    return ev->error;
}

/* ---- tests ---- */

static void test_hello_bytes(void **state)
{
    (void)state;
    pl_engine e;
    pl_engine_init(&e, 1048576);
    assert_int_equal(pl_engine_send(&e, "x", 1), PL_ERR_STATE); /* before start */
    assert_int_equal(pl_engine_shutdown(&e), PL_ERR_STATE);
    assert_int_equal(pl_engine_start(&e), PL_OK);
    assert_int_equal(pl_buf_size(&e.out), sizeof hello_vector);
    assert_memory_equal(pl_buf_head(&e.out), hello_vector, sizeof hello_vector);
    assert_int_equal(pl_engine_start(&e), PL_ERR_STATE);
    assert_int_equal(pl_buf_size(&e.out), sizeof hello_vector);
    pl_engine_clear(&e);

    /* the generated code agrees with the hand-written vector */
    pl_buf b;
    build_hello(&b, 1, 1, 1048576);
    assert_int_equal(pl_buf_size(&b), sizeof hello_vector);
    assert_memory_equal(pl_buf_head(&b), hello_vector, sizeof hello_vector);
    pl_buf_clear(&b);
}

static void test_set_max_message(void **state)
{
    (void)state;
    pl_engine e;
    pl_engine_init(&e, 0);
    assert_int_equal(e.max_message, PL_DEFAULT_MAX_MESSAGE);
    assert_int_equal(pl_engine_set_max_message(&e, 0), PL_ERR_INVALID);
    assert_int_equal(pl_engine_set_max_message(&e, PL_MAX_MESSAGE_LIMIT + 1), PL_ERR_INVALID);
    assert_int_equal(pl_engine_set_max_message(&e, PL_MAX_MESSAGE_LIMIT), PL_OK);
    assert_int_equal(pl_engine_set_max_message(&e, 1048576), PL_OK);
    assert_int_equal(pl_engine_start(&e), PL_OK);
    assert_memory_equal(pl_buf_head(&e.out), hello_vector, sizeof hello_vector);
    assert_int_equal(pl_engine_set_max_message(&e, 2000), PL_ERR_STATE);
    pl_engine_clear(&e);
}

static void test_open(void **state)
{
    (void)state;
    pl_engine a, b;
    open_pair(&a, &b, 5000, 7000);
    assert_true(a.open && b.open);
    assert_int_equal(a.version, 1);
    assert_int_equal(b.version, 1);
    assert_int_equal(a.peer_max, 7000);
    assert_int_equal(b.peer_max, 5000);
    assert_false(pl_engine_done(&a));
    assert_false(pl_engine_truncated(&a));
    pl_engine_clear(&a);
    pl_engine_clear(&b);
}

static void test_messages_both_ways(void **state)
{
    (void)state;
    static const size_t sizes[] = {0, 1, 5, 16383, 16384, 16385, 100000};
    const size_t nsizes = sizeof sizes / sizeof sizes[0];
    for (int chunked = 0; chunked < 2; chunked++) {
        pl_engine a, b;
        events ea = {0}, eb = {0};
        rng_state = 0x12345678u;
        open_pair(&a, &b, 200000, 200000);
        for (size_t i = 0; i < nsizes; i++) {
            uint8_t *p = pattern(sizes[i], (uint8_t)i);
            assert_int_equal(pl_engine_send(&a, p, sizes[i]), PL_OK);
            assert_int_equal(pl_engine_send(&b, p, sizes[i]), PL_OK);
            free(p);
        }
        shuttle(&a, &b, &eb, chunked ? 3000 : 0);
        shuttle(&b, &a, &ea, chunked ? 7 : 0);
        assert_int_equal(ea.error, 0);
        assert_int_equal(eb.error, 0);
        assert_int_equal(ea.count, nsizes);
        assert_int_equal(eb.count, nsizes);
        for (size_t i = 0; i < nsizes; i++) {
            uint8_t *p = pattern(sizes[i], (uint8_t)i);
            assert_int_equal(ea.type[i], PL_ENGINE_MESSAGE);
            assert_int_equal(eb.type[i], PL_ENGINE_MESSAGE);
            assert_int_equal(ea.len[i], sizes[i]);
            assert_int_equal(eb.len[i], sizes[i]);
            if (sizes[i]) {
                assert_memory_equal(ea.data[i], p, sizes[i]);
                assert_memory_equal(eb.data[i], p, sizes[i]);
            }
            free(p);
        }
        assert_false(pl_engine_truncated(&a));
        assert_false(pl_engine_truncated(&b));
        events_free(&ea);
        events_free(&eb);
        pl_engine_clear(&a);
        pl_engine_clear(&b);
    }
}

static void test_big_message(void **state)
{
    (void)state;
    const size_t big = 3u * 1024u * 1024u;
    pl_engine a, b;
    events ea = {0}, eb = {0};
    uint8_t *p = pattern(big, 0x5a);

    rng_state = 42;
    open_pair(&a, &b, 4u * 1024u * 1024u, 4u * 1024u * 1024u);
    assert_int_equal(pl_engine_send(&a, p, big), PL_OK);
    assert_int_equal(pl_engine_send(&b, p, big), PL_OK);
    shuttle(&a, &b, &eb, 65536);
    shuttle(&b, &a, &ea, 0);
    assert_int_equal(ea.error, 0);
    assert_int_equal(eb.error, 0);
    assert_int_equal(ea.count, 1);
    assert_int_equal(eb.count, 1);
    assert_int_equal(ea.len[0], big);
    assert_int_equal(eb.len[0], big);
    assert_memory_equal(ea.data[0], p, big);
    assert_memory_equal(eb.data[0], p, big);
    events_free(&ea);
    events_free(&eb);
    pl_engine_clear(&a);
    pl_engine_clear(&b);

    /* the default maximum (1 MiB) refuses it once open */
    open_pair(&a, &b, 0, 0);
    assert_int_equal(pl_engine_send(&a, p, big), PL_ERR_TOO_LARGE);
    assert_int_equal(pl_buf_size(&a.out), 0);
    pl_engine_clear(&a);
    pl_engine_clear(&b);
    free(p);
}

static void test_send_too_large(void **state)
{
    (void)state;
    pl_engine a, b;
    uint8_t *p = pattern(1001, 1);

    /* before open, only the hard limit applies (data is not read when refused) */
    pl_engine_init(&a, 1000);
    assert_int_equal(pl_engine_start(&a), PL_OK);
    size_t before = pl_buf_size(&a.out);
    assert_int_equal(pl_engine_send(&a, p, (size_t)PL_MAX_MESSAGE_LIMIT + 1), PL_ERR_TOO_LARGE);
    assert_int_equal(pl_buf_size(&a.out), before);
    pl_engine_clear(&a);

    open_pair(&a, &b, 1000, 1000);
    assert_int_equal(pl_engine_send(&a, p, 1001), PL_ERR_TOO_LARGE);
    assert_int_equal(pl_buf_size(&a.out), 0); /* nothing queued */
    assert_int_equal(pl_engine_send(&a, p, 1000), PL_OK);
    assert_int_equal(pl_buf_size(&a.out), 1008);
    assert_false(a.failed);
    pl_engine_clear(&a);
    pl_engine_clear(&b);
    free(p);
}

static void test_receive_too_large(void **state)
{
    (void)state;
    /* A peer ignoring our max_message (100, below PL_CONTROL_MAX) is stopped at the header. */
    pl_engine a;
    events ev = {0};
    pl_buf m;
    uint8_t *p = pattern(101, 2);

    pl_engine_init(&a, 100);
    assert_int_equal(pl_engine_start(&a), PL_OK);
    feed_raw(&a, hello_vector, sizeof hello_vector, &ev);
    assert_int_equal(ev.type[0], PL_ENGINE_OPEN);
    pl_buf_init(&m);
    assert_int_equal(pl_frame_encode_message(&m, PL_FRAME_DATA, p, 101), PL_OK);
    size_t used = 0;
    pl_engine_event e;
    assert_int_equal(pl_engine_receive(&a, pl_buf_head(&m), pl_buf_size(&m), &used, &e),
                     PL_ERR_TOO_LARGE);
    assert_int_equal(used, PL_FRAME_HEADER_SIZE);
    assert_true(a.in.msg.cap < 101); /* never grown for it (64: left from the Hello) */
    assert_true(a.failed);
    assert_int_equal(pl_engine_receive(&a, pl_buf_head(&m), 1, &used, &e), PL_ERR_STATE);
    pl_buf_clear(&m);
    events_free(&ev);
    pl_engine_clear(&a);
    free(p);
}

static void test_shutdown(void **state)
{
    (void)state;
    pl_engine a, b;
    events ea = {0}, eb = {0};

    open_pair(&a, &b, 0, 0);
    assert_int_equal(pl_engine_send(&a, "last", 4), PL_OK);
    assert_int_equal(pl_engine_shutdown(&a), PL_OK);
    size_t queued = pl_buf_size(&a.out);
    assert_int_equal(queued, 8 + 4 + sizeof eos_vector);
    assert_memory_equal(pl_buf_head(&a.out) + 12, eos_vector, sizeof eos_vector);
    assert_int_equal(pl_engine_shutdown(&a), PL_OK); /* idempotent, queues nothing */
    assert_int_equal(pl_buf_size(&a.out), queued);
    assert_int_equal(pl_engine_send(&a, "x", 1), PL_ERR_STATE);

    shuttle(&a, &b, &eb, 0);
    assert_int_equal(eb.error, 0);
    assert_int_equal(eb.count, 2);
    assert_int_equal(eb.type[0], PL_ENGINE_MESSAGE);
    assert_int_equal(eb.type[1], PL_ENGINE_PEER_EOF);
    assert_false(pl_engine_done(&a));
    assert_false(pl_engine_done(&b));

    /* b may still send after the peer's end-of-stream */
    assert_int_equal(pl_engine_send(&b, "reply", 5), PL_OK);
    assert_int_equal(pl_engine_shutdown(&b), PL_OK);
    assert_true(pl_engine_done(&b));
    shuttle(&b, &a, &ea, 0);
    assert_int_equal(ea.error, 0);
    assert_int_equal(ea.count, 2);
    assert_int_equal(ea.type[0], PL_ENGINE_MESSAGE);
    assert_memory_equal(ea.data[0], "reply", 5);
    assert_int_equal(ea.type[1], PL_ENGINE_PEER_EOF);
    assert_true(pl_engine_done(&a));
    assert_false(pl_engine_truncated(&a));
    events_free(&ea);
    events_free(&eb);
    pl_engine_clear(&a);
    pl_engine_clear(&b);
}

static void test_version_mismatch(void **state)
{
    (void)state;
    pl_buf h;
    events ev = {0};

    build_hello(&h, 2, 5, 1000);
    assert_int_equal(feed_after_hello(0, pl_buf_head(&h), pl_buf_size(&h), &ev), PL_ERR_VERSION);
    events_free(&ev);
    pl_buf_clear(&h);

    /* max_version 0 and min > max are no common version either */
    build_hello(&h, 0, 0, 1000);
    assert_int_equal(feed_after_hello(0, pl_buf_head(&h), pl_buf_size(&h), &ev), PL_ERR_VERSION);
    events_free(&ev);
    pl_buf_clear(&h);

    /* a range that includes 1 agrees on 1 */
    pl_engine e;
    build_hello(&h, 1, 7, 1u << 30);
    pl_engine_init(&e, 0);
    assert_int_equal(pl_engine_start(&e), PL_OK);
    feed_raw(&e, pl_buf_head(&h), pl_buf_size(&h), &ev);
    assert_int_equal(ev.error, 0);
    assert_int_equal(ev.type[0], PL_ENGINE_OPEN);
    assert_int_equal(e.version, 1);
    assert_int_equal(e.peer_max, PL_MAX_MESSAGE_LIMIT); /* clamped */
    events_free(&ev);
    pl_engine_clear(&e);
    pl_buf_clear(&h);

    /* max_message 0 */
    build_hello(&h, 1, 1, 0);
    assert_int_equal(feed_after_hello(0, pl_buf_head(&h), pl_buf_size(&h), &ev), PL_ERR_PROTOCOL);
    events_free(&ev);
    pl_buf_clear(&h);
}

static void test_protocol_violations(void **state)
{
    (void)state;
    events ev = {0};
    pl_buf b;

    /* data before Hello: refused at the frame header */
    pl_buf_init(&b);
    assert_int_equal(pl_frame_encode_message(&b, PL_FRAME_DATA, "hello", 5), PL_OK);
    assert_int_equal(feed_after_hello(0, pl_buf_head(&b), pl_buf_size(&b), &ev), PL_ERR_PROTOCOL);
    assert_int_equal(ev.count, 0);
    events_free(&ev);

    /* an empty data message before Hello too */
    pl_buf_clear(&b);
    assert_int_equal(pl_frame_encode_message(&b, PL_FRAME_DATA, NULL, 0), PL_OK);
    assert_int_equal(feed_after_hello(0, pl_buf_head(&b), pl_buf_size(&b), &ev), PL_ERR_PROTOCOL);
    events_free(&ev);

    /* EndOfStream before Hello */
    assert_int_equal(feed_after_hello(0, eos_vector, sizeof eos_vector, &ev), PL_ERR_PROTOCOL);
    events_free(&ev);

    /* a second Hello */
    assert_int_equal(feed_after_hello(1, hello_vector, sizeof hello_vector, &ev), PL_ERR_PROTOCOL);
    events_free(&ev);

    /* data after end-of-stream */
    pl_buf_clear(&b);
    assert_int_equal(pl_buf_append(&b, eos_vector, sizeof eos_vector), PL_OK);
    assert_int_equal(pl_frame_encode_message(&b, PL_FRAME_DATA, "x", 1), PL_OK);
    assert_int_equal(feed_after_hello(1, pl_buf_head(&b), pl_buf_size(&b), &ev), PL_ERR_PROTOCOL);
    assert_int_equal(ev.type[1], PL_ENGINE_PEER_EOF);
    events_free(&ev);

    /* a second end-of-stream */
    pl_buf_clear(&b);
    assert_int_equal(pl_buf_append(&b, eos_vector, sizeof eos_vector), PL_OK);
    assert_int_equal(pl_buf_append(&b, eos_vector, sizeof eos_vector), PL_OK);
    assert_int_equal(feed_after_hello(1, pl_buf_head(&b), pl_buf_size(&b), &ev), PL_ERR_PROTOCOL);
    events_free(&ev);

    /* Control with no message set (empty payload) */
    pl_buf_clear(&b);
    assert_int_equal(pl_frame_encode_message(&b, PL_FRAME_CONTROL, NULL, 0), PL_OK);
    assert_int_equal(feed_after_hello(1, pl_buf_head(&b), pl_buf_size(&b), &ev), PL_ERR_PROTOCOL);
    events_free(&ev);

    /* Control with only an unknown field (field 15, varint 1): no known message */
    static const uint8_t unknown[] = {0x78, 0x01};
    pl_buf_clear(&b);
    assert_int_equal(pl_frame_encode_message(&b, PL_FRAME_CONTROL, unknown, 2), PL_OK);
    assert_int_equal(feed_after_hello(1, pl_buf_head(&b), pl_buf_size(&b), &ev), PL_ERR_PROTOCOL);
    events_free(&ev);

    /* a bad frame header is MALFORMED */
    static const uint8_t bad_flags[] = {0x01, 0x02, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00};
    assert_int_equal(feed_after_hello(1, bad_flags, sizeof bad_flags, &ev), PL_ERR_MALFORMED);
    events_free(&ev);
    static const uint8_t bad_version[] = {0x02, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
    assert_int_equal(feed_after_hello(0, bad_version, sizeof bad_version, &ev), PL_ERR_VERSION);
    events_free(&ev);
    pl_buf_clear(&b);
}

static void test_garbage_control(void **state)
{
    (void)state;
    events ev = {0};
    pl_buf b;
    /* truncated varint / bad wire type / length past the end */
    static const uint8_t g1[] = {0xff, 0xff, 0xff};
    static const uint8_t g2[] = {0x0a, 0x20, 0x08};
    static const uint8_t g3[] = {0x0f};

    pl_buf_init(&b);
    assert_int_equal(pl_frame_encode_message(&b, PL_FRAME_CONTROL, g1, sizeof g1), PL_OK);
    assert_int_equal(feed_after_hello(0, pl_buf_head(&b), pl_buf_size(&b), &ev), PL_ERR_MALFORMED);
    events_free(&ev);
    pl_buf_clear(&b);
    assert_int_equal(pl_frame_encode_message(&b, PL_FRAME_CONTROL, g2, sizeof g2), PL_OK);
    assert_int_equal(feed_after_hello(0, pl_buf_head(&b), pl_buf_size(&b), &ev), PL_ERR_MALFORMED);
    events_free(&ev);
    pl_buf_clear(&b);
    assert_int_equal(pl_frame_encode_message(&b, PL_FRAME_CONTROL, g3, sizeof g3), PL_OK);
    assert_int_equal(feed_after_hello(1, pl_buf_head(&b), pl_buf_size(&b), &ev), PL_ERR_MALFORMED);
    events_free(&ev);
    pl_buf_clear(&b);

    /* a control message over PL_CONTROL_MAX is refused at its second frame header,
     * even though max_message (1 MiB) would allow it */
    uint8_t *p = pattern(PL_CONTROL_MAX + 1, 7);
    pl_engine e;
    size_t used = 0;
    pl_engine_event out;
    assert_int_equal(pl_frame_encode_message(&b, PL_FRAME_CONTROL, p, PL_CONTROL_MAX + 1), PL_OK);
    pl_engine_init(&e, 0);
    assert_int_equal(pl_engine_start(&e), PL_OK);
    assert_int_equal(pl_engine_receive(&e, pl_buf_head(&b), pl_buf_size(&b), &used, &out),
                     PL_ERR_TOO_LARGE);
    assert_int_equal(used, PL_FRAME_HEADER_SIZE);
    assert_int_equal(e.in.msg.cap, 0);
    pl_engine_clear(&e);
    pl_buf_clear(&b);

    /* and across frames: 4000 with MORE, then 100 */
    static const uint8_t h1[] = {0x01, 0x01, 0x01, 0x00, 0x00, 0x00, 0x0f, 0xa0};
    static const uint8_t h2[] = {0x01, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x64};
    assert_int_equal(pl_buf_append(&b, h1, 8), PL_OK);
    assert_int_equal(pl_buf_append(&b, p, 4000), PL_OK);
    assert_int_equal(pl_buf_append(&b, h2, 8), PL_OK);
    assert_int_equal(pl_buf_append(&b, p, 100), PL_OK);
    pl_engine_init(&e, 0);
    assert_int_equal(pl_engine_receive(&e, pl_buf_head(&b), pl_buf_size(&b), &used, &out),
                     PL_ERR_TOO_LARGE);
    assert_int_equal(used, 8 + 4000 + 8);
    assert_int_equal(pl_buf_size(&e.in.msg), 4000);
    assert_true(e.in.msg.cap < 4100);
    pl_engine_clear(&e);
    pl_buf_clear(&b);
    free(p);
}

static void test_truncated(void **state)
{
    (void)state;
    pl_engine a, b;
    events eb = {0};
    uint8_t *p = pattern(40000, 3);

    open_pair(&a, &b, 0, 0);
    assert_int_equal(pl_engine_send(&a, p, 40000), PL_OK);
    size_t total = pl_buf_size(&a.out);

    /* half a header */
    pl_buf part;
    pl_buf_init(&part);
    assert_int_equal(pl_buf_append(&part, pl_buf_head(&a.out), 4), PL_OK);
    {
        pl_engine src;
        pl_engine_init(&src, 0);
        src.out = part;
        shuttle(&src, &b, &eb, 0);
        pl_buf_clear(&src.out);
    }
    assert_true(pl_engine_truncated(&b));
    pl_buf_consume(&a.out, 4);

    /* up to a frame boundary in the middle of the message */
    pl_engine src;
    pl_engine_init(&src, 0);
    assert_int_equal(pl_buf_append(&src.out, pl_buf_head(&a.out), 8 + 16384 - 4), PL_OK);
    shuttle(&src, &b, &eb, 0);
    pl_engine_clear(&src);
    pl_buf_consume(&a.out, 8 + 16384 - 4);
    assert_int_equal(b.in.hdr_have, 0);
    assert_true(pl_engine_truncated(&b));
    assert_int_equal(eb.count, 0);

    /* the rest */
    assert_int_equal(pl_buf_size(&a.out), total - 8 - 16384);
    shuttle(&a, &b, &eb, 0);
    assert_int_equal(eb.error, 0);
    assert_int_equal(eb.count, 1);
    assert_int_equal(eb.len[0], 40000);
    assert_memory_equal(eb.data[0], p, 40000);
    assert_false(pl_engine_truncated(&b));
    events_free(&eb);
    pl_engine_clear(&a);
    pl_engine_clear(&b);
    free(p);
}

static void test_receive_before_start(void **state)
{
    (void)state;
    /* the peer's Hello may arrive before we start; OPEN is reported, sending still needs start */
    pl_engine e;
    events ev = {0};
    pl_engine_init(&e, 0);
    feed_raw(&e, hello_vector, sizeof hello_vector, &ev);
    assert_int_equal(ev.error, 0);
    assert_int_equal(ev.type[0], PL_ENGINE_OPEN);
    assert_int_equal(pl_engine_send(&e, "x", 1), PL_ERR_STATE);
    assert_int_equal(pl_engine_start(&e), PL_OK);
    assert_int_equal(pl_engine_send(&e, "x", 1), PL_OK);
    events_free(&ev);
    pl_engine_clear(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hello_bytes),
        cmocka_unit_test(test_set_max_message),
        cmocka_unit_test(test_open),
        cmocka_unit_test(test_messages_both_ways),
        cmocka_unit_test(test_big_message),
        cmocka_unit_test(test_send_too_large),
        cmocka_unit_test(test_receive_too_large),
        cmocka_unit_test(test_shutdown),
        cmocka_unit_test(test_version_mismatch),
        cmocka_unit_test(test_protocol_violations),
        cmocka_unit_test(test_garbage_control),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_receive_before_start),
    };
    return cmocka_run_group_tests_name("engine", tests, NULL, NULL);
}
