#!/usr/bin/env bash
# Where our broadcast spends its CPU with N passive viewers (issue 4): perf
# profile of gst-broadcast (demo: test pattern + x264 + Opus into
# broadcastsink) pinned to core 0, N webrtcbin viewers (bench/viewer-load, no
# decoding) pinned to core 1, all inside a private network namespace on
# loopback. Writes perf.data and the reports into OUT and prints a summary:
# top symbols, share per thread name (digits folded: "queue12:src" ->
# "queue#:src"), share per library, and the kernel's share per thread.
#   usage: sudo bench/profile-sink.sh [build-dir] [viewers] [seconds] [out-dir]
#   PERF_CALLGRAPH=dwarf records DWARF call graphs (Debian's libraries have no
#   frame pointers, so the default -g shows self time only) at 499 Hz and adds
#   inclusive time per function (children.txt): srtp_protect, sendmsg, ...
# Then summarise by hand into docs/profile-sink.md.
set -euo pipefail
build=$(realpath "${1:-build}")
n=${2:-80}
secs=${3:-15}
out=$(realpath -m "${4:-$build/profile-sink}")
[ -n "${IN_NETNS:-}" ] || exec unshare --net env IN_NETNS=1 bash "$0" "$build" "$n" "$secs" "$out"
ip link set lo up
mkdir -p "$out"
command -v perf >/dev/null || { echo "perf not installed (apt-get install linux-perf)"; exit 1; }
if ! perf record -o /dev/null -- true >/dev/null 2>&1; then
  sysctl -q kernel.perf_event_paranoid=-1 || true
  perf record -o /dev/null -- true >/dev/null 2>&1 ||
    { echo "perf cannot record here (kernel.perf_event_paranoid=$(cat /proc/sys/kernel/perf_event_paranoid))"; exit 1; }
fi
# The machine may be shared: wait (up to 5 min) until the others are quiet.
busy() { awk '/^cpu /{print $2+$3+$4+$7+$8+$9}' /proc/stat; }
for _ in $(seq 150); do
  b0=$(busy); sleep 2; b1=$(busy)
  [ $(( (b1 - b0) * 100 / 2 / $(getconf CLK_TCK) )) -lt 15 ] && break
done
port=18650
export GST_PLUGIN_PATH="$build/gst"
taskset -c 0 "$build/tools/gst-broadcast" --port $port --address 127.0.0.1 --ice-address 127.0.0.1 \
  >"$out/server.log" 2>&1 &
server=$!
load=
cleanup() {
  [ -n "$load" ] && kill "$load" 2>/dev/null || true
  kill "$server" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap cleanup EXIT
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.1; done
# Offers get 409 until media flows.
sleep 2
taskset -c 1 "$build/bench/viewer-load" "http://127.0.0.1:$port/whep" "$n" $((secs + 20)) >"$out/viewers.txt" 2>&1 &
load=$!
for _ in $(seq 600); do grep -q first_packet "$out/viewers.txt" && break; sleep 0.1; done
sleep 2
ticks=$(getconf CLK_TCK)
# CPU without perf attached first (perf's own overhead, with DWARF call
# graphs especially, inflates the figure taken while recording).
pcpu() { awk '{print $14+$15}' "/proc/$1/stat"; }
c0=$(pcpu $server); l0=$(pcpu $load); b0=$(busy)
sleep 10
c1=$(pcpu $server); l1=$(pcpu $load); b1=$(busy)
cpu_plain=$(awk -v a="$c0" -v b="$c1" -v t="$ticks" 'BEGIN{printf "%.1f", (b-a)/t/10*100}')
viewers_cpu=$(awk -v a="$l0" -v b="$l1" -v t="$ticks" 'BEGIN{printf "%.1f", (b-a)/t/10*100}')
# Anything else busy on the machine meanwhile (a shared machine makes noise).
others=$(awk -v s=$((c1 - c0 + l1 - l0)) -v m=$((b1 - b0)) -v t="$ticks" 'BEGIN{o=(m-s)/t/10*100; if (o<0) o=0; printf "%.0f", o}')
c0=$(pcpu $server)
if [ "${PERF_CALLGRAPH:-fp}" = dwarf ]; then
  perf record -q -F 499 --call-graph dwarf,16384 -o "$out/perf.data" -p "$server" -- sleep "$secs" 2>"$out/perf-record.log"
else
  perf record -q -g -o "$out/perf.data" -p "$server" -- sleep "$secs" 2>"$out/perf-record.log"
fi
c1=$(pcpu $server)
threads=$(awk '/^Threads:/{print $2}' "/proc/$server/status")
wait "$load" || true
load=
cpu=$(awk -v a="$c0" -v b="$c1" -v t="$ticks" -v s="$secs" 'BEGIN{printf "%.1f", (b-a)/t/s*100}')

report() { perf report -i "$out/perf.data" --no-children --stdio --percent-limit 0 "$@" 2>/dev/null | grep -v '^#' | grep -v '^$'; }
report --sort dso,symbol -g none >"$out/symbols.txt"
report --sort comm -g none >"$out/comm.txt"
report --sort dso -g none >"$out/dso.txt"
report --sort comm,dso -g none >"$out/comm-dso.txt"
[ "${PERF_CALLGRAPH:-fp}" = dwarf ] &&
  perf report -i "$out/perf.data" --children --stdio --sort dso,symbol -g none 2>/dev/null | grep -v '^#' | grep -v '^$' \
    | head -200 >"$out/children.txt" || true

# Sorts each DWARF-unwound sample into one bucket by what is on its stack.
classify='
import collections, re, sys
tot = 0
cat = collections.Counter()
extra = collections.Counter()
rest = collections.Counter()
for s in sys.stdin.read().split("\n\n"):
    lines = [l.strip() for l in s.strip().split("\n") if l.strip()]
    if len(lines) < 2:
        continue
    comm = lines[0]
    tot += 1
    names, dsos = [], []
    for f in lines[1:]:
        parts = f.split(None, 1)
        m = re.match(r"(.*?) \((.*)\)$", parts[1] if len(parts) > 1 else "")
        sym, dso = (m.group(1), m.group(2).split("/")[-1]) if m else ("", "")
        dsos.append(dso)
        names.append(sym if sym and sym != "[unknown]" else dso + "+" + parts[0])
    fanout = comm.startswith(("video-queue", "audio-queue"))
    c = None
    for i, n in enumerate(names):
        # rtpfunnel (libgstrtpmanager) pushing an event from its chain function:
        # the sticky SEGMENT it re-sends whenever the input pad changes.
        if i > 0 and names[i - 1] == "gst_pad_push_event" and n.startswith("libgstrtpmanager.so+") \
                and "gst_pad_push" in names[i + 1:i + 4]:
            c = "rtpfunnel re-sending SEGMENT on each audio/video switch"
            break
    if c is None:
        if any(n.startswith("srtp_") for n in names):
            c = "SRTP protect (libsrtp2, NSS backend)"
        elif any(n in ("__libc_sendmsg", "g_socket_send_message") for n in names):
            c = "UDP send (libnice, g_socket_send_message, kernel)"
            if any(n in ("net_rx_action", "process_backlog") for n in names):
                extra["  of which loopback delivery to the receiver (softirq; not paid with a NIC)"] += 1
        elif fanout:
            c = "fan-out threads, everything else (pad pushes through webrtcbin/rtpbin, refcounts, locks)"
            rest[dsos[0]] += 1
        else:
            c = "other threads: " + re.sub(r"[0-9]+", "#", comm)
    cat[c] += 1
print("samples: %d" % tot)
for k, v in cat.most_common(12):
    print("%6.2f%%  %s" % (100.0 * v / tot, k))
for k, v in extra.items():
    print("%6.2f%%  %s" % (100.0 * v / tot, k))
print("  fan-out threads, everything else, by library of the sampled instruction:")
for k, v in rest.most_common(8):
    print("  %6.2f%%  %s" % (100.0 * v / tot, k))
'

fold() {  # "12.5%  queue12:src" lines -> summed by name with digits folded
  awk '{p=$1; sub("%","",p); $1=""; name=substr($0,2); gsub(/[0-9]+/,"#",name); s[name]+=p}
       END{for (k in s) printf "%6.2f%%  %s\n", s[k], k}' | sort -rn
}
{
  echo "date=$(date -u +%FT%TZ) commit=$(git -C "$(dirname "$0")" rev-parse --short HEAD 2>/dev/null) nproc=$(nproc)" \
    "cpu=$(lscpu | awk -F: '/Model name/{gsub(/^ +/,"",$2); print $2; exit}')"
  echo "viewers=$n server_cpu=${cpu_plain}% of one core without perf (10 s; viewer-load ${viewers_cpu}%, other processes ${others}%)" \
    "server_cpu=${cpu}% while perf recorded ${secs} s; threads=$threads"
  echo "viewers report: $(tr '\n' ' ' <"$out/viewers.txt")"
  echo
  echo "== top 25 symbols (self, % of samples) =="
  head -25 "$out/symbols.txt"
  echo
  echo "== by thread name (digits folded) =="
  awk '{print $1, $2}' "$out/comm.txt" | fold | head -30
  echo
  echo "== by library =="
  head -20 "$out/dso.txt"
  echo
  echo "== kernel samples by thread name (digits folded) =="
  awk '$3=="[kernel.kallsyms]"{print $1, $2}' "$out/comm-dso.txt" | fold | head -15
  if [ "${PERF_CALLGRAPH:-fp}" = dwarf ]; then
    echo
    echo "== where the time goes, by call stack (each sample counted once, first match wins) =="
    perf script -i "$out/perf.data" -F comm,ip,sym,dso 2>/dev/null | python3 -c "$classify"
    echo
    echo "== inclusive (children) time, top 60 =="
    head -60 "$out/children.txt"
  fi
} | tee "$out/summary.txt"
