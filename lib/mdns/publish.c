/* SPDX-License-Identifier: ISC */
/*
 * The built-in mDNS engine: probing and announcing our records, and
 * renaming after a conflict (RFC 6762 sections 8 and 9). See engine.c.
 */
#include "mdns/engine_int.h"

/* ---------------------------------------------------------------- renaming */

void pl_mdns_alternative_service_name(const char *name, char *out)
{
    char base[64];
    snprintf(base, sizeof base, "%s", name);
    unsigned long n = 1;
    char *hash = strrchr(base, '#');
    if (hash && hash > base && hash[-1] == ' ' && hash[1]) {
        char *end;
        unsigned long v = strtoul(hash + 1, &end, 10);
        if (!*end && hash[1] >= '1' && hash[1] <= '9' && v < 1000000) {
            n = v;
            hash[-1] = 0;
        }
    }
    char suffix[16];
    snprintf(suffix, sizeof suffix, " #%lu", n + 1);
    size_t room = 63 - strlen(suffix);
    size_t len = strlen(base);
    if (len > room) {
        len = room;
        while (len > 0 && ((unsigned char)base[len] & 0xC0) == 0x80)
            len--; /* do not cut a UTF-8 sequence */
        base[len] = 0;
    }
    size_t bl = strlen(base), sl = strlen(suffix);
    memcpy(out, base, bl);
    memcpy(out + bl, suffix, sl + 1);
}

void pl_mdns_alternative_host_name(const char *label, char *out)
{
    char base[64];
    snprintf(base, sizeof base, "%s", label);
    unsigned long n = 1;
    char *dash = strrchr(base, '-');
    if (dash && dash > base && dash[1] >= '1' && dash[1] <= '9') {
        char *end;
        unsigned long v = strtoul(dash + 1, &end, 10);
        if (!*end && v < 1000000) {
            n = v;
            *dash = 0;
        }
    }
    char suffix[16];
    snprintf(suffix, sizeof suffix, "-%lu", n + 1);
    size_t room = 63 - strlen(suffix);
    if (strlen(base) > room)
        base[room] = 0;
    size_t bl = strlen(base), sl = strlen(suffix);
    memcpy(out, base, bl);
    memcpy(out + bl, suffix, sl + 1);
}

/* Queue what p has to report: FAILED, or RENAMED and ESTABLISHED once
 * announced. A flag is cleared only when its event was queued. */
void pl__mdns_pub_report(pl_mdns *m, pub *p)
{
    mgroup *g = &p->g;
    if (g->failed) {
        if (g->fail_pending && pl__mdns_event_push(m, PL_MDNS_EV_FAILED, g->id, NULL, p->name, NULL, 0))
            g->fail_pending = 0;
        return;
    }
    if (g->reported || g->count == 0 || (g->state != ST_ANNOUNCING && g->state != ST_ESTABLISHED))
        return;
    if (g->renamed) {
        if (!pl__mdns_event_push(m, PL_MDNS_EV_RENAMED, g->id, NULL, p->name, NULL, 0))
            return;
        g->renamed = 0;
    }
    if (pl__mdns_event_push(m, PL_MDNS_EV_ESTABLISHED, g->id, NULL, p->name, NULL, 0))
        g->reported = 1;
}

static void pub_fail(pl_mdns *m, pub *p)
{
    p->g.failed = 1;
    p->g.next = -1;
    p->g.fail_pending = 1;
    pl__mdns_pub_report(m, p);
}

void pl__mdns_pub_rename(pl_mdns *m, pub *p, int64_t now)
{
    pl__mdns_queue_drop_group(m, p->g.id);
    if (++p->g.renames > PL_MDNS_MAX_RENAMES) {
        pub_fail(m, p);
        return;
    }
    char alt[64];
    pl_mdns_alternative_service_name(p->name, alt);
    char svc[140];
    snprintf(svc, sizeof svc, "%s.%s", p->type, p->domain);
    pl_dns_name inst;
    if (pl_dns_name_from_labels(&inst, alt, svc) != PL_OK) {
        pub_fail(m, p);
        return;
    }
    memcpy(p->name, alt, sizeof p->name);
    p->inst = inst;
    p->g.renamed = 1;
    pl__mdns_group_start(m, &p->g, now);
}

void pl__mdns_host_rename(pl_mdns *m, int64_t now)
{
    char alt[64];
    pl_mdns_alternative_host_name(m->host_label, alt);
    pl__mdns_host_set_label(m, alt);
    pl__mdns_group_start(m, &m->host, now);
    m->host.renames++;
    /* The SRV records name the host: announce them again once it is live. */
    for (size_t i = 0; i < m->n_pubs; i++) {
        pub *p = m->pubs[i];
        pl__mdns_queue_drop_group(m, p->g.id);
        if (p->g.state != ST_PROBING) {
            p->g.state = ST_ANNOUNCING;
            p->g.count = 0;
            p->g.next = now;
        }
    }
}

/* ---------------------------------------------------------------- probing and announcing */

static void send_probe(pl_mdns *m, const pl_dns_name *name, const orrs *auth, int link_host, int64_t now)
{
    for (size_t li = 0; li < m->n_links; li++) {
        builder *b = malloc(sizeof *b);
        if (!b)
            return;
        pl__mdns_b_init(b, m, (int)li, now, 0);
        pl_dns_question q = {.name = *name, .type = PL_DNS_ANY, .qclass = PL_DNS_CLASS_IN};
        pl__mdns_b_question(b, &q);
        orrs h = {0};
        const orrs *a = auth;
        if (link_host) {
            pl__mdns_host_records(m, &m->links[li], &h);
            a = &h;
        }
        for (size_t i = 0; i < a->n; i++)
            pl__mdns_b_record(b, 2, &a->v[i].r, 0);
        free(h.v);
        pl__mdns_b_flush(b);
        free(b);
    }
}

void pl__mdns_group_step(pl_mdns *m, mgroup *g, pub *p, int64_t now)
{
    if (g->failed || g->next < 0 || g->next > now)
        return;
    if (g->state == ST_PROBING) {
        if (g->count < PROBES) {
            if (p) {
                orrs a = {0};
                pl__mdns_pub_records(m, p, 2, &a);
                send_probe(m, &p->inst, &a, 0, now);
                free(a.v);
            } else {
                send_probe(m, &m->host_name, NULL, 1, now);
            }
            g->count++;
            g->next = now + PROBE_INTERVAL;
            return;
        }
        if (p && !pl__mdns_host_live(m)) {
            g->next = m->host.next > now ? m->host.next : now + PROBE_INTERVAL;
            return; /* the SRV target must be ours before the service is announced */
        }
        g->state = ST_ANNOUNCING;
        g->count = 0;
    }
    if (g->state == ST_ANNOUNCING) {
        if (p && !pl__mdns_host_live(m)) {
            /* The host name is being probed again (a rename or a conflict):
             * nothing naming it, and none of its records, before it is ours.
             * The announcements start over once it is live. */
            g->count = 0;
            g->next = m->host.next > now ? m->host.next : now + PROBE_INTERVAL;
            return;
        }
        orrs recs = {0};
        if (p)
            pl__mdns_pub_records(m, p, 3, &recs);
        pl__mdns_send_records_all_links(m, &recs, 1, -1, now);
        free(recs.v);
        g->count++;
        g->next = now + ANNOUNCE_INTERVAL;
        if (g->count >= ANNOUNCEMENTS) {
            g->state = ST_ESTABLISHED;
            g->next = -1;
        }
        if (p)
            pl__mdns_pub_report(m, p);
    }
}
