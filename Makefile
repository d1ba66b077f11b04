# umm: build, check, install and package.   `make help` lists the targets.
#
#   make test                        what CI runs (.ci/run)
#   make build size-check            the static binary and its budget
#   make install DESTDIR=/tmp/x PREFIX=/usr
#   make deb lintian rpm             packages in target/debian and target/rpm

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DELETE_ON_ERROR:
.DEFAULT_GOAL := build
MAKEFLAGS += --no-print-directory

CARGO ?= cargo
TARGET ?= x86_64-unknown-linux-gnu
BIN := target/$(TARGET)/release/umm
# Budget for the stripped static binary, in bytes (4.5 MiB).
SIZE_BUDGET := 4718592

# The crate's version (the first `version =` of Cargo.toml is [package]'s).
VERSION := $(shell sed -n 's/^version *= *"\(.*\)"/\1/p' Cargo.toml | head -n1)
# A pre-release such as 0.2.0-rc1 must sort before 0.2.0 for dpkg and rpm.
PKG_VERSION := $(subst -,~,$(VERSION))
DEB_ARCH := amd64
RPM_ARCH := x86_64

# The man page's date, and mtimes, from the last commit when there is one.
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null)
export SOURCE_DATE_EPOCH

GEN := target/gen

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
# kernel-install plugin: umm's BLS boot entries (Fedora, RHEL and the like).
KERNELINSTALL := $(notdir $(wildcard grub.d/99-umm.install))
DOCS := README.md $(wildcard docs/*.md)
EXAMPLES := $(notdir $(wildcard packaging/examples/*))

# Installs a script or unit with /usr/bin/umm pointing at $(BINDIR)/umm.
# $(call install_subst,MODE,SOURCE,DEST)
define install_subst
sed 's|/usr/bin/umm|$(BINDIR)/umm|g' $(2) > $(3).tmp && chmod $(1) $(3).tmp && mv -f $(3).tmp $(3)
endef

# --- packages ----------------------------------------------------------------
DEB_DIR := target/debian
DEB := $(DEB_DIR)/umm_$(PKG_VERSION)_$(DEB_ARCH).deb
GLIBC_VERSION := $(shell dpkg-query -W -f='$${source:Version}' libc6-dev 2>/dev/null)
BUILT_USING := $(if $(GLIBC_VERSION),glibc (= $(GLIBC_VERSION)),glibc)

RPM_DIR := target/rpm
RPM := $(RPM_DIR)/umm-$(PKG_VERSION)-1.$(RPM_ARCH).rpm
RPM_STAGE := $(CURDIR)/$(RPM_DIR)/staging
RPM_TOP := $(CURDIR)/target/rpmbuild

LAB_ARGS ?=

.PHONY: deps help build size-check gen install install-files uninstall deb lintian rpm \
	test test-builds lab-bases lab-run cargo-checks cargo-lint cargo-test cargo-test-beside checks shellcheck verify-units install-check vm-test bench bench-fleet \
	demo clean

help:
	@echo 'make build       static release binary: $(BIN)'
	@echo 'make size-check  fail unless the binary is static and at most $(SIZE_BUDGET) bytes'
	@echo 'make gen         man page, completions and copyright into $(GEN)/'
	@echo 'make install     DESTDIR=... PREFIX=/usr (and make uninstall)'
	@echo 'make deb         $(DEB)'
	@echo 'make lintian     lintian on the .deb (errors and warnings fail)'
	@echo 'make rpm         $(RPM)'
	@echo 'make checks      shellcheck, systemd-analyze verify, make install against the .deb'
	@echo 'make test        fmt, clippy, tests, size-check, deb, lintian, checks, vm-test'
	@echo 'make bench-fleet 1,000 clients racing for 10 slots on a loopback etcd, and 20'
	@echo '                 nodes racing umm on for 2 slots, 200 rounds (figures)'
	@echo 'make vm-test     the VM lab (LAB_ARGS=...);  make demo: the demo scenario'
	@echo 'make lab-bases   only the lab'"'"'s base images (make test makes them beside cargo)'
	@echo 'make bench       figures on a lab VM, written to bench/RESULTS.md'

# --- build -------------------------------------------------------------------

# Static and small (the budget above): a non-PIE static binary (no relocation
# table), no .eh_frame_hdr (panic = abort never unwinds), linked by lld with
# identical code folding. docs/packaging.md, "Binary size", says why.
# --target keeps these flags away from build scripts and proc macros.
STATIC_RUSTFLAGS := -C target-feature=+crt-static -C relocation-model=static \
	-C link-arg=-fuse-ld=lld -C link-arg=-Wl,--icf=all -C link-arg=-Wl,--no-eh-frame-hdr

build:
	RUSTFLAGS="$(STATIC_RUSTFLAGS)" $(CARGO) build --release --target $(TARGET) -p umm --bin umm

size-check: build
	@f=$(BIN); \
	desc=$$(file -b "$$f"); \
	if readelf -lW "$$f" | grep -q 'INTERP'; then \
		echo "size-check: FAIL: $$f has an ELF interpreter (dynamically linked): $$desc" >&2; exit 1; fi; \
	if readelf -dW "$$f" | grep -q '(NEEDED)'; then \
		echo "size-check: FAIL: $$f needs shared libraries:" >&2; readelf -dW "$$f" | grep '(NEEDED)' >&2; exit 1; fi; \
	case "$$desc" in \
		*static-pie\ linked*) kind=static-pie ;; \
		*statically\ linked*) kind=static ;; \
		*) echo "size-check: FAIL: $$f is not statically linked: $$desc" >&2; exit 1 ;; \
	esac; \
	size=$$(stat -c %s "$$f"); \
	line=$$(awk -v s=$$size -v b=$(SIZE_BUDGET) -v k=$$kind \
		'BEGIN { printf "umm binary: %d bytes (%.2f MiB) %s, budget %.2f MiB", s, s/1048576, k, b/1048576 }'); \
	echo "$$line"; \
	if [ "$$size" -gt $(SIZE_BUDGET) ]; then \
		echo "size-check: FAIL: $$((size - $(SIZE_BUDGET))) bytes over the budget" >&2; exit 1; fi

# Man page and completions from the clap definition (tools/gen), and the
# copyright file with the Rust crates that the static binary contains.
gen:
	$(CARGO) run -q -p umm-gen -- $(GEN) >/dev/null
	@crates=$$($(CARGO) tree -q -e normal,no-proc-macro -p umm --target $(TARGET) \
		--prefix none --format '{p}: {l}' \
		| sed -e 's/ (\*)$$//' -e 's/ (proc-macro)//' | grep -v '^umm v' | sort -u \
		| sed -e 's/^\([^ ]*\) v/\1 /' -e 's/^/ /'); \
	[ -n "$$crates" ]; \
	awk -v crates="$$crates" -v built='$(BUILT_USING)' \
		'{ gsub(/@BUILT_USING@/, built) } $$0 == "@CRATES@" { print crates; next } { print }' \
		packaging/debian/copyright > $(GEN)/copyright

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
	@echo '  systemctl enable --now umm-boot.service umm-shutdown.service umm-uptime.timer umm-fleet-retry.timer'
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
	rm -f $(addprefix $(DESTDIR)$(GRUBDIR)/,$(GRUB)) $(addprefix $(DESTDIR)$(KERNELINSTALLDIR)/,$(KERNELINSTALL))
	rm -f $(DESTDIR)$(MANDIR)/man8/umm.8.gz
	rm -f $(DESTDIR)$(BASHCOMPDIR)/umm $(DESTDIR)$(ZSHCOMPDIR)/_umm $(DESTDIR)$(FISHCOMPDIR)/umm.fish
	rm -f $(addprefix $(DESTDIR)$(DOCDIR)/,$(notdir $(DOCS)) copyright)
	rm -f $(addprefix $(DESTDIR)$(EXAMPLEDIR)/,$(EXAMPLES))
	rmdir $(DESTDIR)$(DOCDIR) 2>/dev/null || true
	rmdir $(DESTDIR)$(EXAMPLEDIR) $(DESTDIR)$(PREFIX)/share/umm 2>/dev/null || true

# --- Debian package ----------------------------------------------------------

# debhelper builds the .deb (packaging/debian: control, rules, maintainer
# scripts) from `make install-files`. dpkg-buildpackage wants debian/ at the
# top of a source tree: it runs in a copy under $(DEB_DIR)/build.
deb: build gen
	@top=$$(sed -n '1s/^umm (\([^)]*\)).*/\1/p' packaging/debian/changelog); \
	if [ "$$top" != "$(PKG_VERSION)" ]; then \
		echo "deb: packaging/debian/changelog is at $$top, Cargo.toml at $(PKG_VERSION): add an entry" >&2; exit 1; fi
	rm -rf $(DEB_DIR)/build
	mkdir -p $(DEB_DIR)/build/umm
	cp -R packaging/debian $(DEB_DIR)/build/umm/debian
	cp $(GEN)/copyright $(DEB_DIR)/build/umm/debian/copyright
	cd $(DEB_DIR)/build/umm && $(NO_JOBSERVER) UMM_TOP=$(CURDIR) dpkg-buildpackage -b -us -uc
	@# Renamed into place: a VM lab run may be copying the previous one.
	mv -f $(DEB_DIR)/build/$(notdir $(DEB)) $(DEB)

# (--show-overrides would make lintian exit 2 even when clean: lintian 2.116.)
lintian: deb
	lintian --fail-on error,warning --display-info $(DEB)

# --- RPM ---------------------------------------------------------------------

# rpmbuild packs a prebuilt staging tree; nothing is compiled inside it.
rpm: build gen
	rm -rf $(RPM_STAGE) $(RPM_TOP) $(RPM)
	$(MAKE) install DESTDIR=$(RPM_STAGE) PREFIX=/usr INITDDIR=/etc/rc.d/init.d
	install -d -m0755 $(RPM_STAGE)/usr/lib/systemd/system-preset
	install -m0644 packaging/systemd/90-umm.preset $(RPM_STAGE)/usr/lib/systemd/system-preset/90-umm.preset
	install -d $(RPM_TOP) $(RPM_DIR)
	rpmbuild -bb \
		--define "_topdir $(RPM_TOP)" \
		--define "_rpmdir $(CURDIR)/$(RPM_DIR)" \
		--define "_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm" \
		--define "umm_version $(PKG_VERSION)" \
		--define "umm_staging $(RPM_STAGE)" \
		--target $(RPM_ARCH) \
		packaging/rpm/umm.spec
	@ls -l $(RPM)

# --- checks ------------------------------------------------------------------

cargo-checks: cargo-lint cargo-test

cargo-lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# cargo-test-beside and test-builds run the same tests.
CARGO_TEST := $(CARGO) test --workspace

# For a recipe that runs make (debian/rules, install-check.sh,
# verify-units.sh) or rustdoc without make knowing: make -j hands its
# jobserver's descriptors only to recipes it knows run make, so those
# warned that they could not open them ("jobserver unavailable",
# rustdoc's "failed to connect to jobserver").
# MAKEFLAGS keeps the rest (flags, command-line variables).
NO_JOBSERVER = MAKEFLAGS='$(filter-out -j% --jobserver-auth=% --jobserver-fds=%,$(MAKEFLAGS))' MFLAGS=

cargo-test:
	$(CARGO_TEST)

# Every shell script (tests/shellcheck.sh), every systemd unit as installed
# (tests/verify-units.sh), and make install/uninstall against the .deb
# (tests/install-check.sh).
checks: shellcheck verify-units install-check

shellcheck:
	tests/shellcheck.sh

verify-units: build gen
	$(NO_JOBSERVER) tests/verify-units.sh

install-check: deb
	$(NO_JOBSERVER) tests/install-check.sh $(DEB)

# 1,000 clients (threads, each its own connection) racing for 10 slots of one
# group on one etcd started on loopback; prints the figures. Needs etcd-server.
bench-fleet:
	UMM_FLEET_REQUIRE_ETCD=1 $(CARGO) test --release --test fleet -- --ignored --exact \
		bench_1000_clients --nocapture --test-threads=1
	UMM_FLEET_REQUIRE_ETCD=1 $(CARGO) test --release --test fleet_cmd -- --ignored --exact \
		bench_twenty_nodes_200_rounds_through_umm --nocapture --test-threads=1

# Both cores busy: the lab's base images (debootstrap and a first boot
# each) need nothing of umm, so they are made while cargo compiles (each
# command's output printed whole when it ends). The lab starts as soon as
# the .deb exists, beside lintian, `make checks` and the run of cargo's
# tests (compiled before; mostly waiting on etcd and on the binaries they
# start, so they take little from the lab). The lab's lines are printed as
# they come (make's output sync would hold them until the lab ends); the
# tests' output is printed whole when they end. The lab's lines come last,
# ending with its "N passed, N failed", and it prints the time since make
# test started (CI has room for 45 minutes).
test: export UMM_TEST_STARTED := $(shell date +%s)
test:
	$(CARGO) build -q -p umm-lab
	$(MAKE) -j2 --output-sync=line test-builds lab-bases
	$(MAKE) -j3 lab-run cargo-test-beside lintian verify-units install-check

# What make test builds and checks before the lab, one after the other
# (cargo takes one lock on target/ anyway), beside lab-bases. Not the .deb:
# `deb` is not a file target, so it is built once, in the make run of the
# targets that use it.
test-builds:
	$(MAKE) cargo-lint shellcheck size-check
	$(CARGO_TEST) --no-run

# cargo test holds cargo's lock on target/ while its tests run: after the
# .deb (whose build takes that lock), and its output held in a file so that
# it does not interleave with the lab's lines.
cargo-test-beside: deb
	@log=$$(mktemp); status=0; \
	$(NO_JOBSERVER) $(CARGO_TEST) >"$$log" 2>&1 || status=$$?; \
	cat "$$log"; rm -f "$$log"; exit $$status

# Base images for the VM lab, ahead of it. Never fails make: the lab tries
# again and reports a failure per scenario. The binary is run as built, not
# through cargo, which would wait for cargo-checks' lock on target/.
LAB_BIN := $(or $(CARGO_TARGET_DIR),target)/debug/umm-lab
lab-bases:
	-$(LAB_BIN) --bases

# The lab as make test runs it: as built (not through cargo, whose lock
# cargo-test-beside holds), and niced, so that the tests beside it get a
# core when they want one (some assert bounds of a few seconds) and the
# lab's guests, whose waits are generous, the rest.
lab-run: deb
	nice -n 10 $(LAB_BIN) $(LAB_ARGS)

# --- host packages -----------------------------------------------------------

# What the build, the packages, the tests and the VM lab need from Debian:
# gcc/libc6-dev/lld for the static link, file/binutils for size-check,
# dpkg-dev/debhelper/lintian/rpm for the packages, dbus-daemon for the D-Bus
# client's test, libvirt-clients/pacemaker-cli-utils for the example hooks'
# tests against real tools, grub-common for the GRUB snippet's test against
# the real grub-mkconfig, shellcheck and systemd (systemd-analyze) for
# `make checks`, qemu/debootstrap/fdisk/ssh for the VM lab, prometheus
# (promtool) for the metrics' and the example alerts' tests.
DEPS := make gcc libc6-dev lld git ca-certificates file binutils dpkg-dev debhelper lintian rpm \
	dbus-daemon libvirt-clients pacemaker-cli-utils grub-common shellcheck systemd \
	qemu-system-x86 qemu-utils debootstrap fdisk openssh-client e2fsprogs \
	etcd-server etcd-client openssl prometheus
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# Installs whatever of DEPS is missing (nothing when all are there).
deps:
	@missing=$$(for p in $(DEPS); do \
		dpkg-query -W -f='$${db:Status-Status}\n' $$p 2>/dev/null | grep -qx installed || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "make deps: installing" $$missing; \
		$(SUDO) apt-get update -q; \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends $$missing; \
	fi

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
	$(MAKE) deb
	$(CARGO) run -q -p umm-lab -- --only demo

clean:
	rm -rf $(GEN) $(DEB_DIR) $(RPM_DIR) $(RPM_TOP)
