/*
 * plcat — a netcat-style tool over peerlink: publish and accept, browse,
 * or find an instance by name and connect; every session is paired with
 * a code once, then authenticated with stored keys, and encrypted.
 * See plcat(1). Uses only the public API.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <net/if.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <peerlink/peerlink.h>

#include "json.h"

enum {
    EXIT_RUNTIME = 1,
    EXIT_USAGE = 2,
    EXIT_NOT_FOUND = 3,
    EXIT_WRONG_CODE = 4,
    EXIT_NOT_PAIRED = 5 /* no code to pair with, or pairing refused (locked, busy) */
};

/* Stop reading stdin while this much is queued for the peer, or while a
 * chunk waits for the peer to acknowledge (PL_ERR_AGAIN past SEND_LIMIT). */
#define HIGH_WATER (1024 * 1024)
#define STDIN_CHUNK 65536
#define SEND_LIMIT (4 * 1024 * 1024)

static const char *prog = "plcat";

typedef struct app {
    pl_loop *loop;
    const pl_poll *poll;
    pl_discovery *disc;
    pl_keystore *ks;
    pl_node *node; /* the loop and the keystore: every session and listener */
    pl_browser *browser;
    pl_listener *listener;
    pl_session *conn;
    pl_timeout *wait_timer;
    pl_watch *stdin_watch;
    /* options */
    int listen, browse, json, keep;
    const char *name, *type, *backend, *keys;
    char code[64];
    int have_code;
    unsigned max_attempts;
    int port;
    int wait_s;
    int resume_s; /* -1: the library's default */
    const char *address; /* connect mode: dial this address instead of browsing */
    pl_txt *txt;
    /* connect mode: the service found, kept to connect again with a code */
    pl_service found;
    char found_name[64];
    pl_address *found_addrs;
    /* state */
    int stdin_eof;
    char held[STDIN_CHUNK]; /* read from stdin, refused for now by the send limit */
    size_t held_len;
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

static void usage(FILE *out)
{
    fprintf(out,
            "usage: %s -l [-n NAME] [-t TYPE] [-p PORT] [-T KEY[=VALUE]]... [-k] [--code CODE]\n"
            "                [--max-attempts N] [--keys DIR] [--backend NAME] [--resume SECONDS]\n"
            "       %s -b [-t TYPE] [-w SECONDS] [--json] [--backend NAME]\n"
            "       %s [-t TYPE] [-w SECONDS] [--code CODE] [--keys DIR] [--backend NAME]\n"
            "                [--resume SECONDS] [--address HOST:PORT] NAME\n"
            "       %s --list-paired [--keys DIR]\n"
            "       %s --forget NAME [--keys DIR]\n",
            prog, prog, prog, prog, prog);
}

/* A usage error: what is wrong (getopt said it already if msg is NULL), and where to look. */
static void die_usage(const char *msg)
{
    if (msg)
        fprintf(stderr, "%s: %s\n", prog, msg);
    fprintf(stderr, "Try '%s --help' for more information.\n", prog);
    exit(EXIT_USAGE);
}

/* The program's short name: its file name (libtool's "lt-" wrapper prefix aside). */
static const char *short_name(const char *argv0)
{
    const char *s = strrchr(argv0, '/');
    s = s ? s + 1 : argv0;
    return strncmp(s, "lt-", 3) == 0 ? s + 3 : s;
}

/* What a peer or any advertiser chose (names, TXT) goes to the terminal
 * escaped, as avahi-browse does: a control byte, DEL or a backslash as
 * \DDD (its decimal value), so that nobody can put escape sequences on
 * the user's screen or break the one-record-a-line output. */
static void put_escaped(FILE *f, const void *data, size_t n)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < 0x20 || p[i] == 0x7f || p[i] == '\\')
            fprintf(f, "\\%03u", p[i]);
        else
            putc(p[i], f);
    }
}

/* s escaped into a buffer of its own (one of four, for up to four in one printf). */
static const char *esc(const char *s)
{
    static char bufs[4][4 * 256 + 1];
    static unsigned next;
    char *b = bufs[next++ % 4];
    if (!s)
        return "";
    FILE *f = fmemopen(b, sizeof bufs[0], "w");
    if (!f)
        return "?";
    put_escaped(f, s, strnlen(s, 256));
    fclose(f);
    return b;
}

/* The status plcat exits with for an error of the library. */
static int exit_for(int err)
{
    switch (err) {
    case PL_ERR_WRONG_CODE: return EXIT_WRONG_CODE;
    case PL_ERR_NOT_PAIRED:
    case PL_ERR_LOCKED:
    case PL_ERR_BUSY: return EXIT_NOT_PAIRED;
    default: return EXIT_RUNTIME;
    }
}

static void report_failure(int err)
{
    if (err == PL_ERR_WRONG_CODE || err == PL_ERR_LOCKED || err == PL_ERR_BUSY)
        fprintf(stderr, "%s: pairing failed: %s\n", prog, pl_strerror(err));
    else
        fprintf(stderr, "%s: connection failed: %s\n", prog, pl_strerror(err));
}

/* ---------------------------------------------------------------- the keystore */

/* mkdir -p with mode 0700 for what it creates. */
static int make_dirs(const char *path)
{
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return -1;
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        if (mkdir(buf, 0700) < 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return 0;
}

static int open_keystore(app *a)
{
    char dir[4096];
    const char *xdg = getenv("XDG_DATA_HOME"), *home = getenv("HOME");
    if (a->keys)
        snprintf(dir, sizeof dir, "%s", a->keys);
    else if (xdg && xdg[0])
        snprintf(dir, sizeof dir, "%s/peerlink", xdg);
    else if (home && home[0])
        snprintf(dir, sizeof dir, "%s/.local/share/peerlink", home);
    else {
        fprintf(stderr, "%s: no keystore directory: set HOME or XDG_DATA_HOME, or give --keys\n", prog);
        return EXIT_USAGE;
    }
    make_dirs(dir);
    int err = pl_keystore_open_dir(dir, &a->ks);
    if (err != PL_OK) {
        fprintf(stderr, "%s: keystore %s: %s (%s)\n", prog, dir, pl_strerror(err), strerror(errno));
        return EXIT_RUNTIME;
    }
    return 0;
}

static int list_paired(app *a)
{
    pl_paired_peer *peers = NULL;
    size_t n = 0;
    int err = pl_keystore_list_peers(a->ks, &peers, &n);
    if (err != PL_OK) {
        fprintf(stderr, "%s: listing paired peers: %s\n", prog, pl_strerror(err));
        return EXIT_RUNTIME;
    }
    for (size_t i = 0; i < n; i++) {
        char id[65], when[32] = "?";
        time_t t = (time_t)peers[i].paired_at;
        struct tm tm;
        pl_id_to_string(peers[i].id, id, sizeof id);
        if (gmtime_r(&t, &tm))
            strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
        printf("%s\t%s\t%s\n", esc(peers[i].name), when, id);
    }
    free(peers);
    return 0;
}

static int forget(app *a, const char *name)
{
    int err = pl_keystore_forget(a->ks, name);
    if (err == PL_ERR_NOT_FOUND) {
        fprintf(stderr, "%s: no paired peer named \"%s\"\n", prog, name);
        return EXIT_NOT_FOUND;
    }
    if (err != PL_OK) {
        fprintf(stderr, "%s: forgetting \"%s\": %s\n", prog, name, pl_strerror(err));
        return EXIT_RUNTIME;
    }
    fprintf(stderr, "%s: forgot \"%s\"\n", prog, name);
    return 0;
}

/* Ask for the code on the terminal (not stdin: that is the data). 0 if there is none. */
static int ask_code(app *a)
{
    int fd = open("/dev/tty", O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return 0;
    struct termios old, quiet;
    int echo_off = tcgetattr(fd, &old) == 0;
    if (echo_off) {
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        quiet.c_lflag |= ECHONL;
        tcsetattr(fd, TCSAFLUSH, &quiet);
    }
    dprintf(fd, "Pairing code for \"%s\": ", a->name);
    char buf[64];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    if (echo_off)
        tcsetattr(fd, TCSAFLUSH, &old);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = 0;
    buf[strcspn(buf, "\r\n")] = 0;
    if (!buf[0])
        return 0;
    snprintf(a->code, sizeof a->code, "%s", buf);
    a->have_code = 1;
    return 1;
}

/* ---------------------------------------------------------------- the data session */

static void stdin_ready(pl_watch *w, int fd, unsigned events, void *userdata);
static int start_connect(app *a);

static void stdin_interest(app *a)
{
    int want = a->conn && !a->stdin_eof && !a->held_len && pl_session_pending(a->conn) < HIGH_WATER &&
               pl_session_peer_name(a->conn);
    if (want && !a->stdin_watch)
        a->stdin_watch = a->poll->watch_new(a->poll, STDIN_FILENO, PL_WATCH_IN, stdin_ready, a);
    else if (!want && a->stdin_watch) {
        a->poll->watch_free(a->stdin_watch);
        a->stdin_watch = NULL;
    }
}

/* Send the chunk read from stdin; past the send limit it waits for PL_SESSION_ACKED. 0 on error. */
static int send_held(app *a)
{
    if (!a->held_len || !a->conn)
        return 1;
    int err = pl_session_send(a->conn, a->held, a->held_len);
    if (err == PL_ERR_AGAIN)
        return 1;
    if (err != PL_OK) {
        fprintf(stderr, "%s: send failed: %s\n", prog, pl_strerror(err));
        finish(a, EXIT_RUNTIME);
        return 0;
    }
    a->held_len = 0;
    return 1;
}

static void stdin_ready(pl_watch *w, int fd, unsigned events, void *userdata)
{
    app *a = userdata;
    ssize_t n = read(fd, a->held, sizeof a->held);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return;
    if (n <= 0) {
        if (n < 0)
            fprintf(stderr, "%s: reading standard input: %s\n", prog, strerror(errno));
        a->stdin_eof = 1;
        pl_session_shutdown(a->conn);
    } else {
        a->held_len = (size_t)n;
        if (!send_held(a))
            return;
    }
    stdin_interest(a);
}

static void conn_event(pl_session *c, pl_session_event ev, int status, const void *data, size_t len,
                       void *userdata)
{
    app *a = userdata;
    switch (ev) {
    case PL_SESSION_INTERRUPTED:
        fprintf(stderr, "%s: connection interrupted (%s); resuming\n", prog, pl_strerror(status));
        break;
    case PL_SESSION_RESUMED:
        if (status == PL_OK)
            fprintf(stderr, "%s: resumed\n", prog);
        else
            fprintf(stderr, "%s: resumed in a new session: the peer lost the old one (%s)\n", prog,
                    pl_strerror(status));
        stdin_interest(a);
        break;
    case PL_SESSION_ACKED:
        if (send_held(a))
            stdin_interest(a);
        break;
    case PL_SESSION_OPEN:
        fprintf(stderr, "%s: %s \"%s\"\n", prog, pl_session_paired(c) ? "paired with" : "authenticated",
                esc(pl_session_peer_name(c)));
        if (a->stdin_eof)
            pl_session_shutdown(c);
        stdin_interest(a);
        break;
    case PL_SESSION_MESSAGE:
        /* Unbuffered, so that a pipeline sees each message as it comes. */
        if (len && (fwrite(data, 1, len, stdout) != len || fflush(stdout) != 0)) {
            fprintf(stderr, "%s: writing standard output: %s\n", prog, strerror(errno));
            finish(a, EXIT_RUNTIME);
        }
        break;
    case PL_SESSION_PEER_EOF:
        break;
    case PL_SESSION_DRAINED:
        stdin_interest(a);
        break;
    case PL_SESSION_CLOSED:
        pl_session_free(c);
        a->conn = NULL;
        stdin_interest(a);
        if (status == PL_ERR_NOT_PAIRED && !a->listen && !a->have_code) {
            if (ask_code(a) && start_connect(a) == 0)
                return; /* again, pairing with the code typed */
            fprintf(stderr, "%s: \"%s\" is not paired with this keystore: give its code with --code\n",
                    prog, a->name);
            finish(a, EXIT_NOT_PAIRED);
        } else if (status != PL_OK) {
            report_failure(status);
            if (!a->listen || !a->keep)
                finish(a, exit_for(status));
        } else if (!a->listen || !a->keep) {
            finish(a, 0);
        }
        break;
    }
}

/* ---------------------------------------------------------------- listen mode */

static void on_accept(pl_listener *l, pl_session *c, void *userdata)
{
    app *a = userdata;
    if (a->conn || a->done) {
        pl_session_free(c); /* one peer at a time */
        return;
    }
    char peer[PL_ADDRSTRLEN + 16] = "?";
    pl_session_peer_string(c, peer, sizeof peer);
    fprintf(stderr, "%s: %s \"%s\" from %s\n", prog, pl_session_paired(c) ? "paired with" : "authenticated",
            esc(pl_session_peer_name(c)), peer);
    a->conn = c;
    pl_session_set_callback(c, conn_event, a);
    pl_session_set_send_limit(c, SEND_LIMIT);
    if (a->stdin_eof)
        pl_session_shutdown(c);
    stdin_interest(a);
}

static void on_pairing(pl_listener *l, pl_pairing_event ev, int status, const char *code, void *userdata)
{
    app *a = userdata;
    if (ev == PL_PAIRING_NEW_CODE) {
        fprintf(stderr, "%s: too many failed attempts; new pairing code: %s\n", prog, code);
        return;
    }
    if (status == PL_ERR_WRONG_CODE) {
        fprintf(stderr, "%s: pairing failed: wrong code\n", prog);
        if (!a->keep && !a->conn)
            finish(a, EXIT_WRONG_CODE);
    } else {
        fprintf(stderr, "%s: a pairing attempt failed: %s\n", prog, pl_strerror(status));
    }
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
    case PL_PUBLISH_RENAMED: /* the listener binds its handshakes to the new name by itself */
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
    int err = pl_listener_new(a->node, (uint16_t)a->port, on_accept, a, &a->listener);
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
    err = pl_listener_set_pairing(a->listener, a->have_code ? a->code : NULL, 0, a->max_attempts);
    if (err != PL_OK) {
        fprintf(stderr, "%s: bad code: %s\n", prog, pl_strerror(err));
        return EXIT_USAGE;
    }
    pl_listener_set_pairing_callback(a->listener, on_pairing, a);
    if (a->resume_s >= 0)
        pl_listener_set_resume(a->listener, a->resume_s * 1000, 5000);
    if (!a->have_code)
        fprintf(stderr, "%s: pairing code: %s\n", prog, pl_listener_code(a->listener));
    err = pl_listener_publish(a->listener, a->disc, a->name, a->type, a->txt, on_publish, a);
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
    printf("%s %s\t%u\t", sign, esc(s->name), s->port);
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
        printf("\t%s", esc(key));
        if (val) {
            putchar('=');
            put_escaped(stdout, val, len);
        }
    }
    putchar('\n');
}

/* Connect to the service found (again, after a code was typed). 0 or an exit status. */
static int start_connect(app *a)
{
    int err = pl_connect(a->node, &a->found, 0, conn_event, a, &a->conn);
    if (err == PL_OK && a->have_code)
        err = pl_session_set_code(a->conn, a->code);
    if (err == PL_OK)
        err = pl_session_set_send_limit(a->conn, SEND_LIMIT);
    if (err == PL_OK && a->resume_s >= 0)
        err = pl_session_set_resume(a->conn, a->resume_s * 1000);
    if (err == PL_OK && !a->address)
        err = pl_session_set_discovery(a->conn, a->disc);
    if (err != PL_OK) {
        fprintf(stderr, "%s: cannot connect to \"%s\": %s\n", prog, a->name, pl_strerror(err));
        pl_session_free(a->conn);
        a->conn = NULL;
        return err == PL_ERR_INVALID ? EXIT_USAGE : EXIT_RUNTIME;
    }
    return 0;
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
        if (fflush(stdout) != 0) {
            fprintf(stderr, "%s: writing standard output: %s\n", prog, strerror(errno));
            finish(a, EXIT_RUNTIME);
        }
        return;
    }
    /* Connect mode: the first add or update of the instance named. */
    if (ev == PL_BROWSE_REMOVE || a->conn || a->found_addrs || strcmp(svc->name, a->name) != 0)
        return;
    a->found_addrs = calloc(svc->n_addresses ? svc->n_addresses : 1, sizeof *a->found_addrs);
    if (!a->found_addrs) {
        finish(a, EXIT_RUNTIME);
        return;
    }
    memcpy(a->found_addrs, svc->addresses, svc->n_addresses * sizeof *a->found_addrs);
    snprintf(a->found_name, sizeof a->found_name, "%s", svc->name);
    a->found = *svc;
    a->found.name = a->found_name;
    a->found.addresses = a->found_addrs;
    a->found.txt = NULL;
    a->found.type = a->type; /* to find it again if it moves (pl_session_set_discovery) */
    a->found.domain = a->found.host = NULL;
    a->poll->timeout_update(a->wait_timer, -1);
    pl_browser_free(b);
    a->browser = NULL;
    int st = start_connect(a);
    if (st)
        finish(a, st);
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

/* --address HOST:PORT (HOST: an IPv4 address, or an IPv6 one in brackets,
 * with %IFACE for a link-local one): dial it, no browsing. */
static int run_address(app *a)
{
    char host[80];
    const char *colon = strrchr(a->address, ':');
    char *end = NULL;
    long port = colon ? strtol(colon + 1, &end, 10) : 0;
    size_t hlen = colon ? (size_t)(colon - a->address) : 0;
    if (!colon || *end || port < 1 || port > 65535 || hlen == 0 || hlen >= sizeof host) {
        fprintf(stderr, "%s: --address takes HOST:PORT, e.g. 192.0.2.1:4242 or [fe80::1%%eth0]:4242\n", prog);
        return EXIT_USAGE;
    }
    memcpy(host, a->address, hlen);
    host[hlen] = 0;
    a->found_addrs = calloc(1, sizeof *a->found_addrs);
    if (!a->found_addrs)
        return EXIT_RUNTIME;
    pl_address *ad = a->found_addrs;
    int ok;
    if (host[0] == '[' && host[hlen - 1] == ']') {
        host[hlen - 1] = 0;
        char *pct = strchr(host, '%');
        if (pct) {
            *pct = 0;
            ad->ifindex = (int)if_nametoindex(pct + 1);
        }
        ad->family = AF_INET6;
        ok = inet_pton(AF_INET6, host + 1, ad->addr) == 1 && (!pct || ad->ifindex > 0);
    } else {
        ad->family = AF_INET;
        ok = inet_pton(AF_INET, host, ad->addr) == 1;
    }
    if (!ok) {
        fprintf(stderr, "%s: --address: \"%s\" is not an IP address\n", prog, a->address);
        return EXIT_USAGE;
    }
    snprintf(a->found_name, sizeof a->found_name, "%s", a->name);
    a->found.name = a->found_name;
    a->found.port = (uint16_t)port;
    a->found.n_addresses = 1;
    a->found.addresses = a->found_addrs;
    int st = start_connect(a);
    return st ? st : -1;
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
    if (argc > 0 && argv[0] && argv[0][0])
        argv[0] = (char *)(prog = short_name(argv[0])); /* getopt's messages use it too */
    enum { OPT_JSON = 256, OPT_BACKEND, OPT_CODE, OPT_KEYS, OPT_FORGET, OPT_LIST, OPT_MAX_ATTEMPTS, OPT_RESUME,
           OPT_ADDRESS };
    static const struct option longopts[] = {
        {"json", no_argument, NULL, OPT_JSON},
        {"backend", required_argument, NULL, OPT_BACKEND},
        {"code", required_argument, NULL, OPT_CODE},
        {"keys", required_argument, NULL, OPT_KEYS},
        {"forget", required_argument, NULL, OPT_FORGET},
        {"list-paired", no_argument, NULL, OPT_LIST},
        {"max-attempts", required_argument, NULL, OPT_MAX_ATTEMPTS},
        {"resume", required_argument, NULL, OPT_RESUME},
        {"address", required_argument, NULL, OPT_ADDRESS},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    app a = {0};
    const char *forget_name = NULL;
    int list = 0;
    a.type = "_peerlink._tcp";
    a.resume_s = -1;
    if (pl_txt_new(&a.txt) != PL_OK)
        return EXIT_RUNTIME;
    int c;
    while ((c = getopt_long(argc, argv, "lbn:t:p:T:kw:hV", longopts, NULL)) != -1) {
        char *end;
        long v;
        switch (c) {
        case 'l': a.listen = 1; break;
        case 'b': a.browse = 1; break;
        case 'n': a.name = optarg; break;
        case 't': a.type = optarg; break;
        case 'k': a.keep = 1; break;
        case OPT_JSON: a.json = 1; break;
        case OPT_BACKEND: a.backend = optarg; break;
        case OPT_KEYS: a.keys = optarg; break;
        case OPT_FORGET: forget_name = optarg; break;
        case OPT_LIST: list = 1; break;
        case OPT_CODE:
            if (snprintf(a.code, sizeof a.code, "%s", optarg) >= 33 || !optarg[0])
                die_usage("--code takes 1 to 32 printable characters");
            a.have_code = 1;
            break;
        case OPT_MAX_ATTEMPTS:
            v = strtol(optarg, &end, 10);
            if (*end || v < 1 || v > 1000)
                die_usage("--max-attempts takes a number from 1 to 1000");
            a.max_attempts = (unsigned)v;
            break;
        case OPT_RESUME:
            v = strtol(optarg, &end, 10);
            if (*end || v < 0 || v > 86400)
                die_usage("--resume takes a number of seconds from 0 to 86400");
            a.resume_s = (int)v;
            break;
        case OPT_ADDRESS: a.address = optarg; break;
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
        case 'h':
            usage(stdout);
            pl_txt_free(a.txt);
            return fflush(stdout) == 0 ? 0 : EXIT_RUNTIME;
        case 'V':
            printf("plcat (peerlink) %s\n", pl_version());
            pl_txt_free(a.txt);
            return 0;
        default: die_usage(NULL);
        }
    }
    if (a.backend && strcmp(a.backend, "list") == 0) {
        printf("%s\n", pl_discovery_backends());
        pl_txt_free(a.txt);
        return 0;
    }
    int management = list || forget_name;
    if (a.listen + a.browse + management > 1 || (list && forget_name))
        die_usage("-l, -b, --list-paired and --forget exclude each other");
    if (a.listen || a.browse || management) {
        if (optind != argc)
            die_usage("unexpected argument");
    } else {
        if (optind != argc - 1)
            die_usage("name the instance to connect to");
        a.name = argv[optind];
    }
    if (a.wait_s && a.listen)
        die_usage("-w goes with -b or with connecting to NAME, not with -l");
    if ((a.keep || a.port || pl_txt_count(a.txt) || a.max_attempts) && !a.listen)
        die_usage("-k, -p, -T and --max-attempts go with -l");
    if (a.json && !a.browse)
        die_usage("--json goes with -b");
    if (a.address && (a.listen || a.browse || management))
        die_usage("--address goes with connecting to NAME");

    signal(SIGPIPE, SIG_IGN);
    int status = 0;
    if (!a.browse && (status = open_keystore(&a)) != 0)
        return status;
    if (management) {
        status = list ? list_paired(&a) : forget(&a, forget_name);
        pl_keystore_free(a.ks);
        pl_txt_free(a.txt);
        return status;
    }
    if (pl_loop_new(&a.loop) != PL_OK) {
        fprintf(stderr, "%s: out of memory\n", prog);
        return EXIT_RUNTIME;
    }
    a.poll = pl_loop_get_poll(a.loop);
    if (a.ks && pl_node_new(a.poll, a.ks, &a.node) != PL_OK) {
        fprintf(stderr, "%s: out of memory\n", prog);
        return EXIT_RUNTIME;
    }
    int err = pl_discovery_new(a.poll, a.backend, &a.disc);
    if (err != PL_OK) {
        if (err == PL_ERR_UNSUPPORTED)
            fprintf(stderr, "%s: no discovery backend \"%s\" in this build (have: %s)\n", prog,
                    a.backend ? a.backend : "", pl_discovery_backends());
        else
            fprintf(stderr, "%s: discovery: %s\n", prog, pl_strerror(err));
        status = err == PL_ERR_UNSUPPORTED ? EXIT_USAGE : EXIT_RUNTIME;
    } else {
        status = a.listen ? run_listen(&a) : a.address ? run_address(&a) : run_browse(&a);
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
    pl_session_free(a.conn);
    pl_listener_free(a.listener);
    pl_discovery_free(a.disc); /* withdraws the publication, stops the browser */
    pl_node_free(a.node);
    pl_keystore_free(a.ks);
    pl_txt_free(a.txt);
    free(a.found_addrs);
    pl_loop_free(a.loop);
    memset(a.code, 0, sizeof a.code);
    if (fflush(stdout) != 0 && status == 0) {
        fprintf(stderr, "%s: writing standard output: %s\n", prog, strerror(errno));
        status = EXIT_RUNTIME;
    }
    return status;
}
