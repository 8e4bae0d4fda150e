#!/bin/sh
# raspberry-pi.sh - Raspberry Pi (up to Pi 4) hardware H.264 via v4l2h264enc
#
# Platform: Raspberry Pi OS (Bookworm ships GStreamer 1.22). The H.264
#   encoder is the bcm2835-codec V4L2 mem2mem device, exposed by
#   gst-plugins-good as v4l2h264enc. (The Pi 5 has no H.264 encoder block:
#   use desktop-testsrc.sh / usb-camera.sh style x264enc there.)
#
# Source: USB camera via v4l2src (DEVICE, default /dev/video0) ! decodebin.
#   For the Raspberry Pi camera module on the libcamera stack, replace the
#   v4l2src ... decodebin lines with:
#     libcamerasrc ! video/x-raw,width=1280,height=720,framerate=30/1,format=NV12 \
#   (libcamerasrc comes from the gstreamer1.0-libcamera package).
#
# Encoder settings:
#   videoconvert ! video/x-raw,format=I420   the encoder takes I420/NV12 input
#   extra-controls="controls,video_bitrate=<bps>,h264_i_frame_period=30,repeat_sequence_header=1"
#     video_bitrate            bits per second (not kbit/s)
#     h264_i_frame_period=30   a keyframe every 30 frames = 1 s at 30 fps
#     repeat_sequence_header=1 SPS/PPS in front of every keyframe, so a
#                              viewer can start decoding at any keyframe
#   'video/x-h264,level=(string)4'  pin the H.264 level: left open, caps
#                              negotiation can settle on a level too low for
#                              the resolution and the encoder then fails
#                              to start
#
# Keyframes on demand: NOT available with GStreamer 1.22. broadcastsink
#   still sends force-key-unit events upstream, but v4l2h264enc in 1.22
#   ignores them (support for forcing keyframes from those events landed in
#   the 1.23.x development series, i.e. GStreamer 1.24). New viewers and
#   viewers recovering from loss therefore wait for the next periodic IDR:
#   that is why the GOP is kept short (h264_i_frame_period = 1 s worth of
#   frames) and SPS/PPS are repeated. A shorter period means faster joins
#   but more bitrate spent on keyframes.
#
# Audio: none. Add an ALSA microphone as in usb-camera.sh if needed.
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
    ! videoconvert ! video/x-raw,format=I420 \
    ! v4l2h264enc extra-controls="controls,video_bitrate=$(( ${BITRATE:-2000} * 1000 )),h264_i_frame_period=${FPS},repeat_sequence_header=1" \
    ! 'video/x-h264,level=(string)4' \
    ! bs.video
