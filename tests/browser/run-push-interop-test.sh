#!/usr/bin/env bash
# push-url against a WHIP server of another stack: gst-broadcast pushes its
# test pattern (H.264 + Opus) to werift-whip-server.mjs (werift, from npm),
# which must connect, SRTP-decrypt both media and see H.264 keyframes; a
# wrong token must get the push nowhere; stopping the node must DELETE the
# session.
#
# Usage: run-push-interop-test.sh <gst-plugin-dir> <build-dir-for-artifacts> <tools-dir>
# Writes push-interop-node.log and push-interop-werift.log into the artifacts
# directory. Exit status 0 = PASS.
set -u

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$SCRIPT_DIR/lib.sh"
read_dirs_with_tools "$@"
LOG="$ARTIFACTS/push-interop-node.log"
WERIFT_LOG="$ARTIFACTS/push-interop-werift.log"

say() { echo "[run-push-interop-test] $*"; }
check_dependencies broadcastsink
[ -d "$SCRIPT_DIR/node_modules/werift" ] || { echo "ERROR: werift missing: run 'npm ci' in $SCRIPT_DIR" >&2; exit 1; }
[ -x "$TOOLS/gst-broadcast" ] || { echo "ERROR: $TOOLS/gst-broadcast not built" >&2; exit 1; }

WERIFT_PID=""
stop_all() {
  cleanup
  if [ -n "$WERIFT_PID" ]; then kill "$WERIFT_PID" 2>/dev/null; wait "$WERIFT_PID" 2>/dev/null; fi
  WERIFT_PID=""
}
trap stop_all EXIT
trap 'stop_all; exit 130' INT TERM

read -r WHIP_PORT < <(free_ports 1)
TOKEN="push-$RANDOM$RANDOM"
STATS="http://127.0.0.1:$WHIP_PORT/stats"
(cd "$SCRIPT_DIR" && exec node werift-whip-server.mjs "$WHIP_PORT" "$TOKEN") >"$WERIFT_LOG" 2>&1 &
WERIFT_PID=$!
for _ in $(seq 50); do curl -s -m 1 -o /dev/null "$STATS" && break; sleep 0.2; done
curl -s -m 1 -o /dev/null "$STATS" || { echo "FAIL: the werift WHIP server did not start"; cat "$WERIFT_LOG"; exit 1; }
say "werift WHIP server on http://127.0.0.1:$WHIP_PORT/whip"

stat() { curl -s -m 2 "$STATS" | node -e "let s='';process.stdin.on('data',d=>s+=d).on('end',()=>console.log(JSON.parse(s)['$1']))"; }

push() {  # push with this token; the node runs until cleanup
  GST_PLUGIN_PATH="$PLUGIN_DIR" GST_DEBUG="${GST_DEBUG:+$GST_DEBUG,}broadcastpush:5" GST_DEBUG_NO_COLOR=1 \
    "$TOOLS/gst-broadcast" --port 0 --ice-address 127.0.0.1 \
    --push "http://127.0.0.1:$WHIP_PORT/whip" --push-token "$1" --log-format json >"$LOG" 2>&1 &
  GST_PID=$!
}

# (1) A wrong token: werift answers 401, no session, and the node keeps
# trying without disturbing anything.
push wrong-token
for _ in $(seq 100); do [ "$(stat refused)" -ge 1 ] 2>/dev/null && break; sleep 0.1; done
[ "$(stat refused)" -ge 1 ] 2>/dev/null || { echo "FAIL: the push never reached werift in 10 s"; print_log; exit 1; }
if [ "$(stat sessions)" != 0 ]; then echo "FAIL: a push with a wrong token opened a session"; exit 1; fi
grep -q '"push-state"' "$LOG" || { echo "FAIL: the node logged no push-state"; print_log; exit 1; }
cleanup
say "wrong token: no session"

# (2) The right token: connected, both media decrypted, keyframes seen.
push "$TOKEN"
deadline=$((SECONDS + 40))
ok=""
while [ $SECONDS -lt $deadline ]; do
  kill -0 "$GST_PID" 2>/dev/null || { echo "FAIL: gst-broadcast exited"; print_log; exit 1; }
  s=$(curl -s -m 2 "$STATS")
  if node -e "const s=JSON.parse(process.argv[1]); process.exit(s.connected>=1 && s.video>=300 && s.audio>=100 && s.keyframes>=2 ? 0 : 1)" "$s" 2>/dev/null; then
    ok=1
    break
  fi
  sleep 0.5
done
say "werift saw: $s"
if [ -z "$ok" ]; then
  echo "FAIL: within 40 s werift did not connect and decrypt 300 video packets with 2 keyframes and 100 audio packets"
  print_log; echo "---- werift ----"; cat "$WERIFT_LOG"; exit 1
fi
grep -q '"event":"push-state".*"state":"live"' "$LOG" || { echo "FAIL: the node never logged push-state live"; print_log; exit 1; }
say "the node says its push is live"

# (3) Stopping the node ends the session with DELETE.
kill -INT "$GST_PID"
for _ in $(seq 50); do kill -0 "$GST_PID" 2>/dev/null || break; sleep 0.1; done
deleted=$(stat deleted)
[ "$deleted" = 1 ] || { echo "FAIL: the node stopped without DELETE of its WHIP session (deleted=$deleted)"; print_log; exit 1; }
say "PASS: werift connected, decrypted $(echo "$s" | grep -o '"video":[0-9]*') $(echo "$s" | grep -o '"audio":[0-9]*') packets with $(echo "$s" | grep -o '"keyframes":[0-9]*'), and got the DELETE"
exit 0
