// GET /metrics: a NodeStats snapshot in the Prometheus text exposition
// format 0.0.4. Names follow Prometheus' conventions: a broadcast_ prefix,
// base units (seconds, bytes, ratios), _total on counters; the process_
// family is the one client libraries export, so existing dashboards read it.
#include <glib.h>

#include <cinttypes>
#include <cstdio>
#include <string>

#include "viewer/nodestats.h"

namespace wb {

const char *ended_name(Ended why) {
  switch (why) {
    case Ended::Left: return "left";
    case Ended::Removed: return "removed";
    case Ended::NeverConnected: return "never-connected";
    case Ended::WentSilent: return "went-silent";
    case Ended::TransportFailed: return "transport-failed";
    case Ended::TransportClosed: return "transport-closed";
    case Ended::NotAnswered: return "not-answered";
    case Ended::Shutdown: return "shutdown";
  }
  return "removed";
}

namespace {

using Labels = std::initializer_list<std::pair<const char *, std::string>>;

class Exposition {
 public:
  // A family's HELP and TYPE, once, before its samples.
  void family(const char *name, const char *type, const char *help) {
    out_ += "# HELP ";
    out_ += name;
    out_ += ' ';
    out_ += help;
    out_ += "\n# TYPE ";
    out_ += name;
    out_ += ' ';
    out_ += type;
    out_ += '\n';
  }
  void sample(const std::string &name, Labels labels, uint64_t value) {
    line(name, labels, nullptr, std::to_string(value));
  }
  void sample(const std::string &name, Labels labels, double value) { line(name, labels, nullptr, number(value)); }
  // A whole family of one value.
  template <typename T>
  void single(const char *name, const char *type, const char *help, T value) {
    family(name, type, help);
    sample(name, {}, value);
  }
  void histogram(const std::string &name, Labels labels, const HistogramSnapshot &h) {
    for (size_t i = 0; i < h.cumulative.size(); ++i) {
      const std::string le = i < h.bounds.size() ? number(h.bounds[i]) : "+Inf";
      line(name + "_bucket", labels, &le, std::to_string(h.cumulative[i]));
    }
    line(name + "_sum", labels, nullptr, number(h.sum));
    line(name + "_count", labels, nullptr, std::to_string(h.count()));
  }
  const std::string &text() const { return out_; }

 private:
  static std::string number(double v) {
    char buf[G_ASCII_DTOSTR_BUF_SIZE];
    return g_ascii_formatd(buf, sizeof buf, "%.10g", v);
  }
  void line(const std::string &name, Labels labels, const std::string *le, const std::string &value) {
    out_ += name;
    if (labels.size() || le) {
      char sep = '{';
      for (const auto &l : labels) {
        out_ += sep;
        label(l.first, l.second);
        sep = ',';
      }
      if (le) {
        out_ += sep;
        label("le", *le);
      }
      out_ += '}';
    }
    out_ += ' ';
    out_ += value;
    out_ += '\n';
  }
  void label(const char *name, const std::string &value) {
    out_ += name;
    out_ += "=\"";
    for (char c : value) {
      if (c == '\\') out_ += "\\\\";
      else if (c == '"') out_ += "\\\"";
      else if (c == '\n') out_ += "\\n";
      else out_ += c;
    }
    out_ += '"';
  }

  std::string out_;
};

const char *const kLinkStates[] = {"idle", "connecting", "live", "lost"};

void write_streams(Exposition &e, const NodeStats &n) {
  struct Counter {
    const char *name;
    const char *help;
    uint64_t FanoutStats::*field;
  };
  static const Counter counters[] = {
      {"broadcast_stream_received_packets_total", "RTP packets into the stream's fan-out.", &FanoutStats::packets_in},
      {"broadcast_stream_sent_packets_total", "RTP packets sent to viewers, retransmissions not included.",
       &FanoutStats::packets_out},
      {"broadcast_stream_sent_bytes_total", "Bytes sent to viewers (RTP, with SRTP where the fan-out encrypts).",
       &FanoutStats::bytes_out},
      {"broadcast_keyframe_requests_received_total",
       "Keyframe requests from viewers (PLI, FIR) and from the application.",
       &FanoutStats::keyframe_requests_received},
      {"broadcast_keyframe_requests_upstream_total", "Keyframe requests sent upstream, after coalescing.",
       &FanoutStats::keyframe_requests_sent},
      {"broadcast_keyframe_requests_refused_total",
       "Viewers' keyframe requests refused: the viewer asked again within its back-off (1 s doubling to 32 s).",
       &FanoutStats::keyframe_requests_refused},
      {"broadcast_retransmitted_packets_total", "Packets sent again in answer to viewers' NACKs.",
       &FanoutStats::packets_retransmitted},
      {"broadcast_nacked_packets_not_kept_total", "Packets viewers NACKed that the history no longer had.",
       &FanoutStats::nacked_not_kept},
  };
  for (const auto &c : counters) {
    e.family(c.name, "counter", c.help);
    for (const auto &s : n.streams) e.sample(c.name, {{"stream", s.kind}}, s.fanout.*c.field);
  }
  e.family("broadcast_stream_subscribers", "gauge", "Viewers' and relays' subscriptions to the stream.");
  for (const auto &s : n.streams)
    e.sample("broadcast_stream_subscribers", {{"stream", s.kind}}, uint64_t(s.fanout.subscribers));
  // Simulcast layers, by index (0 is the video pad's).
  e.family("broadcast_layer_bytes_per_second", "gauge", "What a layer carries, over the last second.");
  for (const auto &s : n.streams)
    for (const auto &l : s.fanout.layers)
      e.sample("broadcast_layer_bytes_per_second", {{"stream", s.kind}, {"layer", std::to_string(l.index)}},
               l.bitrate / 8);
  e.family("broadcast_layer_viewers", "gauge", "Viewers on a layer or moving to it.");
  for (const auto &s : n.streams)
    for (const auto &l : s.fanout.layers)
      e.sample("broadcast_layer_viewers", {{"stream", s.kind}, {"layer", std::to_string(l.index)}},
               uint64_t(l.subscribers));
  e.family("broadcast_layer_keyframe_requests_upstream_total", "counter",
           "Keyframe requests sent upstream for a layer, after coalescing.");
  for (const auto &s : n.streams)
    for (const auto &l : s.fanout.layers)
      e.sample("broadcast_layer_keyframe_requests_upstream_total",
               {{"stream", s.kind}, {"layer", std::to_string(l.index)}}, l.keyframe_requests_sent);
  e.family("broadcast_layer_switches_total", "counter", "Moves of viewers from one layer to another, done.");
  for (const auto &s : n.streams) e.sample("broadcast_layer_switches_total", {{"stream", s.kind}}, s.fanout.layer_switches);
  e.family("broadcast_keyframe_wait_seconds", "histogram",
           "Time from a viewer's start to the keyframe its video starts with.");
  for (const auto &s : n.streams)
    if (s.kind == "video") e.histogram("broadcast_keyframe_wait_seconds", {{"stream", s.kind}}, s.fanout.keyframe_wait);
}

void write_shards(Exposition &e, const NodeStats &n) {
  e.family("broadcast_shard_subscriptions", "gauge", "Viewers' streams a sender shard serves.");
  for (size_t i = 0; i < n.shards.size(); ++i)
    e.sample("broadcast_shard_subscriptions", {{"shard", std::to_string(i)}}, uint64_t(n.shards[i].subscriptions));
  e.family("broadcast_shard_batches_total", "counter", "Media batches a sender shard ran.");
  for (size_t i = 0; i < n.shards.size(); ++i)
    e.sample("broadcast_shard_batches_total", {{"shard", std::to_string(i)}}, n.shards[i].batches);
  e.family("broadcast_shard_dropped_batches_total", "counter",
           "Media batches a sender shard dropped because it was behind.");
  for (size_t i = 0; i < n.shards.size(); ++i)
    e.sample("broadcast_shard_dropped_batches_total", {{"shard", std::to_string(i)}}, n.shards[i].batches_dropped);
  e.family("broadcast_shard_cpu_seconds_total", "counter", "CPU time of a sender shard's thread.");
  for (size_t i = 0; i < n.shards.size(); ++i)
    e.sample("broadcast_shard_cpu_seconds_total", {{"shard", std::to_string(i)}}, n.shards[i].cpu_seconds);
}

void write_rtcp(Exposition &e, const NodeStats &n) {
  const RtcpCounts &c = n.rtcp.counts;
  e.single("broadcast_rtcp_received_packets_total", "counter",
           "SRTCP packets from ICE-lite viewers that authenticated.", c.received);
  e.single("broadcast_rtcp_rejected_packets_total", "counter",
           "SRTCP packets from ICE-lite viewers that did not authenticate.", c.rejected);
  e.single("broadcast_pli_received_total", "counter", "PLI packets from ICE-lite viewers.", c.pli);
  e.single("broadcast_fir_received_total", "counter", "FIR entries from ICE-lite viewers.", c.fir);
  e.single("broadcast_nack_received_total", "counter", "Generic NACK packets from ICE-lite viewers.", c.nack_packets);
  e.single("broadcast_nack_requested_packets_total", "counter",
           "Sequence numbers those NACKs asked for, repeats included.", c.nacked_seqs);
  e.family("broadcast_report_loss_ratio", "histogram",
           "Fraction lost in ICE-lite viewers' receiver report blocks (RFC 3550 6.4.1).");
  e.histogram("broadcast_report_loss_ratio", {}, n.rtcp.loss);
  e.family("broadcast_report_jitter_seconds", "histogram", "Interarrival jitter in ICE-lite viewers' report blocks.");
  e.histogram("broadcast_report_jitter_seconds", {}, n.rtcp.jitter);
  e.family("broadcast_report_rtt_seconds", "histogram",
           "Round trips measured from ICE-lite viewers' report blocks (LSR and DLSR).");
  e.histogram("broadcast_report_rtt_seconds", {}, n.rtcp.rtt);
}

void write_tree(Exposition &e, const NodeStats &n) {
  e.single("broadcast_relay_children", "gauge", "Relays pulling from this node.", uint64_t(n.status.children));
  e.family("broadcast_relay_child_up", "gauge", "Whether a relay child answered its last status poll.");
  for (const auto &c : n.child_loads) e.sample("broadcast_relay_child_up", {{"url", c.url}}, uint64_t(c.reachable));
  e.family("broadcast_relay_child_viewers", "gauge", "Viewers of a relay child, as its last status poll said.");
  for (const auto &c : n.child_loads) e.sample("broadcast_relay_child_viewers", {{"url", c.url}}, uint64_t(c.viewers));
  e.family("broadcast_relay_child_max_viewers", "gauge", "max-viewers of a relay child (0: unlimited).");
  for (const auto &c : n.child_loads)
    e.sample("broadcast_relay_child_max_viewers", {{"url", c.url}}, uint64_t(c.max_viewers));

  e.family("broadcast_push_state", "gauge", "The push to push-url: 1 for its state, 0 for the others.");
  for (const auto &p : n.pushes)
    for (const char *state : kLinkStates)
      e.sample("broadcast_push_state", {{"url", p.url}, {"state", state}}, uint64_t(p.state == state));
  e.family("broadcast_upstream_state", "gauge", "A relaysrc's upstream: 1 for its state, 0 for the others.");
  for (const auto &u : n.upstreams)
    for (const char *state : kLinkStates)
      e.sample("broadcast_upstream_state", {{"relay", u.name}, {"state", state}}, uint64_t(u.state == state));
  e.family("broadcast_upstream_info", "gauge", "The URL a relaysrc's upstream answered from (after redirects).");
  for (const auto &u : n.upstreams) e.sample("broadcast_upstream_info", {{"relay", u.name}, {"url", u.url}}, uint64_t(1));
  e.family("broadcast_upstream_reconnects_total", "counter", "Upstream sessions a relaysrc made after its first.");
  for (const auto &u : n.upstreams) e.sample("broadcast_upstream_reconnects_total", {{"relay", u.name}}, u.reconnects);
}

}  // namespace

std::string node_stats_prometheus(const NodeStats &n) {
  Exposition e;
  e.family("broadcast_node_info", "gauge", "The node's path in the relay tree (root first) and instance id.");
  e.sample("broadcast_node_info", {{"path", n.status.path}, {"instance", n.status.instance}}, uint64_t(1));
  e.single("broadcast_viewers", "gauge", "Viewers connected or connecting, relays not counted.",
           uint64_t(n.status.viewers));
  e.single("broadcast_max_viewers", "gauge", "max-viewers (0: unlimited).", uint64_t(n.status.max_viewers));
  e.family("broadcast_sessions", "gauge", "Sessions (viewers and relays) by state.");
  e.sample("broadcast_sessions", {{"state", "connecting"}}, uint64_t(n.pending));
  e.sample("broadcast_sessions", {{"state", "connected"}}, uint64_t(n.sessions - n.pending));
  e.single("broadcast_sessions_connecting_webrtcbin", "gauge",
           "Connecting sessions with a webrtcbin of their own.", uint64_t(n.pending_webrtcbin));
  e.single("broadcast_sessions_sent_direct", "gauge",
           "Sessions the fan-out sends to itself (ICE-lite port or direct route).", uint64_t(n.direct));

  e.family("broadcast_offers_total", "counter", "Offers (WHEP POST) by the HTTP status they were answered with.");
  for (const auto &o : n.offers) e.sample("broadcast_offers_total", {{"code", std::to_string(o.first)}}, o.second);
  e.family("broadcast_http_responses_total", "counter",
           "Every HTTP answer of the node's server by status, its refusals (401, 404, 413, 429, 503...) included.");
  for (const auto &r : n.http_responses)
    e.sample("broadcast_http_responses_total", {{"code", std::to_string(r.first)}}, r.second);
  e.single("broadcast_http_dropped_connections_total", "counter",
           "HTTP connections closed without an answer: over max-http-connections, or no complete request in time.",
           n.http_dropped);
  e.family("broadcast_answer_seconds", "histogram", "Time to answer an offer, of those answered 201.");
  e.histogram("broadcast_answer_seconds", {}, n.answer_seconds);
  e.family("broadcast_sessions_ended_total", "counter", "Sessions ended, by why.");
  for (Ended why : {Ended::Left, Ended::Removed, Ended::NeverConnected, Ended::WentSilent, Ended::TransportFailed,
                    Ended::TransportClosed, Ended::NotAnswered, Ended::Shutdown}) {
    auto it = n.ended.find(ended_name(why));
    e.sample("broadcast_sessions_ended_total", {{"reason", ended_name(why)}},
             it == n.ended.end() ? uint64_t(0) : it->second);
  }

  write_streams(e, n);
  write_shards(e, n);
  write_rtcp(e, n);
  write_tree(e, n);

  e.single("process_cpu_seconds_total", "counter", "User and system CPU time of the process.",
           n.process.cpu_seconds);
  e.single("process_resident_memory_bytes", "gauge", "Resident memory of the process.", n.process.resident_bytes);
  e.single("process_open_fds", "gauge", "Open file descriptors of the process.", uint64_t(n.process.open_fds));
  e.single("process_threads", "gauge", "Threads of the process.", uint64_t(n.process.threads));
  return e.text();
}

}  // namespace wb
