# The benchmarks' shared test stream, sourced by run-benchmarks.sh and
# profile-fanout.sh so that every measurement serves the same input:
# 640x360 30 fps H.264 ~800 kbps (2 s GOP) on UDP 5004 and Opus on 5006,
# RTP over loopback, from an encoder process of its own on core 1.

# The picture and its encoding, also used where the encoder runs inside the
# server's pipeline (run-benchmarks.sh's keyframe step), so both encode alike.
VIDEO_SOURCE=(videotestsrc is-live=true pattern=smpte ! video/x-raw,width=640,height=360,framerate=30/1
  ! x264enc tune=zerolatency speed-preset=ultrafast bitrate=800 key-int-max=60
  ! video/x-h264,profile=constrained-baseline)

# Starts the encoder in the background, logging to $1; sets SOURCE_PID.
# Always audio and video: a video-only server simply does not read 5006, so
# every server in a run gets the same input. STREAM_LAYERS=1: two more
# layers of the same picture, 320x180 at 300 kbps on 5008 and 160x90 at 100
# on 5010, for servers with layers; the others do not read them, so every
# server in such a run gets the same input too.
start_stream() {
  local layers=()
  [ "${STREAM_LAYERS:-0}" = 1 ] && layers=(
    t. ! queue ! videoscale ! video/x-raw,width=320,height=180 ! x264enc tune=zerolatency speed-preset=ultrafast
    bitrate=300 key-int-max=60 ! video/x-h264,profile=constrained-baseline ! rtph264pay pt=96 config-interval=-1
    mtu=1200 ! udpsink host=127.0.0.1 port=5008
    t. ! queue ! videoscale ! video/x-raw,width=160,height=90 ! x264enc tune=zerolatency speed-preset=ultrafast
    bitrate=100 key-int-max=60 ! video/x-h264,profile=constrained-baseline ! rtph264pay pt=96 config-interval=-1
    mtu=1200 ! udpsink host=127.0.0.1 port=5010)
  local video=("${VIDEO_SOURCE[@]}")
  [ ${#layers[@]} -gt 0 ] && video=("${VIDEO_SOURCE[@]:0:5}" ! tee name=t t. ! queue ! "${VIDEO_SOURCE[@]:6}")
  taskset -c 1 gst-launch-1.0 -q \
    "${video[@]}" ! rtph264pay pt=96 config-interval=-1 mtu=1200 \
    ! udpsink host=127.0.0.1 port=5004 "${layers[@]}" \
    audiotestsrc is-live=true ! audioconvert ! audioresample ! opusenc ! rtpopuspay pt=111 \
    ! udpsink host=127.0.0.1 port=5006 >"$1" 2>&1 &
  SOURCE_PID=$!
}

# Sets OURS_LAUNCH to the gst-launch-1.0 arguments of a broadcastsink serving
# that stream on HTTP port $1, audio and video ($2 = av) or video only ($2 =
# video: no audio pad at all), extra broadcastsink properties after them.
ours_launch() {
  local port=$1 media=$2
  shift 2
  OURS_LAUNCH=(
    udpsrc port=5004 'caps=application/x-rtp,media=video,encoding-name=H264,clock-rate=90000,payload=96'
    ! queue ! bs.video)
  # LAYERS=1: the two further layers of STREAM_LAYERS on video_1 and video_2.
  [ "${LAYERS:-0}" = 1 ] && OURS_LAUNCH+=(
    udpsrc port=5008 'caps=application/x-rtp,media=video,encoding-name=H264,clock-rate=90000,payload=96'
    ! queue ! bs.video_1
    udpsrc port=5010 'caps=application/x-rtp,media=video,encoding-name=H264,clock-rate=90000,payload=96'
    ! queue ! bs.video_2)
  [ "$media" = video ] || OURS_LAUNCH+=(
    udpsrc port=5006 'caps=application/x-rtp,media=audio,encoding-name=OPUS,clock-rate=48000,payload=111'
    ! queue ! bs.audio)
  # Every generator viewer comes from 127.0.0.1: the per-address offer rate
  # and the pending cap, meant for strangers, are off.
  OURS_LAUNCH+=(broadcastsink name=bs port="$port" address=127.0.0.1 ice-address=127.0.0.1
    offers-per-second=0 max-pending-viewers=0 "$@")
}
