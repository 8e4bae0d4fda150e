# The servers under test and how one point of a sweep is measured, shared
# by run-benchmarks.sh (one core) and scaling.sh (sender shards). The caller
# sets ROOT, B, OUT, PORT, LOAD, HOLD, RAMP, CLK_TCK and PIDS, and may set
# SERVER_CPUS (default 0) and LOAD_CPUS (default 1) for taskset.
SERVER_CPUS=${SERVER_CPUS:-0}
LOAD_CPUS=${LOAD_CPUS:-1}

JANUS_CONF=""
# Janus never gathers ICE candidates on loopback (bench/janus/README.md):
# inside this namespace it gets 192.0.2.1 and the generator 192.0.2.2, both
# on a veth whose traffic, between local addresses, never leaves the host.
# One configuration folder per MEDIA: the video-only mountpoint binds the
# same port as the audio + video one, so they cannot be in one config.
prepare_janus() {
  JANUS_CONF=$(mktemp -d)
  mkdir "$JANUS_CONF/av" "$JANUS_CONF/video"
  cp "$ROOT"/bench/janus/*.jcfg "$JANUS_CONF/av/"
  cp "$ROOT"/bench/janus/*.jcfg "$JANUS_CONF/video/"
  cp "$ROOT"/bench/janus/video-only/*.jcfg "$JANUS_CONF/video/"
  ip link show jv0 >/dev/null 2>&1 || ip link add jv0 type veth peer name jv1
  ip addr replace 192.0.2.1/32 dev jv0
  ip addr replace 192.0.2.2/32 dev jv0
  ip link set jv1 up
  ip link set jv0 up
}

# Starts server $1 serving media $2 (video or av) on $SERVER_CPUS; sets
# SERVER_PID and LOAD_ARGS ("ours-threadsN": ours with sender-threads=N;
# "ours-malloc": with G_SLICE=always-malloc, as gst-broadcast runs;
# "ours-lowmem": that and glibc's malloc with one arena and no per-thread
# cache, docs/soak.md; "ours-cm" / "ours-gcm": ours, the generator offering
# only AES_CM_128_HMAC_SHA1_80 / AEAD_AES_128_GCM; "ours-abs": ours, the
# generator offering abs-send-time, which every packet then carries).
# The generator always offers audio and video, as a browser would: a
# video-only server rejects the audio m-line.
start_server() {
  local name=$1 media=$2 log="$OUT/server-$2-$1.log"
  case $name in
    ours|ours-direct|ours-webrtcbin|ours-threads*|ours-malloc|ours-lowmem|ours-cm|ours-gcm|ours-layers|ours-abs)
      local props=() env_vars=()
      case $name in
        ours-malloc) env_vars=(G_SLICE=always-malloc) ;;
        ours-lowmem) env_vars=(G_SLICE=always-malloc GLIBC_TUNABLES=glibc.malloc.arena_max=1:glibc.malloc.tcache_count=0) ;;
      esac
      case $name in
        ours-direct|ours-webrtcbin) props+=(ice-lite=false max-pending-webrtcbin=0) ;;
        ours-threads*) props+=(sender-threads="${name#ours-threads}") ;;
      esac
      [ "$name" = ours-webrtcbin ] && props+=(direct-send=false)
      LAYERS=0
      [ "$name" = ours-layers ] && LAYERS=1
      LAYERS=$LAYERS ours_launch "$PORT" "$media" "${props[@]}"
      env "${env_vars[@]}" taskset -c "$SERVER_CPUS" gst-launch-1.0 -q "${OURS_LAUNCH[@]}" >"$log" 2>&1 &
      SERVER_PID=$!
      LOAD_ARGS=(--url "http://127.0.0.1:$PORT/whep")
      case $name in
        ours-cm) LOAD_ARGS+=(--srtp-profiles cm80) ;;
        ours-gcm) LOAD_ARGS+=(--srtp-profiles gcm) ;;
        ours-abs) LOAD_ARGS+=(--abs-send-time) ;;
      esac
      READY_URL="http://127.0.0.1:$PORT/"
      ;;
    naive)
      local audio=(--audio-port 5006)
      [ "$media" = video ] && audio=(--no-audio)
      taskset -c "$SERVER_CPUS" "$B/bench/naive-tee" --port $PORT --address 127.0.0.1 --ice-address 127.0.0.1 \
        --video-port 5004 "${audio[@]}" >"$log" 2>&1 &
      SERVER_PID=$!
      LOAD_ARGS=(--url "http://127.0.0.1:$PORT/whep" --video-pt 96 --audio-pt 111)
      READY_URL="http://127.0.0.1:$PORT/whep"
      ;;
    janus)
      local mount=1
      [ "$media" = video ] && mount=2
      taskset -c "$SERVER_CPUS" janus -F "$JANUS_CONF/$media" -C "$JANUS_CONF/$media/janus.jcfg" >"$log" 2>&1 &
      SERVER_PID=$!
      LOAD_ARGS=(--janus "http://127.0.0.1:8088/janus" --mount "$mount" --local-address 192.0.2.2)
      READY_URL="http://127.0.0.1:8088/janus/info"
      ;;
  esac
  PIDS+=("$SERVER_PID")
  wait_ready "$READY_URL" "$name" "$log"
}

wait_ready() {
  for _ in $(seq 100); do
    curl -s -o /dev/null -m 1 "$1" && return 0
    sleep 0.1
  done
  say "$2 did not come up; see $3"
  return 1
}

# One sample a second of the server's CPU ticks, RSS (kB) and threads, with
# the wall clock in ms, so a run's hold window can be cut out afterwards.
start_sampler() {
  local pid=$1 file=$2
  (
    while kill -0 "$pid" 2>/dev/null; do
      read -r -a stat <"/proc/$pid/stat" || break
      rss=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status" 2>/dev/null)
      threads=$(awk '/^Threads/ {print $2}' "/proc/$pid/status" 2>/dev/null)
      echo "$(date +%s%3N) $((stat[13] + stat[14])) ${rss:-0} ${threads:-0}"
      sleep 1
    done
  ) >"$file" &
  SAMPLER_PID=$!
  PIDS+=("$SAMPLER_PID")
}

# CPU % of one core, peak RSS (kB) and threads within [start_ms, end_ms].
window_stats() {
  awk -v s="$2" -v e="$3" -v hz="$CLK_TCK" '
    $1 >= s && $1 <= e { if (!n++) { t0 = $1; c0 = $2 } t1 = $1; c1 = $2; if ($3 > rss) rss = $3; if ($4 > th) th = $4 }
    END { if (n < 2 || t1 == t0) print "0 0 0"; else printf "%.1f %d %d\n", 100 * (c1 - c0) / hz / ((t1 - t0) / 1000), rss, th }' "$1"
}

# Idle cost of server $1 serving media $2 with its input flowing and no viewer.
baseline() {
  local name=$1 media=$2 samples="$OUT/$2-$1-idle.samples"
  start_server "$name" "$media"
  start_sampler "$SERVER_PID" "$samples"
  local t0 t1
  sleep 2
  t0=$(date +%s%3N)
  sleep 8
  t1=$(date +%s%3N)
  stop_server
  window_stats "$samples" "$t0" "$t1"
}

# ---------------------------------------------------------------- the sweep
# Server $1, media $2, $3 viewers.
run_point() {
  local name=$1 media=$2 n=$3 json="$OUT/$2-$1-$3.json" samples="$OUT/$2-$1-$3.samples"
  start_server "$name" "$media" || return 1
  start_sampler "$SERVER_PID" "$samples"
  taskset -c "$LOAD_CPUS" "$LOAD" "${LOAD_ARGS[@]}" --viewers "$n" --ramp "$RAMP" --hold "$HOLD" --json "$json" \
    >"$OUT/load-$media-$name-$n.log" 2>&1 || true
  stop_server
  [ -s "$json" ] || { say "$media $name $n: the load generator wrote no JSON"; return 1; }
  local s e
  s=$(jq '.window.start_unix_ms' "$json")
  e=$(jq '.window.end_unix_ms' "$json")
  read -r cpu rss threads < <(window_stats "$samples" "$s" "$e")
  jq -r --arg name "$name" --arg cpu "$cpu" --arg rss "$rss" --arg threads "$threads" \
    '[$name, .requested, .connected, .never_got_media, $cpu, $rss, $threads, .loss_percent,
      .first_keyframe_ms.median, .first_keyframe_ms.p95, .cpu.window_percent_of_core,
      .verification.failures, (.answer_ms.median // -1), (.answer_ms.p95 // -1)] | @tsv' "$json"
}

