# Makefile fragment, included by the top-level Makefile.am: the Apple
# backend (Network.framework discovery and sessions, docs/APPLE.md).
# Paths are relative to the top of the tree.

# The public header is installed everywhere: off Apple its functions
# exist and return PL_ERR_UNSUPPORTED (lib/apple/stubs.c).
pkginclude_HEADERS += include/peerlink/apple.h

# Platform-independent parts, also compiled into the Linux unit test.
APPLE_LOGIC_SOURCES = \
	lib/apple/hop.c lib/apple/hop.h \
	lib/apple/ledger.c lib/apple/ledger.h \
	lib/apple/logic.c lib/apple/logic.h \
	lib/apple/chan.c lib/apple/chan.h

if HAVE_APPLE
# configure defines PL_HAVE_APPLE, APPLE_CFLAGS (-fblocks) and APPLE_LIBS (-framework Network).
lib_libplcore_la_SOURCES += $(APPLE_LOGIC_SOURCES) \
	lib/apple/apple.c lib/apple/transport.c lib/apple/gcd_poll.c lib/apple/nw.h
lib_libplcore_la_CFLAGS += $(APPLE_CFLAGS)
lib_libplcore_la_LIBADD += $(APPLE_LIBS)
else
lib_libplcore_la_SOURCES += lib/apple/stubs.c
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

# Type check of lib/apple against a real Apple SDK (APPLE_SDK), and the
# Swift package's module map; both skip (77) without their tool or SDK.
TESTS += tests/apple_typecheck.sh tests/check_modulemap.sh

EXTRA_DIST += \
	tests/apple_typecheck.sh tests/check_modulemap.sh \
	bindings/swift
