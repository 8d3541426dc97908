# SPDX-License-Identifier: ISC
# Makefile fragment, included by the top-level Makefile.am: the experimental
# Wi-Fi Aware discovery backend "nan" (docs/WIFI-AWARE.md). Paths are relative
# to the top of the tree.

if HAVE_NAN
# The Service ID and service-info codec (ssi.c) and the wpa_supplicant client (wpas.c).
lib_libplcore_la_SOURCES += lib/backends/nan/nan.h lib/backends/nan/ssi.c lib/backends/nan/wpas.c

# The unit test runs the backend against a stand-in for wpa_supplicant's control
# socket (tests/helpers/wpas-standin.py, under /usr/bin/python3); the shell test
# runs plcat --backend nan where no NAN-capable wpa_supplicant is.
if HAVE_CMOCKA
UNIT_TESTS += tests/unit/test_nan
tests_unit_test_nan_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_nan_LDADD = $(TEST_LIBS)
endif
TESTS += tests/nan_plcat.sh
endif

EXTRA_DIST += tests/helpers/wpas-standin.py tests/nan_plcat.sh
