// GET /metrics, read the way an operator's tools read it: Prometheus' own
// parser and linter (promtool check metrics) and a real Prometheus server
// (Debian's) scraping the nodes over loopback, whose query API gives the
// values the tests assert. Nothing here parses the exposition itself.
#include <glib/gstdio.h>
#include <gtest/gtest.h>
#include <json-glib/json-glib.h>

#include <cmath>
#include <csignal>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "support/testsupport.h"

using namespace wbtest;

namespace {

// What promtool says of an exposition: "" when it parses and passes every
// lint rule, else its exit status and words.
std::string promtool_check(const std::string &text) {
  GError *error = nullptr;
  GSubprocess *process = g_subprocess_new(
      GSubprocessFlags(G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE |
                       G_SUBPROCESS_FLAGS_STDERR_MERGE),
      &error, "promtool", "check", "metrics", nullptr);
  if (!process) {
    std::string why = std::string("promtool did not start: ") + error->message;
    g_error_free(error);
    return why;
  }
  gchar *said = nullptr;
  g_subprocess_communicate_utf8(process, text.c_str(), nullptr, &said, nullptr, nullptr);
  const int status = g_subprocess_get_if_exited(process) ? g_subprocess_get_exit_status(process) : -1;
  std::string out = said ? said : "";
  g_free(said);
  g_object_unref(process);
  return status == 0 && out.empty() ? "" : "promtool exit " + std::to_string(status) + ": " + out;
}

// A Prometheus server of its own (storage in a temporary directory) that
// scrapes `targets` every second.
class Prometheus {
 public:
  struct Target {
    std::string address;  // host:port
    std::string path = "/metrics";
    std::string token;
  };
  explicit Prometheus(const std::vector<Target> &targets) {
    gchar *tmp = g_dir_make_tmp("wb-prometheus-XXXXXX", nullptr);
    dir_ = tmp ? tmp : "";
    g_free(tmp);
    std::string config = "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n";
    for (size_t i = 0; i < targets.size(); ++i) {
      config += "  - job_name: node" + std::to_string(i) + "\n    metrics_path: " + targets[i].path + "\n";
      if (!targets[i].token.empty()) config += "    authorization:\n      credentials: " + targets[i].token + "\n";
      config += "    static_configs:\n      - targets: ['" + targets[i].address + "']\n";
    }
    const std::string config_file = dir_ + "/prometheus.yml";
    g_file_set_contents(config_file.c_str(), config.c_str(), -1, nullptr);
    port_ = free_tcp_port();
    const std::string listen = "--web.listen-address=127.0.0.1:" + std::to_string(port_);
    const std::string storage = "--storage.tsdb.path=" + dir_ + "/data";
    const std::string config_arg = "--config.file=" + config_file;
    const std::string log = dir_ + "/prometheus.log";
    GSubprocessLauncher *launcher = g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_STDERR_MERGE);
    g_subprocess_launcher_set_stdout_file_path(launcher, log.c_str());
    GError *error = nullptr;
    process_ = g_subprocess_launcher_spawn(launcher, &error, "prometheus", config_arg.c_str(), storage.c_str(),
                                           listen.c_str(), "--log.level=warn", nullptr);
    g_object_unref(launcher);
    if (!process_) {
      error_ = error->message;
      g_error_free(error);
    }
  }
  ~Prometheus() {
    if (process_) {
      g_subprocess_send_signal(process_, SIGTERM);
      g_subprocess_wait(process_, nullptr, nullptr);
      g_object_unref(process_);
    }
    if (!dir_.empty()) {
      gchar *argv[] = {const_cast<gchar *>("rm"), const_cast<gchar *>("-rf"), dir_.data(), nullptr};
      g_spawn_sync(nullptr, argv, nullptr, G_SPAWN_SEARCH_PATH, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr);
    }
  }
  bool wait_ready() {
    if (!process_) return false;
    return wait_until([&] { return http_request("GET", url("/-/ready")).status == 200; }, 30000ms);
  }
  std::string url(const std::string &path) const { return "http://127.0.0.1:" + std::to_string(port_) + path; }
  std::string error() const { return error_; }
  std::string log() const {
    gchar *text = nullptr;
    g_file_get_contents((dir_ + "/prometheus.log").c_str(), &text, nullptr, nullptr);
    std::string out = text ? text : "";
    g_free(text);
    return out;
  }
  // The value of an instant query that yields one sample; NaN for none.
  double value(const std::string &promql) {
    gchar *escaped = g_uri_escape_string(promql.c_str(), nullptr, FALSE);
    HttpResponse r = http_request("GET", url(std::string("/api/v1/query?query=") + escaped));
    g_free(escaped);
    last_answer_ = r.body;
    double out = NAN;
    JsonNode *root = r.status == 200 ? json_from_string(r.body.c_str(), nullptr) : nullptr;
    if (root && JSON_NODE_HOLDS_OBJECT(root)) {
      JsonObject *data = json_object_get_object_member(json_node_get_object(root), "data");
      JsonArray *result = data ? json_object_get_array_member(data, "result") : nullptr;
      if (result && json_array_get_length(result) == 1) {
        JsonArray *sample = json_object_get_array_member(json_array_get_object_element(result, 0), "value");
        if (sample && json_array_get_length(sample) == 2)
          out = g_ascii_strtod(json_array_get_string_element(sample, 1), nullptr);
      }
    }
    if (root) json_node_unref(root);
    return out;
  }
  // Waits until `promql` yields one sample that `ok` accepts.
  bool wait_value(const std::string &promql, const std::function<bool(double)> &ok, double *seen = nullptr) {
    double v = NAN;
    const bool met = wait_until([&] {
      v = value(promql);
      return !std::isnan(v) && ok(v);
    }, 20000ms);
    if (seen) *seen = v;
    return met;
  }
  const std::string &last_answer() const { return last_answer_; }

 private:
  std::string dir_;
  unsigned port_ = 0;
  GSubprocess *process_ = nullptr;
  std::string error_;
  std::string last_answer_;
};

// A broadcast with these sink properties, media flowing (null and a
// failure otherwise).
std::unique_ptr<Broadcast> flowing(const std::string &sink_props) {
  Broadcast::Options options;
  options.extra_sink_props = sink_props;
  auto b = std::make_unique<Broadcast>(options);
  if (!b->start() || !b->wait_media_flowing()) {
    ADD_FAILURE() << "no media flowing: " << b->last_error();
    return nullptr;
  }
  return b;
}

std::string address_of(const Broadcast &b) { return "127.0.0.1:" + std::to_string(b.port()); }

auto equals(double expected) {
  return [expected](double v) { return v == expected; };
}
auto above(double floor) {
  return [floor](double v) { return v > floor; };
}

}  // namespace

TEST(Metrics, AScrapeWithViewersWatchingPassesPromtoolAndPrometheusReadsTheirNumbers) {
  auto started = flowing("sender-threads=2 metrics-token=scrape-secret");
  ASSERT_TRUE(started);
  Broadcast &node = *started;
  WhepViewer a, b;
  ASSERT_EQ(a.connect(node.url()), 201) << a.error();
  ASSERT_EQ(b.connect(node.url()), 201) << b.error();
  ASSERT_TRUE(wait_until([&] { return a.video_frames() > 10 && b.video_frames() > 10; }, 10000ms));

  HttpResponse scrape = http_request("GET", node.url("/metrics"), "", "", {{"Authorization", "Bearer scrape-secret"}});
  ASSERT_EQ(scrape.status, 200) << scrape.body;
  EXPECT_EQ(scrape.header("content-type").rfind("text/plain; version=0.0.4", 0), 0u) << scrape.header("content-type");
  EXPECT_EQ(promtool_check(scrape.body), "") << scrape.body;
  // What a scraper without the token gets.
  HttpResponse refused = http_request("GET", node.url("/metrics"));
  EXPECT_EQ(refused.status, 401);
  EXPECT_EQ(refused.header("www-authenticate"), "Bearer");
  EXPECT_EQ(http_request("GET", node.url("/metrics"), "", "", {{"Authorization", "Bearer wrong"}}).status, 401);
  EXPECT_EQ(http_request("POST", node.url("/metrics"), "text/plain", "x", {{"Authorization", "Bearer scrape-secret"}})
                .status,
            405);

  // The same snapshot as JSON, behind the same token.
  EXPECT_EQ(http_request("GET", node.url("/stats")).status, 401);
  HttpResponse stats = http_request("GET", node.url("/stats"), "", "", {{"Authorization", "Bearer scrape-secret"}});
  ASSERT_EQ(stats.status, 200);
  EXPECT_EQ(stats.header("content-type"), "application/json");
  JsonNode *root = json_from_string(stats.body.c_str(), nullptr);
  ASSERT_TRUE(root && JSON_NODE_HOLDS_OBJECT(root)) << stats.body;
  JsonObject *o = json_node_get_object(root);
  EXPECT_EQ(json_object_get_int_member(o, "viewers"), 2);
  EXPECT_EQ(json_object_get_int_member(json_object_get_object_member(o, "offers"), "201"), 2);
  EXPECT_EQ(json_object_get_int_member(json_object_get_object_member(o, "answer_seconds"), "count"), 2);
  // The server's own answers, refusals included, which no offer count sees.
  JsonObject *http = json_object_get_object_member(o, "http_responses");
  ASSERT_TRUE(http) << stats.body;
  EXPECT_EQ(json_object_get_int_member(http, "201"), 2);
  EXPECT_EQ(json_object_get_int_member(o, "http_dropped"), 0);
  JsonObject *video = json_object_get_object_member(json_object_get_object_member(o, "streams"), "video");
  EXPECT_EQ(json_object_get_int_member(json_object_get_object_member(video, "keyframe_wait_seconds"), "count"), 2);
  EXPECT_GT(json_object_get_int_member(video, "packets_sent"), 0);
  JsonArray *shards = json_object_get_array_member(o, "shards");
  ASSERT_EQ(json_array_get_length(shards), 2u);
  EXPECT_GT(json_object_get_double_member(json_array_get_object_element(shards, 0), "cpu_seconds"), 0);
  EXPECT_GT(json_object_get_int_member(json_object_get_object_member(o, "process"), "open_fds"), 0);
  json_node_unref(root);

  Prometheus prometheus({{address_of(node), "/metrics", "scrape-secret"}});
  ASSERT_TRUE(prometheus.wait_ready()) << prometheus.error() << prometheus.log();
  double v = NAN;
  EXPECT_TRUE(prometheus.wait_value("up", equals(1), &v)) << v << " " << prometheus.log();
  EXPECT_TRUE(prometheus.wait_value("broadcast_viewers", equals(2), &v)) << v << prometheus.last_answer();
  EXPECT_TRUE(prometheus.wait_value("broadcast_sessions{state=\"connected\"}", equals(2), &v)) << v;
  EXPECT_TRUE(prometheus.wait_value("broadcast_offers_total{code=\"201\"}", equals(2), &v)) << v;
  EXPECT_TRUE(prometheus.wait_value("broadcast_answer_seconds_count", equals(2), &v)) << v;
  // Two scrapes without the right token and a /stats without one: 401s;
  // the POST: 405. Prometheus' own scrapes add 200s.
  EXPECT_TRUE(prometheus.wait_value("broadcast_http_responses_total{code=\"401\"}", equals(3), &v)) << v;
  EXPECT_TRUE(prometheus.wait_value("broadcast_http_responses_total{code=\"405\"}", equals(1), &v)) << v;
  EXPECT_TRUE(prometheus.wait_value("broadcast_http_responses_total{code=\"200\"}", above(1), &v)) << v;
  EXPECT_TRUE(prometheus.wait_value("broadcast_http_dropped_connections_total", equals(0), &v)) << v;
  EXPECT_TRUE(prometheus.wait_value("broadcast_keyframe_wait_seconds_count{stream=\"video\"}", equals(2), &v)) << v;
  EXPECT_TRUE(prometheus.wait_value("broadcast_stream_subscribers{stream=\"audio\"}", equals(2), &v)) << v;
  EXPECT_TRUE(prometheus.wait_value("broadcast_layer_viewers{stream=\"video\",layer=\"0\"}", equals(2), &v)) << v;
  EXPECT_TRUE(prometheus.wait_value("broadcast_layer_bytes_per_second{stream=\"video\",layer=\"0\"}", above(100), &v)) << v;
  // Packets keep going out: the counter grows between scrapes.
  EXPECT_TRUE(prometheus.wait_value("rate(broadcast_stream_sent_packets_total{stream=\"video\"}[5s])", above(0), &v))
      << v << prometheus.last_answer();
  EXPECT_TRUE(prometheus.wait_value("sum(broadcast_shard_subscriptions)", equals(4), &v)) << v;
  EXPECT_TRUE(prometheus.wait_value("sum(broadcast_shard_cpu_seconds_total)", above(0), &v)) << v;
  EXPECT_TRUE(prometheus.wait_value("process_open_fds", above(0), &v)) << v;
  EXPECT_TRUE(prometheus.wait_value("process_resident_memory_bytes", above(1e6), &v)) << v;
  // The viewers' receiver reports: every block counts in the loss and
  // jitter distributions, those after one of our sender reports in the
  // round trips' (rtpsession reports every few seconds, randomised).
  EXPECT_TRUE(prometheus.wait_value("broadcast_report_loss_ratio_count", above(0), &v)) << v;
  EXPECT_TRUE(prometheus.wait_value("broadcast_report_rtt_seconds_count", above(0), &v)) << v;
  EXPECT_TRUE(prometheus.wait_value("broadcast_rtcp_received_packets_total", above(0), &v)) << v;
  EXPECT_TRUE(prometheus.wait_value("broadcast_rtcp_rejected_packets_total", equals(0), &v)) << v;
  // Round trips are read in seconds: over loopback every one is well
  // under the 0.8 s bucket (a unit slip would put them far beyond it). Not
  // 0.1 s: a viewer's report can wait that long in a busy process, as in
  // one CI run under ASan (23 of 24 under 0.1 s).
  EXPECT_TRUE(prometheus.wait_value(
      "broadcast_report_rtt_seconds_bucket{le=\"0.8\"} / ignoring(le) broadcast_report_rtt_seconds_count", equals(1), &v))
      << v;

  b.disconnect();
  EXPECT_TRUE(prometheus.wait_value("broadcast_viewers", equals(1), &v)) << v;
  EXPECT_TRUE(prometheus.wait_value("broadcast_sessions_ended_total{reason=\"left\"}", equals(1), &v)) << v;
  a.disconnect();
}

TEST(Metrics, ARelayTreeShowsItsChildrenAndTheRelaysUpstream) {
  auto started = flowing("max-viewers=1");
  ASSERT_TRUE(started);
  Broadcast &root = *started;
  const unsigned child_port = free_tcp_port();
  const std::string child_url = "http://127.0.0.1:" + std::to_string(child_port) + "/whep";
  Broadcast child("relaysrc name=up ice-address=127.0.0.1 location=" + root.url() + " advertise-url=" + child_url +
                      " broadcastsink name=bs address=127.0.0.1 ice-address=127.0.0.1 port=" +
                      std::to_string(child_port) + " up.video ! queue ! bs.video up.audio ! queue ! bs.audio",
                  child_port);
  ASSERT_TRUE(child.start()) << child.last_error();
  ASSERT_TRUE(child.wait_media_flowing());

  for (Broadcast *node : {&root, &child}) {
    HttpResponse scrape = http_request("GET", node->url("/metrics"));
    ASSERT_EQ(scrape.status, 200);
    EXPECT_EQ(promtool_check(scrape.body), "") << scrape.body;
  }
  Prometheus prometheus({{address_of(root), "/metrics", ""}, {address_of(child), "/metrics", ""}});
  ASSERT_TRUE(prometheus.wait_ready()) << prometheus.error() << prometheus.log();
  double v = NAN;
  EXPECT_TRUE(prometheus.wait_value("broadcast_relay_children{job=\"node0\"}", equals(1), &v)) << v;
  EXPECT_TRUE(prometheus.wait_value("broadcast_relay_child_up{job=\"node0\",url=\"" + child_url + "\"}", equals(1),
                                    &v))
      << v << prometheus.last_answer();
  EXPECT_TRUE(prometheus.wait_value("broadcast_upstream_state{job=\"node1\",relay=\"up\",state=\"live\"}", equals(1),
                                    &v))
      << v << prometheus.last_answer();
  EXPECT_TRUE(prometheus.wait_value("broadcast_upstream_info{job=\"node1\",url=\"" + root.url() + "\"}", equals(1),
                                    &v))
      << v << prometheus.last_answer();
  // The root counts the relay among its sessions, not among its viewers.
  EXPECT_TRUE(prometheus.wait_value("broadcast_viewers{job=\"node0\"}", equals(0), &v)) << v;
  EXPECT_TRUE(prometheus.wait_value("broadcast_sessions{job=\"node0\",state=\"connected\"}", equals(1), &v)) << v;
  // A viewer beyond the root's max-viewers goes to the child, whose load
  // the root then shows.
  WhepViewer first, second;
  ASSERT_EQ(first.connect(root.url()), 201) << first.error();
  ASSERT_EQ(second.connect(root.url()), 201) << second.error();
  EXPECT_EQ(second.answered_by(), child_url);
  EXPECT_TRUE(prometheus.wait_value("broadcast_offers_total{job=\"node0\",code=\"307\"}", equals(1), &v)) << v;
  EXPECT_TRUE(prometheus.wait_value("broadcast_relay_child_viewers{job=\"node0\"}", equals(1), &v)) << v;
  second.disconnect();
  first.disconnect();
}

TEST(Metrics, ThePathCanMoveOrGoAndABadOneFailsTheStart) {
  Broadcast::Options moved;
  moved.extra_sink_props = "metrics-path=/ops/metrics";
  Broadcast a(moved);
  ASSERT_TRUE(a.start()) << a.last_error();
  EXPECT_EQ(http_request("GET", a.url("/metrics")).status, 404);
  HttpResponse scrape = http_request("GET", a.url("/ops/metrics"));
  EXPECT_EQ(scrape.status, 200);
  EXPECT_EQ(promtool_check(scrape.body), "") << scrape.body;

  Broadcast::Options none;
  none.extra_sink_props = "metrics-path=\"\"";
  Broadcast b(none);
  ASSERT_TRUE(b.start()) << b.last_error();
  EXPECT_EQ(http_request("GET", b.url("/metrics")).status, 404);
  gchar *path = nullptr;
  g_object_get(b.sink(), "metrics-path", &path, nullptr);
  EXPECT_STREQ(path, "");
  g_free(path);

  Broadcast::Options bad;
  bad.extra_sink_props = "metrics-path=/whep/metrics";
  Broadcast c(bad);
  EXPECT_FALSE(c.start());
  EXPECT_NE(c.last_error().find("metrics-path"), std::string::npos) << c.last_error();
}

namespace {

// Every line of a CLI's output as a JSON object; a line that is not one
// fails the test.
std::vector<JsonObject *> json_lines(const std::string &output, std::vector<JsonNode *> *keep) {
  std::vector<JsonObject *> objects;
  size_t start = 0;
  while (start < output.size()) {
    size_t end = output.find('\n', start);
    if (end == std::string::npos) end = output.size();
    const std::string line = output.substr(start, end - start);
    start = end + 1;
    if (line.empty()) continue;
    GError *error = nullptr;
    JsonNode *node = json_from_string(line.c_str(), &error);
    EXPECT_TRUE(node && JSON_NODE_HOLDS_OBJECT(node)) << "not a JSON object: " << line;
    g_clear_error(&error);
    if (!node) continue;
    keep->push_back(node);
    if (JSON_NODE_HOLDS_OBJECT(node)) objects.push_back(json_node_get_object(node));
  }
  return objects;
}

std::string member(JsonObject *o, const char *name) {
  return json_object_has_member(o, name) && JSON_NODE_HOLDS_VALUE(json_object_get_member(o, name)) &&
                 json_node_get_value_type(json_object_get_member(o, name)) == G_TYPE_STRING
             ? json_object_get_string_member(o, name)
             : "";
}

}  // namespace

TEST(Logs, TheCliWritesOneJsonObjectPerEventWithEachViewersAddressAndReason) {
  const char *cli = g_getenv("WB_TEST_CLI");
  ASSERT_TRUE(cli) << "WB_TEST_CLI is not set";
  const unsigned port = free_tcp_port();
  const std::string whep = "http://127.0.0.1:" + std::to_string(port) + "/whep";
  NodeProcess node({cli, "--log-format", "json", "--port", std::to_string(port), "--address", "127.0.0.1",
                    "--ice-address", "127.0.0.1"});
  WhepViewer viewer;
  int status = 0;
  ASSERT_TRUE(wait_until([&] { return (status = viewer.connect(whep)) == 201; }, 20000ms))
      << status << " " << viewer.error() << node.output();
  ASSERT_TRUE(wait_until([&] { return viewer.video_frames() > 10; }, 10000ms));
  const std::string id = viewer.session_url().substr(viewer.session_url().rfind('/') + 1);
  ASSERT_TRUE(wait_until([&] { return node.output().find("\"viewer-joined\"") != std::string::npos; }, 5000ms))
      << node.output();
  viewer.disconnect();
  ASSERT_TRUE(wait_until([&] { return node.output().find("\"viewer-left\"") != std::string::npos; }, 5000ms))
      << node.output();

  std::vector<JsonNode *> keep;
  const std::string output = node.output();
  bool started = false, joined = false, left = false;
  for (JsonObject *o : json_lines(output, &keep)) {
    EXPECT_FALSE(member(o, "time").empty());
    const std::string event = member(o, "event");
    if (event == "started") {
      started = true;
      EXPECT_EQ(member(o, "whep"), whep);
      EXPECT_EQ(member(o, "metrics"), "http://127.0.0.1:" + std::to_string(port) + "/metrics");
    } else if (event == "viewer-joined") {
      joined = true;
      EXPECT_EQ(member(o, "id"), id);
      EXPECT_EQ(member(o, "address").rfind("127.0.0.1:", 0), 0u) << output;
      EXPECT_EQ(json_object_get_int_member(o, "viewers"), 1);
    } else if (event == "viewer-left") {
      left = true;
      EXPECT_EQ(member(o, "id"), id);
      EXPECT_EQ(member(o, "reason"), "viewer left");
      EXPECT_EQ(member(o, "address").rfind("127.0.0.1:", 0), 0u) << output;
      EXPECT_EQ(json_object_get_int_member(o, "viewers"), 0);
    }
  }
  EXPECT_TRUE(started && joined && left) << output;
  for (JsonNode *n : keep) json_node_unref(n);
}
