#!/usr/bin/env bash
# Latency added per relay hop: a root broadcast (640x360 30 fps SMPTE bars, H.264 ~800 kbps
# + Opus) and two relays chained below it (root -> relay1 -> relay2), with one
# WHEP viewer on each node, all in one relay-hops process that stamps each
# video RTP packet as it leaves the viewer's socket and matches packets by
# (RTP timestamp, sequence number). Prints the delay of relay1 and relay2
# behind the root (p50/p95/max) and what each hop adds.
# Pinning (2 cores): the root's encoder and the viewers on core 0, both relays
# on core 1. PIN=0 turns pinning off.
# Runs inside a private network namespace with loopback only.
#   usage: sudo bench/relay-hops.sh [build-dir] [seconds] [json-file]
set -euo pipefail
build=$(realpath "${1:-build}")
seconds=${2:-20}
json=${3:-}
[ -z "$json" ] || json=$(realpath -m "$json")
[ -n "${IN_NETNS:-}" ] || exec unshare --net env IN_NETNS=1 bash "$0" "$build" "$seconds" "$json"
ip link set lo up
root_port=18700 relay1_port=18701 relay2_port=18702
logs=$(mktemp -d)
# A private copy of the plugin and of relay-hops: a rebuild during the run
# (or between the root's restarts) must not change what is measured.
mkdir -p "$logs/bin"
cp "$build/gst/libgstwebrtcbroadcast.so" "$logs/bin/"
cp "$build/bench/relay-hops" "$logs/bin/"
export GST_PLUGIN_PATH="$logs/bin" GST_REGISTRY="$logs/registry.bin"
plugin_sha=$(sha256sum "$logs/bin/libgstwebrtcbroadcast.so" | cut -c1-12)
# exec: in a background job, $! is then the process itself (kill reaches it)
pin() { if [ "${PIN:-1}" = 1 ]; then exec taskset -c "$1" "${@:2}"; else exec "${@:2}"; fi; }

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

# Offers get 409 while the node has no media; a junk offer gets 400 once it has.
wait_flowing() {
  local url=$1 code
  for _ in $(seq 200); do
    code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/sdp' --data 'x' "$url" || true)
    [ "$code" != 000 ] && [ "$code" != 409 ] && return 0
    sleep 0.1
  done
  echo "no media at $url (last answer $code); logs in $logs" >&2
  return 1
}

relay() {  # core upstream-port own-port
  pin "$1" gst-launch-1.0 -q relaysrc name=r location="http://127.0.0.1:$2/whep" ice-address=127.0.0.1 \
    broadcastsink name=b port="$3" address=127.0.0.1 ice-address=127.0.0.1 \
    r.video ! queue ! b.video r.audio ! queue ! b.audio
}

(pin 0 gst-launch-1.0 -q \
  videotestsrc is-live=true ! video/x-raw,width=640,height=360,framerate=30/1 \
  ! x264enc tune=zerolatency speed-preset=ultrafast bitrate=800 key-int-max=60 \
  ! video/x-h264,profile=constrained-baseline ! bs.video \
  audiotestsrc is-live=true ! audioconvert ! audioresample ! opusenc ! bs.audio \
  broadcastsink name=bs port=$root_port address=127.0.0.1 ice-address=127.0.0.1) >"$logs/root.log" 2>&1 &
pids+=($!)
wait_flowing "http://127.0.0.1:$root_port/whep"
GST_DEBUG=broadcast*:4 relay 1 $root_port $relay1_port >"$logs/relay1.log" 2>&1 &
pids+=($!)
wait_flowing "http://127.0.0.1:$relay1_port/whep"
GST_DEBUG=broadcast*:4 relay 1 $relay1_port $relay2_port >"$logs/relay2.log" 2>&1 &
pids+=($!)
wait_flowing "http://127.0.0.1:$relay2_port/whep"

echo "date=$(date -u +%FT%TZ) commit=$(git -C "$(dirname "$0")" rev-parse --short HEAD 2>/dev/null)$([ -z "$(git -C "$(dirname "$0")/.." status --porcelain -- gst 2>/dev/null)" ] || echo +uncommitted-gst) plugin_sha256=$plugin_sha cpus=$(nproc) cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs) pin=${PIN:-1}"
# CPU over the run: the whole machine vs this benchmark's processes (the rest
# is someone else's load, which shows up as noise in the tails).
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
machine() { awk '/^cpu / { t = 0; for (i = 2; i <= 9; i++) t += $i; print t, $5 + $6 }' /proc/stat; }
ours() { local sum=0 p; for p in "$@"; do sum=$(( sum + $(ticks "$p") )); done; echo $sum; }
read -r m_tot0 m_idle0 < <(machine)
o0=$(ours "${pids[@]}")
(pin 0 "$logs/bin/relay-hops" --root "http://127.0.0.1:$root_port/whep" \
  --relay "http://127.0.0.1:$relay1_port/whep" --relay "http://127.0.0.1:$relay2_port/whep" \
  --seconds "$seconds" ${json:+--json "$json"}) &
hops=$!
hops_ticks=0
while kill -0 "$hops" 2>/dev/null; do t=$(ticks "$hops"); [ "$t" = 0 ] || hops_ticks=$t; sleep 0.2; done
rc=0; wait "$hops" || rc=$?
read -r m_tot1 m_idle1 < <(machine)
o1=$(ours "${pids[@]}")
awk -v tot=$(( m_tot1 - m_tot0 )) -v idle=$(( m_idle1 - m_idle0 )) -v ours=$(( o1 - o0 + hops_ticks )) -v n="$(nproc)" \
  'BEGIN { busy = (tot - idle) / tot * 100 * n; mine = ours / tot * 100 * n
           printf "cpu during the run (%% of one core): machine %.0f, this benchmark %.0f, others %.0f\n", busy, mine, busy - mine }'
for r in relay1 relay2; do
  echo "$r: $(grep -c 'upstream live' "$logs/$r.log") upstream session(s), $(grep -c WARN "$logs/$r.log") warnings"
done
rm -rf "$logs"
exit $rc
