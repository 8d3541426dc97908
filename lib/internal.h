/* Internal helpers shared by the library's sources. Not installed. */
#ifndef PL_INTERNAL_H
#define PL_INTERNAL_H

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <peerlink/peerlink.h>

/* Duplicate a NUL-terminated string; NULL on allocation failure or NULL input. */
char *pl__strdup(const char *s);

#endif
