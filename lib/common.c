/* SPDX-License-Identifier: ISC */
/* Error strings, version, the log hook, small shared helpers. */
#include "internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>

const char *pl_strerror(int err)
{
    switch (err) {
    case PL_OK: return "success";
    case PL_ERR_INVALID: return "invalid argument";
    case PL_ERR_NOMEM: return "out of memory";
    case PL_ERR_TOO_LARGE: return "too large";
    case PL_ERR_MALFORMED: return "malformed data";
    case PL_ERR_IO: return "input/output error";
    case PL_ERR_NOT_FOUND: return "not found";
    case PL_ERR_TIMEOUT: return "timed out";
    case PL_ERR_CLOSED: return "connection closed by peer";
    case PL_ERR_DAEMON: return "discovery daemon unreachable";
    case PL_ERR_COLLISION: return "name already in use";
    case PL_ERR_UNSUPPORTED: return "not supported";
    case PL_ERR_PROTOCOL: return "protocol violation by peer";
    case PL_ERR_VERSION: return "no common protocol version";
    case PL_ERR_CONNECT: return "could not connect to any address";
    case PL_ERR_STATE: return "invalid in current state";
    case PL_ERR_BACKEND: return "discovery backend failure";
    case PL_ERR_WRONG_CODE: return "wrong code";
    case PL_ERR_NOT_PAIRED: return "not paired: a pairing code is needed";
    case PL_ERR_LOCKED: return "pairing locked after too many failed attempts";
    case PL_ERR_BUSY: return "another pairing is in progress";
    case PL_ERR_AUTH: return "authentication failed";
    case PL_ERR_CORRUPT: return "keystore item corrupt";
    case PL_ERR_DENIED: return "local network access denied";
    case PL_ERR_AGAIN: return "send buffer full";
    case PL_ERR_ABORTED: return "session aborted by peer";
    case PL_ERR_PEER_RESET: return "peer lost the session";
    case PL_ERR_DUPLICATE: return "duplicate session: the other one survives";
    case PL_ERR_PERMISSION: return "permission denied";
    case PL_ERR_NO_INTERFACE: return "no usable network interface";
    case PL_ERR_NO_WIFI_AWARE: return "Wi-Fi Aware unavailable (wpa_supplicant 2.11+ with NAN USD needed)";
    }
    return "unknown error";
}

const char *pl_version(void)
{
    return PACKAGE_VERSION;
}

const char *pl_aead_implementation(void)
{
#ifdef PL_HAVE_LIBCRYPTO_AEAD
    return "libcrypto";
#else
    return "libsodium";
#endif
}

int pl__errno_error(int e)
{
    switch (e) {
    case EACCES:
    case EPERM: return PL_ERR_PERMISSION;
    case ENOMEM:
    case ENOBUFS: return PL_ERR_NOMEM;
    default: return PL_ERR_IO;
    }
}

/* ---------------------------------------------------------------- the log hook */

/* The hook is three words changed together, read by any thread: a tiny
 * spin lock guards them (held for a few loads or stores, never while
 * calling out), and max_level alone is atomic so that the common case,
 * no hook or a level nobody wants, costs one load and no lock. */
static atomic_flag log_lock = ATOMIC_FLAG_INIT;
static atomic_int log_max = -1; /* -1: no hook */
static pl_log_cb log_cb;
static void *log_userdata;

static void log_lock_take(void)
{
    while (atomic_flag_test_and_set_explicit(&log_lock, memory_order_acquire))
        ;
}

static void log_lock_give(void)
{
    atomic_flag_clear_explicit(&log_lock, memory_order_release);
}

void pl_set_log(pl_log_level max_level, pl_log_cb cb, void *userdata)
{
    int max = (int)max_level;
    if (max < PL_LOG_ERROR)
        max = PL_LOG_ERROR;
    if (max > PL_LOG_DEBUG)
        max = PL_LOG_DEBUG;
    log_lock_take();
    log_cb = cb;
    log_userdata = cb ? userdata : NULL;
    atomic_store(&log_max, cb ? max : -1);
    log_lock_give();
}

const char *pl_log_level_name(pl_log_level level)
{
    switch (level) {
    case PL_LOG_ERROR: return "error";
    case PL_LOG_WARNING: return "warning";
    case PL_LOG_INFO: return "info";
    case PL_LOG_DEBUG: return "debug";
    }
    return "?";
}

int pl__log_wants(pl_log_level level)
{
    return (int)level <= atomic_load_explicit(&log_max, memory_order_relaxed);
}

void pl__log(pl_log_level level, const char *fmt, ...)
{
    if (!pl__log_wants(level))
        return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof msg)
        memcpy(msg + sizeof msg - 4, "...", 4);
    log_lock_take();
    pl_log_cb cb = log_cb;
    void *ud = log_userdata;
    int max = atomic_load_explicit(&log_max, memory_order_relaxed);
    log_lock_give();
    if (cb && (int)level <= max) {
        int saved = errno; /* callers log just before returning an error that documents errno */
        cb(level, msg, ud);
        errno = saved;
    }
}

size_t pl_default_max_message(void) { return PL_DEFAULT_MAX_MESSAGE; }
size_t pl_max_message_limit(void) { return PL_MAX_MESSAGE_LIMIT; }

int pl__copy_vtable(void *dst, size_t dst_size, const void *src, size_t v1_size)
{
    size_t size;
    if (!src)
        return PL_ERR_INVALID;
    memcpy(&size, src, sizeof size);
    if (size < v1_size)
        return PL_ERR_INVALID;
    memset(dst, 0, dst_size);
    memcpy(dst, src, size < dst_size ? size : dst_size);
    memcpy(dst, &dst_size, sizeof dst_size);
    return PL_OK;
}

int pl__poll_ok(const pl_poll *p)
{
    return p && p->size >= PL__POLL_V1_SIZE && p->watch_new && p->watch_update && p->watch_free &&
           p->timeout_new && p->timeout_update && p->timeout_free;
}

char *pl__strdup(const char *s)
{
    if (!s)
        return NULL;
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}
