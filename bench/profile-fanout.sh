#!/usr/bin/env bash
# Where broadcastsink's CPU goes with N generator viewers (issue 5): the
# benchmark's server (RTP input from a separate encoder process into
# broadcastsink) pinned to core 0, gst-broadcast-load on core 1, inside a
# private network namespace; `perf record` of the server for 8 s once the
# viewers have joined, then the share per thread, per library and per symbol.
#   usage: sudo bash bench/profile-fanout.sh [viewers (300)] [out-dir (build/profile-fanout)]
#   PERF_ARGS="--call-graph dwarf,16384 -F 299" adds call graphs; LOAD_EXTRA="--srtp-profiles gcm"
#   (or cm80) sets what the viewers offer.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-300}
out=$(realpath -m "${2:-build/profile-fanout}")
[ -n "${IN_NETNS:-}" ] || exec unshare --net env IN_NETNS=1 bash "$0" "$n" "$out"
ip link set lo up
command -v perf >/dev/null || { echo "perf not installed (apt-get install linux-perf)"; exit 1; }
mkdir -p "$out"
export GST_PLUGIN_PATH=$PWD/build/gst
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT
. bench/stream.sh
start_stream "$out/source.log"
pids+=("$SOURCE_PID")
ours_launch 18400 av
taskset -c 0 gst-launch-1.0 -q "${OURS_LAUNCH[@]}" >"$out/server.log" 2>&1 &
server=$!
pids+=("$server")
for _ in $(seq 100); do curl -s -o /dev/null http://127.0.0.1:18400/ && break; sleep 0.1; done
taskset -c 1 build/tools/gst-broadcast-load --url http://127.0.0.1:18400/whep --viewers "$n" --ramp 100 \
  --hold 25 --verify 2 ${LOAD_EXTRA:-} >"$out/load.log" 2>&1 &
load=$!
# Joins take n/100 s; the application thread then needs a few seconds to settle.
sleep $((n / 100 + 8))
perf record ${PERF_ARGS:-} -o "$out/perf.data" -p "$server" -- sleep 8 2>"$out/perf.err"
wait "$load" || true
set +o pipefail  # head closes the pipe early
report() { perf report -i "$out/perf.data" --no-children "$@" 2>/dev/null | grep -E '^ +[0-9]'; }
report --sort comm | head -10 | tee "$out/threads.txt"
report --sort dso | head -12 | tee "$out/libraries.txt"
report --sort symbol | head -30 | cut -c1-100 | tee "$out/symbols.txt"
grep -E "packets:|hold window" "$out/load.log"
