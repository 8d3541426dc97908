# SPDX-License-Identifier: ISC
# Makefile fragment, included by the top-level Makefile.am: the built-in
# mDNS/DNS-SD engine (docs/MDNS.md). Paths are relative to the top of the
# tree; TESTS is expanded lazily, so the += below reach it.

# ---------------------------------------------------------------- library
# The DNS message codec (dns.c), the sans-I/O engine (engine.c) and the
# socket shell that makes it the "mdns" discovery backend (socket.c).
lib_libplcore_la_CPPFLAGS += -DPL_HAVE_MDNS
lib_libplcore_la_SOURCES += \
	lib/mdns/dns.c lib/mdns/dns.h \
	lib/mdns/engine.c lib/mdns/engine.h lib/mdns/engine_int.h \
	lib/mdns/publish.c lib/mdns/input.c lib/mdns/browse.c \
	lib/backends/mdns/socket.c

# ---------------------------------------------------------------- unit tests
if HAVE_CMOCKA
UNIT_TESTS += tests/unit/test_dns tests/unit/test_mdns
tests_unit_test_dns_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_dns_LDADD = $(TEST_LIBS)
tests_unit_test_mdns_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_mdns_LDADD = $(TEST_LIBS)
endif

# ---------------------------------------------------------------- fuzzing
if ENABLE_FUZZING
FUZZ_TARGETS += tests/fuzz/fuzz_dns tests/fuzz/fuzz_mdns
tests_fuzz_fuzz_dns_CFLAGS = $(AM_CFLAGS) -fsanitize=fuzzer
tests_fuzz_fuzz_dns_LDADD = lib/libplcore.la
tests_fuzz_fuzz_mdns_CFLAGS = $(AM_CFLAGS) -fsanitize=fuzzer
tests_fuzz_fuzz_mdns_LDADD = lib/libplcore.la
endif

# ---------------------------------------------------------------- integration tests
INTEGRATION_TESTS += \
	tests/integration/mdns_loopback.sh \
	tests/integration/mdns_two_hosts.sh \
	tests/integration/mdns_avahi.sh \
	tests/integration/mdns_zeroconf.sh \
	tests/integration/mdns_legacy_offlink.sh \
	tests/integration/browse_types.sh

EXTRA_DIST += tests/fuzz/fuzz_dns.c tests/fuzz/fuzz_mdns.c
