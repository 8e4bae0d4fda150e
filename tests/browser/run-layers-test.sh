#!/usr/bin/env bash
# Each viewer gets the layer its network carries. A gst-broadcast of a
# demanding picture (--pattern snow) in three layers, 854x480 at 1.2
# Mbit/s, 640x360 at 500 kbit/s and 320x180 at 150 kbit/s (480p, not 720p:
# three encoders and two decoding browsers share this machine's cores); one headless
# Chromium viewer in a network namespace of its own behind a veth shaped to
# 500 kbit/s (tc tbf; documentation addresses 192.0.2.1 and .2), one on
# loopback beside it. The shaped one must be moved down by its own feedback
# (REMB, receiver reports) to a layer that fits and play it at full rate
# with at most one freeze;
# the unshaped one must play at full rate and end the window on the top
# layer. Then the link is lifted to 5 Mbit/s and the shaped viewer must
# move up within 20 s and climb back to the top within LIFTED seconds
# (default 60; the times taken are printed). Chromium offers RTX, so its
# moves up are probed with padding first (docs/layers.md): a probe the
# thin link cannot carry ends without a switch, and is tried again within
# seconds.
#
# Usage (root, inside a network namespace of the test's own, as meson runs
# it): run-layers-test.sh <gst-plugin-dir> <build-dir-for-artifacts> <tools-dir>
# WINDOW (default 30): seconds both viewers are measured on the thin link.
set -u

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$SCRIPT_DIR/lib.sh"
read_dirs_with_tools "$@"
LOG="$ARTIFACTS/layers-node.log"
WINDOW=${WINDOW:-30}
LIFTED=${LIFTED:-60}
NS="wblayers$$"

say() { echo "[run-layers-test] $*"; }

check_dependencies broadcastsink
[ -x "$TOOLS/gst-broadcast" ] || { echo "ERROR: $TOOLS/gst-broadcast not built" >&2; exit 1; }
for tool in ip tc curl; do command -v $tool >/dev/null || { echo "ERROR: $tool not found" >&2; exit 1; }; done

stop_all() {
  cleanup
  remove_viewer_namespace "$NS" wblayers
}
trap stop_all EXIT
trap 'stop_all; exit 130' INT TERM

make_viewer_namespace "$NS" wblayers
tc qdisc add dev wblayers0 root tbf rate 500kbit burst 16kb latency 100ms || exit 1
say "veth 192.0.2.1 -> 192.0.2.2 (namespace $NS) shaped to 500 kbit/s"

read -r PORT < <(free_ports 1)
GST_DEBUG=${GST_DEBUG:-broadcastviewer:4} GST_PLUGIN_PATH="$PLUGIN_DIR" "$TOOLS/gst-broadcast" --pattern snow \
  --layers 854x480@1200,640x360@500,320x180@150 \
  --port "$PORT" --address 0.0.0.0 --ice-address 127.0.0.1,192.0.2.1 >"$LOG" 2>&1 &
GST_PID=$!
deadline=$((SECONDS + 20))
until curl -s -m 2 "http://127.0.0.1:$PORT/stats" | grep -q packets_in; do
  kill -0 "$GST_PID" 2>/dev/null || { echo "FAIL: the node exited"; print_log; exit 1; }
  [ $SECONDS -lt $deadline ] || { echo "FAIL: no /stats within 20 s"; print_log; exit 1; }
  sleep 0.25
done
say "node on port $PORT"

cd "$SCRIPT_DIR"
# The shaped viewer goes on watching after its window: the link is lifted
# then, and it must climb back to the top layer.
ip netns exec "$NS" env THEN_SECONDS="$LIFTED" timeout -k 5 $((WINDOW + LIFTED + 90)) node watch-stats.mjs \
  "http://192.0.2.1:$PORT/" shaped "$WINDOW" "$ARTIFACTS/layers-shaped.json" &
shaped=$!
timeout -k 5 $((WINDOW + 90)) node watch-stats.mjs "http://127.0.0.1:$PORT/" unshaped "$WINDOW" \
  "$ARTIFACTS/layers-unshaped.json"
unshaped_rc=$?
deadline=$((SECONDS + 60))
until [ -s "$ARTIFACTS/layers-shaped.json" ] || ! kill -0 $shaped 2>/dev/null || [ $SECONDS -ge $deadline ]; do
  sleep 0.2
done
tc qdisc change dev wblayers0 root tbf rate 5mbit burst 64kb latency 100ms || exit 1
say "link lifted to 5 Mbit/s"
wait $shaped
shaped_rc=$?
[ $shaped_rc -eq 0 ] && [ $unshaped_rc -eq 0 ] || { echo "FAIL: a viewer did not report"; print_log; exit 1; }

node -e '
const [shapedPath, unshapedPath] = process.argv.slice(1);
const fs = require("fs");
const s = JSON.parse(fs.readFileSync(shapedPath)), u = JSON.parse(fs.readFileSync(unshapedPath));
const l = s.connected ? JSON.parse(fs.readFileSync(shapedPath + ".then.json")) : { label: "lifted" };
const problems = [];
console.log(`[run-layers-test] shaped: ${JSON.stringify(s)}`);
console.log(`[run-layers-test] unshaped: ${JSON.stringify(u)}`);
console.log(`[run-layers-test] lifted: ${JSON.stringify(l)}`);
for (const v of [s, u]) if (!v.connected) problems.push(`the ${v.label} viewer never got media`);
if (!problems.length) {
  if (s.width >= 854) problems.push(`the shaped viewer ended on the top layer (${s.width} wide)`);
  if (s.fps < 25) problems.push(`the shaped viewer decoded ${s.fps.toFixed(1)} fps`);
  // The issue: at most one freeze in the window. Seen 2026-12-06 since NACK
  // answers are bounded by the layer: 1, 0, 0, 0, 0 (docs/layers.md);
  // before: 7 and 0 that morning, 9 in one CI run.
  if (s.freezes > 1) problems.push(`the shaped viewer froze ${s.freezes} times`);
  if (u.width !== 854) problems.push(`the unshaped viewer ended ${u.width} wide, not on the top layer`);
  if (u.fps < 25) problems.push(`the unshaped viewer decoded ${u.fps.toFixed(1)} fps`);
  // Not asserted: that it never moves. On a saturated machine (three
  // encoders and two browsers on two cores, as in CI) its own browser can
  // take its decoding delay for congestion and report a lower estimate for
  // seconds; it must be back on top by the end (printed below).
  // The page shows the layer and the estimate the node tells it of.
  const p = s.page || {};
  if (!p.layers || p.layers.codec !== "H264" || !(p.layers.layers || []).length || !(p.layers.estimate > 0))
    problems.push(`the shaped viewer\x27s page had no layers event with an estimate: ${JSON.stringify(p.layers)}`);
  else if (!/(quality \d\/3|video paused|switching quality).*network ~\d+ kbps/.test(p.text || ""))
    problems.push(`the shaped viewer\x27s page shows "${p.text}", not its quality and estimate`);
  const top = l.changes.find(([, w]) => w >= 854);
  if (!top) problems.push(`on the lifted link the viewer never reached the top: ${JSON.stringify(l.changes)}`);
  const up = l.changes.find(([, w]) => w > s.width);
  if (!up || up[0] > 20) problems.push(`on the lifted link the viewer did not move up within 20 s: ${JSON.stringify(l.changes)}`);
}
if (problems.length) { console.log("FAIL: " + problems.join("; ")); process.exit(1); }
console.log(`PASS: shaped ${s.fps.toFixed(1)} fps at ${s.widths.join(" -> ")} wide, ${s.freezes} freezes, page "${s.page.text}"; ` +
            `unshaped ${u.fps.toFixed(1)} fps at ${u.widths.join(" -> ")}, ${u.freezes} freezes; link lifted: top layer after ` +
            `${l.changes.find(([, w]) => w >= 854)[0]} s, first move up after ${l.changes.find(([, w]) => w > s.width)[0]} s ` +
            `(${JSON.stringify(l.changes)}, [s, width])`);
' "$ARTIFACTS/layers-shaped.json" "$ARTIFACTS/layers-unshaped.json"
rc=$?
if [ $rc -ne 0 ]; then
  # First what decided the viewers' layers: a long log's middle is what a
  # CI excerpt cuts.
  echo "---- the node's layer decisions ----"
  grep -aE "starts on layer|layer [0-9] -> [0-9]" "$LOG" | sed 's/\x1b\[[0-9;]*m//g' | head -n 60
  print_log
fi
exit $rc
