#!/bin/sh
# raspberry-pi-push.sh - a Raspberry Pi camera that uploads once to a server,
#   which serves the many viewers. The Pi serves a few viewers itself (on
#   the LAN, MAX_VIEWERS); everyone else watches the server.
#
#   camera -> v4l2h264enc (Pi) --WHIP push--> ingest node (server) --WHEP--> browsers
#
# Why: a Pi 4 has no AES instructions, so every viewer's SRTP costs it far
#   more CPU than on a server (about 0.3 % of a core per viewer against
#   0.05 %: docs/operations.md, "How many viewers a Pi serves"), and a home
#   uplink carries a few copies of the stream at most (11 at 10 Mbit/s). The push is one
#   upload whatever the audience; it reconnects for as long as this runs.
#
# On the server (Debian 12, amd64 or arm64), with the packages
#   (docs/operations.md, "Packages"):
#     sudo apt install ./gstreamer1.0-webrtcbroadcast_*.deb ./gst-broadcast_*.deb
#     sudo sh -c 'echo GST_BROADCAST_ARGS=\"ingest --whip-port 8090 --token s3cret --port 8080 \
#       --ice-port 8443 --metrics-token m3trics\" > /etc/default/gst-broadcast'
#     sudo systemctl enable --now gst-broadcast
#   Viewers open http://<server>:8080/ ; the dashboard is
#   http://<server>:8080/dashboard#token=m3trics. Open TCP 8080 and 8090,
#   and UDP 8443 (every viewer's media; the publisher's comes over a port of
#   its own webrtcbin: allow UDP from the Pi's address).
#
# On the Pi (Raspberry Pi OS Bookworm, arm64; the same two packages built
#   for arm64: `dpkg-buildpackage -b` on the Pi, or cross-built on an amd64
#   Debian 12 by `sudo bash tests/arm64/run-arm64-test.sh`, which leaves
#   them in build-arm64/; or this repository built there with scripts/build.sh):
#     sudo apt install ./gstreamer1.0-webrtcbroadcast_*_arm64.deb
#     SERVER=http://<server>:8090/whip TOKEN=s3cret ./pipelines/raspberry-pi-push.sh
#
# Encoder settings and keyframes: as raspberry-pi.sh (a 1 s GOP with SPS/PPS
#   on every keyframe, because v4l2h264enc in GStreamer 1.22 ignores
#   keyframe requests). For the camera module on libcamera, replace the
#   v4l2src ... decodebin lines with
#     libcamerasrc ! video/x-raw,width=1280,height=720,framerate=30/1,format=NV12 \
#
# Environment: SERVER (required: the ingest's WHIP URL), TOKEN, DEVICE,
#   WIDTH, HEIGHT, FPS, BITRATE (kbit/s), PORT (the Pi's own page, 8080),
#   MAX_VIEWERS (5), GST_PLUGIN_PATH (default ../build/gst; not needed with
#   the package installed).
: "${SERVER:?set SERVER to the ingest node's WHIP URL, e.g. http://server:8090/whip}"
GST_PLUGIN_PATH="${GST_PLUGIN_PATH:-$(dirname "$0")/../build/gst}"
export GST_PLUGIN_PATH
FPS="${FPS:-30}"

exec gst-launch-1.0 \
  broadcastsink name=bs port="${PORT:-8080}" max-viewers="${MAX_VIEWERS:-5}" \
    push-url="$SERVER" push-token="${TOKEN:-}" \
  v4l2src device="${DEVICE:-/dev/video0}" \
    ! decodebin \
    ! videoconvert ! videoscale ! videorate \
    ! "video/x-raw,width=${WIDTH:-1280},height=${HEIGHT:-720},framerate=${FPS}/1" \
    ! queue max-size-buffers=3 max-size-bytes=0 max-size-time=0 leaky=downstream \
    ! videoconvert ! video/x-raw,format=I420 \
    ! v4l2h264enc extra-controls="controls,video_bitrate=$(( ${BITRATE:-2000} * 1000 )),h264_i_frame_period=${FPS},repeat_sequence_header=1" \
    ! 'video/x-h264,level=(string)4' \
    ! bs.video
