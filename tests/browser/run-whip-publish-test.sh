#!/usr/bin/env bash
# End-to-end WHIP ingest test: headless Chromium publishes its fake camera and
# microphone via WHIP to relaysrc (ingest mode), which feeds broadcastsink; a
# second Chromium page plays the broadcast through the built-in WHEP viewer page.
#
# Usage: run-whip-publish-test.sh <gst-plugin-dir> <build-dir-for-artifacts>
#
# Needs: gst-launch-1.0, node, /usr/bin/chromium, and `npm ci` run once in
# tests/browser. Writes whip-relay.log (the relay node's output) and
# whip-viewer-screenshot.png into the artifacts directory. Exit status: that of the test.
#
# Run it in a private network namespace, for example:
#   unshare --net bash -c 'ip link set lo up; tests/browser/run-whip-publish-test.sh build/gst build/test-artifacts'
#
# Optional environment:
#   WHIP_TEST_GST_DEBUG   GST_DEBUG for the relay node (default: broadcast*:4)
set -u

if [ $# -ne 2 ]; then
  echo "usage: $0 <gst-plugin-dir> <build-dir-for-artifacts>" >&2
  exit 2
fi

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PLUGIN_DIR=$(cd "$1" 2>/dev/null && pwd) || { echo "ERROR: plugin directory '$1' does not exist" >&2; exit 1; }
ARTIFACTS=$2
mkdir -p "$ARTIFACTS" || exit 1
ARTIFACTS=$(cd "$ARTIFACTS" && pwd)
LOG="$ARTIFACTS/whip-relay.log"
SCREENSHOT="$ARTIFACTS/whip-viewer-screenshot.png"
TOKEN=secret

say() { echo "[run-whip-publish-test] $*"; }

# (a) dependencies
source "$SCRIPT_DIR/lib.sh"
check_dependencies relaysrc broadcastsink

read -r WHIP_PORT VIEWER_PORT < <(free_ports 2)
if [ -z "${WHIP_PORT:-}" ] || [ -z "${VIEWER_PORT:-}" ]; then
  WHIP_PORT=$((19000 + $$ % 1000))
  VIEWER_PORT=$((WHIP_PORT + 1000))
fi
WHIP_URL="http://127.0.0.1:$WHIP_PORT/whip"
VIEWER_URL="http://127.0.0.1:$VIEWER_PORT/"

# (b) start the relay node: WHIP in, WHEP out
say "starting relay node: WHIP $WHIP_URL, viewers $VIEWER_URL (log: $LOG)"
GST_DEBUG="${WHIP_TEST_GST_DEBUG:-broadcast*:4}" GST_DEBUG_NO_COLOR=1 \
GST_PLUGIN_PATH="$PLUGIN_DIR" gst-launch-1.0 -e \
  relaysrc name=r whip-port="$WHIP_PORT" whip-address=127.0.0.1 ice-address=127.0.0.1 token="$TOKEN" \
  broadcastsink name=b port="$VIEWER_PORT" address=127.0.0.1 ice-address=127.0.0.1 \
  r.video ! queue ! b.video  r.audio ! queue ! b.audio \
  >"$LOG" 2>&1 &
GST_PID=$!

# (c) wait until the WHIP endpoint answers (any HTTP status) and the viewer page is served
http_status() {
  if command -v curl >/dev/null 2>&1; then
    curl -s -o /dev/null -m 2 -w '%{http_code}' "$1" 2>/dev/null
  else
    node -e "fetch(process.argv[1],{signal:AbortSignal.timeout(2000)}).then(r=>console.log(r.status)).catch(()=>console.log('000'))" "$1"
  fi
}
wait_http() {  # <url> <accept: "any" or a status> <seconds>
  local url=$1 want=$2 deadline=$((SECONDS + $3)) code=000
  while [ $SECONDS -lt $deadline ]; do
    if ! kill -0 "$GST_PID" 2>/dev/null; then
      wait "$GST_PID"; local rc=$?
      echo "FAIL: gst-launch-1.0 exited early (status $rc)"
      GST_PID=""
      print_log
      exit 1
    fi
    code=$(http_status "$url")
    if [ "$want" = any ] && [ -n "$code" ] && [ "$code" != 000 ]; then LAST_CODE=$code; return 0; fi
    if [ "$code" = "$want" ]; then LAST_CODE=$code; return 0; fi
    sleep 0.2
  done
  echo "FAIL: GET $url did not answer ${want/any/at all} within $3 s (last status: $code)"
  print_log
  exit 1
}
wait_http "$WHIP_URL" any 10
say "WHIP endpoint is up (GET /whip -> $LAST_CODE)"
wait_http "$VIEWER_URL" 200 10
say "viewer page is up (GET / -> $LAST_CODE)"

# (d) run the browser test
rm -f "$SCREENSHOT"
(cd "$SCRIPT_DIR" && timeout -k 5 120 node whip-publish-test.mjs "$WHIP_URL" "$VIEWER_URL" "$TOKEN" "$SCREENSHOT")
rc=$?
if [ $rc -ne 0 ]; then
  [ $rc -eq 124 ] && echo "FAIL: WHIP publish test killed after 120 s"
  if ! kill -0 "$GST_PID" 2>/dev/null; then echo "NOTE: the relay node (gst-launch-1.0) is no longer running"; fi
  cleanup
  print_log
else
  cleanup
fi

# (e) done
say "WHIP publish test exit status: $rc"
exit $rc
