#!/usr/bin/env bash
# Install headless Chromium from Debian's `chromium` package when it is missing; the report test
# opens the HTML report in it and checks the screenshot. Idempotent; needs root for apt-get.
set -euo pipefail

if command -v chromium >/dev/null 2>&1; then
  echo "install-chromium: already installed: $(chromium --version 2>/dev/null | head -n 1)"
  exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
  echo "install-chromium: chromium is missing and installing it needs root; run: sudo bash $0" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-chromium: no apt-get here; install Chromium yourself (the report test needs it)" >&2
  exit 1
fi
echo "install-chromium: apt-get update"
apt-get update -q
echo "install-chromium: apt-get install -y --no-install-recommends chromium fonts-dejavu-core"
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium fonts-dejavu-core
echo "install-chromium: installed: $(chromium --version 2>/dev/null | head -n 1)"
