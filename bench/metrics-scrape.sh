#!/usr/bin/env bash
# What GET /metrics is with VIEWERS watching (default 50; issue 15): the
# number of series and bytes of one scrape, and what SCRAPES scrapes in a
# row (default 200) cost: time per scrape, and the node's CPU over them
# against the same time without scraping. Server on core 0, the load
# generator and the encoder on core 1, loopback in a private namespace.
#   sudo bash bench/metrics-scrape.sh
# Environment: VIEWERS, SCRAPES, BUILD, OUT (build/soak-results/metrics-scrape).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/soak-lib.sh
enter_netns "$@"

VIEWERS=${VIEWERS:-50}
SCRAPES=${SCRAPES:-200}
prepare_out metrics-scrape
start_source
start_server
describe_run | tee "$OUT/summary.txt"
taskset -c 1 "$LOAD" --url "http://127.0.0.1:$PORT/whep" --viewers "$VIEWERS" --ramp 50 --hold 600 \
  >"$OUT/load.log" 2>&1 &
load_pid=$!
PIDS+=("$load_pid")
until grep -q "every viewer settled" "$OUT/load.log" 2>/dev/null; do
  kill -0 "$load_pid" 2>/dev/null || { say "the load generator ended early: $OUT/load.log"; exit 1; }
  sleep 0.2
done
sleep 6  # a receiver report or two from every viewer
curl -s "http://127.0.0.1:$PORT/metrics" >"$OUT/metrics.txt"
series=$(grep -vc '^#' "$OUT/metrics.txt")
families=$(grep -c '^# TYPE' "$OUT/metrics.txt")
bytes=$(wc -c <"$OUT/metrics.txt")
viewers=$(awk '$1 == "broadcast_viewers" { print $2 }' "$OUT/metrics.txt")

# The node's CPU over a quiet stretch, then over the scrapes.
cpu_over() {  # seconds of CPU of the server while running "$@"
  local t0 c0 t1 c1
  t0=$(date +%s%N); c0=$(cpu_ticks_of "$SERVER_PID")
  "$@"
  t1=$(date +%s%N); c1=$(cpu_ticks_of "$SERVER_PID")
  awk -v c="$((c1 - c0))" -v hz="$CLK_TCK" -v t="$((t1 - t0))" 'BEGIN { printf "%.1f %.3f\n", 100 * c / hz / (t / 1e9), t / 1e9 }'
}
scrape_all() {
  for _ in $(seq "$SCRAPES"); do
    curl -s -o /dev/null -w '%{time_total}\n' "http://127.0.0.1:$PORT/metrics"
  done >"$OUT/times.txt"
}
read -r quiet_cpu quiet_s < <(cpu_over sleep 5)
read -r scrape_cpu scrape_s < <(cpu_over scrape_all)
sort -n "$OUT/times.txt" | awk -v n="$SCRAPES" '{ t[NR] = $1 } END {
  printf "scrape time: median %.2f ms, p95 %.2f ms, max %.2f ms (%d scrapes)\n", 1000 * t[int(n / 2)], 1000 * t[int(n * 0.95)], 1000 * t[n], n }' |
  tee -a "$OUT/summary.txt"
{
  echo "viewers (the node's count): $viewers of $VIEWERS"
  echo "one scrape: $families families, $series series, $bytes bytes"
  echo "node CPU: $quiet_cpu % of a core without scrapes ($quiet_s s); $scrape_cpu % during $SCRAPES back-to-back scrapes ($scrape_s s)"
} | tee -a "$OUT/summary.txt"
