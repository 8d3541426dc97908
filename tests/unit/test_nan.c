/* SPDX-License-Identifier: ISC */
/*
 * Unit tests of the experimental Wi-Fi Aware backend "nan" (lib/backends/nan/):
 *  - the NAN Service ID against hostap's derivation (src/common/nan_de.c,
 *    nan_de_derive_service_id(): SHA-256 of the name with ASCII letters
 *    lower-cased, first 6 bytes), computed here independently with
 *    libsodium, and vectors written out by /usr/bin/python3's hashlib;
 *  - the service-specific info (SSI): round trips with the TXT codec, the
 *    size cap and malformed input;
 *  - the Linux backend against tests/helpers/wpas-standin.py, a stand-in
 *    for wpa_supplicant's control socket (a UNIX datagram socket in the
 *    test's temporary directory; no radio, no multicast) that speaks the
 *    command and event formats of hostap's wpa_supplicant/README-NAN-USD,
 *    wpa_supplicant/ctrl_iface.c, ctrl_iface_unix.c, notify.c and
 *    src/common/wpa_ctrl.h (its header names each): a wpa_supplicant
 *    without NAN USD, a subscriber that finds a publisher's TXT, an update,
 *    ends by time to live and by request, a publisher that goes silent
 *    (NAN USD has no "service gone" message: removed after stale_ms), and
 *    a socket that goes away and comes back.
 * The waits are bounded by 30 s, a limit only a hung backend reaches.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include <peerlink/peerlink.h>

#include "backends/nan/nan.h"

#define TYPE "_peerlink._tcp"

static pl_loop *loop;
static char tmpdir[64];
static char sock_path[128];

/* ---------------------------------------------------------------- the library's log */

static char logged[4096];

static void on_log(pl_log_level level, const char *message, void *userdata)
{
    (void)level;
    (void)userdata;
    size_t n = strlen(logged);
    snprintf(logged + n, sizeof logged - n, "%s\n", message);
}

/* ---------------------------------------------------------------- the stand-in */

typedef struct standin {
    pid_t pid;
    int in, out; /* its stdin (we write), its stdout (we read) */
    char buf[65536];
    size_t len;
} standin;

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Read what the stand-in printed, without blocking. */
static void standin_read(standin *s)
{
    for (;;) {
        if (s->len + 1 >= sizeof s->buf)
            fail_msg("the stand-in printed too much");
        ssize_t n = read(s->out, s->buf + s->len, sizeof s->buf - s->len - 1);
        if (n <= 0)
            return;
        s->len += (size_t)n;
        s->buf[s->len] = '\0';
    }
}

/* Take the first whole line that starts with prefix (earlier ones are dropped) into line;
 * 1 if there is one. */
static int standin_take(standin *s, const char *prefix, char *line, size_t cap)
{
    char *start = s->buf;
    char *nl;
    while ((nl = strchr(start, '\n'))) {
        *nl = '\0';
        int hit = strncmp(start, prefix, strlen(prefix)) == 0;
        if (hit) {
            size_t n = strlen(start) < cap - 1 ? strlen(start) : cap - 1;
            memcpy(line, start, n);
            line[n] = '\0';
        }
        start = nl + 1;
        if (hit) {
            s->len -= (size_t)(start - s->buf);
            memmove(s->buf, start, s->len + 1);
            return 1;
        }
    }
    s->len -= (size_t)(start - s->buf);
    memmove(s->buf, start, s->len + 1);
    return 0;
}

/* Run the loop until the stand-in prints a line starting with prefix; fails after 30 s. */
static void standin_expect(standin *s, const char *prefix, char *line, size_t cap)
{
    char spare[256];
    if (!line) {
        line = spare;
        cap = sizeof spare;
    }
    long long deadline = now_ms() + 30000;
    while (now_ms() < deadline) {
        standin_read(s);
        if (standin_take(s, prefix, line, cap))
            return;
        pl_loop_iterate(loop, 20);
    }
    fail_msg("the stand-in never printed \"%s\"", prefix);
}

static void standin_say(standin *s, const char *line)
{
    size_t n = strlen(line);
    assert_int_equal(write(s->in, line, n), (ssize_t)n);
    assert_int_equal(write(s->in, "\n", 1), 1);
}

static void standin_start(standin *s, int with_nan)
{
    const char *top = getenv("top_srcdir");
    char script[1024];
    snprintf(script, sizeof script, "%s/tests/helpers/wpas-standin.py", top ? top : ".");
    int to[2], from[2];
    assert_int_equal(pipe(to), 0);
    assert_int_equal(pipe(from), 0);
    memset(s, 0, sizeof *s);
    s->pid = fork();
    assert_true(s->pid >= 0);
    if (s->pid == 0) {
        dup2(to[0], 0);
        dup2(from[1], 1);
        close(to[0]);
        close(to[1]);
        close(from[0]);
        close(from[1]);
        execl("/usr/bin/python3", "python3", script, sock_path, with_nan ? "--nan" : "--no-nan", (char *)NULL);
        _exit(127);
    }
    close(to[0]);
    close(from[1]);
    s->in = to[1];
    s->out = from[0];
    fcntl(s->out, F_SETFL, O_NONBLOCK);
    standin_expect(s, "ready", NULL, 0);
}

static void standin_stop(standin *s)
{
    standin_say(s, "quit");
    int st = 0;
    assert_int_equal(waitpid(s->pid, &st, 0), s->pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    close(s->in);
    close(s->out);
}

/* ---------------------------------------------------------------- what the application sees */

typedef struct seen {
    char log[1024]; /* "+Name;" ADD, "~Name;" UPDATE, "-Name;" REMOVE, "!;" ALL_FOR_NOW, "x<status>;" FAILED */
    pl_browser *b;
    pl_service *last; /* a copy of the last ADD or UPDATE */
} seen;

static void on_browse(pl_browser *b, pl_browse_event ev, int status, const pl_service *svc, void *ud)
{
    (void)b;
    seen *s = ud;
    char item[96];
    switch (ev) {
    case PL_BROWSE_ADD: snprintf(item, sizeof item, "+%s;", svc->name); break;
    case PL_BROWSE_UPDATE: snprintf(item, sizeof item, "~%s;", svc->name); break;
    case PL_BROWSE_REMOVE: snprintf(item, sizeof item, "-%s;", svc->name); break;
    case PL_BROWSE_ALL_FOR_NOW: snprintf(item, sizeof item, "!;"); break;
    default: snprintf(item, sizeof item, "x%d;", status); break;
    }
    strncat(s->log, item, sizeof s->log - strlen(s->log) - 1);
    if (ev == PL_BROWSE_ADD || ev == PL_BROWSE_UPDATE) {
        pl_service_free(s->last);
        s->last = NULL;
        assert_int_equal(pl_service_dup(svc, &s->last), PL_OK);
    }
}

typedef struct pubseen {
    char log[256]; /* "E" ESTABLISHED, "F<status>" FAILED */
} pubseen;

static void on_publish(pl_publication *p, pl_publish_event ev, int status, const char *name, void *ud)
{
    (void)p;
    (void)name;
    pubseen *s = ud;
    size_t n = strlen(s->log);
    if (ev == PL_PUBLISH_ESTABLISHED)
        snprintf(s->log + n, sizeof s->log - n, "E");
    else
        snprintf(s->log + n, sizeof s->log - n, "F%d", status);
}

/* Run the loop until the log is exactly want; fails after 30 s. */
static void wait_log(const char *log, const char *want)
{
    long long deadline = now_ms() + 30000;
    while (strcmp(log, want) != 0 && now_ms() < deadline)
        pl_loop_iterate(loop, 20);
    assert_string_equal(log, want);
}

static int open_nan(const pl__nan_options *opt, pl_discovery **d)
{
    pl__nan_options o = *opt;
    o.ctrl_path = sock_path;
    return pl__discovery_open(pl_loop_get_poll(loop), &pl__nan_ops, &o, d);
}

static pl_txt *txt_of(const char *k1, const char *v1, const char *flag)
{
    pl_txt *t = NULL;
    assert_int_equal(pl_txt_new(&t), PL_OK);
    if (k1)
        assert_int_equal(pl_txt_set_str(t, k1, v1), PL_OK);
    if (flag)
        assert_int_equal(pl_txt_set(t, flag, NULL, 0), PL_OK);
    return t;
}

/* ---------------------------------------------------------------- fixtures */

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/pl-nan.XXXXXX");
    if (!mkdtemp(tmpdir) || pl_loop_new(&loop) != PL_OK)
        return -1;
    /* Named like an interface's socket; no interface has this name. */
    snprintf(sock_path, sizeof sock_path, "%s/wlnan0", tmpdir);
    logged[0] = '\0';
    pl_set_log(PL_LOG_INFO, on_log, NULL);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    pl_set_log(PL_LOG_ERROR, NULL, NULL);
    pl_loop_free(loop);
    unlink(sock_path);
    rmdir(tmpdir);
    return 0;
}

/* ---------------------------------------------------------------- Service ID */

/* hostap's derivation, written out again: ASCII letters lower-cased (tolower() in the C
 * locale), SHA-256 (libsodium here), the first 6 bytes. */
static void independent_id(const char *name, uint8_t out[6])
{
    char lower[256];
    size_t n = strlen(name);
    assert_true(n < sizeof lower);
    for (size_t i = 0; i <= n; i++)
        lower[i] = (name[i] >= 'A' && name[i] <= 'Z') ? (char)(name[i] + 32) : name[i];
    uint8_t hash[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(hash, (const unsigned char *)lower, n);
    memcpy(out, hash, 6);
}

static void test_service_id(void **state)
{
    (void)state;
    const char *names[] = {"_peerlink._tcp", "_PeerLink._TCP", "_test", "_x._udp", "",
                           "_caf\xc3\xa9._tcp", "_CAF\xc3\x89._tcp" /* É: its bytes are not A-Z, kept */};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        uint8_t got[PL__NAN_SERVICE_ID_LEN], want[6];
        assert_int_equal(pl__nan_service_id(names[i], got), PL_OK);
        independent_id(names[i], want);
        assert_memory_equal(got, want, 6);
    }
    /* Written out by:
     *   /usr/bin/python3 -c "import hashlib; print(hashlib.sha256(b'_peerlink._tcp').hexdigest()[:12])"
     * and, for README-NAN-USD's example service name, with b'_test': */
    uint8_t id[PL__NAN_SERVICE_ID_LEN];
    char hex[13];
    assert_int_equal(pl__nan_service_id("_PeerLink._TCP", id), PL_OK);
    pl__nan_hex(id, sizeof id, hex);
    assert_string_equal(hex, "fe0aa49eed21");
    assert_int_equal(pl__nan_service_id("_test", id), PL_OK);
    pl__nan_hex(id, sizeof id, hex);
    assert_string_equal(hex, "f51b9c480c52");
    assert_int_equal(pl__nan_service_id(NULL, id), PL_ERR_INVALID);
}

/* ---------------------------------------------------------------- the SSI */

static void ssi_round_trip(const char *name, uint16_t port, const pl_txt *txt)
{
    uint8_t buf[PL__NAN_LIMIT_SSI];
    size_t len = 0, asked = 0;
    assert_int_equal(pl__nan_ssi_encode(name, port, txt, sizeof buf, NULL, &asked), PL_OK);
    assert_int_equal(pl__nan_ssi_encode(name, port, txt, sizeof buf, buf, &len), PL_OK);
    assert_int_equal(len, asked);
    char got_name[64];
    uint16_t got_port = 0;
    const uint8_t *wire = NULL;
    size_t wire_len = 0;
    assert_int_equal(pl__nan_ssi_decode(buf, len, got_name, &got_port, &wire, &wire_len), PL_OK);
    assert_string_equal(got_name, name);
    assert_int_equal(got_port, port);
    pl_txt *back = NULL;
    assert_int_equal(pl_txt_decode(wire, wire_len, &back), PL_OK);
    pl_txt *empty = NULL;
    assert_int_equal(pl_txt_new(&empty), PL_OK);
    assert_true(pl_txt_equal(back, txt ? txt : empty));
    pl_txt_free(back);
    pl_txt_free(empty);
}

static void test_ssi_round_trips(void **state)
{
    (void)state;
    pl_txt *t = txt_of("k", "v", "flag");
    assert_int_equal(pl_txt_set(t, "empty", "", 0), PL_OK);
    assert_int_equal(pl_txt_set(t, "bin", "\0\xff\n=", 4), PL_OK);
    ssi_round_trip("Kitchen Light", 4242, t);
    ssi_round_trip("\xc3\xa9t\xc3\xa9 #2", 65535, t);
    ssi_round_trip("x", 0, NULL);
    char longest[64];
    memset(longest, 'n', 63);
    longest[63] = '\0';
    ssi_round_trip(longest, 1, t);
    pl_txt_free(t);

    /* The layout of docs/WIFI-AWARE.md, byte for byte. */
    pl_txt *one = txt_of("k", "v", NULL);
    uint8_t buf[32];
    size_t len = 0;
    assert_int_equal(pl__nan_ssi_encode("ab", 0x1092, one, sizeof buf, buf, &len), PL_OK);
    assert_int_equal(len, 10);
    assert_memory_equal(buf, "\x01\x02" "ab" "\x10\x92" "\x03k=v", 10);
    pl_txt_free(one);
}

static void test_ssi_limits(void **state)
{
    (void)state;
    /* "Kitchen" (7) + 4 bytes of header, and one string of 1 + 243 bytes: 255 exactly. */
    char value[256];
    memset(value, 'v', sizeof value);
    value[241] = '\0'; /* "k=" + 241: 243 */
    pl_txt *t = txt_of("k", value, NULL);
    uint8_t buf[512];
    size_t len = 0;
    assert_int_equal(pl__nan_ssi_encode("Kitchen", 1, t, PL__NAN_DEFAULT_MAX_SSI, buf, &len), PL_OK);
    assert_int_equal(len, 255);
    /* One byte more: refused with the size it would take, nothing written, and the log says why. */
    value[241] = 'v';
    value[242] = '\0';
    assert_int_equal(pl_txt_set_str(t, "k", value), PL_OK);
    memset(buf, 0xAA, sizeof buf);
    logged[0] = '\0';
    assert_int_equal(pl__nan_ssi_encode("Kitchen", 1, t, PL__NAN_DEFAULT_MAX_SSI, buf, &len), PL_ERR_TOO_LARGE);
    assert_int_equal(len, 256);
    assert_int_equal(buf[0], 0xAA);
    assert_non_null(strstr(logged, "256 bytes"));
    assert_non_null(strstr(logged, "over the 255"));
    /* A larger cap (a device that allows more) takes it. */
    assert_int_equal(pl__nan_ssi_encode("Kitchen", 1, t, 256, buf, &len), PL_OK);
    pl_txt_free(t);

    /* Names: 1..63 bytes. */
    char name64[65];
    memset(name64, 'n', 64);
    name64[64] = '\0';
    assert_int_equal(pl__nan_ssi_encode(name64, 1, NULL, sizeof buf, buf, &len), PL_ERR_INVALID);
    assert_int_equal(pl__nan_ssi_encode("", 1, NULL, sizeof buf, buf, &len), PL_ERR_INVALID);
    assert_int_equal(pl__nan_ssi_encode(NULL, 1, NULL, sizeof buf, buf, &len), PL_ERR_INVALID);

    /* Malformed input. */
    char name[64];
    uint16_t port;
    const uint8_t *wire;
    size_t wire_len;
    const struct {
        const char *bytes;
        size_t len;
    } bad[] = {
        {"", 0},
        {"\x01", 1},
        {"\x02\x01x\x00\x01\x00", 6},   /* another version */
        {"\x01\x00\x00\x01\x00", 5},    /* an empty name */
        {"\x01\x40", 2},                /* 64 bytes of name */
        {"\x01\x05" "ab\x00" "\x01", 6}, /* shorter than its name and port */
        {"\x01\x02" "a\x00" "\x00\x01\x00", 7}, /* a NUL in the name */
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_equal(pl__nan_ssi_decode((const uint8_t *)bad[i].bytes, bad[i].len, name, &port, &wire,
                                            &wire_len), PL_ERR_MALFORMED);
    /* The shortest valid one: no TXT bytes at all (an empty record for txt.c). */
    assert_int_equal(pl__nan_ssi_decode((const uint8_t *)"\x01\x01x\x00\x07", 5, name, &port, &wire, &wire_len),
                     PL_OK);
    assert_int_equal(wire_len, 0);
    assert_int_equal(port, 7);

    /* Hex, as the control interface carries it. */
    uint8_t bin[4];
    char hex[9];
    pl__nan_hex((const uint8_t *)"\x00\x9f\xa0\xff", 4, hex);
    assert_string_equal(hex, "009fa0ff");
    assert_int_equal(pl__nan_unhex("009FA0ff", 8, bin), 4);
    assert_memory_equal(bin, "\x00\x9f\xa0\xff", 4);
    assert_int_equal(pl__nan_unhex("abc", 3, bin), -1);
    assert_int_equal(pl__nan_unhex("zz", 2, bin), -1);
}

/* ---------------------------------------------------------------- the backend: opening */

static void test_no_socket(void **state)
{
    (void)state;
    pl_discovery *d = NULL;
    pl__nan_options opt = {0};
    logged[0] = '\0';
    assert_int_equal(open_nan(&opt, &d), PL_ERR_DAEMON);
    assert_null(d);
    assert_non_null(strstr(logged, sock_path));
    assert_non_null(strstr(logged, "PEERLINK_NAN_CTRL"));
    /* Through the public API, the socket named by the environment. */
    setenv("PEERLINK_NAN_CTRL", sock_path, 1);
    assert_int_equal(pl_discovery_new(pl_loop_get_poll(loop), "nan", &d), PL_ERR_DAEMON);
    unsetenv("PEERLINK_NAN_CTRL");
    assert_non_null(strstr(pl_discovery_backends(), "nan"));
    assert_string_equal(pl_strerror(PL_ERR_NO_WIFI_AWARE),
                        "Wi-Fi Aware unavailable (wpa_supplicant 2.11+ with NAN USD needed)");
}

static void test_without_nan_usd(void **state)
{
    (void)state;
    standin s;
    standin_start(&s, 0);
    pl_discovery *d = NULL;
    pl__nan_options opt = {0};
    logged[0] = '\0';
    assert_int_equal(open_nan(&opt, &d), PL_ERR_NO_WIFI_AWARE);
    assert_null(d);
    /* What it asked, and what a 2.10 answers. */
    standin_expect(&s, "cmd GET_CAPABILITY nan -> FAIL", NULL, 0);
    assert_non_null(strstr(logged, "has no NAN USD (GET_CAPABILITY nan: FAIL)"));
    assert_non_null(strstr(logged, "wpa_supplicant 2.11 or later"));
    /* The same through pl_discovery_new() and the environment. */
    setenv("PEERLINK_NAN_CTRL", sock_path, 1);
    assert_int_equal(pl_discovery_new(pl_loop_get_poll(loop), "nan", &d), PL_ERR_NO_WIFI_AWARE);
    unsetenv("PEERLINK_NAN_CTRL");
    standin_stop(&s);
}

/* ---------------------------------------------------------------- the backend: discovery */

static void test_publish_find_update_cancel(void **state)
{
    (void)state;
    standin s;
    standin_start(&s, 1);
    pl__nan_options popt = {0}, sopt = {.window_ms = 50};
    pl_discovery *dp = NULL, *ds = NULL;
    assert_int_equal(open_nan(&popt, &dp), PL_OK);
    standin_expect(&s, "cmd ATTACH -> OK", NULL, 0);
    setenv("PEERLINK_NAN_CTRL", sock_path, 1);
    assert_int_equal(pl_discovery_new(pl_loop_get_poll(loop), "nan", &ds), PL_OK); /* default options */
    unsetenv("PEERLINK_NAN_CTRL");
    pl_discovery_free(ds);
    assert_int_equal(open_nan(&sopt, &ds), PL_OK);
    assert_string_equal(pl_discovery_backend(ds), "nan");

    /* Publish: NAN_PUBLISH with the service name and the SSI in hex. */
    pl_txt *t = txt_of("k", "v", "flag");
    pubseen ps = {0};
    pl_publication *p = NULL;
    assert_int_equal(pl_publish(dp, "Kitchen Light", TYPE, 4242, t, on_publish, &ps, &p), PL_OK);
    uint8_t ssi[256];
    size_t len = 0;
    assert_int_equal(pl__nan_ssi_encode("Kitchen Light", 4242, t, sizeof ssi, ssi, &len), PL_OK);
    char hex[513], want[700], line[1024];
    pl__nan_hex(ssi, len, hex);
    snprintf(want, sizeof want, "cmd NAN_PUBLISH service_name=" TYPE " ttl=600 ssi=%s -> ", hex);
    standin_expect(&s, want, line, sizeof line);
    int pub_id = atoi(line + strlen(want));
    assert_true(pub_id > 0);
    wait_log(ps.log, "E");

    /* Browse: NAN_SUBSCRIBE; the publisher's SSI comes back as the instance with its TXT. */
    seen b = {0};
    assert_int_equal(pl_browse(ds, TYPE, NULL, on_browse, &b, &b.b), PL_OK);
    standin_expect(&s, "cmd NAN_SUBSCRIBE service_name=" TYPE " ttl=600 -> ", line, sizeof line);
    int sub_id = atoi(strrchr(line, ' ') + 1);
    wait_log(b.log, "+Kitchen Light;!;");
    assert_string_equal(b.last->type, TYPE);
    assert_string_equal(b.last->domain, "local");
    assert_int_equal(b.last->port, 4242);
    assert_int_equal(b.last->n_addresses, 0); /* no data path yet */
    assert_true(pl_txt_equal(b.last->txt, t));

    /* The publisher repeats itself: nothing new. Then a new TXT record: NAN_UPDATE_PUBLISH, an UPDATE. */
    standin_say(&s, "announce");
    standin_expect(&s, "done announce", NULL, 0);
    pl_txt *t2 = txt_of("k", "w", NULL);
    assert_int_equal(pl_publication_set_txt(p, t2), PL_OK);
    assert_int_equal(pl__nan_ssi_encode("Kitchen Light", 4242, t2, sizeof ssi, ssi, &len), PL_OK);
    pl__nan_hex(ssi, len, hex);
    snprintf(want, sizeof want, "cmd NAN_UPDATE_PUBLISH publish_id=%d ssi=%s -> OK", pub_id, hex);
    standin_expect(&s, want, NULL, 0);
    wait_log(b.log, "+Kitchen Light;!;~Kitchen Light;");
    assert_true(pl_txt_equal(b.last->txt, t2));

    /* Past the cap: refused, the old record stays; a new publication too large is refused. */
    char big[250];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    pl_txt *t3 = txt_of("big", big, NULL);
    logged[0] = '\0';
    assert_int_equal(pl_publication_set_txt(p, t3), PL_ERR_TOO_LARGE);
    assert_non_null(strstr(logged, "over the 255"));
    pl_publication *p2 = NULL;
    assert_int_equal(pl_publish(dp, "Too Big", TYPE, 1, t3, NULL, NULL, &p2), PL_ERR_TOO_LARGE);
    assert_null(p2);
    /* Wi-Fi Aware cannot list the service types around. */
    pl_browser *types = NULL;
    assert_int_equal(pl_browse(ds, PL_SERVICE_TYPES, NULL, on_browse, &b, &types), PL_ERR_UNSUPPORTED);

    /* Withdrawing and stopping: NAN_CANCEL_PUBLISH / NAN_CANCEL_SUBSCRIBE with the ids. */
    pl_publication_free(p);
    snprintf(want, sizeof want, "cmd NAN_CANCEL_PUBLISH publish_id=%d -> OK", pub_id);
    standin_expect(&s, want, NULL, 0);
    pl_browser_free(b.b);
    snprintf(want, sizeof want, "cmd NAN_CANCEL_SUBSCRIBE subscribe_id=%d -> OK", sub_id);
    standin_expect(&s, want, NULL, 0);
    assert_string_equal(b.log, "+Kitchen Light;!;~Kitchen Light;"); /* no callback after the free */

    /* Freed at once after a publish: nothing is left publishing (the close sends what is queued). */
    assert_int_equal(pl_publish(dp, "Brief", TYPE, 1, NULL, NULL, NULL, &p), PL_OK);
    pl_discovery_free(dp);
    pl_discovery_free(ds);
    standin_say(&s, "list");
    standin_expect(&s, "services", line, sizeof line);
    assert_string_equal(line, "services");
    pl_service_free(b.last);
    pl_txt_free(t);
    pl_txt_free(t2);
    pl_txt_free(t3);
    standin_stop(&s);
}

static void test_silent_publisher_removed(void **state)
{
    (void)state;
    standin s;
    standin_start(&s, 1);
    pl__nan_options popt = {0}, sopt = {.stale_ms = 300, .window_ms = 600000};
    pl_discovery *dp = NULL, *ds = NULL;
    assert_int_equal(open_nan(&popt, &dp), PL_OK);
    assert_int_equal(open_nan(&sopt, &ds), PL_OK);
    seen b = {0};
    assert_int_equal(pl_browse(ds, TYPE, NULL, on_browse, &b, &b.b), PL_OK);
    pl_publication *p = NULL;
    assert_int_equal(pl_publish(dp, "Lamp", TYPE, 7, NULL, NULL, NULL, &p), PL_OK);
    wait_log(b.log, "+Lamp;");
    /* NAN USD sends nothing when a publisher stops: it goes silent, and is removed stale_ms later. */
    pl_publication_free(p);
    standin_expect(&s, "cmd NAN_CANCEL_PUBLISH", NULL, 0);
    wait_log(b.log, "+Lamp;-Lamp;");
    pl_discovery_free(dp);
    pl_discovery_free(ds);
    pl_service_free(b.last);
    standin_stop(&s);
}

static void test_terminated(void **state)
{
    (void)state;
    standin s;
    standin_start(&s, 1);
    pl__nan_options opt = {.window_ms = 600000};
    pl_discovery *dp = NULL, *ds = NULL;
    assert_int_equal(open_nan(&opt, &dp), PL_OK);
    assert_int_equal(open_nan(&opt, &ds), PL_OK);
    seen b = {0};
    pubseen ps = {0};
    pl_publication *p = NULL;
    assert_int_equal(pl_publish(dp, "Lamp", TYPE, 7, NULL, on_publish, &ps, &p), PL_OK);
    standin_expect(&s, "cmd NAN_PUBLISH service_name=" TYPE, NULL, 0);
    assert_int_equal(pl_browse(ds, TYPE, NULL, on_browse, &b, &b.b), PL_OK);
    standin_expect(&s, "cmd NAN_SUBSCRIBE service_name=" TYPE, NULL, 0);
    wait_log(b.log, "+Lamp;");
    wait_log(ps.log, "E");

    /* Ended by their time to live: both start again, the instance stays. */
    standin_say(&s, "end-subscriptions timeout");
    standin_expect(&s, "cmd NAN_SUBSCRIBE service_name=" TYPE, NULL, 0);
    standin_say(&s, "end-publications timeout");
    standin_expect(&s, "cmd NAN_PUBLISH service_name=" TYPE, NULL, 0);
    wait_log(ps.log, "EE");
    standin_say(&s, "announce");
    standin_expect(&s, "done announce", NULL, 0);
    assert_string_equal(b.log, "+Lamp;");

    /* Ended by someone's request (NAN_CANCEL_SUBSCRIBE, NAN_FLUSH): every instance removed, then FAILED. */
    standin_say(&s, "end-subscriptions user-request");
    char want[32];
    snprintf(want, sizeof want, "+Lamp;-Lamp;x%d;", PL_ERR_BACKEND);
    wait_log(b.log, want);
    standin_say(&s, "end-publications failure");
    snprintf(want, sizeof want, "EEF%d", PL_ERR_BACKEND);
    wait_log(ps.log, want);
    pl_publication_free(p);
    pl_browser_free(b.b);
    pl_discovery_free(dp);
    pl_discovery_free(ds);
    pl_service_free(b.last);
    standin_stop(&s);
}

static void test_socket_goes_away(void **state)
{
    (void)state;
    standin s;
    standin_start(&s, 1);
    pl__nan_options opt = {.keepalive_ms = 100, .window_ms = 600000};
    pl_discovery *dp = NULL, *ds = NULL;
    assert_int_equal(open_nan(&opt, &dp), PL_OK);
    assert_int_equal(open_nan(&opt, &ds), PL_OK);
    seen b = {0};
    pubseen ps = {0};
    pl_publication *p = NULL;
    assert_int_equal(pl_publish(dp, "Lamp", TYPE, 7, NULL, on_publish, &ps, &p), PL_OK);
    assert_int_equal(pl_browse(ds, TYPE, NULL, on_browse, &b, &b.b), PL_OK);
    wait_log(b.log, "+Lamp;");

    /* wpa_supplicant stops: its socket is gone; the next PING finds out. */
    standin_stop(&s);
    logged[0] = '\0';
    wait_log(b.log, "+Lamp;-Lamp;");
    assert_non_null(strstr(logged, "lost wpa_supplicant"));

    /* It comes back: both reconnect, publish and subscribe again. */
    standin_start(&s, 1);
    standin_expect(&s, "cmd GET_CAPABILITY nan -> USD", NULL, 0);
    wait_log(b.log, "+Lamp;-Lamp;+Lamp;");
    wait_log(ps.log, "EE");

    /* Back, but without NAN USD (downgraded): said once, and nothing more happens. */
    pl_publication_free(p);
    pl_discovery_free(dp);
    standin_stop(&s);
    wait_log(b.log, "+Lamp;-Lamp;+Lamp;-Lamp;");
    logged[0] = '\0';
    standin_start(&s, 0);
    standin_expect(&s, "cmd GET_CAPABILITY nan -> FAIL", NULL, 0);
    standin_expect(&s, "cmd GET_CAPABILITY nan -> FAIL", NULL, 0); /* and again, a keepalive later */
    assert_non_null(strstr(logged, "has no NAN USD"));
    assert_null(strstr(strstr(logged, "has no NAN USD") + 1, "has no NAN USD"));

    pl_browser_free(b.b);
    pl_discovery_free(ds);
    pl_service_free(b.last);
    standin_stop(&s);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_service_id, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ssi_round_trips, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ssi_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_socket, setup, teardown),
        cmocka_unit_test_setup_teardown(test_without_nan_usd, setup, teardown),
        cmocka_unit_test_setup_teardown(test_publish_find_update_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_silent_publisher_removed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_terminated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_socket_goes_away, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
