/* SPDX-License-Identifier: ISC */
/*
 * The "nan" discovery backend (Wi-Fi Aware, experimental; docs/WIFI-AWARE.md):
 * what its two parts share, and what the unit tests reach.
 *
 *  - ssi.c: the platform-independent part: the NAN Service ID of a
 *    service name, and the service-specific info (SSI) that carries an
 *    instance's name, port and TXT record (the same layout on every
 *    platform, so that iOS, Android and Linux peers understand each other).
 *  - wpas.c: the Linux backend, a client of wpa_supplicant's control
 *    interface (NAN USD, wpa_supplicant 2.11 or later).
 */
#ifndef PL_BACKENDS_NAN_H
#define PL_BACKENDS_NAN_H

#include "discovery_backend.h"

/* A NAN Service ID: the first 6 bytes of SHA-256 of the service name in lower case (Wi-Fi Aware
 * specification; hostap's src/common/nan_de.c derives it so, as Apple and Android do). */
#define PL__NAN_SERVICE_ID_LEN 6
/* The SSI size a backend allows unless told otherwise: Android guarantees 255 bytes
 * (Characteristics.getMaxServiceSpecificInfoLength() may say more on a given device). */
#define PL__NAN_DEFAULT_MAX_SSI 255
/* The most any option may ask for (what Android's NAN HAL allows at most). */
#define PL__NAN_LIMIT_SSI 1024
/* The SSI layout's version byte (docs/WIFI-AWARE.md, "The service-specific info"). */
#define PL__NAN_SSI_VERSION 1

/* The Service ID of a service name (a DNS-SD type such as "_peerlink._tcp"): ASCII letters are
 * lower-cased, every other byte is hashed as is. PL_OK, or PL_ERR_INVALID for NULL arguments. */
int pl__nan_service_id(const char *service_name, uint8_t id[PL__NAN_SERVICE_ID_LEN]);

/* Encode an instance into an SSI of at most cap bytes: version, name length, name (1..63 bytes),
 * port (big-endian), then the TXT record in RFC 6763 wire format (txt NULL: an empty record).
 * buf may be NULL to ask for the size. *len receives the size (also on PL_ERR_TOO_LARGE).
 * PL_OK, PL_ERR_INVALID (bad name, len NULL), PL_ERR_TOO_LARGE (over cap: nothing written;
 * the error is logged with the sizes), PL_ERR_NOMEM. */
int pl__nan_ssi_encode(const char *name, uint16_t port, const pl_txt *txt, size_t cap, uint8_t *buf,
                       size_t *len);

/* Decode an SSI made by pl__nan_ssi_encode(). name receives the NUL-terminated instance name
 * (room for 64 bytes), *txt / *txt_len point into ssi at the TXT wire format (not checked here:
 * the generic layer decodes it). PL_OK, or PL_ERR_MALFORMED (another version, a bad length,
 * an empty name or one with a NUL byte). */
int pl__nan_ssi_decode(const uint8_t *ssi, size_t len, char name[64], uint16_t *port,
                       const uint8_t **txt, size_t *txt_len);

/* Lower-case hex of n bytes into out (room for 2n+1); the control interface's "ssi=" form. */
void pl__nan_hex(const uint8_t *in, size_t n, char *out);
/* Parse hex (even length, either case) of len characters into out (room for len/2 bytes).
 * Returns the byte count, or -1 if it is not hex. */
long pl__nan_unhex(const char *hex, size_t len, uint8_t *out);

#ifdef PL_HAVE_NAN
/* Options of the wpa_supplicant backend; every 0 or NULL member takes its default. Only the unit
 * tests set them (pl__discovery_open()); pl_discovery_new(poll, "nan", ...) passes none. */
typedef struct pl__nan_options {
    const char *ctrl_path; /* the interface's control socket; NULL: PEERLINK_NAN_CTRL, else the only
                              interface socket in /run/wpa_supplicant */
    size_t max_ssi;        /* the SSI cap (bytes), at most PL__NAN_LIMIT_SSI; 0: 255 */
    int stale_ms;          /* a peer not heard from for this long is removed; 0: 10 s */
    int keepalive_ms;      /* PING period, and the retry period after a loss; 0: 5 s */
    int window_ms;         /* PL_BROWSE_ALL_FOR_NOW this long after a subscription starts; 0: 2 s */
} pl__nan_options;

extern const pl_discovery_ops pl__nan_ops;
#endif

#endif
