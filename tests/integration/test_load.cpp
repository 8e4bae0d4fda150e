// The load generator (tools/load) against a real broadcast: its viewers must
// connect, authenticate every packet, and count exactly what a real
// decoding webrtcbin viewer receives over the same window.
#include <gtest/gtest.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

#include <mutex>
#include <thread>
#include <vector>

#include "support/testsupport.h"

using namespace wbtest;

namespace {

struct Sample {
  gint64 unix_ms;
  unsigned packets;
};

// The decoding viewer's video packet count at `unix_ms`, interpolated
// between the samples around it.
double packets_at(const std::vector<Sample> &samples, gint64 unix_ms) {
  for (size_t i = 1; i < samples.size(); ++i) {
    if (samples[i].unix_ms < unix_ms) continue;
    const Sample &a = samples[i - 1], &b = samples[i];
    double f = b.unix_ms == a.unix_ms ? 1 : double(unix_ms - a.unix_ms) / double(b.unix_ms - a.unix_ms);
    return a.packets + f * (double(b.packets) - double(a.packets));
  }
  return -1;
}

JsonObject *member(JsonObject *o, const char *name) { return json_object_get_object_member(o, name); }

// One run of the generator against `url` with `args`, its summary written
// as JSON: started at once, waited for by finish().
class LoadRun {
 public:
  LoadRun(const std::string &url, std::vector<std::string> args) {
    const char *load = g_getenv("WB_TEST_LOAD");
    if (!load) {
      error_ = "WB_TEST_LOAD must name build/tools/gst-broadcast-load";
      return;
    }
    int fd = g_file_open_tmp("load-XXXXXX.json", &json_path_, nullptr);
    if (fd < 0) {
      error_ = "no temporary file";
      return;
    }
    close(fd);
    std::vector<std::string> argv = {load, "--url", url, "--json", json_path_};
    argv.insert(argv.end(), args.begin(), args.end());
    std::vector<const char *> c_argv;
    for (const auto &a : argv) c_argv.push_back(a.c_str());
    c_argv.push_back(nullptr);
    GError *error = nullptr;
    process_ = g_subprocess_newv(c_argv.data(),
                                 GSubprocessFlags(G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_MERGE),
                                 &error);
    if (!process_) {
      error_ = error->message;
      g_error_free(error);
    }
  }
  ~LoadRun() {
    if (process_) {
      g_subprocess_force_exit(process_);
      g_object_unref(process_);
    }
    if (parser_) g_object_unref(parser_);
    if (json_path_) g_unlink(json_path_);
    g_free(json_path_);
  }
  const std::string &error() const { return error_; }
  // Waits for its end (printing what it printed); its exit status, -1 if
  // it did not start.
  int finish() {
    if (!process_) return -1;
    gchar *output = nullptr;
    g_subprocess_communicate_utf8(process_, nullptr, nullptr, &output, nullptr, nullptr);
    std::cout << (output ? output : "");
    g_free(output);
    const int status = g_subprocess_get_exit_status(process_);
    g_clear_object(&process_);
    parser_ = json_parser_new();
    if (!json_parser_load_from_file(parser_, json_path_, nullptr)) g_clear_object(&parser_);
    return status;
  }
  // The summary, after finish() (nullptr if it wrote none).
  JsonObject *summary() const { return parser_ ? json_node_get_object(json_parser_get_root(parser_)) : nullptr; }

 private:
  std::string error_;
  gchar *json_path_ = nullptr;
  GSubprocess *process_ = nullptr;
  JsonParser *parser_ = nullptr;
};

}  // namespace

TEST(LoadGenerator, FiveViewersCountWhatADecodingViewerReceives) {
  Broadcast broadcast(Broadcast::Options{});
  ASSERT_TRUE(broadcast.start()) << broadcast.last_error();
  ASSERT_TRUE(broadcast.wait_media_flowing());
  WhepViewer viewer;
  ASSERT_EQ(viewer.connect(broadcast.url()), 201) << viewer.error();
  ASSERT_TRUE(wait_until([&] { return viewer.video_frames() > 10; }, 10000ms));

  // The reference: the decoding viewer's packet count over time.
  std::mutex mutex;
  std::vector<Sample> samples;
  std::atomic<bool> sampling{true};
  std::thread sampler([&] {
    while (sampling) {
      {
        std::lock_guard<std::mutex> lock(mutex);
        samples.push_back({g_get_real_time() / 1000, viewer.video_packets()});
      }
      std::this_thread::sleep_for(10ms);
    }
  });

  LoadRun generator(broadcast.url(), {"--viewers", "5", "--hold", "5"});
  ASSERT_EQ(generator.error(), "");
  EXPECT_EQ(generator.finish(), 0);
  sampling = false;
  sampler.join();
  JsonObject *run = generator.summary();
  ASSERT_TRUE(run);
  EXPECT_EQ(json_object_get_int_member(run, "connected"), 5);
  EXPECT_EQ(json_object_get_int_member(run, "failed"), 0);
  EXPECT_EQ(json_object_get_int_member(run, "never_got_media"), 0);
  EXPECT_EQ(json_object_get_int_member(run, "keyframes_seen"), 5);
  EXPECT_EQ(json_object_get_int_member(run, "lost"), 0);
  JsonObject *verification = member(run, "verification");
  EXPECT_EQ(json_object_get_int_member(verification, "sampled_viewers"), 5);
  EXPECT_GT(json_object_get_int_member(verification, "packets"), 1000);
  EXPECT_EQ(json_object_get_int_member(verification, "failures"), 0);

  JsonObject *window = member(run, "window");
  double seconds = json_object_get_double_member(window, "seconds");
  ASSERT_GT(seconds, 4.5);
  double start = packets_at(samples, json_object_get_int_member(window, "start_unix_ms"));
  double end = packets_at(samples, json_object_get_int_member(window, "end_unix_ms"));
  ASSERT_GE(start, 0);
  ASSERT_GT(end, start);
  double reference = (end - start) / seconds;
  std::cout << "[ load     ] decoding viewer: " << reference << " video packets/s\n";
  JsonArray *viewers = json_object_get_array_member(run, "per_viewer");
  ASSERT_EQ(json_array_get_length(viewers), 5u);
  for (guint i = 0; i < 5; ++i) {
    JsonObject *v = json_array_get_object_element(viewers, i);
    double rate = double(json_object_get_int_member(v, "window_video_packets")) / seconds;
    std::cout << "[ load     ] generator viewer " << i << ": " << rate << " video packets/s, first keyframe after "
              << json_object_get_double_member(v, "first_keyframe_ms") << " ms\n";
    EXPECT_NEAR(rate, reference, reference * 0.05) << "viewer " << i;
    EXPECT_GE(json_object_get_double_member(v, "first_keyframe_ms"), 0) << "viewer " << i;
  }
}

namespace {

// The video stream's keyframe counters from the node's /stats.
struct KeyframeCounts {
  int64_t sent = -1;
  int64_t refused = -1;
};

KeyframeCounts keyframe_counts(const Broadcast &node) {
  return {video_stream_stat(node.url("/stats"), "keyframe_requests_sent"),
          video_stream_stat(node.url("/stats"), "keyframe_requests_refused")};
}

}  // namespace

// Issue 14's case: a viewer whose network loses every keyframe asks for one
// again and again. It must not make the encoder send a keyframe to everyone
// each time: its requests back off (1 s, 2 s, 4 s...), the rest are
// refused, and a viewer beside it keeps decoding.
TEST(LoadGenerator, AViewerAskingForAKeyframeEvery100msCostsTheOthersAFew) {
  const char *load = g_getenv("WB_TEST_LOAD");
  ASSERT_TRUE(load) << "WB_TEST_LOAD must name build/tools/gst-broadcast-load";
  Broadcast::Options options;
  options.gop = 900;  // 30 s: the stream's own keyframes do not come in between
  options.extra_sink_props = "metrics-path=/metrics";
  Broadcast broadcast(options);
  ASSERT_TRUE(broadcast.start()) << broadcast.last_error();
  ASSERT_TRUE(broadcast.wait_media_flowing());
  WhepViewer viewer;
  ASSERT_EQ(viewer.connect(broadcast.url()), 201) << viewer.error();
  ASSERT_TRUE(wait_until([&] { return viewer.video_frames() > 10; }, 10000ms));
  const KeyframeCounts before = keyframe_counts(broadcast);
  ASSERT_GE(before.sent, 0);
  const unsigned frames_before = viewer.video_frames();

  GError *error = nullptr;
  GSubprocess *process = g_subprocess_new(
      GSubprocessFlags(G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_MERGE), &error, load, "--url",
      broadcast.url().c_str(), "--viewers", "1", "--hold", "8", "--pli-interval", "0.1", nullptr);
  ASSERT_TRUE(process) << error->message;
  gchar *output = nullptr;
  g_subprocess_communicate_utf8(process, nullptr, nullptr, &output, nullptr, nullptr);
  std::cout << output;
  EXPECT_EQ(g_subprocess_get_exit_status(process), 0);
  g_free(output);
  g_object_unref(process);

  const KeyframeCounts after = keyframe_counts(broadcast);
  const int64_t sent = after.sent - before.sent, refused = after.refused - before.refused;
  std::cout << "[ load     ] keyframe requests upstream: " << sent << ", refused: " << refused << "\n";
  // About 75 PLIs in 8 s. Upstream: the join, then this viewer's at 0, 1, 3
  // and 7 s; the 250-ms coalescing alone would have passed about 32.
  EXPECT_LE(sent, 6);
  EXPECT_GE(refused, 50);
  // The viewer beside it went on decoding.
  EXPECT_GT(viewer.video_frames(), frames_before + 100);
}

// A node answers 409 with Retry-After until its media flows (a relay just
// after it connected upstream, a broadcast whose encoder is starting). The
// generator's viewers ask again after it, as a browser page does, instead
// of counting the node as failed.
TEST(LoadGenerator, ViewersRefusedUntilMediaFlowsAskAgainAfterRetryAfter) {
  const unsigned port = free_tcp_port();
  Broadcast node("videotestsrc is-live=true pattern=ball ! video/x-raw,width=320,height=240,framerate=30/1 ! "
                 "x264enc tune=zerolatency speed-preset=ultrafast key-int-max=30 bitrate=500 ! "
                 "valve name=vv drop=true ! bs.video audiotestsrc is-live=true ! opusenc ! valve name=av drop=true ! "
                 "bs.audio broadcastsink name=bs address=127.0.0.1 ice-address=127.0.0.1 port=" +
                     std::to_string(port),
                 port);
  ASSERT_TRUE(node.start()) << node.last_error();

  LoadRun generator(node.url(), {"--viewers", "3", "--hold", "2"});
  ASSERT_EQ(generator.error(), "");
  // Media flows only once the node has refused every viewer's offer.
  auto refused = [&] {
    HttpResponse r = http_request("GET", node.url("/stats"));
    JsonParser *parser = json_parser_new();
    int64_t count = 0;
    if (r.status == 200 && json_parser_load_from_data(parser, r.body.c_str(), -1, nullptr)) {
      JsonObject *offers = json_object_get_object_member(json_node_get_object(json_parser_get_root(parser)), "offers");
      if (offers && json_object_has_member(offers, "409")) count = json_object_get_int_member(offers, "409");
    }
    g_object_unref(parser);
    return count;
  };
  const bool saw_refusal = wait_until([&] { return refused() >= 3; }, 10000ms);
  for (const char *valve : {"vv", "av"}) {
    GstElement *v = gst_bin_get_by_name(GST_BIN(node.pipeline()), valve);
    g_object_set(v, "drop", FALSE, nullptr);
    gst_object_unref(v);
  }
  const int status = generator.finish();
  ASSERT_TRUE(saw_refusal) << "the node did not refuse the three offers";
  EXPECT_EQ(status, 0);
  JsonObject *run = generator.summary();
  ASSERT_TRUE(run);
  EXPECT_EQ(json_object_get_int_member(run, "connected"), 3);
  EXPECT_EQ(json_object_get_int_member(run, "keyframes_seen"), 3);
  EXPECT_GE(json_object_get_int_member(run, "offers_sent_again"), 3);
  EXPECT_GE(refused(), 3);
}
