// One typed snapshot of a node: who it is (what relays read on GET
// <endpoint>/status), its audience, each stream's fan-out and each sender
// shard. Every outward view of these numbers is written from it, so they
// cannot disagree: viewermanager's read-only properties, its get-stats
// action signal (node_stats_structure) and GET /status (node_stats_json).
#pragma once

#include <gst/gst.h>

#include <map>
#include <string>
#include <vector>

#include "fanout/fanout.h"
#include "fanout/senderpool.h"
#include "transport/rtcpmetrics.h"
#include "tree/children.h"

namespace wb {

struct NodeStats {
  NodeStatus status;  // path, instance, viewers (relays not counted), max-viewers, children
  unsigned sessions = 0;           // viewers and relays, connected or connecting
  unsigned pending = 0;            // of them, not connected yet
  unsigned pending_webrtcbin = 0;  // of those, with a webrtcbin of their own
  unsigned direct = 0;             // of all, sent to by the fan-out itself
  struct Stream {
    std::string kind;  // "video" or "audio"
    FanoutStats fanout;
  };
  std::vector<Stream> streams;  // the media this node has inputs for
  std::vector<SenderPool::ShardStats> shards;  // empty until the ICE-lite port opens

  // Only in Audience::full_stats(), from here on. Since the node started:
  std::map<int, uint64_t> offers;         // by the HTTP status they were answered with
  std::map<int, uint64_t> http_responses;  // every HTTP answer, by status (the server's, refusals too)
  uint64_t http_dropped = 0;               // connections closed without an answer
  HistogramSnapshot answer_seconds;       // of the offers answered 201
  std::map<std::string, uint64_t> ended;  // sessions ended, by why (ended_name())
  RtcpMetrics::Snapshot rtcp;             // what ICE-lite viewers sent and reported
  std::vector<Children::Load> child_loads;

  // The node's links to other nodes, as the element knows them: its push
  // (push-url) and the relaysrc elements of its pipeline.
  struct Link {
    std::string name;  // the relaysrc's element name; empty for the push
    std::string url;
    std::string state;  // idle, connecting, live or lost
    uint64_t reconnects = 0;
  };
  std::vector<Link> pushes;     // none, or the one push-url
  std::vector<Link> upstreams;

  // The whole process's (one process may hold several nodes).
  struct Process {
    double cpu_seconds = 0;
    uint64_t resident_bytes = 0;
    unsigned open_fds = 0;
    unsigned threads = 0;
  };
  Process process;

  // Sum of one FanoutStats field over the streams.
  uint64_t total(uint64_t FanoutStats::*field) const;
};

// What the kernel says of this process now (Linux; zeros elsewhere).
NodeStats::Process process_stats();

// "node-stats": the counts as uint / guint64 fields, each stream as a
// "stream-stats" structure under its kind, the shards as an array of
// "shard-stats" (see WB_NODE_STATS_DOC). Transfer full.
GstStructure *node_stats_structure(const NodeStats &stats);
// GET /status: NodeStatus's members (node_status_json()), then the counts,
// streams and shards; `full` (GET /stats): then everything the metrics show.
std::string node_stats_json(const NodeStats &stats, bool full = false);
// GET /metrics: the Prometheus text exposition format (version 0.0.4).
std::string node_stats_prometheus(const NodeStats &stats);
// Why a session ended, as the metrics label it.
enum class Ended { Left, Removed, NeverConnected, WentSilent, TransportFailed, TransportClosed, NotAnswered, Shutdown };
const char *ended_name(Ended why);

#define WB_NODE_STATS_DOC                                                                                          \
  "get-stats () -> GstStructure node-stats: path, instance (strings), viewers, max-viewers, children, sessions "  \
  "(viewers and relays), pending-viewers, pending-webrtcbin, direct-viewers (uint), bytes-sent, "                 \
  "keyframe-requests, retransmissions (guint64, all streams); per stream, video and audio (GstStructure "         \
  "stream-stats): packets-in, bytes-sent, keyframe-requests-received, keyframe-requests-sent, retransmissions, " \
  "nacked-not-kept, layer-switches (guint64), subscribers (uint), layers (GstValueArray of layer-stats, one per " \
  "simulcast layer: index, viewers (uint; on it or moving to it), bitrate (guint64, bits/s over the last "         \
  "second), packets-in, keyframe-requests-sent (guint64)); shards (GstValueArray of shard-stats: subscriptions (uint), "    \
  "batches, batches-dropped (guint64)). GET <endpoint>/status has the same numbers as JSON"

}  // namespace wb
