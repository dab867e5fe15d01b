#!/usr/bin/env bash
# The foundation alone, without the lab: build podnet, start a store and the
# controller, apply examples/allocation, and show what the cluster allocated; then
# show an invalid manifest refused as a whole. (The main job is scripts/quickstart.sh.)
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
cargo build --release --locked -p podnet-cli
PODNET=$PWD/target/release/podnet

work=$(mktemp -d /tmp/podnet-demo.XXXXXX)
ctl_pid=""
cleanup() {
  [ -n "$ctl_pid" ] && kill "$ctl_pid" 2>/dev/null && wait "$ctl_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
export PODNET_STORE="$work/state.db"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "podnet apply -f examples/allocation/"
$PODNET apply -f examples/allocation/

step "podnet controller (in the background, pid file in $work)"
$PODNET controller --id demo >"$work/controller.log" 2>&1 &
ctl_pid=$!

# Wait (bounded) until every service has its ClusterIP and the web slices exist.
for _ in $(seq 1 100); do
  if ! $PODNET get svc -A | grep -q '<pending>' && $PODNET get ep -n shop -o name | grep -q .; then
    break
  fi
  sleep 0.1
done

step "podnet get nodes -o wide"
$PODNET get nodes -o wide
step "podnet get svc -A -o wide"
$PODNET get svc -A -o wide
step "podnet get endpointslices -A"
$PODNET get endpointslices -A
step "podnet get pods -A -o wide"
$PODNET get pods -A -o wide

step "podnet apply -f examples/invalid/three-mistakes.yaml  (must fail, changing nothing)"
if $PODNET apply -f examples/invalid/three-mistakes.yaml; then
  echo "unexpected: the invalid manifest was accepted" >&2
  exit 1
fi
echo "(rejected as expected; services in default namespace:)"
$PODNET get svc
