/*
 * libFuzzer target: arbitrary bytes into a started engine
 * (max_message 65536), in one go per event. On OPEN the engine sends a
 * message; each received message is echoed; on the peer's end-of-stream
 * it shuts down. Queued output is dropped as it grows.
 */
#include <stddef.h>
#include <stdint.h>

#include <peerlink/common.h>

#include "engine.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pl_engine e;
    size_t pos = 0;

    pl_engine_init(&e, 65536);
    if (pl_engine_start(&e) != PL_OK)
        __builtin_trap();
    while (pos < size) {
        size_t used = 0;
        pl_engine_event ev;
        int rc = pl_engine_receive(&e, data + pos, size - pos, &used, &ev);
        if (used > size - pos)
            __builtin_trap();
        pos += used;
        if (rc < 0) {
            if (!e.failed)
                __builtin_trap();
            break;
        }
        if (rc == 0) {
            if (pos != size)
                __builtin_trap();
            break;
        }
        switch (ev.type) {
        case PL_ENGINE_OPEN:
            if (!e.open || e.version != 1 || e.peer_max < 1)
                __builtin_trap();
            (void)pl_engine_send(&e, "fuzz", 4);
            break;
        case PL_ENGINE_MESSAGE:
            if (ev.len > 65536)
                __builtin_trap();
            (void)pl_engine_send(&e, ev.data, ev.len);
            break;
        case PL_ENGINE_PEER_EOF:
            if (pl_engine_shutdown(&e) != PL_OK || !pl_engine_done(&e))
                __builtin_trap();
            break;
        default:
            __builtin_trap();
        }
        if (pl_buf_size(&e.out) > (1u << 20))
            pl_buf_consume(&e.out, pl_buf_size(&e.out));
    }
    (void)pl_engine_truncated(&e);
    pl_engine_clear(&e);
    return 0;
}
