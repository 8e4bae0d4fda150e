#!/bin/sh
# relay-input-rtp.sh - relay an existing RTP H.264 stream to browsers
#
# Platform: any. Something else (a camera, an encoder box, another
#   GStreamer pipeline) already produces H.264 and sends it as RTP over UDP
#   to port ${RTP_PORT:-5004}. broadcastsink takes the RTP packets
#   on its video pad as they are: no depayloading, no decoding, no
#   re-encoding, so it costs almost no CPU.
#
# Input caps (must match the sender):
#   application/x-rtp,media=video,encoding-name=H264,clock-rate=90000,payload=96
#
# Example sender (same machine), 1 s GOP, SPS/PPS with every IDR:
#   gst-launch-1.0 videotestsrc is-live=true ! video/x-raw,width=640,height=360,framerate=30/1 \
#     ! videoconvert ! x264enc tune=zerolatency speed-preset=ultrafast bitrate=800 key-int-max=30 \
#     ! video/x-h264,profile=constrained-baseline \
#     ! rtph264pay config-interval=-1 pt=96 ! udpsink host=127.0.0.1 port=5004
#
# Keyframes on demand: NOT available through this relay. broadcastsink's
#   coalesced keyframe requests go upstream as force-key-unit events, and
#   udpsrc drops them: there is no back-channel to the remote sender in this
#   pipeline. New viewers wait for the sender's next IDR, so configure the
#   sender with a short GOP (about 1 s) and SPS/PPS in front of every IDR
#   (rtph264pay config-interval=-1, or the encoder's equivalent).
#   The sender must also use a browser-decodable profile (constrained
#   baseline, or main/high if all your viewers support it).
#
# Audio (optional): an Opus RTP stream on another port can go straight into
#   bs.audio the same way. Replace the last line (`    ! bs.video`) with:
#     ! bs.video \
#   udpsrc port=5006 caps="application/x-rtp,media=audio,encoding-name=OPUS,clock-rate=48000,payload=111" ! bs.audio
#
# Environment: RTP_PORT (default 5004), PORT, GST_PLUGIN_PATH (default
#   ../build/gst).
GST_PLUGIN_PATH="${GST_PLUGIN_PATH:-$(dirname "$0")/../build/gst}"
export GST_PLUGIN_PATH

exec gst-launch-1.0 -e \
  broadcastsink name=bs port="${PORT:-8080}" \
  udpsrc port="${RTP_PORT:-5004}" \
    caps="application/x-rtp,media=video,encoding-name=H264,clock-rate=90000,payload=96" \
    ! bs.video
