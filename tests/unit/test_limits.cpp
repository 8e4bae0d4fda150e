// The policies behind the HTTP limits, with the time given: offers per
// second per address, and the bounded pool that answers offers.
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <mutex>

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
