// One branch's direct sender: protects the branch's RTP with its own SRTP
// context (keys from the viewer's DirectRoute) and sends a batch with one
// sendmmsg on the viewer's ICE socket. Runs on the fan-out's streaming
// thread; each branch has its own context because audio and video are
// delivered by different threads (and each is one SSRC).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "transport/directroute.h"
#include "transport/srtpcontext.h"

namespace wb {

// A payloaded packet of the shared stream, read-only.
struct RtpPacketRef {
  const uint8_t *data;
  size_t size;
  size_t header_len;
};

class SrtpSender {
 public:
  static std::unique_ptr<SrtpSender> create(std::shared_ptr<DirectRoute> route, std::string *why);
  SrtpSender(const SrtpSender &) = delete;
  SrtpSender &operator=(const SrtpSender &) = delete;

  // Sends copies of `packets` rewritten to `payload_type` and `ssrc`. A full
  // socket buffer drops the rest of this batch for this viewer only, like a
  // congested network would. Returns the bytes handed to the kernel.
  size_t send(const RtpPacketRef *packets, size_t count, uint8_t payload_type, uint32_t ssrc);

 private:
  explicit SrtpSender(std::shared_ptr<DirectRoute> route) : route_(std::move(route)) {}

  std::shared_ptr<DirectRoute> route_;
  std::unique_ptr<SrtpContext> srtp_;
};

}  // namespace wb
