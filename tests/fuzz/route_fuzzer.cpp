// HTTP routes (gst/signalling/server.h): route_request() decides from a
// request's line and headers alone what happens to it, before the body is
// read; join_reply() turns a finished join into headers. The input is
// text, one field a line: method, path, Content-Type, Authorization, the
// body's size, then the endpoint: "whip" (a token-protected WHIP endpoint,
// token on the next line) or else WHEP (with events, and metrics at
// /metrics guarded by the Authorization line's token when it has one),
// "nopage" to serve no viewer page, and the rest of the lines as ICE server
// URIs. The Content-Type line is also read as the body of an events POST.
#include <strings.h>

#include "fuzz.h"
#include "gstfuzz.h"
#include "signalling/server.h"

namespace {

using namespace wb;

bool bearer_is(const std::string &authorization, const std::string &token) {
  return authorization.size() == 7 + token.size() && strncasecmp(authorization.c_str(), "Bearer ", 7) == 0 &&
         authorization.compare(7, std::string::npos, token) == 0;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int *, char ***) {
  fuzz::init_gstreamer();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz::Input in(data, size);
  const std::string method = in.line(), path = in.line(), content_type = in.line(), authorization = in.line();
  const size_t body_size = strtoull(in.line().c_str(), nullptr, 10);
  Endpoint endpoint;
  if (in.line() == "whip") {
    endpoint.path = "/whip";
    endpoint.token = in.line();
  } else {
    endpoint.events = true;
    endpoint.metrics_path = "/metrics";
    endpoint.metrics_token = authorization.size() > 7 ? authorization.substr(7) : "";
  }
  endpoint.viewer_page = in.line() != "nopage";
  while (in.remaining()) endpoint.ice_servers.push_back(in.line());

  Route route = route_request(method, path, content_type, body_size, endpoint, authorization);
  FUZZ_CHECK(route.reply.headers.count("Access-Control-Allow-Origin"));
  switch (route.action) {
    case Route::Action::Join:
      FUZZ_CHECK(method == "POST" && path == endpoint.path && body_size <= kMaxOfferBytes);
      FUZZ_CHECK(endpoint.token.empty() || bearer_is(authorization, endpoint.token));
      break;
    case Route::Action::Leave:
      FUZZ_CHECK(method == "DELETE" && !route.session_id.empty() &&
                 path == endpoint.path + "/" + route.session_id);
      break;
    case Route::Action::Page:
      FUZZ_CHECK(endpoint.viewer_page && (method == "GET" || method == "HEAD"));
      break;
    case Route::Action::Dashboard:
      FUZZ_CHECK((method == "GET" || method == "HEAD") && path == "/dashboard" && !endpoint.metrics_path.empty());
      break;
    case Route::Action::Status:
      FUZZ_CHECK(method == "GET" && path == endpoint.path + "/status");
      break;
    case Route::Action::Stats:
      FUZZ_CHECK(path == "/stats" && !endpoint.metrics_path.empty());
      FUZZ_CHECK(endpoint.metrics_token.empty() || bearer_is(authorization, endpoint.metrics_token));
      break;
    case Route::Action::Metrics:
      FUZZ_CHECK((method == "GET" || method == "HEAD") && path == endpoint.metrics_path);
      FUZZ_CHECK(endpoint.metrics_token.empty() || bearer_is(authorization, endpoint.metrics_token));
      break;
    case Route::Action::Subscribe:
      FUZZ_CHECK(endpoint.events && method == "POST" && body_size <= kMaxEventRequestBytes &&
                 path == endpoint.path + "/" + route.session_id + "/sse");
      break;
    case Route::Action::EventStream:
    case Route::Action::EndEvents:
      FUZZ_CHECK(endpoint.events && path == endpoint.path + "/" + route.session_id + "/sse/events");
      FUZZ_CHECK(route.session_id.find('/') == std::string::npos);
      break;
    case Route::Action::Reply:
      FUZZ_CHECK(route.reply.status >= 200 && route.reply.status < 600);
      FUZZ_CHECK(route.reply.status != 405 || route.reply.headers.count("Allow"));
      break;
  }

  // The same fields as a finished join: the id and error come from our
  // side, a 307's location from a relay child's Broadcast-Relay-Url.
  SessionHandler::Join join;
  const int statuses[] = {201, 307, 400, 406, 409, 503, 508};
  join.status = statuses[body_size % 7];
  join.session_id = route.session_id;
  join.location = path;
  join.error = content_type;
  join.retry_after_s = unsigned(body_size % 5);
  HttpReply reply = join_reply(join, endpoint);
  FUZZ_CHECK(reply.status == join.status && reply.headers.count("Access-Control-Allow-Origin"));
  if (join.status == 201 || join.status == 307) FUZZ_CHECK(reply.headers.count("Location"));
  FUZZ_CHECK(ice_server_links(endpoint.ice_servers).size() <= endpoint.ice_servers.size());

  std::set<std::string> wanted;
  if (parse_event_request(content_type, &wanted)) {
    for (const auto &name : wanted) {
      bool known = false;
      for (const char *k : kEventNames) known |= name == k;
      FUZZ_CHECK(known);
    }
  } else {
    FUZZ_CHECK(wanted.empty());
  }
  // A layer request: a layer index within what a fan-out may have, or -1.
  int layer = 0;
  const bool layer_ok = parse_layer_request(content_type, &layer);
  FUZZ_CHECK(layer >= -1 && layer < 64);
  if (!layer_ok) FUZZ_CHECK(layer == -1);
  return 0;
}
