# InfusionControl: the two commands.
#   make demo   run the main job on simulated hardware
#   make test   run the whole test suite
# Both first install the system libraries the package links against (Debian/Ubuntu), using sudo
# when not root, and skip the install when everything is already there.

SHELL       := /bin/bash
SWIFT       ?= swift
SYSTEM_DEPS := libudev-dev libusb-1.0-0-dev libsqlite3-dev libssl-dev pkg-config
SUDO        := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
BIN         := .build/debug

.PHONY: demo test deps build bench clean

deps:
	@missing=""; \
	for p in $(SYSTEM_DEPS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "Installing system packages:$$missing"; \
	  $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	else \
	  echo "System packages present: $(SYSTEM_DEPS)"; \
	fi

build: deps
	$(SWIFT) build --product infusionctl

# The default demo scenario (uneventful 40-minute ketamine session at 160x): the simulated pump, oximeter and
# patient on ptys, the real controller (`infusionctl run`) over them, a live status, a summary and an HTML
# report in demo-output/uneventful/report.html. Other scenarios: `$(BIN)/infusionctl demo --list`.
demo: build
	$(BIN)/infusionctl demo

# Tests run one at a time: many drive real pseudo-terminals with real-time limits (unplug noticed within
# 1 s, hang-up within 100 ms), which should measure this code, not the other tests competing for 2 cores.
# A failing run repeats its failures at the very end, so a CI log cut to its last lines still names them.
test: deps
	$(SWIFT) build --build-tests
	@set -o pipefail; $(SWIFT) test --skip-build --no-parallel 2>&1 | tee .build/test.log || { \
	  status=$$?; echo; echo "=== failures (full log: .build/test.log) ==="; \
	  grep -a "✘" .build/test.log | grep -av "^✘ Suite" | head -60; exit $$status; }

bench: deps
	cd Benchmarks && $(SWIFT) package --allow-writing-to-package-directory benchmark

clean:
	rm -rf .build
