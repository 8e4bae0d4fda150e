// The threads that protect and send viewers' media: a fixed pool of sender
// shards. Each fan-out hands every packet batch to each shard that has
// viewers of its stream, once (O(shards) per batch, not O(viewers)); a
// shard then gates, rewrites, protects and sends for its own viewers only.
// A shard owns its thread, its send batch and its own socket on each of the
// ICE-lite port's addresses (the same port number: one port for firewalls),
// so shards share no lock, cache line or socket buffer on the way out, and a
// shard that falls behind drops its own batches, not anyone else's.
//
// Work reaches a shard as jobs run in order on its thread: a viewer joins
// or leaves its shard with a job too, so the shard's list of viewers is
// only ever touched by that thread and a join costs O(1), not a copy of the
// audience.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace wb {

class SenderPool {
 public:
  // Media batches a shard may have waiting; beyond, the oldest are dropped
  // (for that shard's viewers only). About 2 s of 30 fps video with audio.
  static constexpr size_t kMaxBacklog = 128;

  struct ShardStats {
    unsigned subscriptions = 0;     // viewers' streams served by the shard
    uint64_t batches = 0;           // media batches run
    uint64_t batches_dropped = 0;   // media batches dropped as the shard was behind
    double cpu_seconds = 0;         // the shard's thread's, since it started
  };

  // The threads this process may run on (its CPU affinity): the default
  // number of shards.
  static unsigned available_cores();

  explicit SenderPool(unsigned shards);
  // Drops waiting jobs (their destructors run, not the jobs) and joins.
  ~SenderPool();
  SenderPool(const SenderPool &) = delete;
  SenderPool &operator=(const SenderPool &) = delete;

  unsigned size() const { return unsigned(shards_.size()); }
  // The shard for a new subscription: the one with the fewest. release()
  // it when the subscription ends.
  unsigned assign();
  void release(unsigned shard);

  // Runs `job` on the shard's thread after every job posted to it before.
  // A `media` job is dropped (the oldest first) when the shard already has
  // kMaxBacklog media jobs waiting; other jobs (joins, leaves) never are.
  void post(unsigned shard, std::function<void()> job, bool media = false);

  // Makes every shard send what is addressed to `fd` (a bound UDP socket
  // with SO_REUSEPORT, such as the ICE-lite port's) from a socket of its
  // own bound to the same address and port. Call before any viewer joins.
  // False (with `why`) when a shard's socket cannot be bound: shards then
  // send on `fd` itself, which still works.
  bool send_from_own_sockets(int fd, std::string *why);

  ShardStats stats(unsigned shard) const;
  // The most media jobs any shard has waiting now (kMaxBacklog when one
  // drops batches).
  size_t backlog() const;

 private:
  struct Job {
    std::function<void()> run;
    bool media;
  };
  struct alignas(64) Shard {
    std::mutex mutex;
    std::condition_variable wake;
    std::deque<Job> jobs;
    std::atomic<size_t> media_waiting{0};  // changed under `mutex`; read by backlog() without it
    bool stopping = false;
    std::atomic<unsigned> subscriptions{0};
    std::atomic<uint64_t> batches{0};
    std::atomic<uint64_t> dropped{0};
    std::vector<int> own_fds;  // closed after the thread is joined
    std::thread thread;
  };
  void run(Shard &shard, unsigned index);

  std::vector<std::unique_ptr<Shard>> shards_;
};

}  // namespace wb
