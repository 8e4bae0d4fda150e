// The pieces of GET /metrics that a scrape cannot show: where an
// observation on a bound goes, what concurrent recording leaves, and that
// label values from the network (URLs, names) cannot break a line. The
// format itself is read by Prometheus' own tools (integration/test_metrics).
#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "common/histogram.h"
#include "viewer/nodestats.h"

using namespace wb;

TEST(Histogram, AnObservationOnABoundCountsInThatBucketAndEveryBucketIsCumulative) {
  Histogram h({0.01, 0.1, 1});
  for (double v : {0.0, 0.01, 0.05, 0.1, 0.5, 1.0, 7.0}) h.observe(v);
  const HistogramSnapshot s = h.snapshot();
  ASSERT_EQ(s.cumulative.size(), 4u);
  EXPECT_EQ(s.cumulative[0], 2u);  // 0, 0.01
  EXPECT_EQ(s.cumulative[1], 4u);  // and 0.05, 0.1
  EXPECT_EQ(s.cumulative[2], 6u);  // and 0.5, 1
  EXPECT_EQ(s.cumulative[3], 7u);  // and 7 (+Inf)
  EXPECT_EQ(s.count(), 7u);
  EXPECT_NEAR(s.sum, 8.66, 1e-9);
}

TEST(Histogram, ThreadsRecordingAtOnceLoseNothing) {
  Histogram h(buckets::kAnswerSeconds);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&h, t] {
      for (int i = 0; i < 100000; ++i) h.observe(t * 0.5);
    });
  for (auto &t : threads) t.join();
  const HistogramSnapshot s = h.snapshot();
  EXPECT_EQ(s.count(), 400000u);
  EXPECT_DOUBLE_EQ(s.sum, 100000 * (0 + 0.5 + 1.0 + 1.5));
}

TEST(Prometheus, LabelValuesAreEscapedAndEveryFamilyIsDeclaredOnce) {
  NodeStats stats;
  stats.status.path = "root,\"quoted\"\\back\nline";
  stats.upstreams.push_back({"r", "https://up.example/whep?a=\"1\"", "live", 2});
  stats.streams.push_back({"video", FanoutStats{}});
  stats.streams.push_back({"audio", FanoutStats{}});
  const std::string text = node_stats_prometheus(stats);
  EXPECT_NE(text.find(R"(path="root,\"quoted\"\\back\nline")"), std::string::npos) << text;
  EXPECT_NE(text.find(R"(url="https://up.example/whep?a=\"1\"")"), std::string::npos) << text;
  EXPECT_NE(text.find("broadcast_upstream_state{relay=\"r\",state=\"live\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("broadcast_upstream_state{relay=\"r\",state=\"lost\"} 0\n"), std::string::npos);
  // One TYPE line per family however many series it has.
  size_t types = 0;
  for (size_t at = text.find("# TYPE broadcast_stream_sent_bytes_total "); at != std::string::npos;
       at = text.find("# TYPE broadcast_stream_sent_bytes_total ", at + 1))
    ++types;
  EXPECT_EQ(types, 1u);
  // Every reason a session can end is there from the start, at 0.
  EXPECT_NE(text.find("broadcast_sessions_ended_total{reason=\"went-silent\"} 0\n"), std::string::npos);
}
