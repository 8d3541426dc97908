# SPDX-License-Identifier: ISC
# Makefile fragment, included by the top-level Makefile.am: the examples of
# the public API (README.md, "Examples"), the systemd unit that runs the
# accessory as a daemon, and plcat's bash completion. Paths are relative to
# the top of the tree.

# ---------------------------------------------------------------- programs
# An accessory (publishes itself, pairs with a code, echoes every message
# with flow control) and its client. Built, not installed: they are code to
# read; tests/integration/examples.sh runs them.
noinst_PROGRAMS += examples/accessory examples/client
examples_accessory_SOURCES = examples/accessory.c
examples_accessory_LDADD = lib/libpeerlink.la
examples_accessory_DEPENDENCIES = $(PL_LIB)
examples_client_SOURCES = examples/client.c
examples_client_LDADD = lib/libpeerlink.la
examples_client_DEPENDENCIES = $(PL_LIB)

# The sources and the systemd unit go to $(docdir)/examples, to copy from.
exampledocdir = $(docdir)/examples
dist_exampledoc_DATA = examples/accessory.c examples/client.c examples/peerlink-accessory.service

# ---------------------------------------------------------------- bash completion
# Where bash-completion looks under this prefix. With another prefix than
# bash-completion's own, install into its directory instead:
#   make install bashcompletiondir="$(pkg-config --variable=completionsdir bash-completion)"
bashcompletiondir = $(datadir)/bash-completion/completions
EXTRA_DIST += examples/plcat.bash
# Installed under the command's name, where bash-completion looks for it.
# (Prerequisites, not recipes, of the -local targets: other fragments have those.)
install-data-local: install-plcat-completion
uninstall-local: uninstall-plcat-completion
install-plcat-completion:
	$(MKDIR_P) '$(DESTDIR)$(bashcompletiondir)'
	$(INSTALL_DATA) '$(srcdir)/examples/plcat.bash' '$(DESTDIR)$(bashcompletiondir)/plcat'
uninstall-plcat-completion:
	rm -f '$(DESTDIR)$(bashcompletiondir)/plcat'
.PHONY: install-plcat-completion uninstall-plcat-completion

# ---------------------------------------------------------------- tests
INTEGRATION_TESTS += tests/integration/examples.sh
TESTS += tests/completion.sh
EXTRA_DIST += tests/completion.sh
