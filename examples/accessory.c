/* SPDX-License-Identifier: ISC */
/*
 * accessory — a peerlink accessory: it publishes itself (DNS-SD; TXT model=peerlink-accessory), pairs with
 * a code (given, or generated and printed), and echoes every message back with the flow control that cannot
 * deadlock (pl_session_pause()): when the send limit refuses an echo (PL_ERR_AGAIN), keep it and pause; on
 * PL_SESSION_ACKED send it again and unpause. A paused session still reads the link, so Acks get through
 * while both sides send in bulk. -1: exit after the first session (0 if clean), saying how often it paused. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <peerlink/peerlink.h>

typedef struct server {
    pl_loop *loop;
    size_t send_limit;
    long pauses; /* how often an echo waited for Acks */
    int once, status;
} server;

typedef struct session { /* keeps at most one message: the echo the send limit refused */
    server *srv;
    void *kept;
    size_t kept_len;
} session;

static void on_session(pl_session *c, pl_session_event ev, int status, const void *data, size_t len, void *ud)
{
    session *s = ud;
    int rc = PL_OK;
    if (ev == PL_SESSION_MESSAGE && (rc = pl_session_send(c, data, len)) == PL_ERR_AGAIN) {
        rc = PL_ERR_NOMEM; /* keep it, and take no more messages until it has gone */
        if ((s->kept = malloc(len ? len : 1)) && (rc = pl_session_pause(c, 1)) == PL_OK) {
            memcpy(s->kept, data, s->kept_len = len);
            s->srv->pauses++;
        }
    } else if (ev == PL_SESSION_ACKED && s->kept) {
        if ((rc = pl_session_send(c, s->kept, s->kept_len)) == PL_OK) {
            free(s->kept);
            s->kept = NULL;
            rc = pl_session_pause(c, 0);
        } else if (rc == PL_ERR_AGAIN) {
            rc = PL_OK; /* not yet: wait for more Acks */
        }
    } else if (ev == PL_SESSION_PEER_EOF) { /* never while an echo is kept: a paused session gets no EOF */
        rc = pl_session_shutdown(c);
    } else if (ev == PL_SESSION_CLOSED) {
        rc = status;
    }
    if (rc == PL_OK && ev != PL_SESSION_CLOSED)
        return;
    fprintf(stderr, "accessory: session ended%s%s\n", rc ? ": " : " cleanly", rc ? pl_strerror(rc) : "");
    s->srv->status = rc != PL_OK; /* the exit status, with -1 */
    if (s->srv->once)
        pl_loop_quit(s->srv->loop);
    pl_session_free(c);
    free(s->kept);
    free(s);
}

static void on_accept(pl_listener *l, pl_session *c, void *ud)
{
    session *s = calloc(1, sizeof *s);
    (void)l;
    if (!s) {
        pl_session_free(c);
        return;
    }
    s->srv = ud;
    if (s->srv->send_limit) /* else the default, 4 MiB */
        pl_session_set_send_limit(c, s->srv->send_limit);
    pl_session_set_callback(c, on_session, s);
    fprintf(stderr, "accessory: %s \"%s\"\n", pl_session_paired(c) ? "paired with" : "authenticated",
            pl_session_peer_name(c));
}

static void on_pairing(pl_listener *l, pl_pairing_event ev, int status, const char *code, void *ud)
{
    (void)l, (void)ud; /* NEW_CODE: failures replaced the code; CLOSED: a peer paired, or the window ended */
    if (ev == PL_PAIRING_NEW_CODE)
        fprintf(stderr, "accessory: new pairing code: %s\n", code);
    else if (ev == PL_PAIRING_CLOSED) /* pl_listener_set_pairing() on the user's act opens it again */
        fprintf(stderr, "accessory: pairing closed (%s)\n", status == PL_OK ? "a peer paired" : pl_strerror(status));
}

static void on_publish(pl_publication *p, pl_publish_event ev, int status, const char *name, void *ud)
{
    (void)p, (void)ud; /* PL_PUBLISH_RENAMED: ESTABLISHED follows under the new name */
    if (ev == PL_PUBLISH_ESTABLISHED)
        fprintf(stderr, "accessory: published \"%s\"\n", name);
    else if (ev == PL_PUBLISH_FAILED)
        fprintf(stderr, "accessory: cannot publish \"%s\": %s\n", name, pl_strerror(status));
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"code", required_argument, NULL, 'c'},
        {"keys", required_argument, NULL, 'k'}, {"send-limit", required_argument, NULL, 's'}, {NULL, 0, NULL, 0}};
    server srv = {0};
    const char *name = "peerlink accessory", *type = "_peerlink._tcp", *keys = NULL, *code = NULL;
    char *end = NULL;
    long port = 0; /* 0: any free port (DNS-SD tells clients which) */
    int o, rc;
    while ((o = getopt_long(argc, argv, "n:t:p:1", opts, NULL)) != -1) {
        switch (o) {
        case 'n': name = optarg; break;
        case 't': type = optarg; break;
        case 'c': code = optarg; break;
        case 'k': keys = optarg; break;
        case '1': srv.once = 1; break;
        case 'p':
            if ((port = strtol(optarg, &end, 10)) >= 0 && port <= 65535 && *optarg && !*end)
                break;
            return fprintf(stderr, "accessory: -p takes a port number (0 to 65535)\n"), 2;
        case 's':
            if ((srv.send_limit = strtoul(optarg, &end, 10)) > 0 && !*end)
                break;
            return fprintf(stderr, "accessory: --send-limit takes a number of bytes above 0\n"), 2;
        default:
            return fprintf(stderr, "usage: accessory [-n NAME] [-t TYPE] [-p PORT] [--code CODE] [--keys DIR] "
                                   "[--send-limit BYTES] [-1]\n"), 2;
        }
    }
    pl_keystore *ks = NULL;
    pl_node *node = NULL;
    pl_listener *listener = NULL;
    pl_txt *txt = NULL;
    pl_discovery *d = NULL;
    if ((rc = keys ? pl_keystore_open_dir(keys, &ks) : pl_keystore_new_memory(&ks)) == PL_OK &&
        (rc = pl_loop_new(&srv.loop)) == PL_OK && (rc = pl_node_new(pl_loop_get_poll(srv.loop), ks, &node)) == 0 &&
        (rc = pl_listener_new(node, (uint16_t)port, on_accept, &srv, &listener)) == PL_OK &&
        (rc = pl_listener_set_pairing(listener, code, 0, 0)) == PL_OK && (rc = pl_txt_new(&txt)) == PL_OK &&
        (rc = pl_txt_set_str(txt, "model", "peerlink-accessory")) == PL_OK &&
        (rc = pl_discovery_new(pl_loop_get_poll(srv.loop), NULL, &d)) == PL_OK &&
        (rc = pl_listener_publish(listener, d, name, type, txt, on_publish, &srv)) == PL_OK) {
        pl_listener_set_pairing_callback(listener, on_pairing, NULL);
        fprintf(stderr, "accessory: listening on port %u%s%s\n", pl_listener_port(listener),
                code ? "" : ", pairing code ", code ? "" : pl_listener_code(listener));
        pl_loop_run(srv.loop); /* until the first session ends, with -1; else for ever */
        fprintf(stderr, "accessory: paused %ld times\n", srv.pauses);
    } else {
        fprintf(stderr, "accessory: %s\n", pl_strerror(rc));
    }
    pl_node_free(node); /* the listener (and its publication) and the sessions still open */
    pl_discovery_free(d);
    pl_txt_free(txt);
    pl_loop_free(srv.loop);
    pl_keystore_free(ks);
    return rc != PL_OK ? 1 : srv.status;
}
