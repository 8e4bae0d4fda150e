#!/usr/bin/env bash
# arm64, proven on an amd64 machine: cross-builds the plugin, the CLI and the
# test suites with Debian's cross toolchain, runs the unit, net and element
# suites under qemu-user, and cross-builds the Debian packages for arm64
# (docs/operations.md, "arm64").
#
# Usage (root): tests/arm64/run-arm64-test.sh [OUT]
#   OUT (default build-arm64): the build, meson's test log, the arm64 .deb
#   files and sizes.txt. The suites run in a private network namespace with
#   only loopback (unshare --net), as on amd64.
#
# Debian 12 cannot install five of our -dev packages for arm64 beside their
# amd64 selves: libnice-dev and libsoup-3.0-dev pull gobject-introspection,
# which needs an arm64 python3; libgstreamer-plugins-{base,bad}1.0-dev and
# libsrtp2-dev pull -dev packages that are not Multi-Arch: same (liborc,
# libopencv, libnss3). What a cross-build takes from a -dev package is its
# headers (the same for every architecture, and installed for amd64), its
# .pc file and its lib*.so link. So this script installs the arm64
# libraries themselves, downloads the arm64 -dev packages with apt, and
# keeps only their .pc files (pointing at a private lib directory, without
# Requires.private, which only static linking reads) and .so links (to the
# installed arm64 libraries), in OUT/pkgconfig-overlay. Nothing outside OUT
# is changed but the packages apt installs.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${1:-build-arm64}
TRIPLET=aarch64-linux-gnu
say() { echo "[arm64] $*"; }
fail() { echo "FAIL: $*"; exit 1; }

# (1) Debian's cross toolchain, qemu, and the arm64 libraries.
overlay_devs=(libnice-dev libsoup-3.0-dev libgstreamer-plugins-base1.0-dev
              libgstreamer-plugins-bad1.0-dev libsrtp2-dev)
packages=(crossbuild-essential-arm64 qemu-user-static file
  libgstreamer1.0-dev:arm64 libglib2.0-dev:arm64 libjson-glib-dev:arm64
  libssl-dev:arm64 libgtest-dev:arm64
  # the libraries of the five -dev packages above
  libnice10:arm64 libsoup-3.0-0:arm64 libgstreamer-plugins-base1.0-0:arm64
  libgstreamer-plugins-bad1.0-0:arm64 libsrtp2-1:arm64
  # what the element suite runs: webrtcbin, x264enc, opusenc, vp8enc, decoders
  gstreamer1.0-plugins-base:arm64 gstreamer1.0-plugins-good:arm64
  gstreamer1.0-plugins-bad:arm64 gstreamer1.0-plugins-ugly:arm64
  gstreamer1.0-libav:arm64 gstreamer1.0-nice:arm64)
start=$SECONDS
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
  dpkg --add-architecture arm64
  apt-get update -q
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  say "installing ${#missing[@]} packages (amd64 libraries that arm64 ones share a version with are upgraded to it)"
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >"${TMPDIR:-/tmp}/wb-arm64-apt.log" 2>&1 ||
    { tail -30 "${TMPDIR:-/tmp}/wb-arm64-apt.log"; fail "apt-get install"; }
fi
say "packages ready in $((SECONDS - start)) s"

# (2) The .pc overlay.
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
overlay=$OUT/pkgconfig-overlay
rm -rf "$overlay" && mkdir -p "$overlay/lib"
debs=$(mktemp -d "${TMPDIR:-/tmp}/wb-arm64-debs-XXXXXX")
trap 'rm -rf "$debs"' EXIT
chmod 755 "$debs"  # apt downloads as _apt
(cd "$debs" && apt-get download -q "${overlay_devs[@]/%/:arm64}" >/dev/null 2>&1) ||
  fail "apt-get download ${overlay_devs[*]/%/:arm64}"
for deb in "$debs"/*.deb; do
  x=$debs/x; rm -rf "$x"; dpkg-deb -x "$deb" "$x"
  for pc in "$x/usr/lib/$TRIPLET/pkgconfig"/*.pc; do
    [ -e "$pc" ] || continue
    sed -e "s|^libdir=.*|libdir=$overlay/lib|" -e '/^Requires.private:/d' -e '/^Libs.private:/d' \
      "$pc" >"$overlay/$(basename "$pc")"
  done
  for so in "$x/usr/lib/$TRIPLET"/*.so; do
    [ -L "$so" ] || continue
    target=/usr/lib/$TRIPLET/$(readlink "$so")
    # Links to libraries we do not install (e.g. libgstopencv) stay out.
    [ -e "$target" ] || continue
    ln -sf "$target" "$overlay/lib/$(basename "$so")"
  done
done
for h in nice/agent.h libsoup/soup.h gst/webrtc/webrtc.h gst/sdp/sdp.h srtp2/srtp.h; do
  [ -e "/usr/include/$h" ] || [ -e "/usr/include/gstreamer-1.0/$h" ] || [ -e "/usr/include/libsoup-3.0/$h" ] ||
    fail "/usr/include/$h missing: the headers come from the amd64 -dev packages (scripts/install-deps.sh)"
done
say "pkg-config overlay: $(ls "$overlay"/*.pc | wc -l) .pc files, $(ls "$overlay/lib" | wc -l) links"

cross=$OUT/cross-arm64.ini
cat >"$cross" <<EOF
[binaries]
c = '$TRIPLET-gcc'
cpp = '$TRIPLET-g++'
ar = '$TRIPLET-ar'
strip = '$TRIPLET-strip'
pkgconfig = '$TRIPLET-pkg-config'
exe_wrapper = 'qemu-aarch64-static'

[properties]
pkg_config_libdir = ['$overlay', '/usr/lib/$TRIPLET/pkgconfig', '/usr/share/pkgconfig']

[host_machine]
system = 'linux'
cpu_family = 'aarch64'
cpu = 'aarch64'
endian = 'little'
EOF

# (3) Cross-build and run the suites under qemu.
build=$OUT/build
start=$SECONDS
[ -f "$build/build.ninja" ] || meson setup "$build" --cross-file "$cross" >"$OUT/setup.log" 2>&1 ||
  { tail -30 "$OUT/setup.log"; fail "meson setup"; }
ninja -C "$build" >"$OUT/ninja.log" 2>&1 || { tail -40 "$OUT/ninja.log"; fail "cross-build"; }
file -L "$build/gst/libgstwebrtcbroadcast.so" "$build/tools/gst-broadcast" | tee "$OUT/file.txt"
grep -q 'ARM aarch64' "$OUT/file.txt" || fail "the build is not aarch64"
say "cross-built in $((SECONDS - start)) s"

# GStreamer scans plugins in a helper it execs (gst-plugin-scanner); without
# binfmt_misc (not every CI machine has it) the kernel cannot exec an arm64
# one, so a wrapper runs it under qemu. Not GST_REGISTRY_FORK=no: scanning
# in-process would load our plugin into test programs that link its code
# already, two copies of every static, and a double free at exit (seen).
scanner=$OUT/gst-plugin-scanner
printf '#!/bin/sh\nexec qemu-aarch64-static /usr/lib/%s/gstreamer1.0/gstreamer-1.0/gst-plugin-scanner "$@"\n' \
  "$TRIPLET" >"$scanner"
chmod +x "$scanner"
export GST_PLUGIN_SCANNER_1_0=$scanner GST_PLUGIN_SCANNER=$scanner
# Under emulation an encoder runs many times slower: the suites' deadlines
# and meson's timeouts are scaled alike.
start=$SECONDS
if ! WB_TEST_TIME_SCALE=6 unshare --net sh -c 'ip link set lo up && exec meson test -C "$1" --print-errorlogs --timeout-multiplier 6 unit net elements' _ "$build"; then
  bash scripts/print-failures.sh "$build/meson-logs/testlog.txt" || true
  fail "the arm64 suites"
fi
say "unit, net and elements passed under qemu-aarch64 in $((SECONDS - start)) s"

# (4) The Debian packages for arm64.
src=$(mktemp -d "${TMPDIR:-/tmp}/wb-arm64-src-XXXXXX")
trap 'rm -rf "$debs" "$src"' EXIT
mkdir "$src/src"
git ls-files -z --cached --others --exclude-standard | xargs -0 -I{} sh -c 'test -e "{}" && printf "%s\0" "{}"' |
  tar --null -T - -cf - | tar -xf - -C "$src/src"
start=$SECONDS
# -d: dpkg-checkbuilddeps would ask for the arm64 -dev packages the overlay
# stands in for; the cross file hands dh_auto_configure that overlay.
if ! (cd "$src/src" && DH_MESON_CROSS_FILE=$cross DEB_BUILD_OPTIONS="nocheck parallel=$(nproc)" \
        dpkg-buildpackage -a arm64 -d -b -us -uc) >"$OUT/dpkg-buildpackage.log" 2>&1; then
  tail -40 "$OUT/dpkg-buildpackage.log"
  fail "dpkg-buildpackage -a arm64"
fi
rm -f "$OUT"/*.deb
cp "$src"/*_arm64.deb "$OUT/"
(cd "$OUT" && for deb in *.deb; do
   printf '%-60s %8s bytes, %6s kB installed\n' "$deb" "$(stat -c %s "$deb")" "$(dpkg-deb -f "$deb" Installed-Size)"
 done) | tee "$OUT/sizes.txt"
for deb in "$OUT"/*.deb; do
  [ "$(dpkg-deb -f "$deb" Architecture)" = arm64 ] || fail "$deb is not arm64"
done
plugin_deb=$(ls "$OUT"/gstreamer1.0-webrtcbroadcast_*_arm64.deb)
cli_deb=$(ls "$OUT"/gst-broadcast_*_arm64.deb)
dpkg-deb -c "$plugin_deb" >"$OUT/plugin-contents.txt"
grep -q "usr/lib/$TRIPLET/gstreamer-1.0/libgstwebrtcbroadcast.so" "$OUT/plugin-contents.txt" ||
  fail "the plugin is not in GStreamer's arm64 path"
# dpkg-shlibdeps read the arm64 libraries' own symbols files: the package
# must name them (a package that names amd64 libraries would not install).
dpkg-deb -f "$plugin_deb" Depends >"$OUT/plugin-depends.txt"
grep -q 'libnice10' "$OUT/plugin-depends.txt" ||
  fail "the plugin package does not depend on libnice10"

# The packaged node, started under qemu: it must load its packaged plugin
# and answer on its HTTP port.
x=$src/installed; mkdir "$x"
dpkg-deb -x "$plugin_deb" "$x"; dpkg-deb -x "$cli_deb" "$x"
GST_REGISTRY=$src/registry.bin GST_PLUGIN_PATH=$x/usr/lib/$TRIPLET/gstreamer-1.0 \
  unshare --net sh -c '
    ip link set lo up
    qemu-aarch64-static "$1/usr/bin/gst-broadcast" --address 127.0.0.1 --port 18480 >"$2/node.log" 2>&1 &
    node=$!
    for i in $(seq 1 600); do
      code=$(curl -s -o /dev/null -w "%{http_code}" http://127.0.0.1:18480/ || true)
      [ "$code" = 200 ] && break
      kill -0 $node 2>/dev/null || break
      sleep 0.1
    done
    kill $node 2>/dev/null; wait $node 2>/dev/null
    echo "$code" >"$2/node-page.txt"' _ "$x" "$OUT"
[ "$(cat "$OUT/node-page.txt")" = 200 ] || { cat "$OUT/node.log"; fail "the packaged arm64 node did not serve its page"; }
say "packaged arm64 node served its page under qemu"
say "arm64 packages built in $((SECONDS - start)) s: PASS"
