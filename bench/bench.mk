# SPDX-License-Identifier: ISC
# Makefile fragment, included by the top-level Makefile.am.
#
# The benchmarks (issue 7): built only by `make bench` / `make bench-quick`,
# never by `make`, `make check` or `make install`. docs/PERFORMANCE.md
# says what each case measures.
#
#   make bench         full run (well under five minutes), prints the table
#   make bench-quick   the same with small counts (well under a minute), for CI
#
# BENCH_ARGS adds options, e.g. make bench BENCH_ARGS=--only=tput,rtt

EXTRA_PROGRAMS += bench/peerlink-bench
bench_peerlink_bench_SOURCES = bench/peerlink-bench.c
bench_peerlink_bench_CPPFLAGS = $(AM_CPPFLAGS) $(OPENSSL_CFLAGS)
bench_peerlink_bench_CFLAGS = $(AM_CFLAGS) -pthread $(SODIUM_CFLAGS) $(PROTOBUF_C_CFLAGS)
# libplcore (not libpeerlink): the in-process cases drive lib/core's engine directly.
bench_peerlink_bench_LDADD = lib/libplcore.la $(OPENSSL_LIBS)
bench_peerlink_bench_LDFLAGS = -pthread
if HAVE_OPENSSL
bench_peerlink_bench_CPPFLAGS += -DPL_BENCH_OPENSSL
endif
CLEANFILES += bench/peerlink-bench$(EXEEXT)
EXTRA_DIST += bench/discovery-sandbox.sh

BENCH_ENV = top_srcdir='$(abs_top_srcdir)' top_builddir='$(abs_top_builddir)'

bench: bench/peerlink-bench$(EXEEXT)
	$(BENCH_ENV) bench/peerlink-bench$(EXEEXT) $(BENCH_ARGS)

bench-quick: bench/peerlink-bench$(EXEEXT)
	$(BENCH_ENV) bench/peerlink-bench$(EXEEXT) --quick $(BENCH_ARGS)

.PHONY: bench bench-quick
