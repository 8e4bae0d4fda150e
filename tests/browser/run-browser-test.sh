#!/usr/bin/env bash
# End-to-end browser test: starts a broadcast with broadcastsink and checks in headless
# Chromium that the viewer page (WHEP) plays its video and audio.
#
# Usage: run-browser-test.sh <gst-plugin-dir> <build-dir-for-artifacts>
#
# Needs: gst-launch-1.0 (+ x264enc, opusenc), node, /usr/bin/chromium, and
# `npm ci` run once in tests/browser. Writes browser-screenshot.png and
# browser-broadcast.log into the artifacts directory. Exit status: that of the test.
#
# Optional environment:
#   BROWSER_TEST_DUMMY_IF=1  add a dummy interface (10.203.0.1/24) first; only done when
#                            running as root inside a network namespace whose only link is lo.
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
LOG="$ARTIFACTS/browser-broadcast.log"
SCREENSHOT="$ARTIFACTS/browser-screenshot.png"

say() { echo "[run-browser-test] $*"; }

# (a) dependencies
source "$SCRIPT_DIR/lib.sh"
check_dependencies broadcastsink

# Optional dummy interface, never in the host's real network namespace.
if [ "${BROWSER_TEST_DUMMY_IF:-0}" = 1 ]; then
  links=$(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | sed 's/@.*//' | sort -u | tr '\n' ' ')
  if [ "$(id -u)" = 0 ] && [ "$links" = "lo " ]; then
    say "network namespace has only lo: adding dummy interface wbdummy0 (10.203.0.1/24)"
    if ! { ip link add wbdummy0 type dummy && ip addr add 10.203.0.1/24 dev wbdummy0 && ip link set wbdummy0 up; }; then
      say "WARNING: could not add the dummy interface"
    fi
  else
    say "BROWSER_TEST_DUMMY_IF ignored: not root, or namespace has interfaces other than lo ($links)"
  fi
fi

read -r PORT < <(free_ports 1)
[ -n "${PORT:-}" ] || PORT=$((18080 + $$ % 1000))
URL="http://127.0.0.1:$PORT/"
# Only viewers with the token may watch: the page reads it from its fragment.
TOKEN="viewer-$RANDOM$RANDOM"

# (b) start the broadcast
say "starting broadcast on $URL (log: $LOG)"
GST_PLUGIN_PATH="$PLUGIN_DIR" GST_DEBUG="${GST_DEBUG:+$GST_DEBUG,}broadcastviewer:4" GST_DEBUG_NO_COLOR=1 \
  gst-launch-1.0 -e \
  videotestsrc is-live=true pattern=ball ! video/x-raw,width=640,height=360,framerate=30/1 \
  ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=60 bitrate=800 \
  ! video/x-h264,profile=constrained-baseline ! bs.video \
  audiotestsrc is-live=true wave=ticks ! audioconvert ! audioresample ! opusenc ! bs.audio \
  broadcastsink name=bs port="$PORT" address=127.0.0.1 ice-address=127.0.0.1 viewer-token="$TOKEN" \
  >"$LOG" 2>&1 &
GST_PID=$!

# (c) wait until the page is served
http_status() {
  if command -v curl >/dev/null 2>&1; then
    curl -s -o /dev/null -m 2 -w '%{http_code}' "$1" 2>/dev/null
  else
    node -e "fetch(process.argv[1],{signal:AbortSignal.timeout(2000)}).then(r=>console.log(r.status)).catch(()=>console.log(0))" "$1"
  fi
}
deadline=$((SECONDS + 10))
code=000
while [ $SECONDS -lt $deadline ]; do
  if ! kill -0 "$GST_PID" 2>/dev/null; then
    wait "$GST_PID"; rc=$?
    echo "FAIL: gst-launch-1.0 exited early (status $rc)"
    GST_PID=""
    print_log
    exit 1
  fi
  code=$(http_status "$URL")
  [ "$code" = 200 ] && break
  sleep 0.2
done
if [ "$code" != 200 ]; then
  echo "FAIL: GET $URL did not answer 200 within 10 s (last status: $code)"
  print_log
  exit 1
fi
say "server is up (GET / -> 200)"
offer_status=$(curl -s -o /dev/null -m 5 -w '%{http_code}' -X POST -H 'Content-Type: application/sdp' --data x "${URL}whep")
if [ "$offer_status" != 401 ]; then
  echo "FAIL: an offer without the viewer token got $offer_status, not 401"
  cleanup
  print_log
  exit 1
fi
say "an offer without the viewer token -> 401"

# (d) run the browser test
rm -f "$SCREENSHOT"
(cd "$SCRIPT_DIR" && timeout -k 5 90 node browser-test.mjs "$URL#token=$TOKEN" "$SCREENSHOT")
rc=$?
if [ $rc -ne 0 ]; then
  [ $rc -eq 124 ] && echo "FAIL: browser test killed after 90 s"
  if ! kill -0 "$GST_PID" 2>/dev/null; then echo "NOTE: the broadcast (gst-launch-1.0) is no longer running"; fi
  cleanup
  print_log
else
  cleanup
  # Chromium must have been served from the shared ICE-lite port (the default).
  if ! grep -q "direct send, ICE-lite" "$LOG"; then
    echo "FAIL: the browser was not served from the ICE-lite port:"
    grep "sending through webrtcbin" "$LOG" || true
    rc=1
  fi
fi

# (e) done
say "browser test exit status: $rc"
exit $rc
