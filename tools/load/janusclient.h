// Janus's HTTP API as signalling: one Janus session for the whole run, one
// streaming-plugin handle per viewer. Janus offers (watch), we answer
// (start). Events for every handle come back on one long poll (GET
// /janus/<session>), so the number of viewers needs no extra threads.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>

#include "eventloop.h"
#include "signalling.h"

namespace load {

class JanusClient : public Signalling {
 public:
  // `url`: the API root, e.g. http://127.0.0.1:8088/janus
  JanusClient(EventLoop &loop, HttpPool &pool, std::string url, int64_t mount);
  ~JanusClient() override;
  bool start(std::string *error) override;
  void join(Viewer &viewer) override;
  void leave(Viewer &viewer, std::function<void()> done) override;
  void finish() override;

 private:
  void attach_and_watch(SoupSession *session, Viewer &viewer);
  void send_answer(Viewer &viewer, int64_t handle, const std::string &answer);
  void poll();
  void dispatch(const char *event_json);
  void keepalive();
  Viewer *viewer_for(int64_t handle);

  EventLoop &loop_;
  HttpPool &pool_;
  std::string url_;
  int64_t mount_;
  int64_t session_ = 0;
  std::string session_url_;
  std::thread poller_;
  std::atomic<bool> stopping_{false};
  GCancellable *cancel_poll_ = nullptr;
  std::mutex handles_mutex_;
  std::unordered_map<int64_t, Viewer *> handles_;  // live handles only: events for others are ignored
  std::unordered_map<int, int64_t> handle_of_;     // viewer index -> handle (loop thread)
};

}  // namespace load
