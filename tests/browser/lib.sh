# Shared by the browser test scripts (sourced, not run): dependency checks,
# free ports, and the one gst-launch node each script starts and must stop.
# Expects SCRIPT_DIR, PLUGIN_DIR and LOG set, and a say() function.

# The arguments of a test that runs the CLI and the load generator:
# <gst-plugin-dir> <build-dir-for-artifacts> <tools-dir>. Sets PLUGIN_DIR,
# ARTIFACTS (created) and TOOLS, all absolute.
read_dirs_with_tools() {
  if [ $# -ne 3 ]; then
    echo "usage: $0 <gst-plugin-dir> <build-dir-for-artifacts> <tools-dir>" >&2
    exit 2
  fi
  PLUGIN_DIR=$(cd "$1" 2>/dev/null && pwd) || { echo "ERROR: plugin directory '$1' does not exist" >&2; exit 1; }
  TOOLS=$(cd "$3" 2>/dev/null && pwd) || { echo "ERROR: tools directory '$3' does not exist" >&2; exit 1; }
  mkdir -p "$2" || exit 1
  ARTIFACTS=$(cd "$2" && pwd)
}

# Fails unless playwright-core, node, gst-launch, Chromium and the given
# elements are all there.
check_dependencies() {
  if [ ! -d "$SCRIPT_DIR/node_modules/playwright-core" ]; then
    echo "ERROR: $SCRIPT_DIR/node_modules is missing." >&2
    echo "ERROR: run 'npm ci' in tests/browser (cd \"$SCRIPT_DIR\" && npm ci) before running this test." >&2
    exit 1
  fi
  for tool in node gst-launch-1.0 gst-inspect-1.0; do
    command -v "$tool" >/dev/null 2>&1 || { echo "ERROR: '$tool' not found in PATH" >&2; exit 1; }
  done
  if [ ! -x "${CHROMIUM_PATH:-/usr/bin/chromium}" ]; then
    echo "ERROR: ${CHROMIUM_PATH:-/usr/bin/chromium} not found (apt-get install chromium)" >&2
    exit 1
  fi
  for element in "$@"; do
    if ! GST_PLUGIN_PATH="$PLUGIN_DIR" gst-inspect-1.0 "$element" >/dev/null 2>&1; then
      echo "ERROR: element '$element' not found with GST_PLUGIN_PATH=$PLUGIN_DIR" >&2
      GST_PLUGIN_PATH="$PLUGIN_DIR" gst-inspect-1.0 "$element" 2>&1 | tail -5 >&2
      exit 1
    fi
  done
}

# Prints N distinct free TCP ports on 127.0.0.1 (all held open while choosing).
free_ports() {
  node -e "
const net = require('net');
const servers = Array.from({ length: $1 }, () => net.createServer());
const ports = [];
const next = (i) => i === servers.length
  ? (console.log(ports.join(' ')), servers.forEach((s) => s.close()))
  : servers[i].listen(0, '127.0.0.1', () => { ports.push(servers[i].address().port); next(i + 1); });
next(0);" 2>/dev/null
}

# The node started in the background sets GST_PID; it is stopped on exit.
GST_PID=""
cleanup() {
  if [ -n "$GST_PID" ] && kill -0 "$GST_PID" 2>/dev/null; then
    kill -INT "$GST_PID" 2>/dev/null
    for _ in $(seq 30); do kill -0 "$GST_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$GST_PID" 2>/dev/null
    wait "$GST_PID" 2>/dev/null
  fi
  GST_PID=""
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT TERM

print_log() {
  echo "---- node log ($LOG), last 200 lines ----"
  tail -n 200 "$LOG" 2>/dev/null
  echo "---- end of node log ----"
}

# make_viewer_namespace, remove_viewer_namespace.
source "$(dirname "${BASH_SOURCE[0]}")/netns.sh"
