// What a viewermanager starts and stops with its state, apart from the
// element's own surface (properties, pads, signals): the control loop, the
// audience and its reaper, the WHEP server and the WHIP pusher.
#pragma once

#include <gst/gst.h>

#include <memory>
#include <string>

#include "common/controlloop.h"
#include "common/memoryreturn.h"
#include "push/pusher.h"
#include "signalling/server.h"
#include "signalling/tls.h"
#include "viewer/audience.h"

namespace wb {

// Whether a broadcast is live, from its packet count read now and then:
// live while packets keep arriving, no longer once none came for a while.
class ActivityWatch {
 public:
  static constexpr gint64 kQuietUs = 2 * G_USEC_PER_SEC;
  bool update(uint64_t packets_in, gint64 now_us) {
    if (packets_in != last_packets_) {
      last_packets_ = packets_in;
      last_change_us_ = now_us;
    }
    return last_change_us_ && now_us - last_change_us_ < kQuietUs;
  }

 private:
  uint64_t last_packets_ = 0;
  gint64 last_change_us_ = 0;
};

struct NodeSettings {
  guint port = 0;  // 0: no WHEP server
  std::string address;
  std::string push_url;  // empty: no push
  std::string push_token;
  std::string viewer_token;
  std::string metrics_path = "/metrics";  // empty: no metrics
  std::string metrics_token;              // empty: none asked
  TlsFiles tls;        // the WHEP server's
  std::string tls_ca;  // for push-url and relay children
  HttpLimits http;
};

class Node {
 public:
  Node(GstBin *bin, Audience::Callbacks callbacks);
  ~Node();
  Node(const Node &) = delete;
  Node &operator=(const Node &) = delete;

  Audience &audience() { return *audience_; }
  const Audience &audience() const { return *audience_; }
  ControlLoop &loop() { return loop_; }

  // False, with a short `what` and the details in `error`, when a setting
  // cannot be used (tls-ca unreadable, the server's port taken...).
  bool start(const NodeSettings &settings, std::function<Pusher::Inputs()> push_inputs,
             Pusher::StateListener on_push_state, std::string *what, std::string *error);
  // Ends the push, the server and every session. Idempotent.
  void stop();

 private:
  // Once a burst of viewers has gone: the offer workers' caches, then every
  // free page, back to the system.
  void return_memory(size_t sessions_left);
  // The WHEP events: whether media flows, and the viewer count.
  void update_events();

  GstBin *bin_;
  ControlLoop loop_;
  MemoryReturnPolicy memory_return_;  // loop_'s thread only
  ActivityWatch activity_;             // loop_'s thread only
  std::unique_ptr<Audience> audience_;    // runs on loop_
  std::unique_ptr<SignallingServer> server_;  // loop_'s thread only
  std::unique_ptr<Pusher> pusher_;
};

}  // namespace wb
