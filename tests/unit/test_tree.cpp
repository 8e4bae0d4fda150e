// Relay tree pieces that are pure functions: node status JSON and backoff.
#include <gtest/gtest.h>

#include "relay/backoff.h"
#include "tree/children.h"

using namespace wb;

TEST(NodeStatus, RoundTripsThroughJson) {
  NodeStatus in;
  in.path = "root1,relay2";
  in.instance = "a1b2c3d4";
  in.viewers = 7;
  in.max_viewers = 10;
  in.children = 2;
  NodeStatus out;
  ASSERT_TRUE(parse_node_status(node_status_json(in), &out));
  EXPECT_EQ(out.path, "root1,relay2");
  EXPECT_EQ(out.instance, "a1b2c3d4");
  EXPECT_EQ(out.viewers, 7u);
  EXPECT_EQ(out.max_viewers, 10u);
  EXPECT_EQ(out.children, 2u);
}

TEST(NodeStatus, RejectsWhatIsNotAStatus) {
  NodeStatus out;
  EXPECT_FALSE(parse_node_status("", &out));
  EXPECT_FALSE(parse_node_status("<html>", &out));
  EXPECT_FALSE(parse_node_status("[1,2]", &out));
  EXPECT_FALSE(parse_node_status("{\"viewers\": 1}", &out));
}

// Found by tests/fuzz/node_status_fuzzer: members of another type made
// json-glib log criticals (fatal under G_DEBUG=fatal-criticals).
TEST(NodeStatus, RejectsMembersOfAnotherTypeOrRange) {
  NodeStatus out;
  out.viewers = 7;
  EXPECT_FALSE(parse_node_status("{\"viewers\": [1], \"max_viewers\": 1}", &out));
  EXPECT_FALSE(parse_node_status("{\"viewers\": \"1\", \"max_viewers\": 1}", &out));
  EXPECT_FALSE(parse_node_status("{\"viewers\": 1, \"max_viewers\": -1}", &out));
  EXPECT_FALSE(parse_node_status("{\"viewers\": 1, \"max_viewers\": 4294967296}", &out));
  EXPECT_FALSE(parse_node_status("{\"viewers\": 1, \"max_viewers\": 1, \"children\": null}", &out));
  EXPECT_FALSE(parse_node_status("{\"viewers\": 1, \"max_viewers\": 1, \"path\": 5}", &out));
  EXPECT_EQ(out.viewers, 7u);  // untouched
  ASSERT_TRUE(parse_node_status("{\"viewers\": 1, \"max_viewers\": 4294967295}", &out));
  EXPECT_EQ(out.max_viewers, 4294967295u);
  EXPECT_EQ(out.children, 0u);
  EXPECT_EQ(out.path, "");
}

// Found by the node_status fuzzer in CI: accepted, but the status written
// back from it could not be read again.
TEST(NodeStatus, RejectsTextThatIsNotUnicode) {
  NodeStatus out;
  EXPECT_FALSE(parse_node_status("{\"viewers\": 1, \"max_viewers\": 2, \"instance\": \"\\ud800x\"}", &out));
  ASSERT_TRUE(parse_node_status("{\"viewers\": 1, \"max_viewers\": 2, \"instance\": \"\\ud83d\\ude00\"}", &out));
  EXPECT_EQ(out.instance, "\xf0\x9f\x98\x80");
}

TEST(Backoff, DoublesFromOneSecondToThirtyAndResets) {
  Backoff b;
  std::vector<long> seen;
  for (int i = 0; i < 7; ++i) seen.push_back(long(b.next().count()));
  EXPECT_EQ(seen, (std::vector<long>{1000, 2000, 4000, 8000, 16000, 30000, 30000}));
  b.reset();
  EXPECT_EQ(b.next().count(), 1000);
}

TEST(Children, PicksNoChildUntilItsLoadIsKnown) {
  Children children;
  children.add("s1", "node1", "http://127.0.0.1:1/whep");  // nothing listens there
  EXPECT_EQ(children.count(), 1u);
  EXPECT_EQ(children.pick(""), "");
  children.remove("s1");
  EXPECT_EQ(children.count(), 0u);
}
