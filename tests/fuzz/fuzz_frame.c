/* SPDX-License-Identifier: ISC */
/*
 * libFuzzer target: arbitrary bytes into a deframer (max_message 65536).
 * The first four input bytes are chunk sizes (1..256, used in turn); the
 * rest is the stream, fed chunk by chunk until an error or its end.
 *
 * Then the same stream, cut into whole frames by the length each header
 * claims (modulo PL_FRAME_MAX_PAYLOAD + 1, cut to what is left), is
 * written frame by frame into a reassembler (a bound of 65536 bytes per
 * message); each message it hands out must be the payloads of its frames,
 * in order, which a copy kept beside it checks.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <peerlink/common.h>

#include "frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int bound_64k(void *ctx, const pl_frame_header *h, size_t have)
{
    (void)ctx;
    return have > 65536 || h->length > 65536 - have ? PL_ERR_TOO_LARGE : PL_OK;
}

static void reasm_run(const uint8_t *data, size_t size)
{
    pl_reasm r;
    pl_buf shadow; /* the payloads of the message so far */
    size_t pos = 0;
    pl_reasm_init(&r);
    pl_buf_init(&shadow);
    while (size - pos >= PL_FRAME_HEADER_SIZE) {
        const uint8_t *f = data + pos;
        size_t claimed = ((size_t)f[4] << 24 | (size_t)f[5] << 16 | (size_t)f[6] << 8 | f[7]) %
                         (PL_FRAME_MAX_PAYLOAD + 1);
        size_t n = PL_FRAME_HEADER_SIZE + claimed;
        if (n > size - pos)
            n = size - pos;
        uint8_t *room = pl_reasm_room(&r, n);
        if (!room)
            break;
        memcpy(room, f, n);
        pl_message m;
        int rc = pl_reasm_take(&r, n, &m, bound_64k, NULL);
        if (rc < 0) {
            if (rc != PL_ERR_VERSION && rc != PL_ERR_MALFORMED && rc != PL_ERR_PROTOCOL &&
                rc != PL_ERR_TOO_LARGE && rc != PL_ERR_NOMEM)
                __builtin_trap();
            break;
        }
        if (n != PL_FRAME_HEADER_SIZE + claimed || pl_buf_append(&shadow, f + PL_FRAME_HEADER_SIZE,
                                                                 n - PL_FRAME_HEADER_SIZE) != PL_OK)
            __builtin_trap(); /* taken: its length was the frame's */
        if (rc == 1) {
            if (m.len != pl_buf_size(&shadow) || m.len > 65536 || m.type != f[1] ||
                (m.len && memcmp(m.data, pl_buf_head(&shadow), m.len) != 0))
                __builtin_trap();
            pl_buf_consume(&shadow, pl_buf_size(&shadow));
        } else if (!pl_reasm_in_progress(&r)) {
            __builtin_trap();
        }
        pos += n;
    }
    pl_reasm_clear(&r);
    pl_buf_clear(&shadow);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t sizes[4] = {255, 255, 255, 255};
    size_t nsizes = size < 4 ? size : 4;
    size_t pos, k = 0;
    pl_deframer d;

    memcpy(sizes, data, nsizes);
    data += nsizes;
    size -= nsizes;
    pl_deframer_init(&d, 65536);
    pos = 0;
    while (pos < size) {
        size_t chunk = (size_t)sizes[k++ % 4] + 1;
        size_t off = 0;
        int rc = 0;
        if (chunk > size - pos)
            chunk = size - pos;
        while (off < chunk) {
            size_t used = 0;
            pl_message m;
            rc = pl_deframer_feed(&d, data + pos + off, chunk - off, &used, &m, NULL, NULL);
            if (used > chunk - off)
                __builtin_trap();
            off += used;
            if (rc < 0)
                break;
            if (rc == 1) {
                volatile uint8_t sink = 0;
                if (m.len > 65536 || (m.type != PL_FRAME_CONTROL && m.type != PL_FRAME_DATA && m.type != PL_FRAME_RECORD))
                    __builtin_trap();
                for (size_t i = 0; i < m.len; i++)
                    sink ^= m.data[i];
                (void)sink;
            } else if (off != chunk) {
                __builtin_trap(); /* 0 means all input was used */
            }
        }
        if (rc < 0)
            break;
        pos += chunk;
    }
    (void)pl_deframer_in_progress(&d);
    pl_deframer_clear(&d);
    reasm_run(data, size);
    return 0;
}
