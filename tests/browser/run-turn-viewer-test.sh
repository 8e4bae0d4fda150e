#!/usr/bin/env bash
# Viewers that cannot reach the node directly watch through TURN: Debian's
# coturn beside a gst-broadcast node that names it (--turn-servers, which the
# page reads from WHEP's OPTIONS Link headers), and two headless Chromium
# viewers, each in a network namespace of its own behind a veth (documentation
# addresses 192.0.2.0/30 and 192.0.2.4/30):
#  - "udp-blocked": nftables drops every UDP datagram in and out of its
#    namespace, as a strict office firewall does; it must play through TURN
#    over TCP (the relay leg to the node stays UDP);
#  - "relay-only": the page's #relay=1 (iceTransportPolicy "relay"); it must
#    play through a TURN relay.
#
# Usage (root, inside a network namespace of the test's own, as meson runs
# it): run-turn-viewer-test.sh <gst-plugin-dir> <build-dir-for-artifacts> <tools-dir>
# WINDOW (default 8): seconds each viewer is measured.
set -u

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$SCRIPT_DIR/lib.sh"
read_dirs_with_tools "$@"
LOG="$ARTIFACTS/turn-viewer-node.log"
TURN_LOG="$ARTIFACTS/turn-viewer-coturn.log"
WINDOW=${WINDOW:-8}
BLOCKED="wbturnb$$"
RELAY="wbturnr$$"
TURN_PID=""

say() { echo "[run-turn-viewer-test] $*"; }

check_dependencies broadcastsink
[ -x "$TOOLS/gst-broadcast" ] || { echo "ERROR: $TOOLS/gst-broadcast not built" >&2; exit 1; }
for tool in ip nft turnserver curl; do
  command -v $tool >/dev/null || { echo "ERROR: $tool not found (apt-get install coturn nftables iproute2)" >&2; exit 1; }
done

stop_all() {
  cleanup
  [ -n "$TURN_PID" ] && kill "$TURN_PID" 2>/dev/null && wait "$TURN_PID" 2>/dev/null
  ip netns del "$BLOCKED" 2>/dev/null
  ip netns del "$RELAY" 2>/dev/null
  ip link del wbturnb0 2>/dev/null
  ip link del wbturnr0 2>/dev/null
}
trap stop_all EXIT
trap 'stop_all; exit 130' INT TERM

# $1 namespace, $2 our side's link, $3 our address, $4 the viewer's address:
# a /30 on a veth, the viewer routing everything through us.
viewer_namespace() {
  ip netns add "$1" || { echo "FAIL: ip netns add (needs root)"; exit 1; }
  ip link add "$2" type veth peer name "${2%0}1" || exit 1
  ip link set "${2%0}1" netns "$1"
  ip addr add "$3/30" dev "$2"
  ip link set "$2" up
  ip netns exec "$1" ip addr add "$4/30" dev "${2%0}1"
  ip netns exec "$1" ip link set "${2%0}1" up
  ip netns exec "$1" ip link set lo up
  ip netns exec "$1" ip route add default via "$3"
}
viewer_namespace "$BLOCKED" wbturnb0 192.0.2.1 192.0.2.2
viewer_namespace "$RELAY" wbturnr0 192.0.2.5 192.0.2.6
ip netns exec "$BLOCKED" nft -f - <<'EOF' || { echo "FAIL: nft"; exit 1; }
table inet wbturn {
  chain in { type filter hook input priority 0; policy accept; meta l4proto udp drop; }
  chain out { type filter hook output priority 0; policy accept; meta l4proto udp drop; }
}
EOF
say "namespaces $BLOCKED (192.0.2.2, all UDP dropped) and $RELAY (192.0.2.6)"

read -r PORT TURN_PORT < <(free_ports 2)
# TURN on both its transports, relaying from the node's own address.
turnserver -n --listening-ip 192.0.2.1 --listening-port "$TURN_PORT" --relay-ip 192.0.2.1 \
  --min-port 49200 --max-port 49300 --lt-cred-mech --user viewer:turnsecret --realm wb.test \
  --fingerprint --no-tls --no-dtls --no-cli --no-multicast-peers --log-file stdout --simple-log \
  >"$TURN_LOG" 2>&1 &
TURN_PID=$!

TURN="turn://viewer:turnsecret@192.0.2.1:$TURN_PORT"
GST_PLUGIN_PATH="$PLUGIN_DIR" "$TOOLS/gst-broadcast" --port "$PORT" --address 0.0.0.0 --ice-address 192.0.2.1 \
  --turn-servers "$TURN?transport=udp,$TURN?transport=tcp" >"$LOG" 2>&1 &
GST_PID=$!
deadline=$((SECONDS + 20))
until curl -s -o /dev/null -m 1 "http://192.0.2.1:$PORT/"; do
  kill -0 "$GST_PID" 2>/dev/null || { echo "FAIL: the node exited"; print_log; exit 1; }
  kill -0 "$TURN_PID" 2>/dev/null || { echo "FAIL: coturn exited"; cat "$TURN_LOG"; exit 1; }
  [ $SECONDS -lt $deadline ] || { echo "FAIL: the node did not answer within 20 s"; print_log; exit 1; }
  sleep 0.25
done
links=$(curl -s -o /dev/null -D - -X OPTIONS "http://192.0.2.1:$PORT/whep" | grep -i '^link:')
say "node on port $PORT, coturn on $TURN_PORT; OPTIONS /whep: $links"
if ip netns exec "$BLOCKED" timeout 3 bash -c "echo x > /dev/udp/192.0.2.1/$TURN_PORT" 2>/dev/null; then
  echo "FAIL: UDP still leaves $BLOCKED"
  exit 1
fi

cd "$SCRIPT_DIR"
ip netns exec "$BLOCKED" timeout -k 5 $((WINDOW + 90)) node watch-stats.mjs "http://192.0.2.1:$PORT/" udp-blocked \
  "$WINDOW" "$ARTIFACTS/turn-udp-blocked.json" &
blocked=$!
ip netns exec "$RELAY" timeout -k 5 $((WINDOW + 90)) node watch-stats.mjs "http://192.0.2.1:$PORT/#relay=1" \
  relay-only "$WINDOW" "$ARTIFACTS/turn-relay-only.json"
relay_rc=$?
wait $blocked
blocked_rc=$?
[ $blocked_rc -eq 0 ] && [ $relay_rc -eq 0 ] || { echo "FAIL: a viewer did not report"; print_log; exit 1; }

node -e '
const fs = require("fs");
const [blockedPath, relayPath] = process.argv.slice(1);
const b = JSON.parse(fs.readFileSync(blockedPath)), r = JSON.parse(fs.readFileSync(relayPath));
const problems = [];
for (const v of [b, r]) {
  if (!v.connected) { problems.push(`${v.label}: never got media`); continue; }
  if (v.fps < 20) problems.push(`${v.label}: decoded ${v.fps.toFixed(1)} fps`);
  if (!v.path || v.path.type !== "relay") problems.push(`${v.label}: media not through TURN (${JSON.stringify(v.path)})`);
}
if (b.connected && b.path && b.path.relayProtocol !== "tcp")
  problems.push(`udp-blocked: relayed over ${b.path.relayProtocol}, not TCP`);
console.log(`[run-turn-viewer-test] udp-blocked: ${JSON.stringify(b)}`);
console.log(`[run-turn-viewer-test] relay-only: ${JSON.stringify(r)}`);
if (problems.length) { console.log("FAIL: " + problems.join("; ")); process.exit(1); }
console.log(`PASS: through coturn, the UDP-blocked viewer decoded ${b.fps.toFixed(1)} fps (TURN over TCP) and ` +
            `the relay-only one ${r.fps.toFixed(1)} fps (TURN over ${r.path.relayProtocol})`);
' "$ARTIFACTS/turn-udp-blocked.json" "$ARTIFACTS/turn-relay-only.json"
rc=$?
if [ $rc -ne 0 ]; then
  print_log
  echo "---- coturn log, last 50 lines ----"
  tail -n 50 "$TURN_LOG"
fi
exit $rc
