# dmilo — `make demo` and `make test` are the two commands of the README's quick start.
SHELL := /bin/bash
SWIFT ?= swift
PREFIX ?= /usr/local
DESTDIR ?=
# Debian packages the build, tests and demo need (libraries through SwiftPM system-library targets).
APT_PACKAGES := libopenblas-dev libpng-dev libsystemd-dev pkg-config dataset-fashion-mnist
# Codegen for the kernels' Swift loops: AVX2+FMA on x86-64 (`haswell`: any x86-64 CPU since 2013-15), default elsewhere.
ARCH := $(shell uname -m)
ifeq ($(ARCH),x86_64)
ARCH_FLAGS := -Xswiftc -target-cpu -Xswiftc haswell -Xcc -march=haswell
endif
SWIFT_FLAGS := -c release $(ARCH_FLAGS)
BIN = $(shell $(SWIFT) build $(SWIFT_FLAGS) --show-bin-path)

.PHONY: deps build test fuzz demo install install-files clean
deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

build: deps
	$(SWIFT) build $(SWIFT_FLAGS)

test: deps
	$(SWIFT) test $(SWIFT_FLAGS)

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
	rm -rf .build

# `make install PREFIX=/usr/local DESTDIR=/tmp/stage`: release binaries, systemd unit, sysusers/tmpfiles
# snippets, example config (never overwriting an existing one) and the model (MODEL=..., if present).
SYSCONFDIR ?= /etc
UNITDIR ?= /etc/systemd/system
SYSUSERSDIR ?= /usr/lib/sysusers.d
TMPFILESDIR ?= /usr/lib/tmpfiles.d
MODEL ?= $(firstword $(wildcard Models/*/model.gguf))
BINARIES ?= dmilo dmilod dmilo-quantize
install: build
	$(MAKE) install-files BIN="$(BIN)"

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
	else echo "no model installed (set MODEL=path/to/model.gguf)"; fi
