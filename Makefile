# StepSync's two entry points: `make dev` runs it locally, `make test` runs every test.
# Both install what they need (Rust crates via cargo, Python tools into .venv).

SHELL := /bin/bash
export AWS_EC2_METADATA_DISABLED := true
export AWS_ACCESS_KEY_ID := test
export AWS_SECRET_ACCESS_KEY := test
export AWS_REGION := us-east-1
export CARGO_TERM_COLOR := never

.PHONY: dev test venv lint fmt

## Run StepSync locally (Ctrl-C stops it; data is kept under .data/).
dev:
	cargo run --quiet -p stepsync-local --bin stepsync-local

## Set up and run every test: unit tests, and the integration suite on dynoxide and moto.
test: venv
	./scripts/check-template.sh
	./scripts/check-deps.sh
	cargo test --workspace --no-fail-fast

## The project-local virtualenv: moto, cfn-lint and SAM CLI (pinned in requirements-dev.txt).
venv:
	./scripts/setup-venv.sh

## Formatting and lints, as CI expects them.
lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

fmt:
	cargo fmt --all
