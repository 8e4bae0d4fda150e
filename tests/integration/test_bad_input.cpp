// Bad input gets the right status and message over real HTTP, and nothing
// else is disturbed: the viewer already watching keeps decoding.
#include <gtest/gtest.h>

#include <memory>

#include "support/testsupport.h"

using namespace wbtest;

class BadInput : public WatchedBroadcast {
 protected:
  void SetUp() override { start("max-viewers=2"); }
  void TearDown() override {
    // Whatever was thrown at the server, the watcher is still served.
    expect_watcher_served();
    EXPECT_EQ(broadcast_->viewer_count(), 1u);
    EXPECT_TRUE(broadcast_->last_error().empty()) << broadcast_->last_error();
  }
};

TEST_F(BadInput, WrongContentTypeIs415) {
  HttpResponse r = http_request("POST", url(), "application/json", make_offer({}));
  EXPECT_EQ(r.status, 415);
  EXPECT_NE(r.body.find("application/sdp"), std::string::npos) << r.body;
  EXPECT_EQ(r.header("accept-post"), "application/sdp");
}

TEST_F(BadInput, MalformedSdpIs400) {
  HttpResponse r = http_request("POST", url(), "application/sdp", "this is not SDP");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("malformed SDP"), std::string::npos) << r.body;
  r = http_request("POST", url(), "application/sdp", "");
  EXPECT_EQ(r.status, 400);
}

TEST_F(BadInput, OfferWithoutACodecWeSendIs406) {
  WhepViewer::Options options;
  options.video_codec = "VP9";
  options.audio = false;
  HttpResponse r = http_request("POST", url(), "application/sdp", make_offer(options));
  EXPECT_EQ(r.status, 406);
  EXPECT_NE(r.body.find("H264"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("VP9"), std::string::npos) << r.body;
}

TEST_F(BadInput, UnknownSessionIs404) {
  EXPECT_EQ(http_request("DELETE", url("/whep/0000deadbeef")).status, 404);
  EXPECT_EQ(http_request("GET", url("/nope")).status, 404);
}

TEST_F(BadInput, WrongMethodIs405) {
  HttpResponse r = http_request("GET", url());
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(r.header("allow"), "POST, OPTIONS");
  EXPECT_EQ(http_request("PUT", url("/whep/abc")).status, 405);
}

TEST_F(BadInput, OversizedBodyIs413) {
  std::string huge = make_offer({});
  while (huge.size() <= 64 * 1024) huge += "a=x-padding:" + std::string(1000, 'x') + "\r\n";
  EXPECT_EQ(http_request("POST", url(), "application/sdp", huge).status, 413);
}

TEST_F(BadInput, FullBroadcastIs503WithRetryAfter) {
  WhepViewer second;
  ASSERT_EQ(second.connect(url()), 201);
  HttpResponse r = http_request("POST", url(), "application/sdp", make_offer({}));
  EXPECT_EQ(r.status, 503);
  EXPECT_FALSE(r.header("retry-after").empty());
  EXPECT_NE(r.body.find("max-viewers"), std::string::npos) << r.body;
  second.disconnect();
  EXPECT_TRUE(wait_until([&] { return broadcast_->viewer_count() == 1; }, 3000ms));
}

TEST_F(BadInput, OptionsAnswersCors) {
  HttpResponse r = http_request("OPTIONS", url());
  EXPECT_EQ(r.status, 204);
  EXPECT_EQ(r.header("accept-post"), "application/sdp");
  EXPECT_EQ(r.header("access-control-allow-origin"), "*");
}

TEST_F(BadInput, PageIsServed) {
  HttpResponse r = http_request("GET", url("/"));
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.header("content-type").find("text/html"), std::string::npos);
  EXPECT_NE(r.body.find("RTCPeerConnection"), std::string::npos);
}

TEST(NoMedia, OfferBeforeMediaFlowsIs409WithRetryAfter) {
  unsigned port = free_tcp_port();
  // appsrc that never pushes: the sink has a video pad but no stream yet.
  Broadcast broadcast("appsrc is-live=true format=time caps=video/x-h264,stream-format=byte-stream,alignment=au "
                      "! bs.video broadcastsink name=bs address=127.0.0.1 ice-address=127.0.0.1 port=" +
                          std::to_string(port),
                      port);
  ASSERT_TRUE(broadcast.start()) << broadcast.last_error();
  HttpResponse r = http_request("POST", broadcast.url(), "application/sdp", make_offer({}));
  EXPECT_EQ(r.status, 409);
  EXPECT_FALSE(r.header("retry-after").empty());
  EXPECT_EQ(broadcast.viewer_count(), 0u);
}

TEST(NoMedia, PortInUseFailsTheStateChangeWithAnError) {
  Broadcast first(Broadcast::Options{});
  ASSERT_TRUE(first.start());
  Broadcast second("videotestsrc is-live=true ! x264enc ! bs.video broadcastsink name=bs address=127.0.0.1 port=" +
                       std::to_string(first.port()),
                   first.port());
  EXPECT_FALSE(second.start());
}
