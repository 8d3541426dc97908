/*
 * plecho — an echo server over peerlink, and the example of flow control
 * that cannot deadlock: every message that arrives is sent back; when
 * the send limit refuses one (PL_ERR_AGAIN), the session keeps it and
 * pauses (takes no more messages); on PL_SESSION_ACKED it sends the kept
 * one again and, once that goes, takes messages again. A paused session
 * still reads the link, so the peer's Acks get through even while both
 * sides send in bulk. When the peer ends its direction, plecho ends its
 * own after the last echo. Uses only the public API.
 *
 *   plecho [-p PORT] [-n NAME] [--code CODE] [--keys DIR] [--send-limit BYTES] [-1]
 *
 * It listens on TCP (all addresses) under instance name NAME (the name
 * handshakes are bound to; default "plecho"), accepts pairing with CODE
 * (default: a generated code, printed), and prints one line per event
 * to stderr. -1: exit after the first session ends (0 if it ended
 * cleanly), printing how often it paused, the most the library kept for
 * it (pl_session_held(), pl_session_unacked()) and its peak resident memory.
 * --send-limit bounds the echoes the peer has not acknowledged (default
 * 4 MiB). The pattern is free of deadlock while the peer's send limit
 * is not above this side's receive limit (both 4 MiB by default; see
 * pl_session_pause()). Try it with plcat:
 *
 *   plecho -p 4242 --code 123456 &
 *   plcat --address 127.0.0.1:4242 --code 123456 plecho < file > echoed
 */
#include <getopt.h>
#include <stdio.h>
#include <sys/resource.h>
#include <stdlib.h>
#include <string.h>

#include <peerlink/peerlink.h>

typedef struct server {
    pl_loop *loop;
    pl_listener *listener;
    size_t send_limit;
    long pauses;
    size_t peak_held, peak_unacked; /* what the library kept for the sessions, at most */
    int once, sessions, status;
} server;

/* One session: at most one message is kept, so the memory spent on a
 * slow peer is the send limit plus one message (plus what the library
 * holds for a paused session: see pl_session_pause()). */
typedef struct session {
    server *srv;
    pl_session *conn;
    void *kept; /* the echo the send limit refused */
    size_t kept_len;
    int have_kept, peer_ended;
} session;

static void session_end(session *s, int status)
{
    server *srv = s->srv;
    pl_session_free(s->conn);
    free(s->kept);
    free(s);
    srv->sessions--;
    if (srv->once) {
        srv->status = status == PL_OK ? 0 : 1;
        pl_loop_quit(srv->loop);
    }
}

/* Send the kept echo. 1 if it went (or there was none), 0 if it waits, -1 on error. */
static int send_kept(session *s)
{
    if (!s->have_kept)
        return 1;
    int rc = pl_session_send(s->conn, s->kept, s->kept_len);
    if (rc == PL_ERR_AGAIN)
        return 0;
    free(s->kept);
    s->kept = NULL;
    s->have_kept = 0;
    if (rc != PL_OK) {
        fprintf(stderr, "plecho: send failed: %s\n", pl_strerror(rc));
        return -1;
    }
    return 1;
}

static void on_session(pl_session *c, pl_session_event ev, int status, const void *data, size_t len, void *ud)
{
    session *s = ud;
    int rc;
    if (pl_session_held(c) > s->srv->peak_held)
        s->srv->peak_held = pl_session_held(c);
    if (pl_session_unacked(c) > s->srv->peak_unacked)
        s->srv->peak_unacked = pl_session_unacked(c);
    switch (ev) {
    case PL_SESSION_MESSAGE:
        rc = pl_session_send(c, data, len);
        if (rc == PL_ERR_AGAIN) {
            /* Keep it, and take no more messages until it has gone. */
            s->kept = malloc(len ? len : 1);
            if (!s->kept) {
                fprintf(stderr, "plecho: out of memory\n");
                session_end(s, PL_ERR_NOMEM);
                return;
            }
            memcpy(s->kept, data, len);
            s->kept_len = len;
            s->have_kept = 1;
            s->srv->pauses++;
            pl_session_pause(c, 1);
        } else if (rc != PL_OK) {
            fprintf(stderr, "plecho: send failed: %s\n", pl_strerror(rc));
            session_end(s, rc);
        }
        break;
    case PL_SESSION_ACKED:
        rc = send_kept(s);
        if (rc < 0) {
            session_end(s, PL_ERR_STATE);
        } else if (rc > 0) {
            pl_session_pause(c, 0);
            if (s->peer_ended)
                pl_session_shutdown(c);
        }
        break;
    case PL_SESSION_PEER_EOF:
        /* The peer's messages have all arrived; end ours after the last echo. */
        s->peer_ended = 1;
        if (!s->have_kept)
            pl_session_shutdown(c);
        break;
    case PL_SESSION_INTERRUPTED:
        fprintf(stderr, "plecho: interrupted (%s); waiting for the peer to resume\n", pl_strerror(status));
        break;
    case PL_SESSION_RESUMED:
        fprintf(stderr, "plecho: resumed\n");
        break;
    case PL_SESSION_CLOSED:
        if (status == PL_OK)
            fprintf(stderr, "plecho: session ended cleanly\n");
        else
            fprintf(stderr, "plecho: session ended: %s\n", pl_strerror(status));
        session_end(s, status);
        break;
    default:
        break;
    }
}

static void on_accept(pl_listener *l, pl_session *c, void *ud)
{
    server *srv = ud;
    (void)l;
    session *s = calloc(1, sizeof *s);
    if (!s) {
        pl_session_free(c);
        return;
    }
    s->srv = srv;
    s->conn = c;
    srv->sessions++;
    if (srv->send_limit)
        pl_session_set_send_limit(c, srv->send_limit);
    pl_session_set_callback(c, on_session, s);
    fprintf(stderr, "plecho: %s \"%s\"\n", pl_session_paired(c) ? "paired with" : "authenticated",
            pl_session_peer_name(c));
}

static void on_pairing(pl_listener *l, pl_pairing_event ev, int status, const char *code, void *ud)
{
    (void)l;
    (void)ud;
    if (ev == PL_PAIRING_NEW_CODE)
        fprintf(stderr, "plecho: new pairing code: %s\n", code);
    else
        fprintf(stderr, "plecho: a pairing attempt failed: %s\n", pl_strerror(status));
}

static void usage(FILE *f)
{
    fprintf(f, "usage: plecho [-p PORT] [-n NAME] [--code CODE] [--keys DIR] [--send-limit BYTES] [-1]\n");
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"port", required_argument, NULL, 'p'},   {"name", required_argument, NULL, 'n'},
        {"code", required_argument, NULL, 'c'},   {"keys", required_argument, NULL, 'k'},
        {"send-limit", required_argument, NULL, 's'}, {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    server srv = {0};
    const char *name = "plecho", *code = NULL, *keys = NULL;
    long port = 0;
    int o;
    while ((o = getopt_long(argc, argv, "p:n:1h", opts, NULL)) != -1) {
        char *end = NULL;
        switch (o) {
        case 'p':
            port = strtol(optarg, &end, 10);
            if (*end || port < 0 || port > 65535) {
                fprintf(stderr, "plecho: -p takes a port number (0 to 65535)\n");
                return 2;
            }
            break;
        case 'n': name = optarg; break;
        case 'c': code = optarg; break;
        case 'k': keys = optarg; break;
        case 's':
            srv.send_limit = strtoul(optarg, &end, 10);
            if (*end || srv.send_limit == 0) {
                fprintf(stderr, "plecho: --send-limit takes a number of bytes above 0\n");
                return 2;
            }
            break;
        case '1': srv.once = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }
    pl_keystore *ks = NULL;
    int rc = keys ? pl_keystore_open_dir(keys, &ks) : pl_keystore_new_memory(&ks);
    if (rc != PL_OK) {
        fprintf(stderr, "plecho: keystore %s: %s\n", keys ? keys : "(memory)", pl_strerror(rc));
        return 1;
    }
    pl_node *node = NULL;
    rc = pl_loop_new(&srv.loop);
    if (rc == PL_OK)
        rc = pl_node_new(pl_loop_get_poll(srv.loop), ks, &node);
    if (rc == PL_OK)
        rc = pl_listener_new(node, (uint16_t)port, on_accept, &srv, &srv.listener);
    if (rc == PL_OK)
        rc = pl_listener_set_instance(srv.listener, name);
    if (rc == PL_OK)
        rc = pl_listener_set_pairing(srv.listener, code, 0, 0);
    if (rc != PL_OK) {
        fprintf(stderr, "plecho: cannot listen: %s\n", pl_strerror(rc));
        return 1;
    }
    pl_listener_set_pairing_callback(srv.listener, on_pairing, &srv);
    fprintf(stderr, "plecho: \"%s\" listening on port %u, pairing code %s\n", name,
            pl_listener_port(srv.listener), pl_listener_code(srv.listener));
    srv.status = 0;
    pl_loop_run(srv.loop);
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0)
        fprintf(stderr, "plecho: paused %ld times; at most %zu bytes held, %zu unacknowledged; peak resident memory %ld KiB\n",
                srv.pauses, srv.peak_held, srv.peak_unacked, ru.ru_maxrss);
    pl_listener_free(srv.listener);
    pl_node_free(node); /* and the sessions still open */
    pl_loop_free(srv.loop);
    pl_keystore_free(ks);
    return srv.status;
}
