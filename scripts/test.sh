#!/usr/bin/env bash
# The whole test command: installs what the tests need, then formatting, lints and
# every test of the workspace (unit, kernel and end-to-end; some need root).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
if [ "$(id -u)" -ne 0 ]; then
  echo "warning: not root; tests that need root will fail and say so" >&2
fi

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked --no-fail-fast
