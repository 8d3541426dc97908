/* SPDX-License-Identifier: ISC */
/*
 * libFuzzer target for the mDNS message codec (lib/mdns/dns.c).
 *
 * Parse arbitrary bytes; when that succeeds, write every question and
 * record again with the writer (into a PL_DNS_MAX_MESSAGE buffer; its
 * compression may fit fewer entries than the input held, which is not an
 * error: what was written is checked) and parse the result. Names (ASCII
 * case-insensitively, as compression may reuse another case), types,
 * classes, flags, TTLs and RDATA must survive. The name helpers must
 * round-trip every parsed name through text. Any violation aborts.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <peerlink/common.h>

#include "mdns/dns.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_name_text(const pl_dns_name *n) {
    char text[4 * PL_DNS_MAX_NAME + 8];
    pl_dns_name back;
    if (n->len < 1 || n->wire[n->len - 1] != 0)
        abort();
    if (pl_dns_name_to_text(n, text, sizeof(text)) != PL_OK)
        abort();
    if (pl_dns_name_from_text(&back, text) != PL_OK || back.len != n->len ||
        memcmp(back.wire, n->wire, n->len) != 0)
        abort();
    pl_dns_name parent;
    pl_dns_name_parent(n, &parent);
    if (parent.len > n->len || (n->len > 1 && parent.len >= n->len))
        abort();
}

static void check_rdata(const pl_dns_record *a, const pl_dns_record *b) {
    switch (a->type) {
    case PL_DNS_A:
        if (memcmp(a->u.a, b->u.a, 4) != 0)
            abort();
        break;
    case PL_DNS_AAAA:
        if (memcmp(a->u.aaaa, b->u.aaaa, 16) != 0)
            abort();
        break;
    case PL_DNS_PTR:
        if (!pl_dns_name_equal(&a->u.ptr, &b->u.ptr))
            abort();
        break;
    case PL_DNS_SRV:
        if (a->u.srv.priority != b->u.srv.priority || a->u.srv.weight != b->u.srv.weight ||
            a->u.srv.port != b->u.srv.port || !pl_dns_name_equal(&a->u.srv.target, &b->u.srv.target))
            abort();
        break;
    case PL_DNS_NSEC:
        if (!pl_dns_name_equal(&a->u.nsec.next, &b->u.nsec.next) || a->rdlen != b->rdlen ||
            (a->rdlen && memcmp(a->rdata, b->rdata, a->rdlen) != 0))
            abort();
        break;
    case PL_DNS_TXT:
        if (a->rdlen == 0) { /* written as one empty string */
            if (b->rdlen != 1 || b->rdata[0] != 0)
                abort();
            break;
        }
        /* fall through */
    default:
        if (a->rdlen != b->rdlen || (a->rdlen && memcmp(a->rdata, b->rdata, a->rdlen) != 0))
            abort();
        break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    pl_dns_message *m = NULL;
    if (pl_dns_parse(data, size, &m) != PL_OK)
        return 0;
    size_t nrec = m->n_answers + m->n_authority + m->n_additional;
    if (m->n_questions + nrec > PL_DNS_MAX_ENTRIES)
        abort();

    static uint8_t buf[PL_DNS_MAX_MESSAGE];
    pl_dns_writer w;
    pl_dns_writer_init(&w, buf, sizeof(buf), m->id, m->flags);

    size_t wq = 0, wr = 0;
    int full = 0;
    for (size_t i = 0; i < m->n_questions && !full; i++) {
        check_name_text(&m->questions[i].name);
        pl_dns_writer before = w;
        int rc = pl_dns_write_question(&w, &m->questions[i]);
        if (rc == PL_ERR_TOO_LARGE) {
            if (memcmp(&before, &w, sizeof(w)) != 0)
                abort();
            full = 1;
        } else if (rc != PL_OK) {
            abort();
        } else {
            wq++;
        }
    }
    size_t cnt[3] = {0, 0, 0};
    for (size_t i = 0; i < nrec && !full; i++) {
        const pl_dns_record *r = &m->records[i];
        int section = i < m->n_answers ? 1 : i < m->n_answers + m->n_authority ? 2 : 3;
        check_name_text(&r->name);
        pl_dns_writer before = w;
        int rc = pl_dns_write_record(&w, section, r);
        if (rc == PL_ERR_TOO_LARGE) {
            if (memcmp(&before, &w, sizeof(w)) != 0)
                abort();
            full = 1;
        } else if (rc != PL_OK) {
            abort();
        } else {
            cnt[section - 1]++;
            wr++;
        }
    }
    size_t len = pl_dns_writer_finish(&w);
    if (len < 12 || len > sizeof(buf))
        abort();

    pl_dns_message *m2 = NULL;
    if (pl_dns_parse(buf, len, &m2) != PL_OK)
        abort();
    if (m2->id != m->id || m2->flags != m->flags || m2->n_questions != wq ||
        m2->n_answers != cnt[0] || m2->n_authority != cnt[1] || m2->n_additional != cnt[2])
        abort();
    for (size_t i = 0; i < wq; i++) {
        const pl_dns_question *a = &m->questions[i], *b = &m2->questions[i];
        if (!pl_dns_name_equal(&a->name, &b->name) || a->type != b->type || a->qclass != b->qclass ||
            a->unicast_response != b->unicast_response)
            abort();
    }
    for (size_t i = 0; i < wr; i++) {
        const pl_dns_record *a = &m->records[i], *b = &m2->records[i];
        if (!pl_dns_name_equal(&a->name, &b->name) || a->type != b->type || a->rrclass != b->rrclass ||
            a->cache_flush != b->cache_flush || a->ttl != b->ttl)
            abort();
        check_rdata(a, b);
    }
    pl_dns_free(m2);
    pl_dns_free(m);
    return 0;
}
