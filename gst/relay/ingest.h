// Ingest mode of a relay: a WHIP endpoint (RFC 9725) for one publisher at a
// time (a browser, OBS, FFmpeg, a GStreamer WHIP client). A second publisher
// while one is live gets 409; a publisher that leaves or goes silent is
// handled like an upstream loss: the viewers keep their sessions and see
// the next publisher.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <string>

#include "common/controlloop.h"
#include "peer/peerconnection.h"
#include "relay/relayoutput.h"
#include "signalling/server.h"

namespace wb {

class UpstreamSession;

struct IngestConfig {
  std::string address = "0.0.0.0";
  unsigned port = 0;
  std::string token;
  TlsFiles tls;  // HTTPS when set
  std::string node_id;
  TransportConfig transport;
  unsigned latency_ms = 50;
  std::chrono::milliseconds upstream_timeout{1500};
};

class Ingest : public SessionHandler {
 public:
  Ingest(RelayOutput &output, IngestConfig config);
  ~Ingest() override;

  // Starts the WHIP server on its own control thread.
  bool start(std::string *error);
  void stop();

  Join join(const JoinRequest &request) override;
  Leave leave(const std::string &session_id, const std::string &authorization) override;

 private:
  struct Publisher;
  // Drops a publisher that failed or went silent; runs on the loop.
  void watch();
  void end_publisher(const std::string &reason);

  RelayOutput &output_;
  const IngestConfig config_;
  ControlLoop loop_;
  std::unique_ptr<SignallingServer> server_;
  std::mutex mutex_;
  std::shared_ptr<Publisher> publisher_;
  unsigned sessions_ = 0;
};

}  // namespace wb
