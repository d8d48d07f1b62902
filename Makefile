# fleetops: `make demo` and `make test` set themselves up on a fresh machine
# (Rust toolchain, Python 3 with pip, make). Tool versions: tools/versions.txt.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
LINT_VENV := .venv-lint
CARGO ?= cargo
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export CARGO_TERM_COLOR ?= never
# Tests talk to the emulator only; never to a real account.
export AWS_EC2_METADATA_DISABLED := true

.PHONY: setup build test test-rust test-emulator test-tools lint fmt-check clippy template demo package bench clean-demo browser

setup: $(VENV)/.installed $(LINT_VENV)/.installed

$(VENV)/.installed: tools/requirements.txt tools/versions.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r tools/requirements.txt
	touch $@

$(LINT_VENV)/.installed: tools/requirements-lint.txt tools/versions.txt
	$(PYTHON) -m venv $(LINT_VENV)
	$(LINT_VENV)/bin/pip install --quiet --upgrade pip
	$(LINT_VENV)/bin/pip install --quiet -r tools/requirements-lint.txt
	touch $@

# Debug binaries (the end-to-end tests and the demo run them under cargo lambda)
# and every test target: one build, so the SDK crates resolve one feature set
# (their `test-util` feature comes with the dev-dependencies).
build: $(VENV)/.installed
	$(CARGO) build --workspace --all-targets

fmt-check:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# Headless Chromium renders the report page in the end-to-end tests (and the
# demo's screenshot): Debian's package, installed when missing (as root), or
# FLEETOPS_CHROMIUM=/path/to/chromium.
CHROMIUM ?= $(or $(FLEETOPS_CHROMIUM),chromium)
browser:
	@command -v $(CHROMIUM) >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else \
	    echo "chromium is missing: apt-get install -y chromium (as root), or set FLEETOPS_CHROMIUM" >&2; exit 1; \
	  fi; }

test-rust: build browser
	$(CARGO) test --workspace

test-emulator: $(VENV)/.installed
	$(VENV)/bin/python -m pytest -q tests/emulator
	$(VENV)/bin/python -m pytest -q -p no:cacheprovider bench/test_ec2sim.py

# tools/demo.sh leaves no process running, however it ends (tests/tools); the
# whole demo runs on the debug binaries, hence `build`.
test-tools: build
	$(VENV)/bin/python -m pytest -q -p no:cacheprovider tests/tools

template: $(LINT_VENV)/.installed
	bash tools/check-template.sh $(LINT_VENV)

# Every test: formatting and lints, unit and property tests, the emulator
# extension's own tests, end-to-end tests against it, the demo's cleanup,
# template validation.
test: setup fmt-check clippy test-rust test-emulator test-tools template

demo: build
	bash tools/demo.sh

# Deployable arm64 artifacts (target/lambda/<function>/bootstrap), as SAM's
# rust-cargolambda build makes them, cross-compiled with zig (the cargo-lambda
# package brings it). Not part of `make test` (a slow release build).
package: $(VENV)/.installed
	rustup target add aarch64-unknown-linux-gnu
	$(VENV)/bin/cargo-lambda lambda build --release --arm64

BENCH_VENV := .venv-bench
$(BENCH_VENV)/.installed: tools/requirements-bench.txt tools/versions.txt
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install --quiet --upgrade pip
	$(BENCH_VENV)/bin/pip install --quiet -r tools/requirements-bench.txt
	touch $@

# fleetops vs Cloud Custodian at 1,000 and 10,000 instances, and the compliance
# reporter at 10,000, on the release build (writes BENCHMARKS.md; ~20 minutes on
# 2 cores, most of it moto). Not part of `make test`. See bench/README.md.
BENCH_SIZES ?= 1000,10000
bench: $(VENV)/.installed $(BENCH_VENV)/.installed
	$(CARGO) build --release --workspace --bins
	$(VENV)/bin/python bench/run.py --sizes $(BENCH_SIZES) \
	  --scheduler-binary target/release/instance-scheduler \
	  --reporter-binary target/release/compliance-reporter --reporter-sizes 10000 \
	  --custodian $(BENCH_VENV)/bin/custodian --out BENCHMARKS.md
