#!/usr/bin/env bash
# Viewers behind firewalls: a gst-broadcast node with Debian's coturn beside
# it (--turn-servers, which the page reads from WHEP's OPTIONS Link headers),
# and three headless Chromium viewers, each in a network namespace of its own
# behind a veth (documentation addresses 192.0.2.0/30, .4/30 and .8/30):
#  - "ice-tcp": nftables drops every UDP datagram in and out of its
#    namespace, as a strict office firewall does; it must play over ICE-TCP,
#    straight to the node's passive TCP candidate (RFC 6544);
#  - "turn-tcp": UDP dropped and TCP to the node's ICE port too (only web
#    ports open); it must play through TURN over TCP (the relay leg to the
#    node stays UDP);
#  - "relay-only": the page's #relay=1 (iceTransportPolicy "relay"); it must
#    play through a TURN relay.
#
# Usage (root, inside a network namespace of the test's own, as meson runs
# it): run-firewalled-viewers-test.sh <gst-plugin-dir> <build-dir-for-artifacts> <tools-dir>
# WINDOW (default 8): seconds each viewer is measured.
set -u

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$SCRIPT_DIR/lib.sh"
read_dirs_with_tools "$@"
LOG="$ARTIFACTS/firewalled-node.log"
TURN_LOG="$ARTIFACTS/firewalled-coturn.log"
WINDOW=${WINDOW:-8}
TCP="wbfwt$$"
BLOCKED="wbfwb$$"
RELAY="wbfwr$$"
TURN_PID=""

say() { echo "[run-firewalled-viewers-test] $*"; }

check_dependencies broadcastsink
[ -x "$TOOLS/gst-broadcast" ] || { echo "ERROR: $TOOLS/gst-broadcast not built" >&2; exit 1; }
for tool in ip nft turnserver curl; do
  command -v $tool >/dev/null || { echo "ERROR: $tool not found (apt-get install coturn nftables iproute2)" >&2; exit 1; }
done

stop_all() {
  cleanup
  [ -n "$TURN_PID" ] && kill "$TURN_PID" 2>/dev/null && wait "$TURN_PID" 2>/dev/null
  remove_viewer_namespace "$TCP" wbfwt
  remove_viewer_namespace "$BLOCKED" wbfwb
  remove_viewer_namespace "$RELAY" wbfwr
}
trap stop_all EXIT
trap 'stop_all; exit 130' INT TERM

# A /30 each, the viewer routing everything through us.
make_viewer_namespace "$TCP" wbfwt route 192.0.2.1/30 192.0.2.2/30
make_viewer_namespace "$BLOCKED" wbfwb route 192.0.2.5/30 192.0.2.6/30
make_viewer_namespace "$RELAY" wbfwr route 192.0.2.9/30 192.0.2.10/30
read -r PORT TURN_PORT ICE_PORT < <(free_ports 3)
# $1 namespace, $2 more rules for what leaves it.
firewall() {
  printf 'table inet wbfw {\n  chain in { type filter hook input priority 0; policy accept; meta l4proto udp drop; }\n  chain out { type filter hook output priority 0; policy accept; meta l4proto udp drop; %s }\n}\n' "$2" |
    ip netns exec "$1" nft -f - || { echo "FAIL: nft"; exit 1; }
}
firewall "$TCP" ""
firewall "$BLOCKED" "tcp dport $ICE_PORT drop;"
say "namespaces $TCP (192.0.2.2, UDP dropped), $BLOCKED (192.0.2.6, UDP and TCP to port $ICE_PORT dropped)," \
    "$RELAY (192.0.2.10)"

# TURN on both its transports, relaying from the node's own address.
turnserver -n --listening-ip 192.0.2.1 --listening-port "$TURN_PORT" --relay-ip 192.0.2.1 \
  --min-port 49200 --max-port 49300 --lt-cred-mech --user viewer:turnsecret --realm wb.test \
  --fingerprint --no-tls --no-dtls --no-cli --no-multicast-peers --log-file stdout --simple-log \
  >"$TURN_LOG" 2>&1 &
TURN_PID=$!

TURN="turn://viewer:turnsecret@192.0.2.1:$TURN_PORT"
GST_PLUGIN_PATH="$PLUGIN_DIR" "$TOOLS/gst-broadcast" --port "$PORT" --address 0.0.0.0 --ice-address 192.0.2.1 \
  --ice-port "$ICE_PORT" --turn-servers "$TURN?transport=udp,$TURN?transport=tcp" >"$LOG" 2>&1 &
GST_PID=$!
deadline=$((SECONDS + 20))
until curl -s -o /dev/null -m 1 "http://192.0.2.1:$PORT/"; do
  kill -0 "$GST_PID" 2>/dev/null || { echo "FAIL: the node exited"; print_log; exit 1; }
  kill -0 "$TURN_PID" 2>/dev/null || { echo "FAIL: coturn exited"; cat "$TURN_LOG"; exit 1; }
  [ $SECONDS -lt $deadline ] || { echo "FAIL: the node did not answer within 20 s"; print_log; exit 1; }
  sleep 0.25
done
links=$(curl -s -o /dev/null -D - -X OPTIONS "http://192.0.2.1:$PORT/whep" | grep -i '^link:')
say "node on port $PORT (ICE $ICE_PORT), coturn on $TURN_PORT; OPTIONS /whep: $links"
for ns in "$TCP" "$BLOCKED"; do
  if ip netns exec "$ns" timeout 3 bash -c "echo x > /dev/udp/192.0.2.1/$TURN_PORT" 2>/dev/null; then
    echo "FAIL: UDP still leaves $ns"
    exit 1
  fi
done

cd "$SCRIPT_DIR"
watch() {  # namespace, label, page fragment
  ip netns exec "$1" timeout -k 5 $((WINDOW + 90)) node watch-stats.mjs "http://192.0.2.1:$PORT/$3" "$2" "$WINDOW" \
    "$ARTIFACTS/firewalled-$2.json"
}
watch "$TCP" ice-tcp "" &
tcp=$!
watch "$BLOCKED" turn-tcp "" &
blocked=$!
watch "$RELAY" relay-only "#relay=1"
rc_relay=$?
wait $tcp
rc_tcp=$?
wait $blocked
rc_blocked=$?
[ $rc_tcp -eq 0 ] && [ $rc_blocked -eq 0 ] && [ $rc_relay -eq 0 ] || { echo "FAIL: a viewer did not report"; print_log; exit 1; }

node -e '
const fs = require("fs");
const [ice, ...paths] = process.argv.slice(1);
const [t, b, r] = paths.map((p) => JSON.parse(fs.readFileSync(p)));
const problems = [];
for (const v of [t, b, r]) {
  console.log(`[run-firewalled-viewers-test] ${v.label}: ${JSON.stringify(v)}`);
  if (!v.connected) { problems.push(`${v.label}: never got media`); continue; }
  if (v.fps < 20) problems.push(`${v.label}: decoded ${v.fps.toFixed(1)} fps`);
}
const path = (v) => v.path || {};
// The active TCP side of Chromium shows as peer-reflexive (its port is that of the
// connection); what matters is a TCP pair to our passive candidate.
if (t.connected && !(path(t).type !== "relay" && path(t).protocol === "tcp" && path(t).remote === `tcp 192.0.2.1:${ice}`))
  problems.push(`ice-tcp: not on a direct TCP pair to port ${ice} (${JSON.stringify(t.path)})`);
if (b.connected && !(path(b).type === "relay" && path(b).relayProtocol === "tcp"))
  problems.push(`turn-tcp: not relayed over TCP (${JSON.stringify(b.path)})`);
if (r.connected && path(r).type !== "relay") problems.push(`relay-only: not relayed (${JSON.stringify(r.path)})`);
if (problems.length) { console.log("FAIL: " + problems.join("; ")); process.exit(1); }
console.log(`PASS: with UDP blocked, ${t.fps.toFixed(1)} fps over ICE-TCP and ${b.fps.toFixed(1)} fps through TURN ` +
            `over TCP; relay-only ${r.fps.toFixed(1)} fps through TURN over ${r.path.relayProtocol}`);
' "$ICE_PORT" "$ARTIFACTS/firewalled-ice-tcp.json" "$ARTIFACTS/firewalled-turn-tcp.json" "$ARTIFACTS/firewalled-relay-only.json"
rc=$?
if [ $rc -ne 0 ]; then
  print_log
  echo "---- coturn log, last 50 lines ----"
  tail -n 50 "$TURN_LOG"
fi
exit $rc
