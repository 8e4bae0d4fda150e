#!/usr/bin/env bash
# The benchmark suite, one command: how many viewers one core serves, ours
# (broadcastsink) side by side with the naive GStreamer way (tee + queue +
# webrtcbin per viewer, bench/naive-tee.cpp) and Janus's streaming plugin,
# in the same run, plus this machine's ceiling (bench/srtp-ceiling.cpp).
#
#   sudo bash bench/run-benchmarks.sh          # installs, builds, runs, writes docs/BENCHMARKS.md
#
# All servers get the same RTP stream (640x360 30 fps H.264 ~800 kbps
# + Opus) from one encoder process over loopback UDP, so their CPU is the
# cost of serving, not of encoding. The sweep runs once per entry of MEDIA:
# "video" serves video only (no audio pad, tee, mountpoint stream: the Opus
# on port 5006 goes unread), "av" audio + video. Server on core 0, load
# generator and encoder on core 1 (taskset). Everything runs in a private
# network namespace with only loopback.
#
# Then the first-keyframe step: broadcastsink with the encoder in its own
# pipeline, so that keyframe requests reach it, and viewers joining one by one.
#
# Environment: COUNTS ("50 100 150 200 300 400 600 800 1200 1600 2400"), HOLD (20 s), RAMP (100
#   joins/s), SERVERS ("ours ours-direct ours-webrtcbin naive janus"; ours-direct is broadcastsink
#   with ice-lite=false, a webrtcbin per viewer whose media the fan-out sends; ours-webrtcbin also
#   has direct-send=false, every packet through webrtcbin), MEDIA ("video av": the sweep for each,
#   in this order; storm and churn run with av if it is listed, else video), OUT
#   (build/bench-results), DOC (docs/BENCHMARKS.md), SKIP_STORM=1, SKIP_CHURN=1, SKIP_KEYFRAME=1,
#   SKIP_CEILING=1, CHURN_SECONDS (120).
#   A short trial: COUNTS="50 100" HOLD=5 SERVERS="ours janus" MEDIA="video av" SKIP_STORM=1
#   SKIP_CHURN=1 SKIP_CEILING=1 OUT=/tmp/bench-try DOC=/tmp/bench-try/BENCHMARKS.md
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

. "$ROOT/bench/common.sh"
install_build_enter_netns "$@"

B=$ROOT/build
OUT=${OUT:-$B/bench-results}
DOC=${DOC:-$ROOT/docs/BENCHMARKS.md}
COUNTS=${COUNTS:-"50 100 150 200 300 400 600 800 1200 1600 2400"}
HOLD=${HOLD:-20}
RAMP=${RAMP:-100}
SERVERS=${SERVERS:-"ours ours-direct ours-webrtcbin naive janus"}
MEDIA=${MEDIA:-"video av"}
for media in $MEDIA; do
  case $media in video|av) ;; *) echo "MEDIA: video and/or av, not $media" >&2; exit 2 ;; esac
done
if [[ " $MEDIA " == *" av "* ]]; then DISTURB_MEDIA=av; else DISTURB_MEDIA=video; fi
CHURN_SECONDS=${CHURN_SECONDS:-120}
PORT=18400
LOAD=$B/tools/gst-broadcast-load
export GST_PLUGIN_PATH=$B/gst
mkdir -p "$OUT"
rm -f "$OUT"/*.json "$OUT"/*.log "$OUT"/*.tsv "$OUT"/*.samples 2>/dev/null || true
CLK_TCK=$(getconf CLK_TCK)
say() { echo "[bench] $*" >&2; }


# ---------------------------------------------------------------- the stream
. "$ROOT/bench/stream.sh"
start_source() {
  start_stream "$OUT/source.log"
  PIDS+=("$SOURCE_PID")
}

# ---------------------------------------------------------------- servers
. "$ROOT/bench/servers.sh"

# ---------------------------------------------------------------- storm, churn
# Viewers already watching (the "stayers") while others arrive or come and go.
run_disturbance() {
  local name=$1 kind=$2 media=$DISTURB_MEDIA
  local stay_json="$OUT/$media-$name-$kind-stayers.json" prefix="$OUT/$media-$name"
  start_server "$name" "$media" || return 1
  local stay_hold
  if [ "$kind" = storm ]; then stay_hold=20; else stay_hold=$((CHURN_SECONDS + 5)); fi
  taskset -c 1 "$LOAD" "${LOAD_ARGS[@]}" --viewers 20 --ramp 20 --hold "$stay_hold" --verify 2 \
    --json "$stay_json" >"$OUT/load-$media-$name-$kind-stayers.log" 2>&1 &
  local stay_pid=$!
  sleep 4
  if [ "$kind" = storm ]; then
    taskset -c 1 "$LOAD" "${LOAD_ARGS[@]}" --viewers 500 --ramp 50 --hold 5 --verify 2 \
      --json "$prefix-storm.json" >"$OUT/load-$media-$name-storm.log" 2>&1 || true
  else
    local end=$(( $(date +%s) + CHURN_SECONDS )) i=0
    while [ "$(date +%s)" -lt "$end" ]; do
      taskset -c 1 "$LOAD" "${LOAD_ARGS[@]}" --viewers 20 --ramp 20 --hold 2 --verify 0 \
        --json "$prefix-churn-$i.json" >"$OUT/load-$media-$name-churn-$i.log" 2>&1 || true
      i=$((i + 1))
    done
  fi
  wait "$stay_pid" || true
  stop_server
  local joined=0 answer="-1 -1" keyframe="-1 -1"
  if [ "$kind" = storm ]; then
    joined=$(jq '.connected' "$prefix-storm.json" 2>/dev/null || echo 0)
    answer=$(jq -r '"\(.answer_ms.p95 // -1) \(.answer_ms.max // -1)"' "$prefix-storm.json" 2>/dev/null || echo "-1 -1")
    keyframe=$(jq -r '"\(.first_keyframe_ms.median // -1) \(.first_keyframe_ms.p95 // -1)"' "$prefix-storm.json" 2>/dev/null || echo "-1 -1")
  else
    joined=$(cat "$prefix"-churn-*.json 2>/dev/null | jq -s 'map(.connected) | add // 0')
  fi
  read -r answer_p95 answer_max <<<"$answer"
  read -r keyframe_p50 keyframe_p95 <<<"$keyframe"
  jq -r --arg name "$name" --arg kind "$kind" --arg media "$media" --arg joined "$joined" \
    --arg ap95 "$answer_p95" --arg amax "$answer_max" --arg kp50 "$keyframe_p50" --arg kp95 "$keyframe_p95" \
    '[$name, $kind, $media, $joined, .connected, .loss_percent, .lost, .never_got_media, $ap95, $amax, $kp50, $kp95] | @tsv' \
    "$stay_json"
}

# ---------------------------------------------------------------- first keyframe
# In the sweep the encoder is another process, which keyframe requests cannot
# reach: a new viewer waits for the next natural keyframe (2 s GOP). Here
# broadcastsink encodes in its own pipeline, as it is deployed, so a join or a
# PLI reaches x264enc as a force-key-unit event (coalesced: at most one per
# keyframe-min-interval). Video only: the keyframe is all this step measures.
# KEYFRAME_STAYERS watch; then KEYFRAME_JOINERS join one by one,
# KEYFRAME_RATE per second.
KEYFRAME_MIN_INTERVAL=250 KEYFRAME_STAYERS=20 KEYFRAME_JOINERS=50 KEYFRAME_RATE=5
run_keyframe_step() {
  local log="$OUT/server-keyframe.log" url="http://127.0.0.1:$PORT/whep"
  taskset -c 0 gst-launch-1.0 -q "${VIDEO_SOURCE[@]}" ! bs.video \
    broadcastsink name=bs port="$PORT" address=127.0.0.1 ice-address=127.0.0.1 offers-per-second=0 \
    keyframe-min-interval="$KEYFRAME_MIN_INTERVAL" >"$log" 2>&1 &
  SERVER_PID=$!
  PIDS+=("$SERVER_PID")
  wait_ready "http://127.0.0.1:$PORT/" "broadcastsink with its encoder" "$log" || return 1
  # Long enough to outlast the joiners: their ramp, settling and hold.
  local stay_hold=$(( KEYFRAME_JOINERS / KEYFRAME_RATE + 20 ))
  taskset -c 1 "$LOAD" --url "$url" --viewers "$KEYFRAME_STAYERS" --ramp 20 --hold "$stay_hold" --verify 2 \
    --json "$OUT/keyframe-stayers.json" >"$OUT/load-keyframe-stayers.log" 2>&1 &
  local stay_pid=$!
  sleep 4
  taskset -c 1 "$LOAD" --url "$url" --viewers "$KEYFRAME_JOINERS" --ramp "$KEYFRAME_RATE" --hold 2 --verify 2 \
    --json "$OUT/keyframe.json" >"$OUT/load-keyframe.log" 2>&1 || true
  wait "$stay_pid" || true
  stop_server
  [ -s "$OUT/keyframe.json" ] || { say "keyframe step: the load generator wrote no JSON"; return 1; }
  local stayers_loss
  stayers_loss=$(jq '.loss_percent // -1' "$OUT/keyframe-stayers.json" 2>/dev/null || echo -1)
  jq -r --arg interval "$KEYFRAME_MIN_INTERVAL" --arg stayers "$KEYFRAME_STAYERS" --arg rate "$KEYFRAME_RATE" \
    --arg stayers_loss "$stayers_loss" \
    '[$interval, $stayers, $rate, .requested, .connected, .keyframes_seen,
      .first_keyframe_ms.median, .first_keyframe_ms.p95, .first_keyframe_ms.max,
      .first_keyframe_after_answer_ms.median, .first_keyframe_after_answer_ms.p95,
      .first_keyframe_after_answer_ms.max, .answer_ms.p95, $stayers_loss] | @tsv' "$OUT/keyframe.json"
}

# ---------------------------------------------------------------- run it all
start_source
sleep 1
[[ " $SERVERS " == *" janus "* ]] && prepare_janus

for media in $MEDIA; do
  : >"$OUT/rows-$media.tsv"
  : >"$OUT/idle-$media.tsv"
  for server in $SERVERS; do
    read -r cpu rss threads < <(baseline "$server" "$media")
    echo -e "$server\t$cpu\t$rss\t$threads" >>"$OUT/idle-$media.tsv"
    say "$media $server idle: $cpu % CPU, $rss kB, $threads threads"
    for n in $COUNTS; do
      row=$(run_point "$server" "$media" "$n") || break
      echo "$row" >>"$OUT/rows-$media.tsv"
      say "$media $server $n: $row"
      loss=$(echo "$row" | cut -f8)
      cpu=$(echo "$row" | cut -f5)
      # Past one core or past 0.5 % loss the next step only measures collapse.
      if awk -v l="$loss" -v c="$cpu" 'BEGIN { exit !(l >= 0.5 || c >= 95) }'; then break; fi
    done
  done
done

: >"$OUT/disturbance.tsv"
for server in $SERVERS; do
  [ "${SKIP_STORM:-0}" = 1 ] || run_disturbance "$server" storm >>"$OUT/disturbance.tsv" || true
  [ "${SKIP_CHURN:-0}" = 1 ] || run_disturbance "$server" churn >>"$OUT/disturbance.tsv" || true
done

# The encoder stops first: the keyframe step encodes by itself, and the
# ceiling waits for a quiet machine and would otherwise count it as noise.
kill "$SOURCE_PID" 2>/dev/null || true
wait "$SOURCE_PID" 2>/dev/null || true

: >"$OUT/keyframe.tsv"
if [ "${SKIP_KEYFRAME:-0}" != 1 ]; then
  run_keyframe_step >"$OUT/keyframe.tsv" || true
  say "keyframe: $(cat "$OUT/keyframe.tsv")"
fi

# Twice: with Debian's libsrtp2 (NSS, as webrtcbin's srtpenc) and with the
# OpenSSL SRTP our direct send uses.
CEILING=0 CEILING_OPENSSL=0
if [ "${SKIP_CEILING:-0}" != 1 ]; then
CEILING=$(taskset -c 0 "$B/bench/srtp-ceiling" --find-max 2>"$OUT/ceiling.err" | tee "$OUT/ceiling.log" |
  sed -n 's/^ceiling: \([0-9]*\) viewers.*/\1/p' | tail -1)
CEILING_OPENSSL=$(taskset -c 0 "$B/bench/srtp-ceiling" --find-max --openssl 2>"$OUT/ceiling-openssl.err" |
  tee "$OUT/ceiling-openssl.log" | sed -n 's/^ceiling: \([0-9]*\) viewers.*/\1/p' | tail -1)
fi

bash "$ROOT/bench/write-benchmarks-doc.sh" "$OUT" "${CEILING:-0}" "${CEILING_OPENSSL:-0}" >"$DOC"
say "wrote $DOC"
