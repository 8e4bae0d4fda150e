#!/usr/bin/env bash
# Browser test over HTTPS: makes a test CA and a certificate for 127.0.0.1, starts a
# broadcast whose page and WHEP speak HTTPS with it (tls-certificate, tls-key), and checks in
# headless Chromium that the page at https://127.0.0.1:<port>/ plays. Chromium trusts the CA
# the way a user's browser would, through an NSS database in $HOME/.pki/nssdb (HOME points
# to a temporary directory), not by ignoring certificate errors: without the CA it must refuse
# the page.
#
# Usage: run-https-test.sh <gst-plugin-dir> <build-dir-for-artifacts>
#
# Needs what run-browser-test.sh needs, and openssl and certutil (libnss3-tools). Writes
# https-screenshot.png and https-broadcast.log into the artifacts directory.
set -u

if [ $# -ne 2 ]; then
  echo "usage: $0 <gst-plugin-dir> <build-dir-for-artifacts>" >&2
  exit 2
fi

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PLUGIN_DIR=$(cd "$1" 2>/dev/null && pwd) || { echo "ERROR: plugin directory '$1' does not exist" >&2; exit 1; }
ARTIFACTS=$2
mkdir -p "$ARTIFACTS" || exit 1
ARTIFACTS=$(cd "$ARTIFACTS" && pwd)
LOG="$ARTIFACTS/https-broadcast.log"
SCREENSHOT="$ARTIFACTS/https-screenshot.png"

say() { echo "[run-https-test] $*"; }

# (a) dependencies
source "$SCRIPT_DIR/lib.sh"
check_dependencies broadcastsink
for tool in openssl certutil curl; do
  command -v "$tool" >/dev/null 2>&1 || { echo "ERROR: '$tool' not found (scripts/install-deps.sh installs it)" >&2; exit 1; }
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/wb-https-test-XXXXXX") || exit 1
trap 'cleanup; rm -rf "$WORK"' EXIT

# (b) the test CA, and a certificate it signs for 127.0.0.1
ec=(-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes)
if ! {
  openssl req -x509 "${ec[@]}" -keyout "$WORK/ca.key" -out "$WORK/ca.pem" -days 2 \
    -subj "/CN=webrtcbroadcast browser test CA" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign &&
  openssl req "${ec[@]}" -keyout "$WORK/server.key" -out "$WORK/server.csr" -subj /CN=127.0.0.1 &&
  printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >"$WORK/server.ext" &&
  openssl x509 -req -in "$WORK/server.csr" -CA "$WORK/ca.pem" -CAkey "$WORK/ca.key" -CAcreateserial \
    -days 2 -out "$WORK/server.pem" -extfile "$WORK/server.ext"
} >"$WORK/openssl.log" 2>&1; then
  echo "FAIL: could not make the test certificates:"; cat "$WORK/openssl.log"; exit 1
fi

# Chromium on Linux trusts what the user's NSS database trusts, under $HOME.
TRUSTING_HOME="$WORK/trusting-home"
NSSDB="sql:$TRUSTING_HOME/.pki/nssdb"
mkdir -p "$TRUSTING_HOME/.pki/nssdb" "$WORK/plain-home"
if ! { certutil -N -d "$NSSDB" --empty-password &&
       certutil -A -d "$NSSDB" -t "C,," -n "webrtcbroadcast browser test CA" -i "$WORK/ca.pem"; } >"$WORK/certutil.log" 2>&1; then
  echo "FAIL: could not make the NSS database:"; cat "$WORK/certutil.log"; exit 1
fi
say "test CA made and trusted in $NSSDB"

read -r PORT < <(free_ports 1)
[ -n "${PORT:-}" ] || PORT=$((18443 + $$ % 1000))
URL="https://127.0.0.1:$PORT/"

# (c) start the broadcast
say "starting broadcast on $URL (log: $LOG)"
GST_PLUGIN_PATH="$PLUGIN_DIR" GST_DEBUG="${GST_DEBUG:+$GST_DEBUG,}broadcastsignalling:4,broadcastviewer:4" GST_DEBUG_NO_COLOR=1 \
  gst-launch-1.0 -e \
  videotestsrc is-live=true pattern=ball ! video/x-raw,width=640,height=360,framerate=30/1 \
  ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=60 bitrate=800 \
  ! video/x-h264,profile=constrained-baseline ! bs.video \
  audiotestsrc is-live=true wave=ticks ! audioconvert ! audioresample ! opusenc ! bs.audio \
  broadcastsink name=bs port="$PORT" address=127.0.0.1 ice-address=127.0.0.1 \
    tls-certificate="$WORK/server.pem" tls-key="$WORK/server.key" \
  >"$LOG" 2>&1 &
GST_PID=$!

# (d) wait until the page is served over HTTPS with the test CA
deadline=$((SECONDS + 10))
code=000
while [ $SECONDS -lt $deadline ]; do
  if ! kill -0 "$GST_PID" 2>/dev/null; then
    wait "$GST_PID"; rc=$?
    echo "FAIL: gst-launch-1.0 exited early (status $rc)"
    GST_PID=""
    print_log
    exit 1
  fi
  code=$(curl -s -o /dev/null -m 2 -w '%{http_code}' --cacert "$WORK/ca.pem" "$URL" 2>/dev/null)
  [ "$code" = 200 ] && break
  sleep 0.2
done
if [ "$code" != 200 ]; then
  echo "FAIL: GET $URL (trusting the test CA) did not answer 200 within 10 s (last status: $code)"
  print_log
  exit 1
fi
say "server is up (GET / over HTTPS -> 200)"
# Only HTTPS, and only for a client that trusts the CA.
curl -s -o /dev/null -m 2 "$URL"; untrusted=$?
plain=$(curl -s -o /dev/null -m 2 -w '%{http_code}' "http://127.0.0.1:$PORT/" 2>/dev/null)
if [ "$untrusted" != 60 ] || [ "$plain" = 200 ]; then
  echo "FAIL: curl without the CA exited $untrusted (expected 60, certificate refused); plain HTTP answered $plain"
  print_log
  exit 1
fi
say "without the CA: refused (curl 60); plain HTTP: no answer ($plain)"

# (e) Chromium without the CA in its NSS database must refuse the page.
refused=$(cd "$SCRIPT_DIR" && HOME="$WORK/plain-home" timeout -k 5 60 node --input-type=module -e "
import { chromium } from 'playwright-core';
import { mkdtempSync } from 'node:fs';
const dir = mkdtempSync(process.env.HOME + '/profile-');
const context = await chromium.launchPersistentContext(dir, {
  executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium', headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'] });
const page = context.pages()[0] || await context.newPage();
try { await page.goto(process.argv[1], { timeout: 15000 }); console.log('LOADED'); }
catch (e) { console.log((e.message.match(/net::ERR_[A-Z_]+/) || [e.message])[0]); }
await context.close();" "$URL" 2>&1 | tail -1)
if [ "$refused" != "net::ERR_CERT_AUTHORITY_INVALID" ]; then
  echo "FAIL: Chromium without the test CA: expected net::ERR_CERT_AUTHORITY_INVALID, got: $refused"
  print_log
  exit 1
fi
say "Chromium without the CA: $refused"

# (f) the browser test, with the CA trusted
rm -f "$SCREENSHOT"
(cd "$SCRIPT_DIR" && HOME="$TRUSTING_HOME" timeout -k 5 90 node browser-test.mjs "$URL" "$SCREENSHOT")
rc=$?
if [ $rc -ne 0 ]; then
  [ $rc -eq 124 ] && echo "FAIL: browser test killed after 90 s"
  if ! kill -0 "$GST_PID" 2>/dev/null; then echo "NOTE: the broadcast (gst-launch-1.0) is no longer running"; fi
  cleanup
  print_log
else
  cleanup
  # The offer came over HTTPS (the page posts to its own origin).
  if ! grep -q "listening on https://127.0.0.1:$PORT" "$LOG"; then
    echo "FAIL: the node did not say it listened with HTTPS"
    rc=1
  fi
fi

say "HTTPS browser test exit status: $rc"
exit $rc
