/* SPDX-License-Identifier: ISC */
/*
 * pl-relay — a fault-injecting TCP relay for peerlink's tests.
 *
 *   pl-relay --listen PORT --target PORT --seed N [--mean-bytes B]
 *            [--faults LIST] [--stats FILE] [--max-conns K] [--no-stdin]
 *
 * LOOPBACK ONLY.  It binds to 127.0.0.1 and connects to 127.0.0.1, and
 * nothing else: it deliberately corrupts, delays and drops traffic and
 * must never sit between real hosts.
 *
 * Every client accepted on 127.0.0.1:--listen gets its own non-blocking
 * connection to 127.0.0.1:--target; bytes are copied both ways through a
 * bounded buffer (256 KiB per direction; a side is not read while its
 * buffer is full, so TCP backpressure reaches the sender).  Per relayed
 * connection, the number of bytes (both directions together, counted as
 * they are read in) before the next fault is drawn from an exponential
 * distribution with mean --mean-bytes (at least 1).  The fault hits the
 * chunk that contains that byte and is one of --faults, chosen uniformly
 * (comma list, default cut,truncate,flip,stall,delay; a kind listed n times
 * is drawn n times as often; "none" disables):
 *
 *   cut       close both sockets with SO_LINGER {1,0} (RST), drop buffers;
 *   truncate  forward the bytes before the fault point plus a random prefix
 *             (possibly empty) of the rest of the chunk, then shutdown(SHUT_WR)
 *             towards the receiver and stop reading the sender; the other
 *             direction keeps running for at most 200 ms, then both sockets
 *             are closed normally (FIN);
 *   flip      XOR one random bit of one random byte at or after the fault
 *             point of the chunk, then carry on;
 *   stall     neither read nor write either side for 50..1500 ms;
 *   delay     for the next 100..1000 ms, every chunk read is held back for
 *             1..30 ms before it is written (order is kept per direction).
 *
 * After a cut or truncate the pair is gone; a new connection gets a fresh
 * draw.  All decisions come from one splitmix64 stream seeded with --seed,
 * with a fixed number of draws per fault, so the same seed and the same
 * traffic give the same faults.  (The per-chunk hold times of `delay`
 * depend on how the kernel splits reads, so they come from a second stream
 * that does not disturb the first.)
 *
 * Output: stdout gets "port P" and "seed N" once listening, nothing else.
 * stderr gets one line "fault KIND conn=N at=BYTES" per fault and other
 * notes.  --stats FILE is (re)written atomically at start, after every
 * fault and at exit, as "key value" lines.
 *
 * Stop: SIGTERM, SIGINT, or end of file on stdin (unless --no-stdin).  The
 * counters go to stderr as one line and to --stats.  Exit status: 0 after
 * a clean stop, 1 on a setup error, 2 on a usage error.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BUF_CAP (256u * 1024u)     /* bytes buffered per direction */
#define HOLD_MAX 512               /* delayed chunks queued per direction */
#define TRUNCATE_GRACE_MS 200
#define DEFAULT_MEAN_BYTES 262144
#define DEFAULT_MAX_CONNS 64
#define MAX_CONNS_LIMIT 4096
#define ACCEPT_BURST 64

enum fault_kind { F_CUT, F_TRUNCATE, F_FLIP, F_STALL, F_DELAY, F_COUNT };

#define MAX_KINDS 32
static const char *const fault_names[F_COUNT] = {"cut", "truncate", "flip", "stall", "delay"};

/* splitmix64: tiny, fast, any seed (including 0) is fine */
struct rng {
    uint64_t s;
};

static uint64_t rng_next(struct rng *g)
{
    uint64_t z = (g->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* uniform in [0, n), n > 0 (the modulo bias is irrelevant here) */
static uint64_t rng_below(struct rng *g, uint64_t n)
{
    return rng_next(g) % n;
}

/* uniform in [lo, hi] */
static uint64_t rng_range(struct rng *g, uint64_t lo, uint64_t hi)
{
    return lo + rng_below(g, hi - lo + 1);
}

/* natural logarithm of x > 0, self-contained so that no -lm is needed */
static double ln(double x)
{
    int e = 0;
    while (x >= 2.0) {
        x *= 0.5;
        e++;
    }
    while (x < 1.0) {
        x *= 2.0;
        e--;
    }
    /* x in [1, 2): ln x = 2 atanh z, z = (x-1)/(x+1) in [0, 1/3) */
    double z = (x - 1.0) / (x + 1.0), z2 = z * z, term = z, sum = 0.0;
    for (int i = 1; i < 64; i += 2) {
        sum += term / i;
        term *= z2;
    }
    return 2.0 * sum + e * 0.69314718055994530942;
}

/* A run of bytes held back by a `delay` fault: from stream offset `start`
 * on, nothing may be written before `release` (ms). */
struct hold {
    uint64_t start;
    int64_t release;
};

/* One direction of a pair: bytes read from the sender, queued for the
 * receiver.  Offsets count the stream; buf is a ring indexed modulo BUF_CAP. */
struct direction {
    unsigned char *buf;
    uint64_t rd_pos;                /* offset of the next byte read in */
    uint64_t wr_pos;                /* offset of the next byte written out */
    struct hold holds[HOLD_MAX];    /* oldest first, ring */
    unsigned hold_head, hold_count;
    bool eof;                       /* sender is no longer read (FIN or truncate) */
    bool shut;                      /* receiver got shutdown(SHUT_WR) */
};

enum pair_state { P_CONNECTING, P_OPEN, P_TRUNCATED, P_CLOSED };

/* One relayed connection: client fd[0] <-> target fd[1].
 * dir[0] is client to server (c2s), dir[1] is server to client (s2c);
 * dir[d] reads fd[d] and writes fd[1 - d]. */
struct pair {
    uint64_t id;
    int fd[2];
    struct direction dir[2];
    enum pair_state state;
    uint64_t seen;         /* bytes read in, both directions */
    uint64_t next_fault;   /* the fault hits byte number next_fault (0-based) */
    int64_t stall_until;   /* ms; stalled while now < stall_until */
    int64_t delay_until;   /* ms; chunks are held while now < delay_until */
    int64_t close_at;      /* ms; end of the truncate grace period */
    int pfd[2];            /* index in the poll array, -1 if not polled */
};

struct counters {
    uint64_t connections;
    uint64_t bytes[2]; /* written out, c2s and s2c */
    uint64_t faults[F_COUNT];
};

struct relay {
    /* configuration */
    uint64_t seed, mean_bytes;
    int listen_port, target_port, max_conns;
    enum fault_kind kinds[MAX_KINDS]; /* drawn uniformly; repeats weigh a kind more */
    int n_kinds;
    const char *stats_path;
    bool use_stdin;
    /* state */
    struct rng rng;    /* fault distances, kinds and parameters */
    struct rng jitter; /* per-chunk hold times during a `delay` */
    int listen_fd;
    struct pair **pairs;
    int npairs;
    struct pollfd *pfds;
    int64_t accept_paused_until;
    uint64_t conn_seq;
    struct counters count;
};

static int sig_pipe[2] = {-1, -1};

static void on_signal(int sig)
{
    (void)sig;
    int saved = errno;
    ssize_t w = write(sig_pipe[1], "s", 1);
    (void)w;
    errno = saved;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void note(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("pl-relay: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* ---- counters ---------------------------------------------------------- */

static int format_stats(const struct relay *r, char *out, size_t size, char sep, char eq)
{
    const struct counters *c = &r->count;
    return snprintf(out, size,
                    "seed%c%" PRIu64 "%cconnections%c%" PRIu64 "%cbytes_c2s%c%" PRIu64
                    "%cbytes_s2c%c%" PRIu64 "%ccut%c%" PRIu64 "%ctruncate%c%" PRIu64
                    "%cflip%c%" PRIu64 "%cstall%c%" PRIu64 "%cdelay%c%" PRIu64 "\n",
                    eq, r->seed, sep, eq, c->connections, sep, eq, c->bytes[0], sep, eq,
                    c->bytes[1], sep, eq, c->faults[F_CUT], sep, eq, c->faults[F_TRUNCATE], sep,
                    eq, c->faults[F_FLIP], sep, eq, c->faults[F_STALL], sep, eq,
                    c->faults[F_DELAY]);
}

/* write --stats atomically: FILE.tmp, then rename over FILE */
static void write_stats_file(const struct relay *r)
{
    if (!r->stats_path)
        return;
    char text[512];
    format_stats(r, text, sizeof text, '\n', ' ');
    size_t len = strlen(r->stats_path);
    char *tmp = malloc(len + 5);
    if (!tmp) {
        note("stats: out of memory");
        return;
    }
    memcpy(tmp, r->stats_path, len);
    memcpy(tmp + len, ".tmp", 5);
    FILE *f = fopen(tmp, "w");
    bool ok = f && fputs(text, f) >= 0;
    if (f && fclose(f) != 0)
        ok = false;
    if (!ok || rename(tmp, r->stats_path) != 0) {
        note("stats: cannot write %s: %s", r->stats_path, strerror(errno));
        unlink(tmp);
    }
    free(tmp);
}

/* ---- sockets ----------------------------------------------------------- */

static void set_nodelay(int fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

/* close so that the peer sees a reset */
static void close_abort(int fd)
{
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(fd);
}

/* close with a FIN: unread input would make the kernel send a reset, so
 * discard what has already arrived first */
static void close_graceful(int fd)
{
    char scratch[4096];
    shutdown(fd, SHUT_WR);
    for (int i = 0; i < 256; i++) {
        ssize_t n = recv(fd, scratch, sizeof scratch, MSG_DONTWAIT);
        if (n <= 0 && !(n < 0 && errno == EINTR))
            break;
    }
    close(fd);
}

static void pair_close(struct pair *p, bool abort_conn, const char *why)
{
    for (int i = 0; i < 2; i++) {
        if (p->fd[i] < 0)
            continue;
        if (abort_conn)
            close_abort(p->fd[i]);
        else
            close_graceful(p->fd[i]);
        p->fd[i] = -1;
    }
    p->state = P_CLOSED;
    note("conn %" PRIu64 " closed (%s)", p->id, why);
}

static void pair_free(struct pair *p)
{
    for (int i = 0; i < 2; i++) {
        if (p->fd[i] >= 0)
            close(p->fd[i]);
        free(p->dir[i].buf);
    }
    free(p);
}

/* ---- faults ------------------------------------------------------------ */

static uint64_t draw_distance(struct relay *r)
{
    double u = (double)((rng_next(&r->rng) >> 11) + 1) * 0x1p-53; /* (0, 1] */
    double d = -(double)r->mean_bytes * ln(u);
    if (d < 1.0)
        return 1;
    if (d > 1e18)
        return (uint64_t)1e18;
    return (uint64_t)d;
}

/* The chunk of n bytes just read into direction d starts at ring offset
 * `start` and covers pair bytes [p->seen - n, p->seen).  Apply every fault
 * that falls into it. */
static void apply_faults(struct relay *r, struct pair *p, int d, uint64_t start, size_t n,
                         int64_t now)
{
    struct direction *dr = &p->dir[d];
    unsigned char *chunk = dr->buf + start % BUF_CAP; /* reads never wrap */
    uint64_t base = p->seen - n;

    while (p->state == P_OPEN && p->next_fault < p->seen) {
        uint64_t k = p->next_fault - base; /* offset of the fault point in the chunk */
        enum fault_kind kind = r->kinds[rng_below(&r->rng, (uint64_t)r->n_kinds)];
        r->count.faults[kind]++;
        fprintf(stderr, "fault %s conn=%" PRIu64 " at=%" PRIu64 "\n", fault_names[kind], p->id,
                p->next_fault);

        switch (kind) {
        case F_CUT:
            pair_close(p, true, "cut");
            break;
        case F_TRUNCATE: {
            uint64_t keep = k + rng_below(&r->rng, n - k + 1);
            dr->rd_pos = start + keep;
            dr->eof = true;
            p->state = P_TRUNCATED;
            p->stall_until = 0;
            p->close_at = now + TRUNCATE_GRACE_MS;
            break;
        }
        case F_FLIP: {
            uint64_t at = k + rng_below(&r->rng, n - k);
            chunk[at] ^= (unsigned char)(1u << rng_below(&r->rng, 8));
            break;
        }
        case F_STALL: {
            int64_t until = now + (int64_t)rng_range(&r->rng, 50, 1500);
            if (until > p->stall_until)
                p->stall_until = until;
            break;
        }
        case F_DELAY: {
            int64_t until = now + (int64_t)rng_range(&r->rng, 100, 1000);
            if (until > p->delay_until)
                p->delay_until = until;
            break;
        }
        case F_COUNT:
            break;
        }
        if (p->state == P_OPEN)
            p->next_fault += draw_distance(r);
        write_stats_file(r);
    }
}

/* ---- relaying ---------------------------------------------------------- */

static bool stalled(const struct pair *p, int64_t now)
{
    return now < p->stall_until;
}

/* stream offset up to which direction d may be written now */
static uint64_t write_limit(const struct direction *dr)
{
    return dr->hold_count ? dr->holds[dr->hold_head].start : dr->rd_pos;
}

static bool want_read(const struct pair *p, int d, int64_t now)
{
    const struct direction *dr = &p->dir[d];
    return (p->state == P_OPEN || p->state == P_TRUNCATED) && !stalled(p, now) && !dr->eof &&
           dr->rd_pos - dr->wr_pos < BUF_CAP && dr->hold_count < HOLD_MAX;
}

static bool want_write(const struct pair *p, int d, int64_t now)
{
    const struct direction *dr = &p->dir[d];
    return (p->state == P_OPEN || p->state == P_TRUNCATED) && !stalled(p, now) && !dr->shut &&
           write_limit(dr) > dr->wr_pos;
}

static void dir_read(struct relay *r, struct pair *p, int d, int64_t now)
{
    struct direction *dr = &p->dir[d];
    size_t off = dr->rd_pos % BUF_CAP;
    size_t len = BUF_CAP - (size_t)(dr->rd_pos - dr->wr_pos);
    if (len > BUF_CAP - off)
        len = BUF_CAP - off;
    if (len == 0)
        return;

    ssize_t n;
    do
        n = recv(p->fd[d], dr->buf + off, len, 0);
    while (n < 0 && errno == EINTR);
    if (n < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            pair_close(p, true, strerror(errno));
        return;
    }
    if (n == 0) {
        dr->eof = true;
        return;
    }

    uint64_t start = dr->rd_pos;
    dr->rd_pos += (uint64_t)n;
    p->seen += (uint64_t)n;
    if (p->state == P_OPEN)
        apply_faults(r, p, d, start, (size_t)n, now);
    if (p->state != P_CLOSED && now < p->delay_until && dr->rd_pos > start) {
        struct hold *h = &dr->holds[(dr->hold_head + dr->hold_count) % HOLD_MAX];
        h->start = start;
        h->release = now + (int64_t)rng_range(&r->jitter, 1, 30);
        dr->hold_count++;
    }
}

static void dir_write(struct relay *r, struct pair *p, int d)
{
    struct direction *dr = &p->dir[d];
    int to = p->fd[1 - d];

    while (!dr->shut) {
        uint64_t limit = write_limit(dr);
        if (dr->wr_pos >= limit)
            break;
        size_t off = dr->wr_pos % BUF_CAP;
        size_t len = (size_t)(limit - dr->wr_pos);
        if (len > BUF_CAP - off)
            len = BUF_CAP - off;
        ssize_t n = send(to, dr->buf + off, len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                pair_close(p, true, strerror(errno));
            return;
        }
        dr->wr_pos += (uint64_t)n;
        r->count.bytes[d] += (uint64_t)n;
    }
    if (dr->eof && !dr->shut && dr->wr_pos == dr->rd_pos && dr->hold_count == 0) {
        shutdown(to, SHUT_WR);
        dr->shut = true;
    }
}

/* timers of one pair: held chunks coming due, end of the truncate grace */
static void pair_timers(struct pair *p, int64_t now)
{
    if (p->state == P_CLOSED)
        return;
    for (int d = 0; d < 2; d++) {
        struct direction *dr = &p->dir[d];
        while (dr->hold_count && dr->holds[dr->hold_head].release <= now) {
            dr->hold_head = (dr->hold_head + 1) % HOLD_MAX;
            dr->hold_count--;
        }
    }
    if (p->state == P_TRUNCATED && now >= p->close_at)
        pair_close(p, false, "truncated");
}

static void pair_io(struct relay *r, struct pair *p, int64_t now)
{
    short rev[2];
    for (int i = 0; i < 2; i++)
        rev[i] = p->pfd[i] >= 0 ? r->pfds[p->pfd[i]].revents : 0;

    if (p->state == P_CONNECTING) {
        if (!rev[1])
            return;
        int err = 0;
        socklen_t elen = sizeof err;
        if (getsockopt(p->fd[1], SOL_SOCKET, SO_ERROR, &err, &elen) != 0)
            err = errno;
        if (err) {
            note("conn %" PRIu64 ": connect to target failed: %s", p->id, strerror(err));
            pair_close(p, false, "no target");
            return;
        }
        p->state = P_OPEN;
        return; /* start relaying with the next poll */
    }
    if (p->state == P_CLOSED)
        return;

    for (int d = 0; d < 2; d++) {
        if (want_read(p, d, now) && (rev[d] & (POLLIN | POLLHUP | POLLERR)))
            dir_read(r, p, d, now);
        if (p->state == P_CLOSED)
            return;
    }
    if (!stalled(p, now)) {
        for (int d = 0; d < 2; d++) {
            dir_write(r, p, d);
            if (p->state == P_CLOSED)
                return;
        }
    }
    if (p->dir[0].shut && p->dir[1].shut)
        pair_close(p, false, "done");
}

static void new_client(struct relay *r, int cfd)
{
    if (r->npairs >= r->max_conns) {
        note("dropping a client: %d connections open", r->npairs);
        close(cfd);
        return;
    }
    struct pair *p = calloc(1, sizeof *p);
    if (p) {
        p->dir[0].buf = malloc(BUF_CAP);
        p->dir[1].buf = malloc(BUF_CAP);
    }
    if (!p || !p->dir[0].buf || !p->dir[1].buf) {
        note("out of memory, dropping a client");
        if (p)
            pair_free(p);
        close(cfd);
        return;
    }
    p->fd[0] = cfd;
    p->fd[1] = -1;
    p->pfd[0] = p->pfd[1] = -1;
    p->id = ++r->conn_seq;
    r->count.connections++;
    p->next_fault = r->n_kinds ? draw_distance(r) : UINT64_MAX;
    set_nodelay(cfd);
    note("conn %" PRIu64 " accepted, first fault at byte %" PRIu64, p->id, p->next_fault);

    int tfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (tfd < 0) {
        note("conn %" PRIu64 ": socket: %s", p->id, strerror(errno));
        pair_free(p);
        return;
    }
    p->fd[1] = tfd;
    set_nodelay(tfd);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)r->target_port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(tfd, (struct sockaddr *)&sa, sizeof sa) == 0) {
        p->state = P_OPEN;
    } else if (errno == EINPROGRESS || errno == EINTR) {
        p->state = P_CONNECTING;
    } else {
        note("conn %" PRIu64 ": connect to target failed: %s", p->id, strerror(errno));
        pair_close(p, false, "no target");
        pair_free(p);
        return;
    }
    r->pairs[r->npairs++] = p;
}

static void accept_clients(struct relay *r, int64_t now)
{
    for (int i = 0; i < ACCEPT_BURST; i++) {
        int cfd = accept4(r->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd >= 0) {
            new_client(r, cfd);
            continue;
        }
        if (errno == EINTR || errno == ECONNABORTED)
            continue;
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
            note("accept: %s (pausing 100 ms)", strerror(errno));
            r->accept_paused_until = now + 100;
        } else if (errno != EAGAIN && errno != EWOULDBLOCK) {
            note("accept: %s", strerror(errno));
        }
        return;
    }
}

/* drop closed pairs, keeping the order of the others */
static void sweep_pairs(struct relay *r)
{
    int j = 0;
    for (int i = 0; i < r->npairs; i++) {
        if (r->pairs[i]->state == P_CLOSED)
            pair_free(r->pairs[i]);
        else
            r->pairs[j++] = r->pairs[i];
    }
    r->npairs = j;
}

static void consider(int64_t *next, int64_t when, int64_t now)
{
    if (when > now && (*next < 0 || when < *next))
        *next = when;
}

/* returns true when it is time to stop */
static bool run_once(struct relay *r)
{
    int64_t now = now_ms();
    for (int i = 0; i < r->npairs; i++)
        pair_timers(r->pairs[i], now);
    sweep_pairs(r);

    /* poll set: [0] signals, [1] stdin, [2] listener, then the pairs */
    nfds_t n = 0;
    int64_t next = -1;
    r->pfds[n++] = (struct pollfd){.fd = sig_pipe[0], .events = POLLIN};
    r->pfds[n++] = (struct pollfd){.fd = r->use_stdin ? STDIN_FILENO : -1, .events = POLLIN};
    bool accepting = now >= r->accept_paused_until;
    r->pfds[n++] = (struct pollfd){.fd = accepting ? r->listen_fd : -1, .events = POLLIN};
    if (!accepting)
        consider(&next, r->accept_paused_until, now);

    for (int i = 0; i < r->npairs; i++) {
        struct pair *p = r->pairs[i];
        for (int s = 0; s < 2; s++) {
            short ev = 0;
            if (p->state == P_CONNECTING)
                ev = s == 1 ? POLLOUT : 0;
            else {
                if (want_read(p, s, now))
                    ev |= POLLIN;
                if (want_write(p, 1 - s, now))
                    ev |= POLLOUT;
            }
            /* an fd polled for nothing would still report POLLHUP: leave it out */
            p->pfd[s] = ev ? (int)n : -1;
            if (ev)
                r->pfds[n++] = (struct pollfd){.fd = p->fd[s], .events = ev};
        }
        consider(&next, p->stall_until, now);
        for (int d = 0; d < 2; d++)
            if (p->dir[d].hold_count)
                consider(&next, p->dir[d].holds[p->dir[d].hold_head].release, now);
        if (p->state == P_TRUNCATED)
            consider(&next, p->close_at, now);
    }

    int timeout = next < 0 ? -1 : (int)(next - now);
    int ready = poll(r->pfds, n, timeout);
    if (ready < 0) {
        if (errno == EINTR)
            return false; /* a signal also wrote to the pipe */
        note("poll: %s", strerror(errno));
        return true;
    }
    now = now_ms();

    if (r->pfds[0].revents) {
        char drain[64];
        while (read(sig_pipe[0], drain, sizeof drain) > 0) {
        }
        note("signal received, stopping");
        return true;
    }
    if (r->pfds[1].revents) {
        char scratch[4096];
        ssize_t got = read(STDIN_FILENO, scratch, sizeof scratch);
        if (got == 0 || (got < 0 && errno != EINTR && errno != EAGAIN)) {
            note("end of stdin, stopping");
            return true;
        }
    }
    for (int i = 0; i < r->npairs; i++)
        pair_io(r, r->pairs[i], now);
    sweep_pairs(r);
    if (r->pfds[2].revents)
        accept_clients(r, now);
    return false;
}

/* ---- setup ------------------------------------------------------------- */

static void usage(FILE *to)
{
    fprintf(to,
            "usage: pl-relay --listen PORT --target PORT --seed N [--mean-bytes B]\n"
            "                [--faults LIST] [--stats FILE] [--max-conns K] [--no-stdin]\n"
            "  a fault-injecting TCP relay for tests, 127.0.0.1 only\n"
            "  --listen PORT     port to accept clients on (0: any free port)\n"
            "  --target PORT     port on 127.0.0.1 to relay to\n"
            "  --seed N          PRNG seed (unsigned 64-bit)\n"
            "  --mean-bytes B    mean bytes between faults (default %d)\n"
            "  --faults LIST     comma list of cut,truncate,flip,stall,delay (repeats weigh) or none\n"
            "                    (default: all five)\n"
            "  --stats FILE      write counters to FILE (atomically)\n"
            "  --max-conns K     relay at most K connections at once (default %d)\n"
            "  --no-stdin        do not stop at end of stdin\n",
            DEFAULT_MEAN_BYTES, DEFAULT_MAX_CONNS);
}

static bool parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    if (!s || *s < '0' || *s > '9')
        return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v < min || v > max)
        return false;
    *out = v;
    return true;
}

static bool parse_faults(struct relay *r, const char *list)
{
    r->n_kinds = 0;
    if (strcmp(list, "none") != 0) {
        const char *s = list;
        for (;;) {
            size_t len = strcspn(s, ",");
            int k;
            for (k = 0; k < F_COUNT; k++)
                if (strlen(fault_names[k]) == len && strncmp(s, fault_names[k], len) == 0)
                    break;
            if (k == F_COUNT) {
                fprintf(stderr, "pl-relay: unknown fault '%.*s'\n", (int)len, s);
                return false;
            }
            if (r->n_kinds == MAX_KINDS) {
                fprintf(stderr, "pl-relay: more than %d faults listed\n", MAX_KINDS);
                return false;
            }
            r->kinds[r->n_kinds++] = (enum fault_kind)k; /* a kind listed twice is drawn twice as often */
            if (!s[len])
                break;
            s += len + 1;
        }
    }
    return true;
}

/* returns 0, or the exit status for a usage error */
static int parse_args(struct relay *r, int argc, char **argv)
{
    static const struct option opts[] = {
        {"listen", required_argument, NULL, 'l'}, {"target", required_argument, NULL, 't'},
        {"seed", required_argument, NULL, 's'},   {"mean-bytes", required_argument, NULL, 'm'},
        {"faults", required_argument, NULL, 'f'}, {"stats", required_argument, NULL, 'S'},
        {"max-conns", required_argument, NULL, 'k'}, {"no-stdin", no_argument, NULL, 'n'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
    };
    bool have_listen = false, have_target = false, have_seed = false;
    uint64_t v;
    int c;

    r->mean_bytes = DEFAULT_MEAN_BYTES;
    r->max_conns = DEFAULT_MAX_CONNS;
    r->use_stdin = true;
    parse_faults(r, "cut,truncate,flip,stall,delay");

    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        const char *bad = NULL;
        switch (c) {
        case 'l':
            if (parse_u64(optarg, 0, 65535, &v)) {
                r->listen_port = (int)v;
                have_listen = true;
            } else {
                bad = "--listen";
            }
            break;
        case 't':
            if (parse_u64(optarg, 1, 65535, &v)) {
                r->target_port = (int)v;
                have_target = true;
            } else {
                bad = "--target";
            }
            break;
        case 's':
            if (parse_u64(optarg, 0, UINT64_MAX, &r->seed))
                have_seed = true;
            else
                bad = "--seed";
            break;
        case 'm':
            if (!parse_u64(optarg, 1, UINT64_C(1) << 53, &r->mean_bytes))
                bad = "--mean-bytes";
            break;
        case 'f':
            if (!parse_faults(r, optarg))
                bad = "--faults";
            break;
        case 'S':
            if (*optarg)
                r->stats_path = optarg;
            else
                bad = "--stats";
            break;
        case 'k':
            if (parse_u64(optarg, 1, MAX_CONNS_LIMIT, &v))
                r->max_conns = (int)v;
            else
                bad = "--max-conns";
            break;
        case 'n':
            r->use_stdin = false;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            fprintf(stderr, "pl-relay: unknown or incomplete option '%s'\n", argv[optind - 1]);
            usage(stderr);
            return 2;
        }
        if (bad) {
            fprintf(stderr, "pl-relay: bad value for %s: '%s'\n", bad, optarg);
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "pl-relay: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    if (!have_listen || !have_target || !have_seed) {
        fprintf(stderr, "pl-relay: --listen, --target and --seed are required\n");
        usage(stderr);
        return 2;
    }
    return 0;
}

static int open_listener(struct relay *r)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        note("socket: %s", strerror(errno));
        return -1;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)r->listen_port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t slen = sizeof sa;
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, 128) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &slen) != 0) {
        note("cannot listen on 127.0.0.1:%d: %s", r->listen_port, strerror(errno));
        close(fd);
        return -1;
    }
    r->listen_port = ntohs(sa.sin_port);
    return fd;
}

static int setup_signals(void)
{
    if (pipe2(sig_pipe, O_NONBLOCK | O_CLOEXEC) != 0) {
        note("pipe: %s", strerror(errno));
        return -1;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_signal; /* no SA_RESTART: poll returns EINTR */
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
    return 0;
}

int main(int argc, char **argv)
{
    struct relay r;
    memset(&r, 0, sizeof r);
    r.listen_fd = -1;

    int status = parse_args(&r, argc, argv);
    if (status)
        return status;

    r.rng.s = r.seed;
    r.jitter.s = r.seed ^ 0x6A09E667F3BCC909ull;
    r.pairs = calloc((size_t)r.max_conns, sizeof *r.pairs);
    r.pfds = calloc(3 + 2 * (size_t)r.max_conns, sizeof *r.pfds);
    if (!r.pairs || !r.pfds) {
        note("out of memory");
        status = 1;
    }
    if (!status && setup_signals() != 0)
        status = 1;
    if (!status && (r.listen_fd = open_listener(&r)) < 0)
        status = 1;

    if (!status) {
        printf("port %d\nseed %" PRIu64 "\n", r.listen_port, r.seed);
        fflush(stdout);
        note("relaying 127.0.0.1:%d -> 127.0.0.1:%d, mean %" PRIu64 " bytes between faults",
             r.listen_port, r.target_port, r.mean_bytes);
        write_stats_file(&r);

        while (!run_once(&r)) {
        }

        char line[512];
        format_stats(&r, line, sizeof line, ' ', '=');
        fprintf(stderr, "stats %s", line);
        write_stats_file(&r);
    }

    for (int i = 0; i < r.npairs; i++)
        pair_free(r.pairs[i]);
    free(r.pairs);
    free(r.pfds);
    if (r.listen_fd >= 0)
        close(r.listen_fd);
    for (int i = 0; i < 2; i++)
        if (sig_pipe[i] >= 0)
            close(sig_pipe[i]);
    return status;
}
