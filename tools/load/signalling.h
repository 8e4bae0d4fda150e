// Signalling runs off the media thread: a small fixed pool of threads, each
// with its own SoupSession making blocking HTTP calls, and results handed
// back to the event loop. A Signalling is how viewers get their sessions
// (WHEP, or Janus's HTTP API).
#pragma once

#include <libsoup/soup.h>

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace load {

class Viewer;

class HttpPool {
 public:
  using Job = std::function<void(SoupSession *)>;
  HttpPool(unsigned threads, unsigned timeout_seconds);
  ~HttpPool() { stop(); }
  void submit(Job job);
  // Drops what is still queued (requests the run has given up on), waits
  // for those in flight. Jobs refer to the signalling and the viewers: stop
  // the pool while those still live.
  void stop();

 private:
  void work(unsigned timeout_seconds);
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Job> jobs_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

struct HttpReply {
  int status = 0;  // 0: no answer (the error says why)
  std::string body;
  std::string location;  // absolute, resolved against the request URL
  unsigned retry_after_s = 0;  // Retry-After in seconds, 0 if absent or a date
  std::string error;
  std::string describe() const;  // "503: <body>" for messages
};

// One blocking request. Redirects are not followed: WHEP clients re-POST
// their offer themselves. `cancel` lets another thread end a long poll.
HttpReply http_send(SoupSession *session, const std::string &method, const std::string &url,
                    const std::string &content_type = "", const std::string &body = "",
                    GCancellable *cancel = nullptr);

class Signalling {
 public:
  virtual ~Signalling() = default;
  // Before the first join, blocking.
  virtual bool start(std::string *error) = 0;
  // Loop thread. Gets `viewer` negotiated and its ICE started (or failed),
  // later, on the loop thread.
  virtual void join(Viewer &viewer) = 0;
  // Loop thread. Ends the viewer's session at the server, then runs `done`
  // on the loop thread.
  virtual void leave(Viewer &viewer, std::function<void()> done) = 0;
  // Loop thread. The viewer vanished: never end its session, forget it.
  virtual void forget(Viewer &) {}
  // After every leave is done, blocking.
  virtual void finish() = 0;
};

}  // namespace load
