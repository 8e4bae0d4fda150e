# Shared by bench/abuse-pending.sh, bench/udp-flood.sh and bench/soak.sh:
# the private network namespace, a broadcastsink serving the bench stream
# (bench/stream.sh) on core 0, and what we read of it from /proc.
# Sourced after `set -euo pipefail` and `cd` to the repository root.

. bench/common.sh

ROOT=$PWD
B=${BUILD:-$ROOT/build}
PORT=${PORT:-18500}
LOAD=${LOAD:-$B/tools/gst-broadcast-load}  # set it to use an unsanitized generator with BUILD=build-asan
CLK_TCK=$(getconf CLK_TCK)
say() { echo "[$(basename "$0" .sh)] $*" >&2; }

# Every run keeps its logs in OUT; the plugin is copied there so that a
# rebuild meanwhile cannot change what is measured.
prepare_out() {
  OUT=${OUT:-$B/soak-results/$1}
  mkdir -p "$OUT/bin"
  [ -f "$B/gst/libgstwebrtcbroadcast.so" ] && [ -x "$LOAD" ] ||
    { say "build first: meson setup build && ninja -C build (looked in $B)"; exit 2; }
  cp "$B/gst/libgstwebrtcbroadcast.so" "$OUT/bin/"
  export GST_PLUGIN_PATH=$OUT/bin GST_REGISTRY=$OUT/registry.bin
}


. "$ROOT/bench/stream.sh"

# The encoder (core 1), sending to 5004/5006.
start_source() {
  start_stream "$OUT/source.log"
  PIDS+=("$SOURCE_PID")
}

# broadcastsink on core 0 serving audio + video (or $SERVER_MEDIA), with
# extra properties as arguments; environment for it in SERVER_ENV (e.g.
# MALLOC_ARENA_MAX=2). Sets SERVER_PID.
start_server() {
  ours_launch "$PORT" "${SERVER_MEDIA:-av}" "$@"
  env ${SERVER_ENV:-} taskset -c 0 gst-launch-1.0 -q "${OURS_LAUNCH[@]}" >"$OUT/server.log" 2>&1 &
  SERVER_PID=$!
  PIDS+=("$SERVER_PID")
  for _ in $(seq 100); do
    curl -s -o /dev/null -m 1 "http://127.0.0.1:$PORT/" && return 0
    sleep 0.1
  done
  say "broadcastsink did not come up; see $OUT/server.log"
  exit 1
}

fds_of() { ls "/proc/$1/fd" 2>/dev/null | wc -l; }
threads_of() { awk '/^Threads/ {print $2}' "/proc/$1/status"; }
rss_kb_of() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
cpu_ticks_of() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# "fds threads rss_kb" in one line.
resources_of() { echo "$(fds_of "$1") $(threads_of "$1") $(rss_kb_of "$1")"; }

# UDP datagrams the kernel dropped for a full receive buffer, all sockets
# of this namespace (the node's and the generator's), and those of the
# sockets bound to port $1 alone.
udp_rcvbuf_errors() { awk '/^Udp:/ { if (seen) { for (i = 1; i <= NF; i++) if (h[i] == "RcvbufErrors") print $i; exit } seen = 1; for (i = 1; i <= NF; i++) h[i] = $i }' /proc/net/snmp; }

# Viewers the node counts (connected or connecting), from GET /whep/status.
viewers_now() { curl -s -m 2 "http://127.0.0.1:$PORT/whep/status" | jq -r '.viewers // -1' 2>/dev/null || echo -1; }

# Waits until the node counts no viewer, at most $1 seconds; prints the
# seconds it took, or "timeout".
wait_no_viewers() {
  local deadline=$(( $(date +%s) + $1 )) t0
  t0=$(date +%s%3N)
  while [ "$(date +%s)" -le "$deadline" ]; do
    if [ "$(viewers_now)" = 0 ]; then
      awk -v a="$t0" -v b="$(date +%s%3N)" 'BEGIN { printf "%.1f\n", (b - a) / 1000 }'
      return 0
    fi
    sleep 0.5
  done
  echo timeout
  return 1
}

# One sample every $3 seconds (default 1) of process $1 into $2:
# "unix_ms cpu_ticks fds threads rss_kb". Sets SAMPLER_PID.
start_sampler() {
  local pid=$1 file=$2 every=${3:-1}
  (
    while kill -0 "$pid" 2>/dev/null; do
      echo "$(date +%s%3N) $(cpu_ticks_of "$pid") $(resources_of "$pid")"
      sleep "$every"
    done
  ) >"$file" 2>/dev/null &
  SAMPLER_PID=$!
  PIDS+=("$SAMPLER_PID")
}

# CPU % of one core of the samples in $1 between unix ms $2 and $3.
cpu_between() {
  awk -v s="$2" -v e="$3" -v hz="$CLK_TCK" '$1 >= s && $1 <= e { if (!n++) { t0 = $1; c0 = $2 } t1 = $1; c1 = $2 }
    END { if (n < 2 || t1 == t0) print "0.0"; else printf "%.1f\n", 100 * (c1 - c0) / hz / ((t1 - t0) / 1000) }' "$1"
}

# What was measured, for the record.
describe_run() {
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "commit: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$ROOT" diff --quiet HEAD -- gst tools 2>/dev/null || echo ' (with uncommitted changes in gst/ or tools/)')"
  echo "machine: $(nproc) cores, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo), $(uname -r)"
}

# Offers a browser could send (bundled H.264 + Opus, rtcp-mux, sha-256
# fingerprint, one host candidate), each with its own ICE credentials and
# fingerprint. The candidate is a port nobody listens on: an ICE-lite server
# never checks it, and nothing there will ever answer.
# Writes $2 of them to $1/offer-K.sdp, and $1/curl.cfg: a curl config that
# POSTs each to our WHEP endpoint and prints its status.
make_offers() {
  local dir=$1
  mkdir -p "$dir"
  awk -v n="$2" -v dir="$dir" -v url="http://127.0.0.1:$PORT/whep" -v seed="$RANDOM$$" '
    function token(len,   s, i, c) {
      c = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/"
      s = ""; for (i = 0; i < len; i++) s = s substr(c, int(rand() * 64) + 1, 1); return s }
    function fingerprint(   s, i) {
      s = ""; for (i = 0; i < 32; i++) s = s (i ? ":" : "") sprintf("%02X", int(rand() * 256)); return s }
    BEGIN {
      srand(seed)
      for (k = 1; k <= n; k++) {
        f = dir "/offer-" k ".sdp"
        ufrag = token(8); pwd = token(24); fp = fingerprint()
        printf "v=0\r\no=- %d 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\n", 1000000 + k > f
        printf "m=video 9 UDP/TLS/RTP/SAVPF 102\r\nc=IN IP4 127.0.0.1\r\n" > f
        printf "a=candidate:1 1 udp 2130706431 127.0.0.1 9 typ host\r\na=end-of-candidates\r\n" > f
        printf "a=ice-ufrag:%s\r\na=ice-pwd:%s\r\na=fingerprint:sha-256 %s\r\na=setup:actpass\r\n", ufrag, pwd, fp > f
        printf "a=mid:0\r\na=recvonly\r\na=rtcp-mux\r\na=rtcp-rsize\r\na=rtpmap:102 H264/90000\r\n" > f
        printf "a=rtcp-fb:102 nack pli\r\na=rtcp-fb:102 ccm fir\r\n" > f
        printf "a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n" > f
        printf "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 127.0.0.1\r\n" > f
        printf "a=candidate:1 1 udp 2130706431 127.0.0.1 9 typ host\r\na=end-of-candidates\r\n" > f
        printf "a=ice-ufrag:%s\r\na=ice-pwd:%s\r\na=fingerprint:sha-256 %s\r\na=setup:actpass\r\n", ufrag, pwd, fp > f
        printf "a=mid:1\r\na=recvonly\r\na=rtcp-mux\r\na=rtpmap:111 opus/48000/2\r\n" > f
        printf "a=fmtp:111 minptime=10;useinbandfec=1\r\n" > f
        close(f)
        # One curl config block per offer, "next" between them (one after
        # the last would be a transfer without a URL, whose error aborts
        # every transfer still in flight).
        if (k > 1) print "next"
        printf "url = \"%s\"\nrequest = \"POST\"\nheader = \"Content-Type: application/sdp\"\n", url
        printf "data-binary = \"@%s\"\noutput = \"/dev/null\"\nwrite-out = \"%%{http_code}\\n\"\n", f
      }
    }' >"$dir/curl.cfg"
}
