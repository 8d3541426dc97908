/* SPDX-License-Identifier: ISC */
/*
 * DNS message codec for multicast DNS (RFC 1035 section 4, RFC 6762).
 * See dns.h. Every read is checked against the packet length, every
 * write against the buffer capacity; every loop is bounded.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <peerlink/common.h>

#include "dns.h"

#define HEADER_LEN 12
#define MIN_QUESTION 5  /* root name + type + class */
#define MIN_RECORD 11   /* root name + type + class + ttl + rdlength */

/* ------------------------------------------------------------ helpers */

static uint8_t ascii_lower(uint8_t c) {
    return (c >= 'A' && c <= 'Z') ? (uint8_t)(c + ('a' - 'A')) : c;
}

static uint16_t get16(const uint8_t *p) {
    return (uint16_t)(((uint16_t)p[0] << 8) | p[1]);
}

static uint32_t get32(const uint8_t *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static void put16(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

/* A well-formed uncompressed name: labels of 1..63 bytes inside len,
 * the final zero exactly at len - 1. */
static int name_valid(const pl_dns_name *n) {
    if (n == NULL || n->len < 1)
        return 0;
    size_t p = 0;
    while (p < n->len) {
        uint8_t c = n->wire[p];
        if (c == 0)
            return p + 1 == n->len;
        if (c > PL_DNS_MAX_LABEL)
            return 0;
        p += 1 + (size_t)c;
    }
    return 0;
}

/* ------------------------------------------------------------ parsing */

/*
 * Read a possibly compressed name starting at pos. Each pointer must
 * point into the message after the header and strictly before the start
 * of the run of labels that contains it (the name's start, then the
 * previous pointer's target), so targets strictly decrease: no loops.
 * *end receives the offset just after the name as it appears at pos.
 */
static int read_name(const uint8_t *pkt, size_t len, size_t pos, pl_dns_name *out, size_t *end) {
    size_t p = pos;
    size_t run_start = pos;
    size_t after = 0;
    int jumped = 0;
    unsigned pointers = 0;
    size_t n = 0;

    for (;;) {
        if (p >= len)
            return PL_ERR_MALFORMED;
        uint8_t c = pkt[p];
        if (c == 0) {
            if (n + 1 > PL_DNS_MAX_NAME)
                return PL_ERR_MALFORMED;
            out->wire[n++] = 0;
            out->len = (uint8_t)n;
            *end = jumped ? after : p + 1;
            return PL_OK;
        }
        if ((c & 0xC0) == 0xC0) {
            if (p + 1 >= len)
                return PL_ERR_MALFORMED;
            size_t target = ((size_t)(c & 0x3F) << 8) | pkt[p + 1];
            if (target < HEADER_LEN || target >= run_start)
                return PL_ERR_MALFORMED;
            if (++pointers > PL_DNS_MAX_POINTERS)
                return PL_ERR_MALFORMED;
            if (!jumped) {
                after = p + 2;
                jumped = 1;
            }
            p = target;
            run_start = target;
            continue;
        }
        if ((c & 0xC0) != 0) /* 0x40 and 0x80: extended / reserved label types */
            return PL_ERR_MALFORMED;
        /* c is 1..63 */
        if ((size_t)c + 1 > len - p)
            return PL_ERR_MALFORMED;
        if (n + 1 + (size_t)c + 1 > PL_DNS_MAX_NAME) /* leave room for the final zero */
            return PL_ERR_MALFORMED;
        memcpy(out->wire + n, pkt + p, (size_t)c + 1);
        n += (size_t)c + 1;
        p += (size_t)c + 1;
    }
}

static int parse_rdata(const uint8_t *pkt, size_t len, size_t start, size_t rdlen, pl_dns_record *r) {
    size_t rdend = start + rdlen;
    size_t end = 0;
    int rc;

    r->rdata = pkt + start;
    r->rdlen = (uint16_t)rdlen;

    switch (r->type) {
    case PL_DNS_A:
        if (rdlen != 4)
            return PL_ERR_MALFORMED;
        memcpy(r->u.a, pkt + start, 4);
        return PL_OK;
    case PL_DNS_AAAA:
        if (rdlen != 16)
            return PL_ERR_MALFORMED;
        memcpy(r->u.aaaa, pkt + start, 16);
        return PL_OK;
    case PL_DNS_PTR:
        rc = read_name(pkt, len, start, &r->u.ptr, &end);
        if (rc != PL_OK)
            return rc;
        return end == rdend ? PL_OK : PL_ERR_MALFORMED;
    case PL_DNS_SRV:
        if (rdlen < 7)
            return PL_ERR_MALFORMED;
        r->u.srv.priority = get16(pkt + start);
        r->u.srv.weight = get16(pkt + start + 2);
        r->u.srv.port = get16(pkt + start + 4);
        rc = read_name(pkt, len, start + 6, &r->u.srv.target, &end);
        if (rc != PL_OK)
            return rc;
        return end == rdend ? PL_OK : PL_ERR_MALFORMED;
    case PL_DNS_NSEC:
        if (rdlen < 1)
            return PL_ERR_MALFORMED;
        rc = read_name(pkt, len, start, &r->u.nsec.next, &end);
        if (rc != PL_OK)
            return rc;
        if (end > rdend)
            return PL_ERR_MALFORMED;
        r->rdata = pkt + end;
        r->rdlen = (uint16_t)(rdend - end);
        return PL_OK;
    default:
        return PL_OK; /* TXT and everything else: raw */
    }
}

void pl_dns_free(pl_dns_message *m) {
    if (m == NULL)
        return;
    free(m->questions);
    free(m->records);
    free(m);
}

int pl_dns_parse(const uint8_t *pkt, size_t len, pl_dns_message **out) {
    if (out == NULL || (pkt == NULL && len != 0))
        return PL_ERR_INVALID;
    if (len > PL_DNS_MAX_MESSAGE)
        return PL_ERR_TOO_LARGE;
    if (len < HEADER_LEN)
        return PL_ERR_MALFORMED;

    size_t qd = get16(pkt + 4), an = get16(pkt + 6), ns = get16(pkt + 8), ar = get16(pkt + 10);
    size_t nrec = an + ns + ar;
    if (qd + nrec > PL_DNS_MAX_ENTRIES)
        return PL_ERR_TOO_LARGE;
    /* Fail fast on counts the packet cannot possibly hold. */
    if (qd * MIN_QUESTION + nrec * MIN_RECORD > len - HEADER_LEN)
        return PL_ERR_MALFORMED;

    pl_dns_message *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return PL_ERR_NOMEM;
    m->id = get16(pkt);
    m->flags = get16(pkt + 2);
    if (qd > 0) {
        m->questions = calloc(qd, sizeof(*m->questions));
        if (m->questions == NULL)
            goto nomem;
    }
    if (nrec > 0) {
        m->records = calloc(nrec, sizeof(*m->records));
        if (m->records == NULL)
            goto nomem;
    }

    size_t pos = HEADER_LEN;
    int rc;
    for (size_t i = 0; i < qd; i++) {
        pl_dns_question *q = &m->questions[i];
        rc = read_name(pkt, len, pos, &q->name, &pos);
        if (rc != PL_OK)
            goto fail;
        if (len - pos < 4) {
            rc = PL_ERR_MALFORMED;
            goto fail;
        }
        q->type = get16(pkt + pos);
        uint16_t cls = get16(pkt + pos + 2);
        q->qclass = cls & 0x7FFF;
        q->unicast_response = (cls & PL_DNS_UNICAST_RESPONSE) != 0;
        pos += 4;
        m->n_questions++;
    }
    for (size_t i = 0; i < nrec; i++) {
        pl_dns_record *r = &m->records[i];
        rc = read_name(pkt, len, pos, &r->name, &pos);
        if (rc != PL_OK)
            goto fail;
        if (len - pos < 10) {
            rc = PL_ERR_MALFORMED;
            goto fail;
        }
        r->type = get16(pkt + pos);
        uint16_t cls = get16(pkt + pos + 2);
        r->rrclass = cls & 0x7FFF;
        r->cache_flush = (cls & PL_DNS_CACHE_FLUSH) != 0;
        r->ttl = get32(pkt + pos + 4);
        size_t rdlen = get16(pkt + pos + 8);
        pos += 10;
        if (rdlen > len - pos) {
            rc = PL_ERR_MALFORMED;
            goto fail;
        }
        rc = parse_rdata(pkt, len, pos, rdlen, r);
        if (rc != PL_OK)
            goto fail;
        pos += rdlen;
    }
    m->n_answers = an;
    m->n_authority = ns;
    m->n_additional = ar;
    *out = m;
    return PL_OK;

nomem:
    rc = PL_ERR_NOMEM;
fail:
    pl_dns_free(m);
    return rc;
}

/* ------------------------------------------------------------ names */

int pl_dns_name_from_text(pl_dns_name *n, const char *text) {
    if (n == NULL || text == NULL)
        return PL_ERR_INVALID;
    uint8_t wire[PL_DNS_MAX_NAME];
    size_t w = 0;
    const char *s = text;

    if (s[0] == '\0' || (s[0] == '.' && s[1] == '\0')) {
        n->len = 1;
        n->wire[0] = 0;
        return PL_OK;
    }
    for (;;) {
        /* One label: wire[w] is its length byte. */
        size_t lstart = w;
        size_t llen = 0;
        if (w + 1 > PL_DNS_MAX_NAME - 1)
            return PL_ERR_INVALID;
        w++;
        while (*s != '\0' && *s != '.') {
            unsigned v;
            if (*s == '\\') {
                s++;
                if (*s >= '0' && *s <= '9') {
                    if (!(s[1] >= '0' && s[1] <= '9' && s[2] >= '0' && s[2] <= '9'))
                        return PL_ERR_INVALID;
                    v = (unsigned)(s[0] - '0') * 100 + (unsigned)(s[1] - '0') * 10 + (unsigned)(s[2] - '0');
                    if (v > 255)
                        return PL_ERR_INVALID;
                    s += 3;
                } else if (*s == '\0') {
                    return PL_ERR_INVALID; /* lone trailing backslash */
                } else {
                    v = (unsigned char)*s++;
                }
            } else {
                v = (unsigned char)*s++;
            }
            if (llen >= PL_DNS_MAX_LABEL || w + 1 > PL_DNS_MAX_NAME - 1)
                return PL_ERR_INVALID;
            wire[w++] = (uint8_t)v;
            llen++;
        }
        if (llen == 0)
            return PL_ERR_INVALID; /* empty label */
        wire[lstart] = (uint8_t)llen;
        if (*s == '\0')
            break;
        s++; /* the dot */
        if (*s == '\0')
            break; /* trailing root dot */
    }
    wire[w++] = 0;
    memcpy(n->wire, wire, w);
    n->len = (uint8_t)w;
    return PL_OK;
}

int pl_dns_name_from_labels(pl_dns_name *n, const char *first_label, const char *dotted_suffix) {
    if (n == NULL || first_label == NULL)
        return PL_ERR_INVALID;
    size_t flen = 0;
    while (flen <= PL_DNS_MAX_LABEL && first_label[flen] != '\0')
        flen++;
    if (flen == 0 || flen > PL_DNS_MAX_LABEL)
        return PL_ERR_INVALID;
    pl_dns_name suffix;
    int rc = pl_dns_name_from_text(&suffix, dotted_suffix != NULL ? dotted_suffix : ".");
    if (rc != PL_OK)
        return rc;
    if (1 + flen + (size_t)suffix.len > PL_DNS_MAX_NAME)
        return PL_ERR_INVALID;
    n->wire[0] = (uint8_t)flen;
    memcpy(n->wire + 1, first_label, flen);
    memcpy(n->wire + 1 + flen, suffix.wire, suffix.len);
    n->len = (uint8_t)(1 + flen + suffix.len);
    return PL_OK;
}

int pl_dns_name_equal(const pl_dns_name *a, const pl_dns_name *b) {
    if (a == NULL || b == NULL || a->len != b->len)
        return 0;
    for (size_t i = 0; i < a->len && i < PL_DNS_MAX_NAME; i++)
        if (ascii_lower(a->wire[i]) != ascii_lower(b->wire[i]))
            return 0;
    return 1;
}

int pl_dns_name_first_label(const pl_dns_name *n, char *buf, size_t cap) {
    if (n == NULL || buf == NULL || !name_valid(n) || n->wire[0] == 0)
        return PL_ERR_INVALID;
    size_t l = n->wire[0];
    if (cap < l + 1 || memchr(n->wire + 1, 0, l) != NULL)
        return PL_ERR_INVALID;
    memcpy(buf, n->wire + 1, l);
    buf[l] = '\0';
    return PL_OK;
}

void pl_dns_name_parent(const pl_dns_name *n, pl_dns_name *parent) {
    if (parent == NULL)
        return;
    if (n == NULL || !name_valid(n) || n->wire[0] == 0) {
        parent->len = 1;
        parent->wire[0] = 0;
        return;
    }
    size_t skip = 1 + (size_t)n->wire[0];
    size_t rest = (size_t)n->len - skip;
    memmove(parent->wire, n->wire + skip, rest); /* n and parent may be the same */
    parent->len = (uint8_t)rest;
}

int pl_dns_name_to_text(const pl_dns_name *n, char *buf, size_t cap) {
    if (n == NULL || buf == NULL || !name_valid(n))
        return PL_ERR_INVALID;
    size_t o = 0;
    if (n->wire[0] == 0) {
        if (cap < 2)
            return PL_ERR_TOO_LARGE;
        buf[0] = '.';
        buf[1] = '\0';
        return PL_OK;
    }
    size_t p = 0;
    while (n->wire[p] != 0) {
        size_t l = n->wire[p];
        if (p != 0) {
            if (o + 1 >= cap)
                return PL_ERR_TOO_LARGE;
            buf[o++] = '.';
        }
        for (size_t i = 1; i <= l; i++) {
            uint8_t c = n->wire[p + i];
            if (c == '.' || c == '\\') {
                if (o + 2 >= cap)
                    return PL_ERR_TOO_LARGE;
                buf[o++] = '\\';
                buf[o++] = (char)c;
            } else if (c < 0x21 || c == 0x7F) {
                if (o + 4 >= cap)
                    return PL_ERR_TOO_LARGE;
                buf[o++] = '\\';
                buf[o++] = (char)('0' + c / 100);
                buf[o++] = (char)('0' + (c / 10) % 10);
                buf[o++] = (char)('0' + c % 10);
            } else {
                if (o + 1 >= cap)
                    return PL_ERR_TOO_LARGE;
                buf[o++] = (char)c;
            }
        }
        p += 1 + l;
    }
    buf[o] = '\0';
    return PL_OK;
}

/* ------------------------------------------------------------ writing */

void pl_dns_writer_init(pl_dns_writer *w, uint8_t *buf, size_t cap, uint16_t id, uint16_t flags) {
    if (w == NULL)
        return;
    memset(w, 0, sizeof(*w));
    if (cap > PL_DNS_MAX_MESSAGE)
        cap = PL_DNS_MAX_MESSAGE;
    if (buf == NULL || cap < HEADER_LEN)
        return; /* cap 0: every append fails with PL_ERR_TOO_LARGE */
    w->buf = buf;
    w->cap = cap;
    memset(buf, 0, HEADER_LEN);
    put16(buf, id);
    put16(buf + 2, flags);
    w->len = HEADER_LEN;
}

static int put_bytes(pl_dns_writer *w, const void *p, size_t n) {
    if (n > w->cap - w->len)
        return PL_ERR_TOO_LARGE;
    if (n > 0)
        memcpy(w->buf + w->len, p, n);
    w->len += n;
    return PL_OK;
}

static int put_u16(pl_dns_writer *w, uint16_t v) {
    uint8_t b[2];
    put16(b, v);
    return put_bytes(w, b, 2);
}

static int put_u32(pl_dns_writer *w, uint32_t v) {
    uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    return put_bytes(w, b, 4);
}

/* Does the name written at offset off of the output equal the suffix of n
 * starting at p (ASCII case-insensitively)? Bounded by n's length and by
 * the pointer count; our own pointers always point backwards. */
static int suffix_matches(const pl_dns_writer *w, size_t off, const pl_dns_name *n, size_t p) {
    size_t o = off;
    unsigned hops = 0;
    for (;;) {
        if (o >= w->len || p >= n->len)
            return 0;
        uint8_t c = w->buf[o];
        if ((c & 0xC0) == 0xC0) {
            if (o + 1 >= w->len || ++hops > PL_DNS_MAX_POINTERS)
                return 0;
            size_t t = ((size_t)(c & 0x3F) << 8) | w->buf[o + 1];
            if (t >= o)
                return 0;
            o = t;
            continue;
        }
        if (c > PL_DNS_MAX_LABEL || c != n->wire[p])
            return 0;
        if (c == 0)
            return 1;
        if ((size_t)c + 1 > w->len - o || (size_t)c + 1 > (size_t)n->len - p)
            return 0;
        for (size_t i = 1; i <= c; i++)
            if (ascii_lower(w->buf[o + i]) != ascii_lower(n->wire[p + i]))
                return 0;
        o += (size_t)c + 1;
        p += (size_t)c + 1;
    }
}

static void remember_offset(pl_dns_writer *w, size_t off) {
    if (off < 0x3FFF && w->n_offsets < sizeof(w->offsets) / sizeof(w->offsets[0]))
        w->offsets[w->n_offsets++] = (uint16_t)off;
}

/* Write a valid name, compressed against earlier names when compress. */
static int write_name(pl_dns_writer *w, const pl_dns_name *n, int compress) {
    size_t p = 0;
    size_t target = 0;
    int found = 0;

    if (compress) {
        for (size_t s = 0; n->wire[s] != 0 && !found; s += 1 + (size_t)n->wire[s]) {
            for (size_t i = 0; i < w->n_offsets; i++) {
                if (suffix_matches(w, w->offsets[i], n, s)) {
                    target = w->offsets[i];
                    p = s;
                    found = 1;
                    break;
                }
            }
        }
    }
    size_t prefix_end = found ? p : (size_t)n->len - 1;
    size_t q = 0;
    while (q < prefix_end) {
        size_t l = n->wire[q];
        size_t at = w->len;
        int rc = put_bytes(w, n->wire + q, 1 + l);
        if (rc != PL_OK)
            return rc;
        remember_offset(w, at);
        q += 1 + l;
    }
    if (found)
        return put_u16(w, (uint16_t)(0xC000 | target));
    return put_bytes(w, "", 1);
}

int pl_dns_write_question(pl_dns_writer *w, const pl_dns_question *q) {
    if (w == NULL || q == NULL || !name_valid(&q->name))
        return PL_ERR_INVALID;
    if (w->section != 0)
        return PL_ERR_INVALID;
    if (w->len < HEADER_LEN || w->counts[0] == UINT16_MAX)
        return PL_ERR_TOO_LARGE;
    size_t len0 = w->len, noff0 = w->n_offsets;
    uint16_t cls = (uint16_t)(q->qclass | (q->unicast_response ? PL_DNS_UNICAST_RESPONSE : 0));
    int rc = write_name(w, &q->name, 1);
    if (rc == PL_OK)
        rc = put_u16(w, q->type);
    if (rc == PL_OK)
        rc = put_u16(w, cls);
    if (rc != PL_OK) {
        w->len = len0;
        w->n_offsets = noff0;
        return rc;
    }
    w->counts[0]++;
    return PL_OK;
}

static int write_rdata(pl_dns_writer *w, const pl_dns_record *r) {
    int rc;
    switch (r->type) {
    case PL_DNS_A:
        return put_bytes(w, r->u.a, 4);
    case PL_DNS_AAAA:
        return put_bytes(w, r->u.aaaa, 16);
    case PL_DNS_PTR:
        return write_name(w, &r->u.ptr, 1);
    case PL_DNS_SRV:
        rc = put_u16(w, r->u.srv.priority);
        if (rc == PL_OK)
            rc = put_u16(w, r->u.srv.weight);
        if (rc == PL_OK)
            rc = put_u16(w, r->u.srv.port);
        if (rc == PL_OK)
            rc = write_name(w, &r->u.srv.target, 1);
        return rc;
    case PL_DNS_NSEC:
        rc = write_name(w, &r->u.nsec.next, 0);
        if (rc == PL_OK)
            rc = put_bytes(w, r->rdata, r->rdlen);
        return rc;
    case PL_DNS_TXT:
        if (r->rdlen == 0)
            return put_bytes(w, "", 1); /* RFC 6763 6.1: an empty TXT is one empty string */
        return put_bytes(w, r->rdata, r->rdlen);
    default:
        return put_bytes(w, r->rdata, r->rdlen);
    }
}

int pl_dns_write_record(pl_dns_writer *w, int section, const pl_dns_record *r) {
    if (w == NULL || r == NULL || section < 1 || section > 3 || section < w->section)
        return PL_ERR_INVALID;
    if (!name_valid(&r->name))
        return PL_ERR_INVALID;
    switch (r->type) {
    case PL_DNS_PTR:
        if (!name_valid(&r->u.ptr))
            return PL_ERR_INVALID;
        break;
    case PL_DNS_SRV:
        if (!name_valid(&r->u.srv.target))
            return PL_ERR_INVALID;
        break;
    case PL_DNS_NSEC:
        if (!name_valid(&r->u.nsec.next) || (r->rdata == NULL && r->rdlen != 0))
            return PL_ERR_INVALID;
        break;
    case PL_DNS_A:
    case PL_DNS_AAAA:
        break;
    default:
        if (r->rdata == NULL && r->rdlen != 0)
            return PL_ERR_INVALID;
        break;
    }
    if (w->len < HEADER_LEN || w->counts[section] == UINT16_MAX)
        return PL_ERR_TOO_LARGE;

    size_t len0 = w->len, noff0 = w->n_offsets;
    uint16_t cls = (uint16_t)(r->rrclass | (r->cache_flush ? PL_DNS_CACHE_FLUSH : 0));
    size_t rdlen_at = 0;
    int rc = write_name(w, &r->name, 1);
    if (rc == PL_OK)
        rc = put_u16(w, r->type);
    if (rc == PL_OK)
        rc = put_u16(w, cls);
    if (rc == PL_OK)
        rc = put_u32(w, r->ttl);
    if (rc == PL_OK) {
        rdlen_at = w->len;
        rc = put_u16(w, 0);
    }
    if (rc == PL_OK)
        rc = write_rdata(w, r);
    if (rc == PL_OK && w->len - rdlen_at - 2 > UINT16_MAX)
        rc = PL_ERR_TOO_LARGE;
    if (rc != PL_OK) {
        w->len = len0;
        w->n_offsets = noff0;
        return rc;
    }
    put16(w->buf + rdlen_at, (uint16_t)(w->len - rdlen_at - 2));
    w->counts[section]++;
    w->section = section;
    return PL_OK;
}

size_t pl_dns_writer_finish(pl_dns_writer *w) {
    if (w == NULL || w->buf == NULL || w->len < HEADER_LEN)
        return 0;
    for (int i = 0; i < 4; i++)
        put16(w->buf + 4 + 2 * i, w->counts[i]);
    return w->len;
}
