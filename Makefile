# postern: build, test, demo, bench, install.
#
#   make deps      install the Debian packages the tests and tools need (root)
#   make build     cargo build --release
#   make test      deps + build + every test (a private Postfix included) + man page lint
#   make demo      a private Postfix with postern as its filter; shows where mail goes
#   make bench     throughput of Postfix alone, with postern (with and without
#                  the rewriter), with a shell filter
#   make bench-rewriter  postern-rewriter with 1,000,000 aliases: lookup p50/p99,
#                  recipients/s vs postsrsd, SRS vs srslib (bench/rewriter-bench.sh)
#   make bench-queue  the retry queue: an idle run over 100,000 jobs, 10,000 due
#                  jobs vs smtp-source, DSN build time and bouncer RSS
#                  (bench/queue-bench.sh)
#   make bench-encryptor  postern-encryptor: 2,000 x 10 KB vs a gpg --encrypt
#                  shell loop, python-gnupg and gpgme per message; RSS with a
#                  25 MB message (BENCH_ENC_N; bench/encryptor-bench.sh)
#   make bench-scanner  postern-scanner: 1,000 x 146 KB vs a clamdscan shell loop
#                  and a bare zINSTREAM client on one private clamd; the MIME walk
#                  and RSS of a 25 MB message of 500 parts (BENCH_SCAN_N,
#                  BENCH_SCAN_ONLY=baselines; bench/scanner-bench.sh)
#   make bench-sync  postern-alias sync: a Launchpad team of 2,500 at 20 ms a
#                  request, full and no-change runs vs a bare fetch of the same
#                  pages and persons (BENCH_SYNC_N; bench/sync-bench.sh)
#   make bench-maildb  postern-maildb: merge, deliver vs procmail, FTS5 search,
#                  export and import of 1 GiB (BENCH_ONLY=exchange; bench/maildb.sh)
#   make install   PREFIX=/usr/local DESTDIR= : binaries, man pages, filter script, examples
#   make clean

PREFIX ?= /usr/local
DESTDIR ?=
BINDIR ?= $(PREFIX)/bin
LIBEXECDIR ?= $(PREFIX)/libexec/postern
MANDIR ?= $(PREFIX)/share/man
DOCDIR ?= $(PREFIX)/share/doc/postern
# Values written into the installed master.cf example and cron file.
POSTERN_USER ?= postern
POSTERN_CONFIG ?= /etc/postern/postern.toml

CARGO ?= cargo
BINS = postern-receiver postern-scanner postern-rewriter postern-encryptor postern-deliverer postern-bouncer postern-queue postern-maildb postern-alias
RELEASE = target/release

# Debian packages: postfix (with smtp-sink and smtp-source), swaks (SMTP
# client for the demo), mandoc (man page lint), time (/usr/bin/time -v),
# hyperfine (start-up times), iproute2 (ss), procps, util-linux (runuser, flock),
# mutt (reads the mbox export in tests/maildb_mutt.rs) and bsdutils (script(1),
# the terminal mutt runs in there), python3-venv (srslib for SRS interop and
# bench), dnsmasq-base (a local DNS server for alias TXT records), postsrsd
# and libmail-srs-perl (SRS peers: bench and interop), python3-dkim (signs
# and verifies: the rewriter keeps DKIM signatures valid), gnupg (keys and
# the decrypting peer in the encryptor tests) with libgpgme-dev and
# pkg-config (gpgme, the encryptor's keyring access, builds against them),
# clamav-daemon and clamdscan (the scanner's clamd, run privately by tests
# with a self-made signature database; freshclam is never run).
APT_PACKAGES = postfix swaks mandoc time hyperfine iproute2 procps util-linux tmux procmail \
	mutt bsdutils python3 python3-venv python3-dkim python3-cryptography dnsmasq-base postsrsd libmail-srs-perl \
	gnupg libgpgme-dev pkg-config clamav-daemon clamdscan

.PHONY: all deps build test demo bench bench-rewriter bench-queue bench-encryptor bench-scanner bench-sync bench-maildb install clean

all: build

deps:
	@set -e; \
	missing=; \
	for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}\n' "$$p" 2>/dev/null | grep -q '^install ok installed$$' || missing="$$missing $$p"; \
	done; \
	if [ -z "$$missing" ]; then echo "deps: all present ($(APT_PACKAGES))"; exit 0; fi; \
	echo "deps: installing$$missing"; \
	if [ "$$(id -u)" != 0 ]; then echo "deps: run 'make deps' as root to install:$$missing" >&2; exit 1; fi; \
	command -v apt-get >/dev/null || { echo "deps: no apt-get; install by hand:$$missing" >&2; exit 1; }; \
	echo 'postfix postfix/main_mailer_type select No configuration' | debconf-set-selections; \
	export DEBIAN_FRONTEND=noninteractive; \
	apt-get update -q; \
	apt-get install -y -q --no-install-recommends $$missing

build:
	$(CARGO) build --release

test: deps build
	bash tests/interop/install.sh
	$(CARGO) test --release --workspace
	@set -e; pages=$$(find man -type f -name '*.[1-8]' 2>/dev/null | sort); \
	if [ -n "$$pages" ]; then echo mandoc -Tlint -Wwarning $$pages; mandoc -Tlint -Wwarning $$pages; \
	else echo "no man pages to lint"; fi

demo: deps build
	bash tests/fixtures/demo.sh

bench: deps build
	timeout --kill-after=15 600 bash bench/run.sh

bench-rewriter: deps build
	bash tests/interop/install.sh
	timeout --kill-after=15 1200 bash bench/rewriter-bench.sh

bench-queue: deps build
	timeout --kill-after=15 1200 bash bench/queue-bench.sh

bench-encryptor: deps build
	bash tests/interop/install.sh python
	timeout --kill-after=15 900 bash bench/encryptor-bench.sh

bench-scanner: deps build
	timeout --kill-after=15 900 bash bench/scanner-bench.sh

bench-sync: deps build
	timeout --kill-after=15 900 bash bench/sync-bench.sh

bench-maildb: deps
	timeout --kill-after=15 1800 bash bench/maildb.sh

install: build
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBEXECDIR) \
	  $(DESTDIR)$(DOCDIR)/postfix $(DESTDIR)$(DOCDIR)/cron
	for b in $(BINS); do install -m 755 $(RELEASE)/$$b $(DESTDIR)$(BINDIR)/$$b; done
	sed 's|@BINDIR@|$(BINDIR)|g' contrib/postfix/postern-filter > $(DESTDIR)$(LIBEXECDIR)/postern-filter
	chmod 755 $(DESTDIR)$(LIBEXECDIR)/postern-filter
	install -m 644 contrib/postfix/README $(DESTDIR)$(DOCDIR)/postfix/README
	for f in master.cf main.cf; do \
	  sed -e 's|@LIBEXECDIR@|$(LIBEXECDIR)|g' -e 's|@BINDIR@|$(BINDIR)|g' \
	      -e 's|@USER@|$(POSTERN_USER)|g' -e 's|@CONFIG@|$(POSTERN_CONFIG)|g' \
	      contrib/postfix/$$f > $(DESTDIR)$(DOCDIR)/postfix/$$f; \
	  chmod 644 $(DESTDIR)$(DOCDIR)/postfix/$$f; \
	done
	sed -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@USER@|$(POSTERN_USER)|g' contrib/cron/postern > $(DESTDIR)$(DOCDIR)/cron/postern
	chmod 644 $(DESTDIR)$(DOCDIR)/cron/postern
	install -d $(DESTDIR)$(DOCDIR)/procmail $(DESTDIR)$(DOCDIR)/systemd $(DESTDIR)$(DOCDIR)/clamav
	install -m 644 contrib/clamav/clamd.conf.postern $(DESTDIR)$(DOCDIR)/clamav/clamd.conf.postern
	for f in procmail/postern-maildb.rc cron/postern-maildb-backup cron/postern-alias-sync \
	    systemd/postern-maildb-backup.service systemd/postern-maildb-backup.timer \
	    systemd/postern-deliverer.service systemd/postern-queue-run.service \
	    systemd/postern-queue-run.timer systemd/postern-alias-sync.service \
	    systemd/postern-alias-sync.timer; do \
	  sed -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@USER@|$(POSTERN_USER)|g' \
	      contrib/$$f > $(DESTDIR)$(DOCDIR)/$$f; \
	  chmod 644 $(DESTDIR)$(DOCDIR)/$$f; \
	done
	@set -e; for page in $$(find man -type f -name '*.[1-8]' 2>/dev/null | sort); do \
	  section=$${page##*.}; \
	  install -d $(DESTDIR)$(MANDIR)/man$$section; \
	  echo "install -m 644 $$page $(DESTDIR)$(MANDIR)/man$$section/"; \
	  install -m 644 $$page $(DESTDIR)$(MANDIR)/man$$section/; \
	done

clean:
	$(CARGO) clean
	rm -rf tests/run
