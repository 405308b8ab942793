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

.PHONY: deps build test demo install clean
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

clean:
	rm -rf .build
