// A thread with its own GMainContext, where an element's signalling work
// happens: the HTTP server, viewer removal, timers. Keeping it off the
// streaming threads and off webrtcbin's threads is what makes it safe to
// set a viewer's webrtcbin to NULL from here.
#pragma once

#include <glib.h>

#include <functional>
#include <thread>

namespace wb {

class ControlLoop {
 public:
  ControlLoop() = default;
  ~ControlLoop();
  ControlLoop(const ControlLoop &) = delete;
  ControlLoop &operator=(const ControlLoop &) = delete;

  void start(const char *thread_name);
  void stop();
  bool running() const { return loop_ != nullptr; }
  bool in_loop_thread() const;
  GMainContext *context() const { return context_; }

  // Runs fn on the loop thread and waits for it (runs inline if already there).
  void invoke_sync(const std::function<void()> &fn);
  void invoke_async(std::function<void()> fn);
  // Calls fn every interval_ms until stop(). Returns the source id.
  guint add_timer(unsigned interval_ms, std::function<void()> fn);

 private:
  GMainContext *context_ = nullptr;
  GMainLoop *loop_ = nullptr;
  std::thread thread_;
};

}  // namespace wb
