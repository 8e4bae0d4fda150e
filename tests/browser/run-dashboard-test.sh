#!/usr/bin/env bash
# Browser test of the dashboard page: a relay tree of two gst-broadcast nodes
# (a broadcast and a relay pulling from it), ROOT_VIEWERS simulated viewers
# on the root and RELAY_VIEWERS on the relay (gst-broadcast-load: real ICE,
# DTLS, SRTP and receiver reports), then dashboard-test.mjs checks in
# headless Chromium what /dashboard shows on both.
#
# Usage: run-dashboard-test.sh <gst-plugin-dir> <build-dir-for-artifacts> <tools-dir>
#
# Writes dashboard-screenshot.png, dashboard-relay-screenshot.png and the
# nodes' logs into the artifacts directory. Exit status: that of the test.
set -u

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$SCRIPT_DIR/lib.sh"
read_dirs_with_tools "$@"
LOG="$ARTIFACTS/dashboard-root.log"
RELAY_LOG="$ARTIFACTS/dashboard-relay.log"
ROOT_VIEWERS=${ROOT_VIEWERS:-50}
RELAY_VIEWERS=${RELAY_VIEWERS:-4}

say() { echo "[run-dashboard-test] $*"; }

check_dependencies broadcastsink relaysrc
for tool in gst-broadcast gst-broadcast-load; do
  [ -x "$TOOLS/$tool" ] || { echo "ERROR: $TOOLS/$tool not built" >&2; exit 1; }
done

RELAY_PID="" LOAD_PIDS=""
stop_all() {
  for pid in $LOAD_PIDS $RELAY_PID; do kill -INT "$pid" 2>/dev/null; done
  for pid in $LOAD_PIDS $RELAY_PID; do
    for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  done
  RELAY_PID="" LOAD_PIDS=""
  cleanup
}
trap stop_all EXIT
trap 'stop_all; exit 130' INT TERM

read -r PORT RELAY_PORT < <(free_ports 2)
ROOT="http://127.0.0.1:$PORT/"
RELAY="http://127.0.0.1:$RELAY_PORT/"
TOKEN="metrics-$RANDOM$RANDOM"
node_args=(--address 127.0.0.1 --ice-address 127.0.0.1 --metrics-token "$TOKEN")

say "root on $ROOT, relay on $RELAY"
GST_PLUGIN_PATH="$PLUGIN_DIR" "$TOOLS/gst-broadcast" --port "$PORT" "${node_args[@]}" >"$LOG" 2>&1 &
GST_PID=$!
GST_PLUGIN_PATH="$PLUGIN_DIR" "$TOOLS/gst-broadcast" relay --from "${ROOT}whep" --port "$RELAY_PORT" \
  "${node_args[@]}" >"$RELAY_LOG" 2>&1 &
RELAY_PID=$!

# Both serve their dashboards, and the relay pulls (the root counts a child).
deadline=$((SECONDS + 20))
children=""
while [ $SECONDS -lt $deadline ]; do
  for pid in $GST_PID $RELAY_PID; do
    kill -0 "$pid" 2>/dev/null || { echo "FAIL: a node exited early"; print_log; tail -50 "$RELAY_LOG"; exit 1; }
  done
  children=$(curl -s -m 2 -H "Authorization: Bearer $TOKEN" "${ROOT}stats" | grep -o '"children":[0-9]*' | head -1)
  relay_page=$(curl -s -o /dev/null -m 2 -w '%{http_code}' "${RELAY}dashboard")
  [ "$children" = '"children":1' ] && [ "$relay_page" = 200 ] && break
  sleep 0.25
done
if [ "$children" != '"children":1' ]; then
  echo "FAIL: the root does not count the relay as its child within 20 s ($children)"
  print_log; tail -50 "$RELAY_LOG"; exit 1
fi
say "the relay is the root's child"

"$TOOLS/gst-broadcast-load" -u "${ROOT}whep" -n "$ROOT_VIEWERS" --hold 300 >"$ARTIFACTS/dashboard-load-root.log" 2>&1 &
LOAD_PIDS="$!"
"$TOOLS/gst-broadcast-load" -u "${RELAY}whep" -n "$RELAY_VIEWERS" --hold 300 >"$ARTIFACTS/dashboard-load-relay.log" 2>&1 &
LOAD_PIDS="$LOAD_PIDS $!"

(cd "$SCRIPT_DIR" && timeout -k 5 150 node dashboard-test.mjs "$ROOT" "$RELAY" "$TOKEN" "$ROOT_VIEWERS" "$RELAY_VIEWERS" "$ARTIFACTS")
rc=$?
if [ $rc -ne 0 ]; then
  [ $rc -eq 124 ] && echo "FAIL: dashboard test killed after 150 s"
  # Stopped, the generators print their summaries: who failed, and why.
  stop_all
  for log in "$ARTIFACTS/dashboard-load-root.log" "$ARTIFACTS/dashboard-load-relay.log"; do
    echo "---- $log ----"; sed -n '/== gst-broadcast-load summary/,$p' "$log" | head -20
  done
  print_log
  echo "---- relay log ----"; tail -50 "$RELAY_LOG"
fi
say "dashboard test exit status: $rc"
exit $rc
