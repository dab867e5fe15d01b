#!/usr/bin/env bash
# Installs what podnet's build, tests and lab need on a fresh Debian machine.
# Idempotent: installs only the packages that are missing.
set -euo pipefail

PACKAGES=(
  build-essential pkg-config   # C toolchain for bundled SQLite
  protobuf-compiler            # protoc, for the etcd-client crate
  etcd-server etcd-client      # a real etcd for the store tests and `--store etcd`
  iproute2 nftables conntrack  # the kernel-facing tools the lab and agent use
  iputils-ping dnsutils curl   # real clients for end-to-end tests
  containernetworking-plugins  # reference CNI plugins (bridge, host-local, portmap, bandwidth)
  iperf3 busybox-static        # throughput probes; a static shell for runtime tests
  podman runc iptables file    # the CNI tests: podman as a real runtime; portmap needs iptables
  jq procps psmisc
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "podnet needs these Debian packages: ${missing[*]}" >&2
    echo "run as root (or: sudo apt-get install -y ${missing[*]})" >&2
    exit 1
  fi
  echo "installing: ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Tests start their own etcd on free loopback ports with temporary data directories.
command -v etcd >/dev/null || { echo "etcd missing after install" >&2; exit 1; }
command -v protoc >/dev/null || { echo "protoc missing after install" >&2; exit 1; }
