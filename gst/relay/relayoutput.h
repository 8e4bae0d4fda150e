// What an upstream (a pull or a WHIP publisher) needs from the relay
// element it feeds: where its RTP pads go, and whether media still flows.
#pragma once

#include <gst/gst.h>

#include <string>
#include <vector>

#include "rtp/rtpcodec.h"

namespace wb {

enum class UpstreamState { Idle, Connecting, Live, Lost };

class RelayOutput {
 public:
  virtual ~RelayOutput() = default;
  virtual GstBin *bin() = 0;
  // An upstream session's RTP source pad (caps carry media=video|audio);
  // called on a webrtcbin thread. False if it cannot be taken (codec).
  virtual bool link(GstPad *pad) = 0;
  // The session negotiated these media: their pads appear now, before any
  // packet, so whatever links downstream (broadcastsink) knows every medium
  // it will get and admits no viewer before all of them flow. The first
  // session's media are the relay's for good: a pad for a medium it lacks
  // ends at once.
  virtual void expect(const std::vector<std::string> &kinds) = 0;
  // Whether `kind` is worth asking upstream for: until the first session
  // settled the media, any.
  virtual bool carries(const std::string &kind) = 0;
  // The session is gone: drop every link to it.
  virtual void unlink_all() = 0;
  // Monotonic µs of the last packet out, 0 if none ever.
  virtual gint64 last_media_us() = 0;
  // The codec the relay's viewers get for `kind` (Unknown: none yet).
  virtual Codec codec(const std::string &kind) = 0;
  // Node ids from the root down to and including this relay.
  virtual void set_path(const std::string &path) = 0;
  virtual void set_state(UpstreamState state, const std::string &detail, const std::string &url) = 0;
};

}  // namespace wb
