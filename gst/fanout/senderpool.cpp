#include "senderpool.h"

#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>

#include "common/debug.h"
#include "transport/srtpsender.h"
#define GST_CAT_DEFAULT wb_viewer_debug

namespace wb {

unsigned SenderPool::available_cores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0) return 1;
  int n = CPU_COUNT(&set);
  return n > 0 ? unsigned(n) : 1;
}

SenderPool::SenderPool(unsigned shards) {
  if (shards == 0) shards = 1;
  for (unsigned i = 0; i < shards; ++i) shards_.push_back(std::make_unique<Shard>());
  for (unsigned i = 0; i < shards; ++i) {
    Shard *shard = shards_[i].get();
    shard->thread = std::thread([this, shard, i] { run(*shard, i); });
  }
  GST_INFO("sender pool: %u shard(s)", shards);
}

SenderPool::~SenderPool() {
  for (auto &shard : shards_) {
    {
      std::lock_guard<std::mutex> lock(shard->mutex);
      shard->stopping = true;
    }
    shard->wake.notify_one();
  }
  for (auto &shard : shards_) {
    shard->thread.join();
    shard->jobs.clear();
    for (int fd : shard->own_fds) ::close(fd);
  }
}

unsigned SenderPool::assign() {
  unsigned best = 0;
  for (unsigned i = 1; i < shards_.size(); ++i)
    if (shards_[i]->subscriptions.load() < shards_[best]->subscriptions.load()) best = i;
  shards_[best]->subscriptions.fetch_add(1);
  return best;
}

void SenderPool::release(unsigned shard) {
  if (shard < shards_.size()) shards_[shard]->subscriptions.fetch_sub(1);
}

void SenderPool::post(unsigned index, std::function<void()> job, bool media) {
  Shard &shard = *shards_.at(index);
  std::function<void()> dropped;  // destroyed outside the lock
  {
    std::lock_guard<std::mutex> lock(shard.mutex);
    if (shard.stopping) return;
    if (media && shard.media_waiting.load(std::memory_order_relaxed) >= kMaxBacklog) {
      for (auto it = shard.jobs.begin(); it != shard.jobs.end(); ++it) {
        if (!it->media) continue;
        dropped = std::move(it->run);
        shard.jobs.erase(it);
        shard.media_waiting.fetch_sub(1, std::memory_order_relaxed);
        shard.dropped.fetch_add(1, std::memory_order_relaxed);
        break;
      }
    }
    shard.jobs.push_back({std::move(job), media});
    if (media) shard.media_waiting.fetch_add(1, std::memory_order_relaxed);
  }
  shard.wake.notify_one();
}

void SenderPool::run(Shard &shard, unsigned index) {
  char name[16];
  snprintf(name, sizeof name, "wb-send-%u", index);
  pthread_setname_np(pthread_self(), name);
  for (;;) {
    Job job;
    {
      std::unique_lock<std::mutex> lock(shard.mutex);
      shard.wake.wait(lock, [&] { return shard.stopping || !shard.jobs.empty(); });
      if (shard.stopping) return;
      job = std::move(shard.jobs.front());
      shard.jobs.pop_front();
      if (job.media) shard.media_waiting.fetch_sub(1, std::memory_order_relaxed);
    }
    job.run();
    if (job.media) shard.batches.fetch_add(1, std::memory_order_relaxed);
  }
}

bool SenderPool::send_from_own_sockets(int fd, std::string *why) {
  sockaddr_storage local{};
  socklen_t len = sizeof local;
  if (getsockname(fd, reinterpret_cast<sockaddr *>(&local), &len) != 0) {
    *why = std::string("getsockname: ") + g_strerror(errno);
    return false;
  }
  int buffer = 0;
  socklen_t buffer_len = sizeof buffer;
  getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buffer, &buffer_len);
  buffer /= 2;  // Linux reports twice what was set
  for (unsigned i = 0; i < shards_.size(); ++i) {
    int own = socket(local.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    const int one = 1;
    if (own < 0 || setsockopt(own, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0 ||
        bind(own, reinterpret_cast<sockaddr *>(&local), len) != 0) {
      *why = std::string("a sender's socket on the port: ") + g_strerror(errno);
      if (own >= 0) ::close(own);
      return false;
    }
    if (setsockopt(own, SOL_SOCKET, SO_SNDBUFFORCE, &buffer, sizeof buffer) != 0)
      setsockopt(own, SOL_SOCKET, SO_SNDBUF, &buffer, sizeof buffer);
    shards_[i]->own_fds.push_back(own);
    post(i, [fd, own] { SendBatch::for_this_thread().send_from(fd, own); });
  }
  return true;
}

size_t SenderPool::backlog() const {
  size_t most = 0;
  for (const auto &shard : shards_) most = std::max(most, shard->media_waiting.load(std::memory_order_relaxed));
  return most;
}

SenderPool::ShardStats SenderPool::stats(unsigned index) const {
  const Shard &shard = *shards_.at(index);
  ShardStats s;
  s.subscriptions = shard.subscriptions.load();
  s.batches = shard.batches.load();
  s.batches_dropped = shard.dropped.load();
  clockid_t clock;
  timespec used{};
  if (pthread_getcpuclockid(const_cast<std::thread &>(shard.thread).native_handle(), &clock) == 0 &&
      clock_gettime(clock, &used) == 0)
    s.cpu_seconds = double(used.tv_sec) + used.tv_nsec / 1e9;
  return s;
}

}  // namespace wb
