#!/usr/bin/env bash
# Pending viewers that never connect (issue 12, item 1): 1,500 valid WHEP
# offers POSTed as fast as curl can (64 in flight), none of which ever does
# ICE, against broadcastsink serving the bench stream (H.264 + Opus) with
# the per-address limits off (offers-per-second=0 max-pending-viewers=0), so
# that all are answered and each holds a session until viewer-timeout (8 s).
# Records the server's descriptors, threads and RSS before, at the peak, and
# after every session timed out (GET /whep/status shows 0 viewers, then
# SETTLE seconds); ROUNDS times on the same server, so that memory kept for
# reuse (flat from round to round) shows apart from memory lost (growing).
#
# Requirement: descriptors back to the baseline, RSS within 10 % of it.
#
# The run is repeated for each entry of VARIANTS:
#   default     gst-launch as shipped (on GLib < 2.76, GLib's GSlice serves
#               small blocks and never gives them back)
#   malloc      G_SLICE=always-malloc in the server's environment: what
#               gst-broadcast runs with (tools/gst-broadcast.cpp)
#   arena2      MALLOC_ARENA_MAX=2 (glibc keeps fewer per-thread arenas)
#   arena1, tcache0, arena1-tcache1, arena1-tcache0
#               malloc and glibc with one arena and/or per-thread caches of
#               0 or 1 block per size (docs/soak.md: only both together
#               return what a burst left)
#   trim        as shipped, and once the sessions are gone, malloc_trim(0)
#               called in the server through gdb, with malloc_stats()
#               before and after in the server's log (needs gdb)
# The node returns free memory itself once a burst has gone
# (gst/common/memoryreturn.h); the baseline is taken after the stream has
# run for WARMUP seconds, so that what a running stream keeps anyway (the
# retransmission history, buffer pools) is in it.
#
#   sudo bash bench/abuse-pending.sh      # after meson setup build && ninja -C build
# Environment: OFFERS (1500), ROUNDS (3), PARALLEL (64), SETTLE (5 s), DEADLINE (60 s
#   for the sessions to go), WARMUP (15 s), VARIANTS ("default malloc"), BUILD (build),
#   OUT (build/soak-results/abuse-pending), PORT (18500).
# Server on core 0, curl and the encoder on core 1, loopback in a private
# network namespace.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/soak-lib.sh
enter_netns "$@"
prepare_out abuse-pending

OFFERS=${OFFERS:-1500}
PARALLEL=${PARALLEL:-64}
SETTLE=${SETTLE:-5}
DEADLINE=${DEADLINE:-60}
VARIANTS=${VARIANTS:-"default malloc"}
WARMUP=${WARMUP:-15}
ROUNDS=${ROUNDS:-3}

# What the descriptors point to, the threads' names, and resident kB by kind
# of mapping (the brk heap, other anonymous memory such as glibc's thread
# arenas and thread stacks, files), to tell what a round added (diff the
# .holds files).
what_it_holds() {
  find "/proc/$1/fd" -mindepth 1 -printf '%l\n' 2>/dev/null | sed 's/[0-9]\+/N/g' | sort | uniq -c | sed 's/^/fd /'
  cat "/proc/$1"/task/*/comm 2>/dev/null | sort | uniq -c | sed 's/^/thread /'
  awk '/^[0-9a-f]+-[0-9a-f]+ / { kind = NF >= 6 ? ($6 ~ /^\[/ ? $6 : "file") : "anonymous" }
       /^Rss:/ { kb[kind] += $2 }
       END { for (k in kb) printf "rss-kB %s %d\n", k, kb[k] }' "/proc/$1/smaps" 2>/dev/null | sort
}

# One variant: one server, ROUNDS rounds of OFFERS offers, each waited out.
# Prints a row per round: "variant round base_fds base_threads base_rss
# peak_fds peak_threads peak_rss after_fds after_threads after_rss answered
# refused post_seconds gone_seconds trimmed_rss viewers_after_posts".
run_variant() {
  local variant=$1 env_vars=""
  [ "$variant" = arena2 ] && env_vars="MALLOC_ARENA_MAX=2"
  [ "$variant" = malloc ] && env_vars="G_SLICE=always-malloc"
  [ "$variant" = tcache0 ] && env_vars="G_SLICE=always-malloc GLIBC_TUNABLES=glibc.malloc.tcache_count=0"
  [ "$variant" = arena1 ] && env_vars="G_SLICE=always-malloc MALLOC_ARENA_MAX=1"
  [ "$variant" = arena1-tcache1 ] && env_vars="G_SLICE=always-malloc GLIBC_TUNABLES=glibc.malloc.arena_max=1:glibc.malloc.tcache_count=1"
  [ "$variant" = arena1-tcache0 ] && env_vars="G_SLICE=always-malloc MALLOC_ARENA_MAX=1 GLIBC_TUNABLES=glibc.malloc.tcache_count=0"
  SERVER_ENV=$env_vars start_server
  local pid=$SERVER_PID
  sleep "$WARMUP"  # the pipeline settles: its threads started, its pools and history filled
  local bf bt br
  read -r bf bt br < <(resources_of "$pid")
  what_it_holds "$pid" >"$OUT/$variant-0.holds"
  if [ "$variant" = trim ] && command -v gdb >/dev/null; then
    gdb -p "$pid" -batch -ex 'call (void) malloc_stats()' >/dev/null 2>&1 || true
  fi
  local round
  for round in $(seq "$ROUNDS"); do
    local samples="$OUT/$variant-$round.samples" codes="$OUT/$variant-$round.codes"
    start_sampler "$pid" "$samples" 0.2
    local t0 t1
    t0=$(date +%s%3N)
    taskset -c 1 curl -s --parallel --parallel-immediate --parallel-max "$PARALLEL" -K "$OUT/offers/curl.cfg" \
      >"$codes" 2>"$OUT/$variant-$round.curl.err" || true
    t1=$(date +%s%3N)
    local answered refused peak_viewers gone
    answered=$(grep -c '^201$' "$codes" || true)
    refused=$(grep -vc '^201$' "$codes" || true)
    peak_viewers=$(viewers_now)
    gone=$(wait_no_viewers "$DEADLINE") || true
    sleep "$SETTLE"
    kill "$SAMPLER_PID" 2>/dev/null || true
    local af at ar pf pt pr
    read -r af at ar < <(resources_of "$pid")
    what_it_holds "$pid" >"$OUT/$variant-$round.holds"
    # The peak over the round, from the samples (columns 3-5).
    read -r pf pt pr < <(awk '{ if ($3 > f) f = $3; if ($4 > t) t = $4; if ($5 > r) r = $5 } END { print f + 0, t + 0, r + 0 }' "$samples")
    local trimmed=-
    if [ "$variant" = trim ]; then
      if command -v gdb >/dev/null; then
        # malloc_stats() prints each arena's bytes in use and held to the
        # server's log after every round: memory still in use shows apart
        # from memory free. The last round is trimmed, and printed again.
        local calls=(-ex 'call (void) malloc_stats()')
        [ "$round" = "$ROUNDS" ] && calls+=(-ex 'call (int) malloc_trim(0)' -ex 'call (void) malloc_stats()')
        gdb -p "$pid" -batch "${calls[@]}" >"$OUT/trim.gdb.log" 2>&1 || true
        sleep 1
        [ "$round" = "$ROUNDS" ] && trimmed=$(rss_kb_of "$pid")
      else
        say "no gdb: the trim variant measures nothing more than default"
      fi
    fi
    awk -v a="$t0" -v b="$t1" -v v="$variant $round" -v rest="$bf $bt $br $pf $pt $pr $af $at $ar $answered $refused" \
      -v gone="$gone" -v tr="$trimmed" -v pv="$peak_viewers" \
      'BEGIN { printf "%s %s %.1f %s %s %s\n", v, rest, (b - a) / 1000, gone, tr, pv }'
  done
  stop_server
}

make_offers "$OUT/offers" "$OFFERS"
start_source
sleep 1
{
  describe_run
  echo "offers: $OFFERS per round, $ROUNDS rounds per server, $PARALLEL in flight (curl --parallel), viewer-timeout 8 s (default), settle $SETTLE s"
} | tee "$OUT/summary.txt"
: >"$OUT/rows.txt"
for v in $VARIANTS; do
  run_variant "$v" >>"$OUT/rows.txt"
  say "$v: $(grep "^$v " "$OUT/rows.txt" | tr '\n' ';')"
done

# The table, and the requirement per variant.
awk '
  BEGIN {
    print ""
    print "| variant | round | answered (201) | refused | POST time s | viewers after the POSTs | all gone after s | descriptors base / peak / after | threads base / peak / after | RSS MB base / peak / after | RSS after vs base | after malloc_trim MB | descriptors back | RSS within 10 % |"
    print "|---|---:|---:|---:|---:|---:|---:|---|---|---|---:|---:|---|---|"
  }
  {
    v = $1 " | " $2; $0 = substr($0, length($1 " " $2) + 2)
    bf = $1; bt = $2; br = $3; pf = $4; pt = $5; pr = $6; af = $7; at = $8; ar = $9
    ok = $10; no = $11; post = $12; gone = $13; tr = $14; pv = $15
    d = 100 * (ar - br) / br
    trs = tr == "-" ? "-" : sprintf("%.1f (%+.1f %%)", tr / 1024, 100 * (tr - br) / br)
    printf "| %s | %d | %d | %s | %s | %s | %d / %d / %d | %d / %d / %d | %.1f / %.1f / %.1f | %+.1f %% | %s | %s | %s |\n",
      v, ok, no, post, pv, gone, bf, pf, af, bt, pt, at, br / 1024, pr / 1024, ar / 1024, d, trs,
      af <= bf ? "yes" : "NO", (d <= 10 && d >= -10) ? "yes" : "NO"
  }' "$OUT/rows.txt" | tee -a "$OUT/summary.txt"
echo "logs and samples: $OUT" >&2
