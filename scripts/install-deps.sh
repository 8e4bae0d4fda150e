#!/usr/bin/env bash
# Installs what building, the demo and the tests need on Debian 12 (as root):
# Debian packages, and playwright-core from npm for the browser test.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

packages=(
  meson ninja-build g++ pkg-config
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev libgstreamer-plugins-bad1.0-dev
  gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good
  gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav gstreamer1.0-nice
  libnice-dev libsoup-3.0-dev libjson-glib-dev libglib2.0-dev-bin
  libssl-dev libsrtp2-dev
  # TLS (tls-certificate, https:// upstreams) is GLib's, from this GIO module;
  # the TLS tests make their CA with openssl and Chromium's trust with certutil.
  glib-networking openssl libnss3-tools
  libgtest-dev
  clang libclang-rt-14-dev
  iproute2 util-linux curl
  # The Debian packages (debian/) and the check of their systemd unit.
  debhelper dpkg-dev systemd
)
# The benchmark suite compares with Janus and reads JSON with jq.
if [ "${WB_WITH_BENCH:-0}" = 1 ]; then
  packages+=(janus jq linux-perf)
fi
if [ "${WB_WITH_BROWSER:-1}" = 1 ]; then
  # The metrics tests read /metrics with Prometheus' own promtool and a
  # Prometheus server (which the tests start themselves: see below).
  packages+=(prometheus)
  # Chromium and Firefox (Debian's ESR: no OpenH264, so no H.264) viewers.
  packages+=(chromium firefox-esr)
  # The TURN test: Debian's coturn, and nftables to block a viewer's UDP.
  packages+=(coturn nftables)
  # Keep a Node.js that is already there (it may not be Debian's).
  command -v npm >/dev/null 2>&1 || packages+=(nodejs npm)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "Installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -q
  # No service starts at install (Prometheus' would listen on every address):
  # the tests run their own servers, bound to loopback.
  policy=/usr/sbin/policy-rc.d
  restore_policy=""
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
    $SUDO chmod +x "$policy"
    restore_policy=1
  fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
  [ -z "$restore_policy" ] || $SUDO rm -f "$policy"
fi

if [ "${WB_WITH_BROWSER:-1}" = 1 ] && { [ ! -d tests/browser/node_modules/playwright-core ] ||
  [ ! -d tests/browser/node_modules/puppeteer-core ]; }; then
  echo "Installing playwright-core and puppeteer-core (npm) for the browser tests"
  (cd tests/browser && npm ci --no-audit --no-fund)
fi
