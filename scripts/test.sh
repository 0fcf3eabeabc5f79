#!/usr/bin/env bash
# The test suite: unit tests, flow tests with fake tools, end-to-end tests of the local pattern
# with the real tools (needs root and scripts/install-deps.sh), and `terraform fmt -check` on
# every pattern, `cargo fmt --check`, and `cargo clippy --all-targets -- -D warnings` (the house
# rules in clippy.toml: only the runner spawns, only the printer prints, the environment is read
# through settings).
set -euo pipefail
cd "$(dirname "$0")/.."
tf=$(command -v tofu || command -v terraform) || { echo "test: no tofu/terraform; run scripts/install-deps.sh" >&2; exit 1; }
for dir in patterns/*/infrastructure; do
  "$tf" fmt -check -diff "$dir"
done
cargo fmt --check
cargo clippy --all-targets --locked -- -D warnings
cargo test --locked
