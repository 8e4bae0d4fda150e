// The WHIP client side of a broadcast: pushes the one payloaded stream to a
// WHIP endpoint (our relay in ingest mode, or any SFU/CDN that speaks WHIP),
// so a broadcaster with a weak uplink sends it once. The push is one more
// subscriber of each fan-out, like a viewer, but we make the offer. It
// reconnects with backoff for as long as the broadcast runs.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "fanout/fanout.h"
#include "peer/peerconnection.h"

namespace wb {

struct PushConfig {
  std::string url;
  std::string token;
  std::string tls_ca;  // PEM file of the authorities to trust for https:// (empty: the system's)
  TransportConfig transport;
};

class Pusher {
 public:
  struct Inputs {
    WbFanout *video = nullptr;
    WbFanout *audio = nullptr;
  };
  enum class State { Idle, Connecting, Live, Lost };
  using StateListener = std::function<void(State, const std::string &detail)>;

  Pusher(GstBin *bin, std::function<Inputs()> inputs, PushConfig config, StateListener on_state);
  ~Pusher();  // stops and ends the session (DELETE)
  Pusher(const Pusher &) = delete;
  Pusher &operator=(const Pusher &) = delete;

  static const char *state_name(State state);

 private:
  void run();
  bool sleep(std::chrono::milliseconds delay);
  bool stopping();

  GstBin *bin_;
  std::function<Inputs()> inputs_;
  const PushConfig config_;
  StateListener on_state_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace wb
