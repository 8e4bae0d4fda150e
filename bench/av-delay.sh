#!/usr/bin/env bash
# Audio/video sync and glass to glass in Chromium, per way of serving
# (bench/av-delay.mjs), alternating the variants ROUNDS times. The node
# encodes in its own pipeline, as gst-broadcast does (640x360 30 fps H.264
# ~800 kbps + Opus), through bench/glass-source, which paints each frame's
# capture time into it: Chromium's expected display time minus that is glass
# to glass on one clock. Chromium gathers no candidate on loopback, so the
# private network namespace gets a veth with 192.0.2.1/24.
#
#   sudo bash bench/av-delay.sh [variant...]
# Variants: lite (as gst-broadcast ships: audio in 10 ms source buffers,
#   20 ms Opus frames, sender-report-time=picture-first), lite-capture
#   (sender-report-time=capture: exact sync), webrtcbin (the same with
#   ice-lite=false direct-send=false: webrtcbin writes the sender reports), lite-video (no
#   audio: nothing to sync with), lite-send (sender-report-time=send: our
#   reports stand for send time, as webrtcbin's), lite-source21
#   (audiotestsrc's default ~21 ms buffers, as before), lite-audio10 (10 ms
#   Opus frames too).
# Environment: ROUNDS (2), BUILD (build), WARM_S, HOLD_S; CHROMIUM_LOG=1
#   keeps Chromium's log (its A/V sync decisions: stream_synchronization.cc)
#   in /tmp/av-delay-<variant>-<round>-chromium.log. Needs `npm ci` in
#   tests/browser (scripts/install-deps.sh does it).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
. "$ROOT/bench/common.sh"
enter_netns "$@"
ip link show wbav0 >/dev/null 2>&1 || { ip link add wbav0 type veth peer name wbav1; ip addr add 192.0.2.1/24 dev wbav0; ip link set wbav1 up; ip link set wbav0 up; }
B=$ROOT/${BUILD:-build}
export GST_PLUGIN_PATH=$B/gst
variants=("$@")
[ ${#variants[@]} -gt 0 ] || variants=(lite lite-capture lite-send webrtcbin lite-video)
PORT=18600

run() {
  local variant=$1 props=() asrc="samplesperbuffer=480" opus="" audio=1
  case $variant in
    lite) ;;
    webrtcbin) props=(ice-lite=false direct-send=false) ;;
    lite-send) props=(sender-report-time=send) ;;
    lite-capture) props=(sender-report-time=capture) ;;
    lite-video) audio=0 ;;
    lite-source21) asrc="" ;;
    lite-audio10) opus="frame-size=10" ;;
    *) echo "unknown variant $variant" >&2; return 2 ;;
  esac
  local launch="videotestsrc is-live=true pattern=ball ! video/x-raw,format=I420,width=640,height=360,framerate=30/1
    ! identity name=stamp ! x264enc tune=zerolatency speed-preset=ultrafast bitrate=800 key-int-max=60 ! bs.video
    broadcastsink name=bs port=$PORT address=127.0.0.1 ${props[*]}"
  [ "$audio" = 1 ] && launch+=" audiotestsrc is-live=true $asrc ! audioconvert ! audioresample ! audio/x-raw,rate=48000
    ! opusenc bitrate=64000 $opus ! bs.audio"
  "$B/bench/glass-source" "$launch" >"/tmp/av-delay-$variant.log" 2>&1 &
  SERVER_PID=$!
  PIDS+=("$SERVER_PID")
  for _ in $(seq 100); do curl -s -o /dev/null -m 1 "http://127.0.0.1:$PORT/" && break; sleep 0.1; done
  local url="http://127.0.0.1:$PORT/" log="/tmp/av-delay-$variant-$round-chromium.log"
  if [ -n "${CHROMIUM_LOG:-}" ]; then
    echo "$variant $(DEBUG=pw:browser node "$ROOT/bench/av-delay.mjs" "$url" 2>"$log" | tail -1)"
  else
    echo "$variant $(node "$ROOT/bench/av-delay.mjs" "$url" 2>&1 | tail -1)"
  fi
  stop_server
}

for round in $(seq "${ROUNDS:-2}"); do
  for v in "${variants[@]}"; do run "$v"; done
done
