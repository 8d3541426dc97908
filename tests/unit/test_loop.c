/* SPDX-License-Identifier: ISC */
/* Unit tests of the built-in event loop (lib/backends/posix/loop.c), on real pipes. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <poll.h>
#include <pthread.h>
#include <string.h>
#include <signal.h>
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

/* A timer already due right after an iteration that polled runs without
 * a poll(): the readable pipe is dispatched by the iteration after, which
 * polls again; pl_loop_process() never skips the poll. */
static void test_due_timer_runs_without_a_poll_every_other_iteration(void **state)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pl_loop *loop;
    assert_int_equal(pl_loop_new(&loop), PL_OK);
    counter tc = {0}, rc = {0};
    tc.poll = rc.poll = pl_loop_get_poll(loop);
    pl_timeout *t = tc.poll->timeout_new(tc.poll, -1, on_timeout, &tc);
    pl_watch *w = rc.poll->watch_new(rc.poll, fds[0], PL_WATCH_IN, on_readable, &rc);
    assert_non_null(t);
    assert_non_null(w);
    assert_int_equal(pl_loop_iterate(loop, 0), 0); /* polls: nothing ready */
    assert_int_equal(write(fds[1], "x", 1), 1);
    tc.poll->timeout_update(t, 0);
    assert_int_equal(pl_loop_iterate(loop, 1000), 1); /* the timer alone */
    assert_int_equal(tc.fired, 1);
    assert_int_equal(rc.fired, 0);
    tc.poll->timeout_update(t, 0);
    assert_int_equal(pl_loop_iterate(loop, 1000), 2); /* polls: the pipe, and the timer after it */
    assert_int_equal(rc.fired, 1);
    assert_int_equal(tc.fired, 2);
    /* pl_loop_process() always looks at the descriptors. */
    assert_int_equal(write(fds[1], "y", 1), 1);
    tc.poll->timeout_update(t, 0);
    assert_int_equal(pl_loop_process(loop), 2);
    assert_int_equal(rc.fired, 2);
    assert_int_equal(tc.fired, 3);
    tc.poll->timeout_free(t);
    pl_loop_free(loop);
    close(fds[0]);
    close(fds[1]);
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

/* ---------------------------------------------------------------- posting from other threads */

#define POSTS_PER_THREAD 2000

typedef struct post_log {
    pthread_t loop_thread;
    int wrong_thread;
    int out_of_order;
    int next[2];  /* the sequence number expected next from each poster */
    int ran;
} post_log;

typedef struct post_item {
    post_log *log;
    int thread, seq;
} post_item;

typedef struct poster {
    pl_loop *loop;
    post_item *items;
    int failed;
} poster;

static void on_post(void *arg)
{
    post_item *it = arg;
    post_log *l = it->log;
    if (!pthread_equal(pthread_self(), l->loop_thread))
        l->wrong_thread++;
    if (it->seq != l->next[it->thread])
        l->out_of_order++;
    l->next[it->thread] = it->seq + 1;
    l->ran++;
}

static void *poster_main(void *arg)
{
    poster *p = arg;
    for (int i = 0; i < POSTS_PER_THREAD; i++)
        if (pl_loop_post(p->loop, on_post, &p->items[i]) != PL_OK)
            p->failed++;
    return NULL;
}

static void test_posts_from_two_threads_run_once_in_order_in_the_loop_thread(void **state)
{
    pl_loop *loop;
    assert_int_equal(pl_loop_new(&loop), PL_OK);
    post_log log = {0};
    log.loop_thread = pthread_self();
    static post_item items[2][POSTS_PER_THREAD];
    poster posters[2];
    pthread_t th[2];
    for (int t = 0; t < 2; t++) {
        for (int i = 0; i < POSTS_PER_THREAD; i++)
            items[t][i] = (post_item){&log, t, i};
        posters[t] = (poster){loop, items[t], 0};
        assert_int_equal(pthread_create(&th[t], NULL, poster_main, &posters[t]), 0);
    }
    /* No timeout: every post wakes the loop, so this cannot hang unless a wake-up is lost. */
    while (log.ran < 2 * POSTS_PER_THREAD)
        assert_true(pl_loop_iterate(loop, -1) >= 0);
    for (int t = 0; t < 2; t++)
        assert_int_equal(pthread_join(th[t], NULL), 0);
    assert_int_equal(posters[0].failed + posters[1].failed, 0);
    assert_int_equal(log.ran, 2 * POSTS_PER_THREAD);
    assert_int_equal(log.next[0], POSTS_PER_THREAD);
    assert_int_equal(log.next[1], POSTS_PER_THREAD);
    assert_int_equal(log.wrong_thread, 0);
    assert_int_equal(log.out_of_order, 0);
    assert_int_equal(pl_loop_process(loop), 0); /* each ran once: nothing left */
    assert_int_equal(log.ran, 2 * POSTS_PER_THREAD);
    pl_loop_free(loop);
}

typedef struct repost {
    pl_loop *loop;
    int ran;
} repost;

static void on_repost(void *arg)
{
    repost *r = arg;
    if (r->ran++ == 0)
        assert_int_equal(pl_loop_post(r->loop, on_repost, r), PL_OK);
}

static void test_post_never_inline_and_repost_waits_an_iteration(void **state)
{
    pl_loop *loop;
    assert_int_equal(pl_loop_new(&loop), PL_OK);
    repost r = {loop, 0};
    assert_int_equal(pl_loop_post(NULL, on_repost, &r), PL_ERR_INVALID);
    assert_int_equal(pl_loop_post(loop, NULL, &r), PL_ERR_INVALID);
    assert_int_equal(pl_loop_post(loop, on_repost, &r), PL_OK);
    assert_int_equal(r.ran, 0); /* never inside pl_loop_post */
    assert_int_equal(pl_loop_process(loop), 1);
    assert_int_equal(r.ran, 1);
    assert_int_equal(pl_loop_process(loop), 1); /* posted from a posted function: the next round */
    assert_int_equal(r.ran, 2);
    assert_int_equal(pl_loop_process(loop), 0);
    /* One left queued at free is dropped, not run (and not leaked: valgrind / ASan check). */
    assert_int_equal(pl_loop_post(loop, on_repost, &r), PL_OK);
    pl_loop_free(loop);
    assert_int_equal(r.ran, 2);
}

static void *quitter_main(void *arg)
{
    pl_loop_quit(arg);
    return NULL;
}

static void test_quit_from_another_thread_ends_run(void **state)
{
    pl_loop *loop;
    assert_int_equal(pl_loop_new(&loop), PL_OK);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, quitter_main, loop), 0);
    /* No timer, no watch: only the quit's wake-up can end this (before or during the wait). */
    assert_int_equal(pl_loop_run(loop), PL_OK);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_true(pl_loop_process(loop) >= 0); /* runs again after the quit */
    pl_loop_free(loop);
}

static pl_loop *signal_loop;

static void on_sigusr1(int sig)
{
    (void)sig;
    pl_loop_wakeup(signal_loop);
    pl_loop_quit(signal_loop);
}

static void test_wakeup_and_quit_from_a_signal_handler(void **state)
{
    assert_int_equal(pl_loop_new(&signal_loop), PL_OK);
    pl_loop_wakeup(signal_loop);
    assert_int_equal(pl_loop_iterate(signal_loop, -1), 0); /* woken, nothing to dispatch: no hang */
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigusr1;
    assert_int_equal(sigaction(SIGUSR1, &sa, &old), 0);
    assert_int_equal(raise(SIGUSR1), 0);
    assert_int_equal(pl_loop_run(signal_loop), PL_OK);
    assert_int_equal(sigaction(SIGUSR1, &old, NULL), 0);
    pl_loop_free(signal_loop);
    signal_loop = NULL;
}

static void count_post(void *arg)
{
    ++*(int *)arg;
}

static void test_get_fd_signals_a_post(void **state)
{
    pl_loop *loop;
    assert_int_equal(pl_loop_new(&loop), PL_OK);
    int efd = pl_loop_get_fd(loop), ran = 0;
#ifdef __linux__
    assert_true(efd >= 0);
    struct pollfd pfd = {efd, POLLIN, 0};
    assert_int_equal(poll(&pfd, 1, 0), 0);
    assert_int_equal(pl_loop_post(loop, count_post, &ran), PL_OK);
    assert_int_equal(poll(&pfd, 1, 1000), 1);
    assert_int_equal(pl_loop_process(loop), 1);
    assert_int_equal(ran, 1);
    assert_int_equal(poll(&pfd, 1, 0), 0);
#else
    assert_int_equal(efd, PL_ERR_UNSUPPORTED);
#endif
    pl_loop_free(loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_timeout_fires_once_and_not_inline),
        cmocka_unit_test(test_zero_timer_rearmed_in_callback_waits_an_iteration),
        cmocka_unit_test(test_watch_dispatch_update_and_free_in_callback),
        cmocka_unit_test(test_due_timer_runs_without_a_poll_every_other_iteration),
        cmocka_unit_test(test_get_fd_signals_readiness),
        cmocka_unit_test(test_run_until_quit),
        cmocka_unit_test(test_posts_from_two_threads_run_once_in_order_in_the_loop_thread),
        cmocka_unit_test(test_post_never_inline_and_repost_waits_an_iteration),
        cmocka_unit_test(test_quit_from_another_thread_ends_run),
        cmocka_unit_test(test_wakeup_and_quit_from_a_signal_handler),
        cmocka_unit_test(test_get_fd_signals_a_post),
    };
    return cmocka_run_group_tests_name("loop", tests, NULL, NULL);
}
