#include "nodestats.h"

#include <dirent.h>
#include <json-glib/json-glib.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>

namespace wb {

namespace {

// One field list for both views: GstStructure names use '-', JSON '_'.
template <typename Add>
void each_stream_field(const FanoutStats &f, Add add) {
  add("packets-in", f.packets_in);
  add("bytes-sent", f.bytes_out);
  add("keyframe-requests-received", f.keyframe_requests_received);
  add("keyframe-requests-sent", f.keyframe_requests_sent);
  add("keyframe-requests-refused", f.keyframe_requests_refused);
  add("retransmissions", f.packets_retransmitted);
  add("nacked-not-kept", f.nacked_not_kept);
  add("subscribers", uint64_t(f.subscribers));
  add("layer-switches", f.layer_switches);
}

// A simulcast layer of a stream.
template <typename Add>
void each_layer_field(const FanoutLayerStats &l, Add add) {
  add("index", uint64_t(l.index));
  add("bitrate", l.bitrate);
  add("viewers", uint64_t(l.subscribers));
  add("packets-in", l.packets_in);
  add("keyframe-requests-sent", l.keyframe_requests_sent);
}

template <typename Add>
void each_shard_field(const SenderPool::ShardStats &s, Add add) {
  add("subscriptions", uint64_t(s.subscriptions));
  add("batches", s.batches);
  add("batches-dropped", s.batches_dropped);
}

// Counts beyond NodeStatus's, then the totals over the streams.
template <typename Add>
void each_node_field(const NodeStats &n, Add add) {
  add("sessions", uint64_t(n.sessions));
  add("pending-viewers", uint64_t(n.pending));
  add("pending-webrtcbin", uint64_t(n.pending_webrtcbin));
  add("direct-viewers", uint64_t(n.direct));
  add("bytes-sent", n.total(&FanoutStats::bytes_out));
  add("keyframe-requests", n.total(&FanoutStats::keyframe_requests_sent));
  add("retransmissions", n.total(&FanoutStats::packets_retransmitted));
}

// Counters are guint64 in a structure; counts of things (viewers, shards'
// subscriptions) uint, as the properties that show them.
bool is_count(const char *name) {
  static const char *const counts[] = {"sessions", "pending-viewers", "pending-webrtcbin", "direct-viewers",
                                       "subscribers", "subscriptions"};
  for (const char *c : counts)
    if (g_str_equal(name, c)) return true;
  return false;
}

void set_field(GstStructure *s, const char *name, uint64_t value) {
  if (is_count(name))
    gst_structure_set(s, name, G_TYPE_UINT, guint(value), nullptr);
  else
    gst_structure_set(s, name, G_TYPE_UINT64, guint64(value), nullptr);
}

void add_histogram(JsonBuilder *b, const char *name, const HistogramSnapshot &h) {
  json_builder_set_member_name(b, name);
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "buckets");  // [upper bound or null for +Inf, cumulative count]
  json_builder_begin_array(b);
  for (size_t i = 0; i < h.cumulative.size(); ++i) {
    json_builder_begin_array(b);
    if (i < h.bounds.size()) json_builder_add_double_value(b, h.bounds[i]);
    else json_builder_add_null_value(b);
    json_builder_add_int_value(b, gint64(h.cumulative[i]));
    json_builder_end_array(b);
  }
  json_builder_end_array(b);
  json_builder_set_member_name(b, "sum");
  json_builder_add_double_value(b, h.sum);
  json_builder_set_member_name(b, "count");
  json_builder_add_int_value(b, gint64(h.count()));
  json_builder_end_object(b);
}

void add_json_member(JsonBuilder *b, const char *name, uint64_t value) {
  gchar *json_name = g_strdelimit(g_strdup(name), "-", '_');
  json_builder_set_member_name(b, json_name);
  g_free(json_name);
  json_builder_add_int_value(b, gint64(value));
}

}  // namespace

NodeStats::Process process_stats() {
  NodeStats::Process p;
  rusage usage{};
  if (getrusage(RUSAGE_SELF, &usage) == 0)
    p.cpu_seconds = double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
                    double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
  if (FILE *statm = fopen("/proc/self/statm", "r")) {
    unsigned long size = 0, resident = 0;
    if (fscanf(statm, "%lu %lu", &size, &resident) == 2) p.resident_bytes = uint64_t(resident) * sysconf(_SC_PAGESIZE);
    fclose(statm);
  }
  auto count_entries = [](const char *dir) {
    unsigned n = 0;
    if (DIR *d = opendir(dir)) {
      while (const dirent *entry = readdir(d))
        if (entry->d_name[0] != '.') ++n;
      closedir(d);
    }
    return n;
  };
  // Less the one opendir() holds while counting.
  const unsigned fds = count_entries("/proc/self/fd");
  p.open_fds = fds ? fds - 1 : 0;
  p.threads = count_entries("/proc/self/task");
  return p;
}

uint64_t NodeStats::total(uint64_t FanoutStats::*field) const {
  uint64_t sum = 0;
  for (const auto &stream : streams) sum += stream.fanout.*field;
  return sum;
}

GstStructure *node_stats_structure(const NodeStats &stats) {
  GstStructure *s = gst_structure_new("node-stats", "path", G_TYPE_STRING, stats.status.path.c_str(),
                                      "instance", G_TYPE_STRING, stats.status.instance.c_str(),
                                      "viewers", G_TYPE_UINT, stats.status.viewers,
                                      "max-viewers", G_TYPE_UINT, stats.status.max_viewers,
                                      "children", G_TYPE_UINT, stats.status.children, nullptr);
  each_node_field(stats, [s](const char *name, uint64_t value) { set_field(s, name, value); });
  for (const auto &stream : stats.streams) {
    GstStructure *f = gst_structure_new_empty("stream-stats");
    each_stream_field(stream.fanout, [f](const char *name, uint64_t value) { set_field(f, name, value); });
    GValue layers = G_VALUE_INIT;
    gst_value_array_init(&layers, guint(stream.fanout.layers.size()));
    for (const auto &layer : stream.fanout.layers) {
      GstStructure *l = gst_structure_new_empty("layer-stats");
      each_layer_field(layer, [l](const char *name, uint64_t value) { set_field(l, name, value); });
      GValue item = G_VALUE_INIT;
      g_value_init(&item, GST_TYPE_STRUCTURE);
      g_value_take_boxed(&item, l);
      gst_value_array_append_and_take_value(&layers, &item);
    }
    gst_structure_take_value(f, "layers", &layers);
    GValue value = G_VALUE_INIT;
    g_value_init(&value, GST_TYPE_STRUCTURE);
    g_value_take_boxed(&value, f);
    gst_structure_take_value(s, stream.kind.c_str(), &value);
  }
  GValue shards = G_VALUE_INIT;
  gst_value_array_init(&shards, guint(stats.shards.size()));
  for (const auto &shard : stats.shards) {
    GstStructure *f = gst_structure_new_empty("shard-stats");
    each_shard_field(shard, [f](const char *name, uint64_t value) { set_field(f, name, value); });
    GValue item = G_VALUE_INIT;
    g_value_init(&item, GST_TYPE_STRUCTURE);
    g_value_take_boxed(&item, f);
    gst_value_array_append_and_take_value(&shards, &item);
  }
  gst_structure_take_value(s, "shards", &shards);
  return s;
}

namespace {

// What GET /stats adds to GET /status: the same numbers as the metrics.
void add_rest(JsonBuilder *b, const NodeStats &n) {
  json_builder_set_member_name(b, "offers");  // by status
  json_builder_begin_object(b);
  for (const auto &o : n.offers) add_json_member(b, std::to_string(o.first).c_str(), o.second);
  json_builder_end_object(b);
  add_histogram(b, "answer_seconds", n.answer_seconds);
  json_builder_set_member_name(b, "http_responses");  // by status
  json_builder_begin_object(b);
  for (const auto &r : n.http_responses) add_json_member(b, std::to_string(r.first).c_str(), r.second);
  json_builder_end_object(b);
  add_json_member(b, "http_dropped", n.http_dropped);
  json_builder_set_member_name(b, "ended");  // by reason
  json_builder_begin_object(b);
  for (const auto &e : n.ended) add_json_member(b, e.first.c_str(), e.second);
  json_builder_end_object(b);
  json_builder_set_member_name(b, "rtcp");
  json_builder_begin_object(b);
  const RtcpCounts &c = n.rtcp.counts;
  for (const auto &[name, value] : {std::pair{"received", c.received}, std::pair{"rejected", c.rejected},
                                     std::pair{"pli", c.pli}, std::pair{"fir", c.fir},
                                     std::pair{"nack-packets", c.nack_packets}, std::pair{"nacked-seqs", c.nacked_seqs}})
    add_json_member(b, name, value);
  add_histogram(b, "loss_ratio", n.rtcp.loss);
  add_histogram(b, "jitter_seconds", n.rtcp.jitter);
  add_histogram(b, "rtt_seconds", n.rtcp.rtt);
  json_builder_end_object(b);
  json_builder_set_member_name(b, "relay_children");
  json_builder_begin_array(b);
  for (const auto &child : n.child_loads) {
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "url");
    json_builder_add_string_value(b, child.url.c_str());
    json_builder_set_member_name(b, "up");
    json_builder_add_boolean_value(b, child.reachable);
    add_json_member(b, "viewers", child.viewers);
    add_json_member(b, "max-viewers", child.max_viewers);
    add_json_member(b, "children", child.children);
    json_builder_end_object(b);
  }
  json_builder_end_array(b);
  for (const auto &[member, links] : {std::pair{"pushes", &n.pushes}, std::pair{"upstreams", &n.upstreams}}) {
    json_builder_set_member_name(b, member);
    json_builder_begin_array(b);
    for (const auto &link : *links) {
      json_builder_begin_object(b);
      for (const auto &[name, value] : {std::pair{"relay", &link.name}, std::pair{"url", &link.url},
                                         std::pair{"state", &link.state}}) {
        if (value->empty() && std::string(name) == "relay") continue;
        json_builder_set_member_name(b, name);
        json_builder_add_string_value(b, value->c_str());
      }
      if (std::string(member) == "upstreams") add_json_member(b, "reconnects", link.reconnects);
      json_builder_end_object(b);
    }
    json_builder_end_array(b);
  }
  json_builder_set_member_name(b, "process");
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "cpu_seconds");
  json_builder_add_double_value(b, n.process.cpu_seconds);
  add_json_member(b, "resident-bytes", n.process.resident_bytes);
  add_json_member(b, "open-fds", n.process.open_fds);
  add_json_member(b, "threads", n.process.threads);
  json_builder_end_object(b);
}

}  // namespace

std::string node_stats_json(const NodeStats &stats, bool full) {
  JsonBuilder *b = json_builder_new();
  json_builder_begin_object(b);
  add_node_status_members(b, stats.status);
  each_node_field(stats, [b](const char *name, uint64_t value) { add_json_member(b, name, value); });
  json_builder_set_member_name(b, "streams");
  json_builder_begin_object(b);
  for (const auto &stream : stats.streams) {
    json_builder_set_member_name(b, stream.kind.c_str());
    json_builder_begin_object(b);
    each_stream_field(stream.fanout, [b](const char *name, uint64_t value) { add_json_member(b, name, value); });
    add_json_member(b, "packets-sent", stream.fanout.packets_out);
    if (stream.kind == "video") add_histogram(b, "keyframe_wait_seconds", stream.fanout.keyframe_wait);
    json_builder_set_member_name(b, "layers");
    json_builder_begin_array(b);
    for (const auto &layer : stream.fanout.layers) {
      json_builder_begin_object(b);
      each_layer_field(layer, [b](const char *name, uint64_t value) { add_json_member(b, name, value); });
      json_builder_end_object(b);
    }
    json_builder_end_array(b);
    json_builder_end_object(b);
  }
  json_builder_end_object(b);
  json_builder_set_member_name(b, "shards");
  json_builder_begin_array(b);
  for (const auto &shard : stats.shards) {
    json_builder_begin_object(b);
    each_shard_field(shard, [b](const char *name, uint64_t value) { add_json_member(b, name, value); });
    json_builder_set_member_name(b, "cpu_seconds");
    json_builder_add_double_value(b, shard.cpu_seconds);
    json_builder_end_object(b);
  }
  json_builder_end_array(b);
  if (full) add_rest(b, stats);
  json_builder_end_object(b);
  return json_text(b);
}

}  // namespace wb
