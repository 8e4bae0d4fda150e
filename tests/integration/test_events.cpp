// The WHEP server-sent events extension: a viewer's 201 links its events,
// a POST picks them, and the stream it opens tells the viewer count, the
// broadcast pausing and resuming, and ends with the session. Read here off
// a plain socket, as a browser's EventSource reads it.
#include <gio/gio.h>
#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "support/testsupport.h"

using namespace wbtest;

namespace {

// GET of an event stream on 127.0.0.1; a thread reads its events.
class EventStream {
 public:
  EventStream(unsigned port, const std::string &path) {
    cancel_ = g_cancellable_new();
    GSocketClient *client = g_socket_client_new();
    connection_ = g_socket_client_connect_to_host(client, "127.0.0.1", guint16(port), nullptr, nullptr);
    g_object_unref(client);
    if (!connection_) return;
    const std::string request = "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n";
    g_output_stream_write_all(g_io_stream_get_output_stream(G_IO_STREAM(connection_)), request.data(), request.size(),
                              nullptr, nullptr, nullptr);
    reader_ = std::thread([this] { read(); });
  }
  ~EventStream() {
    g_cancellable_cancel(cancel_);
    if (reader_.joinable()) reader_.join();
    if (connection_) g_object_unref(connection_);
    g_object_unref(cancel_);
  }
  int status() const { return status_.load(); }
  bool ended() const { return ended_.load(); }
  // Waits for an event named `name` whose data contains `data`, after the
  // events seen before.
  bool wait_event(const std::string &name, const std::string &data, std::chrono::milliseconds timeout) {
    return wait_until([&] {
      std::lock_guard<std::mutex> lock(mutex_);
      for (; next_ < events_.size(); ++next_)
        if (events_[next_].first == name && events_[next_].second.find(data) != std::string::npos) {
          ++next_;
          return true;
        }
      return false;
    }, timeout);
  }
  std::string seen() {
    std::lock_guard<std::mutex> lock(mutex_);
    std::string out;
    for (const auto &e : events_) out += e.first + " " + e.second + "; ";
    return out;
  }

 private:
  void read() {
    GDataInputStream *in = g_data_input_stream_new(g_io_stream_get_input_stream(G_IO_STREAM(connection_)));
    bool body = false;
    std::string name;
    for (;;) {
      gchar *raw = g_data_input_stream_read_line(in, nullptr, cancel_, nullptr);
      if (!raw) break;
      std::string line = raw;
      g_free(raw);
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (!status_.load() && line.rfind("HTTP/1.1 ", 0) == 0) status_ = std::stoi(line.substr(9, 3));
      if (!body) {
        body = line.empty();
        continue;
      }
      // Chunk sizes and blank lines aside, the lines are the events'.
      if (line.rfind("event: ", 0) == 0) {
        name = line.substr(7);
      } else if (line.rfind("data: ", 0) == 0) {
        std::lock_guard<std::mutex> lock(mutex_);
        events_.emplace_back(name, line.substr(6));
      }
    }
    g_object_unref(in);
    ended_ = true;
  }

  GSocketConnection *connection_ = nullptr;
  GCancellable *cancel_ = nullptr;
  std::thread reader_;
  std::atomic<int> status_{0};
  std::atomic<bool> ended_{false};
  std::mutex mutex_;
  std::vector<std::pair<std::string, std::string>> events_;
  size_t next_ = 0;
};

// The URI of the Link with this relation ("" if none).
std::string link_of(const std::string &links, const std::string &relation) {
  const size_t rel = links.find("rel=\"" + relation + "\"");
  if (rel == std::string::npos) return "";
  const size_t open = links.rfind('<', rel), close = links.find('>', open);
  return open == std::string::npos || close == std::string::npos ? "" : links.substr(open + 1, close - open - 1);
}

std::string events_link(const std::string &links) {
  return link_of(links, "urn:ietf:params:whep:ext:core:server-sent-events");
}

void set_valves(GstElement *pipeline, bool drop) {
  for (const char *name : {"vv", "av"}) {
    GstElement *valve = gst_bin_get_by_name(GST_BIN(pipeline), name);
    g_object_set(valve, "drop", drop, nullptr);
    gst_object_unref(valve);
  }
}

}  // namespace

TEST(Events, AViewerHearsTheCountThePauseAndTheResumeAndItsStreamEndsWithItsSession) {
  const unsigned port = free_tcp_port();
  Broadcast node("videotestsrc is-live=true pattern=ball ! video/x-raw,width=320,height=240,framerate=30/1 ! "
                 "x264enc tune=zerolatency speed-preset=ultrafast key-int-max=30 bitrate=500 ! valve name=vv ! "
                 "bs.video audiotestsrc is-live=true ! opusenc ! valve name=av ! bs.audio "
                 "broadcastsink name=bs address=127.0.0.1 ice-address=127.0.0.1 max-http-connections=2 port=" +
                     std::to_string(port),
                 port);
  ASSERT_TRUE(node.start()) << node.last_error();
  ASSERT_TRUE(node.wait_media_flowing());
  WhepViewer a;
  ASSERT_EQ(a.connect(node.url()), 201) << a.error();
  EXPECT_NE(a.link().find("events=\"active,inactive,viewercount,layers\""), std::string::npos) << a.link();
  const std::string sse = events_link(a.link());
  const std::string session_path = a.session_url().substr(a.session_url().find("/whep/"));
  ASSERT_EQ(sse, session_path + "/sse") << a.link();

  // What a bad subscription gets, before the good one.
  EXPECT_EQ(http_request("POST", node.url(sse), "application/json", "{\"viewercount\":1}").status, 400);
  EXPECT_EQ(http_request("POST", node.url("/whep/0123456789abcdef/sse"), "application/json", "[\"active\"]").status,
            404);
  EXPECT_EQ(http_request("GET", node.url(sse)).status, 405);
  HttpResponse subscribed =
      http_request("POST", node.url(sse), "application/json", "[\"active\",\"inactive\",\"viewercount\",\"layers\"]");
  ASSERT_EQ(subscribed.status, 201) << subscribed.body;
  const std::string events_path = subscribed.header("location");
  EXPECT_EQ(events_path, session_path + "/sse/events");

  EventStream stream(port, events_path);
  // It starts with the state as it is.
  EXPECT_TRUE(stream.wait_event("active", "{}", 5000ms)) << stream.seen();
  EXPECT_TRUE(stream.wait_event("viewercount", "{\"viewercount\":1}", 5000ms)) << stream.seen();
  EXPECT_EQ(stream.status(), 200);

  WhepViewer b;
  ASSERT_EQ(b.connect(node.url()), 201) << b.error();
  EXPECT_TRUE(stream.wait_event("viewercount", "{\"viewercount\":2}", 5000ms)) << stream.seen();
  // b's stream too: two streams open, yet max-http-connections=2 still
  // leaves room for other requests (a stream is its session's, not a
  // connection waiting for its request).
  // b's events resource exists once b subscribes.
  EXPECT_EQ(http_request("GET", node.url(events_link(b.link()) + "/events")).status, 404);
  ASSERT_EQ(http_request("POST", node.url(events_link(b.link())), "application/json", "[\"viewercount\"]").status, 201);
  EventStream other(port, events_link(b.link()) + "/events");
  EXPECT_TRUE(other.wait_event("viewercount", "{\"viewercount\":2}", 5000ms)) << other.seen();
  EXPECT_EQ(http_request("GET", node.url("/")).status, 200);
  b.disconnect();
  EXPECT_TRUE(stream.wait_event("viewercount", "{\"viewercount\":1}", 5000ms)) << stream.seen();
  EXPECT_TRUE(wait_until([&] { return other.ended(); }, 5000ms)) << "b's stream outlived b's session";

  set_valves(node.pipeline(), true);
  EXPECT_TRUE(stream.wait_event("inactive", "{}", 8000ms)) << stream.seen();
  set_valves(node.pipeline(), false);
  EXPECT_TRUE(stream.wait_event("active", "{}", 8000ms)) << stream.seen();

  EXPECT_EQ(http_request("GET", node.url("/whep/0123456789abcdef/sse/events")).status, 404);
  a.disconnect();
  EXPECT_TRUE(wait_until([&] { return stream.ended(); }, 5000ms)) << "the stream outlived its session";
}

TEST(Events, DeleteEndsAStreamAndTheSessionGoesOn) {
  Broadcast node(Broadcast::Options{});
  ASSERT_TRUE(node.start()) << node.last_error();
  ASSERT_TRUE(node.wait_media_flowing());
  WhepViewer a;
  ASSERT_EQ(a.connect(node.url()), 201) << a.error();
  const std::string sse = events_link(a.link());
  HttpResponse subscribed = http_request("POST", node.url(sse), "application/json", "[\"viewercount\"]");
  ASSERT_EQ(subscribed.status, 201);
  EventStream stream(node.port(), subscribed.header("location"));
  EXPECT_TRUE(stream.wait_event("viewercount", "{\"viewercount\":1}", 5000ms)) << stream.seen();
  EXPECT_EQ(http_request("DELETE", node.url(subscribed.header("location"))).status, 200);
  EXPECT_TRUE(wait_until([&] { return stream.ended(); }, 5000ms));
  EXPECT_EQ(http_request("DELETE", node.url(subscribed.header("location"))).status, 404);
  // The subscription went with it: no stream until the next POST.
  EXPECT_EQ(http_request("GET", node.url(subscribed.header("location"))).status, 404);
  // Only the events asked for: no "active" came.
  EXPECT_EQ(stream.seen().find("active"), std::string::npos) << stream.seen();
  EXPECT_TRUE(wait_until([&] { return a.video_frames() > 30; }, 10000ms));
  a.disconnect();
}

// The layers event tells a viewer which layer it is sent, of which, and
// what its network is estimated to carry; a POST to its layer link pins a
// layer, {} gives the choice back to its feedback.
TEST(Events, TheLayersEventFollowsTheViewersLayerAndAPostPinsOne) {
  const unsigned port = free_tcp_port();
  const std::string x264 = "x264enc tune=zerolatency speed-preset=ultrafast key-int-max=30 ";
  Broadcast node(
      "videotestsrc is-live=true pattern=ball ! video/x-raw,width=640,height=360,framerate=30/1 ! tee name=t "
      "t. ! queue ! " + x264 + "bitrate=800 ! video/x-h264,profile=constrained-baseline ! bs.video "
      "t. ! queue ! videoscale ! video/x-raw,width=320,height=180 ! " + x264 +
          "bitrate=200 ! video/x-h264,profile=constrained-baseline ! bs.video_1 "
      "broadcastsink name=bs address=127.0.0.1 ice-address=127.0.0.1 port=" + std::to_string(port),
      port);
  ASSERT_TRUE(node.start()) << node.last_error();
  ASSERT_TRUE(node.wait_media_flowing());
  WhepViewer::Options no_audio;
  no_audio.audio = false;
  WhepViewer viewer(no_audio);
  ASSERT_EQ(viewer.connect(node.url()), 201) << viewer.error();
  ASSERT_TRUE(wait_until([&] { return viewer.video_frames() > 10; }, 10000ms));
  const std::string layer = link_of(viewer.link(), "urn:ietf:params:whep:ext:core:layer");
  const std::string session_path = viewer.session_url().substr(viewer.session_url().find("/whep/"));
  ASSERT_EQ(layer, session_path + "/layer") << viewer.link();
  HttpResponse subscribed = http_request("POST", node.url(events_link(viewer.link())), "application/json", "[\"layers\"]");
  ASSERT_EQ(subscribed.status, 201) << subscribed.body;
  EventStream stream(port, subscribed.header("location"));
  EXPECT_TRUE(stream.wait_event("layers", "{\"video\":{\"layer\":0,\"wanted\":0,\"paused\":false,\"pinned\":false,"
                                "\"codec\":\"H264\",\"estimate\":", 5000ms))
      << stream.seen();
  EXPECT_NE(stream.seen().find("\"layers\":[{\"encodingId\":\"0\",\"bitrate\":"), std::string::npos) << stream.seen();
  EXPECT_NE(stream.seen().find("{\"encodingId\":\"1\",\"bitrate\":"), std::string::npos) << stream.seen();

  // Refused: not an object, a layer the node lacks, an unknown session.
  EXPECT_EQ(http_request("POST", node.url(layer), "application/json", "[1]").status, 400);
  HttpResponse none = http_request("POST", node.url(layer), "application/json", "{\"encodingId\":\"3\"}");
  EXPECT_EQ(none.status, 400);
  EXPECT_NE(none.body.find("no layer 3"), std::string::npos) << none.body;
  EXPECT_EQ(http_request("POST", node.url("/whep/0123456789abcdef0123456789abcdef/layer"), "application/json", "{}")
                .status,
            404);
  EXPECT_EQ(http_request("GET", node.url(layer)).status, 405);

  EXPECT_EQ(http_request("POST", node.url(layer), "application/json", "{\"encodingId\":\"1\"}").status, 204);
  EXPECT_TRUE(stream.wait_event("layers", "\"layer\":1,\"wanted\":1,\"paused\":false,\"pinned\":true", 5000ms))
      << stream.seen();
  EXPECT_TRUE(wait_until([&] { return viewer.video_width() == 320u; }, 5000ms)) << viewer.video_width();
  EXPECT_EQ(http_request("POST", node.url(layer), "application/json", "{}").status, 204);
  EXPECT_TRUE(stream.wait_event("layers", "\"pinned\":false", 5000ms)) << stream.seen();
  viewer.disconnect();
  EXPECT_TRUE(wait_until([&] { return stream.ended(); }, 5000ms));
}
