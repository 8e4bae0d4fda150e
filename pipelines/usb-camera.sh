#!/bin/sh
# usb-camera.sh - USB (UVC) webcam, software H.264
#
# Platform: any Linux machine with a V4L2 camera (DEVICE, default
#   /dev/video0). List cameras and their formats with
#   `v4l2-ctl --list-devices` and `v4l2-ctl -d /dev/video0 --list-formats-ext`.
#
# Capture: v4l2src ! decodebin. Most webcams offer MJPEG at high
#   resolutions and raw YUYV only at low frame rates; decodebin decodes
#   MJPEG (jpegdec) or passes raw video through, then videoconvert,
#   videoscale and videorate bring it to 1280x720@30 (WIDTH/HEIGHT/FPS).
#   Because decodebin hides the camera from caps negotiation, the camera
#   runs at its default mode; to pin one, put caps right after v4l2src, e.g.
#   `v4l2src ... ! image/jpeg,width=1280,height=720,framerate=30/1 ! decodebin`.
#
# Video encoder: x264enc tune=zerolatency speed-preset=ultrafast
#   bitrate=${BITRATE:-2000} kbit/s, key-int-max=2*FPS (one keyframe every
#   2 s), output caps profile=constrained-baseline for browser decoding.
#
# Keyframes on demand: broadcastsink sends its coalesced keyframe requests
#   (new viewers, PLI/FIR; at most one per keyframe-min-interval) upstream as
#   force-key-unit events; x264enc (GstVideoEncoder) turns the next frame into
#   an IDR with SPS/PPS. The camera source is not involved.
#
# Audio: none by default. For an ALSA microphone, replace the last line
#   (`  ! bs.video`) with these two lines (find the card with `arecord -l`):
#     ! bs.video \
#   alsasrc device=hw:1,0 latency-time=10000 ! audioconvert ! audioresample ! audio/x-raw,rate=48000 ! queue ! opusenc bitrate=64000 ! bs.audio
#   (or pulsesrc / pipewiresrc on a desktop session; keep their buffers at 10 ms too:
#   audio that leaves late makes the browser hold the video as long, docs/SCALING.md).
#
# Environment: DEVICE, WIDTH, HEIGHT, FPS, BITRATE (kbit/s), PORT,
#   GST_PLUGIN_PATH (default ../build/gst).
GST_PLUGIN_PATH="${GST_PLUGIN_PATH:-$(dirname "$0")/../build/gst}"
export GST_PLUGIN_PATH
FPS="${FPS:-30}"

exec gst-launch-1.0 -e \
  broadcastsink name=bs port="${PORT:-8080}" \
  v4l2src device="${DEVICE:-/dev/video0}" \
    ! decodebin \
    ! videoconvert ! videoscale ! videorate \
    ! "video/x-raw,width=${WIDTH:-1280},height=${HEIGHT:-720},framerate=${FPS}/1" \
    ! queue max-size-buffers=3 max-size-bytes=0 max-size-time=0 leaky=downstream \
    ! videoconvert \
    ! x264enc tune=zerolatency speed-preset=ultrafast bitrate="${BITRATE:-2000}" key-int-max=$((FPS * 2)) \
    ! video/x-h264,profile=constrained-baseline \
    ! bs.video
