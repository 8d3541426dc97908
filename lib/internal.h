/* SPDX-License-Identifier: ISC */
/* Internal helpers shared by the library's sources. Not installed. */
#ifndef PL_INTERNAL_H
#define PL_INTERNAL_H

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <peerlink/peerlink.h>

/* The application's vtables begin with their size (pl_poll,
 * pl_keystore_ops, pl_channel_ops). What the first version of each holds: */
#define PL__POLL_V1_SIZE (offsetof(pl_poll, timeout_free) + sizeof(void (*)(pl_timeout *)))
#define PL__KEYSTORE_OPS_V1_SIZE (offsetof(pl_keystore_ops, free) + sizeof(void (*)(void *)))
#define PL__CHANNEL_OPS_V1_SIZE (offsetof(pl_channel_ops, input_ready) + sizeof(void (*)(void *)))
/* Copy such a table into dst (dst_size bytes): the members both know, the
 * rest zero, dst's size set to dst_size. PL_ERR_INVALID if src is NULL
 * or its size is below v1_size. */
int pl__copy_vtable(void *dst, size_t dst_size, const void *src, size_t v1_size);
/* A usable pl_poll: its size covers the first version, every function set. */
int pl__poll_ok(const pl_poll *poll);

/* The pl_error for a failed system call's errno: PL_ERR_PERMISSION for
 * EACCES / EPERM, PL_ERR_NOMEM for ENOMEM / ENOBUFS, else PL_ERR_IO. */
int pl__errno_error(int e);

/* Log one message, printf-style, to the hook of pl_set_log() if it wants
 * this level; formats nothing otherwise. One line, no trailing newline,
 * at most 511 bytes (longer ones end in "..."). Never pass a secret
 * (code, key, proof, session secret, message content): see common.h.
 * pl__log_wants() tells whether a message would be delivered, for a
 * caller that must compute an argument first (an address string). */
#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
void pl__log(pl_log_level level, const char *fmt, ...);
int pl__log_wants(pl_log_level level);

/* Duplicate a NUL-terminated string; NULL on allocation failure or NULL input. */
char *pl__strdup(const char *s);

#endif
