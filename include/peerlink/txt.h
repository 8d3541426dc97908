/* SPDX-License-Identifier: ISC */
/*
 * peerlink — DNS-SD TXT records (RFC 6763 section 6).
 *
 * A pl_txt is an ordered set of attributes. Keys are 1 or more
 * printable US-ASCII characters (0x20..0x7E) other than '=', compared
 * case-insensitively. An attribute either has a value (arbitrary bytes,
 * possibly empty: "key=") or is a boolean attribute with no value
 * ("key"); the two are distinct. Each encoded string "key=value" is at
 * most 255 bytes (PL_TXT_MAX_STRING: the key, the '=' and the value
 * together); an encoded record is at most PL_TXT_MAX_SIZE bytes, and
 * the built-in "mdns" discovery backend sends at most 1188 (see
 * pl_publish()). Input that breaks a rule is rejected with an error,
 * never truncated: PL_ERR_INVALID for a rule about form (a bad key),
 * PL_ERR_TOO_LARGE for a size limit.
 *
 * Threading: a pl_txt has no internal locking; concurrent reads are
 * safe, anything else needs the caller's serialisation.
 */
#ifndef PEERLINK_TXT_H
#define PEERLINK_TXT_H

#include <peerlink/common.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Largest encoded TXT record accepted or produced, in bytes (a DNS RDATA limit). */
#define PL_TXT_MAX_SIZE 65535
/** Largest single "key=value" string, in bytes. */
#define PL_TXT_MAX_STRING 255

/** PL_TXT_MAX_SIZE as a function, for bindings. */
PL_EXPORT size_t pl_txt_max_size(void);
/** PL_TXT_MAX_STRING as a function, for bindings. */
PL_EXPORT size_t pl_txt_max_string(void);

typedef struct pl_txt pl_txt;

/** A new empty record into *out. PL_OK, or PL_ERR_INVALID / PL_ERR_NOMEM with *out untouched. */
PL_EXPORT int pl_txt_new(pl_txt **out);

/** Free a record. NULL is accepted. */
PL_EXPORT void pl_txt_free(pl_txt *txt);

/** A deep copy of src into *out. PL_OK, or PL_ERR_INVALID / PL_ERR_NOMEM with *out untouched. */
PL_EXPORT int pl_txt_dup(const pl_txt *src, pl_txt **out);

/**
 * Set key to a value of len bytes (copied). value == NULL makes a
 * boolean attribute (len must then be 0); value != NULL with len == 0
 * is an empty value. An existing attribute with the same key (in any
 * case) is replaced in place, keeping its position and the new key's
 * spelling. Errors: PL_ERR_INVALID for a bad key (empty, '=' or a
 * byte outside 0x20..0x7E), PL_ERR_TOO_LARGE if "key=value" would exceed
 * PL_TXT_MAX_STRING (255) bytes or the record PL_TXT_MAX_SIZE,
 * PL_ERR_NOMEM; on error the record is unchanged.
 */
PL_EXPORT int pl_txt_set(pl_txt *txt, const char *key, const void *value, size_t len);

/** pl_txt_set() with a NUL-terminated value (NULL: boolean attribute). */
PL_EXPORT int pl_txt_set_str(pl_txt *txt, const char *key, const char *value);

/** Remove key. PL_OK, PL_ERR_NOT_FOUND, or PL_ERR_INVALID. */
PL_EXPORT int pl_txt_remove(pl_txt *txt, const char *key);

/**
 * Look key up (case-insensitively). On PL_OK, *value and *len (each
 * may be NULL) receive the value, borrowed until the record changes or
 * is freed; a boolean attribute gives *value == NULL and *len == 0.
 * PL_ERR_NOT_FOUND if absent, PL_ERR_INVALID for bad arguments.
 */
PL_EXPORT int pl_txt_get(const pl_txt *txt, const char *key, const void **value, size_t *len);

/** Number of attributes. 0 for NULL. */
PL_EXPORT size_t pl_txt_count(const pl_txt *txt);

/**
 * The attribute at index i (0 <= i < count), in record order. Any out
 * pointer may be NULL; results are borrowed as for pl_txt_get(); key is
 * NUL-terminated. PL_ERR_NOT_FOUND when i is out of range.
 */
PL_EXPORT int pl_txt_at(const pl_txt *txt, size_t i, const char **key, const void **value,
                        size_t *len);

/**
 * Encode to RFC 6763 wire format: a sequence of length-prefixed
 * strings. An empty record encodes as a single zero byte, as the RFC
 * requires. *out_len receives the encoded size. If buf is NULL or cap
 * is too small, nothing is written, *out_len still receives the size
 * needed, and PL_ERR_TOO_LARGE is returned (buf == NULL with cap == 0
 * is the way to ask for the size and returns PL_OK).
 */
PL_EXPORT int pl_txt_encode(const pl_txt *txt, uint8_t *buf, size_t cap, size_t *out_len);

/**
 * Decode RFC 6763 wire format into a new record in *out.
 * Zero-length strings are skipped; strings with an empty key ("=x")
 * and strings whose key has a byte outside 0x20..0x7E are skipped as
 * RFC 6763 section 6.4 directs; later duplicates of a key are ignored
 * (the first occurrence wins). len == 0 is an empty record.
 * Errors: PL_ERR_MALFORMED if a length prefix runs past the end,
 * PL_ERR_TOO_LARGE if len > PL_TXT_MAX_SIZE, PL_ERR_INVALID,
 * PL_ERR_NOMEM; *out is untouched on error.
 */
PL_EXPORT int pl_txt_decode(const uint8_t *buf, size_t len, pl_txt **out);

/** 1 if a and b hold the same attributes in the same order (keys compared case-insensitively), else 0. */
PL_EXPORT int pl_txt_equal(const pl_txt *a, const pl_txt *b);

#ifdef __cplusplus
}
#endif
#endif
