#!/usr/bin/env bash
# Layers chosen by feedback, for many viewers at once: one gst-broadcast of
# snow in three layers and four groups of generated viewers (each group one
# gst-broadcast-load --remb in a network namespace of its own, behind a veth)
# on links of 300 kbit/s, 1, 3 and 20 Mbit/s. Every viewer has a bottleneck
# of its own: on the host side of its group's veth, an htb class per viewer
# at the group's rate, picked by the viewer's UDP port (--port-base), with a
# byte-limited FIFO of QUEUE_MS at that rate (a link's buffer). The viewers
# watch for SETTLE seconds (the server moves each to the layer its feedback
# says fits), then MEASURE seconds are measured. Prints a table per group:
# the layer its viewers ended on and the share of time on each layer (each
# viewer's layer, second by second, is the one whose rate in the server's
# /stats is nearest what it was sent: its video received / (1 - its loss)
# in that second), video loss and kbit/s over the measured window, the
# last REMB sent; then the server's own count of viewers per layer (all
# groups together) at the end of the first window, its CPU and the whole
# machine's (docs/layer-groups.md has runs).
#
#   sudo bash bench/layer-groups.sh
#
# Everything runs in a private network namespace (bench/common.sh) holding
# only loopback and the four veths (documentation addresses: group k's host
# side 192.0.2.(4k+1)/30, its viewers 192.0.2.(4k+2)); the server offers
# ICE on the four host addresses only. Nothing is routed anywhere else, and
# the group namespaces, veths and processes go on exit.
#
# Environment: GROUP_SIZE (viewers per group, 50), RATES (kbit/s per viewer,
# one group each: "300 1000 3000 20000"), LAYERS
# ("1280x720@2500,640x360@800,320x180@200"), CHECK (1: exit 1 unless every
# group settled on a layer its link carries with < 1 % video loss, the groups
# whose links carry the top layer on it), AUDIO (1: the CLI's Opus at 64
# kbit/s, 0: --no-audio), SETTLE (30 s), MEASURE (30 s), QUEUE_MS (each
# link's buffer, 200 ms at its rate, at least 6 KB), RAMP (joins per second
# per group, 10), SERVER_CPUS / LOAD_CPUS (taskset lists for the server and
# the four generators, default: unpinned), BUILD (build: its tools/ and gst/),
# SERVER_BUILD (BUILD: where gst-broadcast and the plugin come from),
# OUT ($BUILD/layer-groups).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

. "$ROOT/bench/common.sh"
. "$ROOT/tests/browser/netns.sh"
enter_netns "$@"

BUILD=$(cd "${BUILD:-build}" && pwd)
SERVER_BUILD=$(cd "${SERVER_BUILD:-$BUILD}" && pwd)
OUT=${OUT:-$BUILD/layer-groups}
GROUP_SIZE=${GROUP_SIZE:-50}
read -r -a RATES <<<"${RATES:-300 1000 3000 20000}"
LAYERS=${LAYERS:-1280x720@2500,640x360@800,320x180@200}
AUDIO=${AUDIO:-1}
SETTLE=${SETTLE:-30}
MEASURE=${MEASURE:-30}
QUEUE_MS=${QUEUE_MS:-200}
RAMP=${RAMP:-10}
SERVER_CPUS=${SERVER_CPUS:-}
LOAD_CPUS=${LOAD_CPUS:-}
PORT=8080
PORT_BASE=40000  # group k's viewers: 40000 + 1000 k + i
LOAD=$BUILD/tools/gst-broadcast-load
SERVER=$SERVER_BUILD/tools/gst-broadcast
GROUPS_N=${#RATES[@]}

say() { echo "[layer-groups] $*"; }

for f in "$LOAD" "$SERVER" "$SERVER_BUILD/gst/libgstwebrtcbroadcast.so"; do
  [ -e "$f" ] || { echo "ERROR: $f not built" >&2; exit 1; }
done
for tool in ip tc curl python3 timeout; do command -v $tool >/dev/null || { echo "ERROR: $tool not found" >&2; exit 1; }; done
[ "$GROUP_SIZE" -ge 1 ] && [ "$GROUP_SIZE" -le 1000 ] || { echo "ERROR: GROUP_SIZE must be 1-1000" >&2; exit 1; }
[ "$GROUPS_N" -ge 1 ] && [ "$GROUPS_N" -le 16 ] || { echo "ERROR: 1 to 16 RATES" >&2; exit 1; }

NS_PREFIX="wblg$$-"
finish() {
  cleanup  # bench/common.sh: the processes in PIDS
  for k in $(seq 0 $((GROUPS_N - 1))); do
    ip netns pids "$NS_PREFIX$k" 2>/dev/null | xargs -r kill -KILL 2>/dev/null || true
    remove_viewer_namespace "$NS_PREFIX$k" "lg$k-" || true
  done
}
trap finish EXIT
trap 'exit 130' INT TERM

rm -rf "$OUT"
mkdir -p "$OUT"
server_pin=()
load_pin=()
[ -z "$SERVER_CPUS" ] || server_pin=(taskset -c "$SERVER_CPUS")
[ -z "$LOAD_CPUS" ] || load_pin=(taskset -c "$LOAD_CPUS")

# The links: per viewer an htb class at the group's rate, chosen by the
# viewer's destination port; anything else (ARP, HTTP answers) unshaped.
ice_addresses=()
for k in $(seq 0 $((GROUPS_N - 1))); do
  ns="$NS_PREFIX$k"
  host="192.0.2.$((4 * k + 1))"
  viewer="192.0.2.$((4 * k + 2))"
  rate=${RATES[$k]}
  make_viewer_namespace "$ns" "lg$k-" "" "$host/30" "$viewer/30"
  limit=$((rate * 1000 / 8 * QUEUE_MS / 1000))
  [ "$limit" -ge 6000 ] || limit=6000
  {
    echo "qdisc add dev lg$k-0 root handle 1: htb"
    for i in $(seq 0 $((GROUP_SIZE - 1))); do
      class=$((i + 1))
      port=$((PORT_BASE + 1000 * k + i))
      echo "class add dev lg$k-0 parent 1: classid 1:$(printf %x $class) htb rate ${rate}kbit ceil ${rate}kbit quantum 1514"
      echo "qdisc add dev lg$k-0 parent 1:$(printf %x $class) bfifo limit $limit"
      echo "filter add dev lg$k-0 parent 1: protocol ip prio 1 u32 match ip protocol 17 0xff match ip dport $port 0xffff flowid 1:$(printf %x $class)"
    done
  } >"$OUT/tc-$k.batch"
  tc -batch "$OUT/tc-$k.batch"
  ice_addresses+=("$host")
  say "group $k: $GROUP_SIZE viewers at $viewer (namespace $ns), each behind $rate kbit/s, buffer $limit bytes"
done

audio_flag=()
[ "$AUDIO" = 1 ] || audio_flag=(--no-audio)
ice=$(IFS=,; echo "${ice_addresses[*]}")
GST_PLUGIN_PATH=$SERVER_BUILD/gst GST_DEBUG=${GST_DEBUG:-broadcastviewer:4} \
  "${server_pin[@]}" "$SERVER" --pattern snow --layers "$LAYERS" "${audio_flag[@]}" \
  --port "$PORT" --address 0.0.0.0 --ice-address "$ice" --max-pending 0 >"$OUT/server.log" 2>&1 &
SERVER_PID=$!
PIDS+=("$SERVER_PID")
deadline=$((SECONDS + 20))
until curl -s -m 2 "http://127.0.0.1:$PORT/stats" | grep -q packets_in; do
  kill -0 "$SERVER_PID" 2>/dev/null || { echo "FAIL: the server exited"; tail -20 "$OUT/server.log"; exit 1; }
  [ $SECONDS -lt $deadline ] || { echo "FAIL: no /stats within 20 s"; tail -20 "$OUT/server.log"; exit 1; }
  sleep 0.25
done
say "server on $ice, port $PORT: $LAYERS, audio $AUDIO"

# /stats every second, for the layers' rates and viewers at each group's
# window and the server's CPU; and the whole machine's CPU time (2 cores
# shared with whatever else runs: a busy machine starves the encoders).
(
  while :; do
    now=$(date +%s%3N)
    echo "$now $(head -1 /proc/stat)" >>"$OUT/cpu.log"
    printf '%s ' "$now"
    curl -s -m 1 "http://127.0.0.1:$PORT/stats" | tr -d '\n'
    echo
    sleep 1
  done
) >"$OUT/stats.log" 2>/dev/null &
PIDS+=($!)

# Joining takes GROUP_SIZE / RAMP s, and at most 30 s more per viewer.
run_limit=$((GROUP_SIZE / RAMP + 30 + SETTLE + MEASURE + 60))
started=$SECONDS
loads=()
for k in $(seq 0 $((GROUPS_N - 1))); do
  ip netns exec "$NS_PREFIX$k" timeout -k 5 "$run_limit" "${load_pin[@]}" "$LOAD" \
    --url "http://192.0.2.$((4 * k + 1)):$PORT/whep" --viewers "$GROUP_SIZE" --ramp "$RAMP" \
    --local-address "192.0.2.$((4 * k + 2))" --port-base $((PORT_BASE + 1000 * k)) --remb --verify 0 \
    --warmup "$SETTLE" --hold "$MEASURE" --json "$OUT/group-$k.json" >"$OUT/load-$k.log" 2>&1 &
  loads+=($!)
  PIDS+=($!)
done
failed=0
for k in $(seq 0 $((GROUPS_N - 1))); do
  wait "${loads[$k]}" || { say "group $k: gst-broadcast-load exited with $? (see $OUT/load-$k.log)"; failed=1; }
done
say "groups done after $((SECONDS - started)) s"
for k in $(seq 0 $((GROUPS_N - 1))); do tc -s class show dev "lg$k-0" >"$OUT/tc-stats-$k.txt"; done

python3 - "$OUT" "$GROUPS_N" "${RATES[*]}" "$LAYERS" <<'EOF' | tee "$OUT/summary.txt"
import json, math, os, re, sys

out, groups, rates, layers_spec = sys.argv[1], int(sys.argv[2]), [int(r) for r in sys.argv[3].split()], sys.argv[4]
samples = []
for line in open(os.path.join(out, "stats.log")):
    stamp, _, body = line.partition(" ")
    try:
        samples.append((int(stamp), json.loads(body)))
    except ValueError:
        pass

def sample_at(unix_ms):
    # The last one taken by then: right after a window the viewers leave.
    before = [s for s in samples if s[0] <= unix_ms]
    return before[-1][1] if before else None

def video_layers(stats):
    return stats["streams"]["video"]["layers"] if stats else []

def drops(k):
    text = open(os.path.join(out, f"tc-stats-{k}.txt")).read()
    sent = sum(int(n) for n in re.findall(r"Sent \d+ bytes (\d+) pkt", text))
    dropped = sum(int(n) for n in re.findall(r"dropped (\d+)", text))
    return sent, dropped

def median(v):
    v = sorted(v)
    return v[len(v) // 2] if v else float("nan")

def nearest_layer(kbps, layer_kbps):
    # By ratio: a second at 1,300 kbit/s is nearer 800 than 2,500. Under a
    # quarter of the lowest layer: paused (its video stopped).
    if kbps < min(layer_kbps) / 4:
        return "paused"
    return min(range(len(layer_kbps)), key=lambda i: abs(math.log(kbps / layer_kbps[i])))

def layer_rates(from_ms, to_ms):
    # Each layer's median rate over the window, as the server measures it.
    during = [video_layers(st) for t, st in samples if from_ms <= t <= to_ms]
    during = [d for d in during if d] or [video_layers(samples[-1][1])]
    return [median([d[i]["bitrate"] / 1000 for d in during]) for i in range(len(during[0]))]

print()
print(f"layers: {layers_spec}")
rows = []
window_ends = []
layer_kbps_of = {}
for k in range(groups):
    path = os.path.join(out, f"group-{k}.json")
    if not os.path.exists(path):
        print(f"group {k}: no report")
        continue
    g = json.load(open(path))
    w = g["window"]
    window_ends.append(w["end_unix_ms"])
    layer_kbps = layer_rates(w["start_unix_ms"], w["end_unix_ms"]) or [1]
    layer_kbps_of[k] = layer_kbps
    viewers = [v for v in g["per_viewer"] if v["first_packet_ms"] >= 0]
    # Each viewer's layer, second by second, from what the server sent it:
    # the video received / (1 - loss), since a link thinner than the layer
    # carries only its own rate. Where it ended: the layer of most of its
    # last 5 s.
    ended, seconds_on = {}, {}
    for v in viewers:
        layers = [nearest_layer(max(kbps, 1e-9) / (1 - min(loss, 900) / 1000), layer_kbps)
                  for kbps, loss in zip(v["window_kbps"], v["window_loss_permille"])]
        for layer in layers:
            seconds_on[layer] = seconds_on.get(layer, 0) + 1
        last = layers[-5:]
        if last:
            layer = max(set(last), key=last.count)
            ended[layer] = ended.get(layer, 0) + 1
    expected = w["video_packets"] + w["video_lost"]
    kbps = [v["window_video_bytes"] * 8 / 1000 / w["seconds"] for v in viewers] if w["seconds"] > 0 else []
    losses = [100 * v["window_video_lost"] / (v["window_video_packets"] + v["window_video_lost"])
              for v in viewers if v["window_video_packets"] + v["window_video_lost"] > 0]
    estimates = [v["estimate"] / 1000 for v in viewers if v["remb"]]
    sent, dropped = drops(k)
    rows.append((k, rates[k], g["requested"], g["connected"], ended, seconds_on, w["video_loss_percent"],
                 max(losses) if losses else float("nan"), median(kbps), median(estimates), sent, dropped,
                 g["cpu"]["window_percent_of_core"], w["seconds"]))

def by_layer(counts, percent=False):
    total = sum(counts.values())
    ordered = sorted(counts.items(), key=lambda e: (e[0] == "paused", e[0] if e[0] != "paused" else 0))
    return ", ".join(f"{'paused' if l == 'paused' else 'L%d' % l} {100 * n / total:.0f} %" if percent else
                     f"{'paused' if l == 'paused' else 'L%d' % l} {n}" for l, n in ordered)

print()
print("| group | link kbit/s | viewers (connected) | ended on (viewers) | time on layers | video loss % (worst viewer) "
      "| video kbit/s median | REMB kbit/s median | link drops (whole run) | generator CPU % |")
print("|---|---|---|---|---|---|---|---|---|---|")
for (k, rate, req, conn, ended, seconds_on, loss, worst, kbps, est, sent, dropped, cpu, seconds) in rows:
    print(f"| {k} | {rate} | {req} ({conn}) | {by_layer(ended)} | {by_layer(seconds_on, True)} | {loss:.2f} ({worst:.2f}) "
          f"| {kbps:.0f} | {est:.0f} | {dropped} of {sent + dropped} | {cpu:.1f} |")
def machine_busy(from_ms, to_ms):
    # % of one core, all cores together, from /proc/stat (user .. steal).
    rows = []
    for line in open(os.path.join(out, "cpu.log")):
        f = line.split()
        ticks = [int(x) for x in f[2:10]]
        rows.append((int(f[0]), sum(ticks) - ticks[3] - ticks[4], sum(ticks)))
    a = [r for r in rows if r[0] <= from_ms] or rows[:1]
    b = [r for r in rows if r[0] <= to_ms] or rows[-1:]
    a, b = a[-1], b[-1]
    seconds = (b[0] - a[0]) / 1000
    return 100 * (b[1] - a[1]) / os.sysconf("SC_CLK_TCK") / seconds if seconds > 0 else float("nan")

def dropped_batches(stats):
    return sum(s["batches_dropped"] for s in stats["shards"])

# Each second: the server's CPU, the media batches its sender shards dropped
# for being behind (the server, not a link, losing packets), and its viewers
# per layer (all groups together).
with open(os.path.join(out, "timeline.txt"), "w") as timeline:
    timeline.write("# s since the first sample, server CPU % of a core, batches dropped, viewers per layer\n")
    for (t0, a), (t1, b) in zip(samples, samples[1:]):
        cpu = 100 * (b["process"]["cpu_seconds"] - a["process"]["cpu_seconds"]) / ((t1 - t0) / 1000)
        timeline.write(f"{(t1 - samples[0][0]) / 1000:6.1f} {cpu:4.0f} {dropped_batches(b) - dropped_batches(a):4d} "
                       f"{' '.join(str(l['viewers']) for l in video_layers(b))}\n")

if window_ends:
    window_ms = int(rows[0][-1] * 1000)
    end = sample_at(max(window_ends))
    start = sample_at(min(window_ends) - window_ms)
    print()
    # The first window to end: every group still watching.
    print("server at the end of the first window: " + ", ".join(
        f"L{l['index']} {l['bitrate'] / 1000:.0f} kbit/s, {l['viewers']} viewers"
        for l in video_layers(sample_at(min(window_ends)))))
    if end and start:
        seconds = (max(window_ends) - (min(window_ends) - window_ms)) / 1000
        cpu = end["process"]["cpu_seconds"] - start["process"]["cpu_seconds"]
        switches = end["streams"]["video"]["layer_switches"] - start["streams"]["video"]["layer_switches"]
        print(f"server over the windows ({seconds:.0f} s): CPU {100 * cpu / seconds:.0f} % of a core, "
              f"{switches} layer switches, {dropped_batches(end) - dropped_batches(start)} media batches dropped "
              f"by its senders (before the windows: {dropped_batches(start)}); the whole machine "
              f"{machine_busy(min(window_ends) - window_ms, max(window_ends)):.0f} % of a core "
              f"(of {100 * os.cpu_count()} %), the generators {sum(r[-2] for r in rows):.0f} %")

# CHECK=1 (the short CI run): every group must have settled on one layer
# its link carries (its measured rate and the audio's under the link
# rate), lost < 1 % of its video in the window, and a group whose link
# carries the top layer with a fifth to spare must be on it.
if os.environ.get("CHECK") == "1":
    audio_kbps = 64 if os.environ.get("AUDIO", "1") == "1" else 0
    problems = [f"group {k}: no report" for k in range(groups) if k not in layer_kbps_of]
    for (k, rate, req, conn, ended, seconds_on, loss, worst, kbps, est, sent, dropped, cpu, seconds) in rows:
        layer_kbps = layer_kbps_of[k]
        if conn != req:
            problems.append(f"group {k} ({rate} kbit/s): {conn} of {req} viewers connected")
        if len(ended) != 1 or "paused" in ended:
            problems.append(f"group {k} ({rate} kbit/s): did not settle on one layer: {by_layer(ended)}")
            continue
        layer = next(iter(ended))
        if layer_kbps[layer] + audio_kbps > rate:
            problems.append(f"group {k} ({rate} kbit/s): on L{layer} ({layer_kbps[layer]:.0f} kbit/s), which its link cannot carry")
        if (layer_kbps[0] + audio_kbps) * 1.2 <= rate and layer != 0:
            problems.append(f"group {k} ({rate} kbit/s): on L{layer}, not on the top layer its link carries")
        if not loss < 1:
            problems.append(f"group {k} ({rate} kbit/s): lost {loss:.2f} % of its video")
    print()
    if problems:
        print("FAIL: " + "; ".join(problems))
        sys.exit(1)
    print("PASS: every group settled on a layer its link carries, each losing < 1 % of its video")
EOF
exit $failed
