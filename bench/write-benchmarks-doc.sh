#!/usr/bin/env bash
# Writes docs/BENCHMARKS.md (to stdout) from the files run-benchmarks.sh
# leaves in its output directory: idle-MEDIA.tsv and rows-MEDIA.tsv for each
# medium set run (video, av), disturbance.tsv and keyframe.tsv.
# Usage: write-benchmarks-doc.sh OUT_DIR CEILING_LIBSRTP CEILING_OPENSSL (viewers per core)
set -euo pipefail
OUT=$1
CEILING_LIBSRTP=$2
CEILING_OPENSSL=${3:-0}
# "vs the ceiling" is against the better of the two: what the machine can do.
CEILING=$(( CEILING_OPENSSL > CEILING_LIBSRTP ? CEILING_OPENSSL : CEILING_LIBSRTP ))
cd "$(dirname "$0")/.."

commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=$(git status --porcelain -- . ':!docs/BENCHMARKS.md' 2>/dev/null | grep -q . && echo " (with uncommitted changes)" || true)
cpu_model=$(lscpu | sed -n 's/^Model name: *//p' | head -1)
media_run=()
for m in video av; do [ -f "$OUT/idle-$m.tsv" ] && media_run+=("$m"); done
title() { if [ "$1" = video ]; then echo "video only"; else echo "audio + video"; fi; }

cat <<EOF
# Benchmarks: viewers per core

Measured $(date -u +%Y-%m-%d) on $(nproc) cores (${cpu_model}), $(uname -r), commit \`${commit}\`${dirty},
by \`bench/run-benchmarks.sh\` (one command: installs, builds, runs all of this, writes this file).

Servers, all fed the same stream:
- **ours**: \`broadcastsink\` as shipped: every viewer on one shared UDP port as an ICE-lite peer with
  our own DTLS-SRTP and RTCP, no webrtcbin per viewer; the fan-out SRTP-protects and \`sendmmsg\`s
  each viewer's packets itself;
- **ours-direct**: \`broadcastsink ice-lite=false\`: a webrtcbin per viewer negotiates (ICE, DTLS,
  RTCP) and the fan-out sends the media itself on the socket ICE selected;
- **ours-webrtcbin**: \`broadcastsink ice-lite=false direct-send=false\`, every packet through the
  viewer's webrtcbin (the data path before direct send);
- **naive**: \`bench/naive-tee.cpp\`, one \`tee\` per medium and a \`queue\` + webrtcbin per viewer;
- **janus**: Janus's streaming plugin (Debian's \`janus\`), one RTP mountpoint.

Servers in this run: $(cat "$OUT"/idle-*.tsv | cut -f1 | awk '!seen[$0]++' | paste -sd, - | sed 's/,/, /g') (\`SERVERS\`);
media: $(for m in "${media_run[@]}"; do title "$m"; done | paste -sd, - | sed 's/,/, /g') (\`MEDIA\`).

Method: one encoder process sends the same RTP stream (640x360 30 fps H.264 ~800 kbps + Opus) over
loopback UDP to the server under test, so every server's CPU is the cost of serving only. The
server runs on core 0, the load generator (\`gst-broadcast-load\`: real ICE, DTLS-SRTP, RTCP
receiver reports and PLI, one epoll thread) and the encoder on core 1. Each row holds its viewers
for the hold window after the last join; server CPU, RSS and threads are sampled each second in
that window. Per-viewer numbers are over the server's idle cost with its input flowing and no viewer.
"Loss" counts sequence gaps seen by every viewer; "verify failures" are SRTP authentication
failures among the viewers the generator decrypts (a sample).

The sweep runs once per medium set. **Video only**: the servers have no audio at all
(\`broadcastsink\` with only its video pad linked, \`naive-tee --no-audio\`, a Janus mountpoint
without audio); the encoder still sends its Opus, unread, so the input is the same in every table.
The viewers offer audio and video, as a browser would, and the servers reject the audio m-line.
**Audio + video**: every server serves both.

The first keyframe a new viewer can decode is measured in a step of its own (the last section):
in the sweep the encoder is a separate process that keyframe requests cannot reach, so the
sweep's first-keyframe times are set by the stream's 2 s GOP.

Here the server has one core, so it runs one sender shard (\`sender-threads\` defaults to the cores
it may use). What a process does with more cores, and the per-core wall, are in
[SCALING.md](SCALING.md) (\`bench/scaling.sh\`).
EOF

# The tables for one medium set ($1: video, av), then the goals of issue 5
# that this set measures: marginal CPU per viewer at most $2 % of a core.
media_section() {
  local media=$1 goal=$2 idle="$OUT/idle-$1.tsv" rows="$OUT/rows-$1.tsv" name ceiling
  name=$(title "$media")
  # The ceiling program sends audio + video packets: no yardstick for video alone.
  ceiling=$CEILING
  [ "$media" = video ] && ceiling=0
  cat <<EOF

## ${name^}

| server | idle CPU % | idle RSS MB | idle threads |
|---|---:|---:|---:|
EOF
  awk -F'\t' '{ printf "| %s | %s | %.1f | %s |\n", $1, $2, $3 / 1024, $4 }' "$idle"

  cat <<'EOF'

| server | viewers | connected | no media | server CPU % of a core | CPU % per viewer | RSS MB | RSS MB per viewer | threads | threads per viewer | loss % | answer p50 / p95 ms | first keyframe p50 / p95 ms | generator CPU % | verify failures |
|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---:|---:|
EOF
  awk -F'\t' 'NR == FNR { icpu[$1] = $2; irss[$1] = $3; ith[$1] = $4; next }
    {
      n = $3 > 0 ? $3 : 1
      answer = ($13 != "" && $13 >= 0) ? sprintf("%.0f / %.0f", $13, $14) : "n/a"
      printf "| %s | %d | %d | %d | %.1f | %.3f | %.1f | %.3f | %d | %.2f | %.3f | %s | %.0f / %.0f | %.1f | %d |\n",
        $1, $2, $3, $4, $5, ($5 - icpu[$1]) / n, $6 / 1024, ($6 - irss[$1]) / 1024 / n, $7, ($7 - ith[$1]) / n,
        $8, answer, $9, $10, $11, $12
    }' "$idle" "$rows"

  cat <<EOF

### Highest viewer count within one core at < 0.5 % loss, ${name}

| server | viewers (largest row passed) | marginal CPU % per viewer there | viewers per core at that cost | vs the ceiling |
|---|---:|---:|---:|---:|
EOF
  # "Passed": every viewer connected with media, loss < 0.5 %, under a core.
  local passed='$8 < 0.5 && $5 < 100 && $4 == 0 && $3 == $2 { best[$1] = $3; per[$1] = ($5 - icpu[$1]) / $3 }'
  awk -F'\t' -v ceiling="$ceiling" 'NR == FNR { icpu[$1] = $2; next }
    '"$passed"' { if (!(($1) in order)) { order[$1] = ++k; names[k] = $1 } }
    END {
      for (i = 1; i <= k; i++) {
        s = names[i]; vpc = per[s] > 0 ? 100 / per[s] : 0
        vs = (ceiling > 0) ? sprintf("%.1fx below", ceiling / (vpc > 0 ? vpc : 1)) : "n/a"
        printf "| %s | %d | %.3f | %.0f | %s |\n", s, best[s], per[s], vpc, vs
      }
    }' "$idle" "$rows"

  echo
  echo "Goals of issue 5, ${name}:"
  echo
  awk -F'\t' -v name="$name" -v media="$media" -v goal="$goal" 'NR == FNR { icpu[$1] = $2; next }
    '"$passed"'
    function verdict(ok) { return ok ? "**met**" : "**not met**" }
    END {
      if (!("ours" in best)) { print "- ours: not in this run, or none of its rows passed"; exit }
      printf "- marginal CPU per viewer <= %.2f %% of a core (%s): ours %.3f %% at %d viewers: %s\n",
        goal, name, per["ours"], best["ours"], verdict(per["ours"] <= goal)
      if (media == "video")
        printf "- >= 1,200 video viewers per core at < 0.5 %% loss: ours served %d within one core (%.0f per core at its cost): %s\n",
          best["ours"], (per["ours"] > 0 ? 100 / per["ours"] : 0), verdict(best["ours"] >= 1200)
      if ("janus" in best && per["janus"] > 0 && per["ours"] > 0)
        printf "- at least 3x Janus (viewers per core, each at its largest row passed): ours %.0f, janus %.0f: %.1fx: %s\n",
          100 / per["ours"], 100 / per["janus"], per["janus"] / per["ours"], verdict(per["janus"] >= 3 * per["ours"])
      else
        print "- at least 3x Janus: Janus not in this run, or none of its rows passed"
    }' "$idle" "$rows"
}

for media in "${media_run[@]}"; do
  if [ "$media" = video ]; then
    media_section video 0.08
    echo
    echo "No \"vs the ceiling\" here: the ceiling program below sends audio + video packets."
  else
    media_section av 0.12
  fi
done

echo
echo "## The ceiling"
echo
if [ "$CEILING" -gt 0 ]; then
  cat <<EOF
\`bench/srtp-ceiling --find-max\` (no GStreamer; one tight loop rewrites the header,
SRTP-protects each packet per viewer with AES_CM_128_HMAC_SHA1_80 and sends with sendmmsg to
loopback sockets) reached **${CEILING_LIBSRTP} viewers per core** of this stream (audio + video
packet rate) with Debian's libsrtp2 (built on NSS, as webrtcbin's \`srtpenc\`), and
**${CEILING_OPENSSL} viewers per core** with \`--openssl\`, the SRTP our direct send uses
(\`gst/transport/srtpcontext.cpp\`). "vs the ceiling" compares with the higher one.
EOF
else
  echo "Not run (\`SKIP_CEILING=1\`)."
fi

cat <<EOF

## Join storm and churn

Twenty viewers watch first (the "stayers"); then 500 viewers join at 50 per second (storm), or
batches of 20 viewers join and leave for the churn duration (churn). Loss is what the stayers saw.

The storm's newcomers' answer time (POST to SDP answer; for Janus, the watch request to its offer)
and first complete keyframe are in the last columns.

EOF
if [ -s "$OUT/disturbance.tsv" ]; then
  echo "| server | run | media | viewers that came and went | stayers connected | stayers' loss % | stayers' lost packets | stayers without media | newcomers' answer p95 / max ms | newcomers' first keyframe p50 / p95 ms |"
  echo "|---|---|---|---:|---:|---:|---:|---:|---|---|"
  awk -F'\t' '{
    media = $3 == "video" ? "video only" : "audio + video"
    answer = ($9 != "" && $9 >= 0) ? sprintf("%.0f / %.0f", $9, $10) : "-"
    keyframe = ($11 != "" && $11 >= 0) ? sprintf("%.0f / %.0f", $11, $12) : "-"
    printf "| %s | %s | %s | %s | %s | %.3f | %s | %s | %s | %s |\n", $1, $2, media, $4, $5, $6, $7, $8, answer, keyframe }' \
    "$OUT/disturbance.tsv"
else
  echo "Not run (\`SKIP_STORM=1\` and \`SKIP_CHURN=1\`)."
fi

cat <<'EOF'

## First decodable keyframe, encoder in the pipeline

This step **encodes in the server's pipeline**:
`videotestsrc ! x264enc (the stream's settings) ! broadcastsink`, ICE-lite as shipped, video only,
`broadcastsink` payloading it (`rtph264pay config-interval=-1 mtu=1200`, as the stream). A joining
viewer's keyframe request (and its PLI) reaches `x264enc` as an upstream force-key-unit event,
at most one per `keyframe-min-interval`: a viewer joining within that interval of the last
request waits for the next one. The server's CPU here includes the encoder: **not comparable**
with the tables above, and not reported.

Viewers already watching first, then new viewers join one at a time at a steady rate. The time
to the first decodable keyframe is the load generator's: until the packet that completes the
first access unit with an IDR slice, received without a gap and after an SPS and a PPS; from the
offer (the WHEP POST leaving) and from the server's answer.

EOF
if [ -s "$OUT/keyframe.tsv" ]; then
  awk -F'\t' '{
    printf "%s viewers watching, then %d joining at %s per second; keyframe-min-interval %s ms; %d connected, %d saw a keyframe.\n\n",
      $2, $4, $3, $1, $5, $6
    print "| from | p50 ms | p95 ms | max ms |"
    print "|---|---:|---:|---:|"
    printf "| the offer (POST) | %.0f | %.0f | %.0f |\n", $7, $8, $9
    printf "| the answer | %.0f | %.0f | %.0f |\n", $10, $11, $12
    printf "\nThe joiners'"'"' answer p95: %.0f ms; the viewers already watching lost %.3f %% of their packets meanwhile.\n\n", $13, $14
    printf "Goal of issue 5: first decodable keyframe for a new viewer p95 < 300 ms: %.0f ms from the offer: %s\n",
      $8, ($8 >= 0 && $8 < 300 && $6 == $4) ? "**met**" : "**not met**"
  }' "$OUT/keyframe.tsv"
else
  echo "Not run (\`SKIP_KEYFRAME=1\`, or the step failed: see \`server-keyframe.log\`)."
fi

cat <<'EOF'

Raw data (JSON per run, server samples, logs): `build/bench-results/` after a run.
EOF
