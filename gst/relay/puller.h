// Pull mode of a relay: a WHEP client of an upstream node that keeps
// reconnecting, with backoff, for as long as the relay runs. An upstream
// that stops sending media (process killed, network gone) is noticed by
// silence, since nothing tells a WebRTC receiver that its sender died.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "peer/peerconnection.h"
#include "relay/relayoutput.h"

namespace wb {

class HttpClient;

struct PullConfig {
  std::string url;            // the upstream's WHEP endpoint
  std::string token;          // Bearer token for it, if any
  std::string node_id;        // ours, sent as Broadcast-Node
  std::string advertise_url;  // our own WHEP URL, sent as Broadcast-Relay-Url
  std::string tls_ca;         // PEM file of the authorities to trust for https:// (empty: the system's)
  TransportConfig transport;
  unsigned latency_ms = 50;
  std::chrono::milliseconds upstream_timeout{1500};
};

class Puller {
 public:
  Puller(RelayOutput &output, PullConfig config);
  ~Puller();  // stops and ends the upstream session (DELETE)
  Puller(const Puller &) = delete;
  Puller &operator=(const Puller &) = delete;

  unsigned reconnects() const { return reconnects_.load(); }

 private:
  void run();
  // Wait up to `delay`; false if stopping.
  bool sleep(std::chrono::milliseconds delay);
  bool wait_backoff(HttpClient &http, std::chrono::milliseconds delay,
                    const std::map<std::string, std::string> &headers);

  RelayOutput &output_;
  const PullConfig config_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::atomic<unsigned> reconnects_{0};
  std::thread thread_;
};

}  // namespace wb
