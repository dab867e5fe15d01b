#!/usr/bin/env bash
# The main job: install what is needed, build podnet, and bring up the bundled
# quickstart lab (3 nodes, a web app behind a Service, a two-container pod, a client),
# ending with `podnet lab check`. The lab keeps running; `podnet lab down --name
# quickstart` removes every trace of it.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
cargo build --release --locked -p podnet-cli
install -m 0755 target/release/podnet /usr/local/bin/podnet

podnet lab up -f examples/quickstart/lab.yaml examples/quickstart/manifests/
