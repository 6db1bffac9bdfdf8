# StepSync's two entry points: `make dev` runs it locally, `make test` runs every test.
# Both install what they need (Rust crates via cargo, Python tools into .venv, Chromium from
# Debian's packages and playwright-core from npm for the browser test).

SHELL := /bin/bash
export CARGO_TERM_COLOR := never

# Tests and benchmarks never reach AWS: dummy credentials, and no probe of the metadata address.
# (`make dev` keeps the caller's AWS settings, for STEPSYNC_LOCAL_DYNAMODB=aws.)
test bench chaos: export AWS_EC2_METADATA_DISABLED := true
test bench chaos: export AWS_ACCESS_KEY_ID := test
test bench chaos: export AWS_SECRET_ACCESS_KEY := test
test bench chaos: export AWS_REGION := us-east-1

.PHONY: dev test test-build venv browser lint fmt bench chaos release

## Run StepSync locally (Ctrl-C stops it; data is kept under .data/).
dev:
	cargo run --quiet -p stepsync-local --bin stepsync-local

## Set up and run every test: unit tests, the integration suite on dynoxide and moto, the
## template's lints and policy scan, and the API contract fuzzed against the local stack.
## The tools install while the tests compile (the compile is CPU, the installs mostly network).
test:
	@$(MAKE) --no-print-directory -j3 venv browser test-build
	.venv/bin/python scripts/fixtures.py check
	./scripts/check-template.sh
	./scripts/check-deps.sh
	./scripts/check-api.sh
	cargo test --workspace --no-fail-fast

# Part of `make test`: compile every test target, and the local stack that check-api.sh fuzzes
# (`--workspace`: with the features the test build resolved, so only the binary is left to link).
test-build:
	cargo test --workspace --no-run
	cargo build --workspace --bin stepsync-local

## The project-local virtualenvs: moto, cfn-lint, SAM CLI and schemathesis (requirements-dev.txt);
## checkov (requirements-checkov.txt).
venv:
	./scripts/setup-venv.sh

## Debian's Chromium and playwright-core, for the web console's browser test.
browser:
	./scripts/setup-browser.sh

## Measure freshness, sweep throughput against the store's floor, requests and dollars per sync,
## cold start and size; writes bench/out/report.md and report.json (see docs/PERFORMANCE.md).
## Options: BENCH_ARGS="--connections 10000 --store moto --quick ...".
bench: venv
	cargo build --release -p stepsync-functions -p stepsync-hello-world --bins
	cargo run --release -p stepsync-bench -- $(BENCH_ARGS)

## The deployable build, as `sam deploy` would upload it: cargo-lambda (requirements-release.txt)
## into .venv, then `sam build` of template.yaml, each function to .aws-sam/build/<Function>/bootstrap.
## Not part of `make test`. RELEASE_ARCH=x86_64 by default: this machine's toolchain has only the
## x86_64 standard library; arm64 (the template's default) needs `rustup target add
## aarch64-unknown-linux-gnu` (README.md, docs/DEPLOY.md). cargo-lambda builds into
## target/lambda and its own target triple's folder: a second full release build.
RELEASE_ARCH ?= x86_64
release: venv
	.venv/bin/pip install --quiet --disable-pip-version-check -r requirements-release.txt
	@mkdir -p .venv/sam-home/.aws-sam
	@echo '{"telemetryEnabled": false, "lastVersionCheck": 4102444800.0}' >.venv/sam-home/.aws-sam/metadata.json
	time env PATH="$(CURDIR)/.venv/bin:$$PATH" HOME="$(CURDIR)/.venv/sam-home" CARGO_HOME="$${CARGO_HOME:-$$HOME/.cargo}" \
	  RUSTUP_HOME="$${RUSTUP_HOME:-$$HOME/.rustup}" SAM_CLI_TELEMETRY=0 SAM_CLI_BETA_RUST_CARGO_LAMBDA=1 \
	  .venv/bin/sam build --template-file template.yaml --parameter-overrides Architecture=$(RELEASE_ARCH)
	@ls -l .aws-sam/build/*/bootstrap

## The chaos run: 1,000 connections with faults injected at random at every seam, then the
## checks that nothing was lost or counted twice (local/src/chaos.rs; `make test` runs it at
## 150). STEPSYNC_CHAOS_CONNECTIONS, _ROUNDS, _SEED and _RATE change it.
chaos:
	cargo run --release -p stepsync-local --features harness --bin stepsync-chaos

## Formatting and lints, as CI expects them.
lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

fmt:
	cargo fmt --all
