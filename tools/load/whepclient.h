// WHEP signalling: POST our offer (following 307s, and again after a
// refusal's Retry-After), read the answer and the session URL; DELETE the
// session at the end.
#pragma once

#include <string>
#include <unordered_map>

#include "eventloop.h"
#include "signalling.h"

namespace load {

class WhepClient : public Signalling {
 public:
  WhepClient(EventLoop &loop, HttpPool &pool, std::string endpoint);
  bool start(std::string *) override { return true; }  // nothing to set up
  void join(Viewer &viewer) override;
  void leave(Viewer &viewer, std::function<void()> done) override;
  void forget(Viewer &viewer) override;
  void finish() override {}

 private:
  // `again`: after a refusal's Retry-After.
  void post(Viewer &viewer, const std::string &offer, bool again);

  EventLoop &loop_;
  HttpPool &pool_;
  std::string endpoint_;
  std::unordered_map<int, std::string> sessions_;  // viewer index -> session URL (loop thread)
};

}  // namespace load
