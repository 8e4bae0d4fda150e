#!/usr/bin/env bash
# Random loss is not congestion: a viewer whose link loses 2 % of packets at
# random (a noisy radio link) but carries plenty must not be moved from
# layer to layer. A gst-broadcast of a demanding picture (--pattern snow) in
# three layers (854x480 at 1.2 Mbit/s, 640x360 at 500 kbit/s, 320x180 at 150
# kbit/s) and one headless Chromium viewer in a network namespace of its own
# behind a veth (documentation addresses 192.0.2.1 and .2) whose node side
# drops 2 % of the UDP packets at random (nftables numgen: this kernel has
# no netem). The viewer must play at >= 25 fps with at most one layer switch
# per 10 s of the window (NACK repairs the loss; LayerChoice ignores loss
# this light), on the top layer at the end.
#
# Usage (root, inside a network namespace of the test's own, as meson runs
# it): run-lossy-viewer-test.sh <gst-plugin-dir> <build-dir-for-artifacts> <tools-dir>
# WINDOW (default 30): seconds the viewer is measured. LOSS (default 2): percent.
set -u

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$SCRIPT_DIR/lib.sh"
read_dirs_with_tools "$@"
LOG="$ARTIFACTS/lossy-viewer-node.log"
WINDOW=${WINDOW:-30}
LOSS=${LOSS:-2}
NS="wblossy$$"

say() { echo "[run-lossy-viewer-test] $*"; }

check_dependencies broadcastsink
[ -x "$TOOLS/gst-broadcast" ] || { echo "ERROR: $TOOLS/gst-broadcast not built" >&2; exit 1; }
for tool in ip nft curl; do command -v $tool >/dev/null || { echo "ERROR: $tool not found" >&2; exit 1; }; done

stop_all() {
  cleanup
  nft delete table inet wblossy 2>/dev/null
  remove_viewer_namespace "$NS" wblossy
}
trap stop_all EXIT
trap 'stop_all; exit 130' INT TERM

make_viewer_namespace "$NS" wblossy
# What the node sends the viewer over UDP (media, and STUN and DTLS with it).
nft add table inet wblossy || exit 1
nft add chain inet wblossy out '{ type filter hook output priority 0; }' || exit 1
nft add rule inet wblossy out oifname wblossy0 meta l4proto udp numgen random mod 100 \< "$LOSS" counter drop || exit 1
say "veth 192.0.2.1 -> 192.0.2.2 (namespace $NS), $LOSS % of the node's UDP dropped at random"

read -r PORT < <(free_ports 1)
GST_DEBUG=${GST_DEBUG:-broadcastviewer:4} GST_PLUGIN_PATH="$PLUGIN_DIR" "$TOOLS/gst-broadcast" --pattern snow \
  --layers 854x480@1200,640x360@500,320x180@150 \
  --port "$PORT" --address 0.0.0.0 --ice-address 192.0.2.1 >"$LOG" 2>&1 &
GST_PID=$!
deadline=$((SECONDS + 20))
until curl -s -m 2 "http://127.0.0.1:$PORT/stats" | grep -q packets_in; do
  kill -0 "$GST_PID" 2>/dev/null || { echo "FAIL: the node exited"; print_log; exit 1; }
  [ $SECONDS -lt $deadline ] || { echo "FAIL: no /stats within 20 s"; print_log; exit 1; }
  sleep 0.25
done
say "node on port $PORT"

cd "$SCRIPT_DIR"
ip netns exec "$NS" timeout -k 5 $((WINDOW + 90)) node watch-stats.mjs "http://192.0.2.1:$PORT/" lossy "$WINDOW" \
  "$ARTIFACTS/lossy-viewer.json" || { echo "FAIL: the viewer did not report"; print_log; exit 1; }
dropped=$(nft list table inet wblossy | grep -o 'packets [0-9]*' | cut -d' ' -f2)
moves=$(grep -c "subscriber [0-9]*: layer" "$LOG")

node -e '
const [path, window, dropped, moves] = process.argv.slice(1);
const r = JSON.parse(require("fs").readFileSync(path));
console.log(`[run-lossy-viewer-test] ${JSON.stringify(r)}`);
const problems = [];
const switches = Math.max(0, r.widths.length - 1);
if (!r.connected) problems.push("the viewer never got media");
else {
  if (r.fps < 25) problems.push(`${r.fps.toFixed(1)} fps decoded`);
  if (switches > Math.ceil(Number(window) / 10)) problems.push(`${switches} layer switches in ${window} s (${r.widths.join(" -> ")})`);
  if (r.width !== 854) problems.push(`ended ${r.width} wide, not on the top layer`);
  if (!(Number(dropped) > 0)) problems.push("no packet was dropped: the loss was not applied");
}
if (problems.length) { console.log("FAIL: " + problems.join("; ")); process.exit(1); }
console.log(`PASS: ${r.fps.toFixed(1)} fps at ${r.widths.join(" -> ")} wide over ${r.seconds.toFixed(0)} s, ` +
            `${switches} switches, ${r.freezes} freezes, ${r.lost} packets lost, ${dropped} dropped by the link, ` +
            `${moves} moves logged by the node in all, page "${r.page && r.page.text}"`);
' "$ARTIFACTS/lossy-viewer.json" "$WINDOW" "${dropped:-0}" "${moves:-0}"
rc=$?
[ $rc -eq 0 ] || print_log
exit $rc
