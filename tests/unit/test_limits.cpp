// The policies behind the HTTP limits, with the time given: offers per
// second per address, and the bounded pool that answers offers.
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>

#include "common/memoryreturn.h"
#include "common/workers.h"
#include "signalling/ratelimit.h"

using namespace wb;

TEST(RateLimit, ABurstThenTheSustainedRatePerAddress) {
  RateLimit limit(2, 4);
  unsigned retry = 0;
  const int64_t t0 = 1000000;
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(limit.allow("192.0.2.1", t0, &retry)) << i;
  EXPECT_FALSE(limit.allow("192.0.2.1", t0, &retry));
  EXPECT_EQ(retry, 1u);
  // Another address has its own bucket.
  EXPECT_TRUE(limit.allow("192.0.2.2", t0, &retry));
  // Half a second later one token is back, not two.
  EXPECT_TRUE(limit.allow("192.0.2.1", t0 + 500000, &retry));
  EXPECT_FALSE(limit.allow("192.0.2.1", t0 + 500000, &retry));
  // A long silence refills only up to the burst.
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(limit.allow("192.0.2.1", t0 + 60000000, &retry)) << i;
  EXPECT_FALSE(limit.allow("192.0.2.1", t0 + 60000000, &retry));
}

TEST(RateLimit, ZeroMeansNoLimit) {
  RateLimit limit(0, 0);
  for (int i = 0; i < 1000; ++i) EXPECT_TRUE(limit.allow("192.0.2.1", 0, nullptr));
  EXPECT_EQ(limit.tracked(), 0u);
}

TEST(RateLimit, MemoryStaysBoundedUnderAFloodFromManyAddresses) {
  RateLimit limit(1, 2);
  for (size_t i = 0; i < 3 * RateLimit::kMaxTracked; ++i)
    limit.allow("addr" + std::to_string(i), int64_t(i), nullptr);  // all busy: none refilled yet
  EXPECT_LE(limit.tracked(), RateLimit::kMaxTracked);
}

TEST(Workers, AFullQueueRefusesInsteadOfGrowing) {
  std::mutex mutex;
  std::condition_variable cv;
  bool release = false;
  unsigned started = 0;
  std::atomic<unsigned> finished{0};
  auto blocking = [&] {
    std::unique_lock<std::mutex> lock(mutex);
    ++started;
    cv.notify_all();
    cv.wait(lock, [&] { return release; });
    ++finished;
  };
  {
    Workers workers("test", 2, 3);
    ASSERT_TRUE(workers.post(blocking));
    ASSERT_TRUE(workers.post(blocking));
    {
      std::unique_lock<std::mutex> lock(mutex);
      ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(5), [&] { return started == 2; }));
    }
    // Both threads busy: three wait, the fourth is refused.
    for (int i = 0; i < 3; ++i) EXPECT_TRUE(workers.post(blocking)) << i;
    EXPECT_FALSE(workers.post(blocking));
    {
      std::lock_guard<std::mutex> lock(mutex);
      release = true;
    }
    cv.notify_all();
  }  // joins: the running jobs finish; the waiting ones are dropped or run
  EXPECT_GE(finished.load(), 2u);
}

TEST(Workers, RenewReplacesIdleThreadsAndLetsABusyOneFinishItsJob) {
  std::mutex mutex;
  std::condition_variable cv;
  bool release = false;
  bool blocked_started = false;
  std::set<std::thread::id> before, after;
  std::atomic<unsigned> after_count{0};
  std::atomic<unsigned> starts{0};
  // Declared after `workers`: runs first, so that a failed assertion does
  // not leave the pool's destructor joining a thread that never returns.
  struct Release {
    std::mutex &mutex;
    std::condition_variable &cv;
    bool &release;
    ~Release() {
      {
        std::lock_guard<std::mutex> lock(mutex);
        release = true;
      }
      cv.notify_all();
    }
  };
  Workers workers("test", 2, 32, [&] { ++starts; });
  Release release_on_exit{mutex, cv, release};
  // One thread stays busy through the renewal; the other is idle.
  ASSERT_TRUE(workers.post([&] {
    std::unique_lock<std::mutex> lock(mutex);
    before.insert(std::this_thread::get_id());
    blocked_started = true;
    cv.notify_all();
    cv.wait(lock, [&] { return release; });
  }));
  {
    std::unique_lock<std::mutex> lock(mutex);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(5), [&] { return blocked_started; }));
  }
  // The idle old thread exits within the wait; the busy one cannot.
  // `between` runs once, after the wait, before any new thread starts.
  unsigned betweens = 0;
  EXPECT_EQ(workers.renew(std::chrono::milliseconds(300), [&] { ++betweens; }), 1u);
  EXPECT_EQ(betweens, 1u);
  // New jobs run on the new threads, never on the busy old one.
  for (int i = 0; i < 20; ++i)
    ASSERT_TRUE(workers.post([&] {
      std::lock_guard<std::mutex> lock(mutex);
      after.insert(std::this_thread::get_id());
      ++after_count;
      cv.notify_all();
    }));
  {
    std::unique_lock<std::mutex> lock(mutex);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(5), [&] { return after_count == 20; }));
    for (const auto &id : after) EXPECT_EQ(before.count(id), 0u);
    release = true;
  }
  cv.notify_all();
  // Two threads started at construction, two at the renewal.
  for (auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
       starts < 4 && std::chrono::steady_clock::now() < deadline;)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  EXPECT_EQ(starts.load(), 4u);
  // The busy thread exits once its job returns: the next renewal joins it
  // with the two current ones.
  EXPECT_EQ(workers.renew(std::chrono::seconds(5), nullptr), 3u);
}

TEST(MemoryReturnPolicy, ReturnsMemoryOnceABurstHasDrainedAndSettled) {
  wb::MemoryReturnPolicy policy(256);
  std::vector<int> trims;
  // 20 viewers, a burst to 1,520, draining over three ticks, then still.
  const size_t ticks[] = {20, 20, 1520, 1520, 1000, 400, 20, 20, 20, 20};
  for (size_t i = 0; i < std::size(ticks); ++i)
    if (policy.on_tick(ticks[i])) trims.push_back(int(i));
  EXPECT_EQ(trims, std::vector<int>({7}));  // once, when 20 held for a tick
}

TEST(MemoryReturnPolicy, SmallDeparturesAndGrowthNeverTrim) {
  wb::MemoryReturnPolicy policy(256);
  size_t sessions = 500;
  for (int i = 0; i < 100; ++i) {
    sessions = i % 2 ? sessions - 200 : sessions + 210;  // churn, drifting up
    EXPECT_FALSE(policy.on_tick(sessions)) << i;
    EXPECT_FALSE(policy.on_tick(sessions)) << i;
  }
}

TEST(MemoryReturnPolicy, ADrainThatPausesTrimsAtEachPauseOfAtLeastTheDrop) {
  wb::MemoryReturnPolicy policy(256);
  std::vector<int> trims;
  const size_t ticks[] = {1000, 700, 700, 600, 600, 300, 300};
  for (size_t i = 0; i < std::size(ticks); ++i)
    if (policy.on_tick(ticks[i])) trims.push_back(int(i));
  EXPECT_EQ(trims, std::vector<int>({2, 6}));  // 1000 -> 700, then 700 -> 300 (600 was only 100 down)
}
