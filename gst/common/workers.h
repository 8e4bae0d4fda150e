// A fixed set of threads with a bounded queue: for work that may block
// (answering an offer waits on a viewer's transport) but must not cost a
// thread per request. A full queue refuses at once, so a storm of requests
// is answered "busy" instead of piling up threads and memory.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace wb {

class Workers {
 public:
  Workers(std::string name, unsigned threads, size_t max_queued);
  // Drops what is still queued (each job's destructor runs, not the job)
  // and joins the threads once the running jobs return.
  ~Workers();
  Workers(const Workers &) = delete;
  Workers &operator=(const Workers &) = delete;

  // False when max_queued jobs are already waiting: the job is not taken.
  bool post(std::function<void()> job);

 private:
  void run();

  const size_t max_queued_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::function<void()>> queue_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace wb
