/* SPDX-License-Identifier: ISC */
/*
 * peerlink — DNS-SD TXT records (RFC 6763 section 6).
 *
 * A record is an array of attributes in record order. Each attribute
 * lives in one allocation holding "key\0value\0": the key is therefore
 * a C string for pl_txt_at(), and the value (arbitrary bytes, possibly
 * containing NUL) follows it. The record also tracks the sum of its
 * encoded strings, so every size bound is checked in O(1) before a
 * change is made.
 *
 * Bounds: a string is at most PL_TXT_MAX_STRING (255) bytes and takes
 * at least 2 bytes on the wire (length byte + 1-byte key), and the wire
 * total is at most PL_TXT_MAX_SIZE (65535), so a record never holds
 * more than 32767 attributes and no size arithmetic below can overflow.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <peerlink/txt.h>

#include <stdlib.h>
#include <string.h>

/* One attribute. data = key bytes, '\0', value bytes, '\0'. */
typedef struct pl_txt_attr {
    char *data;       /* key, NUL-terminated; the value follows it */
    size_t klen;      /* key length, 1..255 */
    size_t vlen;      /* value length (0 for a boolean attribute) */
    int has_value;    /* 0: boolean attribute "key"; 1: "key=value" */
} pl_txt_attr;

struct pl_txt {
    pl_txt_attr *attrs; /* attributes in record order */
    size_t count;       /* attributes in use */
    size_t cap;         /* attributes allocated */
    size_t wire;        /* sum of (1 + string length) over all attributes */
};

size_t pl_txt_max_size(void) { return PL_TXT_MAX_SIZE; }

size_t pl_txt_max_string(void) { return PL_TXT_MAX_STRING; }

/* A byte allowed in a key: printable US-ASCII other than '='. */
static int key_byte_ok(unsigned char c) { return c >= 0x20 && c <= 0x7E && c != '='; }

/* ASCII-only lower-casing, independent of the locale. */
static unsigned char ascii_lower(unsigned char c) {
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + ('a' - 'A')) : c;
}

/* Case-insensitive equality of two keys of known lengths. */
static int key_eq(const char *a, size_t alen, const char *b, size_t blen) {
    if (alen != blen)
        return 0;
    for (size_t i = 0; i < alen; i++)
        if (ascii_lower((unsigned char)a[i]) != ascii_lower((unsigned char)b[i]))
            return 0;
    return 1;
}

/*
 * Check a caller's C-string key, reading at most PL_TXT_MAX_STRING + 1
 * bytes of it. PL_OK with *klen set, PL_ERR_INVALID for NULL, empty or
 * a forbidden byte, PL_ERR_TOO_LARGE for a key longer than a string.
 */
static int check_key(const char *key, size_t *klen) {
    size_t n = 0;
    if (key == NULL)
        return PL_ERR_INVALID;
    while (n <= PL_TXT_MAX_STRING && key[n] != '\0') {
        if (!key_byte_ok((unsigned char)key[n]))
            return PL_ERR_INVALID;
        n++;
    }
    if (n == 0)
        return PL_ERR_INVALID;
    if (n > PL_TXT_MAX_STRING)
        return PL_ERR_TOO_LARGE;
    *klen = n;
    return PL_OK;
}

/* Encoded string length of an attribute ("key" or "key=value"), without the length byte. */
static size_t attr_strlen(const pl_txt_attr *a) { return a->klen + (a->has_value ? 1 + a->vlen : 0); }

/* The value bytes of an attribute, or NULL for a boolean attribute. */
static const void *attr_value(const pl_txt_attr *a) {
    return a->has_value ? (const void *)(a->data + a->klen + 1) : NULL;
}

/* Index of key in txt, or txt->count if absent. */
static size_t find(const pl_txt *txt, const char *key, size_t klen) {
    for (size_t i = 0; i < txt->count; i++)
        if (key_eq(txt->attrs[i].data, txt->attrs[i].klen, key, klen))
            return i;
    return txt->count;
}

/*
 * Fill *a with a fresh copy of key/value. The caller has already
 * checked the bounds (klen + vlen < 256). PL_OK or PL_ERR_NOMEM.
 */
static int attr_make(pl_txt_attr *a, const char *key, size_t klen, const void *value, size_t vlen,
                     int has_value) {
    char *d = malloc(klen + vlen + 2);
    if (d == NULL)
        return PL_ERR_NOMEM;
    memcpy(d, key, klen);
    d[klen] = '\0';
    if (vlen > 0)
        memcpy(d + klen + 1, value, vlen);
    d[klen + 1 + vlen] = '\0';
    a->data = d;
    a->klen = klen;
    a->vlen = has_value ? vlen : 0;
    a->has_value = has_value;
    return PL_OK;
}

/* Make room for one more attribute. PL_OK or PL_ERR_NOMEM (record unchanged). */
static int reserve_one(pl_txt *txt) {
    if (txt->count < txt->cap)
        return PL_OK;
    size_t ncap = txt->cap ? txt->cap * 2 : 8;
    if (ncap > SIZE_MAX / sizeof(pl_txt_attr))
        return PL_ERR_NOMEM;
    pl_txt_attr *p = realloc(txt->attrs, ncap * sizeof(pl_txt_attr));
    if (p == NULL)
        return PL_ERR_NOMEM;
    txt->attrs = p;
    txt->cap = ncap;
    return PL_OK;
}

/* Append a new attribute; the caller has checked bounds and uniqueness. */
static int append(pl_txt *txt, const char *key, size_t klen, const void *value, size_t vlen,
                  int has_value) {
    int rc = reserve_one(txt);
    if (rc != PL_OK)
        return rc;
    rc = attr_make(&txt->attrs[txt->count], key, klen, value, vlen, has_value);
    if (rc != PL_OK)
        return rc;
    txt->wire += 1 + attr_strlen(&txt->attrs[txt->count]);
    txt->count++;
    return PL_OK;
}

/* Allocate an empty record. */
int pl_txt_new(pl_txt **out) {
    if (out == NULL)
        return PL_ERR_INVALID;
    pl_txt *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return PL_ERR_NOMEM;
    *out = t;
    return PL_OK;
}

/* Free every attribute, then the record. */
void pl_txt_free(pl_txt *txt) {
    if (txt == NULL)
        return;
    for (size_t i = 0; i < txt->count; i++)
        free(txt->attrs[i].data);
    free(txt->attrs);
    free(txt);
}

/* Build a new record and append a copy of each attribute of src. */
int pl_txt_dup(const pl_txt *src, pl_txt **out) {
    pl_txt *t = NULL;
    if (src == NULL || out == NULL)
        return PL_ERR_INVALID;
    int rc = pl_txt_new(&t);
    for (size_t i = 0; rc == PL_OK && i < src->count; i++) {
        const pl_txt_attr *a = &src->attrs[i];
        rc = append(t, a->data, a->klen, attr_value(a), a->vlen, a->has_value);
    }
    if (rc != PL_OK) {
        pl_txt_free(t);
        return rc;
    }
    *out = t;
    return PL_OK;
}

/*
 * Validate everything first, then build the new attribute, and only
 * then commit it (replace in place or append), so a failure at any
 * step leaves the record as it was.
 */
int pl_txt_set(pl_txt *txt, const char *key, const void *value, size_t len) {
    size_t klen = 0;
    if (txt == NULL || (value == NULL && len != 0))
        return PL_ERR_INVALID;
    int rc = check_key(key, &klen);
    if (rc != PL_OK)
        return rc;
    int has_value = value != NULL;
    /* len is checked alone first so klen + 1 + len cannot overflow. */
    if (len > PL_TXT_MAX_STRING || klen + (has_value ? 1 + len : 0) > PL_TXT_MAX_STRING)
        return PL_ERR_TOO_LARGE;
    size_t slen = klen + (has_value ? 1 + len : 0);

    size_t i = find(txt, key, klen);
    size_t old = i < txt->count ? 1 + attr_strlen(&txt->attrs[i]) : 0;
    /* txt->wire >= old and both are <= PL_TXT_MAX_SIZE: no wrap-around. */
    if (txt->wire - old + 1 + slen > PL_TXT_MAX_SIZE)
        return PL_ERR_TOO_LARGE;

    if (i == txt->count)
        return append(txt, key, klen, value, len, has_value);

    pl_txt_attr a;
    rc = attr_make(&a, key, klen, value, len, has_value);
    if (rc != PL_OK)
        return rc;
    free(txt->attrs[i].data);
    txt->attrs[i] = a;
    txt->wire = txt->wire - old + 1 + slen;
    return PL_OK;
}

/* pl_txt_set() with the value's length taken from its terminator (read at most 256 bytes). */
int pl_txt_set_str(pl_txt *txt, const char *key, const char *value) {
    size_t n = 0;
    if (value != NULL)
        while (n <= PL_TXT_MAX_STRING && value[n] != '\0')
            n++;
    return pl_txt_set(txt, key, value, n);
}

/* Remove one attribute, shifting later ones down to keep the order. */
int pl_txt_remove(pl_txt *txt, const char *key) {
    size_t klen = 0;
    if (txt == NULL)
        return PL_ERR_INVALID;
    int rc = check_key(key, &klen);
    if (rc == PL_ERR_TOO_LARGE)
        return PL_ERR_NOT_FOUND; /* a well-formed key too long to be stored */
    if (rc != PL_OK)
        return rc;
    size_t i = find(txt, key, klen);
    if (i == txt->count)
        return PL_ERR_NOT_FOUND;
    txt->wire -= 1 + attr_strlen(&txt->attrs[i]);
    free(txt->attrs[i].data);
    memmove(&txt->attrs[i], &txt->attrs[i + 1], (txt->count - i - 1) * sizeof(pl_txt_attr));
    txt->count--;
    return PL_OK;
}

/* Case-insensitive lookup. */
int pl_txt_get(const pl_txt *txt, const char *key, const void **value, size_t *len) {
    size_t klen = 0;
    if (txt == NULL)
        return PL_ERR_INVALID;
    int rc = check_key(key, &klen);
    if (rc == PL_ERR_TOO_LARGE)
        return PL_ERR_NOT_FOUND;
    if (rc != PL_OK)
        return rc;
    size_t i = find(txt, key, klen);
    if (i == txt->count)
        return PL_ERR_NOT_FOUND;
    if (value != NULL)
        *value = attr_value(&txt->attrs[i]);
    if (len != NULL)
        *len = txt->attrs[i].vlen;
    return PL_OK;
}

size_t pl_txt_count(const pl_txt *txt) { return txt ? txt->count : 0; }

/* Indexed access in record order. */
int pl_txt_at(const pl_txt *txt, size_t i, const char **key, const void **value, size_t *len) {
    if (txt == NULL)
        return PL_ERR_INVALID;
    if (i >= txt->count)
        return PL_ERR_NOT_FOUND;
    const pl_txt_attr *a = &txt->attrs[i];
    if (key != NULL)
        *key = a->data;
    if (value != NULL)
        *value = attr_value(a);
    if (len != NULL)
        *len = a->vlen;
    return PL_OK;
}

/* Write each attribute as <length byte><key>[=<value>]; an empty record is one zero byte. */
int pl_txt_encode(const pl_txt *txt, uint8_t *buf, size_t cap, size_t *out_len) {
    if (txt == NULL)
        return PL_ERR_INVALID;
    size_t need = txt->count ? txt->wire : 1;
    if (out_len != NULL)
        *out_len = need;
    if (buf == NULL)
        return cap == 0 ? PL_OK : PL_ERR_TOO_LARGE;
    if (cap < need)
        return PL_ERR_TOO_LARGE;
    if (txt->count == 0) {
        buf[0] = 0;
        return PL_OK;
    }
    size_t off = 0;
    for (size_t i = 0; i < txt->count; i++) {
        const pl_txt_attr *a = &txt->attrs[i];
        buf[off++] = (uint8_t)attr_strlen(a);
        memcpy(buf + off, a->data, a->klen);
        off += a->klen;
        if (a->has_value) {
            buf[off++] = '=';
            memcpy(buf + off, a->data + a->klen + 1, a->vlen);
            off += a->vlen;
        }
    }
    return PL_OK;
}

/*
 * Walk the length-prefixed strings, keeping each well-formed one whose
 * key is not yet present. The record is built privately and handed out
 * only on success.
 */
int pl_txt_decode(const uint8_t *buf, size_t len, pl_txt **out) {
    pl_txt *t = NULL;
    if (out == NULL || (buf == NULL && len != 0))
        return PL_ERR_INVALID;
    if (len > PL_TXT_MAX_SIZE)
        return PL_ERR_TOO_LARGE;
    int rc = pl_txt_new(&t);
    if (rc != PL_OK)
        return rc;
    size_t off = 0;
    while (off < len) {
        size_t slen = buf[off++];
        if (slen > len - off) {
            rc = PL_ERR_MALFORMED;
            break;
        }
        const char *s = (const char *)(buf + off);
        off += slen;
        /* The key runs up to the first '=' or the end of the string. */
        size_t klen = 0;
        while (klen < slen && s[klen] != '=')
            klen++;
        if (klen == 0)
            continue; /* zero-length string, or "=value" */
        size_t k = 0;
        while (k < klen && key_byte_ok((unsigned char)s[k]))
            k++;
        if (k < klen)
            continue; /* key byte outside 0x20..0x7E */
        if (find(t, s, klen) < t->count)
            continue; /* later duplicate: the first occurrence wins */
        int has_value = klen < slen;
        size_t vlen = has_value ? slen - klen - 1 : 0;
        rc = append(t, s, klen, has_value ? s + klen + 1 : NULL, vlen, has_value);
        if (rc != PL_OK)
            break;
    }
    if (rc != PL_OK) {
        pl_txt_free(t);
        return rc;
    }
    *out = t;
    return PL_OK;
}

/* Same attributes in the same order: keys case-insensitively, values byte for byte. */
int pl_txt_equal(const pl_txt *a, const pl_txt *b) {
    if (a == b)
        return 1;
    if (a == NULL || b == NULL || a->count != b->count)
        return 0;
    for (size_t i = 0; i < a->count; i++) {
        const pl_txt_attr *x = &a->attrs[i], *y = &b->attrs[i];
        if (!key_eq(x->data, x->klen, y->data, y->klen) || x->has_value != y->has_value ||
            x->vlen != y->vlen)
            return 0;
        if (x->vlen > 0 && memcmp(attr_value(x), attr_value(y), x->vlen) != 0)
            return 0;
    }
    return 1;
}
