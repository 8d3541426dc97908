#!/bin/sh
# SPDX-License-Identifier: ISC
# The Swift package's module map (bindings/swift) loads with clang -fmodules.
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/.." && pwd)}
exec "$top_srcdir/scripts/check-modulemap"
