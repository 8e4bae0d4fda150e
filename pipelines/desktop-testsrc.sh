#!/bin/sh
# desktop-testsrc.sh - test pattern + test tone, software H.264 (any Linux PC)
#
# Platform: any desktop/laptop/server; no camera or GPU needed. Good first
#   test of the plugin: open http://127.0.0.1:${PORT:-8080}/ in a browser.
#
# Video: videotestsrc (moving ball, live) 640x360@30 -> x264enc
#   tune=zerolatency      no B-frames, no lookahead: one frame in, one frame out
#   speed-preset=ultrafast  lowest CPU; fine at this resolution
#   bitrate=800           kbit/s
#   key-int-max=60        regular keyframe every 2 s at 30 fps (safety net)
#   video/x-h264,profile=constrained-baseline  decodable by every browser
# Audio: audiotestsrc 440 Hz sine -> opusenc (64 kbit/s).
#
# Keyframes on demand: broadcastsink coalesces viewer joins and RTCP PLI/FIR
#   into at most one keyframe request per keyframe-min-interval (default
#   1000 ms) and sends it upstream as a force-key-unit event. x264enc is a
#   GstVideoEncoder: the base class marks the next frame as forced and
#   x264enc encodes it as an IDR (with SPS/PPS), so a new viewer gets a
#   picture within one frame of the request instead of waiting for the GOP.
#
# Environment: PORT (default 8080), GST_PLUGIN_PATH (default ../build/gst).
GST_PLUGIN_PATH="${GST_PLUGIN_PATH:-$(dirname "$0")/../build/gst}"
export GST_PLUGIN_PATH

exec gst-launch-1.0 -e \
  broadcastsink name=bs port="${PORT:-8080}" \
  videotestsrc is-live=true pattern=ball \
    ! video/x-raw,width=640,height=360,framerate=30/1 \
    ! queue max-size-buffers=3 max-size-bytes=0 max-size-time=0 leaky=downstream \
    ! videoconvert \
    ! x264enc tune=zerolatency speed-preset=ultrafast bitrate=800 key-int-max=60 \
    ! video/x-h264,profile=constrained-baseline \
    ! bs.video \
  audiotestsrc is-live=true wave=sine freq=440 volume=0.2 samplesperbuffer=480 \
    ! audioconvert ! audioresample ! audio/x-raw,rate=48000 \
    ! queue ! opusenc bitrate=64000 \
    ! bs.audio
