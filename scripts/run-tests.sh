#!/usr/bin/env bash
# Installs, builds and runs every test (unit, element, integration, browser,
# sanitizers, fuzzers, packages, arm64 under qemu).
# Tests open sockets, so they run inside a private network namespace that has
# only loopback: nothing they send can leave this machine. Needs root (or
# sudo) for that namespace.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO unshare --net bash -c 'ip link set lo up && meson test -C build --print-errorlogs "$@"' _ "$@" ||
  { bash scripts/print-failures.sh build/meson-logs/testlog.txt; exit 1; }
# The unit, net, element and integration suites again under ASan + UBSan +
# LSan (build-asan; docs/security.md).
bash scripts/run-sanitizers.sh
# Every parser of untrusted bytes under libFuzzer with ASan+UBSan, 30 s each
# (docs/fuzzing.md); no network.
bash scripts/run-fuzz.sh
# The Debian packages: built, installed with apt, the installed node run,
# purged (docs/operations.md, "Packages").
$SUDO bash tests/package/run-package-test.sh build/packages
# arm64: cross-built, its unit, net and element suites run under qemu-user,
# its Debian packages cross-built (docs/operations.md, "arm64").
$SUDO bash tests/arm64/run-arm64-test.sh build-arm64
