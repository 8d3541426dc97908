/*
 * plcat — a netcat-style tool over peerlink: publish and accept, browse,
 * or find an instance by name and connect. See plcat(1).
 * Uses only the public API.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <peerlink/peerlink.h>

#include "json.h"

enum { EXIT_RUNTIME = 1, EXIT_USAGE = 2, EXIT_NOT_FOUND = 3 };

/* Stop reading stdin while this much is queued for the peer. */
#define HIGH_WATER (1024 * 1024)
#define STDIN_CHUNK 65536

static const char *prog = "plcat";

typedef struct app {
    pl_loop *loop;
    const pl_poll *poll;
    pl_discovery *disc;
    pl_publication *pub;
    pl_browser *browser;
    pl_listener *listener;
    pl_conn *conn;
    pl_timeout *wait_timer;
    pl_watch *stdin_watch;
    /* options */
    int listen, browse, json, keep;
    const char *name, *type, *backend;
    int port;
    int wait_s;
    pl_txt *txt;
    /* state */
    int stdin_eof;
    int exit_status;
    int done;
} app;

static void finish(app *a, int status)
{
    if (!a->done) {
        a->done = 1;
        a->exit_status = status;
    }
    pl_loop_quit(a->loop);
}

static void die_usage(const char *msg)
{
    if (msg)
        fprintf(stderr, "%s: %s\n", prog, msg);
    fprintf(stderr,
            "usage: %s -l [-n NAME] [-t TYPE] [-p PORT] [-T KEY[=VALUE]]... [-k] [--backend NAME]\n"
            "       %s -b [-t TYPE] [-w SECONDS] [--json] [--backend NAME]\n"
            "       %s [-t TYPE] [-w SECONDS] [--backend NAME] NAME\n",
            prog, prog, prog);
    exit(EXIT_USAGE);
}

/* ---------------------------------------------------------------- the data session */

static void stdin_ready(pl_watch *w, int fd, unsigned events, void *userdata);

static void stdin_interest(app *a)
{
    int want = a->conn && !a->stdin_eof && pl_conn_pending(a->conn) < HIGH_WATER;
    if (want && !a->stdin_watch)
        a->stdin_watch = a->poll->watch_new(a->poll, STDIN_FILENO, PL_WATCH_IN, stdin_ready, a);
    else if (!want && a->stdin_watch) {
        a->poll->watch_free(a->stdin_watch);
        a->stdin_watch = NULL;
    }
}

static void stdin_ready(pl_watch *w, int fd, unsigned events, void *userdata)
{
    app *a = userdata;
    static char buf[STDIN_CHUNK];
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return;
    if (n <= 0) {
        if (n < 0)
            fprintf(stderr, "%s: reading standard input: %s\n", prog, strerror(errno));
        a->stdin_eof = 1;
        pl_conn_shutdown(a->conn);
    } else {
        int err = pl_conn_send(a->conn, buf, (size_t)n);
        if (err != PL_OK) {
            fprintf(stderr, "%s: send failed: %s\n", prog, pl_strerror(err));
            finish(a, EXIT_RUNTIME);
            return;
        }
    }
    stdin_interest(a);
}

static void conn_event(pl_conn *c, pl_conn_event ev, int status, const void *data, size_t len,
                       void *userdata)
{
    app *a = userdata;
    switch (ev) {
    case PL_CONN_OPEN:
        stdin_interest(a);
        break;
    case PL_CONN_MESSAGE:
        if (len && fwrite(data, 1, len, stdout) != len) {
            fprintf(stderr, "%s: writing standard output: %s\n", prog, strerror(errno));
            finish(a, EXIT_RUNTIME);
        }
        break;
    case PL_CONN_PEER_EOF:
        fflush(stdout);
        break;
    case PL_CONN_DRAINED:
        stdin_interest(a);
        break;
    case PL_CONN_CLOSED:
        fflush(stdout);
        pl_conn_free(c);
        a->conn = NULL;
        stdin_interest(a);
        if (status != PL_OK) {
            fprintf(stderr, "%s: connection failed: %s\n", prog, pl_strerror(status));
            if (!a->listen || !a->keep)
                finish(a, EXIT_RUNTIME);
        } else if (!a->listen || !a->keep) {
            finish(a, 0);
        }
        break;
    }
}

/* ---------------------------------------------------------------- listen mode */

static void on_accept(pl_listener *l, pl_conn *c, void *userdata)
{
    app *a = userdata;
    if (a->conn || a->done) {
        pl_conn_free(c); /* one peer at a time */
        return;
    }
    char peer[PL_ADDRSTRLEN + 16];
    if (pl_conn_peer_string(c, peer, sizeof peer) == PL_OK)
        fprintf(stderr, "%s: connection from %s\n", prog, peer);
    a->conn = c;
    pl_conn_set_callback(c, conn_event, a);
    if (a->stdin_eof)
        pl_conn_shutdown(c);
    stdin_interest(a);
}

static void on_publish(pl_publication *p, pl_publish_event ev, int status, const char *name,
                       void *userdata)
{
    app *a = userdata;
    switch (ev) {
    case PL_PUBLISH_ESTABLISHED:
        fprintf(stderr, "%s: published \"%s\" (%s) on port %u\n", prog, name, a->type,
                pl_listener_port(a->listener));
        break;
    case PL_PUBLISH_RENAMED:
        fprintf(stderr, "%s: renamed to \"%s\"\n", prog, name);
        break;
    case PL_PUBLISH_FAILED:
        fprintf(stderr, "%s: publishing failed: %s\n", prog, pl_strerror(status));
        finish(a, EXIT_RUNTIME);
        break;
    }
}

static int run_listen(app *a)
{
    int err = pl_listener_new(a->poll, (uint16_t)a->port, on_accept, a, &a->listener);
    if (err != PL_OK) {
        fprintf(stderr, "%s: cannot listen on port %d: %s (%s)\n", prog, a->port, pl_strerror(err),
                strerror(errno));
        return EXIT_RUNTIME;
    }
    char defname[64];
    if (!a->name) {
        char host[256] = "";
        gethostname(host, sizeof host - 1);
        snprintf(defname, sizeof defname, "plcat on %.54s", host); /* at most 63 bytes */
        a->name = defname;
    }
    err = pl_publish(a->disc, a->name, a->type, pl_listener_port(a->listener), a->txt, on_publish, a,
                     &a->pub);
    if (err != PL_OK) {
        fprintf(stderr, "%s: cannot publish \"%s\" (%s): %s\n", prog, a->name, a->type,
                pl_strerror(err));
        return err == PL_ERR_INVALID ? EXIT_USAGE : EXIT_RUNTIME;
    }
    return -1;
}

/* ---------------------------------------------------------------- browse and connect */

static void print_plain(const char *sign, const pl_service *s)
{
    printf("%s %s\t%u\t", sign, s->name, s->port);
    for (size_t i = 0; i < s->n_addresses; i++) {
        char buf[PL_ADDRSTRLEN];
        if (pl_address_to_string(&s->addresses[i], buf, sizeof buf) == PL_OK)
            printf("%s%s", i ? "," : "", buf);
    }
    for (size_t i = 0; i < pl_txt_count(s->txt); i++) {
        const char *key;
        const void *val;
        size_t len;
        pl_txt_at(s->txt, i, &key, &val, &len);
        printf("\t%s", key);
        if (val) {
            putchar('=');
            fwrite(val, 1, len, stdout);
        }
    }
    putchar('\n');
}

static void on_browse(pl_browser *b, pl_browse_event ev, int status, const pl_service *svc,
                      void *userdata)
{
    app *a = userdata;
    if (ev == PL_BROWSE_FAILED) {
        fprintf(stderr, "%s: browsing failed: %s\n", prog, pl_strerror(status));
        finish(a, EXIT_RUNTIME);
        return;
    }
    if (a->browse) {
        static const char *const words[] = {"add", "update", "remove"};
        static const char *const signs[] = {"+", "~", "-"};
        if (a->json) {
            char *line = NULL;
            if (plcat_json_event(words[ev], svc, &line) == 0) {
                puts(line);
                free(line);
            }
        } else {
            print_plain(signs[ev], svc);
        }
        fflush(stdout);
        return;
    }
    /* Connect mode: the first add or update of the instance named. */
    if (ev == PL_BROWSE_REMOVE || a->conn || strcmp(svc->name, a->name) != 0)
        return;
    int err = pl_connect(a->poll, svc, 0, conn_event, a, &a->conn);
    if (err != PL_OK) {
        fprintf(stderr, "%s: cannot connect to \"%s\": %s\n", prog, svc->name, pl_strerror(err));
        finish(a, EXIT_RUNTIME);
        return;
    }
    a->poll->timeout_update(a->wait_timer, -1);
    pl_browser_free(b);
    a->browser = NULL;
}

static void wait_expired(pl_timeout *t, void *userdata)
{
    app *a = userdata;
    if (a->browse) {
        finish(a, 0);
        return;
    }
    fprintf(stderr, "%s: \"%s\" not found within %d s\n", prog, a->name, a->wait_s);
    finish(a, EXIT_NOT_FOUND);
}

static int run_browse(app *a)
{
    int err = pl_browse(a->disc, a->type, NULL, on_browse, a, &a->browser);
    if (err != PL_OK) {
        fprintf(stderr, "%s: cannot browse %s: %s\n", prog, a->type, pl_strerror(err));
        return err == PL_ERR_INVALID ? EXIT_USAGE : EXIT_RUNTIME;
    }
    int secs = a->wait_s;
    if (!a->browse && secs <= 0)
        secs = a->wait_s = 10;
    if (secs > 0) {
        a->wait_timer = a->poll->timeout_new(a->poll, secs * 1000, wait_expired, a);
        if (!a->wait_timer) {
            fprintf(stderr, "%s: out of memory\n", prog);
            return EXIT_RUNTIME;
        }
    }
    return -1;
}

/* ---------------------------------------------------------------- main */

static int parse_txt(app *a, const char *arg)
{
    char key[256];
    const char *eq = strchr(arg, '=');
    size_t klen = eq ? (size_t)(eq - arg) : strlen(arg);
    if (klen == 0 || klen >= sizeof key)
        return PL_ERR_INVALID;
    memcpy(key, arg, klen);
    key[klen] = 0;
    return pl_txt_set_str(a->txt, key, eq ? eq + 1 : NULL);
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"json", no_argument, NULL, 'J'},  {"backend", required_argument, NULL, 'B'},
        {"help", no_argument, NULL, 'h'},  {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    app a = {0};
    a.type = "_peerlink._tcp";
    if (pl_txt_new(&a.txt) != PL_OK)
        return EXIT_RUNTIME;
    int c;
    while ((c = getopt_long(argc, argv, "lbn:t:p:T:kw:hV", longopts, NULL)) != -1) {
        char *end;
        switch (c) {
        case 'l': a.listen = 1; break;
        case 'b': a.browse = 1; break;
        case 'n': a.name = optarg; break;
        case 't': a.type = optarg; break;
        case 'k': a.keep = 1; break;
        case 'J': a.json = 1; break;
        case 'B': a.backend = optarg; break;
        case 'p':
            a.port = (int)strtol(optarg, &end, 10);
            if (*end || a.port < 0 || a.port > 65535)
                die_usage("-p takes a port number from 0 to 65535");
            break;
        case 'w':
            a.wait_s = (int)strtol(optarg, &end, 10);
            if (*end || a.wait_s <= 0 || a.wait_s > 86400)
                die_usage("-w takes a number of seconds from 1 to 86400");
            break;
        case 'T': {
            int err = parse_txt(&a, optarg);
            if (err != PL_OK) {
                fprintf(stderr, "%s: bad TXT attribute \"%s\": %s\n", prog, optarg, pl_strerror(err));
                exit(EXIT_USAGE);
            }
            break;
        }
        case 'h': die_usage(NULL); break;
        case 'V': printf("plcat (peerlink) %s\n", pl_version()); return 0;
        default: die_usage(NULL);
        }
    }
    if (a.backend && strcmp(a.backend, "list") == 0) {
        printf("%s\n", pl_discovery_backends());
        return 0;
    }
    if (a.listen + a.browse > 1)
        die_usage("-l and -b exclude each other");
    if (a.listen || a.browse) {
        if (optind != argc)
            die_usage("unexpected argument");
    } else {
        if (optind != argc - 1)
            die_usage("name the instance to connect to");
        a.name = argv[optind];
    }
    if ((a.keep || a.port || pl_txt_count(a.txt)) && !a.listen)
        die_usage("-k, -p and -T go with -l");
    if (a.json && !a.browse)
        die_usage("--json goes with -b");

    signal(SIGPIPE, SIG_IGN);
    if (pl_loop_new(&a.loop) != PL_OK) {
        fprintf(stderr, "%s: out of memory\n", prog);
        return EXIT_RUNTIME;
    }
    a.poll = pl_loop_get_poll(a.loop);
    int err = pl_discovery_new(a.poll, a.backend, &a.disc);
    int status;
    if (err != PL_OK) {
        if (err == PL_ERR_UNSUPPORTED)
            fprintf(stderr, "%s: no discovery backend \"%s\" in this build (have: %s)\n", prog,
                    a.backend ? a.backend : "", pl_discovery_backends());
        else
            fprintf(stderr, "%s: discovery: %s\n", prog, pl_strerror(err));
        status = err == PL_ERR_UNSUPPORTED ? EXIT_USAGE : EXIT_RUNTIME;
    } else {
        status = a.listen ? run_listen(&a) : run_browse(&a);
        if (status < 0) {
            if (pl_loop_run(a.loop) != PL_OK) {
                fprintf(stderr, "%s: event loop: %s\n", prog, strerror(errno));
                a.exit_status = EXIT_RUNTIME;
            }
            status = a.exit_status;
        }
    }
    if (a.stdin_watch)
        a.poll->watch_free(a.stdin_watch);
    if (a.wait_timer)
        a.poll->timeout_free(a.wait_timer);
    pl_conn_free(a.conn);
    pl_listener_free(a.listener);
    pl_discovery_free(a.disc); /* withdraws the publication, stops the browser */
    pl_txt_free(a.txt);
    pl_loop_free(a.loop);
    fflush(stdout);
    return status;
}
