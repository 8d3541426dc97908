/* SPDX-License-Identifier: ISC */
/* A connected socket as an application byte pipe, for tests. See sockpipe.h. */
#include "sockpipe.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0
#endif

struct sock_pipe {
    const pl_poll *poll;
    int fd;
    pl_watch *w;
    pl_channel *ch;
    int refused, ended;
};

static unsigned wanted(const sock_pipe *p, int out)
{
    return (p->refused || p->ended || !p->ch ? 0 : PL_WATCH_IN) | (out ? PL_WATCH_OUT : 0);
}

static long sp_write(void *ctx, const uint8_t *data, size_t len)
{
    sock_pipe *p = ctx;
    ssize_t n = send(p->fd, data, len, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
    if ((size_t)n < len)
        p->poll->watch_update(p->w, wanted(p, 1)); /* tell the session when it can write again */
    return (long)n;
}

static void sp_close(void *ctx)
{
    sock_pipe_free(ctx);
}

static void sp_input_ready(void *ctx)
{
    sock_pipe *p = ctx;
    p->refused = 0;
    p->poll->watch_update(p->w, wanted(p, 0));
}

static const pl_channel_ops ops = {sizeof(pl_channel_ops), sp_write, sp_close, sp_input_ready};

const pl_channel_ops *sock_pipe_ops(void)
{
    return &ops;
}

static void sp_io(pl_watch *w, int fd, unsigned events, void *ud)
{
    sock_pipe *p = ud;
    (void)w;
    if (!p->ch)
        return;
    if (events & PL_WATCH_OUT) {
        p->poll->watch_update(p->w, wanted(p, 0));
        pl_channel_writable(p->ch);
    }
    if (!(events & (PL_WATCH_IN | PL_WATCH_HUP | PL_WATCH_ERR)) || p->refused || p->ended)
        return;
    uint8_t buf[65536];
    ssize_t n = recv(fd, buf, sizeof buf, MSG_PEEK); /* taken only if the session takes it */
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        p->ended = 1;
        p->poll->watch_update(p->w, 0);
        if (n < 0)
            pl_channel_fail(p->ch, PL_ERR_IO);
        else
            pl_channel_input(p->ch, NULL, 0);
        return;
    }
    int rc = pl_channel_input(p->ch, buf, (size_t)n);
    if (rc == PL_ERR_AGAIN) {
        p->refused = 1;
        p->poll->watch_update(p->w, 0); /* until input_ready */
        return;
    }
    if (rc == PL_OK)
        (void)recv(fd, buf, (size_t)n, 0);
}

sock_pipe *sock_pipe_new(const pl_poll *poll, int fd)
{
    sock_pipe *p = calloc(1, sizeof *p);
    if (!p || fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0) {
        free(p);
        return NULL;
    }
    p->poll = poll;
    p->fd = fd;
    p->w = poll->watch_new(poll, fd, 0, sp_io, p);
    if (!p->w) {
        free(p);
        return NULL;
    }
    return p;
}

void sock_pipe_bind(sock_pipe *p, pl_channel *ch)
{
    p->ch = ch;
    p->poll->watch_update(p->w, wanted(p, 0));
}

void sock_pipe_free(sock_pipe *p)
{
    if (!p)
        return;
    p->poll->watch_free(p->w);
    close(p->fd);
    free(p);
}

int sock_pipe_fd(const sock_pipe *p)
{
    return p->fd;
}
