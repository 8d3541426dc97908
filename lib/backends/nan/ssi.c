/* SPDX-License-Identifier: ISC */
/*
 * The platform-independent part of the "nan" backend: the NAN Service ID
 * of a service name, and the service-specific info (SSI) an instance
 * travels in. NAN unsynchronized service discovery has no instance
 * names, ports or TXT records of its own: a publisher sends one opaque
 * SSI with each Publish message, so the name, port and TXT record share
 * it, in the layout below (docs/WIFI-AWARE.md gives it for the iOS and
 * Android sides, which must write the same bytes):
 *
 *   byte 0       version (1)
 *   byte 1       n, the instance name's length (1..63)
 *   bytes 2..    the name, UTF-8, n bytes, no NUL
 *   2 bytes      the port, big-endian (where the data path will listen; 0 if none)
 *   the rest     the TXT record in RFC 6763 wire format (txt.c's codec)
 */
#include "backends/nan/nan.h"

#include <sodium.h>

int pl__nan_service_id(const char *service_name, uint8_t id[PL__NAN_SERVICE_ID_LEN])
{
    if (!service_name || !id)
        return PL_ERR_INVALID;
    /* ASCII lower case, as hostap's tolower() in the C locale: UTF-8 bytes are never A-Z. */
    crypto_hash_sha256_state st;
    crypto_hash_sha256_init(&st);
    for (const char *c = service_name; *c; c++) {
        unsigned char b = (unsigned char)*c;
        if (b >= 'A' && b <= 'Z')
            b = (unsigned char)(b + 32);
        crypto_hash_sha256_update(&st, &b, 1);
    }
    uint8_t hash[crypto_hash_sha256_BYTES];
    crypto_hash_sha256_final(&st, hash);
    memcpy(id, hash, PL__NAN_SERVICE_ID_LEN);
    return PL_OK;
}

int pl__nan_ssi_encode(const char *name, uint16_t port, const pl_txt *txt, size_t cap, uint8_t *buf,
                       size_t *len)
{
    size_t n = name ? strlen(name) : 0;
    if (!len || n < 1 || n > 63)
        return PL_ERR_INVALID;
    pl_txt *empty = NULL;
    if (!txt && pl_txt_new(&empty) != PL_OK)
        return PL_ERR_NOMEM;
    size_t txt_len = 0;
    pl_txt_encode(txt ? txt : empty, NULL, 0, &txt_len);
    size_t need = 2 + n + 2 + txt_len;
    *len = need;
    int err = PL_OK;
    if (need > cap) {
        pl__log(PL_LOG_ERROR, "nan: \"%s\": the service-specific info would take %zu bytes (4 + the name's %zu + "
                "the TXT record's %zu), over the %zu that Wi-Fi Aware allows here", name, need, n, txt_len, cap);
        err = PL_ERR_TOO_LARGE;
    } else if (buf) {
        buf[0] = PL__NAN_SSI_VERSION;
        buf[1] = (uint8_t)n;
        memcpy(buf + 2, name, n);
        buf[2 + n] = (uint8_t)(port >> 8);
        buf[3 + n] = (uint8_t)port;
        err = pl_txt_encode(txt ? txt : empty, buf + 4 + n, txt_len, &txt_len);
    }
    pl_txt_free(empty);
    return err;
}

int pl__nan_ssi_decode(const uint8_t *ssi, size_t len, char name[64], uint16_t *port,
                       const uint8_t **txt, size_t *txt_len)
{
    if (!ssi || len < 2 || ssi[0] != PL__NAN_SSI_VERSION)
        return PL_ERR_MALFORMED;
    size_t n = ssi[1];
    if (n < 1 || n > 63 || len < 4 + n || memchr(ssi + 2, 0, n))
        return PL_ERR_MALFORMED;
    memcpy(name, ssi + 2, n);
    name[n] = '\0';
    *port = (uint16_t)(ssi[2 + n] << 8 | ssi[3 + n]);
    *txt = ssi + 4 + n;
    *txt_len = len - 4 - n;
    return PL_OK;
}

void pl__nan_hex(const uint8_t *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

static int nibble(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

long pl__nan_unhex(const char *hex, size_t len, uint8_t *out)
{
    if (len % 2)
        return -1;
    for (size_t i = 0; i < len; i += 2) {
        int hi = nibble(hex[i]), lo = nibble(hex[i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i / 2] = (uint8_t)(hi << 4 | lo);
    }
    return (long)(len / 2);
}
