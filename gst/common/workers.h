// A fixed set of threads with a bounded queue: for work that may block
// (answering an offer waits on a viewer's transport) but must not cost a
// thread per request. A full queue refuses at once, so a storm of requests
// is answered "busy" instead of piling up threads and memory.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <list>
#include <mutex>
#include <string>
#include <thread>

namespace wb {

class Workers {
 public:
  // Each thread runs `on_start` before its first job.
  Workers(std::string name, unsigned threads, size_t max_queued, std::function<void()> on_start = nullptr);
  // Drops what is still queued (each job's destructor runs, not the job)
  // and joins the threads once the running jobs return.
  ~Workers();
  Workers(const Workers &) = delete;
  Workers &operator=(const Workers &) = delete;

  // False when max_queued jobs are already waiting: the job is not taken.
  bool post(std::function<void()> job);

  // Replaces every thread with a new one: waits up to `wait` for the old
  // ones to exit (one busy with a job exits when the job returns), runs
  // `between`, then starts the new ones. A thread that exits hands back
  // what the C library keeps for it alone: glibc's cache of blocks it freed
  // (up to 7 per size, each pinning a page of the arena a burst of offers
  // grew) and the touched pages of its stack. So `between` is where free
  // memory goes back to the system (docs/soak.md). Returns the old threads
  // that exited within `wait`.
  unsigned renew(std::chrono::milliseconds wait, const std::function<void()> &between);

 private:
  struct Thread {
    std::thread thread;
    unsigned generation;
    bool exited = false;  // mutex_
  };
  void start_locked();
  void run(Thread *self);
  // Joins the threads that have exited, with mutex_ held by `lock`.
  unsigned join_exited(std::unique_lock<std::mutex> &lock);

  const std::string name_;
  const unsigned count_;
  const size_t max_queued_;
  const std::function<void()> on_start_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable exited_;
  std::deque<std::function<void()>> queue_;
  bool stopping_ = false;
  unsigned generation_ = 0;  // a thread of an older generation exits when idle
  std::list<Thread> threads_;  // current and retired; a list keeps each Thread where run() sees it
};

}  // namespace wb
