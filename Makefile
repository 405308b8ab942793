# dmilo — `make demo` and `make test` are the two commands of the README's quick start.
SHELL := /bin/bash
SWIFT ?= swift
PREFIX ?= /usr/local
DESTDIR ?=
# Debian packages the build, tests and demo need (libraries through SwiftPM system-library targets).
APT_PACKAGES := libopenblas-dev libpng-dev libsystemd-dev pkg-config dataset-fashion-mnist qemu-user
# `make deb` and its test: dpkg-deb/dpkg-shlibdeps, lintian, systemd-analyze, unshare (util-linux), python3 (man pages).
APT_PACKAGES += dpkg-dev lintian systemd util-linux python3
# Baseline codegen (runs on any x86-64 CPU): the SIMD kernels pick AVX2 / AVX-512 / VNNI / BF16 paths at run time
# (Sources/CDMiloSIMD), so no -target-cpu / -march here.
ARCH := $(shell uname -m)
ARCH_FLAGS :=
SWIFT_FLAGS := -c release $(ARCH_FLAGS)
BIN = $(shell $(SWIFT) build $(SWIFT_FLAGS) --show-bin-path)
# Installed binaries (`make release`, `make install`, `make deb`) carry the Swift runtime and Foundation statically,
# so they run without the toolchain. They need their own scratch folder: objects compiled for the static runtime
# autolink CoreFoundation/ICU and SwiftPM does not rebuild objects when only --static-swift-stdlib changes.
# `make build`/`make test` keep the dynamic runtime (XCTest is a shared library of the toolchain).
STATIC_FLAGS := $(SWIFT_FLAGS) --static-swift-stdlib --scratch-path .build-static
STATIC_BIN = $(shell $(SWIFT) build $(STATIC_FLAGS) --show-bin-path)

# Version: the semantic version lives in Sources/CDMiloVersion/version.c; `stamp` adds git commit and build date
# (UTC; SOURCE_DATE_EPOCH wins) in a gitignored header, rewritten only when it changes; version.c is touched then,
# because the build system does not track a header that `__has_include` did not find the first time.
VERSION := $(shell sed -n 's/^\#define DMILO_SEMVER "\(.*\)"$$/\1/p' Sources/CDMiloVersion/version.c)
STAMP := Sources/CDMiloVersion/build_stamp.h
DEB_ARCH = $(shell dpkg --print-architecture)
DEB = dist/dmilo_$(VERSION)_$(DEB_ARCH).deb

.PHONY: deps stamp build release test fuzz demo install install-files deb package-test clean fmt fmt-check
deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

stamp:
	@commit=$$(git rev-parse --short=12 HEAD 2>/dev/null) || commit=unknown; \
	if [ "$$commit" != unknown ] && ! git diff --quiet HEAD -- 2>/dev/null; then commit="$$commit-dirty"; fi; \
	if [ -n "$$SOURCE_DATE_EPOCH" ]; then d=$$(date -u -d "@$$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ); \
	else d=$$(date -u +%Y-%m-%dT%H:%M:%SZ); fi; \
	printf '// Written by `make stamp` (gitignored).\n#define DMILO_GIT_COMMIT "%s"\n#define DMILO_BUILD_DATE "%s"\n' \
	  "$$commit" "$$d" > $(STAMP).new; \
	if cmp -s $(STAMP).new $(STAMP); then rm $(STAMP).new; \
	else mv $(STAMP).new $(STAMP); touch Sources/CDMiloVersion/version.c; fi

build: deps stamp
	$(SWIFT) build $(SWIFT_FLAGS)

release: deps stamp
	$(SWIFT) build $(STATIC_FLAGS)

# The suite, then the package test (one extra release build: the static one).
test: deps stamp
	$(SWIFT) test $(SWIFT_FLAGS)
	$(MAKE) package-test

# dist/dmilo_<version>_<arch>.deb from the static release build (packaging/deb/README.md).
deb: release
	bash packaging/deb/build-deb.sh "$(STATIC_BIN)" "$(VERSION)" "$(DEB_ARCH)" "$(DEB)"

# Extracts the package into an empty folder and runs it with the toolchain hidden; lintian; systemd-analyze.
package-test: deb
	bash packaging/deb/test-deb.sh "$(DEB)"

# Long fuzz run of the input readers (the test suite runs 5000 cases per family): `make fuzz FUZZ_CASES=1000000 FUZZ_SEED=9`.
FUZZ_CASES ?= 200000
FUZZ_SEED ?= $(shell date +%s)
fuzz: deps
	@echo "fuzz: $(FUZZ_CASES) cases per family, seed $(FUZZ_SEED)"
	DMILO_FUZZ_CASES=$(FUZZ_CASES) DMILO_FUZZ_SEED=$(FUZZ_SEED) $(SWIFT) test $(SWIFT_FLAGS) --filter DMiloFuzzTests

# Fresh clone -> a drained demo spool and a results table (a few minutes on 2 cores).
demo: build
	BIN="$(BIN)" bash Tools/demo.sh

clean:
	rm -rf .build .build-static dist $(STAMP)

# Formatting with the toolchain's swift-format and the repository's .swift-format (4 spaces, 200-column limit; see
# README "Development"). `fmt` rewrites the Swift sources in place; `fmt-check` (run first by .ci/run) fails if any
# file would change or a lint rule fires.
FMT_PATHS := Package.swift Sources Tests Quantization
fmt:
	$(SWIFT) format format --in-place --recursive --parallel $(FMT_PATHS)

fmt-check:
	$(SWIFT) format lint --strict --recursive --parallel $(FMT_PATHS)

# `make install PREFIX=/usr/local DESTDIR=/tmp/stage`: release binaries, systemd unit, sysusers/tmpfiles
# snippets, example config (never overwriting an existing one) and the model (MODEL=..., if present).
SYSCONFDIR ?= /etc
UNITDIR ?= /etc/systemd/system
SYSUSERSDIR ?= /usr/lib/sysusers.d
TMPFILESDIR ?= /usr/lib/tmpfiles.d
# The bundled Q8_0 model, installed as share/dmilo/model.gguf (the name the example config uses).
MODEL ?= $(firstword $(wildcard Models/*/model-q8_0.gguf))
BINARIES ?= dmilo dmilod dmilo-quantize
install: release
	$(MAKE) install-files BIN="$(STATIC_BIN)"

# The copy step alone (BIN = folder holding the built executables); the install test runs it on a debug build.
install-files:
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/dmilo $(DESTDIR)$(UNITDIR) \
	  $(DESTDIR)$(SYSUSERSDIR) $(DESTDIR)$(TMPFILESDIR) $(DESTDIR)$(SYSCONFDIR)/dmilo
	for b in $(BINARIES); do install -m 0755 "$(BIN)/$$b" $(DESTDIR)$(PREFIX)/bin/$$b; done
	sed -e 's#/usr/local/bin/#$(PREFIX)/bin/#g' -e 's#/usr/local/share/#$(PREFIX)/share/#g' \
	  -e 's#/etc/dmilo/#$(SYSCONFDIR)/dmilo/#g' Systemd/dmilod.service > $(DESTDIR)$(UNITDIR)/dmilod.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/dmilod.service
	install -m 0644 Systemd/dmilo.sysusers $(DESTDIR)$(SYSUSERSDIR)/dmilo.conf
	install -m 0644 Systemd/dmilo.tmpfiles $(DESTDIR)$(TMPFILESDIR)/dmilo.conf
	install -m 0644 schemas/manifest.schema.json $(DESTDIR)$(PREFIX)/share/dmilo/manifest.schema.json
	install -d $(DESTDIR)$(PREFIX)/share/doc/dmilo
	install -m 0644 Systemd/README.md $(DESTDIR)$(PREFIX)/share/doc/dmilo/dmilod.md
	if [ -e $(DESTDIR)$(SYSCONFDIR)/dmilo/dmilod.json ]; then \
	  echo "keeping existing $(DESTDIR)$(SYSCONFDIR)/dmilo/dmilod.json"; \
	else \
	  sed -e 's#/usr/local/share/#$(PREFIX)/share/#g' Systemd/dmilod.json > $(DESTDIR)$(SYSCONFDIR)/dmilo/dmilod.json; \
	  chmod 0644 $(DESTDIR)$(SYSCONFDIR)/dmilo/dmilod.json; \
	fi
	if [ -n "$(MODEL)" ] && [ -f "$(MODEL)" ]; then install -m 0644 "$(MODEL)" $(DESTDIR)$(PREFIX)/share/dmilo/model.gguf; \
	  cal="$$(dirname "$(MODEL)")/uncertainty-calibration.json"; \
	  if [ -f "$$cal" ]; then install -m 0644 "$$cal" $(DESTDIR)$(PREFIX)/share/dmilo/uncertainty-calibration.json; fi; \
	else echo "no model installed (set MODEL=path/to/model.gguf)"; fi
