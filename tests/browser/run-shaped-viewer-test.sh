#!/usr/bin/env bash
# A viewer whose link cannot carry the stream must not cost the others
# keyframes. A gst-broadcast of a demanding picture (--pattern snow,
# 1280x720 at 1.5 Mbit/s), one headless Chromium viewer in a network
# namespace of its own behind a veth shaped to 500 kbit/s (tc tbf;
# documentation addresses 192.0.2.1 and .2), and one on loopback beside it.
# The shaped one loses most of every keyframe and sends PLIs until its own
# feedback pauses its video (docs/layers.md; it keeps its sound, and retries
# the video after a back-off); the node's per-viewer back-off and the pause
# must keep the keyframe requests it passes to the encoder to a handful, and
# the unshaped viewer must play at full rate with no more keyframes than the
# stream's own GOP and a few.
#
# Usage (root, inside a network namespace of the test's own, as meson runs
# it): run-shaped-viewer-test.sh <gst-plugin-dir> <build-dir-for-artifacts> <tools-dir>
# WINDOW (default 30): seconds both viewers are measured.
set -u

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$SCRIPT_DIR/lib.sh"
read_dirs_with_tools "$@"
LOG="$ARTIFACTS/shaped-viewer-node.log"
WINDOW=${WINDOW:-30}
NS="wbshaped$$"

say() { echo "[run-shaped-viewer-test] $*"; }

check_dependencies broadcastsink
[ -x "$TOOLS/gst-broadcast" ] || { echo "ERROR: $TOOLS/gst-broadcast not built" >&2; exit 1; }
for tool in ip tc curl; do command -v $tool >/dev/null || { echo "ERROR: $tool not found" >&2; exit 1; }; done

stop_all() {
  cleanup
  remove_viewer_namespace "$NS" wbshaped
}
trap stop_all EXIT
trap 'stop_all; exit 130' INT TERM

# The viewer's namespace and the shaped link (the node's side shapes what
# it sends: the media).
make_viewer_namespace "$NS" wbshaped
tc qdisc add dev wbshaped0 root tbf rate 500kbit burst 16kb latency 100ms || exit 1
say "veth 192.0.2.1 -> 192.0.2.2 (namespace $NS) shaped to 500 kbit/s"

read -r PORT < <(free_ports 1)
GST_PLUGIN_PATH="$PLUGIN_DIR" "$TOOLS/gst-broadcast" --pattern snow --width 1280 --height 720 --bitrate 1500 \
  --port "$PORT" --address 0.0.0.0 --ice-address 127.0.0.1,192.0.2.1 >"$LOG" 2>&1 &
GST_PID=$!
stats() { curl -s -m 2 "http://127.0.0.1:$PORT/stats"; }
field() { grep -o "\"video\":{[^}]*" | grep -o "\"$1\":[0-9]*" | head -1 | cut -d: -f2; }
deadline=$((SECONDS + 20))
until [ -n "$(stats | field keyframe_requests_sent)" ]; do
  kill -0 "$GST_PID" 2>/dev/null || { echo "FAIL: the node exited"; print_log; exit 1; }
  [ $SECONDS -lt $deadline ] || { echo "FAIL: no /stats within 20 s"; print_log; exit 1; }
  sleep 0.25
done
before=$(stats)
say "node on port $PORT; before: sent $(field keyframe_requests_sent <<<"$before"), refused $(field keyframe_requests_refused <<<"$before")"

cd "$SCRIPT_DIR"
ip netns exec "$NS" timeout -k 5 $((WINDOW + 90)) node watch-stats.mjs "http://192.0.2.1:$PORT/" shaped "$WINDOW" \
  "$ARTIFACTS/shaped-viewer.json" &
shaped=$!
timeout -k 5 $((WINDOW + 90)) node watch-stats.mjs "http://127.0.0.1:$PORT/" unshaped "$WINDOW" \
  "$ARTIFACTS/unshaped-viewer.json"
unshaped_rc=$?
wait $shaped
shaped_rc=$?
after=$(stats)
[ $shaped_rc -eq 0 ] && [ $unshaped_rc -eq 0 ] || { echo "FAIL: a viewer did not report"; print_log; exit 1; }

sent=$(( $(field keyframe_requests_sent <<<"$after") - $(field keyframe_requests_sent <<<"$before") ))
refused=$(( $(field keyframe_requests_refused <<<"$after") - $(field keyframe_requests_refused <<<"$before") ))
say "keyframe requests passed to the encoder: $sent, refused: $refused (both viewers' joins included)"
node -e '
const [shapedPath, unshapedPath, sent, windowS] = process.argv.slice(1);
const fs = require("fs");
const s = JSON.parse(fs.readFileSync(shapedPath)), u = JSON.parse(fs.readFileSync(unshapedPath));
const problems = [];
// The stream GOP is 2 s: windowS / 2 keyframes; a handful more is what the
// back-off lets one viewer cost (1, 2, 4, 8, 16 s apart).
if (!u.connected) problems.push("the unshaped viewer never got media");
else {
  if (u.fps < 25) problems.push(`the unshaped viewer decoded ${u.fps.toFixed(1)} fps`);
  if (u.keyframes > windowS / 2 + 8) problems.push(`the unshaped viewer decoded ${u.keyframes} keyframes in ${windowS} s`);
}
if (Number(sent) > 10) problems.push(`${sent} keyframe requests reached the encoder`);
// Its network cannot carry the video, so the video is paused: the sound
// (50 Opus packets a second) must go on.
if (s.connected && s.audio < 25 * windowS) problems.push(`the shaped viewer got ${s.audio} audio packets in ${windowS} s`);
console.log(`[run-shaped-viewer-test] shaped: ${JSON.stringify(s)}`);
console.log(`[run-shaped-viewer-test] unshaped: ${JSON.stringify(u)}`);
if (problems.length) { console.log("FAIL: " + problems.join("; ")); process.exit(1); }
console.log(`PASS: the shaped viewer sent ${s.plis ?? "?"} PLIs and got ${s.audio} audio packets; ` +
            `${sent} keyframe requests reached the encoder; ` +
            `the unshaped viewer decoded ${u.fps.toFixed(1)} fps with ${u.keyframes} keyframes in ${windowS} s`);
' "$ARTIFACTS/shaped-viewer.json" "$ARTIFACTS/unshaped-viewer.json" "$sent" "$WINDOW"
rc=$?
[ $rc -eq 0 ] || print_log
exit $rc
