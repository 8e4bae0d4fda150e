// WHEP request handling decided from method, path, content type and size.
#include <gtest/gtest.h>

#include "signalling/server.h"

using namespace wb;

TEST(WhepRoutes, PostSdpJoins) {
  Route r = route_request("POST", "/whep", "application/sdp", 3000);
  EXPECT_EQ(r.action, Route::Action::Join);
  EXPECT_EQ(route_request("POST", "/whep", "application/sdp; charset=utf-8", 10).action, Route::Action::Join);
}

TEST(WhepRoutes, WrongContentTypeIs415) {
  Route r = route_request("POST", "/whep", "application/json", 100);
  EXPECT_EQ(r.action, Route::Action::Reply);
  EXPECT_EQ(r.reply.status, 415);
  EXPECT_EQ(r.reply.headers["Accept-Post"], "application/sdp");
  EXPECT_NE(r.reply.body.find("application/sdp"), std::string::npos);
  EXPECT_EQ(route_request("POST", "/whep", "", 100).reply.status, 415);
}

TEST(WhepRoutes, OversizedBodyIs413) {
  EXPECT_EQ(route_request("POST", "/whep", "application/sdp", kMaxOfferBytes + 1).reply.status, 413);
  EXPECT_EQ(route_request("POST", "/whep", "application/sdp", kMaxOfferBytes).action, Route::Action::Join);
}

TEST(WhepRoutes, WrongMethodIs405WithAllow) {
  Route r = route_request("GET", "/whep", "", 0);
  EXPECT_EQ(r.reply.status, 405);
  EXPECT_EQ(r.reply.headers["Allow"], "POST, OPTIONS");
  Route s = route_request("PATCH", "/whep/abc", "application/trickle-ice-sdpfrag", 10);
  EXPECT_EQ(s.reply.status, 405);
  EXPECT_EQ(s.reply.headers["Allow"], "DELETE, OPTIONS");
  EXPECT_EQ(route_request("POST", "/", "", 0).reply.status, 405);
}

TEST(WhepRoutes, OptionsAnswersCorsAndAcceptPost) {
  Route r = route_request("OPTIONS", "/whep", "", 0);
  EXPECT_EQ(r.reply.status, 204);
  EXPECT_EQ(r.reply.headers["Accept-Post"], "application/sdp");
  EXPECT_EQ(r.reply.headers["Access-Control-Allow-Origin"], "*");
  EXPECT_NE(r.reply.headers["Access-Control-Allow-Methods"].find("POST"), std::string::npos);
}

TEST(WhepRoutes, DeleteSessionAndPage) {
  Route r = route_request("DELETE", "/whep/0123abcd", "", 0);
  EXPECT_EQ(r.action, Route::Action::Leave);
  EXPECT_EQ(r.session_id, "0123abcd");
  EXPECT_EQ(route_request("GET", "/", "", 0).action, Route::Action::Page);
  EXPECT_EQ(route_request("GET", "/nothing", "", 0).reply.status, 404);
  EXPECT_EQ(route_request("DELETE", "/whep/", "", 0).reply.status, 404);
}

TEST(WhepRoutes, JoinReplies) {
  SessionHandler::Join ok{201, "abc", "v=0\r\n", "", 0};
  HttpReply created = join_reply(ok);
  EXPECT_EQ(created.status, 201);
  EXPECT_EQ(created.headers["Location"], "/whep/abc");
  EXPECT_EQ(created.content_type, "application/sdp");
  EXPECT_EQ(created.body, "v=0\r\n");
  EXPECT_FALSE(created.headers["ETag"].empty());

  HttpReply full = join_reply(SessionHandler::Join{503, "", "", "full", 5});
  EXPECT_EQ(full.status, 503);
  EXPECT_EQ(full.headers["Retry-After"], "5");
  EXPECT_NE(full.body.find("full"), std::string::npos);
}

TEST(WhipRoutes, TokenIsRequiredAndCheckedAs401) {
  Endpoint whip;
  whip.path = "/whip";
  whip.token = "s3cret";
  whip.viewer_page = false;
  Route none = route_request("POST", "/whip", "application/sdp", 100, whip, "");
  EXPECT_EQ(none.reply.status, 401);
  EXPECT_EQ(none.reply.headers["WWW-Authenticate"], "Bearer");
  EXPECT_EQ(route_request("POST", "/whip", "application/sdp", 100, whip, "Bearer nope").reply.status, 401);
  EXPECT_EQ(route_request("POST", "/whip", "application/sdp", 100, whip, "Bearer s3cre").reply.status, 401);
  EXPECT_EQ(route_request("POST", "/whip", "application/sdp", 100, whip, "Basic s3cret").reply.status, 401);
  EXPECT_EQ(route_request("POST", "/whip", "application/sdp", 100, whip, "Bearer s3cret").action,
            Route::Action::Join);
  // Wrong content type is still 415, whatever the token.
  EXPECT_EQ(route_request("POST", "/whip", "text/plain", 100, whip, "Bearer s3cret").reply.status, 415);
  // Anyone who saw a session id must not be able to end a live publisher.
  EXPECT_EQ(route_request("DELETE", "/whip/abc", "", 0, whip).reply.status, 401);
  EXPECT_EQ(route_request("DELETE", "/whip/abc", "", 0, whip, "Bearer nope").reply.status, 401);
  EXPECT_EQ(route_request("DELETE", "/whip/abc", "", 0, whip, "Bearer s3cret").action, Route::Action::Leave);
  EXPECT_EQ(route_request("GET", "/", "", 0, whip).reply.status, 404);
}

TEST(WhepRoutes, StatusIsAGetOnTheEndpoint) {
  EXPECT_EQ(route_request("GET", "/whep/status", "", 0).action, Route::Action::Status);
  EXPECT_EQ(route_request("POST", "/whep/status", "application/sdp", 10).reply.status, 405);
}

TEST(WhepRoutes, RedirectIs307WithLocation) {
  SessionHandler::Join redirect;
  redirect.status = 307;
  redirect.location = "http://10.0.0.2:8081/whep";
  HttpReply r = join_reply(redirect);
  EXPECT_EQ(r.status, 307);
  EXPECT_EQ(r.headers["Location"], "http://10.0.0.2:8081/whep");
}

TEST(WhepRoutes, IceServersBecomeLinkHeaders) {
  auto links = ice_server_links({"stun://stun.example.org:3478", "turn://al%40ice:pa%3Ass@turn.example.org:3478"});
  ASSERT_EQ(links.size(), 2u);
  EXPECT_EQ(links[0], "<stun:stun.example.org:3478>; rel=\"ice-server\"");
  EXPECT_EQ(links[1], "<turn:turn.example.org:3478>; rel=\"ice-server\"; username=\"al@ice\"; "
                      "credential=\"pa:ss\"; credential-type=\"password\"");
  Endpoint ep;
  ep.ice_servers = {"stun://stun.example.org:3478"};
  SessionHandler::Join ok{201, "abc", "v=0\r\n", "", 0};
  EXPECT_EQ(join_reply(ok, ep).headers["Link"], links[0]);
  EXPECT_EQ(route_request("OPTIONS", "/whep", "", 0, ep).reply.headers["Link"], links[0]);
}

TEST(WhepRoutes, EventsLiveUnderTheSessionOnlyWhereTheEndpointOffersThem) {
  Endpoint with;
  with.events = true;
  Route subscribe = route_request("POST", "/whep/abc/sse", "application/json", 40, with);
  EXPECT_EQ(subscribe.action, Route::Action::Subscribe);
  EXPECT_EQ(subscribe.session_id, "abc");
  EXPECT_EQ(route_request("POST", "/whep/abc/sse", "application/json", kMaxEventRequestBytes + 1, with).reply.status,
            413);
  Route stream = route_request("GET", "/whep/abc/sse/events", "", 0, with);
  EXPECT_EQ(stream.action, Route::Action::EventStream);
  EXPECT_EQ(stream.session_id, "abc");
  EXPECT_EQ(route_request("DELETE", "/whep/abc/sse/events", "", 0, with).action, Route::Action::EndEvents);
  EXPECT_EQ(route_request("PUT", "/whep/abc/sse/events", "", 0, with).reply.status, 405);
  EXPECT_EQ(route_request("GET", "/whep/abc/other", "", 0, with).reply.status, 404);
  // A WHIP endpoint (no events): the same paths are unknown.
  EXPECT_EQ(route_request("POST", "/whep/abc/sse", "application/json", 40).reply.status, 404);
  // A DELETE of the session itself is unchanged.
  EXPECT_EQ(route_request("DELETE", "/whep/abc", "", 0, with).action, Route::Action::Leave);
}

TEST(WhepRoutes, MetricsWantTheirTokenWhenOneIsSet) {
  Endpoint e;
  e.metrics_path = "/metrics";
  EXPECT_EQ(route_request("GET", "/metrics", "", 0, e).action, Route::Action::Metrics);
  e.metrics_token = "s3cret";
  EXPECT_EQ(route_request("GET", "/metrics", "", 0, e).reply.status, 401);
  EXPECT_EQ(route_request("GET", "/metrics", "", 0, e, "Bearer nope").reply.status, 401);
  EXPECT_EQ(route_request("GET", "/metrics", "", 0, e, "Bearer s3cret").action, Route::Action::Metrics);
  EXPECT_EQ(route_request("POST", "/metrics", "", 0, e, "Bearer s3cret").reply.status, 405);
  e.metrics_path.clear();
  EXPECT_EQ(route_request("GET", "/metrics", "", 0, e).reply.status, 404);
}

TEST(WhepRoutes, DashboardIsServedWithTheMetricsAndWithoutTheirToken) {
  Endpoint e;
  e.metrics_path = "/metrics";
  e.metrics_token = "s3cret";
  // The page carries no numbers: it fetches /stats, which wants the token.
  EXPECT_EQ(route_request("GET", "/dashboard", "", 0, e).action, Route::Action::Dashboard);
  EXPECT_EQ(route_request("HEAD", "/dashboard", "", 0, e).action, Route::Action::Dashboard);
  EXPECT_EQ(route_request("GET", "/stats", "", 0, e).reply.status, 401);
  EXPECT_EQ(route_request("GET", "/stats", "", 0, e, "Bearer s3cret").action, Route::Action::Stats);
  const Route post = route_request("POST", "/dashboard", "text/plain", 3, e);
  EXPECT_EQ(post.reply.status, 405);
  EXPECT_EQ(post.reply.headers.at("Allow"), "GET, HEAD");
  EXPECT_EQ(route_request("GET", "/dashboard/", "", 0, e).reply.status, 404);
  e.metrics_path.clear();
  EXPECT_EQ(route_request("GET", "/dashboard", "", 0, e).reply.status, 404);
}

TEST(WhepRoutes, LayerRequestsPinALayerOrGiveTheChoiceBack) {
  int layer = 7;
  EXPECT_TRUE(parse_layer_request("{\"encodingId\":\"2\"}", &layer));
  EXPECT_EQ(layer, 2);
  EXPECT_TRUE(parse_layer_request("{\"encodingId\":1,\"mediaId\":\"0\"}", &layer));
  EXPECT_EQ(layer, 1);
  EXPECT_TRUE(parse_layer_request("{}", &layer));
  EXPECT_EQ(layer, -1);
  EXPECT_TRUE(parse_layer_request("{\"encodingId\":null}", &layer));
  EXPECT_EQ(layer, -1);
  for (const char *bad : {"", "[]", "{\"encodingId\":\"x\"}", "{\"encodingId\":-1}", "{\"encodingId\":\"99\"}",
                          "{\"encodingId\":true}", "{\"encodingId\":\" 1\"}"}) {
    EXPECT_FALSE(parse_layer_request(bad, &layer)) << bad;
    EXPECT_EQ(layer, -1) << bad;
  }
  Endpoint endpoint;
  endpoint.events = true;
  Route r = route_request("POST", "/whep/abc/layer", "application/json", 20, endpoint);
  EXPECT_EQ(r.action, Route::Action::SelectLayer);
  EXPECT_EQ(r.session_id, "abc");
  EXPECT_EQ(route_request("POST", "/whep/abc/layer", "application/json", 5000, endpoint).reply.status, 413);
  EXPECT_EQ(route_request("PUT", "/whep/abc/layer", "application/json", 20, endpoint).reply.status, 405);
  EXPECT_EQ(route_request("POST", "/whep/abc/layer", "application/json", 20).reply.status, 404)
      << "only where the extensions are on";
}
