#!/usr/bin/env bash
# Sender shards, measured: how many viewers (audio + video) one process
# serves at < 0.5 % loss with sender-threads=1 and =2 when the server may use
# both cores and the load generator shares them (the whole machine), Janus
# in the same run; then the per-core capacity (server on core 0, generator
# on core 1, ours as shipped: one shard per core it may use). Prints a
# table per part and writes the rows to $OUT.
#
#   sudo bash bench/scaling.sh
#
# Environment: COUNTS (shared cores: "800 1200 1600 2000 2400 2800 3200"),
# CORE_COUNTS (per core: "1600 2000 2400 2800"), SERVERS ("ours-threads1
# ours-threads2 janus"), PER_CORE_SERVERS ("ours"), HOLD (20 s), RAMP (100 joins/s), OUT
# (build/bench-scaling), SKIP_PER_CORE=1.
# SRTP_COUNTS (e.g. "1600 2000 2400"): instead of both parts, the per-core
# capacity with every viewer on AES_CM_128_HMAC_SHA1_80 against every viewer
# on AEAD_AES_128_GCM, the two alternating at each count.
# LAYER_COUNTS (e.g. "400 800 1200"): instead of both parts, the per-core
# cost of viewers of a one-layer broadcast against the same viewers (all on
# layer 0) of a three-layer one, alternating at each count; the encoder
# sends three layers in both.
# ABS_COUNTS (e.g. "800 1200"): the same, per core, for viewers that did not
# offer abs-send-time against viewers that did (every packet then carries it).
# SHARD_COUNTS (e.g. "800 1200 800 1200"): the same, per core, for
# sender-threads=1 against =2 (both shards on core 0): what sharding itself
# costs a viewer, without the load generator competing for the cores.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

. "$ROOT/bench/common.sh"
install_build_enter_netns "$@"

B=$ROOT/build
OUT=${OUT:-$B/bench-scaling}
COUNTS=${COUNTS:-"800 1200 1600 2000 2400 2800 3200"}
CORE_COUNTS=${CORE_COUNTS:-"1600 2000 2400 2800"}
SERVERS=${SERVERS:-"ours-threads1 ours-threads2 janus"}
HOLD=${HOLD:-20}
RAMP=${RAMP:-100}
PORT=18400
LOAD=$B/tools/gst-broadcast-load
CLK_TCK=$(getconf CLK_TCK)
export GST_PLUGIN_PATH=$B/gst
mkdir -p "$OUT"
rm -f "$OUT"/*.json "$OUT"/*.log "$OUT"/*.tsv "$OUT"/*.samples 2>/dev/null || true
say() { echo "[scaling] $*" >&2; }

. "$ROOT/bench/stream.sh"
. "$ROOT/bench/servers.sh"

# Server $1 over COUNTS ($2), media av, until loss >= 0.5 % or the server
# takes every core it may use; rows to $3.
sweep() {
  local server=$1 counts=$2 rows=$3 cores
  cores=$(taskset -c "$SERVER_CPUS" nproc)
  read -r cpu rss threads < <(baseline "$server" av)
  echo -e "$server\t$SERVER_CPUS\t$cpu\t$rss\t$threads" >>"$OUT/idle.tsv"
  for n in $counts; do
    row=$(run_point "$server" av "$n") || break
    echo -e "$SERVER_CPUS/$LOAD_CPUS\t$row" >>"$rows"
    say "$server on $SERVER_CPUS, load on $LOAD_CPUS, $n: $row"
    loss=$(echo "$row" | cut -f8)
    cpu=$(echo "$row" | cut -f5)
    awk -v l="$loss" -v c="$cpu" -v k="$cores" 'BEGIN { exit !(l >= 0.5 || c >= 97 * k) }' && break
  done
  return 0  # the last point passing is no failure of the sweep
}

[ -n "${LAYER_COUNTS:-}" ] && export STREAM_LAYERS=1
start_stream "$OUT/source.log"
PIDS+=("$SOURCE_PID")
sleep 1
[[ " $SERVERS " == *" janus "* ]] && prepare_janus
: >"$OUT/idle.tsv"
: >"$OUT/shared.tsv"
: >"$OUT/per-core.tsv"

# Per core (server on core 0, generator on core 1), two variants side by
# side at each of the counts $3..., alternating; rows in $OUT/$1.tsv. Any
# such comparison replaces both parts below.
compare_per_core() {
  local part=$1 a=$2 b=$3 n server
  shift 3
  : >"$OUT/$part.tsv"
  for n in "$@"; do
    for server in "$a" "$b"; do
      SERVER_CPUS=0 LOAD_CPUS=1 sweep "$server" "$n" "$OUT/$part.tsv"
    done
  done
  SERVERS="" SKIP_PER_CORE=1
}
# shellcheck disable=SC2086  # the counts are words
[ -n "${SRTP_COUNTS:-}" ] && compare_per_core srtp ours-cm ours-gcm $SRTP_COUNTS
# shellcheck disable=SC2086
[ -n "${ABS_COUNTS:-}" ] && compare_per_core abs ours ours-abs $ABS_COUNTS
# shellcheck disable=SC2086
[ -n "${LAYER_COUNTS:-}" ] && compare_per_core layers ours ours-layers $LAYER_COUNTS
# shellcheck disable=SC2086
[ -n "${SHARD_COUNTS:-}" ] && compare_per_core shards ours-threads1 ours-threads2 $SHARD_COUNTS

# The whole machine: server and generator both on every core.
all=$(seq -s, 0 $(( $(nproc) - 1 )))
for server in $SERVERS; do
  SERVER_CPUS=$all LOAD_CPUS=$all sweep "$server" "$COUNTS" "$OUT/shared.tsv"
done
if [ "${SKIP_PER_CORE:-0}" != 1 ]; then
  for server in ${PER_CORE_SERVERS:-ours}; do
    SERVER_CPUS=0 LOAD_CPUS=1 sweep "$server" "$CORE_COUNTS" "$OUT/per-core.tsv"
  done
fi

columns="cpus\tserver\tviewers\tconnected\tno media\tserver CPU %\tRSS kB\tthreads\tloss %\tkeyframe p50\tkeyframe p95\tgenerator CPU %\tverify failures\tanswer p50\tanswer p95"
for part in shared per-core srtp abs layers shards; do
  [ -f "$OUT/$part.tsv" ] || continue
  echo "== $part"
  echo -e "$columns"
  cat "$OUT/$part.tsv"
done
echo "== idle (server, cpus, CPU %, RSS kB, threads)"
cat "$OUT/idle.tsv"
