#!/usr/bin/env bash
# Server CPU per viewer of one broadcast (640x360 30 fps H.264 ~800 kbps + Opus),
# the broadcast pinned to core 0, the viewers (webrtcbin, no decoding) to core 1.
# Runs inside a private network namespace with loopback only. Prints one line
# per viewer count; copy the table into docs/.
#   usage: sudo bench/viewer-cpu.sh [build-dir] [counts...]
set -euo pipefail
build=$(realpath "${1:-build}"); shift || true
counts=("${@:-0 10 20 40}")
[ -n "${IN_NETNS:-}" ] || exec unshare --net env IN_NETNS=1 bash "$0" "$build" ${counts[@]}
ip link set lo up
port=18600
export GST_PLUGIN_PATH="$build/gst"
taskset -c 0 gst-launch-1.0 -q \
  videotestsrc is-live=true pattern=ball ! video/x-raw,width=640,height=360,framerate=30/1 \
  ! x264enc tune=zerolatency speed-preset=ultrafast bitrate=800 key-int-max=60 \
  ! video/x-h264,profile=constrained-baseline ! bs.video \
  audiotestsrc is-live=true ! audioconvert ! audioresample ! opusenc ! bs.audio \
  broadcastsink name=bs port=$port address=127.0.0.1 ice-address=127.0.0.1 offers-per-second=0 max-pending-viewers=0 >/dev/null 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.1; done
ticks=$(getconf CLK_TCK)
cpu() { awk '{print $14+$15}' "/proc/$server/stat"; }
threads() { awk '/^Threads:/{print $2}' "/proc/$server/status"; }
rss() { awk '/^VmRSS:/{print $2}' "/proc/$server/status"; }
echo "date=$(date -u +%FT%TZ) commit=$(git -C "$(dirname "$0")" rev-parse --short HEAD 2>/dev/null) cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
printf "%8s %12s %10s %9s %s\n" viewers server_cpu_% rss_MiB threads viewers_report
for n in ${counts[@]}; do
  out=$(mktemp)
  taskset -c 1 "$build/bench/viewer-load" "http://127.0.0.1:$port/whep" "$n" 12 >"$out" 2>/dev/null &
  load=$!
  # measure over the hold period, after all viewers are connected
  for _ in $(seq 300); do grep -q first_packet "$out" && break; sleep 0.1; done
  sleep 1
  c0=$(cpu); sleep 10; c1=$(cpu)
  pct=$(awk -v a="$c0" -v b="$c1" -v t="$ticks" 'BEGIN{printf "%.1f", (b-a)/t/10*100}')
  r=$(awk -v k="$(rss)" 'BEGIN{printf "%.1f", k/1024}')
  th=$(threads)
  wait $load || true
  printf "%8s %12s %10s %9s %s\n" "$n" "$pct" "$r" "$th" "$(tr '\n' ' ' < "$out")"
  rm -f "$out"
  sleep 2
done
