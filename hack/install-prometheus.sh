#!/usr/bin/env bash
# Install Prometheus and promtool from Debian's `prometheus` package (2.42 on bookworm) when
# promtool is missing. Idempotent: does nothing when promtool is already on PATH.
# Needs root for apt-get; prints every step it takes.
set -euo pipefail

if command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1; then
  echo "install-prometheus: already installed: $(promtool --version 2>&1 | head -n 1)"
  exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
  echo "install-prometheus: promtool is missing and installing it needs root; run: sudo bash $0" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-prometheus: no apt-get here; install Prometheus 2.42+ (prometheus and promtool) yourself" >&2
  exit 1
fi

echo "install-prometheus: apt-get update"
apt-get update -q
echo "install-prometheus: apt-get install -y --no-install-recommends prometheus"
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends prometheus
# The package starts a system service where systemd runs; suanli starts its own Prometheus.
echo "install-prometheus: installed: $(promtool --version 2>&1 | head -n 1)"
