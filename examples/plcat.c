/* SPDX-License-Identifier: ISC */
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
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
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
    EXIT_NOT_PAIRED = 5, /* no code to pair with, or pairing refused (locked, busy) */
    EXIT_SIGNAL = 128    /* plus the signal's number, as a shell reports a process a signal ended */
};

/* Stop reading the input while this much is queued for the peer, or while a
 * chunk waits for the peer to acknowledge (PL_ERR_AGAIN past SEND_LIMIT). */
#define HIGH_WATER (1024 * 1024)
#define INPUT_CHUNK 65536
#define SEND_LIMIT (4 * 1024 * 1024)
/* After a signal, how long the peer has to acknowledge what was sent. */
#define SIGNAL_GRACE_MS 2000
#define PROGRESS_MS 1000

static const char *prog = "plcat";

/* -a: the service types browsed, at most this many. */
#define MAX_TYPES 64

typedef struct type_browser {
    pl_browser *b;
    char type[64];
    int listed; /* PL_BROWSE_ALL_FOR_NOW came */
} type_browser;

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
    /* options */
    int listen, browse, json, keep, verbose, quiet;
    int terminate, all; /* -b: end after the initial list; browse every type */
    int listed;         /* -t: the browser has listed what was there */
    type_browser types[MAX_TYPES]; /* -a: a browser per type */
    size_t n_types;
    int eof_ends;  /* -N, --send-only: end the session once our input is delivered */
    int send_only, recv_only;
    const char *exec_cmd; /* -e PROGRAM or -c COMMAND: run it for each session */
    int exec_shell;
    const char *name, *type, *backend, *keys;
    const char *as; /* --as: the name this device gives peers (pl_node_set_name()) */
    char code[64];
    int have_code;
    unsigned max_attempts;
    int pair_window;  /* --pair-window: seconds, 0 until plcat exits; -1: the library's 900 */
    int keep_pairing; /* --keep-pairing: open after a peer paired */
    int port;
    int wait_s;
    int resume_s; /* -1: the library's default */
    const char *address; /* connect mode: dial this address instead of browsing */
    pl_txt *txt;
    /* --address: the service dialled (again, after a code was typed) */
    pl_service found;
    pl_address found_address;
    /* the session's data: in_fd (standard input, or the program's output) goes to the
     * peer; the peer's messages go to out_fd (standard output, or the program's input) */
    int in_fd, out_fd;
    pid_t child;         /* -e/-c: the program of the session */
    pid_t ending;        /* the program of a session that ended, not reaped yet */
    int ending_signal;   /* what it was sent last: 0, SIGTERM, SIGKILL */
    pl_timeout *reap_timer;
    pl_watch *in_watch, *out_watch;
    int in_eof, peer_eof, open, closing;
    char held[INPUT_CHUNK]; /* read from the input, refused for now by the send limit */
    size_t held_len;
    char *out_buf; /* what out_fd, a full pipe, has not taken yet (the session is paused meanwhile) */
    size_t out_len, out_off;
    /* -v */
    uint64_t sent, received;
    struct timespec started;
    int64_t in_size; /* bytes the input holds, if it is a regular file; else -1 */
    pl_timeout *progress_timer;
    int progress_shown;
    /* signals */
    pl_watch *sig_watch;
    pl_timeout *grace_timer;
    int signo;
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

/* The library's log, on standard error: its errors always (they name what plcat's own
 * message cannot: the interface, the limit), more with -v, everything with PEERLINK_DEBUG. */
static void on_log(pl_log_level level, const char *message, void *userdata)
{
    if (level <= PL_LOG_ERROR)
        fprintf(stderr, "%s: %s\n", prog, message);
    else
        fprintf(stderr, "%s: %s: %s\n", prog, pl_log_level_name(level), message);
}

/* "paired with \"NAME\"" / "authenticated \"NAME\"": the name this keystore holds the peer
 * under, and what it calls itself on this connection when that differs (a claim only). */
static void note_peer(const app *a, pl_session *c, const char *suffix);
static void note_txt(const app *a, pl_session *c);

/* A status line on standard error (not with -q). Errors use fprintf directly. */
static void note(const app *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(const app *a, const char *fmt, ...)
{
    if (a->quiet)
        return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", prog);
    vfprintf(stderr, fmt, ap);
    putc('\n', stderr);
    va_end(ap);
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: %s -l [-n NAME] [-s TYPE] [-p PORT] [-T KEY[=VALUE]]... [-k] [CODE OPTION]\n"
            "                [--max-attempts N] [--pair-window SECONDS] [--keep-pairing] [DATA OPTIONS]\n"
            "                [COMMON OPTIONS]\n"
            "       %s -b [-t] [-a | -s TYPE | TYPE] [-w SECONDS] [--json] [--backend NAME]\n"
            "       %s [-s TYPE] [-w SECONDS] [CODE OPTION] [--address HOST:PORT] [--as NAME]\n"
            "                [-T KEY[=VALUE]]... [DATA OPTIONS] [COMMON OPTIONS] NAME\n"
            "       %s --list-paired [--keys DIR]\n"
            "       %s --forget NAME | --forget-id ID [--keys DIR]\n"
            "code option: --code CODE | --code-file FILE (or PLCAT_CODE in the environment)\n"
            "data options: [-N] [--send-only | --recv-only] [-e PROGRAM | -c COMMAND]\n"
            "common options: [-v | -q] [--keys DIR] [--backend NAME] [--resume SECONDS]\n",
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

/* The pairing code from --code, --code-file or PLCAT_CODE (what): 1 to 32 bytes, the first
 * line of a file without its line end. Exits with a usage error if it is not. */
static void set_code(app *a, const char *code, const char *what)
{
    size_t n = strcspn(code, "\r\n");
    if (n == 0 || n > 32)
        die_usage(strcmp(what, "--code") == 0 ? "--code takes 1 to 32 printable characters"
                                              : "the pairing code must be 1 to 32 printable characters");
    memcpy(a->code, code, n);
    a->code[n] = 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)a->code[i] < 0x20 || a->code[i] == 0x7f)
            die_usage("the pairing code has a control character");
    a->have_code = 1;
}

/* What the compiler may not optimise away: the code's copies are wiped with it. */
static void wipe(void *p, size_t n)
{
    volatile unsigned char *v = p;
    while (n--)
        *v++ = 0;
}

/* --code-file FILE: the code is its first line (other users cannot see it, as they can a
 * command line). The buffer is wiped. */
static void read_code_file(app *a, const char *path)
{
    char buf[64] = "";
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "%s: --code-file %s: %s\n", prog, path, strerror(errno));
        exit(EXIT_USAGE);
    }
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    if (strlen(buf) != n) /* a NUL inside */
        n = 0, buf[0] = 0;
    set_code(a, buf, "--code-file");
    wipe(buf, sizeof buf);
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
    case PL_ERR_NOT_FOUND: return EXIT_NOT_FOUND;
    default: return EXIT_RUNTIME;
    }
}

static void report_failure(const app *a, int err)
{
    if (err == PL_ERR_NOT_FOUND && !a->listen)
        fprintf(stderr, "%s: \"%s\" not found within %d s\n", prog, esc(a->name), a->wait_s);
    else if (err == PL_ERR_WRONG_CODE || err == PL_ERR_LOCKED || err == PL_ERR_BUSY)
        fprintf(stderr, "%s: pairing failed: %s\n", prog, pl_strerror(err));
    else if (err == PL_ERR_NOT_PAIRED && a->have_code && !a->listen) /* we had a code: it refused to pair */
        fprintf(stderr,
                "%s: pairing failed: \"%s\" is not open to pairing "
                "(its window ended, a peer paired, or too many attempts failed)\n",
                prog, esc(a->name));
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
        printf("%s\t%s\t%s\t%s\n", esc(peers[i].name), when, id,
               peers[i].role == PL_PEER_RESPONDER ? "responder" : "initiator");
    }
    free(peers);
    return 0;
}

/* --forget-id: the peer of this id (64 hex digits, as --list-paired shows), in both roles. */
static int forget_id(app *a, const char *hex)
{
    uint8_t id[PL_ID_SIZE] = {0};
    int ok = strlen(hex) == 2 * sizeof id; /* first: the loop reads two digits at a time */
    for (size_t i = 0; ok && i < sizeof id; i++)
        ok = sscanf(hex + 2 * i, "%2hhx", &id[i]) == 1;
    char check[65];
    /* The round trip refuses what sscanf would let through ("+f", " f", "0x"). */
    if (!ok || pl_id_to_string(id, check, sizeof check) != PL_OK || strcasecmp(check, hex) != 0)
        die_usage("--forget-id takes a peer's id: 64 hex digits, as --list-paired shows");
    int err = pl_keystore_forget_id(a->ks, id);
    if (err == PL_ERR_NOT_FOUND) {
        fprintf(stderr, "%s: no paired peer has the id %s\n", prog, check);
        return EXIT_NOT_FOUND;
    }
    if (err != PL_OK) {
        fprintf(stderr, "%s: forgetting %s: %s\n", prog, check, pl_strerror(err));
        return EXIT_RUNTIME;
    }
    fprintf(stderr, "%s: forgot %s\n", prog, check);
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

/* The signal that ended plcat, once caught (the handler also wakes the loop). */
static volatile sig_atomic_t caught;
static int sig_fds[2] = {-1, -1};

static void on_signal(int signo)
{
    int saved = errno;
    unsigned char b = (unsigned char)signo;
    caught = signo;
    if (write(sig_fds[1], &b, 1) < 0) { /* full: a wakeup is pending anyway */
    }
    errno = saved;
}

/* Ask for the code on the terminal (not stdin: that is the data). 1 if one was typed, 0 if
 * there is none, -1 if a signal interrupted the prompt. The terminal's echo is restored in
 * every case. */
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
    /* Wait for the line or a signal (its byte stays in the pipe for the loop to see). */
    struct pollfd pfd[2] = {{fd, POLLIN, 0}, {sig_fds[0], POLLIN, 0}};
    while (!caught && poll(pfd, 2, -1) < 0 && errno == EINTR) {
    }
    ssize_t n = caught || (pfd[1].revents & POLLIN) ? -1 : read(fd, buf, sizeof buf - 1);
    if (echo_off)
        tcsetattr(fd, TCSAFLUSH, &old);
    int interrupted = n < 0 && caught;
    if (interrupted)
        dprintf(fd, "\n");
    close(fd);
    if (interrupted)
        return -1;
    if (n <= 0)
        return 0;
    buf[n] = 0;
    buf[strcspn(buf, "\r\n")] = 0;
    int ok = buf[0] != 0;
    if (ok) {
        snprintf(a->code, sizeof a->code, "%s", buf);
        a->have_code = 1;
    }
    memset(buf, 0, sizeof buf);
    return ok;
}

/* ---------------------------------------------------------------- the data session */

static void input_ready(pl_watch *w, int fd, unsigned events, void *userdata);
static void output_ready(pl_watch *w, int fd, unsigned events, void *userdata);
static int start_connect(app *a);

static double seconds_since(const struct timespec *t0)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - t0->tv_sec) + (double)(now.tv_nsec - t0->tv_nsec) / 1e9;
}

/* "12.3 MiB" */
static const char *human(double bytes, char *buf, size_t cap)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    unsigned u = 0;
    while (bytes >= 1024 && u < 4) {
        bytes /= 1024;
        u++;
    }
    snprintf(buf, cap, u ? "%.1f %s" : "%.0f %s", bytes, units[u]);
    return buf;
}

/* -v on a terminal: one line, rewritten every second, for a long transfer. */
static void progress_tick(pl_timeout *t, void *userdata)
{
    app *a = userdata;
    char s[32], r[32], rate[32], left[48] = "";
    double secs = seconds_since(&a->started);
    double bps = secs > 0 ? (double)a->sent / secs : 0;
    if (a->in_size > 0 && bps > 0 && (uint64_t)a->in_size > a->sent) {
        double rest = (double)((uint64_t)a->in_size - a->sent) / bps;
        snprintf(left, sizeof left, ", %d:%02d left", (int)rest / 60, (int)rest % 60);
    }
    fprintf(stderr, "\r%s: %s sent (%s/s%s), %s received\033[K", prog, human((double)a->sent, s, sizeof s),
            human(bps, rate, sizeof rate), left, human((double)a->received, r, sizeof r));
    a->progress_shown = 1;
    a->poll->timeout_update(t, PROGRESS_MS);
}

static void input_interest(app *a)
{
    int want = a->conn && a->open && a->in_fd >= 0 && !a->in_eof && !a->held_len &&
               pl_session_pending(a->conn) < HIGH_WATER;
    if (want && !a->in_watch)
        a->in_watch = a->poll->watch_new(a->poll, a->in_fd, PL_WATCH_IN, input_ready, a);
    else if (!want && a->in_watch) {
        a->poll->watch_free(a->in_watch);
        a->in_watch = NULL;
    }
}

/* -N, --send-only, or a signal: once the peer's application has everything we sent, our
 * end of the stream included (PL_SESSION_DELIVERED), free the session. Its Abort then
 * reaches a peer that has seen our end-of-stream, which ends cleanly (see conn_event). */
static void close_when_delivered(app *a);

/* The input ended: so does our direction of the session. */
static void input_ended(app *a)
{
    a->in_eof = 1;
    input_interest(a);
    if (a->conn && a->open) {
        pl_session_shutdown(a->conn);
        if (a->eof_ends)
            a->closing = 1;
        close_when_delivered(a);
    }
}

/* Send the chunk read from the input; past the send limit it waits for PL_SESSION_ACKED.
 * 0 if the session failed. */
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
    a->sent += a->held_len;
    a->held_len = 0;
    return 1;
}

static void input_ready(pl_watch *w, int fd, unsigned events, void *userdata)
{
    app *a = userdata;
    /* A message at most as large as the peer takes (it said so in its Hello): it may be under 64 KiB. */
    size_t chunk = sizeof a->held, peer_max = pl_session_peer_max_message(a->conn);
    if (peer_max && peer_max < chunk)
        chunk = peer_max;
    ssize_t n = read(fd, a->held, chunk);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return;
    if (n <= 0) {
        if (n < 0)
            fprintf(stderr, "%s: reading %s: %s\n", prog, a->child ? "the program's output" : "standard input",
                    strerror(errno));
        input_ended(a);
        return;
    }
    a->held_len = (size_t)n;
    if (send_held(a))
        input_interest(a);
}

/* The program's input ends once the peer's stream has ended and all of it was written. */
static void output_end_if_done(app *a)
{
    if (a->child && a->peer_eof && !a->out_len && a->out_fd >= 0) {
        close(a->out_fd);
        a->out_fd = -1;
    }
}

/* Write data to out_fd as far as it takes it: the bytes written, or -1 on an error. */
static ssize_t write_some(int fd, const char *data, size_t len)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = write(fd, data + done, len - done);
        if (n > 0)
            done += (size_t)n;
        else if (n < 0 && errno == EAGAIN)
            break;
        else if (n < 0 && errno != EINTR)
            return -1;
    }
    return (ssize_t)done;
}

/* Write what remains of out_buf; when all is written, take the peer's messages again. */
static int output_flush(app *a)
{
    ssize_t n = write_some(a->out_fd, a->out_buf + a->out_off, a->out_len - a->out_off);
    if (n < 0)
        return -1;
    a->out_off += (size_t)n;
    if (a->out_off < a->out_len) {
        if (!a->out_watch)
            a->out_watch = a->poll->watch_new(a->poll, a->out_fd, PL_WATCH_OUT, output_ready, a);
        return 0;
    }
    if (a->out_watch) {
        a->poll->watch_free(a->out_watch);
        a->out_watch = NULL;
    }
    a->out_len = a->out_off = 0;
    if (a->conn)
        pl_session_pause(a->conn, 0);
    output_end_if_done(a);
    return 0;
}

static void end_session(app *a, int status);

/* Standard output broken ends plcat; a program that stopped reading ends its session only. */
static void output_failed(app *a)
{
    fprintf(stderr, "%s: writing %s: %s\n", prog, a->child ? "to the program" : "standard output",
            strerror(errno));
    if (a->child)
        end_session(a, EXIT_RUNTIME);
    else
        finish(a, EXIT_RUNTIME);
}

static void output_ready(pl_watch *w, int fd, unsigned events, void *userdata)
{
    app *a = userdata;
    if (output_flush(a) < 0)
        output_failed(a);
}

/* A message of the peer's, to out_fd as it comes (no buffering: a pipeline sees each
 * message at once). What a full pipe does not take is kept, and the session paused. */
static void output(app *a, const void *data, size_t len)
{
    a->received += len;
    if (a->send_only || !len || a->out_fd < 0)
        return;
    ssize_t n = write_some(a->out_fd, data, len);
    if (n < 0) {
        output_failed(a);
        return;
    }
    if ((size_t)n == len)
        return;
    a->out_len = len - (size_t)n;
    a->out_off = 0;
    free(a->out_buf);
    if (!(a->out_buf = malloc(a->out_len))) {
        fprintf(stderr, "%s: out of memory\n", prog);
        finish(a, EXIT_RUNTIME);
        return;
    }
    memcpy(a->out_buf, (const char *)data + n, a->out_len);
    pl_session_pause(a->conn, 1); /* from the next message on, until out_buf is written */
    if (output_flush(a) < 0)      /* arms the watch, or finds the reader gone meanwhile */
        output_failed(a);
}

/* pipe(), both ends close-on-exec (pipe2() is not everywhere). */
static int cloexec_pipe(int fds[2])
{
    if (pipe(fds) < 0)
        return -1;
    fcntl(fds[0], F_SETFD, FD_CLOEXEC);
    fcntl(fds[1], F_SETFD, FD_CLOEXEC);
    return 0;
}

static void set_nonblocking(int fd)
{
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

/* -e/-c: run the program for this session, its standard input and output as the session's
 * data (non-blocking pipes: a program that does not read holds the peer back, never plcat). */
static int spawn_program(app *a)
{
    int to[2], from[2];
    if (cloexec_pipe(to) < 0)
        return -1;
    if (cloexec_pipe(from) < 0) {
        close(to[0]);
        close(to[1]);
        return -1;
    }
    pid_t pid = fork();
    if (pid == 0) {
        setpgid(0, 0); /* a group of its own: ending it reaches a -c pipeline's every process */
        signal(SIGPIPE, SIG_DFL);
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        signal(SIGHUP, SIG_DFL);
        if (dup2(to[0], STDIN_FILENO) < 0 || dup2(from[1], STDOUT_FILENO) < 0)
            _exit(127);
        if (a->exec_shell) {
            execl("/bin/sh", "sh", "-c", a->exec_cmd, (char *)NULL);
        } else {
            /* -e PROGRAM [ARGS]: split at blanks, no shell and no quoting (as ncat's --exec) */
            char *copy = strdup(a->exec_cmd), *argv[64], *save = NULL;
            int n = 0;
            for (char *tok = copy ? strtok_r(copy, " \t", &save) : NULL; tok && n < 63;
                 tok = strtok_r(NULL, " \t", &save))
                argv[n++] = tok;
            argv[n] = NULL;
            if (n)
                execvp(argv[0], argv);
        }
        fprintf(stderr, "%s: cannot run \"%s\": %s\n", prog, a->exec_cmd, strerror(errno));
        _exit(127);
    }
    int saved = errno;
    close(to[0]);
    close(from[1]);
    if (pid < 0) {
        close(to[1]);
        close(from[0]);
        errno = saved;
        return -1;
    }
    setpgid(pid, pid); /* as the child does: whichever runs first */
    set_nonblocking(to[1]);
    set_nonblocking(from[0]);
    a->child = pid;
    a->out_fd = to[1];
    a->in_fd = from[0];
    return 0;
}

/* A program whose session ended: reaped without waiting in the loop. Still running a second
 * later, its process group gets SIGTERM; a second after that, SIGKILL (now: force). */
static void reap(app *a, int force)
{
    if (!a->ending)
        return;
    int st;
    pid_t r = waitpid(a->ending, &st, WNOHANG);
    if (r == 0 && (force || a->ending_signal == SIGKILL)) {
        kill(-a->ending, SIGKILL);
        r = waitpid(a->ending, &st, 0);
    } else if (r == 0) {
        a->ending_signal = a->ending_signal ? SIGKILL : SIGTERM;
        kill(-a->ending, a->ending_signal);
        a->poll->timeout_update(a->reap_timer, 1000);
        return;
    }
    if (r > 0 && a->verbose && (!WIFEXITED(st) || WEXITSTATUS(st) != 0))
        fprintf(stderr, "%s: the program %s %d\n", prog, WIFEXITED(st) ? "exited with status" : "ended by signal",
                WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
    a->ending = 0;
    a->ending_signal = 0;
    a->poll->timeout_update(a->reap_timer, -1);
}

static void reap_tick(pl_timeout *t, void *userdata)
{
    reap(userdata, 0);
}

/* The session's program: its pipes closed (it sees the end of its input), then reaped. */
static void end_program(app *a)
{
    if (!a->child)
        return;
    if (a->in_fd >= 0)
        close(a->in_fd);
    if (a->out_fd >= 0)
        close(a->out_fd);
    a->in_fd = a->out_fd = -1;
    reap(a, 1); /* the previous session's, if it still runs */
    a->ending = a->child;
    a->child = 0;
    if (!a->reap_timer)
        a->reap_timer = a->poll->timeout_new(a->poll, -1, reap_tick, a);
    if (a->reap_timer)
        a->poll->timeout_update(a->reap_timer, 1000);
    else
        reap(a, 1);
}

/* The session is authenticated: its data starts to flow. */
static void session_began(app *a)
{
    a->open = 1;
    a->sent = a->received = 0;
    clock_gettime(CLOCK_MONOTONIC, &a->started);
    if (a->exec_cmd) {
        a->in_eof = a->peer_eof = 0;
        if (spawn_program(a) < 0) {
            fprintf(stderr, "%s: cannot start \"%s\": %s\n", prog, a->exec_cmd, strerror(errno));
            end_session(a, EXIT_RUNTIME);
            return;
        }
    }
    if (a->verbose && isatty(STDERR_FILENO) && !a->progress_timer)
        a->progress_timer = a->poll->timeout_new(a->poll, PROGRESS_MS, progress_tick, a);
    if (a->in_eof || a->in_fd < 0)
        input_ended(a);
    input_interest(a);
}

/* The session is gone (freed): what -v reports, and the state of the next one (-k). */
static void session_ended(app *a)
{
    int was_open = a->open;
    a->open = 0;
    input_interest(a); /* drops the watch before its descriptor closes */
    if (a->out_watch)
        a->poll->watch_free(a->out_watch);
    a->out_watch = NULL;
    if (a->progress_timer) {
        a->poll->timeout_free(a->progress_timer);
        a->progress_timer = NULL;
    }
    if (a->progress_shown)
        fprintf(stderr, "\r\033[K");
    a->progress_shown = 0;
    if (was_open && a->verbose)
        fprintf(stderr, "%s: %llu bytes sent, %llu received in %.2f seconds\n", prog,
                (unsigned long long)a->sent, (unsigned long long)a->received, seconds_since(&a->started));
    end_program(a);
    free(a->out_buf);
    a->out_buf = NULL;
    a->out_len = a->out_off = 0;
    a->closing = a->peer_eof = 0;
    a->held_len = 0;
}

/* End the session from this side (an Abort to the peer): plcat goes on with -l -k. */
static void end_session(app *a, int status)
{
    pl_session_free(a->conn);
    a->conn = NULL;
    session_ended(a);
    if (!a->listen || !a->keep)
        finish(a, status);
}

static void close_when_delivered(app *a)
{
    /* A peer that has ended too closes the session by itself, cleanly. */
    if (!a->conn || !a->closing || !a->open || a->peer_eof || !pl_session_delivered(a->conn))
        return;
    if (a->signo)
        finish(a, EXIT_SIGNAL + a->signo);
    end_session(a, 0);
}

static void conn_event(pl_session *c, pl_session_event ev, int status, const void *data, size_t len,
                       void *userdata)
{
    app *a = userdata;
    switch (ev) {
    case PL_SESSION_INTERRUPTED:
        note(a, "connection interrupted (%s); resuming", pl_strerror(status));
        break;
    case PL_SESSION_RESUMED:
        if (status == PL_OK)
            note(a, "resumed");
        else
            note(a, "resumed in a new session: the peer lost the old one (%s)", pl_strerror(status));
        input_interest(a);
        break;
    case PL_SESSION_ACKED:
        if (send_held(a))
            input_interest(a);
        break;
    case PL_SESSION_DELIVERED:
        close_when_delivered(a);
        break;
    case PL_SESSION_OPEN:
        note_peer(a, c, "");
        session_began(a);
        break;
    case PL_SESSION_MESSAGE:
        output(a, data, len);
        break;
    case PL_SESSION_PEER_TXT:
        note_txt(a, c);
        break;
    case PL_SESSION_PEER_EOF:
        a->peer_eof = 1;
        output_end_if_done(a);
        break;
    case PL_SESSION_DRAINED:
        input_interest(a);
        break;
    case PL_SESSION_CLOSED: {
        /* The peer freed the session after its end-of-stream, with none of our data
         * unacknowledged (our own end-of-stream may be on its way): it ended (its -N, or a
         * signal), and nothing was lost. */
        int ended_by_peer = status == PL_ERR_ABORTED && a->peer_eof && !a->held_len && !pl_session_unacked(c);
        pl_session_free(c);
        a->conn = NULL;
        if (ended_by_peer)
            note(a, "the peer ended the session");
        session_ended(a);
        if (a->signo) {
            finish(a, EXIT_SIGNAL + a->signo);
        } else if (status == PL_ERR_NOT_PAIRED && !a->listen && !a->have_code) {
            int typed = ask_code(a);
            if (typed > 0 && start_connect(a) == 0)
                return; /* again, pairing with the code typed */
            if (typed < 0) {
                finish(a, EXIT_SIGNAL + caught);
                return;
            }
            fprintf(stderr, "%s: \"%s\" is not paired with this keystore: give its code with --code\n",
                    prog, esc(a->name));
            finish(a, EXIT_NOT_PAIRED);
        } else if (status != PL_OK && !ended_by_peer) {
            report_failure(a, status);
            if (!a->listen || !a->keep)
                finish(a, exit_for(status));
        } else if (!a->listen || !a->keep) {
            finish(a, 0);
        }
        break;
    }
    }
}

/* ---------------------------------------------------------------- signals */

static void stop_browsing(app *a)
{
    pl_browser_free(a->browser);
    a->browser = NULL;
    for (size_t i = 0; i < a->n_types; i++)
        pl_browser_free(a->types[i].b);
    a->n_types = 0;
}

/* SIGINT, SIGTERM, SIGHUP: withdraw the publication at once (browsers see it go), stop
 * taking input, give the peer a moment to acknowledge what it was sent, then end the
 * session. A second signal ends plcat at once. */
static void grace_over(pl_timeout *t, void *userdata)
{
    app *a = userdata;
    finish(a, EXIT_SIGNAL + a->signo);
}

static void signal_ready(pl_watch *w, int fd, unsigned events, void *userdata)
{
    app *a = userdata;
    unsigned char b[16];
    ssize_t n = read(fd, b, sizeof b);
    if (n <= 0)
        return;
    if (a->signo) {
        finish(a, EXIT_SIGNAL + b[n - 1]);
        return;
    }
    a->signo = b[n - 1];
    pl_listener_free(a->listener); /* withdraws the publication; accepted sessions stay */
    a->listener = NULL;
    stop_browsing(a);
    if (!a->conn || !a->open) {
        finish(a, EXIT_SIGNAL + a->signo);
        return;
    }
    if (a->child)
        kill(-a->child, SIGTERM);
    a->held_len = 0;
    a->closing = 1;
    input_ended(a);
    if (!a->done)
        a->grace_timer = a->poll->timeout_new(a->poll, SIGNAL_GRACE_MS, grace_over, a);
}

static int catch_signals(app *a)
{
    if (cloexec_pipe(sig_fds) < 0)
        return -1;
    set_nonblocking(sig_fds[0]);
    set_nonblocking(sig_fds[1]);
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: the code prompt's read ends at a signal */
    if (sigaction(SIGINT, &sa, NULL) < 0 || sigaction(SIGTERM, &sa, NULL) < 0 || sigaction(SIGHUP, &sa, NULL) < 0)
        return -1;
    a->sig_watch = a->poll->watch_new(a->poll, sig_fds[0], PL_WATCH_IN, signal_ready, a);
    return a->sig_watch ? 0 : -1;
}
/* ---------------------------------------------------------------- listen mode */

static void note_peer(const app *a, pl_session *c, const char *suffix)
{
    const char *stored = pl_session_peer_stored_name(c), *claim = pl_session_peer_name(c);
    char calls[128] = "";
    if (!stored)
        stored = claim ? claim : "";
    else if (claim && strcmp(claim, stored) != 0)
        snprintf(calls, sizeof calls, " (calls itself \"%s\")", esc(claim));
    note(a, "%s \"%s\"%s%s", pl_session_paired(c) ? "paired with" : "authenticated", esc(stored), calls, suffix);
}

/* Each attribute of txt as sep KEY[=VALUE], escaped. */
static void put_txt(FILE *f, const pl_txt *txt, char sep)
{
    for (size_t i = 0; i < pl_txt_count(txt); i++) {
        const char *key;
        const void *val;
        size_t len;
        pl_txt_at(txt, i, &key, &val, &len);
        fprintf(f, "%c%s", sep, esc(key));
        if (val) {
            putc('=', f);
            put_escaped(f, val, len);
        }
    }
}

/* -v: the metadata the peer sent in-band, "the peer's TXT: KEY=VALUE ...". */
static void note_txt(const app *a, pl_session *c)
{
    pl_txt *t = NULL;
    if (!a->verbose || a->quiet || pl_session_peer_txt(c, &t) != PL_OK)
        return;
    fprintf(stderr, "%s: the peer's TXT:", prog);
    put_txt(stderr, t, ' ');
    putc('\n', stderr);
    pl_txt_free(t);
}

/* -T: our TXT record travels in the session too (sealed), for links whose discovery carries none. */
static int send_txt(const app *a, pl_session *c)
{
    int err = pl_txt_count(a->txt) ? pl_session_set_txt(c, a->txt) : PL_OK;
    if (err != PL_OK)
        fprintf(stderr, "%s: cannot send the TXT record in the session: %s\n", prog, pl_strerror(err));
    return err;
}

static void on_accept(pl_listener *l, pl_session *c, void *userdata)
{
    app *a = userdata;
    if (a->conn || a->done) {
        pl_session_free(c); /* one peer at a time */
        return;
    }
    char peer[PL_ADDRSTRLEN + 24] = " from ?";
    if (pl_session_peer_string(c, peer + 6, sizeof peer - 6) != PL_OK)
        snprintf(peer, sizeof peer, " from ?");
    note_peer(a, c, peer);
    a->conn = c;
    pl_session_set_callback(c, conn_event, a);
    pl_session_set_send_limit(c, SEND_LIMIT);
    if (send_txt(a, c) != PL_OK) {
        end_session(a, EXIT_RUNTIME);
        return;
    }
    session_began(a);
}

static void on_pairing(pl_listener *l, pl_pairing_event ev, int status, const char *code, void *userdata)
{
    app *a = userdata;
    if (ev == PL_PAIRING_NEW_CODE) {
        fprintf(stderr, "%s: too many failed attempts; new pairing code: %s\n", prog, code);
        return;
    }
    if (ev == PL_PAIRING_CLOSED) {
        if (status == PL_ERR_LOCKED)
            fprintf(stderr, "%s: pairing closed after too many failed attempts; restart plcat to pair again\n",
                    prog);
        else
            note(a, "pairing closed %s; paired peers can still connect",
                 status == PL_OK ? "after the first pairing (--keep-pairing keeps it open)" : "(its window is over)");
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
        note(a, "published \"%s\" (%s) on port %u", esc(name), a->type, pl_listener_port(a->listener));
        break;
    case PL_PUBLISH_RENAMED: /* the listener binds its handshakes to the new name by itself */
        note(a, "renamed to \"%s\"", esc(name));
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
    if (a->pair_window >= 0 || a->keep_pairing)
        pl_listener_set_pairing_window(a->listener, a->pair_window >= 0 ? (unsigned)a->pair_window : 900,
                                       a->keep_pairing ? PL_PAIRING_KEEP_OPEN : 0);
    err = pl_listener_set_pairing(a->listener, a->have_code ? a->code : NULL, 0, a->max_attempts);
    if (err == PL_ERR_INVALID) {
        fprintf(stderr, "%s: bad code: %s\n", prog, pl_strerror(err));
        return EXIT_USAGE;
    } else if (err != PL_OK) {
        fprintf(stderr, "%s: cannot open pairing: %s\n", prog, pl_strerror(err));
        return EXIT_RUNTIME;
    }
    pl_listener_set_pairing_callback(a->listener, on_pairing, a);
    if (a->resume_s >= 0)
        pl_listener_set_resume(a->listener, a->resume_s * 1000, 5000);
    if (!a->have_code)
        fprintf(stderr, "%s: pairing code: %s\n", prog, pl_listener_code(a->listener));
    char window[32] = "until plcat exits";
    if (a->pair_window != 0)
        snprintf(window, sizeof window, "for %d s", a->pair_window > 0 ? a->pair_window : 900);
    note(a, "pairing is open %s%s", window, a->keep_pairing ? "" : ", or until a peer pairs");
    err = pl_listener_publish(a->listener, a->disc, a->name, a->type, a->txt, on_publish, a);
    if (err != PL_OK) {
        fprintf(stderr, "%s: cannot publish \"%s\" (%s): %s\n", prog, a->name, a->type,
                pl_strerror(err));
        return err == PL_ERR_INVALID ? EXIT_USAGE : EXIT_RUNTIME;
    }
    return -1;
}

/* ---------------------------------------------------------------- browse and connect */

/* One event a line: "SIGN NAME[<TAB>TYPE]<TAB>PORT<TAB>ADDRESSES[<TAB>KEY=VALUE]...", the type with -a. */
static void print_plain(const app *a, const char *sign, const pl_service *s)
{
    printf("%s %s\t", sign, esc(s->name));
    if (a->all)
        printf("%s\t", esc(s->type));
    printf("%u\t", s->port);
    for (size_t i = 0; i < s->n_addresses; i++) {
        char buf[PL_ADDRSTRLEN];
        if (pl_address_to_string(&s->addresses[i], buf, sizeof buf) == PL_OK)
            printf("%s%s", i ? "," : "", buf);
    }
    put_txt(stdout, s->txt, '\t');
    putchar('\n');
}

/* Connect to the instance named (again, after a code was typed): found by browsing, its name
 * compared as DNS-SD compares names, within -w; or at --address. 0 or an exit status. */
static int start_connect(app *a)
{
    int err = a->address ? pl_connect(a->node, &a->found, 0, conn_event, a, &a->conn)
                         : pl_connect_by_name(a->node, a->disc, a->type, a->name, a->wait_s * 1000, conn_event,
                                              a, &a->conn);
    if (err == PL_OK && a->have_code)
        err = pl_session_set_code(a->conn, a->code);
    if (err == PL_OK)
        err = pl_session_set_send_limit(a->conn, SEND_LIMIT);
    if (err == PL_OK && a->resume_s >= 0)
        err = pl_session_set_resume(a->conn, a->resume_s * 1000);
    if (err != PL_OK) {
        fprintf(stderr, "%s: cannot connect to \"%s\": %s\n", prog, esc(a->name), pl_strerror(err));
        pl_session_free(a->conn);
        a->conn = NULL;
        return err == PL_ERR_INVALID ? EXIT_USAGE : EXIT_RUNTIME;
    }
    if (send_txt(a, a->conn) != PL_OK) {
        pl_session_free(a->conn);
        a->conn = NULL;
        return EXIT_RUNTIME;
    }
    return 0;
}

/* -t: done once every browser has listed what was there. */
static void end_if_listed(app *a)
{
    if (!a->terminate || !a->listed)
        return;
    for (size_t i = 0; i < a->n_types; i++)
        if (!a->types[i].listed)
            return;
    finish(a, 0);
}

static void on_browse(pl_browser *b, pl_browse_event ev, int status, const pl_service *svc,
                      void *userdata);

/* -a: a type seen on the network; browse its instances (once; at most MAX_TYPES types, since
 * they come from the network). */
static void browse_type(app *a, const char *type)
{
    for (size_t i = 0; i < a->n_types; i++)
        if (strcmp(a->types[i].type, type) == 0)
            return;
    if (a->n_types == MAX_TYPES) {
        static int said;
        if (!said++)
            fprintf(stderr, "%s: more than %d service types: browsing the first %d\n", prog, MAX_TYPES, MAX_TYPES);
        return;
    }
    type_browser *t = &a->types[a->n_types];
    if (snprintf(t->type, sizeof t->type, "%s", type) >= (int)sizeof t->type)
        return;
    int err = pl_browse(a->disc, t->type, NULL, on_browse, a, &t->b);
    t->listed = err != PL_OK; /* kept even so: tried once */
    if (err != PL_OK)
        fprintf(stderr, "%s: cannot browse %s: %s\n", prog, esc(type), pl_strerror(err));
    a->n_types++;
}

static void on_browse(pl_browser *b, pl_browse_event ev, int status, const pl_service *svc,
                      void *userdata)
{
    app *a = userdata;
    if (ev == PL_BROWSE_FAILED) {
        if (b != a->browser) { /* -a: one type; the others go on */
            fprintf(stderr, "%s: browsing a service type failed: %s\n", prog, pl_strerror(status));
            for (size_t i = 0; i < a->n_types; i++)
                if (a->types[i].b == b)
                    a->types[i].listed = 1; /* nothing more will come of it */
            end_if_listed(a);
            return;
        }
        fprintf(stderr, "%s: browsing failed: %s\n", prog, pl_strerror(status));
        finish(a, EXIT_RUNTIME);
        return;
    }
    if (ev == PL_BROWSE_ALL_FOR_NOW) {
        if (b == a->browser)
            a->listed = 1;
        for (size_t i = 0; i < a->n_types; i++)
            if (a->types[i].b == b)
                a->types[i].listed = 1;
        end_if_listed(a);
        return;
    }
    if (a->all && b == a->browser) { /* a service type */
        if (ev == PL_BROWSE_ADD)
            browse_type(a, svc->name);
        return;
    }
    static const char *const words[] = {"add", "update", "remove"};
    static const char *const signs[] = {"+", "~", "-"};
    if (a->json) {
        char *line = NULL;
        if (plcat_json_event(words[ev], svc, &line) == 0) {
            puts(line);
            free(line);
        }
    } else {
        print_plain(a, signs[ev], svc);
    }
    if (fflush(stdout) != 0) {
        fprintf(stderr, "%s: writing standard output: %s\n", prog, strerror(errno));
        finish(a, EXIT_RUNTIME);
    }
}

/* -b -w SECONDS */
static void wait_expired(pl_timeout *t, void *userdata)
{
    finish(userdata, 0);
}

/* --address HOST:PORT into ad and *port: HOST is an IPv4 address, or an IPv6 one in brackets; a
 * link-local IPv6 address (fe80::/10) needs its zone, the interface it is reached on, as %NAME or
 * %INDEX (RFC 4007 section 11; a name is looked up first), which the connection and every
 * reconnection keep as the socket address's scope id. NULL, or what is wrong. */
static const char *parse_address(const char *arg, pl_address *ad, uint16_t *port)
{
    static char why[128];
    char host[80];
    const char *colon = strrchr(arg, ':');
    char *end = NULL;
    long p = colon ? strtol(colon + 1, &end, 10) : 0;
    size_t hlen = colon ? (size_t)(colon - arg) : 0;
    if (!colon || !colon[1] || *end || p < 1 || p > 65535 || hlen == 0 || hlen >= sizeof host)
        return "--address takes HOST:PORT, e.g. 192.0.2.1:4242 or [fe80::1%eth0]:4242";
    memcpy(host, arg, hlen);
    host[hlen] = 0;
    memset(ad, 0, sizeof *ad);
    *port = (uint16_t)p;
    if (host[0] != '[') {
        ad->family = AF_INET;
        if (inet_pton(AF_INET, host, ad->addr) == 1)
            return NULL;
        if (strchr(host, ':'))
            return "--address: an IPv6 address goes in brackets, e.g. [2001:db8::1]:4242";
        snprintf(why, sizeof why, "--address: \"%.48s\" is not an IP address", host);
        return why;
    }
    if (hlen < 3 || host[hlen - 1] != ']')
        return "--address: no ] after the IPv6 address";
    host[hlen - 1] = 0;
    char *zone = strchr(host, '%');
    if (zone)
        *zone++ = 0;
    ad->family = AF_INET6;
    if (inet_pton(AF_INET6, host + 1, ad->addr) != 1) {
        snprintf(why, sizeof why, "--address: \"%.48s\" is not an IPv6 address", host + 1);
        return why;
    }
    int link_local = ad->addr[0] == 0xfe && (ad->addr[1] & 0xc0) == 0x80; /* fe80::/10 */
    if (!zone)
        return link_local ? "--address: a link-local address needs its interface, e.g. [fe80::1%eth0]:4242"
                          : NULL;
    if (!link_local)
        return "--address: %IFACE goes with a link-local (fe80::/10) address only";
    if (!*zone)
        return "--address: no interface after the %";
    ad->ifindex = if_nametoindex(zone);
    if (ad->ifindex == 0 && strspn(zone, "0123456789") == strlen(zone) && strlen(zone) <= 9) {
        char name[IF_NAMESIZE];
        ad->ifindex = (uint32_t)strtoul(zone, NULL, 10);
        if (ad->ifindex == 0 || !if_indextoname(ad->ifindex, name)) {
            snprintf(why, sizeof why, "--address: no interface has index %s", zone);
            return why;
        }
    }
    if (ad->ifindex == 0) {
        snprintf(why, sizeof why, "--address: no interface named \"%.*s\"", IF_NAMESIZE, zone);
        return why;
    }
    return NULL;
}

/* Connect mode. With --address (parse_address(), checked with the options): dial it, no
 * browsing. */
static int run_connect(app *a)
{
    if (!a->address) {
        if (a->wait_s <= 0)
            a->wait_s = 10;
        int st = start_connect(a);
        return st ? st : -1;
    }
    a->found.name = a->name;
    a->found.n_addresses = 1;
    a->found.addresses = &a->found_address;
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
    if (a->wait_s > 0) {
        a->wait_timer = a->poll->timeout_new(a->poll, a->wait_s * 1000, wait_expired, a);
        if (!a->wait_timer) {
            fprintf(stderr, "%s: out of memory\n", prog);
            return EXIT_RUNTIME;
        }
    }
    return -1;
}

/* ---------------------------------------------------------------- main */

/* A whole decimal number from lo to hi into *out; 0 if arg is anything else. */
static int parse_number(const char *arg, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(arg, &end, 10);
    if (!arg[0] || *end || errno || v < lo || v > hi)
        return 0;
    *out = v;
    return 1;
}

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
           OPT_ADDRESS, OPT_SEND_ONLY, OPT_RECV_ONLY, OPT_CODE_FILE, OPT_PAIR_WINDOW, OPT_KEEP_PAIRING, OPT_FORGET_ID, OPT_AS };
    static const struct option longopts[] = {
        {"json", no_argument, NULL, OPT_JSON},
        {"backend", required_argument, NULL, OPT_BACKEND},
        {"code", required_argument, NULL, OPT_CODE},
        {"code-file", required_argument, NULL, OPT_CODE_FILE},
        {"keys", required_argument, NULL, OPT_KEYS},
        {"forget", required_argument, NULL, OPT_FORGET},
        {"forget-id", required_argument, NULL, OPT_FORGET_ID},
        {"as", required_argument, NULL, OPT_AS},
        {"list-paired", no_argument, NULL, OPT_LIST},
        {"max-attempts", required_argument, NULL, OPT_MAX_ATTEMPTS},
        {"pair-window", required_argument, NULL, OPT_PAIR_WINDOW},
        {"keep-pairing", no_argument, NULL, OPT_KEEP_PAIRING},
        {"resume", required_argument, NULL, OPT_RESUME},
        {"address", required_argument, NULL, OPT_ADDRESS},
        {"type", required_argument, NULL, 's'},
        {"terminate", no_argument, NULL, 't'},
        {"all", no_argument, NULL, 'a'},
        {"send-only", no_argument, NULL, OPT_SEND_ONLY},
        {"recv-only", no_argument, NULL, OPT_RECV_ONLY},
        {"exec", required_argument, NULL, 'e'},
        {"sh-exec", required_argument, NULL, 'c'},
        {"verbose", no_argument, NULL, 'v'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    app a = {0};
    const char *forget_name = NULL, *forget_hex = NULL;
    int list = 0, name_given = 0;
    static const char default_type[] = "_peerlink._tcp";
    a.type = default_type;
    a.resume_s = -1;
    a.pair_window = -1;
    a.in_fd = STDIN_FILENO;
    a.out_fd = STDOUT_FILENO;
    a.in_size = -1;
    if (pl_txt_new(&a.txt) != PL_OK)
        return EXIT_RUNTIME;
    int c;
    while ((c = getopt_long(argc, argv, "lbn:s:tap:T:kw:Ne:c:vqhV", longopts, NULL)) != -1) {
        long v;
        switch (c) {
        case 'l': a.listen = 1; break;
        case 'b': a.browse = 1; break;
        case 'n': a.name = optarg; name_given = 1; break;
        case 's': a.type = optarg; break;
        case 't': a.terminate = 1; break;
        case 'a': a.all = 1; break;
        case 'N': a.eof_ends = 1; break;
        case OPT_SEND_ONLY: a.send_only = a.eof_ends = 1; break;
        case OPT_RECV_ONLY: a.recv_only = 1; break;
        case 'e':
        case 'c':
            if (a.exec_cmd)
                die_usage("-e and -c exclude each other, and go once");
            a.exec_cmd = optarg;
            a.exec_shell = c == 'c';
            break;
        case 'v': a.verbose = 1; break;
        case 'q': a.quiet = 1; break;
        case 'k': a.keep = 1; break;
        case OPT_JSON: a.json = 1; break;
        case OPT_BACKEND: a.backend = optarg; break;
        case OPT_KEYS: a.keys = optarg; break;
        case OPT_FORGET: forget_name = optarg; break;
        case OPT_FORGET_ID: forget_hex = optarg; break;
        case OPT_AS: a.as = optarg; break;
        case OPT_LIST: list = 1; break;
        case OPT_CODE:
        case OPT_CODE_FILE:
            if (a.have_code)
                die_usage("give the pairing code once (--code or --code-file)");
            if (c == OPT_CODE)
                set_code(&a, optarg, "--code");
            else
                read_code_file(&a, optarg);
            break;
        case OPT_PAIR_WINDOW:
            if (!parse_number(optarg, 0, 86400, &v))
                die_usage("--pair-window takes seconds from 0 (until plcat exits) to 86400");
            a.pair_window = (int)v;
            break;
        case OPT_KEEP_PAIRING: a.keep_pairing = 1; break;
        case OPT_MAX_ATTEMPTS:
            if (!parse_number(optarg, 1, 1000, &v))
                die_usage("--max-attempts takes a number from 1 to 1000");
            a.max_attempts = (unsigned)v;
            break;
        case OPT_RESUME:
            if (!parse_number(optarg, 0, 86400, &v))
                die_usage("--resume takes a number of seconds from 0 to 86400");
            a.resume_s = (int)v;
            break;
        case OPT_ADDRESS: a.address = optarg; break;
        case 'p':
            if (!parse_number(optarg, 0, 65535, &v))
                die_usage("-p takes a port number from 0 to 65535");
            a.port = (int)v;
            break;
        case 'w':
            if (!parse_number(optarg, 1, 86400, &v))
                die_usage("-w takes a number of seconds from 1 to 86400");
            a.wait_s = (int)v;
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
            printf("plcat (peerlink) %s\nrecords sealed by %s (ChaCha20-Poly1305)\n", pl_version(),
                   strcmp(pl_aead_implementation(), "libcrypto") == 0 ? "libcrypto, short ones by libsodium"
                                                                       : pl_aead_implementation());
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
    int management = list || forget_name || forget_hex;
    if (a.listen + a.browse + management > 1 || list + !!forget_name + !!forget_hex > 1)
        die_usage("-l, -b, --list-paired, --forget and --forget-id exclude each other");
    int type_given = a.type != default_type;
    if (name_given && !a.listen)
        die_usage("-n goes with -l (connect mode takes the NAME as an operand)");
    if ((a.have_code || a.resume_s >= 0) && (a.browse || management))
        die_usage("--code and --resume go with -l or with connecting to NAME");
    if (a.keys && a.browse)
        die_usage("--keys goes with -l, connecting to NAME, --list-paired or --forget");
    if (a.as && (a.listen || a.browse || management))
        die_usage("--as goes with connecting to NAME (a listener is known by its -n NAME)");
    const char *env_code = getenv("PLCAT_CODE");
    if (env_code && env_code[0] && !a.have_code && !a.browse && !management)
        set_code(&a, env_code, "PLCAT_CODE");
    unsetenv("PLCAT_CODE"); /* not for the programs of -e/-c */
    if (a.wait_s && a.address)
        die_usage("-w bounds the search for NAME: not with --address");
    if (a.browse && optind == argc - 1 && !type_given && !a.all) {
        a.type = argv[optind++]; /* plcat -b TYPE, as avahi-browse TYPE */
        type_given = 1;
    }
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
    if ((a.keep || a.port || a.max_attempts || a.pair_window >= 0 || a.keep_pairing) && !a.listen)
        die_usage("-k, -p, --max-attempts, --pair-window and --keep-pairing go with -l");
    if (pl_txt_count(a.txt) && (a.browse || management))
        die_usage("-T goes with -l or with connecting to NAME");
    if (a.json && !a.browse)
        die_usage("--json goes with -b");
    if (a.address && (a.listen || a.browse || management))
        die_usage("--address goes with connecting to NAME");
    if (a.address) {
        const char *why = parse_address(a.address, &a.found_address, &a.found.port);
        if (why)
            die_usage(why);
    }
    if ((a.terminate || a.all) && !a.browse)
        die_usage("-t and -a go with -b");
    if (a.all && type_given)
        die_usage("-a browses every type: give no TYPE with it");
    int data_opts = a.eof_ends || a.recv_only || a.exec_cmd;
    if ((data_opts || a.verbose || a.quiet) && (a.browse || management))
        die_usage("-N, --send-only, --recv-only, -e, -c, -v and -q go with -l or with connecting to NAME");
    if (a.recv_only && a.eof_ends)
        die_usage("-N ends the session at the end of input: --recv-only reads none");
    if (a.send_only + a.recv_only + !!a.exec_cmd > 1)
        die_usage("--send-only, --recv-only and -e/-c exclude each other");
    if (a.verbose && a.quiet)
        die_usage("-v and -q exclude each other");
    if (a.all)
        a.type = PL_SERVICE_TYPES;
    if (a.recv_only)
        a.in_fd = -1;
    if (a.exec_cmd)
        a.in_fd = a.out_fd = -1; /* the program's pipes, per session */
    struct stat st;
    if (a.in_fd >= 0 && fstat(a.in_fd, &st) == 0 && S_ISREG(st.st_mode)) {
        off_t at = lseek(a.in_fd, 0, SEEK_CUR);
        a.in_size = (int64_t)(st.st_size - (at > 0 ? at : 0));
    }

    signal(SIGPIPE, SIG_IGN);
    const char *debug = getenv("PEERLINK_DEBUG");
    pl_set_log(debug && debug[0] && strcmp(debug, "0") != 0 ? PL_LOG_DEBUG
               : a.verbose                                 ? PL_LOG_INFO
                                                           : PL_LOG_ERROR,
               on_log, NULL);
    int status = 0;
    if (!a.browse && (status = open_keystore(&a)) != 0)
        return status;
    if (management) {
        status = list ? list_paired(&a) : forget_hex ? forget_id(&a, forget_hex) : forget(&a, forget_name);
        pl_keystore_free(a.ks);
        pl_txt_free(a.txt);
        return status;
    }
    if (pl_loop_new(&a.loop) != PL_OK) {
        fprintf(stderr, "%s: out of memory\n", prog);
        return EXIT_RUNTIME;
    }
    a.poll = pl_loop_get_poll(a.loop);
    if (catch_signals(&a) < 0) {
        fprintf(stderr, "%s: cannot catch signals: %s\n", prog, strerror(errno));
        return EXIT_RUNTIME;
    }
    if (a.ks && pl_node_new(a.poll, a.ks, &a.node) != PL_OK) {
        fprintf(stderr, "%s: out of memory\n", prog);
        return EXIT_RUNTIME;
    }
    if (a.as && (!*a.as || pl_node_set_name(a.node, a.as) != PL_OK))
        die_usage("--as takes a name of 1 to 63 bytes of UTF-8");
    int err = pl_discovery_new(a.poll, a.backend, &a.disc);
    if (err != PL_OK) {
        /* The library's error log (on_log) has said which backend failed and why. */
        status = err == PL_ERR_UNSUPPORTED ? EXIT_USAGE : EXIT_RUNTIME;
    } else {
        status = a.listen ? run_listen(&a) : a.browse ? run_browse(&a) : run_connect(&a);
        if (status < 0) {
            if (pl_loop_run(a.loop) != PL_OK) {
                fprintf(stderr, "%s: event loop: %s\n", prog, strerror(errno));
                a.exit_status = EXIT_RUNTIME;
            }
            status = a.exit_status;
        }
    }
    if (a.conn)
        pl_session_free(a.conn);
    a.conn = NULL;
    session_ended(&a);
    if (a.sig_watch)
        a.poll->watch_free(a.sig_watch);
    if (a.grace_timer)
        a.poll->timeout_free(a.grace_timer);
    reap(&a, 1);
    if (a.reap_timer)
        a.poll->timeout_free(a.reap_timer);
    for (int i = 0; i < 2; i++)
        if (sig_fds[i] >= 0)
            close(sig_fds[i]);
    if (a.wait_timer)
        a.poll->timeout_free(a.wait_timer);
    pl_listener_free(a.listener);
    stop_browsing(&a);
    pl_discovery_free(a.disc);
    pl_node_free(a.node);
    pl_keystore_free(a.ks);
    pl_txt_free(a.txt);
    pl_loop_free(a.loop);
    wipe(a.code, sizeof a.code);
    if (fflush(stdout) != 0 && status == 0) {
        fprintf(stderr, "%s: writing standard output: %s\n", prog, strerror(errno));
        status = EXIT_RUNTIME;
    }
    return status;
}
