/* SPDX-License-Identifier: ISC */
/*
 * The built-in event loop: poll(2) over a list of watches and a list
 * of timers. Objects freed during dispatch are only marked dead and
 * reclaimed after the dispatch, so any callback may free any watch or
 * timer, its own included. A timer armed during a dispatch never fires
 * in that same dispatch, so a 0 ms timer cannot starve I/O.
 *
 * On Linux an epoll descriptor mirrors the watches for pl_loop_get_fd(),
 * created the first time it is asked for.
 *
 * Other threads (and signal handlers) reach the loop through one wake-up
 * descriptor (an eventfd on Linux, else a pipe) that poll() and the epoll
 * descriptor always watch: pl_loop_wakeup() writes to it, pl_loop_quit()
 * sets an atomic flag and wakes, pl_loop_post() pushes onto a lock-free
 * stack (many producers, the loop the only consumer, which takes the whole
 * stack at once, so no ABA) and wakes.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/epoll.h>
#include <sys/eventfd.h>
#endif

struct pl_watch {
    pl_loop *loop;
    struct pl_watch *next;
    int fd;
    unsigned events;
    pl_watch_cb cb;
    void *userdata;
    int dead;
    int pollidx; /* index in this dispatch's pollfd array, -1 if not polled */
};

struct pl_timeout {
    pl_loop *loop;
    struct pl_timeout *next;
    int armed;
    int64_t due_ms;        /* monotonic */
    uint64_t armed_iter;   /* iteration in which it was armed */
    pl_timeout_cb cb;
    void *userdata;
    int dead;
};

/* A function posted by pl_loop_post(). */
struct pl_post {
    struct pl_post *next;
    void (*fn)(void *);
    void *arg;
};

struct pl_loop {
    pl_poll api;
    struct pl_watch *watches;
    struct pl_timeout *timeouts;
    struct pollfd *pfds;
    size_t pfds_cap;
    uint64_t iter;
    atomic_int quit;
    int epfd;
    int wake_rd, wake_wr; /* the same eventfd on Linux; a pipe's ends elsewhere */
    _Atomic(struct pl_post *) posts; /* newest first */
    int polled;                      /* the last iteration called poll() */
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static short to_poll_events(unsigned ev)
{
    short e = 0;
    if (ev & PL_WATCH_IN)
        e |= POLLIN;
    if (ev & PL_WATCH_OUT)
        e |= POLLOUT;
    return e;
}

static unsigned from_poll_events(short re)
{
    unsigned ev = 0;
    if (re & POLLIN)
        ev |= PL_WATCH_IN;
    if (re & POLLOUT)
        ev |= PL_WATCH_OUT;
    if (re & (POLLERR | POLLNVAL))
        ev |= PL_WATCH_ERR;
    if (re & POLLHUP)
        ev |= PL_WATCH_HUP;
    return ev;
}

#ifdef __linux__
static void ep_sync(pl_loop *loop, struct pl_watch *w, int op)
{
    if (loop->epfd < 0)
        return;
    struct epoll_event ee = {0};
    if (w->events & PL_WATCH_IN)
        ee.events |= EPOLLIN;
    if (w->events & PL_WATCH_OUT)
        ee.events |= EPOLLOUT;
    ee.data.ptr = w;
    /* Failures (e.g. the same fd watched twice) only weaken the wake-up
     * hint; pl_loop_process() still polls every watch itself. */
    (void)epoll_ctl(loop->epfd, op, w->fd, &ee);
}
#else
#define EPOLL_CTL_ADD 0
#define EPOLL_CTL_MOD 0
#define EPOLL_CTL_DEL 0
static void ep_sync(pl_loop *loop, struct pl_watch *w, int op)
{
    (void)loop; (void)w; (void)op;
}
#endif

static pl_watch *loop_watch_new(const pl_poll *api, int fd, unsigned events, pl_watch_cb cb,
                                void *userdata)
{
    pl_loop *loop = api->userdata;
    if (fd < 0 || !cb)
        return NULL;
    struct pl_watch *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->loop = loop;
    w->fd = fd;
    w->events = events;
    w->cb = cb;
    w->userdata = userdata;
    w->pollidx = -1;
    w->next = loop->watches;
    loop->watches = w;
    ep_sync(loop, w, EPOLL_CTL_ADD);
    return w;
}

static void loop_watch_update(pl_watch *w, unsigned events)
{
    w->events = events;
    ep_sync(w->loop, w, EPOLL_CTL_MOD);
}

static void loop_watch_free(pl_watch *w)
{
    if (!w)
        return;
    ep_sync(w->loop, w, EPOLL_CTL_DEL);
    w->dead = 1; /* reclaimed by sweep() */
}

static void timeout_arm(struct pl_timeout *t, int ms)
{
    if (ms < 0) {
        t->armed = 0;
        return;
    }
    t->armed = 1;
    t->due_ms = now_ms() + ms;
    t->armed_iter = t->loop->iter;
}

static pl_timeout *loop_timeout_new(const pl_poll *api, int ms, pl_timeout_cb cb, void *userdata)
{
    pl_loop *loop = api->userdata;
    if (!cb)
        return NULL;
    struct pl_timeout *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->loop = loop;
    t->cb = cb;
    t->userdata = userdata;
    timeout_arm(t, ms);
    t->next = loop->timeouts;
    loop->timeouts = t;
    return t;
}

static void loop_timeout_update(pl_timeout *t, int ms)
{
    timeout_arm(t, ms);
}

static void loop_timeout_free(pl_timeout *t)
{
    if (!t)
        return;
    t->armed = 0;
    t->dead = 1;
}

/* Reclaim dead watches and timers; only outside dispatch. */
static void sweep(pl_loop *loop)
{
    for (struct pl_watch **pw = &loop->watches; *pw;) {
        struct pl_watch *w = *pw;
        if (w->dead) {
            *pw = w->next;
            free(w);
        } else {
            pw = &w->next;
        }
    }
    for (struct pl_timeout **pt = &loop->timeouts; *pt;) {
        struct pl_timeout *t = *pt;
        if (t->dead) {
            *pt = t->next;
            free(t);
        } else {
            pt = &t->next;
        }
    }
}

int pl_loop_new(pl_loop **out)
{
    if (!out)
        return PL_ERR_INVALID;
    pl_loop *loop = calloc(1, sizeof *loop);
    if (!loop)
        return PL_ERR_NOMEM;
    loop->api.size = sizeof loop->api;
    loop->api.userdata = loop;
    loop->api.watch_new = loop_watch_new;
    loop->api.watch_update = loop_watch_update;
    loop->api.watch_free = loop_watch_free;
    loop->api.timeout_new = loop_timeout_new;
    loop->api.timeout_update = loop_timeout_update;
    loop->api.timeout_free = loop_timeout_free;
    loop->epfd = -1;
#ifdef __linux__
    loop->wake_rd = loop->wake_wr = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (loop->wake_rd < 0) {
        int err = pl__errno_error(errno);
        free(loop);
        return err;
    }
#else
    int p[2];
    if (pipe(p) != 0) {
        int err = pl__errno_error(errno);
        free(loop);
        return err;
    }
    for (int i = 0; i < 2; i++) {
        fcntl(p[i], F_SETFD, FD_CLOEXEC);
        fcntl(p[i], F_SETFL, fcntl(p[i], F_GETFL) | O_NONBLOCK);
    }
    loop->wake_rd = p[0];
    loop->wake_wr = p[1];
#endif
    atomic_init(&loop->quit, 0);
    atomic_init(&loop->posts, NULL);
    *out = loop;
    return PL_OK;
}

void pl_loop_free(pl_loop *loop)
{
    if (!loop)
        return;
    for (struct pl_watch *w = loop->watches; w; w = w->next)
        w->dead = 1;
    for (struct pl_timeout *t = loop->timeouts; t; t = t->next)
        t->dead = 1;
    sweep(loop);
    for (struct pl_post *p = atomic_exchange(&loop->posts, NULL), *next; p; p = next) {
        next = p->next; /* never run: see pl_loop_free() in poll.h */
        free(p);
    }
    if (loop->epfd >= 0)
        close(loop->epfd);
    if (loop->wake_wr != loop->wake_rd)
        close(loop->wake_wr);
    close(loop->wake_rd);
    free(loop->pfds);
    free(loop);
}

void pl_loop_wakeup(pl_loop *loop)
{
    if (!loop)
        return;
    int saved = errno; /* a signal handler's caller must not see it change */
    uint64_t one = 1;
    /* A full eventfd counter or pipe (EAGAIN) is already a pending wake-up. */
#ifdef __linux__
    ssize_t r = write(loop->wake_wr, &one, sizeof one);
#else
    ssize_t r = write(loop->wake_wr, &one, 1);
#endif
    (void)r;
    errno = saved;
}

int pl_loop_post(pl_loop *loop, void (*fn)(void *arg), void *arg)
{
    if (!loop || !fn)
        return PL_ERR_INVALID;
    struct pl_post *p = malloc(sizeof *p);
    if (!p)
        return PL_ERR_NOMEM;
    p->fn = fn;
    p->arg = arg;
    p->next = atomic_load(&loop->posts);
    while (!atomic_compare_exchange_weak(&loop->posts, &p->next, p))
        ;
    pl_loop_wakeup(loop);
    return PL_OK;
}

/* Empty the wake-up descriptor, then run what was posted, oldest first.
 * Functions posted meanwhile wait for the next iteration (the descriptor
 * is readable again by then), so posting from a posted function cannot
 * starve I/O. Returns how many ran. */
static int run_posts(pl_loop *loop)
{
    uint64_t buf[8];
    while (read(loop->wake_rd, buf, sizeof buf) > 0)
        ;
    struct pl_post *p = atomic_exchange(&loop->posts, NULL), *fifo = NULL;
    while (p) {
        struct pl_post *next = p->next;
        p->next = fifo;
        fifo = p;
        p = next;
    }
    int ran = 0;
    while (fifo) {
        struct pl_post *next = fifo->next;
        fifo->fn(fifo->arg);
        free(fifo);
        fifo = next;
        ran++;
    }
    return ran;
}

const pl_poll *pl_loop_get_poll(pl_loop *loop)
{
    return loop ? &loop->api : NULL;
}

int pl_loop_next_timeout(pl_loop *loop)
{
    int64_t best = -1, now = now_ms();
    for (struct pl_timeout *t = loop->timeouts; t; t = t->next) {
        if (!t->armed || t->dead)
            continue;
        int64_t d = t->due_ms - now;
        if (d < 0)
            d = 0;
        if (best < 0 || d < best)
            best = d;
    }
    if (best > INT32_MAX)
        best = INT32_MAX;
    return (int)best;
}

/* The timers that are due, each once (not one armed during this iteration). */
static int run_timers(pl_loop *loop)
{
    int ran = 0;
    int64_t now = now_ms();
    for (struct pl_timeout *t = loop->timeouts; t; t = t->next) {
        if (t->dead || !t->armed || t->armed_iter == loop->iter || t->due_ms > now)
            continue;
        t->armed = 0;
        t->cb(t, t->userdata);
        ran++;
    }
    return ran;
}

int pl_loop_iterate(pl_loop *loop, int timeout_ms)
{
    if (!loop)
        return PL_ERR_INVALID;
    if (atomic_load(&loop->quit))
        return PL_ERR_STATE;

    int wait = pl_loop_next_timeout(loop);
    /* A timer already due - something owed at once, such as a session's
     * PL_SESSION_DRAINED after a send that the socket took whole - runs
     * without a poll() when the iteration before this one polled: a
     * system call saved, and every other iteration still looks at the
     * descriptors. Not in pl_loop_process() (timeout 0): an application
     * calls it because the descriptors are ready. */
    if (wait == 0 && timeout_ms != 0 && loop->polled && !atomic_load(&loop->posts)) {
        loop->polled = 0;
        loop->iter++;
        int ran = run_timers(loop);
        sweep(loop);
        return ran;
    }
    loop->polled = 1;

    size_t n = 1; /* [0]: the wake-up descriptor */
    for (struct pl_watch *w = loop->watches; w; w = w->next)
        if (!w->dead)
            n++;
    if (n > loop->pfds_cap) {
        struct pollfd *p = realloc(loop->pfds, n * sizeof *p);
        if (!p)
            return PL_ERR_NOMEM;
        loop->pfds = p;
        loop->pfds_cap = n;
    }
    loop->pfds[0].fd = loop->wake_rd;
    loop->pfds[0].events = POLLIN;
    loop->pfds[0].revents = 0;
    size_t i = 1;
    for (struct pl_watch *w = loop->watches; w; w = w->next) {
        w->pollidx = -1;
        if (w->dead)
            continue;
        loop->pfds[i].fd = w->fd;
        loop->pfds[i].events = to_poll_events(w->events);
        loop->pfds[i].revents = 0;
        w->pollidx = (int)i++;
    }

    if (timeout_ms >= 0 && (wait < 0 || timeout_ms < wait))
        wait = timeout_ms;
    if (atomic_load(&loop->posts))
        wait = 0; /* already posted: no need to sleep until the wake-up is seen */
    int r = poll(loop->pfds, (nfds_t)n, wait);
    if (r < 0) {
        if (errno == EINTR)
            return 0;
        return PL_ERR_IO;
    }

    int dispatched = 0;
    loop->iter++;
    if (loop->pfds[0].revents || atomic_load(&loop->posts))
        dispatched += run_posts(loop);
    for (struct pl_watch *w = loop->watches; w; w = w->next) {
        if (w->dead || w->pollidx < 0)
            continue;
        short re = loop->pfds[w->pollidx].revents;
        unsigned ev = from_poll_events(re) & (w->events | PL_WATCH_ERR | PL_WATCH_HUP);
        if (!ev)
            continue;
        w->cb(w, w->fd, ev, w->userdata);
        dispatched++;
    }
    dispatched += run_timers(loop);
    sweep(loop);
    return dispatched;
}

int pl_loop_run(pl_loop *loop)
{
    if (!loop)
        return PL_ERR_INVALID;
    for (;;) {
        int r = pl_loop_iterate(loop, -1);
        if (r == PL_ERR_STATE) {
            atomic_store(&loop->quit, 0);
            return PL_OK;
        }
        if (r < 0)
            return r;
    }
}

void pl_loop_quit(pl_loop *loop)
{
    if (!loop)
        return;
    atomic_store(&loop->quit, 1);
    pl_loop_wakeup(loop);
}

int pl_loop_process(pl_loop *loop)
{
    return pl_loop_iterate(loop, 0);
}

int pl_loop_get_fd(pl_loop *loop)
{
    if (!loop)
        return PL_ERR_INVALID;
#ifdef __linux__
    if (loop->epfd < 0) {
        loop->epfd = epoll_create1(EPOLL_CLOEXEC);
        if (loop->epfd < 0)
            return PL_ERR_IO;
        struct epoll_event ee = {0};
        ee.events = EPOLLIN;
        ee.data.ptr = NULL; /* the wake-up descriptor */
        if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, loop->wake_rd, &ee) != 0) {
            close(loop->epfd);
            loop->epfd = -1;
            return PL_ERR_IO;
        }
        for (struct pl_watch *w = loop->watches; w; w = w->next)
            if (!w->dead)
                ep_sync(loop, w, EPOLL_CTL_ADD);
    }
    return loop->epfd;
#else
    return PL_ERR_UNSUPPORTED;
#endif
}
