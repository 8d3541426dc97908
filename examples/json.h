/* SPDX-License-Identifier: ISC */
/*
 * plcat — JSON output of `plcat -b --json`: one object per browse event.
 *
 * Only the public peerlink headers and libc are used.
 */
#ifndef PLCAT_JSON_H
#define PLCAT_JSON_H

#include <stddef.h>
#include <stdint.h>

#include <peerlink/peerlink.h>

/**
 * Build one event line, without a trailing newline, into a malloc'd
 * NUL-terminated string *out (the caller frees it):
 *
 *   {"event":"add","name":…,"type":…,"domain":…,"host":…,"port":4242,
 *    "addresses":["192.0.2.1","fe80::1%eth0"],"txt":{…}}
 *
 * event is the event word ("add", "update", "remove"). A NULL string
 * field of svc is written as null; an address pl_address_to_string()
 * cannot format is left out. In "txt", in record order, a boolean
 * attribute is true, a value that is valid UTF-8 is a string, and any
 * other value is {"base64":"…"} (RFC 4648 standard alphabet, padded).
 * Every string is escaped per RFC 8259; bytes of a name or key that
 * are not valid UTF-8 are each replaced by U+FFFD, so the line is
 * always valid JSON.
 *
 * Returns 0, or -1 on allocation failure or when svc or out is NULL
 * (*out is then untouched).
 */
int plcat_json_event(const char *event, const pl_service *svc, char **out);

/** 1 if the n bytes at p are valid UTF-8 (RFC 3629: no overlongs, no surrogates, <= U+10FFFF), else 0. NUL bytes are valid. */
int plcat_utf8_valid(const uint8_t *p, size_t n);

/** Standard base64 with padding (RFC 4648 section 4) of n bytes, as a malloc'd string; NULL on allocation failure. */
char *plcat_base64(const uint8_t *p, size_t n);

#endif
