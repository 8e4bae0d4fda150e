// A viewer's direct route: where its media goes (the UDP socket ICE
// selected and the viewer's address) and the SRTP master key DTLS agreed,
// both taken from a connected webrtcbin. With it the fan-out protects and
// sends the viewer's RTP itself, and webrtcbin keeps everything else (ICE
// checks and consent, DTLS, incoming RTCP and keyframe requests).
#pragma once

#include <gst/gst.h>
#include <sys/socket.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "transport/srtpcontext.h"

namespace wb {

class DirectRoute {
 public:
  // nullptr, with the reason in `why`, when webrtcbin cannot give a direct
  // route: DTLS has no key yet, ICE selected a relayed (TURN) candidate, or
  // the agreed profile is one we do not implement. The caller then sends
  // through webrtcbin instead.
  static std::shared_ptr<DirectRoute> open(GstElement *webrtcbin, std::string *why);
  ~DirectRoute();
  DirectRoute(const DirectRoute &) = delete;
  DirectRoute &operator=(const DirectRoute &) = delete;

  // Our own duplicate of the selected socket's descriptor: it stays valid
  // after libnice closes its own, so a send racing a viewer's removal only
  // reaches a viewer who has gone.
  int fd() const { return fd_; }
  const sockaddr_storage &remote() const { return remote_; }
  socklen_t remote_len() const { return remote_len_; }
  SrtpProfile profile() const { return profile_; }
  // Our sending master key (16 bytes) followed by its salt (14).
  const std::vector<uint8_t> &master_key() const { return master_key_; }
  std::string describe() const;

 private:
  DirectRoute() = default;

  int fd_ = -1;
  sockaddr_storage remote_{};
  socklen_t remote_len_ = 0;
  SrtpProfile profile_ = SrtpProfile::Aes128CmSha1_80;
  std::vector<uint8_t> master_key_;
};

}  // namespace wb
