#!/usr/bin/env bash
# The broadcast plays in Firefox, not only in Chromium. Debian's firefox-esr
# has no OpenH264: its offers carry no H.264. One headless firefox-esr viewer
# (firefox-watch.mjs, puppeteer-core over WebDriver BiDi) in a network
# namespace of its own behind a veth (documentation addresses 192.0.2.1 and
# .2): Firefox gathers no ICE candidate with loopback alone, so the viewer
# gets an address and a default route through the node's side.
#  1. An H.264 broadcast with a VP8 layer beside (--layers
#     640x360@800,480x270@500:vp8): Firefox must be served the VP8 layer
#     (480x270) and decode it at 20 fps or more over the window, with sound.
#  2. An H.264-only broadcast: Firefox gets the sound, and the page must say
#     that this browser cannot decode the video (not "receiving live stream"
#     over a black picture).
#
# Usage (root, inside a network namespace of the test's own, as meson runs
# it): run-firefox-test.sh <gst-plugin-dir> <build-dir-for-artifacts> <tools-dir>
# WINDOW (default 10): seconds the viewer is measured.
set -u

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$SCRIPT_DIR/lib.sh"
read_dirs_with_tools "$@"
LOG="$ARTIFACTS/firefox-node.log"
WINDOW=${WINDOW:-10}
FIREFOX=${FIREFOX_PATH:-/usr/bin/firefox-esr}
NS="wbff$$"

say() { echo "[run-firefox-test] $*"; }

# Not lib.sh's check_dependencies: that one wants Chromium and playwright-core,
# which this test does not use.
[ -d "$SCRIPT_DIR/node_modules/puppeteer-core" ] ||
  { echo "ERROR: puppeteer-core missing: run 'npm ci' in tests/browser (cd \"$SCRIPT_DIR\" && npm ci)" >&2; exit 1; }
[ -x "$FIREFOX" ] || { echo "ERROR: $FIREFOX not found (apt-get install firefox-esr)" >&2; exit 1; }
[ -x "$TOOLS/gst-broadcast" ] || { echo "ERROR: $TOOLS/gst-broadcast not built" >&2; exit 1; }
for tool in node ip curl gst-inspect-1.0; do
  command -v $tool >/dev/null || { echo "ERROR: '$tool' not found in PATH" >&2; exit 1; }
done
GST_PLUGIN_PATH="$PLUGIN_DIR" gst-inspect-1.0 broadcastsink >/dev/null 2>&1 ||
  { echo "ERROR: element 'broadcastsink' not found with GST_PLUGIN_PATH=$PLUGIN_DIR" >&2; exit 1; }
# The viewer's namespace routes everything through this one: that must lead
# nowhere but here (a namespace of the test's own, with loopback only).
if [ -n "$(ip route show default)" ]; then
  echo "ERROR: this network namespace has a default route; run the test in one of its own:" >&2
  echo "ERROR:   unshare --net bash -c 'ip link set lo up; bash $0 $*'" >&2
  exit 1
fi

# Firefox and its content processes are the only ones in the viewer's
# namespace: whatever is left there at the end is ended with it.
stop_all() {
  local pids
  pids=$(ip netns pids "$NS" 2>/dev/null)
  [ -z "$pids" ] || kill -KILL $pids 2>/dev/null
  cleanup
  remove_viewer_namespace "$NS" wbff
}
trap stop_all EXIT
trap 'stop_all; exit 130' INT TERM

make_viewer_namespace "$NS" wbff route
say "veth 192.0.2.1 -> 192.0.2.2 (namespace $NS), default route via 192.0.2.1"
: >"$LOG"

# A node with these gst-broadcast options, its ICE candidate on the veth only.
start_node() {
  read -r PORT < <(free_ports 1)
  GST_PLUGIN_PATH="$PLUGIN_DIR" "$TOOLS/gst-broadcast" "$@" \
    --port "$PORT" --address 0.0.0.0 --ice-address 192.0.2.1 >>"$LOG" 2>&1 &
  GST_PID=$!
  local deadline=$((SECONDS + 20))
  until curl -s -m 2 "http://127.0.0.1:$PORT/stats" | grep -q packets_in; do
    kill -0 "$GST_PID" 2>/dev/null || { echo "FAIL: the node exited"; print_log; exit 1; }
    [ $SECONDS -lt $deadline ] || { echo "FAIL: no /stats within 20 s"; print_log; exit 1; }
    sleep 0.25
  done
  ip netns exec "$NS" curl -s -m 5 -o /dev/null "http://192.0.2.1:$PORT/" ||
    { echo "FAIL: the page is not reachable from namespace $NS"; exit 1; }
  say "node ($*) on port $PORT"
}

# $1 label, $2 window seconds: Firefox in the namespace, to $ARTIFACTS/firefox-$1.json.
# Its home and caches are under the artifacts too: nothing of the machine's
# own Firefox profile is read or written. Waited for in the background: a
# signal (meson's timeout) then runs the trap at once, not after the viewer.
run_viewer() {
  local home="$ARTIFACTS/firefox-home" viewer
  mkdir -p "$home"
  rm -f "$ARTIFACTS/firefox-$1.json"
  (cd "$SCRIPT_DIR" && exec ip netns exec "$NS" env HOME="$home" XDG_CACHE_HOME="$home/.cache" \
     XDG_CONFIG_HOME="$home/.config" timeout -k 5 $(($2 + ${PLAY_TIMEOUT:-60} + ${SETTLE:-2} + 100)) \
     node firefox-watch.mjs "http://192.0.2.1:$PORT/" "$1" "$2" "$ARTIFACTS/firefox-$1.json") &
  viewer=$!
  wait $viewer ||
    { echo "FAIL: the Firefox viewer did not report (its log: $ARTIFACTS/firefox-$1.log)"; print_log; exit 1; }
}

# Phase 1: an H.264 broadcast with a VP8 layer; Firefox plays the VP8 layer.
# (The VP8 layer flows a moment after the H.264 one: the page retries its
# 406 until it does.)
start_node --layers 640x360@800,480x270@500:vp8
run_viewer vp8 "$WINDOW"
node -e '
const r = JSON.parse(require("fs").readFileSync(process.argv[1]));
console.log(`[run-firefox-test] vp8 layer: ${r.browser}, played ${r.played}, ${r.mimeType}, ` +
            `${r.framesDecoded} frames in ${(r.seconds ?? 0).toFixed(1)} s = ${r.fps.toFixed(1)} fps, ` +
            `${r.frameWidth}x${r.frameHeight}, ${r.audioPacketsReceived} audio packets, status "${r.status}"`);
const problems = [];
if (!r.played) problems.push(`the video never played (status "${r.status}", statuses ${JSON.stringify(r.statuses)})`);
else {
  if (r.mimeType !== "video/VP8") problems.push(`video codec ${r.mimeType}, not video/VP8`);
  if (r.frameWidth !== 480) problems.push(`${r.frameWidth}x${r.frameHeight}: not the VP8 layer (480x270)`);
  if (!(r.fps >= 20)) problems.push(`${r.fps.toFixed(1)} fps decoded (at least 20 wanted)`);
  if (!(r.audioPacketsReceived > 0)) problems.push("no audio packets received");
  if (r.reconnects) problems.push(`the page reconnected ${r.reconnects} times in the window`);
}
if (problems.length) { console.log("FAIL: vp8 layer: " + problems.join("; ")); process.exit(1); }
console.log(`PASS: vp8 layer: ${r.fps.toFixed(1)} fps of ${r.mimeType} at ${r.frameWidth}x${r.frameHeight}, ` +
            `${r.audioPacketsReceived} audio packets (${r.browser})`);
' "$ARTIFACTS/firefox-vp8.json" || { print_log; exit 1; }

# Phase 2: H.264 only. The video cannot play: waited for briefly.
cleanup
start_node --codec h264
PLAY_TIMEOUT=8 run_viewer h264 3
node -e '
const r = JSON.parse(require("fs").readFileSync(process.argv[1]));
console.log(`[run-firefox-test] h264 only: played ${r.played}, ${r.audioPacketsReceived} audio packets, ` +
            `status "${r.status}", codecs ${JSON.stringify(r.codecs)}`);
const problems = [];
if (r.played) problems.push(`the H.264 video played (${r.mimeType})`);
if (!/sound only: this browser cannot decode the broadcast.s video \(we send H264 .* but the offer has VP8, VP9, AV1\)$/.test(r.status || ""))
  problems.push(`the page says "${r.status}", not that this browser cannot decode the video`);
if (!(r.audioPacketsReceived > 0)) problems.push("no audio packets received");
if (problems.length) { console.log("FAIL: h264 only: " + problems.join("; ")); process.exit(1); }
console.log(`PASS: h264 only: sound (${r.audioPacketsReceived} packets), and the page says "${r.status}"`);
' "$ARTIFACTS/firefox-h264.json" || { print_log; exit 1; }
exit 0
