/* SPDX-License-Identifier: ISC */
/*
 * peerlink — common definitions: export macro, error codes, version.
 *
 * Every public function of peerlink returns either a pl_error value
 * (PL_OK == 0, failures are negative) or documents otherwise.
 * Error codes are append-only: a value, once released, is never
 * renumbered or removed.
 */
#ifndef PEERLINK_COMMON_H
#define PEERLINK_COMMON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(PL_BUILDING_LIBRARY) && defined(__GNUC__) && __GNUC__ >= 4
#define PL_EXPORT __attribute__((visibility("default")))
#else
#define PL_EXPORT
#endif

/** Error codes. PL_OK is 0; every failure is negative. Append only. */
typedef enum pl_error {
    PL_OK = 0,
    PL_ERR_INVALID = -1,      /**< an argument is invalid (NULL, out of range, bad key) */
    PL_ERR_NOMEM = -2,        /**< memory allocation failed */
    PL_ERR_TOO_LARGE = -3,    /**< input exceeds a documented bound; nothing was truncated */
    PL_ERR_MALFORMED = -4,    /**< bytes from the network do not parse */
    PL_ERR_IO = -5,           /**< a system call failed (see errno where documented) */
    PL_ERR_NOT_FOUND = -6,    /**< no such key, peer, service or entry */
    PL_ERR_TIMEOUT = -7,      /**< a deadline passed */
    PL_ERR_CLOSED = -8,       /**< the peer closed the connection */
    PL_ERR_DAEMON = -9,       /**< the discovery daemon (avahi-daemon) is unreachable */
    PL_ERR_COLLISION = -10,   /**< a service name is already taken */
    PL_ERR_UNSUPPORTED = -11, /**< not available on this platform or build */
    PL_ERR_PROTOCOL = -12,    /**< the peer violated the protocol */
    PL_ERR_VERSION = -13,     /**< the peer speaks no protocol version we speak */
    PL_ERR_CONNECT = -14,     /**< no address of the peer accepted a connection */
    PL_ERR_STATE = -15,       /**< the call is not valid in the object's current state */
    PL_ERR_BACKEND = -16,     /**< the discovery backend reported a failure */
    PL_ERR_WRONG_CODE = -17,  /**< pairing failed: the two sides did not use the same code */
    PL_ERR_NOT_PAIRED = -18,  /**< the peers are not paired (or one forgot the other) and no code was given */
    PL_ERR_LOCKED = -19,      /**< pairing is locked for a while after too many failed attempts */
    PL_ERR_BUSY = -20,        /**< another pairing is in progress on this listener */
    PL_ERR_AUTH = -21,        /**< authentication failed: a tampered, replayed or forged message, or an unexpected identity */
    PL_ERR_CORRUPT = -22,     /**< a keystore item is corrupt (checksum or format) */
    PL_ERR_DENIED = -23,      /**< the system refused access to the local network (e.g. the user declined the prompt) */
    PL_ERR_AGAIN = -24,       /**< the send buffer is full: wait for PL_SESSION_ACKED and send again */
    PL_ERR_ABORTED = -25,     /**< the peer aborted the session (its messages in flight are lost) */
    PL_ERR_PEER_RESET = -26,  /**< the peer lost the session (it restarted): see PL_SESSION_RESUMED */
    PL_ERR_DUPLICATE = -27,   /**< both peers dialled each other at once: the other session survives */
    PL_ERR_PERMISSION = -28,  /**< the operating system refused a privileged operation (EACCES / EPERM on a
                               *   socket, bind or multicast join; Avahi's access denied): not PL_ERR_DENIED,
                               *   which is a user declining local-network access */
    PL_ERR_NO_INTERFACE = -29, /**< no usable network interface (none up with multicast, or a named one is
                               *   down or cannot do multicast) */
    PL_ERR_NO_WIFI_AWARE = -30 /**< Wi-Fi Aware is not available here: the "nan" discovery backend found a
                               *   wpa_supplicant without NAN USD (it needs 2.11 or later, built with
                               *   CONFIG_NAN_USD=y; see docs/WIFI-AWARE.md) */
} pl_error;

/**
 * A static, human-readable English description of an error code.
 * Never NULL; unknown codes give "unknown error". Thread-safe.
 */
PL_EXPORT const char *pl_strerror(int err);

/* ------------------------------------------------------------------ */
/* Diagnostics                                                          */
/* ------------------------------------------------------------------ */

/** How much a log message matters, most important first. */
typedef enum pl_log_level {
    PL_LOG_ERROR = 0,   /**< an operation failed, and why (the error an API call returns, with its cause) */
    PL_LOG_WARNING = 1, /**< something is wrong but work goes on (an interface skipped, a name renamed) */
    PL_LOG_INFO = 2,    /**< a notable step (the discovery backend chosen, a session interrupted) */
    PL_LOG_DEBUG = 3    /**< detail for finding a cause (each interface considered, each handshake) */
} pl_log_level;

/**
 * Receives one log message: one line of English without a trailing newline, borrowed (valid only
 * during the call). Called on the thread that made the peerlink call that logs, usually the thread
 * running the loop; with several loops on several threads it may run on several threads at once.
 * It may call pl_set_log() (no lock is held while it runs).
 */
typedef void (*pl_log_cb)(pl_log_level level, const char *message, void *userdata);

/**
 * Install the process-wide log hook: cb receives every message whose level is at most max_level
 * (PL_LOG_WARNING gets errors and warnings). cb NULL removes the hook; the library is silent by
 * default and formats nothing no hook wants. Messages carry causes (an errno text, an interface
 * name, a peer address, a pl_error), never a secret: no pairing code, key, proof, session secret or
 * message content is ever logged, at any level.
 *
 * Thread-safe: callable from any thread at any time, cb included. A message already being
 * delivered on another thread when this returns may still reach the previous cb, so keep the old
 * userdata valid until other threads' peerlink calls in progress have returned. A max_level outside
 * the enum is clamped.
 */
PL_EXPORT void pl_set_log(pl_log_level max_level, pl_log_cb cb, void *userdata);

/** The name of a level, "error", "warning", "info" or "debug" ("?" for others). Thread-safe. */
PL_EXPORT const char *pl_log_level_name(pl_log_level level);

/** The version of these headers, at compile time (the library's at run time: pl_version()). */
#define PL_VERSION_MAJOR 0
#define PL_VERSION_MINOR 1
#define PL_VERSION_PATCH 0
/** The same as one number, to compare: PL_VERSION_NUMBER >= PL_VERSION_AT(0, 2, 0). */
#define PL_VERSION_AT(major, minor, patch) (((major) << 16) | ((minor) << 8) | (patch))
#define PL_VERSION_NUMBER PL_VERSION_AT(PL_VERSION_MAJOR, PL_VERSION_MINOR, PL_VERSION_PATCH)

/** The library version as a string, e.g. "0.1.0". Thread-safe. */
PL_EXPORT const char *pl_version(void);

/**
 * Which library seals and opens the session records (ChaCha20-Poly1305;
 * the bytes are the same either way): "libcrypto" where the build found
 * it (faster on long records; records shorter than 513 bytes, whose cost
 * is mostly per call, are still libsodium's), else "libsodium".
 * Thread-safe; a static string.
 */
PL_EXPORT const char *pl_aead_implementation(void);

#ifdef __cplusplus
}
#endif
#endif
