// relaysrc: a source bin that brings a broadcast in from elsewhere, as RTP
// ready for broadcastsink/viewermanager (no depayloading, no decoding):
// pulled from an upstream WHEP node, or taken from a WHIP publisher.
#pragma once

#include <gst/gst.h>

G_BEGIN_DECLS
#define GST_TYPE_RELAY_SRC (gst_relay_src_get_type())
G_DECLARE_FINAL_TYPE(GstRelaySrc, gst_relay_src, GST, RELAY_SRC, GstBin)
G_END_DECLS
