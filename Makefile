# umm: build, check, install and package.   `make help` lists the targets.
#
# Each target calls one tool. The chores in Rust are tools/xtask (`cargo run
# -p xtask -- --help`); install and uninstall stay here, as the DESTDIR/PREFIX
# convention that debian/rules and the install checks call.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DELETE_ON_ERROR:
.DEFAULT_GOAL := build
MAKEFLAGS += --no-print-directory

CARGO ?= cargo
XTASK := $(CARGO) run -q -p xtask --
TARGET ?= x86_64-unknown-linux-gnu
BIN := target/$(TARGET)/release/umm
GEN := target/gen

# The man page's date, and mtimes, from the last commit when there is one.
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null)
export SOURCE_DATE_EPOCH

# Passed to the VM lab by `make test` and `make vm-test` (e.g. --only NAME --keep).
LAB_ARGS ?=
export LAB_ARGS

.PHONY: help deps build size-check gen install install-files uninstall deb lintian rpm \
	test checks shellcheck verify-units install-check vm-test bench bench-fleet demo clean

help:
	@echo 'make build        static release binary: $(BIN)'
	@echo 'make size-check   fail unless the binary is static and within its 4.5 MiB budget'
	@echo 'make gen          man page, completions and copyright into $(GEN)/'
	@echo 'make install      DESTDIR=... PREFIX=/usr (and make uninstall)'
	@echo 'make deb          the .deb in target/debian;  make lintian: lintian on it'
	@echo 'make rpm          the .rpm in target/rpm'
	@echo 'make checks       shellcheck, systemd-analyze verify, make install against the .deb'
	@echo 'make test         what CI runs: fmt, clippy, tests, size-check, deb, lintian, checks, VM lab'
	@echo 'make deps         the Debian packages the build, the tests and the lab need'
	@echo 'make vm-test      the VM lab (LAB_ARGS=...);  make demo: the demo scenario'
	@echo 'make bench        figures on a lab VM, written to bench/RESULTS.md'
	@echo 'make bench-fleet  fleet races on a loopback etcd (figures)'

# --- build and package (tools/xtask) ------------------------------------------

build:
	$(XTASK) build

size-check:
	$(XTASK) size-check

gen:
	$(XTASK) gen

# The .deb through debhelper (packaging/debian), which runs `make install-files`.
deb:
	$(XTASK) deb

lintian: deb
	$(XTASK) lintian

# A prebuilt staging tree (`make install`) packed by rpmbuild.
rpm:
	$(XTASK) rpm

# --- install layout ---------------------------------------------------------
# Program files under $(PREFIX); /etc and /var under $(DESTDIR) directly.
PREFIX ?= /usr
DESTDIR ?=
BINDIR := $(PREFIX)/bin
# Earlier versions installed $(SBINDIR)/umm; it stays as a link to
# ../bin/umm (docs/packaging.md: upgrades).
SBINDIR := $(PREFIX)/sbin
UNITDIR := $(PREFIX)/lib/systemd/system
GENERATORDIR := $(PREFIX)/lib/systemd/system-generators
# The journal catalog (journalctl -x); systemd's packages rebuild its
# database on their own (dpkg trigger, rpm file trigger).
CATALOGDIR := $(PREFIX)/lib/systemd/catalog
MANDIR := $(PREFIX)/share/man
DOCDIR := $(PREFIX)/share/doc/umm
EXAMPLEDIR := $(PREFIX)/share/umm/examples
BASHCOMPDIR := $(PREFIX)/share/bash-completion/completions
ZSHCOMPDIR := $(PREFIX)/share/zsh/vendor-completions
FISHCOMPDIR := $(PREFIX)/share/fish/vendor_completions.d
INITDDIR ?= /etc/init.d
UPSTARTDIR := /etc/init
# Without systemd, cron retries a pending fleet release (units/cron).
CRONDIR := /etc/cron.d
GRUBDIR := /etc/grub.d
GRUBDEFAULTDIR := /etc/default/grub.d
KERNELINSTALLDIR := $(PREFIX)/lib/kernel/install.d
CONFDIR := /etc/umm
STATEDIR := /var/lib/umm
HOOKDIRS := umm.toml.d check.d pre-on.d on.d pre-off.d off.d

# Every unit in units/systemd (umm.target, umm-boot.service, ...).
UNITS := $(filter-out umm-generator,$(notdir $(wildcard units/systemd/*)))
# Optional parts: shipped when present in the tree.
SYSVINIT := $(notdir $(wildcard units/sysvinit/*))
# Init scripts with no systemd unit of the same name: masked under systemd.
SYSVINIT_ONLY := $(filter-out $(basename $(UNITS)),$(SYSVINIT))
UPSTART := $(notdir $(wildcard units/upstart/*.conf))
CRON := $(notdir $(wildcard units/cron/*))
GRUB := $(notdir $(wildcard grub.d/42_umm))
# /etc/default/grub.d/umm.cfg: panic=10 where the administrator set no panic=.
GRUBDEFAULT := $(notdir $(wildcard grub.d/umm.cfg))
# kernel-install plugin: umm's BLS boot entries (Fedora, RHEL and the like).
KERNELINSTALL := $(notdir $(wildcard grub.d/99-umm.install))
DOCS := README.md $(wildcard docs/*.md)
EXAMPLES := $(notdir $(wildcard packaging/examples/*))

# Installs a script or unit with /usr/bin/umm pointing at $(BINDIR)/umm.
# $(call install_subst,MODE,SOURCE,DEST)
define install_subst
sed 's|/usr/bin/umm|$(BINDIR)/umm|g' $(2) > $(3).tmp && chmod $(1) $(3).tmp && mv -f $(3).tmp $(3)
endef

# --- install -----------------------------------------------------------------

# `install` builds first; `install-files` only copies what is built (the
# .deb's debian/rules runs it, after `make deb` built everything).
install: build gen
	$(MAKE) install-files

install-files:
	install -d -m0755 $(DESTDIR)$(BINDIR) $(DESTDIR)$(SBINDIR) $(DESTDIR)$(UNITDIR) \
		$(DESTDIR)$(GENERATORDIR) $(DESTDIR)$(CATALOGDIR) $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(DOCDIR) \
		$(DESTDIR)$(BASHCOMPDIR) $(DESTDIR)$(ZSHCOMPDIR) $(DESTDIR)$(FISHCOMPDIR) \
		$(DESTDIR)$(CONFDIR) $(addprefix $(DESTDIR)$(CONFDIR)/,$(HOOKDIRS)) $(DESTDIR)$(STATEDIR)
	install -m0755 $(BIN) $(DESTDIR)$(BINDIR)/umm
	@# The old path as a link, replacing an earlier install's binary there
	@# (root's PATH has sbin first); not where sbin is bin (Fedora 42).
	if [ ! $(DESTDIR)$(SBINDIR) -ef $(DESTDIR)$(BINDIR) ]; then \
		ln -sfn ../bin/umm $(DESTDIR)$(SBINDIR)/umm; fi
	$(foreach u,$(UNITS),$(call install_subst,0644,units/systemd/$(u),$(DESTDIR)$(UNITDIR)/$(u));)
	$(call install_subst,0755,units/systemd/umm-generator,$(DESTDIR)$(GENERATORDIR)/umm-generator)
	install -m0644 packaging/systemd/umm.catalog $(DESTDIR)$(CATALOGDIR)/umm.catalog
ifneq ($(SYSVINIT),)
	install -d -m0755 $(DESTDIR)$(INITDDIR)
	$(foreach s,$(SYSVINIT),$(call install_subst,0755,units/sysvinit/$(s),$(DESTDIR)$(INITDDIR)/$(s));)
	@# systemd would run an init script that has no native unit of the same
	@# name through systemd-sysv-generator; mask those.
	$(foreach s,$(SYSVINIT_ONLY),ln -sfn /dev/null $(DESTDIR)$(UNITDIR)/$(s).service;)
endif
ifneq ($(UPSTART),)
	install -d -m0755 $(DESTDIR)$(UPSTARTDIR)
	$(foreach s,$(UPSTART),$(call install_subst,0644,units/upstart/$(s),$(DESTDIR)$(UPSTARTDIR)/$(s));)
endif
ifneq ($(CRON),)
	install -d -m0755 $(DESTDIR)$(CRONDIR)
	$(foreach s,$(CRON),$(call install_subst,0644,units/cron/$(s),$(DESTDIR)$(CRONDIR)/$(s));)
endif
ifneq ($(GRUB),)
	install -d -m0755 $(DESTDIR)$(GRUBDIR)
	$(call install_subst,0755,grub.d/42_umm,$(DESTDIR)$(GRUBDIR)/42_umm)
endif
ifneq ($(GRUBDEFAULT),)
	install -d -m0755 $(DESTDIR)$(GRUBDEFAULTDIR)
	$(call install_subst,0644,grub.d/umm.cfg,$(DESTDIR)$(GRUBDEFAULTDIR)/umm.cfg)
endif
ifneq ($(KERNELINSTALL),)
	install -d -m0755 $(DESTDIR)$(KERNELINSTALLDIR)
	$(call install_subst,0755,grub.d/99-umm.install,$(DESTDIR)$(KERNELINSTALLDIR)/99-umm.install)
endif
	@# Never overwrite a configuration that is already there.
	if [ ! -e $(DESTDIR)$(CONFDIR)/umm.toml ]; then \
		install -m0644 packaging/umm.toml $(DESTDIR)$(CONFDIR)/umm.toml; fi
	gzip -9n < $(GEN)/umm.8 > $(DESTDIR)$(MANDIR)/man8/umm.8.gz
	chmod 0644 $(DESTDIR)$(MANDIR)/man8/umm.8.gz
	install -m0644 $(GEN)/completions/umm.bash $(DESTDIR)$(BASHCOMPDIR)/umm
	install -m0644 $(GEN)/completions/_umm $(DESTDIR)$(ZSHCOMPDIR)/_umm
	install -m0644 $(GEN)/completions/umm.fish $(DESTDIR)$(FISHCOMPDIR)/umm.fish
	install -m0644 $(DOCS) $(GEN)/copyright $(DESTDIR)$(DOCDIR)/
ifneq ($(EXAMPLES),)
	install -d -m0755 $(DESTDIR)$(EXAMPLEDIR)
	for f in $(EXAMPLES); do \
		if [ -x packaging/examples/$$f ]; then m=0755; else m=0644; fi; \
		install -m$$m packaging/examples/$$f $(DESTDIR)$(EXAMPLEDIR)/$$f; done
endif
ifeq ($(filter-out /,$(DESTDIR)),)
	@echo 'umm installed. Enable it with:'
	@echo '  systemctl daemon-reload'
	@echo '  systemctl enable --now umm-boot.service umm-shutdown.service umm-uptime.timer umm-fleet-retry.timer umm-queue.timer'
	@echo '  systemctl enable umm-after.service'
endif

# Removes what install put; keeps /etc/umm (configuration, hooks) and /var/lib/umm.
uninstall:
	rm -f $(DESTDIR)$(BINDIR)/umm
	if [ "$$(readlink $(DESTDIR)$(SBINDIR)/umm)" = ../bin/umm ]; then rm -f $(DESTDIR)$(SBINDIR)/umm; fi
	rm -f $(addprefix $(DESTDIR)$(UNITDIR)/,$(UNITS))
	rm -f $(DESTDIR)$(GENERATORDIR)/umm-generator
	rm -f $(DESTDIR)$(CATALOGDIR)/umm.catalog
	rm -f $(addprefix $(DESTDIR)$(INITDDIR)/,$(SYSVINIT)) $(addprefix $(DESTDIR)$(UPSTARTDIR)/,$(UPSTART))
	rm -f $(addprefix $(DESTDIR)$(CRONDIR)/,$(CRON))
	for s in $(SYSVINIT_ONLY); do \
		if [ "$$(readlink $(DESTDIR)$(UNITDIR)/$$s.service)" = /dev/null ]; then \
			rm -f $(DESTDIR)$(UNITDIR)/$$s.service; fi; done
	rm -f $(addprefix $(DESTDIR)$(GRUBDIR)/,$(GRUB)) $(addprefix $(DESTDIR)$(GRUBDEFAULTDIR)/,$(GRUBDEFAULT)) $(addprefix $(DESTDIR)$(KERNELINSTALLDIR)/,$(KERNELINSTALL))
	rm -f $(DESTDIR)$(MANDIR)/man8/umm.8.gz
	rm -f $(DESTDIR)$(BASHCOMPDIR)/umm $(DESTDIR)$(ZSHCOMPDIR)/_umm $(DESTDIR)$(FISHCOMPDIR)/umm.fish
	rm -f $(addprefix $(DESTDIR)$(DOCDIR)/,$(notdir $(DOCS)) copyright)
	rm -f $(addprefix $(DESTDIR)$(EXAMPLEDIR)/,$(EXAMPLES))
	rmdir $(DESTDIR)$(DOCDIR) 2>/dev/null || true
	rmdir $(DESTDIR)$(EXAMPLEDIR) $(DESTDIR)$(PREFIX)/share/umm 2>/dev/null || true

# --- checks ------------------------------------------------------------------

# Every shell script (tests/shellcheck.sh), every systemd unit as installed
# (tests/verify-units.sh), and make install/uninstall against the .deb
# (tests/install-check.sh).
checks: shellcheck verify-units install-check

shellcheck:
	tests/shellcheck.sh

verify-units: build gen
	tests/verify-units.sh

install-check: deb
	$(XTASK) install-check

# Builds and checks, then the VM lab beside cargo test, lintian and the
# checks above; the last lines are cargo test's and the lab's summaries.
# UMM_TEST_LAB=COMMAND stands in for the lab (tools/xtask/src/pipeline.rs).
test:
	$(XTASK) test

# 1,000 clients (threads, each its own connection) racing for 10 slots of one
# group on one etcd started on loopback; prints the figures. Needs etcd-server.
bench-fleet:
	UMM_FLEET_REQUIRE_ETCD=1 $(CARGO) test --release --test fleet -- --ignored --exact \
		bench_1000_clients --nocapture --test-threads=1
	UMM_FLEET_REQUIRE_ETCD=1 $(CARGO) test --release --test fleet_cmd -- --ignored --exact \
		bench_twenty_nodes_200_rounds_through_umm --nocapture --test-threads=1

# --- host packages -----------------------------------------------------------

# What the build, the packages, the tests and the VM lab need from Debian:
# gcc/libc6-dev/lld for the static link, file/binutils for size-check,
# dpkg-dev/debhelper/lintian/rpm for the packages, dbus-daemon for the D-Bus
# client's test, libvirt-clients/pacemaker-cli-utils/etcd-client for the example hooks'
# tests against real tools, grub-common for the GRUB snippet's test against
# the real grub-mkconfig, shellcheck and systemd (systemd-analyze) for
# `make checks`, qemu/debootstrap/fdisk/ssh for the VM lab, prometheus
# (promtool) for the metrics' and the example alerts' tests. Shell, not
# xtask: xtask is linked by the gcc this installs.
DEPS := make gcc libc6-dev lld git ca-certificates file binutils dpkg-dev debhelper lintian rpm \
	dbus-daemon libvirt-clients pacemaker-cli-utils grub-common shellcheck systemd \
	qemu-system-x86 qemu-utils debootstrap fdisk openssh-client e2fsprogs \
	etcd-server etcd-client openssl prometheus
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# Installs whatever of DEPS is missing (nothing when all are there). Twice:
# installing one package can remove another that was there (a backported
# qemu-utils goes when bookworm's qemu-system-x86 comes in).
deps:
	@for pass in 1 2; do \
		missing=$$(for p in $(DEPS); do \
			dpkg-query -W -f='$${db:Status-Status}\n' $$p 2>/dev/null | grep -qx installed || echo $$p; done); \
		[ -n "$$missing" ] || break; \
		echo "make deps: installing" $$missing; \
		[ $$pass = 2 ] || $(SUDO) apt-get update -q; \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends $$missing || exit 1; \
	done

# --- VM lab (tests/vm) ---------------------------------------------------------

# All scenarios; one with LAB_ARGS="--only NAME", and keep its VM up with
# LAB_ARGS="--only NAME --keep". Dev profile: a panicking scenario must
# unwind so that its qemu is stopped (the release profile aborts).
vm-test: deb
	$(CARGO) run -q -p umm-lab -- $(LAB_ARGS)

# Figures, not a test: umm's cost to a boot, maintenance boot and resume
# times, as ratios on one VM; printed and written to bench/RESULTS.md.
bench: deb
	$(CARGO) run -q -p umm-lab -- --bench

# The main job on a throwaway VM, narrated; a fresh machine needs nothing else.
demo: deps
	$(XTASK) deb
	$(CARGO) run -q -p umm-lab -- --only demo

clean:
	rm -rf $(GEN) target/debian target/rpm target/rpmbuild
