# SPDX-License-Identifier: ISC
# Makefile fragment, included by the top-level Makefile.am: the API
# reference, and the licence and change log that go with an installation.
# Paths are relative to the top of the tree.
#
# When configure found doxygen (HAVE_DOXYGEN), make builds the reference of
# the public headers into api/ of the build tree (not under docs/, which is
# distributed whole), from Doxyfile (made by configure from Doxyfile.in), and
# make install installs it:
#
#   api/html/   HTML, into $(apihtmldir) (/usr/local/share/doc/peerlink/api
#               by default); open index.html
#   api/man3/   man(3) pages, into $(man3dir): one per function (made by
#               docs/api-man.awk: man pl_connect), one per header
#               (man peerlink_session.h) and one per structure (man pl_poll)
#
# Doxygen's warnings are printed as make runs it. Without doxygen none of
# this is built or installed. tests/install.sh checks what make install puts
# where, and that make uninstall takes it all away again.

dist_doc_DATA = LICENSE CHANGELOG.md

apihtmldir = $(htmldir)/api
man3dir = $(mandir)/man3

if HAVE_DOXYGEN
API_DOCS = api/stamp
endif
noinst_DATA = $(API_DOCS)

# Doxygen writes its own man pages to api/doxygen-man; what is installed
# is gathered in api/man3: the function pages, the headers' pages under
# names of their own (peerlink_session.h.3, not session.h.3) and the
# structures' pages.
api/stamp: Doxyfile $(pkginclude_HEADERS) $(srcdir)/README.md $(srcdir)/docs/api-man.awk
	$(AM_V_GEN)rm -rf api && $(MKDIR_P) api/man3 && \
	$(DOXYGEN) Doxyfile && \
	for h in api/doxygen-man/man3/*.h.3; do \
	  page=peerlink_`basename $$h .3`; \
	  $(AWK) -v out=api/man3 -v see=$$page -f $(srcdir)/docs/api-man.awk $$h >/dev/null && \
	  cp $$h api/man3/$$page.3 || exit 1; \
	done && \
	for s in api/doxygen-man/man3/pl_*.3; do \
	  if test -f api/man3/`basename $$s`; then \
	    echo "$@: a structure and a function are both named `basename $$s .3`" >&2; exit 1; \
	  fi; \
	  cp $$s api/man3/ || exit 1; \
	done && \
	touch $@

# (Prerequisites, not recipes, of the -local targets: other fragments have those.)
install-data-local: install-api-docs
uninstall-local: uninstall-api-docs
install-api-docs: $(API_DOCS)
	@$(NORMAL_INSTALL)
	@if test -n '$(API_DOCS)'; then \
	  echo " installing the API reference into '$(DESTDIR)$(apihtmldir)' and '$(DESTDIR)$(man3dir)'"; \
	  $(MKDIR_P) '$(DESTDIR)$(man3dir)' && \
	  $(INSTALL_DATA) api/man3/*.3 '$(DESTDIR)$(man3dir)' && \
	  for d in `cd api/html && find . -type d`; do \
	    $(MKDIR_P) '$(DESTDIR)$(apihtmldir)'/$$d || exit 1; \
	  done && \
	  for f in `cd api/html && find . -type f`; do \
	    $(INSTALL_DATA) api/html/$$f '$(DESTDIR)$(apihtmldir)'/$$f || exit 1; \
	  done; \
	fi
# The names come from the build tree's pages (made again if they are gone).
uninstall-api-docs: $(API_DOCS)
	@$(NORMAL_UNINSTALL)
	@if test -n '$(API_DOCS)'; then \
	  for f in `cd api/man3 && echo *.3`; do rm -f '$(DESTDIR)$(man3dir)'/$$f; done; \
	  for f in `cd api/html && find . -type f`; do rm -f '$(DESTDIR)$(apihtmldir)'/$$f; done; \
	fi

clean-local: clean-api-docs
clean-api-docs:
	rm -rf api
.PHONY: install-api-docs uninstall-api-docs clean-api-docs
