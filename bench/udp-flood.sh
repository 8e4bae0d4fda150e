#!/usr/bin/env bash
# Junk at the shared ICE-lite port while viewers watch (issue 12, item 7):
# VIEWERS real viewers (gst-broadcast-load, every packet SRTP-verified) watch
# broadcastsink serving the bench stream (H.264 + Opus); after BEFORE seconds
# bench/udp-flood sends junk to the ICE-lite port at the highest rate one
# thread reaches, for FLOOD seconds (random bytes, malformed STUN, Binding
# requests with unknown ufrags, DTLS- and RTCP-looking garbage, from 16
# source ports); the viewers keep watching AFTER seconds more.
#
# Reports the datagrams sent (per kind), the server's CPU before, during and
# after the flood, the kernel's drops on the ICE-lite socket, and what the
# viewers saw (the load generator's loss, per second in its log).
# Requirement: the viewers lose nothing.
#
# The ICE-lite port is read from the candidates of an answer to a real offer.
# The flood runs on core 1 with the load generator and the encoder, at nice
# FLOOD_NICE (19 by default: it takes all the CPU they leave, not theirs, so
# that what is measured is the node, not a starved generator; 0 puts them on
# an equal footing).
#
#   sudo bash bench/udp-flood.sh      # after meson setup build && ninja -C build
# Environment: VIEWERS (20), FLOOD (30 s), BEFORE (10 s), AFTER (10 s),
#   FLOOD_NICE (19), SOCKETS (16), BUILD, OUT (build/soak-results/udp-flood), PORT (18500).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/soak-lib.sh
enter_netns "$@"
prepare_out udp-flood

VIEWERS=${VIEWERS:-20}
FLOOD=${FLOOD:-30}
BEFORE=${BEFORE:-10}
AFTER=${AFTER:-10}
FLOOD_NICE=${FLOOD_NICE:-19}
SOCKETS=${SOCKETS:-16}
FLOODER=$B/bench/udp-flood
[ -x "$FLOODER" ] || { say "no $FLOODER: build with tests enabled (bench/ is built with them)"; exit 2; }

# Kernel drops (receive buffer full) of the UDP sockets bound to port $1.
udp_drops() {
  local hex
  hex=$(printf '%04X' "$1")
  awk -v p=":$hex" '$2 ~ p"$" { d += $NF } END { print d + 0 }' /proc/net/udp
}

start_source
sleep 1
start_server
sampler_file="$OUT/server.samples"
start_sampler "$SERVER_PID" "$sampler_file" 1

# One real offer: its answer's candidate names the shared port.
make_offers "$OUT/probe" 1
answer=$(curl -s -D "$OUT/probe/headers" -H 'Content-Type: application/sdp' \
  --data-binary @"$OUT/probe/offer-1.sdp" "http://127.0.0.1:$PORT/whep")
ice_port=$(echo "$answer" | awk '/^a=candidate:/ { print $6; exit }' | tr -d '\r')
session=$(awk 'tolower($1) == "location:" { print $2 }' "$OUT/probe/headers" | tr -d '\r')
[ -n "$session" ] && curl -s -o /dev/null -X DELETE "http://127.0.0.1:$PORT$session"
[ -n "$ice_port" ] || { say "no candidate in the answer: $answer"; exit 1; }
say "ICE-lite port: $ice_port"

hold=$((BEFORE + FLOOD + AFTER))
taskset -c 1 "$LOAD" --url "http://127.0.0.1:$PORT/whep" --viewers "$VIEWERS" --ramp 20 --hold "$hold" \
  --verify "$VIEWERS" --json "$OUT/viewers.json" >"$OUT/viewers.log" 2>&1 &
load_pid=$!
PIDS+=("$load_pid")
# The flood starts BEFORE seconds into the viewers' hold window.
until grep -q "every viewer settled" "$OUT/viewers.log" 2>/dev/null; do
  kill -0 "$load_pid" 2>/dev/null || { say "the load generator ended early: $OUT/viewers.log"; exit 1; }
  sleep 0.2
done
t_hold=$(date +%s%3N)
sleep "$BEFORE"
drops0=$(udp_drops "$ice_port")
t0=$(date +%s%3N)
taskset -c 1 nice -n "$FLOOD_NICE" "$FLOODER" --port "$ice_port" --seconds "$FLOOD" --sockets "$SOCKETS" \
  >"$OUT/flood.log" 2>&1
t1=$(date +%s%3N)
drops1=$(udp_drops "$ice_port")
wait "$load_pid" || true
t2=$(date +%s%3N)
viewers_after=$(viewers_now)
stop_server

read -r total secs random stunbad stun dtls rtcp < <(awk '/^RESULT/ { print $2, $3, $4, $5, $6, $7, $8 }' "$OUT/flood.log")
cpu_before=$(cpu_between "$sampler_file" "$t_hold" "$t0")
cpu_during=$(cpu_between "$sampler_file" "$t0" "$t1")
cpu_after=$(cpu_between "$sampler_file" "$t1" "$t2")
# Loss per phase from the generator's per-second totals ("[ t s] ... lost N").
{
  describe_run
  echo "viewers: $VIEWERS (audio + video, every packet verified), flood $FLOOD s from $SOCKETS sockets at nice $FLOOD_NICE on core 1, server on core 0"
  echo "ICE-lite port: $ice_port"
  echo "flood: $total datagrams in $secs s ($(awk -v t="$total" -v s="$secs" 'BEGIN { printf "%.0f", t / s }') /s):" \
    "random $random, malformed STUN $stunbad, STUN with unknown ufrags $stun, DTLS-looking $dtls, RTCP/RTP-looking $rtcp"
  echo "kernel drops on the ICE-lite socket during the flood: $((drops1 - drops0))"
  echo "server CPU % of a core: before $cpu_before, during the flood $cpu_during, after $cpu_after"
  jq -r '"viewers: connected \(.connected) of \(.requested), failed \(.failed), packets \(.packets), lost \(.lost) (\(.loss_percent) %), verify failures \(.verification.failures), consent checks answered \([.per_viewer[].consent_answered] | add)"' "$OUT/viewers.json"
  echo "viewers the node still counted after the run: $viewers_after"
  lost=$(jq '.lost' "$OUT/viewers.json")
  failed=$(jq '.failed' "$OUT/viewers.json")
  if [ "$lost" = 0 ] && [ "$failed" = 0 ]; then echo "requirement (viewers lose nothing): met"; else echo "requirement (viewers lose nothing): NOT met"; fi
} | tee "$OUT/summary.txt"
echo "logs and samples: $OUT" >&2
