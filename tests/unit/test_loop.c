/* Unit tests of the built-in event loop (lib/backends/posix/loop.c), on real pipes. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <poll.h>
#include <unistd.h>

#include <peerlink/poll.h>

typedef struct counter {
    int fired;
    const pl_poll *poll;
    pl_timeout *rearm; /* re-armed at 0 ms from inside its own callback */
    pl_watch *victim;  /* freed from inside a watch callback */
    pl_loop *loop;
} counter;

static void on_timeout(pl_timeout *t, void *ud)
{
    counter *c = ud;
    c->fired++;
    if (c->rearm == t)
        c->poll->timeout_update(t, 0);
}

static void test_timeout_fires_once_and_not_inline(void **state)
{
    pl_loop *loop;
    assert_int_equal(pl_loop_new(&loop), PL_OK);
    const pl_poll *p = pl_loop_get_poll(loop);
    counter c = {0};
    assert_int_equal(pl_loop_next_timeout(loop), -1);
    pl_timeout *t = p->timeout_new(p, 0, on_timeout, &c);
    assert_non_null(t);
    assert_int_equal(c.fired, 0); /* never from inside timeout_new */
    assert_int_equal(pl_loop_next_timeout(loop), 0);
    assert_int_equal(pl_loop_iterate(loop, 0), 1);
    assert_int_equal(c.fired, 1);
    assert_int_equal(pl_loop_iterate(loop, 0), 0); /* disarmed after firing */
    assert_int_equal(c.fired, 1);
    assert_int_equal(pl_loop_next_timeout(loop), -1);
    p->timeout_update(t, 30);
    int next = pl_loop_next_timeout(loop);
    assert_true(next > 0 && next <= 30);
    while (c.fired == 1)
        assert_true(pl_loop_iterate(loop, 1000) >= 0);
    assert_int_equal(c.fired, 2);
    p->timeout_update(t, 0);
    p->timeout_update(t, -1); /* disarm */
    assert_int_equal(pl_loop_iterate(loop, 0), 0);
    p->timeout_free(t);
    pl_loop_free(loop);
}

static void test_zero_timer_rearmed_in_callback_waits_an_iteration(void **state)
{
    pl_loop *loop;
    assert_int_equal(pl_loop_new(&loop), PL_OK);
    counter c = {0};
    c.poll = pl_loop_get_poll(loop);
    c.rearm = c.poll->timeout_new(c.poll, 0, on_timeout, &c);
    assert_int_equal(pl_loop_iterate(loop, 0), 1);
    assert_int_equal(c.fired, 1);
    assert_int_equal(pl_loop_iterate(loop, 0), 1);
    assert_int_equal(c.fired, 2);
    c.poll->timeout_free(c.rearm);
    pl_loop_free(loop);
}

static void on_readable(pl_watch *w, int fd, unsigned events, void *ud)
{
    counter *c = ud;
    char buf[16];
    assert_true(events & PL_WATCH_IN);
    assert_true(read(fd, buf, sizeof buf) > 0);
    c->fired++;
    if (c->victim) {
        c->poll->watch_free(c->victim);
        c->victim = NULL;
    }
}

static void test_watch_dispatch_update_and_free_in_callback(void **state)
{
    int fds[2], fds2[2];
    assert_int_equal(pipe(fds), 0);
    assert_int_equal(pipe(fds2), 0);
    pl_loop *loop;
    assert_int_equal(pl_loop_new(&loop), PL_OK);
    counter c = {0}, c2 = {0};
    c.poll = c2.poll = pl_loop_get_poll(loop);
    pl_watch *w = c.poll->watch_new(c.poll, fds[0], PL_WATCH_IN, on_readable, &c);
    pl_watch *w2 = c.poll->watch_new(c.poll, fds2[0], PL_WATCH_IN, on_readable, &c2);
    assert_non_null(w);
    assert_non_null(w2);
    assert_int_equal(pl_loop_iterate(loop, 0), 0);
    assert_int_equal(write(fds[1], "x", 1), 1);
    assert_int_equal(pl_loop_iterate(loop, 1000), 1);
    assert_int_equal(c.fired, 1);
    /* Not watched for input: no dispatch even though readable. */
    c.poll->watch_update(w, 0);
    assert_int_equal(write(fds[1], "y", 1), 1);
    assert_int_equal(pl_loop_iterate(loop, 0), 0);
    c.poll->watch_update(w, PL_WATCH_IN);
    /* Both ready; the first callback run frees the other watch: only one runs. */
    assert_int_equal(write(fds2[1], "z", 1), 1);
    c.victim = w2;
    c2.victim = w;
    assert_int_equal(pl_loop_iterate(loop, 1000), 1);
    assert_int_equal(c.fired + c2.fired, 2);
    /* The survivor still works. */
    pl_watch *survivor = c.victim ? w : w2;
    (void)survivor;
    pl_loop_free(loop); /* frees the remaining watch */
    close(fds[0]); close(fds[1]); close(fds2[0]); close(fds2[1]);
}

static void test_get_fd_signals_readiness(void **state)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pl_loop *loop;
    assert_int_equal(pl_loop_new(&loop), PL_OK);
    counter c = {0};
    c.poll = pl_loop_get_poll(loop);
    assert_non_null(c.poll->watch_new(c.poll, fds[0], PL_WATCH_IN, on_readable, &c));
    int efd = pl_loop_get_fd(loop);
#ifdef __linux__
    assert_true(efd >= 0);
    struct pollfd pfd = {efd, POLLIN, 0};
    assert_int_equal(poll(&pfd, 1, 0), 0);
    assert_int_equal(write(fds[1], "x", 1), 1);
    assert_int_equal(poll(&pfd, 1, 1000), 1);
    assert_int_equal(pl_loop_process(loop), 1);
    assert_int_equal(c.fired, 1);
    assert_int_equal(poll(&pfd, 1, 0), 0);
#else
    assert_int_equal(efd, PL_ERR_UNSUPPORTED);
#endif
    pl_loop_free(loop);
    close(fds[0]);
    close(fds[1]);
}

static void quit_cb(pl_timeout *t, void *ud)
{
    pl_loop_quit(ud);
}

static void test_run_until_quit(void **state)
{
    pl_loop *loop;
    assert_int_equal(pl_loop_new(&loop), PL_OK);
    const pl_poll *p = pl_loop_get_poll(loop);
    pl_timeout *t = p->timeout_new(p, 5, quit_cb, loop);
    assert_int_equal(pl_loop_run(loop), PL_OK);
    p->timeout_free(t);
    pl_loop_free(loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_timeout_fires_once_and_not_inline),
        cmocka_unit_test(test_zero_timer_rearmed_in_callback_waits_an_iteration),
        cmocka_unit_test(test_watch_dispatch_update_and_free_in_callback),
        cmocka_unit_test(test_get_fd_signals_readiness),
        cmocka_unit_test(test_run_until_quit),
    };
    return cmocka_run_group_tests_name("loop", tests, NULL, NULL);
}
