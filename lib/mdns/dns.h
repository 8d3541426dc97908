/* SPDX-License-Identifier: ISC */
/*
 * DNS message codec for multicast DNS (RFC 1035 section 4, RFC 6762),
 * sans-I/O. Parsing decompresses every name (message compression,
 * RFC 1035 4.1.4) with hard bounds on every length, pointer and count;
 * encoding compresses names against those already written.
 */
#ifndef PL_MDNS_DNS_H
#define PL_MDNS_DNS_H

#include <stddef.h>
#include <stdint.h>

#include <peerlink/common.h> /* PL_OK and the PL_ERR_* codes returned below */

/* Largest mDNS message handled (RFC 6762 section 17: 9000 bytes incl. IP/UDP headers). */
#define PL_DNS_MAX_MESSAGE 9000
/* Largest name in wire form (RFC 1035 3.1), and label. */
#define PL_DNS_MAX_NAME 255
#define PL_DNS_MAX_LABEL 63
/* Most questions plus records accepted in one message. */
#define PL_DNS_MAX_ENTRIES 256
/* Most compression pointers followed while reading one name. */
#define PL_DNS_MAX_POINTERS 32

enum {
    PL_DNS_A = 1, PL_DNS_PTR = 12, PL_DNS_TXT = 16, PL_DNS_AAAA = 28, PL_DNS_SRV = 33,
    PL_DNS_NSEC = 47, PL_DNS_ANY = 255
};
#define PL_DNS_CLASS_IN 1
#define PL_DNS_CACHE_FLUSH 0x8000 /* top bit of rrclass in a record */
#define PL_DNS_UNICAST_RESPONSE 0x8000 /* top bit of qclass in a question */
#define PL_DNS_FLAG_RESPONSE 0x8400 /* QR + AA, as mDNS responses set them */

/* A name in uncompressed wire form: length-prefixed labels ending with 0. */
typedef struct pl_dns_name {
    uint8_t len;                    /* bytes used in wire, including the final 0 (1..255) */
    uint8_t wire[PL_DNS_MAX_NAME];
} pl_dns_name;

typedef struct pl_dns_question {
    pl_dns_name name;
    uint16_t type;
    uint16_t qclass; /* without the unicast-response bit */
    int unicast_response;
} pl_dns_question;

typedef struct pl_dns_record {
    pl_dns_name name;
    uint16_t type;
    uint16_t rrclass; /* without the cache-flush bit */
    int cache_flush;
    uint32_t ttl;
    union {
        pl_dns_name ptr;                        /* PTR target */
        struct { uint16_t priority, weight, port; pl_dns_name target; } srv;
        uint8_t a[4];
        uint8_t aaaa[16];
        struct { pl_dns_name next; } nsec;      /* bitmap kept raw in rdata (parse: the
                                                 * bytes after the next name; write: the
                                                 * bitmap appended after the next name) */
    } u;
    /* The RDATA bytes as they are in the message (TXT: the strings; NSEC:
     * only the type bitmaps after the next name; other types: raw, names
     * possibly compressed: use u for those). Borrowed from the parsed
     * packet. When writing, used for NSEC (bitmap) and for every type
     * other than PTR/SRV/A/AAAA. */
    const uint8_t *rdata;
    uint16_t rdlen;
} pl_dns_record;

typedef struct pl_dns_message {
    uint16_t id;
    uint16_t flags;
    size_t n_questions, n_answers, n_authority, n_additional;
    pl_dns_question *questions;
    pl_dns_record *records; /* answers, then authority, then additional */
} pl_dns_message;

/*
 * Parse a message. Names in questions and in the owner and RDATA of
 * PTR, SRV and NSEC records are decompressed; A/AAAA RDATA must be 4/16
 * bytes. Records of other types are kept with raw rdata. The message
 * borrows pkt (rdata pointers) and must be freed with pl_dns_free().
 * PL_OK, PL_ERR_MALFORMED (truncated, bad label, pointer loop or
 * forward-out-of-bounds pointer, too many pointers, name > 255, RDATA
 * length mismatch), PL_ERR_TOO_LARGE (len > PL_DNS_MAX_MESSAGE, more
 * than PL_DNS_MAX_ENTRIES entries), PL_ERR_NOMEM. *out untouched on error.
 */
int pl_dns_parse(const uint8_t *pkt, size_t len, pl_dns_message **out);
void pl_dns_free(pl_dns_message *m);

/* Name helpers. */
/* Build from dotted text with escapes as in RFC 6763 4.3 ("My\.Box._http._tcp.local"); PL_OK or PL_ERR_INVALID. */
int pl_dns_name_from_text(pl_dns_name *n, const char *text);
/* Build from labels: first label taken verbatim (may contain dots: an instance name), then a dotted suffix. */
int pl_dns_name_from_labels(pl_dns_name *n, const char *first_label, const char *dotted_suffix);
/* Case-insensitive (ASCII) equality. */
int pl_dns_name_equal(const pl_dns_name *a, const pl_dns_name *b);
/* The first label as a NUL-terminated string into buf (cap >= 64). PL_OK or PL_ERR_INVALID. */
int pl_dns_name_first_label(const pl_dns_name *n, char *buf, size_t cap);
/* The name with its first label removed (the parent). */
void pl_dns_name_parent(const pl_dns_name *n, pl_dns_name *parent);
/* Dotted text (labels with '.' or '\' escaped) into buf. PL_OK or PL_ERR_TOO_LARGE. */
int pl_dns_name_to_text(const pl_dns_name *n, char *buf, size_t cap);

/* ---------------------------------------------------------------- writing */

typedef struct pl_dns_writer {
    uint8_t *buf;
    size_t cap, len;
    uint16_t counts[4]; /* qd, an, ns, ar */
    int section;        /* 0..3: where the next entry goes; entries must come in order */
    /* Compression: offsets of names (and their suffixes) written so far. */
    uint16_t offsets[128];
    size_t n_offsets;
} pl_dns_writer;

/* Start a message in buf (cap <= PL_DNS_MAX_MESSAGE) with id and flags. */
void pl_dns_writer_init(pl_dns_writer *w, uint8_t *buf, size_t cap, uint16_t id, uint16_t flags);
/* Append a question; PL_OK or PL_ERR_TOO_LARGE (writer unchanged: start another packet). */
int pl_dns_write_question(pl_dns_writer *w, const pl_dns_question *q);
/* Append a record to section 1 (answer), 2 (authority) or 3 (additional), RDATA from r->u for
 * PTR/SRV/A/AAAA/NSEC (names compressed), from r->rdata for others (TXT). PL_OK,
 * PL_ERR_TOO_LARGE (writer unchanged), PL_ERR_INVALID (section out of order). */
int pl_dns_write_record(pl_dns_writer *w, int section, const pl_dns_record *r);
/* Patch the header counts; returns the message length. */
size_t pl_dns_writer_finish(pl_dns_writer *w);

#endif
