/* SPDX-License-Identifier: ISC */
/*
 * plcat — JSON output of browse events (see json.h).
 */
#include "json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* A growable output buffer; after the first failure every append is a no-op. */

struct jbuf {
    char *p;
    size_t len; /* bytes used, not counting the NUL */
    size_t cap; /* bytes allocated */
    int failed;
};

static int jb_reserve(struct jbuf *b, size_t extra)
{
    if (b->failed)
        return -1;
    /* room for extra bytes plus the terminating NUL */
    if (extra > SIZE_MAX - 1 - b->len) {
        b->failed = 1;
        return -1;
    }
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return 0;
    size_t ncap = b->cap ? b->cap : 256;
    while (ncap < need) {
        if (ncap > SIZE_MAX / 2) {
            ncap = need;
            break;
        }
        ncap *= 2;
    }
    char *np = realloc(b->p, ncap);
    if (np == NULL) {
        b->failed = 1;
        return -1;
    }
    b->p = np;
    b->cap = ncap;
    return 0;
}

static void jb_putn(struct jbuf *b, const char *s, size_t n)
{
    if (jb_reserve(b, n) != 0)
        return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void jb_puts(struct jbuf *b, const char *s)
{
    jb_putn(b, s, strlen(s));
}

static void jb_putc(struct jbuf *b, char c)
{
    jb_putn(b, &c, 1);
}

/* ------------------------------------------------------------------ */
/* UTF-8 (RFC 3629 section 4) */

/* Length (1..4) of the well-formed sequence at p, or 0 if p does not start one. */
static size_t utf8_seq(const uint8_t *p, size_t n)
{
    uint8_t c = p[0];
    size_t len;
    uint8_t lo = 0x80, hi = 0xBF; /* allowed range of the second byte */

    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0)
            lo = 0xA0; /* overlong */
        else if (c == 0xED)
            hi = 0x9F; /* surrogates U+D800..U+DFFF */
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0)
            lo = 0x90; /* overlong */
        else if (c == 0xF4)
            hi = 0x8F; /* above U+10FFFF */
    } else {
        return 0; /* continuation byte, C0/C1 overlong lead, F5..FF */
    }
    if (n < len)
        return 0;
    if (p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (p[i] < 0x80 || p[i] > 0xBF)
            return 0;
    return len;
}

int plcat_utf8_valid(const uint8_t *p, size_t n)
{
    size_t i = 0;
    if (p == NULL)
        return n == 0;
    while (i < n) {
        size_t l = utf8_seq(p + i, n - i);
        if (l == 0)
            return 0;
        i += l;
    }
    return 1;
}

/* ------------------------------------------------------------------ */
/* Base64 (RFC 4648 section 4) */

char *plcat_base64(const uint8_t *p, size_t n)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t groups = n / 3 + (n % 3 != 0);
    if (groups > (SIZE_MAX - 1) / 4)
        return NULL;
    char *out = malloc(groups * 4 + 1);
    if (out == NULL)
        return NULL;
    size_t o = 0, i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        out[o++] = alphabet[v >> 18 & 0x3F];
        out[o++] = alphabet[v >> 12 & 0x3F];
        out[o++] = alphabet[v >> 6 & 0x3F];
        out[o++] = alphabet[v & 0x3F];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)p[i] << 16;
        out[o++] = alphabet[v >> 18 & 0x3F];
        out[o++] = alphabet[v >> 12 & 0x3F];
        out[o++] = '=';
        out[o++] = '=';
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
        out[o++] = alphabet[v >> 18 & 0x3F];
        out[o++] = alphabet[v >> 12 & 0x3F];
        out[o++] = alphabet[v >> 6 & 0x3F];
        out[o++] = '=';
    }
    out[o] = '\0';
    return out;
}

/* ------------------------------------------------------------------ */
/* JSON strings (RFC 8259 section 7) */

/* Write n bytes as a JSON string; bytes that are not valid UTF-8 become U+FFFD. */
static void jb_string(struct jbuf *b, const uint8_t *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    jb_putc(b, '"');
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        if (c >= 0x80) {
            size_t l = utf8_seq(s + i, n - i);
            if (l == 0) {
                jb_puts(b, "\xEF\xBF\xBD"); /* U+FFFD */
                i++;
            } else {
                jb_putn(b, (const char *)s + i, l);
                i += l;
            }
            continue;
        }
        switch (c) {
        case '"': jb_puts(b, "\\\""); break;
        case '\\': jb_puts(b, "\\\\"); break;
        case '\b': jb_puts(b, "\\b"); break;
        case '\f': jb_puts(b, "\\f"); break;
        case '\n': jb_puts(b, "\\n"); break;
        case '\r': jb_puts(b, "\\r"); break;
        case '\t': jb_puts(b, "\\t"); break;
        default:
            if (c < 0x20) {
                char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 0xF]};
                jb_putn(b, esc, sizeof esc);
            } else {
                jb_putc(b, (char)c); /* includes DEL (0x7F) */
            }
            break;
        }
        i++;
    }
    jb_putc(b, '"');
}

/* A NUL-terminated string, or null for NULL. */
static void jb_cstring(struct jbuf *b, const char *s)
{
    if (s == NULL)
        jb_puts(b, "null");
    else
        jb_string(b, (const uint8_t *)s, strlen(s));
}

/* ,"key": */
static void jb_key(struct jbuf *b, const char *key, int first)
{
    if (!first)
        jb_putc(b, ',');
    jb_cstring(b, key);
    jb_putc(b, ':');
}

static void jb_txt(struct jbuf *b, const pl_txt *txt)
{
    size_t n = pl_txt_count(txt);
    size_t written = 0;
    jb_putc(b, '{');
    for (size_t i = 0; i < n; i++) {
        const char *key = NULL;
        const void *value = NULL;
        size_t len = 0;
        if (pl_txt_at(txt, i, &key, &value, &len) != PL_OK || key == NULL)
            continue;
        jb_key(b, key, written == 0);
        written++;
        if (value == NULL) {
            jb_puts(b, "true");
        } else if (plcat_utf8_valid(value, len)) {
            jb_string(b, value, len);
        } else {
            char *enc = plcat_base64(value, len);
            if (enc == NULL) {
                b->failed = 1;
                return;
            }
            jb_puts(b, "{\"base64\":\"");
            jb_puts(b, enc);
            jb_puts(b, "\"}");
            free(enc);
        }
    }
    jb_putc(b, '}');
}

int plcat_json_event(const char *event, const pl_service *svc, char **out)
{
    if (svc == NULL || out == NULL)
        return -1;

    struct jbuf b = {NULL, 0, 0, 0};
    char num[16];

    jb_putc(&b, '{');
    jb_key(&b, "event", 1);
    jb_cstring(&b, event);
    jb_key(&b, "name", 0);
    jb_cstring(&b, svc->name);
    jb_key(&b, "type", 0);
    jb_cstring(&b, svc->type);
    jb_key(&b, "domain", 0);
    jb_cstring(&b, svc->domain);
    jb_key(&b, "host", 0);
    jb_cstring(&b, svc->host);
    jb_key(&b, "port", 0);
    snprintf(num, sizeof num, "%u", (unsigned)svc->port);
    jb_puts(&b, num);

    jb_key(&b, "addresses", 0);
    jb_putc(&b, '[');
    size_t written = 0;
    for (size_t i = 0; svc->addresses != NULL && i < svc->n_addresses; i++) {
        char addr[PL_ADDRSTRLEN];
        if (pl_address_to_string(&svc->addresses[i], addr, sizeof addr) != PL_OK)
            continue;
        if (written++ > 0)
            jb_putc(&b, ',');
        jb_cstring(&b, addr);
    }
    jb_putc(&b, ']');

    jb_key(&b, "txt", 0);
    jb_txt(&b, svc->txt);
    jb_putc(&b, '}');

    if (b.failed) {
        free(b.p);
        return -1;
    }
    *out = b.p;
    return 0;
}
