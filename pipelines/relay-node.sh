#!/bin/sh
# relay-node.sh - a relay in the tree: pulls a broadcast from an upstream
#   node's WHEP endpoint and serves it again, without decoding.
#
# Platform: any (a cloud VM, a second box on the LAN). Viewers watch it at
#   http://<this host>:${PORT:-8081}/ exactly as on the root. CPU is only the
#   per-viewer encryption and sending: the relay never decodes or encodes.
#
# Usage: FROM=http://root-host:8080/whep PUBLIC_URL=http://this-host:8081/whep ./relay-node.sh
#   FROM        upstream WHEP endpoint (the root, another relay, or any WHEP server)
#   PUBLIC_URL  this node's WHEP URL as viewers reach it. The upstream uses it
#               to send new viewers here (HTTP 307) once it is full, so set it
#               to an address the viewers can reach.
#   TOKEN       Bearer token for the upstream, if it wants one
#   MAX_VIEWERS when this relay is full it redirects further down, to its own
#               relays, or answers 503 (default 0 = unlimited)
#
# If the upstream goes away the relay keeps its viewers' sessions and
# reconnects (at once, then backing off from 1 s to 30 s); the viewers see
# video again as soon as the upstream is back. Keyframe requests from this
# relay's viewers travel upstream as RTCP PLI, coalesced at every hop.
GST_PLUGIN_PATH="${GST_PLUGIN_PATH:-$(dirname "$0")/../build/gst}"
export GST_PLUGIN_PATH
: "${FROM:?set FROM to the upstream WHEP URL, e.g. http://root:8080/whep}"
PORT="${PORT:-8081}"

exec gst-launch-1.0 -e \
  relaysrc name=up location="$FROM" token="${TOKEN:-}" \
    advertise-url="${PUBLIC_URL:-http://127.0.0.1:$PORT/whep}" \
  broadcastsink name=bs port="$PORT" max-viewers="${MAX_VIEWERS:-0}" \
  up.video ! queue ! bs.video \
  up.audio ! queue ! bs.audio
