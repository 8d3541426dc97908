/* SPDX-License-Identifier: ISC */
/*
 * A connected socket as an application byte pipe (pl_channel_ops), for
 * tests: it stands for a transport the application runs itself - a
 * Network.framework connection, a Wi-Fi Aware data path - whose bytes
 * reach peerlink through pl_channel_input(). Input is taken from the
 * socket only when the session takes it (MSG_PEEK first), so nothing is
 * lost when the session refuses it (PL_ERR_AGAIN).
 */
#ifndef PL_TEST_SOCKPIPE_H
#define PL_TEST_SOCKPIPE_H

#include <peerlink/peerlink.h>

typedef struct sock_pipe sock_pipe;

/* A pipe over fd (taken over: closed when the session lets go of it,
 * through ops->close, which also frees the pipe). NULL on failure (fd
 * untouched). Give sock_pipe_ops() and the pipe as ctx to
 * pl_session_new_channel(), pl_session_attach_channel() or
 * pl_listener_add_channel(), then sock_pipe_bind() the pl_channel. */
sock_pipe *sock_pipe_new(const pl_poll *poll, int fd);
const pl_channel_ops *sock_pipe_ops(void);
/* Start moving bytes to ch. */
void sock_pipe_bind(sock_pipe *p, pl_channel *ch);
/* Free a pipe that no session took (closes fd). */
void sock_pipe_free(sock_pipe *p);
int sock_pipe_fd(const sock_pipe *p);

#endif
