/* SPDX-License-Identifier: ISC */
/*
 * Unit tests of the diagnostics: the log hook (pl_set_log()), the errors
 * that name a cause (PL_ERR_PERMISSION, PL_ERR_NO_INTERFACE) and the
 * log lines that go with them. The interface tests run in a network
 * namespace of their own (unshare(CLONE_NEWNET), as root): its only
 * interface is a loopback that starts down, so nothing leaves the machine.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* unshare(), before any system header */
#endif
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <peerlink/peerlink.h>

#include "internal.h"

/* ---------------------------------------------------------------- a capturing hook */

#define MAX_MSGS 64

typedef struct captured {
    int n;
    pl_log_level level[MAX_MSGS];
    char text[MAX_MSGS][512];
} captured;

static void capture(pl_log_level level, const char *message, void *userdata)
{
    captured *c = userdata;
    if (c->n < MAX_MSGS) {
        c->level[c->n] = level;
        snprintf(c->text[c->n], sizeof c->text[c->n], "%s", message);
    }
    c->n++;
}

/* The index of the first message containing all of a and b (b may be NULL), or -1. */
static int find(const captured *c, const char *a, const char *b)
{
    for (int i = 0; i < c->n && i < MAX_MSGS; i++)
        if (strstr(c->text[i], a) && (!b || strstr(c->text[i], b)))
            return i;
    return -1;
}

static void test_levels_and_removal(void **state)
{
    captured c = {0};
    pl__log(PL_LOG_ERROR, "before any hook %d", 1); /* silent by default: nowhere to go */
    assert_false(pl__log_wants(PL_LOG_ERROR));
    pl_set_log(PL_LOG_WARNING, capture, &c);
    assert_true(pl__log_wants(PL_LOG_WARNING));
    assert_false(pl__log_wants(PL_LOG_INFO));
    pl__log(PL_LOG_ERROR, "an error: %s", "why");
    pl__log(PL_LOG_WARNING, "a warning %d", 2);
    pl__log(PL_LOG_INFO, "an info");
    pl__log(PL_LOG_DEBUG, "a debug");
    assert_int_equal(c.n, 2);
    assert_string_equal(c.text[0], "an error: why");
    assert_int_equal(c.level[0], PL_LOG_ERROR);
    assert_string_equal(c.text[1], "a warning 2");
    assert_int_equal(c.level[1], PL_LOG_WARNING);
    /* An over-long message is cut, and says so. */
    char big[1000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = 0;
    pl__log(PL_LOG_ERROR, "%s", big);
    assert_int_equal(c.n, 3);
    assert_int_equal(strlen(c.text[2]), 511);
    assert_string_equal(c.text[2] + 508, "...");
    /* Out of range levels are clamped. */
    pl_set_log((pl_log_level)99, capture, &c);
    pl__log(PL_LOG_DEBUG, "debug now");
    assert_int_equal(c.n, 4);
    /* Removed: nothing more. */
    pl_set_log(PL_LOG_DEBUG, NULL, &c);
    assert_false(pl__log_wants(PL_LOG_ERROR));
    pl__log(PL_LOG_ERROR, "after removal");
    assert_int_equal(c.n, 4);
    assert_string_equal(pl_log_level_name(PL_LOG_WARNING), "warning");
    assert_string_equal(pl_log_level_name((pl_log_level)7), "?");
}

static void test_error_codes_name_the_cause(void **state)
{
    assert_int_equal(pl__errno_error(EACCES), PL_ERR_PERMISSION);
    assert_int_equal(pl__errno_error(EPERM), PL_ERR_PERMISSION);
    assert_int_equal(pl__errno_error(ENOBUFS), PL_ERR_NOMEM);
    assert_int_equal(pl__errno_error(EADDRINUSE), PL_ERR_IO);
    assert_string_equal(pl_strerror(PL_ERR_PERMISSION), "permission denied");
    assert_string_equal(pl_strerror(PL_ERR_NO_INTERFACE), "no usable network interface");
    assert_string_not_equal(pl_strerror(PL_ERR_PERMISSION), pl_strerror(PL_ERR_IO));
}

/* ---------------------------------------------------------------- mdns interfaces, in a namespace */

static int set_lo_flags(short set)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0)
        return -1;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "lo");
    int rc = ioctl(fd, SIOCGIFFLAGS, &ifr);
    if (rc == 0) {
        ifr.ifr_flags = (short)((ifr.ifr_flags & ~(IFF_UP | IFF_MULTICAST)) | set);
        rc = ioctl(fd, SIOCSIFFLAGS, &ifr);
    }
    close(fd);
    return rc;
}

static pl_discovery *open_mdns(pl_loop *loop, const char *env, int *err)
{
    pl_discovery *d = NULL;
    if (env)
        setenv("PEERLINK_MDNS_INTERFACES", env, 1);
    else
        unsetenv("PEERLINK_MDNS_INTERFACES");
    *err = pl_discovery_new(pl_loop_get_poll(loop), "mdns", &d);
    unsetenv("PEERLINK_MDNS_INTERFACES");
    return d;
}

static void test_named_interface_must_be_usable(void **state)
{
    pl_loop *loop;
    assert_int_equal(pl_loop_new(&loop), PL_OK);
    captured c = {0};
    pl_set_log(PL_LOG_DEBUG, capture, &c);
    int err;
    pl_discovery *d = open_mdns(loop, "nosuch0", &err);
    assert_int_equal(err, PL_ERR_NOT_FOUND);
    assert_null(d);
    int i = find(&c, "nosuch0", "no such interface");
    assert_true(i >= 0);
    assert_int_equal(c.level[i], PL_LOG_ERROR);
    assert_true(find(&c, "backend mdns", "not found") >= 0);

    assert_int_equal(set_lo_flags(0), 0); /* lo down */
    c.n = 0;
    d = open_mdns(loop, "lo", &err);
    assert_int_equal(err, PL_ERR_NO_INTERFACE);
    assert_null(d);
    assert_true(find(&c, "interface lo", "down") >= 0);

    /* Up, a loopback: usable without the MULTICAST flag (Linux loops multicast back on lo). */
    assert_int_equal(set_lo_flags(IFF_UP), 0);
    c.n = 0;
    d = open_mdns(loop, "lo", &err);
    assert_int_equal(err, PL_OK);
    assert_true(find(&c, "using interface lo", "IPv4") >= 0);
    pl_discovery_free(d);
    pl_set_log(PL_LOG_ERROR, NULL, NULL);
    pl_loop_free(loop);
}

static void test_publish_without_interface_fails(void **state)
{
    pl_loop *loop;
    assert_int_equal(pl_loop_new(&loop), PL_OK);
    captured c = {0};
    pl_set_log(PL_LOG_DEBUG, capture, &c);
    /* lo up but not multicast-capable: the default selection skips it, and there is nothing else. */
    assert_int_equal(set_lo_flags(IFF_UP), 0);
    int err;
    pl_discovery *d = open_mdns(loop, NULL, &err);
    assert_int_equal(err, PL_OK);
    assert_true(find(&c, "interface lo skipped", "multicast") >= 0);
    assert_true(find(&c, "no usable interface", NULL) >= 0);
    pl_publication *p = NULL;
    assert_int_equal(pl_publish(d, "nowhere", "_peerlink._tcp", 4242, NULL, NULL, NULL, &p), PL_ERR_NO_INTERFACE);
    assert_null(p);
    int i = find(&c, "cannot publish", "no usable network interface");
    assert_true(i >= 0);
    assert_int_equal(c.level[i], PL_LOG_ERROR);
    pl_discovery_free(d);
    pl_set_log(PL_LOG_ERROR, NULL, NULL);
    pl_loop_free(loop);
}

static void test_publish_limits_are_logged(void **state)
{
    pl_loop *loop;
    assert_int_equal(pl_loop_new(&loop), PL_OK);
    captured c = {0};
    pl_set_log(PL_LOG_WARNING, capture, &c);
    assert_int_equal(set_lo_flags(IFF_UP), 0);
    int err;
    pl_discovery *d = open_mdns(loop, "lo", &err);
    assert_int_equal(err, PL_OK);
    pl_publication *p = NULL;

    char name[65];
    memset(name, 'n', 64);
    name[64] = 0;
    assert_int_equal(pl_publish(d, name, "_peerlink._tcp", 4242, NULL, NULL, NULL, &p), PL_ERR_INVALID);
    assert_true(find(&c, "1 to 63 bytes", "64") >= 0);
    name[63] = 0; /* 63 is fine */
    assert_int_equal(pl_publish(d, name, "_peerlink._tcp", 4242, NULL, NULL, NULL, &p), PL_OK);
    pl_publication_free(p);
    p = NULL;

    assert_int_equal(pl_publish(d, "x", "_this-is-too-long._tcp", 4242, NULL, NULL, NULL, &p), PL_ERR_INVALID);
    assert_true(find(&c, "_this-is-too-long._tcp", "1 to 15") >= 0);

    /* 255 bytes per "key=value": the limit, and one more. */
    pl_txt *txt;
    assert_int_equal(pl_txt_new(&txt), PL_OK);
    char value[300];
    memset(value, 'v', sizeof value);
    assert_int_equal(pl_txt_set(txt, "k", value, 253), PL_OK); /* "k=" + 253 = 255 */
    assert_int_equal(pl_txt_set(txt, "k", value, 254), PL_ERR_TOO_LARGE);
    /* The built-in engine's record limit (1188 bytes) is below the format's. */
    char key[8];
    for (int k = 0; k < 5; k++) {
        snprintf(key, sizeof key, "k%d", k);
        assert_int_equal(pl_txt_set(txt, key, value, 250), PL_OK);
    }
    assert_int_equal(pl_publish(d, "big", "_peerlink._tcp", 4242, txt, NULL, NULL, &p), PL_ERR_TOO_LARGE);
    assert_null(p);
    int i = find(&c, "TXT record is", "the limit is 1188");
    assert_true(i >= 0);
    assert_int_equal(c.level[i], PL_LOG_ERROR);
    pl_txt_free(txt);
    pl_discovery_free(d);
    pl_set_log(PL_LOG_ERROR, NULL, NULL);
    pl_loop_free(loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_levels_and_removal),
        cmocka_unit_test(test_error_codes_name_the_cause),
    };
    const struct CMUnitTest netns_tests[] = {
        cmocka_unit_test(test_named_interface_must_be_usable),
        cmocka_unit_test(test_publish_without_interface_fails),
        cmocka_unit_test(test_publish_limits_are_logged),
    };
    int failed = cmocka_run_group_tests_name("log", tests, NULL, NULL);
    if (unshare(CLONE_NEWNET) != 0) {
        /* Not root (or no namespaces): the interface tests would touch the host's network. A skip
         * (77) where that is allowed; under CI=true a skip is a failure. */
        int e = errno;
        fprintf(stderr, "test_log: unshare(CLONE_NEWNET): %s: interface tests not run\n", strerror(e));
        const char *ci = getenv("CI");
        return failed ? failed : ci && strcmp(ci, "true") == 0 ? 1 : 77;
    }
    return failed + cmocka_run_group_tests_name("log: mdns interfaces (own network namespace)", netns_tests,
                                                NULL, NULL);
}
