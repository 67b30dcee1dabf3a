#!/usr/bin/env bash
# Runs every check and test of Kura on this machine, installing first whatever the tests need.
# This is the README's test command; CI (.ci/run) runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

step "toolchain"
cargo --version
rustc --version

# (Issues that add PostgreSQL, a browser or scanners install and start them here.)

step "format (cargo fmt --check)"
cargo fmt --all -- --check

step "lint (cargo clippy -D warnings)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "tests (debug profile)"
cargo test --workspace --locked

step "all checks passed"
