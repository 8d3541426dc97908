#!/bin/bash
# SPDX-License-Identifier: ISC
# resume_relay_channel: resume_relay.sh over application pipes: every link
# of the session is a socket the test helper runs itself and hands to
# peerlink as a channel (pl_listener_add_channel on the accepting side,
# pl_session_new_channel / pl_session_attach_channel on the dialling side), as an
# app over Network.framework, Wi-Fi Aware or BLE would.
PL_RESUME_LINKS=channel exec "$(dirname "$0")/resume_relay.sh" "$@"
