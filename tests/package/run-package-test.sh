#!/usr/bin/env bash
# The Debian packages, as a user gets them: builds them from debian/ with
# dpkg-buildpackage, installs them with apt, checks what they installed and
# that the installed node runs the way its service runs it, then purges
# them and checks nothing is left.
#
# Usage (root): tests/package/run-package-test.sh [OUT]
#   OUT (default build/packages): the .deb files, the build log and
#   sizes.txt. The node part runs in a private network namespace with only
#   loopback (unshare --net).
#
# What a run checks:
#   - both packages hold what docs/operations.md says (plugin in GStreamer's
#     system path, the CLI and load generator in /usr/bin, the unit, the
#     environment file as a conffile);
#   - GStreamer finds the plugin with no GST_PLUGIN_PATH;
#   - systemd accepts the unit (systemd-analyze verify), and its sandbox
#     scores as systemd-analyze security rates it (printed, and at most
#     MAX_EXPOSURE, 2.5 by default);
#   - /usr/bin/gst-broadcast with the environment file's options, as an
#     unprivileged user with no capabilities (as DynamicUser= runs it):
#     page, metrics with and without the token, dashboard, and viewers of
#     the installed gst-broadcast-load who get authenticated media;
#   - apt purge removes every file, the conffile included.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${1:-build/packages}
MAX_EXPOSURE=${MAX_EXPOSURE:-2.5}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/wb-package-XXXXXX")
PACKAGES=(gst-broadcast gstreamer1.0-webrtcbroadcast)
say() { echo "[package-test] $*"; }
fail() { echo "FAIL: $*"; exit 1; }
purge() { DEBIAN_FRONTEND=noninteractive apt-get purge -y -q "${PACKAGES[@]}" >/dev/null 2>&1 || true; }
trap 'purge; rm -rf "$WORK"' EXIT

# (1) Build from the source tree (tracked and new files, no build output).
mkdir "$WORK/src"
git ls-files -z --cached --others --exclude-standard | xargs -0 -I{} sh -c 'test -e "{}" && printf "%s\0" "{}"' |
  tar --null -T - -cf - | tar -xf - -C "$WORK/src"
say "dpkg-buildpackage (log: $OUT/build.log)"
start=$SECONDS
if ! (cd "$WORK/src" && DEB_BUILD_OPTIONS="nocheck parallel=$(nproc)" dpkg-buildpackage -b -us -uc) >"$OUT/build.log" 2>&1; then
  tail -40 "$OUT/build.log"
  fail "dpkg-buildpackage failed"
fi
rm -f "$OUT"/*.deb
cp "$WORK"/*.deb "$OUT/"
say "built in $((SECONDS - start)) s:"
(cd "$OUT" && for deb in *.deb; do
   printf '%-60s %8s bytes, %6s kB installed\n' "$deb" "$(stat -c %s "$deb")" "$(dpkg-deb -f "$deb" Installed-Size)"
 done) | tee "$OUT/sizes.txt"

# (2) What each package holds.
arch=$(dpkg --print-architecture)
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
plugin_deb=$(ls "$OUT"/gstreamer1.0-webrtcbroadcast_*_"$arch".deb)
cli_deb=$(ls "$OUT"/gst-broadcast_*_"$arch".deb)
expect_file() {
  dpkg-deb -c "$1" | awk '{print $6}' | grep -qx "\\.$2" || fail "$(basename "$1") does not hold $2"
}
expect_file "$plugin_deb" "/usr/lib/$multiarch/gstreamer-1.0/libgstwebrtcbroadcast.so"
for f in /usr/bin/gst-broadcast /usr/bin/gst-broadcast-load /lib/systemd/system/gst-broadcast.service \
         /etc/default/gst-broadcast; do
  expect_file "$cli_deb" "$f"
done
dpkg-deb --ctrl-tarfile "$cli_deb" | tar -xOf - ./conffiles | grep -qx /etc/default/gst-broadcast ||
  fail "/etc/default/gst-broadcast is not a conffile"
say "contents as expected"

# (3) Install with apt, as a user would (dependencies from Debian).
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$plugin_deb" "$cli_deb" >"$OUT/install.log" 2>&1 ||
  { tail -20 "$OUT/install.log"; fail "apt-get install of the packages failed"; }
inspect=$(env -u GST_PLUGIN_PATH GST_REGISTRY="$WORK/registry.bin" gst-inspect-1.0 webrtcbroadcast 2>&1) ||
  fail "GStreamer does not find the installed plugin: $inspect"
# /lib is /usr/lib on a merged-/usr system: either spelling is the installed file.
echo "$inspect" | grep -Eq "Filename +(/usr)?/lib/$multiarch/gstreamer-1.0/libgstwebrtcbroadcast.so" ||
  fail "the plugin GStreamer found is not the installed one: $(echo "$inspect" | grep Filename)"
for element in broadcastsink viewermanager relaysrc; do
  echo "$inspect" | grep -q "^  $element:" || fail "the installed plugin has no $element"
done
say "GStreamer finds the installed plugin and its three elements"

# (4) The unit.
unit=/lib/systemd/system/gst-broadcast.service
verify=$(systemd-analyze verify "$unit" 2>&1) || fail "systemd-analyze verify: $verify"
[ -z "$verify" ] || fail "systemd-analyze verify complained: $verify"
security=$(systemd-analyze security --offline=true "$unit" 2>&1 | tail -1)
say "systemd-analyze security: $security"
exposure=$(echo "$security" | grep -o 'exposure level for [^ ]*: [0-9.]*' | awk '{print $NF}')
[ -n "$exposure" ] || fail "no exposure level in: $security"
awk -v e="$exposure" -v m="$MAX_EXPOSURE" 'BEGIN { exit !(e <= m) }' || fail "exposure $exposure above $MAX_EXPOSURE"
echo "$security" >>"$OUT/sizes.txt"

# (5) The installed node, with the environment file's options, as an
# unprivileged user without capabilities; loopback only.
unshare --net bash -s "$WORK" <<'NODE' || fail "the installed node did not serve as expected"
set -euo pipefail
WORK=$1
ip link set lo up
mkdir -p "$WORK/cache" && chown nobody:nogroup "$WORK/cache" && chmod 755 "$WORK"
. /etc/default/gst-broadcast
PORT=18080
env -i PATH=/usr/bin:/bin HOME="$WORK/cache" XDG_CACHE_HOME="$WORK/cache" \
  setpriv --reuid=nobody --regid=nogroup --clear-groups --no-new-privs --inh-caps=-all --bounding-set=-all \
  /usr/bin/gst-broadcast $GST_BROADCAST_ARGS --port $PORT --address 127.0.0.1 --ice-address 127.0.0.1 \
  >"$WORK/node.log" 2>&1 &
pid=$!
trap 'kill -INT $pid 2>/dev/null; wait $pid 2>/dev/null || true' EXIT
base=http://127.0.0.1:$PORT
for _ in $(seq 100); do
  [ "$(curl -s -o /dev/null -m 1 -w '%{http_code}' $base/)" = 200 ] && break
  kill -0 $pid 2>/dev/null || { cat "$WORK/node.log"; exit 1; }
  sleep 0.2
done
code() { curl -s -o /dev/null -m 5 -w '%{http_code}' "$@"; }
token=$(echo "$GST_BROADCAST_ARGS" | grep -o -- '--metrics-token [^ ]*' | awk '{print $2}')
[ "$(code $base/)" = 200 ] || { echo "page: $(code $base/)"; cat "$WORK/node.log"; exit 1; }
[ "$(code $base/metrics)" = 401 ] || { echo "metrics without the token: $(code $base/metrics)"; exit 1; }
curl -s -m 5 -H "Authorization: Bearer $token" $base/metrics | grep -q '^broadcast_viewers ' ||
  { echo "no broadcast_viewers in the metrics"; exit 1; }
curl -s -D - -o /dev/null -m 5 $base/dashboard | grep -qi "^content-security-policy: default-src 'none'" ||
  { echo "no dashboard"; exit 1; }
/usr/bin/gst-broadcast-load -u $base/whep -n 3 --hold 3 --verify 3 >"$WORK/load.log" 2>&1 ||
  { cat "$WORK/load.log"; tail -30 "$WORK/node.log"; exit 1; }
tail -3 "$WORK/load.log"
[ "$(ps -o user= -p $pid)" = nobody ] || { echo "the node does not run as nobody"; exit 1; }
grep -q "CapEff:.0000000000000000" /proc/$pid/status || { echo "the node has capabilities"; exit 1; }
echo "[package-test] installed node: page 200, metrics 401/200, dashboard, 3 viewers got verified media, user nobody, no capabilities"
NODE

# (6) Purge removes everything.
DEBIAN_FRONTEND=noninteractive apt-get purge -y -q "${PACKAGES[@]}" >>"$OUT/install.log" 2>&1 || fail "apt-get purge failed"
for f in /usr/bin/gst-broadcast /usr/bin/gst-broadcast-load "$unit" /etc/default/gst-broadcast \
         "/usr/lib/$multiarch/gstreamer-1.0/libgstwebrtcbroadcast.so"; do
  [ ! -e "$f" ] || fail "$f is left after purge"
done
say "purged: nothing left"
say "PASS"
