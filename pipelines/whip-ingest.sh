#!/bin/sh
# whip-ingest.sh - take a broadcast from a WHIP publisher and serve it to
#   viewers: WHIP in, WHEP out, no decoding.
#
# Platform: any. Publishers: OBS 30+ (Settings > Stream > Service "WHIP",
#   server http://<host>:${WHIP_PORT:-8090}/whip, Bearer token = $TOKEN),
#   FFmpeg's WHIP muxer, a browser, or another gst-broadcast pushing with
#   broadcastsink push-url=... (see desktop-push.sh below). One publisher at
#   a time: a second one gets 409 until the first leaves. Without the right
#   token a publisher gets 401.
#
# Publishers must send H.264 (constrained baseline is what every browser
#   decodes), VP8 or VP9, and Opus. Viewers keep their sessions when the
#   publisher leaves and comes back with the same codec.
#
# Usage: TOKEN=secret ./whip-ingest.sh ; viewers open http://<host>:${PORT:-8080}/
#
# Pushing to it from another machine (one upload, whatever the number of viewers):
#   gst-launch-1.0 videotestsrc is-live=true ! video/x-raw,width=640,height=360,framerate=30/1 \
#     ! x264enc tune=zerolatency speed-preset=ultrafast bitrate=800 key-int-max=60 ! bs.video \
#     audiotestsrc is-live=true ! opusenc ! bs.audio \
#     broadcastsink name=bs push-url=http://<host>:8090/whip push-token=secret
GST_PLUGIN_PATH="${GST_PLUGIN_PATH:-$(dirname "$0")/../build/gst}"
export GST_PLUGIN_PATH

exec gst-launch-1.0 -e \
  relaysrc name=in whip-port="${WHIP_PORT:-8090}" token="${TOKEN:-}" \
  broadcastsink name=bs port="${PORT:-8080}" \
  in.video ! queue ! bs.video \
  in.audio ! queue ! bs.audio
