/* SPDX-License-Identifier: ISC */
/*
 * libFuzzer target for the built-in mDNS engine itself (lib/mdns/engine.c,
 * publish.c, input.c, browse.c), not only its DNS codec (fuzz_dns).
 *
 * An engine on one link (IPv4 192.0.2.1 and IPv6 fe80::1) publishes an
 * instance, browses two types and the service types (RFC 6763 section 9),
 * then is fed a sequence of packets at
 * advancing times. The input is a series of chunks:
 *
 *   byte 0      bit 0: IPv6; bit 1: a legacy source port (not 5353);
 *               bit 2: the source is the engine's own address (its echo);
 *               bits 3-5: how far time advances first (0-7 x 300 ms);
 *               bit 6: then update the TXT record; bit 7: then browse or
 *               unbrowse a third type
 *   bytes 1-2   the packet's length, big-endian (what is left, if less)
 *   ...         the packet
 *
 * After each chunk the engine runs, and every packet it emits must parse
 * (pl_dns_parse), fit its size, and go where it may (the group, or a
 * legacy querier by unicast); every event must carry terminated strings.
 * At the end it shuts down, sending its goodbyes under the same checks.
 * Any violation aborts.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <peerlink/common.h>

#include "mdns/dns.h"
#include "mdns/engine.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FAMILY_V4 2  /* AF_INET on Linux; the engine only compares them */
#define FAMILY_V6 10 /* AF_INET6 */

static void drain(pl_mdns *m, int64_t now)
{
    pl_mdns_packet p;
    int guard = 0;
    while (pl_mdns_next_packet(m, now, &p)) {
        if (p.len == 0 || p.len > sizeof p.data || ++guard > PL_MDNS_MAX_QUEUE + 8)
            abort();
        pl_dns_message *msg = NULL;
        if (pl_dns_parse(p.data, p.len, &msg) != PL_OK)
            abort(); /* the engine wrote something it cannot read */
        pl_dns_free(msg);
        if (p.unicast && p.dst_port == 5353)
            abort(); /* unicast goes only to a legacy querier's port */
        if (p.family != FAMILY_V4 && p.family != FAMILY_V6)
            abort();
    }
    pl_mdns_event ev;
    guard = 0;
    while (pl_mdns_next_event(m, &ev)) {
        if (!memchr(ev.name, 0, sizeof ev.name) || !memchr(ev.host, 0, sizeof ev.host) ||
            ++guard > PL_MDNS_MAX_EVENTS + 8)
            abort();
        if (ev.txt_len && !ev.txt)
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pl_mdns *m = NULL;
    if (pl_mdns_new("fuzzhost", 1, &m) != PL_OK)
        return 0;
    int64_t now = 1000000;
    pl_mdns_addr own4 = {FAMILY_V4, {192, 0, 2, 1}}, own6 = {FAMILY_V6, {0xfe, 0x80, [15] = 1}};
    pl_mdns_addr peer4 = {FAMILY_V4, {192, 0, 2, 9}}, peer6 = {FAMILY_V6, {0xfe, 0x80, [15] = 9}};
    static const uint8_t txt1[] = {5, 'k', '=', 'v', '1', '1'}, txt2[] = {4, 'k', '=', 'v', '2'};
    uint32_t pub = 0, b1 = 0, b2 = 0, b3 = 0, bt = 0;
    int browsing3 = 0, which_txt = 0;
    if (pl_mdns_link_set(m, 1, FAMILY_V4, &own4, 1, now) != PL_OK ||
        pl_mdns_link_set(m, 1, FAMILY_V6, &own6, 1, now) != PL_OK ||
        pl_mdns_publish(m, "Fuzz", "_fuzz._tcp", "local", 4242, txt1, sizeof txt1, now, &pub) != PL_OK ||
        pl_mdns_browse(m, "_fuzz._tcp", "local", now, &b1) != PL_OK ||
        pl_mdns_browse(m, "_peerlink._tcp", "local", now, &b2) != PL_OK ||
        pl_mdns_browse(m, "_services._dns-sd._udp", "local", now, &bt) != PL_OK) {
        pl_mdns_free(m);
        return 0;
    }
    pl_mdns_process(m, now);
    drain(m, now);
    size_t off = 0;
    while (off + 3 <= size) {
        uint8_t ctl = data[off];
        size_t len = (size_t)data[off + 1] << 8 | data[off + 2];
        off += 3;
        if (len > size - off)
            len = size - off;
        now += (int64_t)((ctl >> 3) & 7) * 300;
        int v6 = ctl & 1;
        const pl_mdns_addr *src = ctl & 4 ? (v6 ? &own6 : &own4) : (v6 ? &peer6 : &peer4);
        uint16_t port = ctl & 2 ? (uint16_t)(40000 + data[off - 1]) : 5353;
        pl_mdns_process(m, now);
        drain(m, now);
        pl_mdns_input(m, 1, v6 ? FAMILY_V6 : FAMILY_V4, data + off, len, src, port, now);
        off += len;
        if (ctl & 0x40) {
            which_txt ^= 1;
            (void)pl_mdns_update_txt(m, pub, which_txt ? txt2 : txt1, which_txt ? sizeof txt2 : sizeof txt1, now);
        }
        if (ctl & 0x80) {
            if (browsing3)
                pl_mdns_unbrowse(m, b3);
            else
                (void)pl_mdns_browse(m, "_other._udp", "local", now, &b3);
            browsing3 ^= 1;
        }
        pl_mdns_process(m, now);
        drain(m, now);
        int64_t d = pl_mdns_next_deadline(m);
        if (d >= 0 && d < now - 1000000)
            abort(); /* a deadline long past that processing did not clear */
    }
    (void)b1;
    (void)b2;
    (void)bt;
    now += 10000;
    pl_mdns_process(m, now);
    drain(m, now);
    pl_mdns_shutdown(m, now);
    drain(m, now);
    pl_mdns_free(m);
    return 0;
}
