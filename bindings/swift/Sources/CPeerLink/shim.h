/* SPDX-License-Identifier: ISC */
/* Everything Swift sees of the C library: the public headers only. */
#ifndef PEERLINK_SWIFT_SHIM_H
#define PEERLINK_SWIFT_SHIM_H
#include <peerlink/peerlink.h>
#include <peerlink/keystore.h>
#include <peerlink/apple.h>
#endif
