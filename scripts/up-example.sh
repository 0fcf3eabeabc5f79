#!/usr/bin/env bash
# From a fresh Debian machine, as root: install the dependencies, build tfgrid-compose, and deploy
# the static-site example on local VMs. Prints the site's URL at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cargo build --release --locked
exec ./target/release/tfgrid-compose up examples/static-site "$@"
