#!/usr/bin/env bash
# Writes docs/BENCHMARKS.md (to stdout) from the files run-benchmarks.sh
# leaves in its output directory: idle.tsv, rows.tsv, disturbance.tsv.
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

Servers in this run: $(cut -f1 "$OUT/idle.tsv" | paste -sd, - | sed 's/,/, /g') (\`SERVERS\`).

Method: one encoder process sends the same RTP stream (640x360 30 fps H.264 ~800 kbps + Opus) over
loopback UDP to the server under test, so every server's CPU is the cost of serving only. The
server runs on core 0, the load generator (\`gst-broadcast-load\`: real ICE, DTLS-SRTP, RTCP
receiver reports and PLI, one epoll thread) and the encoder on core 1. Each row holds its viewers
for the hold window after the last join; server CPU, RSS and threads are sampled each second in
that window. Per-viewer numbers are over the server's idle cost with its input flowing and no viewer.
"Loss" counts sequence gaps seen by every viewer; "verify failures" are SRTP authentication
failures among the viewers the generator decrypts (a sample).

| server | idle CPU % | idle RSS MB | idle threads |
|---|---:|---:|---:|
EOF
awk -F'\t' '{ printf "| %s | %s | %.1f | %s |\n", $1, $2, $3 / 1024, $4 }' "$OUT/idle.tsv"

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
  }' "$OUT/idle.tsv" "$OUT/rows.tsv"

cat <<'EOF'

## Highest viewer count within one core at < 0.5 % loss

| server | viewers (largest row passed) | marginal CPU % per viewer there | viewers per core at that cost | vs the ceiling |
|---|---:|---:|---:|---:|
EOF
awk -F'\t' -v ceiling="$CEILING" 'NR == FNR { icpu[$1] = $2; next }
  $8 < 0.5 && $5 < 100 && $4 == 0 && $3 == $2 { best[$1] = $3; per[$1] = ($5 - icpu[$1]) / $3; if (!(($1) in order)) { order[$1] = ++k; names[k] = $1 } }
  END {
    for (i = 1; i <= k; i++) {
      s = names[i]; vpc = per[s] > 0 ? 100 / per[s] : 0
      vs = (ceiling > 0) ? sprintf("%.1fx below", ceiling / (vpc > 0 ? vpc : 1)) : "n/a"
      printf "| %s | %d | %.3f | %.0f | %s |\n", s, best[s], per[s], vpc, vs
    }
  }' "$OUT/idle.tsv" "$OUT/rows.tsv"

cat <<EOF

The ceiling: \`bench/srtp-ceiling --find-max\` (no GStreamer; one tight loop rewrites the header,
SRTP-protects each packet per viewer with AES_CM_128_HMAC_SHA1_80 and sends with sendmmsg to
loopback sockets) reached **${CEILING_LIBSRTP} viewers per core** of this stream with Debian's
libsrtp2 (built on NSS, as webrtcbin's \`srtpenc\`), and **${CEILING_OPENSSL} viewers per core** with
\`--openssl\`, the SRTP our direct send uses (\`gst/transport/srtpcontext.cpp\`). "vs the ceiling"
compares with the higher one.

## Join storm and churn

Twenty viewers watch first (the "stayers"); then 500 viewers join at 50 per second (storm), or
batches of 20 viewers join and leave for the churn duration (churn). Loss is what the stayers saw.

The storm's newcomers' answer time (POST to SDP answer; for Janus, the watch request to its offer)
and first complete keyframe are in the last columns.

| server | run | viewers that came and went | stayers connected | stayers' loss % | stayers' lost packets | stayers without media | newcomers' answer p95 / max ms | newcomers' first keyframe p50 / p95 ms |
|---|---|---:|---:|---:|---:|---:|---|---|
EOF
if [ -s "$OUT/disturbance.tsv" ]; then
  awk -F'\t' '{
    answer = ($8 != "" && $8 >= 0) ? sprintf("%.0f / %.0f", $8, $9) : "-"
    keyframe = ($10 != "" && $10 >= 0) ? sprintf("%.0f / %.0f", $10, $11) : "-"
    printf "| %s | %s | %s | %s | %.3f | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7, answer, keyframe }' "$OUT/disturbance.tsv"
fi
cat <<'EOF'

Raw data (JSON per run, server samples, logs): `build/bench-results/` after a run.
EOF
