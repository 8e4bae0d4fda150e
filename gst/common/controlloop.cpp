#include "controlloop.h"

#include <condition_variable>
#include <mutex>

namespace wb {

namespace {

using Task = std::function<void()>;

gboolean run_task_once(gpointer data) {
  (*static_cast<Task *>(data))();
  return G_SOURCE_REMOVE;
}

gboolean run_task_repeat(gpointer data) {
  (*static_cast<Task *>(data))();
  return G_SOURCE_CONTINUE;
}

void delete_task(gpointer data) { delete static_cast<Task *>(data); }

}  // namespace

ControlLoop::~ControlLoop() { stop(); }

void ControlLoop::start(const char *thread_name) {
  if (loop_) return;
  context_ = g_main_context_new();
  loop_ = g_main_loop_new(context_, FALSE);
  std::mutex m;
  std::condition_variable cv;
  bool started = false;
  thread_ = std::thread([&, name = std::string(thread_name)] {
    pthread_setname_np(pthread_self(), name.substr(0, 15).c_str());
    g_main_context_push_thread_default(context_);
    GMainLoop *loop = g_main_loop_ref(loop_);
    {
      std::lock_guard<std::mutex> lock(m);
      started = true;
      cv.notify_all();
    }
    g_main_loop_run(loop);
    g_main_loop_unref(loop);
    g_main_context_pop_thread_default(context_);
  });
  std::unique_lock<std::mutex> lock(m);
  cv.wait(lock, [&] { return started; });
}

void ControlLoop::stop() {
  if (!loop_) return;
  g_main_loop_quit(loop_);
  if (thread_.joinable()) thread_.join();
  // Sources still attached (timers, pending invocations) die with the context.
  g_main_loop_unref(loop_);
  loop_ = nullptr;
  g_main_context_unref(context_);
  context_ = nullptr;
}

bool ControlLoop::in_loop_thread() const {
  return context_ && g_main_context_is_owner(context_);
}

void ControlLoop::invoke_sync(const std::function<void()> &fn) {
  if (!loop_ || in_loop_thread()) {
    fn();
    return;
  }
  std::mutex m;
  std::condition_variable cv;
  bool done = false;
  invoke_async([&] {
    fn();
    std::lock_guard<std::mutex> lock(m);
    done = true;
    cv.notify_all();
  });
  std::unique_lock<std::mutex> lock(m);
  cv.wait(lock, [&] { return done; });
}

void ControlLoop::invoke_async(std::function<void()> fn) {
  if (!context_) return;
  GSource *source = g_idle_source_new();
  g_source_set_callback(source, run_task_once, new Task(std::move(fn)), delete_task);
  g_source_attach(source, context_);
  g_source_unref(source);
}

guint ControlLoop::add_timer(unsigned interval_ms, std::function<void()> fn) {
  GSource *source = g_timeout_source_new(interval_ms);
  g_source_set_callback(source, run_task_repeat, new Task(std::move(fn)), delete_task);
  guint id = g_source_attach(source, context_);
  g_source_unref(source);
  return id;
}

}  // namespace wb
