/* SPDX-License-Identifier: ISC */
/*
 * The "inproc" link (inproc.c): two ends joined in memory, for tests.
 * Not installed. An end is a pl_link: give one to pl__session_new_on()
 * or pl__session_relink() (session_internal.h), the other to a
 * listener with pl__listener_take().
 */
#ifndef PL_BACKENDS_INPROC_H
#define PL_BACKENDS_INPROC_H

#include "session_internal.h"

/* Two new ends of one in-memory pipe, run on poll. PL_OK, PL_ERR_INVALID, PL_ERR_NOMEM. */
int pl__inproc_pair(const pl_poll *poll, pl_link **a, pl_link **b);
/* Cut the pipe at end: from the loop its link fails with status (the other
 * end then reads the end of its input, as after a TCP FIN). */
void pl__inproc_cut(pl_link *end, int status);

#endif
