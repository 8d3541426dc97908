# SPDX-License-Identifier: ISC
# Makefile fragment, included by the top-level Makefile.am: the Apple
# backend (Network.framework discovery and sessions, docs/APPLE.md).
# Paths are relative to the top of the tree.

# The public header is installed everywhere: off Apple its functions
# exist and return PL_ERR_UNSUPPORTED (lib/backends/apple/stubs.c).
pkginclude_HEADERS += include/peerlink/apple.h

# Platform-independent parts, also compiled into the Linux unit test.
APPLE_LOGIC_SOURCES = \
	lib/backends/apple/hop.c lib/backends/apple/hop.h \
	lib/backends/apple/ledger.c lib/backends/apple/ledger.h \
	lib/backends/apple/logic.c lib/backends/apple/logic.h \
	lib/backends/apple/chan.c lib/backends/apple/chan.h

if HAVE_APPLE
# configure defines PL_HAVE_APPLE, APPLE_CFLAGS (-fblocks) and APPLE_LIBS (-framework Network).
lib_libplcore_la_SOURCES += $(APPLE_LOGIC_SOURCES) \
	lib/backends/apple/apple.c lib/backends/apple/transport.c lib/backends/apple/gcd_poll.c lib/backends/apple/nw.h
lib_libplcore_la_CFLAGS += $(APPLE_CFLAGS)
lib_libplcore_la_LIBADD += $(APPLE_LIBS)
else
lib_libplcore_la_SOURCES += lib/backends/apple/stubs.c
endif

# ---------------------------------------------------------------- tests
# The platform-independent logic runs on Linux (and anywhere cmocka is).
if HAVE_CMOCKA
UNIT_TESTS += tests/unit/test_apple_logic
tests_unit_test_apple_logic_SOURCES = tests/unit/test_apple_logic.c
if !HAVE_APPLE
# On Apple these are in libplcore already.
tests_unit_test_apple_logic_SOURCES += $(APPLE_LOGIC_SOURCES)
endif
tests_unit_test_apple_logic_CFLAGS = $(TEST_CFLAGS) -pthread
tests_unit_test_apple_logic_LDADD = $(TEST_LIBS)
tests_unit_test_apple_logic_LDFLAGS = -pthread
endif

# Type check of lib/backends/apple against a real Apple SDK (APPLE_SDK), and the
# Swift package's module map; both skip (77) without their tool or SDK.
TESTS += tests/apple_typecheck.sh tests/check_modulemap.sh

EXTRA_DIST += \
	tests/apple_typecheck.sh tests/check_modulemap.sh \
	bindings/swift

# ---------------------------------------------------------------- Swift
# PeerLink for Swift (bindings/swift): swift build and swift test on this
# machine against the library of this tree (tests/swift.sh; the README's
# test command runs it). Its builds go to swift/ in the build tree.
check-swift: all
	top_srcdir="$(top_srcdir)" top_builddir="$(top_builddir)" $(SHELL) $(srcdir)/tests/swift.sh
clean-local:
	rm -rf swift
.PHONY: check-swift
EXTRA_DIST += tests/swift.sh
