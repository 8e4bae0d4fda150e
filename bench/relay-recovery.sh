#!/usr/bin/env bash
# Recovery of a relay tree when its root dies: root -> relay1 -> relay2 ->
# one leaf viewer (bench/relay-hops --watch, a real webrtcbin WHEP session on
# relay2 that is never restarted). Each run kills the root with SIGKILL
# mid-stream, keeps it down DOWN seconds (default 0), restarts it on the same
# port, and measures
#   (a) root ready -> leaf: from the moment the restarted root answers an
#       offer with something other than 409 (its HTTP port is up and media
#       flows) to the first video packet at the leaf viewer;
#   (b) outage at the leaf: silence between the last video packet before the
#       kill and the first one after it.
# The relays' logs (broadcast*:5, stamped with the wall clock) give when each
# noticed the loss and was live again. RUNS runs (default 5), STEADY seconds
# of normal streaming before each kill (default 6), then the medians.
# Root and leaf viewer on core 0, both relays on core 1. All logs stay in
# LOGS (default: a new temporary directory, printed at the end).
# Runs inside a private network namespace with loopback only.
#   usage: sudo [RUNS=5] [DOWN=0] [STEADY=6] [RELAY_DEBUG=broadcast*:5] [LOGS=dir] \
#            bench/relay-recovery.sh [build-dir]
set -euo pipefail
build=$(realpath "${1:-build}")
[ -n "${IN_NETNS:-}" ] || exec unshare --net env IN_NETNS=1 bash "$0" "$build"
ip link set lo up
runs=${RUNS:-5} down=${DOWN:-0} steady=${STEADY:-6}
relay_debug=${RELAY_DEBUG:-broadcast*:5}
root_port=18710 relay1_port=18711 relay2_port=18712
logs=${LOGS:-$(mktemp -d)}
mkdir -p "$logs"
# A private copy of the plugin and of relay-hops: a rebuild during the run
# (or between the root's restarts) must not change what is measured.
mkdir -p "$logs/bin"
cp "$build/gst/libgstwebrtcbroadcast.so" "$logs/bin/"
cp "$build/bench/relay-hops" "$logs/bin/"
export GST_PLUGIN_PATH="$logs/bin" GST_REGISTRY="$logs/registry.bin"
plugin_sha=$(sha256sum "$logs/bin/libgstwebrtcbroadcast.so" | cut -c1-12)
now_ms() { date +%s%3N; }
# Prefixes every line with the wall clock in ms.
stamp() { perl -MTime::HiRes=time -ne 'BEGIN { $| = 1 } printf "%d %s", time * 1000, $_'; }

cleanup() {
  for f in "$logs"/*.pid; do [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

start_root() {
  rm -f "$logs/root.pid"
  ( (echo "$BASHPID" >"$logs/root.pid"; export GST_DEBUG="broadcast*:4" GST_DEBUG_NO_COLOR=1
     exec taskset -c 0 gst-launch-1.0 -q \
    videotestsrc is-live=true ! video/x-raw,width=640,height=360,framerate=30/1 \
    ! x264enc tune=zerolatency speed-preset=ultrafast bitrate=800 key-int-max=60 \
    ! video/x-h264,profile=constrained-baseline ! bs.video \
    audiotestsrc is-live=true ! audioconvert ! audioresample ! opusenc ! bs.audio \
    broadcastsink name=bs port=$root_port address=127.0.0.1 ice-address=127.0.0.1) 2>&1 | stamp >>"$logs/root.log" ) \
    2>/dev/null &
  while [ ! -s "$logs/root.pid" ]; do sleep 0.005; done
  root_pid=$(cat "$logs/root.pid")
}

start_relay() {  # name upstream-port own-port
  ( (echo "$BASHPID" >"$logs/$1.pid"; export GST_DEBUG="$relay_debug" GST_DEBUG_NO_COLOR=1
     exec taskset -c 1 gst-launch-1.0 relaysrc name=r location="http://127.0.0.1:$2/whep" ice-address=127.0.0.1 \
       broadcastsink name=b port="$3" address=127.0.0.1 ice-address=127.0.0.1 \
       r.video ! queue ! b.video r.audio ! queue ! b.audio) 2>&1 | stamp >"$logs/$1.log" ) 2>/dev/null &
}

# Offers get 409 while a node has no media; a junk offer gets 400 once it has.
# Prints the wall clock (ms) of the first such answer.
wait_flowing() {  # url timeout-s
  local url=$1 deadline=$(( $(now_ms) + ${2:-20} * 1000 )) code
  while [ "$(now_ms)" -lt "$deadline" ]; do
    code=$(curl -s -o /dev/null --max-time 2 -w '%{http_code}' -X POST -H 'Content-Type: application/sdp' \
      --data 'x' "$url" || true)
    if [ "$code" != 000 ] && [ "$code" != 409 ]; then now_ms; return 0; fi
    sleep 0.02
  done
  echo "no media at $url (last answer $code); logs in $logs" >&2
  return 1
}

# Wall clock of the first log line after $2 (ms) matching $3, or "-".
event_after() {  # log after-ms regex
  awk -v t="$2" -v re="$3" '$1 > t && $0 ~ re { print $1; found = 1; exit } END { if (!found) print "-" }' "$1"
}
rel() { [ "$1" = - ] && echo - || echo $(( $1 - $2 )); }
# CPU: the whole machine vs this benchmark's processes (the rest is someone
# else's load, which shows up as noise).
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
machine() { awk '/^cpu / { t = 0; for (i = 2; i <= 9; i++) t += $i; print t, $5 + $6 }' /proc/stat; }
ours() { local sum=0 f; for f in "$logs"/relay1.pid "$logs"/relay2.pid "$logs"/leaf.pid; do sum=$(( sum + $(ticks "$(cat "$f")") )); done; echo $sum; }
busy_pct() {  # tot0 idle0 tot1 idle1
  awk -v t=$(( $3 - $1 )) -v i=$(( $4 - $2 )) -v n="$(nproc)" 'BEGIN { printf "%.0f", (t - i) / t * 100 * n }'
}

start_root
wait_flowing "http://127.0.0.1:$root_port/whep" >/dev/null
start_relay relay1 $root_port $relay1_port
wait_flowing "http://127.0.0.1:$relay1_port/whep" >/dev/null
start_relay relay2 $relay1_port $relay2_port
wait_flowing "http://127.0.0.1:$relay2_port/whep" >/dev/null

(echo "$BASHPID" >"$logs/leaf.pid"; exec taskset -c 0 "$logs/bin/relay-hops" --watch "http://127.0.0.1:$relay2_port/whep" \
  --seconds 0 --gap-ms 150) >"$logs/leaf.log" 2>"$logs/leaf.err" &
for _ in $(seq 200); do grep -q FIRST_PACKET "$logs/leaf.log" && break; sleep 0.1; done
grep -q FIRST_PACKET "$logs/leaf.log" || { echo "the leaf viewer got no video; logs in $logs" >&2; exit 1; }

echo "date=$(date -u +%FT%TZ) commit=$(git -C "$(dirname "$0")" rev-parse --short HEAD 2>/dev/null)$([ -z "$(git -C "$(dirname "$0")/.." status --porcelain -- gst 2>/dev/null)" ] || echo +uncommitted-gst) plugin_sha256=$plugin_sha cpus=$(nproc) cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs) down=${down}s runs=$runs"
cat <<'EOT'
Timeline of each run in ms after the SIGKILL: root_ready = the restarted root answers non-409;
rN lost/ans/vid = relay N declared its upstream lost / got a 201 answer to its new offer / got the
first video packet of the new session (its splice's log line); root_ans = the restarted root's
own time to answer relay1's offer (its log: "answered in"); leaf = first video packet at the
leaf viewer. (a) = leaf - root_ready, (b) = the leaf's silence (last packet before the kill to
first after). seq_jump: sequence number step across the gap at the leaf (1 = continuous).
cpu: whole machine, % of one core, over the run including the steady period before the kill.
EOT
printf "%4s %10s %16s %9s %16s %6s %8s %8s %8s %4s\n" run root_ready "r1 lost/ans/vid" root_ans "r2 lost/ans/vid" leaf \
  "(a)" "(b)" seq_jump cpu
a_all=() b_all=()
read -r s_tot0 s_idle0 < <(machine)
o0=$(ours)
root_ticks=$(( - $(ticks "$root_pid") ))
for run in $(seq "$runs"); do
  read -r r_tot0 r_idle0 < <(machine)
  sleep "$steady"
  root_ticks=$(( root_ticks + $(ticks "$root_pid") ))
  t_kill=$(now_ms)
  kill -KILL "$root_pid"
  while [ -e "/proc/$root_pid" ]; do sleep 0.005; done
  sleep "$down"
  t_start=$(now_ms)
  start_root
  t_ready=$(wait_flowing "http://127.0.0.1:$root_port/whep" 30) || exit 1
  # the first packet after the outage at the leaf (a gap over 500 ms after the kill)
  line=""
  deadline=$(( $(now_ms) + 60000 ))
  while [ -z "$line" ] && [ "$(now_ms)" -lt "$deadline" ]; do
    line=$(awk -v t="$t_kill" '/^GAP_END/ { split($2, a, "="); split($3, g, "="); if (a[2] > t && g[2] > 500) { print; exit } }' "$logs/leaf.log")
    [ -n "$line" ] || sleep 0.1
  done
  if [ -z "$line" ]; then
    echo "run $run: no video at the leaf within 60 s of the root being ready; logs in $logs" >&2
    tail -3 "$logs/leaf.log" >&2
    trap - EXIT; cleanup; exit 1
  fi
  at=$(sed 's/.*at_ms=\([0-9]*\).*/\1/' <<<"$line")
  gap=$(sed 's/.*gap_ms=\([0-9.]*\).*/\1/' <<<"$line")
  sj=$(sed 's/.*seq_jump=\([-0-9]*\).*/\1/' <<<"$line")
  tj=$(sed 's/.*ts_jump_ms=\([-0-9.]*\).*/\1/' <<<"$line")
  a=$(( at - t_ready ))
  b=$(printf '%.0f' "$gap")
  a_all+=("$a") b_all+=("$b")
  sleep 0.3  # the relays' log lines of this recovery are written by now
  ev=()
  for r in relay1 relay2; do
    lost=$(event_after "$logs/$r.log" "$t_kill" 'upstream lost')
    [ "$lost" = - ] && lost=$t_kill
    ev+=("$(rel "$(event_after "$logs/$r.log" "$t_kill" 'upstream lost')" "$t_kill")/$(rel "$(event_after "$logs/$r.log" "$lost" 'pulling from')" "$t_kill")/$(rel "$(event_after "$logs/$r.log" "$lost" 'video-splice.*new upstream session')" "$t_kill")")
  done
  read -r r_tot1 r_idle1 < <(machine)
  # how long the restarted root took to answer relay1's offer (its first viewer)
  root_ans=$(awk -v t="$t_kill" '$1 > t && /answered in/ { print $(NF-1); exit }' "$logs/root.log")
  printf "%4s %10s %16s %9s %16s %6s %8s %8s %8s %4s\n" "$run" $(( t_ready - t_kill )) "${ev[0]}" "${root_ans:--}" "${ev[1]}" \
    $(( at - t_kill )) "$a" "$b" "$sj" "$(busy_pct "$r_tot0" "$r_idle0" "$r_tot1" "$r_idle1")"
done
root_ticks=$(( root_ticks + $(ticks "$root_pid") ))
read -r s_tot1 s_idle1 < <(machine)
o1=$(( $(ours) - o0 + root_ticks ))
awk -v t=$(( s_tot1 - s_tot0 )) -v i=$(( s_idle1 - s_idle0 )) -v o="$o1" -v n="$(nproc)" \
  'BEGIN { b = (t - i) / t * 100 * n; m = o / t * 100 * n
           printf "cpu over all runs (%% of one core): machine %.0f, this benchmark %.0f, others %.0f\n", b, m, b - m }'
median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
echo "median: root ready -> first video at the leaf ${a_all:+$(median "${a_all[@]}")} ms; outage at the leaf $(median "${b_all[@]}") ms"
echo "leaf viewer: $(grep -c CONNECTED "$logs/leaf.log") WHEP session over all runs (never restarted); viewers relay2 removed: $(grep -c 'removed' "$logs/relay2.log" || true)"
echo "upstream sessions: relay1 $(grep -c 'pulling from' "$logs/relay1.log"), relay2 $(grep -c 'pulling from' "$logs/relay2.log")"
echo "logs: $logs"
