/* SPDX-License-Identifier: ISC */
/*
 * libFuzzer target for the record layer (lib/core/record.c), fixed key
 * 0x00..0x1f.
 *
 * 1. The input is a sequence of chunks (u32 big-endian length, then that
 *    many payload bytes; the length is reduced modulo
 *    PL_FRAME_MAX_PAYLOAD + 1 and cut to what is left). Each chunk is
 *    opened as the payload of a RECORD frame whose header is built for
 *    its length, by one receiver (rekey_interval 2) across the whole
 *    input. Results must be PL_OK, PL_ERR_AUTH or PL_ERR_MALFORMED
 *    (exactly when shorter than a tag). After the first failure the
 *    session would be over, but the receiver is kept: a failed open
 *    leaves it unchanged, which is checked.
 * 2. The input (cut to PL_RECORD_MAX_INNER) is sealed three times
 *    (crossing a rekey) and opened by a second direction keyed the same;
 *    the round trip must be exact, and a single flipped bit (chosen from
 *    the input) must make the record fail with PL_ERR_AUTH. A third
 *    direction seals the same input from three parts (cut where its first
 *    two bytes say), which must give the same records.
 * Any violation aborts.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include <peerlink/common.h>

#include "buf.h"
#include "frame.h"
#include "record.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t fuzz_key[PL_RECORD_KEY];
static uint8_t out_buf[PL_FRAME_MAX_PAYLOAD];

static void fuzz_setup(void)
{
    static int done;
    if (done)
        return;
    if (sodium_init() < 0)
        abort();
    for (int i = 0; i < PL_RECORD_KEY; i++)
        fuzz_key[i] = (uint8_t)i;
    done = 1;
}

static void open_chunks(const uint8_t *data, size_t size)
{
    pl_record_dir rx;
    size_t pos = 0;

    pl_record_init(&rx, fuzz_key, 2);
    while (pos + 4 <= size) {
        uint32_t raw = ((uint32_t)data[pos] << 24) | ((uint32_t)data[pos + 1] << 16) |
                       ((uint32_t)data[pos + 2] << 8) | (uint32_t)data[pos + 3];
        size_t len = raw % (PL_FRAME_MAX_PAYLOAD + 1u);
        uint8_t hdr[PL_FRAME_HEADER_SIZE];
        pl_frame_header h;
        pl_record_dir before = rx;
        size_t out_len = 1;
        int rc;

        pos += 4;
        if (len > size - pos)
            len = size - pos;
        h.version = PL_FRAME_VERSION;
        h.type = PL_FRAME_RECORD;
        h.flags = 0;
        h.length = (uint32_t)len;
        pl_frame_header_encode(&h, hdr);
        if (pl_frame_header_decode(hdr, &h) != PL_OK)
            abort();
        rc = pl_record_open(&rx, hdr, data + pos, len, out_buf, &out_len);
        if (len < PL_RECORD_TAG) {
            if (rc != PL_ERR_MALFORMED)
                abort();
        } else if (rc == PL_OK) {
            if (out_len != len - PL_RECORD_TAG)
                abort();
            if (rx.counter == before.counter && rx.epoch == before.epoch)
                abort(); /* a success must advance */
        } else if (rc != PL_ERR_AUTH) {
            abort();
        }
        if (rc != PL_OK) {
            if (out_len != 0 || rx.counter != before.counter || rx.epoch != before.epoch ||
                rx.rekey_interval != before.rekey_interval || rx.ready != before.ready ||
                memcmp(rx.key, before.key, PL_RECORD_KEY) != 0)
                abort(); /* a failure changes nothing */
        }
        sodium_memzero(&before, sizeof before);
        pos += len;
    }
    pl_record_clear(&rx);
}

static void round_trip(const uint8_t *data, size_t size)
{
    size_t n = size < PL_RECORD_MAX_INNER ? size : PL_RECORD_MAX_INNER;
    pl_record_dir tx, rx;
    pl_buf b;

    pl_record_dir parted;
    pl_buf pb;
    size_t cut1 = size > 0 ? data[0] % (n + 1) : 0, cut2 = size > 1 ? data[1] % (n + 1) : n;
    if (cut2 < cut1)
        cut2 = cut1;
    const pl_record_part parts[3] = {{data, cut1}, {data + cut1, cut2 - cut1}, {data + cut2, n - cut2}};

    pl_record_init(&tx, fuzz_key, 2);
    pl_record_init(&rx, fuzz_key, 2);
    pl_record_init(&parted, fuzz_key, 2);
    pl_buf_init(&b);
    pl_buf_init(&pb);
    for (int k = 0; k < 3; k++) {
        const uint8_t *rec;
        size_t plen, out_len = 0;
        pl_frame_header h;

        if (pl_record_seal(&tx, data, n, &b) != PL_OK)
            abort();
        if (pl_record_seal_parts(&parted, parts, 3, &pb) != PL_OK || pl_buf_size(&pb) != pl_buf_size(&b) ||
            memcmp(pl_buf_head(&pb), pl_buf_head(&b), pl_buf_size(&b)) != 0)
            abort();
        pl_buf_consume(&pb, pl_buf_size(&pb));
        if (pl_buf_size(&b) != PL_FRAME_HEADER_SIZE + n + PL_RECORD_TAG)
            abort();
        rec = pl_buf_head(&b);
        if (pl_frame_header_decode(rec, &h) != PL_OK || h.type != PL_FRAME_RECORD ||
            h.flags != 0 || h.length != n + PL_RECORD_TAG)
            abort();
        plen = h.length;
        if (size > 0) {
            /* One flipped bit anywhere in the record: must not open (and changes nothing). */
            size_t nbits = (PL_FRAME_HEADER_SIZE + plen) * 8;
            size_t bit = (((size_t)data[0] << 8) | data[size - 1]) * 131u % nbits;
            uint8_t *w = b.data + b.off;
            uint64_t counter = rx.counter;
            w[bit / 8] ^= (uint8_t)(1u << (bit % 8));
            if (pl_record_open(&rx, rec, rec + PL_FRAME_HEADER_SIZE, plen, out_buf, &out_len) !=
                    PL_ERR_AUTH ||
                rx.counter != counter)
                abort();
            w[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        }
        if (pl_record_open(&rx, rec, rec + PL_FRAME_HEADER_SIZE, plen, out_buf, &out_len) != PL_OK)
            abort();
        if (out_len != n || (n > 0 && memcmp(out_buf, data, n) != 0))
            abort();
        if (rx.counter != tx.counter || rx.epoch != tx.epoch ||
            memcmp(rx.key, tx.key, PL_RECORD_KEY) != 0)
            abort();
        pl_buf_consume(&b, pl_buf_size(&b));
    }
    if (tx.epoch != 1 || tx.counter != 1)
        abort();
    pl_buf_clear(&b);
    pl_buf_clear(&pb);
    pl_record_clear(&tx);
    pl_record_clear(&rx);
    pl_record_clear(&parted);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_setup();
    open_chunks(data, size);
    round_trip(data, size);
    return 0;
}
