/* SPDX-License-Identifier: ISC */
/* The dispatch-queue-to-loop event hop. See hop.h. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "backends/apple/hop.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

/* ---------------------------------------------------------------- reference counts */

void pl__ref_init(pl_ref *r)
{
    atomic_init(&r->n, 1);
}

void pl__ref_get(pl_ref *r)
{
    atomic_fetch_add_explicit(&r->n, 1, memory_order_relaxed);
}

int pl__ref_put(pl_ref *r)
{
    /* acq_rel: the destroyer sees every write made before other puts. */
    return atomic_fetch_sub_explicit(&r->n, 1, memory_order_acq_rel) == 1;
}

int pl__ref_count(pl_ref *r)
{
    return atomic_load_explicit(&r->n, memory_order_acquire);
}

/* ---------------------------------------------------------------- the hop */

struct pl_hop {
    pl_ref ref;
    pthread_mutex_t mu;
    pl_hop_event *head, **tail; /* under mu */
    size_t n;                   /* under mu */
    int closed;                 /* under mu (written), read anywhere via pl__hop_closed */
    int rfd, wfd;               /* wfd written under mu only while !closed */
    const pl_poll *poll;        /* loop thread */
    pl_watch *w;
};

static int set_flags(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return -1;
    return fcntl(fd, F_SETFD, FD_CLOEXEC);
}

static void hop_readable(pl_watch *w, int fd, unsigned events, void *userdata)
{
    (void)w;
    (void)fd;
    (void)events;
    pl__hop_drain(userdata);
}

int pl__hop_new(const pl_poll *poll, pl_hop **out)
{
    if (!poll || !out)
        return PL_ERR_INVALID;
    pl_hop *h = calloc(1, sizeof *h);
    if (!h)
        return PL_ERR_NOMEM;
    int fds[2];
    if (pipe(fds) < 0) {
        free(h);
        return PL_ERR_IO;
    }
    if (set_flags(fds[0]) < 0 || set_flags(fds[1]) < 0 || pthread_mutex_init(&h->mu, NULL) != 0) {
        close(fds[0]);
        close(fds[1]);
        free(h);
        return PL_ERR_IO;
    }
    pl__ref_init(&h->ref);
    h->tail = &h->head;
    h->rfd = fds[0];
    h->wfd = fds[1];
    h->poll = poll;
    h->w = poll->watch_new(poll, h->rfd, PL_WATCH_IN, hop_readable, h);
    if (!h->w) {
        pthread_mutex_destroy(&h->mu);
        close(fds[0]);
        close(fds[1]);
        free(h);
        return PL_ERR_NOMEM;
    }
    *out = h;
    return PL_OK;
}

int pl__hop_post(pl_hop *h, pl_hop_event *ev)
{
    ev->next = NULL;
    pthread_mutex_lock(&h->mu);
    if (h->closed) {
        pthread_mutex_unlock(&h->mu);
        ev->drop(ev);
        return PL_ERR_STATE;
    }
    int was_empty = h->head == NULL;
    *h->tail = ev;
    h->tail = &ev->next;
    h->n++;
    if (was_empty) {
        /* One byte per empty-to-busy transition. A full pipe (EAGAIN)
         * already holds an unread wake-up, so losing this one is fine. */
        static const char one = 1;
        ssize_t r;
        do
            r = write(h->wfd, &one, 1);
        while (r < 0 && errno == EINTR);
    }
    pthread_mutex_unlock(&h->mu);
    return PL_OK;
}

size_t pl__hop_drain(pl_hop *h)
{
    /* Read the wake-ups before taking the list: a post that comes after
     * the read either lands in the list taken below or writes a new byte. */
    char buf[64];
    while (read(h->rfd, buf, sizeof buf) > 0)
        ;
    pl__hop_retain(h); /* an event may close the hop */
    pthread_mutex_lock(&h->mu);
    pl_hop_event *list = h->closed ? NULL : h->head;
    if (!h->closed) {
        h->head = NULL;
        h->tail = &h->head;
        h->n = 0;
    }
    pthread_mutex_unlock(&h->mu);
    size_t ran = 0;
    while (list) {
        pl_hop_event *ev = list;
        list = ev->next;
        ev->next = NULL;
        if (pl__hop_closed(h)) {
            ev->drop(ev);
        } else {
            ev->run(ev);
            ran++;
        }
    }
    pl__hop_release(h);
    return ran;
}

void pl__hop_close(pl_hop *h)
{
    if (!h)
        return;
    pthread_mutex_lock(&h->mu);
    h->closed = 1;
    pl_hop_event *list = h->head;
    h->head = NULL;
    h->tail = &h->head;
    h->n = 0;
    pthread_mutex_unlock(&h->mu);
    if (h->w)
        h->poll->watch_free(h->w);
    h->w = NULL;
    while (list) {
        pl_hop_event *ev = list;
        list = ev->next;
        ev->drop(ev);
    }
    pl__hop_release(h);
}

void pl__hop_retain(pl_hop *h)
{
    pl__ref_get(&h->ref);
}

void pl__hop_release(pl_hop *h)
{
    if (!h || !pl__ref_put(&h->ref))
        return;
    close(h->rfd);
    close(h->wfd);
    pthread_mutex_destroy(&h->mu);
    free(h);
}

int pl__hop_closed(pl_hop *h)
{
    pthread_mutex_lock(&h->mu);
    int c = h->closed;
    pthread_mutex_unlock(&h->mu);
    return c;
}

size_t pl__hop_pending(pl_hop *h)
{
    pthread_mutex_lock(&h->mu);
    size_t n = h->n;
    pthread_mutex_unlock(&h->mu);
    return n;
}
