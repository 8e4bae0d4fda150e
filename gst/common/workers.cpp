#include "workers.h"

#include <pthread.h>

#include <algorithm>

namespace wb {

Workers::Workers(std::string name, unsigned threads, size_t max_queued, std::function<void()> on_start)
    : name_(name.substr(0, 15)), count_(threads), max_queued_(max_queued), on_start_(std::move(on_start)) {
  std::lock_guard<std::mutex> lock(mutex_);
  start_locked();
}

Workers::~Workers() {
  std::deque<std::function<void()>> dropped;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
    dropped.swap(queue_);
  }
  wake_.notify_all();
  dropped.clear();
  for (auto &t : threads_) t.thread.join();
}

void Workers::start_locked() {
  for (unsigned i = 0; i < count_; ++i) {
    Thread &t = threads_.emplace_back();
    t.generation = generation_;
    t.thread = std::thread([this, &t] { run(&t); });
  }
}

bool Workers::post(std::function<void()> job) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_ || queue_.size() >= max_queued_) return false;
    queue_.push_back(std::move(job));
  }
  wake_.notify_one();
  return true;
}

unsigned Workers::renew(std::chrono::milliseconds wait, const std::function<void()> &between) {
  std::unique_lock<std::mutex> lock(mutex_);
  if (stopping_) return 0;
  ++generation_;
  wake_.notify_all();
  exited_.wait_for(lock, wait, [&] {
    return std::none_of(threads_.begin(), threads_.end(), [](const Thread &t) { return !t.exited; });
  });
  const unsigned exited = join_exited(lock);
  lock.unlock();
  if (between) between();
  lock.lock();
  // Jobs posted meanwhile waited in the queue for these.
  if (!stopping_) start_locked();
  return exited;
}

unsigned Workers::join_exited(std::unique_lock<std::mutex> &lock) {
  std::list<Thread> done;
  for (auto it = threads_.begin(); it != threads_.end();) {
    auto next = std::next(it);
    if (it->exited) done.splice(done.end(), threads_, it);
    it = next;
  }
  lock.unlock();
  // Joining waits for the exit itself, where glibc hands the thread's
  // cache back; each of these has left run() already.
  for (auto &t : done) t.thread.join();
  lock.lock();
  return unsigned(done.size());
}

void Workers::run(Thread *self) {
  pthread_setname_np(pthread_self(), name_.c_str());
  if (on_start_) on_start_();
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    wake_.wait(lock, [&] { return stopping_ || self->generation != generation_ || !queue_.empty(); });
    if (stopping_ || self->generation != generation_) break;
    std::function<void()> job = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    job();
    job = nullptr;  // its captures go now, outside the lock
    lock.lock();
  }
  self->exited = true;
  exited_.notify_all();
}

}  // namespace wb
