/* SPDX-License-Identifier: ISC */
/*
 * libFuzzer target: arbitrary bytes into a deframer (max_message 65536).
 * The first four input bytes are chunk sizes (1..256, used in turn); the
 * rest is the stream, fed chunk by chunk until an error or its end.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <peerlink/common.h>

#include "frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

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
            rc = pl_deframer_feed(&d, data + pos + off, chunk - off, &used, &m);
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
    return 0;
}
