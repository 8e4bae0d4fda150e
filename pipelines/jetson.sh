#!/bin/sh
# jetson.sh - NVIDIA Jetson hardware H.264 via nvv4l2h264enc
#
# Platform: Jetson (Nano/TX2/Xavier/Orin with an NVENC block) on L4T /
#   JetPack, using NVIDIA's GStreamer elements (nvarguscamerasrc, nvvidconv,
#   nvv4l2h264enc). Orin Nano has no hardware encoder: use x264enc there.
#   The webrtcbroadcast plugin must be built against the GStreamer that the
#   board's NVIDIA plugins use.
#
# Source: CSI camera via nvarguscamerasrc (SENSOR_ID, default 0), which
#   already delivers NV12 in NVMM (GPU) memory. For a USB camera, replace the
#   nvarguscamerasrc line with:
#     v4l2src device=/dev/video0 ! decodebin ! videoconvert ! videoscale ! videorate ! video/x-raw,width=1280,height=720,framerate=30/1 \
#   (nvvidconv below then copies the frames into NVMM memory).
#
# Encoder settings: nvvidconv ! 'video/x-raw(memory:NVMM),format=NV12' !
#   nvv4l2h264enc
#     bitrate=<bps>          bits per second, control-rate=1 (constant bitrate)
#     profile=0              Baseline, decodable by every browser
#     insert-sps-pps=1       SPS/PPS in front of every IDR
#     idrinterval=30         an IDR every 30 frames = 1 s at 30 fps
#     iframeinterval=30      I-frame interval to match
#     maxperf-enable=1       keep the encoder clocks up (lowest latency)
#     preset-level=1         UltraFastPreset
#
# Keyframes on demand: nvv4l2h264enc offers a "force-IDR" action signal
#   (g_signal_emit_by_name (enc, "force-IDR")). broadcastsink asks for
#   keyframes by sending force-key-unit events upstream; nvv4l2h264enc is a
#   GstVideoEncoder, so its base class accepts the event and flags the next
#   frame, but the NVIDIA encoder sources we checked (L4T R32.x gst-v4l2 and
#   a later DeepStream-era version) do not turn that flag into a hardware IDR.
#   Verify on your release: grep gstv4l2videoenc.c in the L4T public sources
#   for GST_VIDEO_CODEC_FRAME_IS_FORCE_KEYFRAME. gst-launch-1.0 cannot emit
#   signals, so this script relies on the short idrinterval (1 s) plus
#   insert-sps-pps. Applications can bridge the two: a
#   GST_PAD_PROBE_TYPE_EVENT_UPSTREAM probe on the encoder's src pad that
#   emits "force-IDR" when it sees a GstForceKeyUnit event. gst-broadcast
#   (tools/gst-broadcast.cpp) does exactly that.
#
# Audio: none. Add an ALSA microphone as in usb-camera.sh if needed.
#
# Environment: SENSOR_ID, WIDTH, HEIGHT, FPS, BITRATE (kbit/s), PORT,
#   GST_PLUGIN_PATH (default ../build/gst).
GST_PLUGIN_PATH="${GST_PLUGIN_PATH:-$(dirname "$0")/../build/gst}"
export GST_PLUGIN_PATH
FPS="${FPS:-30}"

exec gst-launch-1.0 -e \
  broadcastsink name=bs port="${PORT:-8080}" \
  nvarguscamerasrc sensor-id="${SENSOR_ID:-0}" \
    ! "video/x-raw(memory:NVMM),width=${WIDTH:-1280},height=${HEIGHT:-720},framerate=${FPS}/1,format=NV12" \
    ! nvvidconv \
    ! 'video/x-raw(memory:NVMM),format=NV12' \
    ! nvv4l2h264enc bitrate=$(( ${BITRATE:-2000} * 1000 )) control-rate=1 profile=0 \
        insert-sps-pps=1 idrinterval="${FPS}" iframeinterval="${FPS}" maxperf-enable=1 preset-level=1 \
    ! video/x-h264,stream-format=byte-stream \
    ! bs.video
