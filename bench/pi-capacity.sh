#!/usr/bin/env bash
# How many viewers a Raspberry Pi or a Jetson could serve itself: an
# estimate from what this machine measures and what those boards are
# published to do (no board here, and qemu is not a speed).
#
#   bash bench/pi-capacity.sh [PER_VIEWER_PERCENT]
#
# PER_VIEWER_PERCENT: what one viewer (audio + video, 800 kbit/s) costs this
# machine's core with everything in, from bench/run-benchmarks.sh (default
# 0.047, the top of the 0.038-0.047 % measured on 2026-12-04; docs/BENCHMARKS.md).
# Needs build/bench/srtp-cost (scripts/build.sh), openssl and 7z (p7zip-full).
# Runs pinned to core 1 for about 2 minutes; run it on an otherwise idle machine.
#
# The model, per viewer and second:
#   crypto  = for each packet, AES-128 over its bytes + HMAC-SHA1 over them
#             (at each board's published speed), times what our SRTP costs
#             here over what the same two primitives cost here (calibration);
#   the rest (kernel UDP send, our per-viewer loop) = what it costs here,
#             times this core's 7-zip single-thread rating over the board's.
# Published figures (ThomasKaiser/sbc-bench, Results.md and results/*.txt,
# `openssl speed -elapsed -evp aes-128-cbc`, 1,024-byte column; `7z b -mmt1`):
#   Raspberry Pi 4 B  1.8 GHz arm64 (results/3F9C.txt): 50,491 kB/s, 7-zip 1,741
#   Raspberry Pi 5 B  2.4 GHz       (results/Au3jaA.txt): 1,853,520 kB/s, 7-zip 3,196
#   Jetson Nano       1.48 GHz      (results/4rLX.txt): 727,184 kB/s, 7-zip 1,578
#   Jetson Orin Nano  1.51 GHz      (results/4vy7.txt): 1,184,539 kB/s, 7-zip 2,153
# SHA-1: not in sbc-bench; OpenSSL's own figures (crypto/sha/asm/sha1-armv8.pl):
#   7.88 cycles/byte without SHA instructions (Cortex-A57; the Pi 4's BCM2711
#   has no ARMv8 crypto extensions), 2.35 with them (Pi 5, the Jetsons).
# AES-CM is CTR mode; the boards' figures are CBC encryption, which cannot run
# blocks in parallel: with AES instructions CTR is faster, so the Pi 5 and
# Jetson estimates are on the safe side; without them (Pi 4) the two are alike.
set -euo pipefail
cd "$(dirname "$0")/.."
PER_VIEWER=${1:-0.047}
VIDEO_KBPS=${VIDEO_KBPS:-800}
CORE=${CORE:-1}
for tool in openssl 7z; do command -v $tool >/dev/null || { echo "needs $tool (apt-get install openssl p7zip-full)"; exit 1; }; done
[ -x build/bench/srtp-cost ] || { echo "needs build/bench/srtp-cost: bash scripts/build.sh"; exit 1; }

speed() {  # openssl speed, 1,024-byte column, in bytes per second
  taskset -c "$CORE" openssl speed -elapsed -seconds 3 -bytes 1024 -evp "$1" 2>/dev/null |
    awk -v alg="$1" 'tolower($1) == alg { v = $2; sub(/k$/, "", v); printf "%.0f\n", v * 1000 }'
}
echo "measured $(date -u '+%Y-%m-%d %H:%M UTC') on $(nproc) cores of $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), pinned to core $CORE"
ctr=$(speed aes-128-ctr)
cbc=$(speed aes-128-cbc)
sha=$(speed sha1)
zip=$(taskset -c "$CORE" 7z b -mmt1 2>/dev/null | awk '$1 == "Tot:" { print $NF }')
read -r ns1200 ns120 < <(taskset -c "$CORE" build/bench/srtp-cost --seconds 2 |
  awk '$1 == "ours-cm-sha1-80" && $2 == 1200 { a = $3 } $1 == "ours-cm-sha1-80" && $2 == 120 { b = $3 } END { print a, b }')
for v in "$ctr" "$cbc" "$sha" "$zip"; do [ -n "$v" ] || { echo "could not read openssl speed or 7z b"; exit 1; }; done
echo "here: aes-128-ctr $((ctr / 1000)) kB/s, aes-128-cbc $((cbc / 1000)) kB/s, sha1 $((sha / 1000)) kB/s (1,024-byte blocks); 7-zip single $zip"
echo "here: our SRTP protect $ns1200 ns per 1,200-byte packet, $ns120 ns per 120-byte packet"

awk -v pv="$PER_VIEWER" -v kbps="$VIDEO_KBPS" -v ctr="$ctr" -v sha="$sha" -v zip="$zip" \
    -v ns1200="$ns1200" -v ns120="$ns120" '
function primitives(bytes, aes, sha1) { return 1e9 * (bytes / aes + (bytes + 128) / sha1) }
BEGIN {
  video = kbps * 1000 / 8 / 1200; audio = 50          # packets per second per viewer
  crypto_here = video * ns1200 + audio * ns120        # ns per viewer-second
  model_here = video * primitives(1200, ctr, sha) + audio * primitives(120, ctr, sha)
  overhead = crypto_here / model_here
  rest_here = pv / 100 * 1e9 - crypto_here
  if (rest_here < 0) rest_here = 0
  printf "here: a viewer is %.0f video + %d audio packets/s; crypto %.1f us/s of it (%.0f %% of %.3f %% of a core), the rest %.1f us/s\n",
    video, audio, crypto_here / 1000, 100 * crypto_here / (pv / 100 * 1e9), pv, rest_here / 1000
  printf "here: our SRTP costs %.2fx what its AES-CTR and HMAC-SHA1 alone would\n\n", overhead
  n = split("Raspberry Pi 4 B (1.8 GHz)|Raspberry Pi 5 B (2.4 GHz)|Jetson Nano (1.48 GHz)|Jetson Orin Nano (1.51 GHz)", names, "|")
  split("50491000 1853520000 727184000 1184539000", aes, " ")
  split("1.8 2.4 1.48 1.51", ghz, " "); split("7.88 2.35 2.35 2.35", cpb, " ")
  split("1741 3196 1578 2153", zips, " ")
  # Each copy of the stream on the wire: video + 48 kbit/s audio + headers (~5 %).
  mbps = (kbps + 48) * 1.05 / 1000
  printf "%-28s %9s %9s %10s %10s %12s %12s %12s\n", "board", "crypto %", "rest %", "per viewer", "viewers", "viewers at", "viewers at", "viewers at"
  printf "%-28s %9s %9s %10s %10s %12s %12s %12s\n", "", "of a core", "of a core", "% of core", "per core", "10 Mbit/s", "40 Mbit/s", "1 Gbit/s"
  for (i = 1; i <= n; i++) {
    sha_t = ghz[i] * 1e9 / cpb[i]
    crypto = overhead * (video * primitives(1200, aes[i], sha_t) + audio * primitives(120, aes[i], sha_t))
    rest = rest_here * zip / zips[i]
    per = (crypto + rest) / 1e9 * 100
    printf "%-28s %9.3f %9.3f %10.3f %10d %12d %12d %12d\n", names[i], crypto / 1e7, rest / 1e7, per, 100 / per,
      10 / mbps, 40 / mbps, 1000 / mbps
  }
  printf "\n(uplink columns: %.2f Mbit/s per viewer for %d kbit/s video; the smaller of a row'"'"'s per-core and uplink figures is what the board serves, with its other cores left for capture and encoding)\n", mbps, kbps
}'
