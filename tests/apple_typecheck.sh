#!/bin/sh
# SPDX-License-Identifier: ISC
# The Apple type check (scripts/apple-typecheck) as part of make check.
#
# It needs an Apple SDK tree, given by APPLE_SDK (e.g. a checkout of
# palera1n/BridgeOS.sdk outside this tree). Without one it exits 77 and
# automake counts it as SKIP.
#
# On CI=true: the project's rule that a skip fails under CI is for the
# integration tests, whose daemons CI can always provide. This is not
# an integration test but a platform check, and its input cannot be in
# CI: the SDK may not be committed (licence) and CI has no network to
# fetch it. So it skips under CI=true too, and says so; CI that does
# have an SDK sets APPLE_SDK and the check then runs and must pass.
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
if [ -z "${APPLE_SDK:-}" ]; then
	echo "apple_typecheck: skipped: no Apple SDK (set APPLE_SDK to a BridgeOS.sdk checkout)"
	[ "${CI:-}" = true ] && echo "apple_typecheck: (CI=true: a platform check, not an integration test; its SDK cannot be in CI)"
	exit 77
fi
exec "$top_srcdir/scripts/apple-typecheck" "$APPLE_SDK"
