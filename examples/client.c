/* SPDX-License-Identifier: ISC */
/*
 * client — the other end of examples/accessory.c: it finds an accessory by name (pl_connect_by_name(): names
 * compare as DNS-SD's do, "kitchen" finds "Kitchen"), pairs with a code
 * given on the command line (or, without one, authenticates with the keys it stored when it paired),
 * sends MESSAGE (or each line of standard input) as one message, prints each echo as a line, and exits
 * 0 once the session has ended cleanly: every echo arrived. Its sends follow the send limit: on
 * PL_ERR_AGAIN it waits for PL_SESSION_ACKED and goes on. Public API only.
 *
 *   client [-t TYPE] [--code CODE] [--keys DIR] NAME [MESSAGE]
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <peerlink/peerlink.h>

typedef struct client {
    pl_loop *loop;
    pl_node *node;
    pl_session *conn;
    const char *name, *code;
    char *msgs;       /* the messages, each followed by '\n' */
    size_t len, sent; /* bytes in msgs, and of those sent so far */
    int status;
} client;

/* Send what the send limit takes of the messages not sent yet; after the last, end our direction. */
static int send_more(client *cl)
{
    while (cl->sent < cl->len) {
        const char *msg = cl->msgs + cl->sent;
        size_t n = (size_t)((const char *)memchr(msg, '\n', cl->len - cl->sent) - msg);
        int rc = pl_session_send(cl->conn, msg, n);
        if (rc != PL_OK)
            return rc == PL_ERR_AGAIN ? PL_OK : rc; /* PL_ERR_AGAIN: again on PL_SESSION_ACKED */
        cl->sent += n + 1;
    }
    return pl_session_shutdown(cl->conn); /* idempotent: every later Ack comes here too */
}

static void finish(client *cl, int rc)
{
    if (rc != PL_OK)
        fprintf(stderr, "client: \"%s\": %s\n", cl->name, pl_strerror(rc)); /* not paired: give --code */
    cl->status = rc != PL_OK;
    pl_loop_quit(cl->loop);
}

static void on_session(pl_session *c, pl_session_event ev, int status, const void *data, size_t len, void *ud)
{
    client *cl = ud;
    if (ev == PL_SESSION_OPEN)
        fprintf(stderr, "client: %s \"%s\"\n", pl_session_paired(c) ? "paired with" : "authenticated", cl->name);
    if (ev == PL_SESSION_OPEN || ev == PL_SESSION_ACKED) {
        if ((status = send_more(cl)) != PL_OK)
            finish(cl, status);
    } else if (ev == PL_SESSION_MESSAGE) {
        fwrite(data, 1, len, stdout);
        putchar('\n');
    } else if (ev == PL_SESSION_CLOSED) {
        finish(cl, status);
    }
}

/* MESSAGE, or all of standard input (text: a NUL would end it), into cl->msgs, ending in '\n'. 0 or -1. */
static int read_messages(client *cl, const char *arg)
{
    size_t cap = 0;
    ssize_t n = arg ? -1 : getdelim(&cl->msgs, &cap, '\0', stdin); /* -1 also for empty input */
    if (arg && (cl->msgs = malloc(strlen(arg) + 2)) != NULL)
        n = (ssize_t)strlen(strcpy(cl->msgs, arg));
    if ((arg && !cl->msgs) || ferror(stdin))
        return -1;
    cl->len = n > 0 ? (size_t)n : 0;
    if (cl->len && cl->msgs[cl->len - 1] != '\n') /* there is room: the NUL's */
        cl->msgs[cl->len++] = '\n';
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"code", required_argument, NULL, 'c'},
        {"keys", required_argument, NULL, 'k'}, {NULL, 0, NULL, 0}};
    client cl = {0};
    const char *type = "_peerlink._tcp", *keys = NULL;
    int o, rc;
    while ((o = getopt_long(argc, argv, "t:", opts, NULL)) != -1) {
        switch (o) {
        case 't': type = optarg; break;
        case 'c': cl.code = optarg; break;
        case 'k': keys = optarg; break;
        default: optind = argc; /* usage */
        }
    }
    if (optind + 1 != argc && optind + 2 != argc)
        return fprintf(stderr, "usage: client [-t TYPE] [--code CODE] [--keys DIR] NAME [MESSAGE]\n"), 2;
    cl.name = argv[optind];
    if (read_messages(&cl, argv[optind + 1]) != 0)
        return fprintf(stderr, "client: cannot read the messages\n"), 1;
    pl_keystore *ks = NULL;
    pl_discovery *d = NULL;
    /* Found, connected and authenticated within 10 s, or PL_SESSION_CLOSED says why (PL_ERR_NOT_FOUND). */
    if ((rc = keys ? pl_keystore_open_dir(keys, &ks) : pl_keystore_new_memory(&ks)) == PL_OK &&
        (rc = pl_loop_new(&cl.loop)) == PL_OK && (rc = pl_node_new(pl_loop_get_poll(cl.loop), ks, &cl.node)) == 0 &&
        (rc = pl_discovery_new(pl_loop_get_poll(cl.loop), NULL, &d)) == PL_OK &&
        (rc = pl_connect_by_name(cl.node, d, type, cl.name, 10000, on_session, &cl, &cl.conn)) == PL_OK &&
        (rc = cl.code ? pl_session_set_code(cl.conn, cl.code) : PL_OK) == PL_OK)
        pl_loop_run(cl.loop); /* until finish() */
    if (rc != PL_OK)
        fprintf(stderr, "client: %s\n", pl_strerror(rc));
    pl_node_free(cl.node); /* and the session */
    pl_discovery_free(d);
    pl_loop_free(cl.loop);
    pl_keystore_free(ks);
    free(cl.msgs);
    if (fflush(stdout) != 0 || ferror(stdout))
        return fprintf(stderr, "client: cannot write the echoes\n"), 1;
    return rc != PL_OK ? 1 : cl.status;
}
