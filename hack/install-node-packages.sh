#!/usr/bin/env bash
# Install what the real node of the local centre runs from Debian's packages when it is missing:
# containerd (1.6 on bookworm, with ctr), runc, containernetworking-plugins (the CNI bridge,
# host-local, loopback and portmap plugins in /usr/lib/cni), iptables and iproute2 (the node's own
# network namespace and its guards), and buildah + debootstrap (the images, built with no registry).
# Idempotent: does nothing when every command is already there. Needs root for apt-get; prints
# every step it takes and how long it took.
set -euo pipefail

declare -A wanted=(
  [containerd]=containerd [ctr]=containerd [runc]=runc [/usr/lib/cni/bridge]=containernetworking-plugins
  [iptables]=iptables [ip]=iproute2 [buildah]=buildah [debootstrap]=debootstrap
)
missing=()
for cmd in "${!wanted[@]}"; do
  if [[ $cmd == /* ]]; then [[ -x $cmd ]] && continue; else command -v "$cmd" >/dev/null 2>&1 && continue; fi
  missing+=("${wanted[$cmd]}")
done
if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install-node-packages: already installed: $(containerd --version | cut -d' ' -f3), runc $(runc --version | head -n1 | cut -d' ' -f3), buildah $(buildah --version | cut -d' ' -f3)"
  exit 0
fi
mapfile -t packages < <(printf '%s\n' "${missing[@]}" | sort -u)

if [[ $(id -u) -ne 0 ]]; then
  echo "install-node-packages: missing ${packages[*]}; installing needs root; run: sudo bash $0" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-node-packages: no apt-get here; install ${packages[*]} yourself" >&2
  exit 1
fi

t0=$(date +%s)
echo "install-node-packages: apt-get update"
apt-get update -q
echo "install-node-packages: apt-get install -y --no-install-recommends ${packages[*]}"
# policy-rc.d keeps the packages from starting a system containerd: suanli runs its own, in the
# real node's network namespace, with its own root and socket.
policy=/usr/sbin/policy-rc.d
made_policy=0
if [[ ! -e $policy ]]; then printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod +x "$policy"; made_policy=1; fi
trap '[[ $made_policy -eq 1 ]] && rm -f "$policy"' EXIT
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${packages[@]}"
echo "install-node-packages: installed ${packages[*]} in $(( $(date +%s) - t0 )) s"
