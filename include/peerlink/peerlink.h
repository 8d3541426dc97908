/* SPDX-License-Identifier: ISC */
/*
 * peerlink — peer-to-peer messaging on local networks.
 * The umbrella header: include this one.
 */
#ifndef PEERLINK_PEERLINK_H
#define PEERLINK_PEERLINK_H

#include <peerlink/common.h>
#include <peerlink/node.h>
#include <peerlink/session.h>
#include <peerlink/discovery.h>
#include <peerlink/poll.h>
#include <peerlink/txt.h>

#endif
