// Relay tree pieces that are pure functions: node status JSON and backoff.
#include <gtest/gtest.h>

#include "relay/backoff.h"
#include "tree/children.h"
#include "viewer/nodestats.h"

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

// GET /status carries a node's whole snapshot; relays still read what they
// need from it, and each number is where the structure has it too.
TEST(NodeStats, StatusJsonAndStructureShowTheSameSnapshot) {
  NodeStats in;
  in.status.path = "root1";
  in.status.instance = "i1";
  in.status.viewers = 3;
  in.status.max_viewers = 5;
  in.status.children = 1;
  in.sessions = 4;
  in.pending = 1;
  in.direct = 2;
  FanoutStats video;
  video.packets_in = 100;
  video.bytes_out = 5000;
  video.packets_retransmitted = 7;
  video.subscribers = 4;
  FanoutStats audio;
  audio.bytes_out = 300;
  audio.subscribers = 3;
  in.streams = {{"video", video}, {"audio", audio}};
  SenderPool::ShardStats shard;
  shard.subscriptions = 6;
  shard.batches_dropped = 2;
  in.shards = {shard, SenderPool::ShardStats{}};

  const std::string json = node_stats_json(in);
  NodeStatus read;
  ASSERT_TRUE(parse_node_status(json, &read)) << json;
  EXPECT_EQ(read.viewers, 3u);
  EXPECT_EQ(read.max_viewers, 5u);
  JsonNode *root = json_from_string(json.c_str(), nullptr);
  ASSERT_TRUE(root);
  JsonObject *o = json_node_get_object(root);
  EXPECT_EQ(json_object_get_int_member(o, "sessions"), 4);
  EXPECT_EQ(json_object_get_int_member(o, "bytes_sent"), 5300);
  EXPECT_EQ(json_object_get_int_member(o, "retransmissions"), 7);
  JsonObject *streams = json_object_get_object_member(o, "streams");
  EXPECT_EQ(json_object_get_int_member(json_object_get_object_member(streams, "video"), "packets_in"), 100);
  EXPECT_EQ(json_object_get_int_member(json_object_get_object_member(streams, "audio"), "subscribers"), 3);
  JsonArray *shards = json_object_get_array_member(o, "shards");
  ASSERT_EQ(json_array_get_length(shards), 2u);
  EXPECT_EQ(json_object_get_int_member(json_array_get_object_element(shards, 0), "batches_dropped"), 2);
  json_node_unref(root);

  GstStructure *s = node_stats_structure(in);
  guint sessions = 0, subscribers = 0;
  guint64 bytes = 0, dropped = 0;
  EXPECT_TRUE(gst_structure_get_uint(s, "sessions", &sessions));
  EXPECT_EQ(sessions, 4u);
  EXPECT_TRUE(gst_structure_get_uint64(s, "bytes-sent", &bytes));
  EXPECT_EQ(bytes, 5300u);
  const GstStructure *v = gst_value_get_structure(gst_structure_get_value(s, "video"));
  ASSERT_TRUE(v);
  EXPECT_TRUE(gst_structure_get_uint(v, "subscribers", &subscribers));
  EXPECT_EQ(subscribers, 4u);
  const GValue *array = gst_structure_get_value(s, "shards");
  ASSERT_TRUE(array && GST_VALUE_HOLDS_ARRAY(array));
  ASSERT_EQ(gst_value_array_get_size(array), 2u);
  EXPECT_TRUE(gst_structure_get_uint64(gst_value_get_structure(gst_value_array_get_value(array, 0)),
                                       "batches-dropped", &dropped));
  EXPECT_EQ(dropped, 2u);
  gst_structure_free(s);
}
