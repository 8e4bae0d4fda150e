#!/usr/bin/env bash
# Builds everything with AddressSanitizer + UndefinedBehaviorSanitizer into
# ./build-asan (configured once) and runs the unit, net, element and
# integration suites there, inside a private network namespace that has only
# loopback, as scripts/run-tests.sh does for ./build. Fails on any test
# failure and on any sanitizer report from any process, leaks included
# (LeakSanitizer; the only suppressions, tests/sanitizers/lsan.supp, are for
# leaks of other libraries). Needs root (or sudo) for the namespace.
#
#   scripts/run-sanitizers.sh [meson test options]
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

if [ ! -f build-asan/build.ninja ]; then
  meson setup build-asan -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debugoptimized
fi
ninja -C build-asan

# Every ASan and LSan report, of the test binaries and of the processes
# they start (test-node, gst-broadcast, gst-broadcast-load), goes to a file
# of its own: a child that a test kills after its report would otherwise
# leave only a line in the test's log and maybe a passing test. Any file
# there fails the run. UBSan ignores log_path next to ASan and writes to
# stderr, which meson keeps in the test log: "runtime error:" there fails it.
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
logs=$repo/build-asan/sanitizer-logs
$SUDO rm -rf "$logs"
mkdir -p "$logs"

# GStreamer scans plugins in a child, the system's gst-plugin-scanner, which
# has no ASan runtime and cannot load our plugin (it links libasan, which
# must come first). So the registry of this build is written once here, by
# gst-inspect-1.0 with libasan preloaded, which also proves that the plugin
# loads and registers relaysrc. The scan loads every installed plugin, and
# with them leaks of their own (OpenNI2 drivers, fontconfig through pango,
# GLib's type and quark tables): not ours, so leak checking is off for it.
# In the tests, GST_REGISTRY_FORK=no: should anything scan again, it does so
# inside the process, always one of our ASan binaries, never in the scanner.
# (LD_PRELOAD of libasan for all the tests would put meson and bash under
# ASan too, and LSan would report their leaks.)
GST_REGISTRY=$repo/build-asan/tests/registry.bin GST_PLUGIN_PATH=$repo/build-asan/gst GST_REGISTRY_FORK=no \
  LD_PRELOAD="$(g++ -print-file-name=libasan.so)" ASAN_OPTIONS=detect_leaks=0 \
  gst-inspect-1.0 relaysrc >/dev/null

# One integration test measures what ASan changes on purpose, so it is left
# out here (and runs in scripts/run-tests.sh): LargeBodies... checks that
# the process's RSS stays flat, while ASan keeps freed memory in its
# quarantine (256 MB) and pads every block.
# fast_unwind_on_malloc=0: the stack of every allocation through the slow
# unwinder. The fast one needs frame pointers, GLib has none, and it stops
# at g_malloc: no leak report could say what allocated, nor a suppression.
env=(
  "ASAN_OPTIONS=halt_on_error=1:detect_leaks=1:fast_unwind_on_malloc=0:log_path=$logs/asan"
  "UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1"
  "LSAN_OPTIONS=suppressions=$repo/tests/sanitizers/lsan.supp:print_suppressions=0"
  "GST_REGISTRY_FORK=no"
  "GTEST_FILTER=-Abuse.LargeBodiesAreRefusedWithoutBeingKept"
)

status=0
# Under ASan the integration suite took 256-282 s here against 165 s in
# ./build; three times meson's timeouts leaves room for a slower machine.
$SUDO env "${env[@]}" unshare --net bash -c \
  'ip link set lo up && meson test -C build-asan --print-errorlogs --timeout-multiplier 3 "$@" unit net elements integration' \
  _ "$@" || status=$?

if grep -n "runtime error:" build-asan/meson-logs/testlog.txt; then
  echo "UBSan reports: above, and in build-asan/meson-logs/testlog.txt"
  status=1
fi
if [ -n "$(ls -A "$logs")" ]; then
  for f in "$logs"/*; do
    echo "=== $f"
    cat "$f"
  done
  echo "sanitizer reports: $(ls "$logs" | wc -l) (above, and in $logs)"
  status=1
fi
[ "$status" -eq 0 ] || bash scripts/print-failures.sh build-asan/meson-logs/testlog.txt
exit "$status"
