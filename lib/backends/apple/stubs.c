/* SPDX-License-Identifier: ISC */
/*
 * The Network.framework API (peerlink/apple.h) where there is no
 * Network.framework: every call says so, and the symbols exist so that
 * portable code and bindings link on every platform.
 */
#include "internal.h"

#include <peerlink/apple.h>

int pl_apple_connect(pl_node *node, const pl_service *svc, int timeout_ms, pl_session_cb cb, void *userdata,
                     pl_session **out)
{
    (void)node, (void)svc, (void)timeout_ms, (void)cb, (void)userdata, (void)out;
    return PL_ERR_UNSUPPORTED;
}

int pl_apple_local_network_denied(void)
{
    return 0;
}

int pl_apple_poll_new(pl_apple_poll **out)
{
    (void)out;
    return PL_ERR_UNSUPPORTED;
}

const pl_poll *pl_apple_poll_get(pl_apple_poll *p)
{
    (void)p;
    return NULL;
}

void pl_apple_poll_async(pl_apple_poll *p, void (*fn)(void *ctx), void *ctx)
{
    (void)p, (void)fn, (void)ctx;
}

void pl_apple_poll_free(pl_apple_poll *p)
{
    (void)p;
}
