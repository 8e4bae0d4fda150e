// The built-in HTTP signalling on libsoup 3: a WHEP endpoint for viewers
// (draft-ietf-wish-whep) with the viewer page, or a WHIP endpoint for a
// publisher (RFC 9725). It only speaks HTTP: what an offer means is decided
// by its SessionHandler (the viewers' Audience, or a relay's Ingest), so an
// application can bring its own signalling through action signals instead.
#pragma once

#include <glib-object.h>

#include <condition_variable>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "signalling/ratelimit.h"
#include "signalling/tls.h"

typedef struct _SoupServer SoupServer;
typedef struct _SoupServerMessage SoupServerMessage;

namespace wb {

class Workers;

struct HttpReply {
  int status = 200;
  std::string content_type;  // empty: no body
  std::string body;
  std::map<std::string, std::string> headers;
};

// What the HTTP server answered, its refusals included, which no handler
// sees: responses by status code, and connections closed without one (over
// max-http-connections, or no complete request in time).
struct HttpCounts {
  std::map<int, uint64_t> responses;
  uint64_t dropped = 0;
};

// What the signalling asks of the viewer manager.
class SessionHandler {
 public:
  virtual ~SessionHandler() = default;
  // What a POST carried besides the offer.
  struct JoinRequest {
    std::string offer;
    std::string relay_url;  // Broadcast-Relay-Url: the joiner is a relay serving WHEP there
    std::string node_id;    // Broadcast-Node: the joiner's node id (loop detection)
    std::string remote_address;  // the HTTP client's IP
    std::string authorization;   // the Authorization header, if any
  };
  // Answers an offer: 201 with answer and session id, 307 with a location,
  // or an error reply. May block for the time a transport takes to answer;
  // called on a worker thread.
  struct Join {
    int status = 0;
    std::string session_id;
    std::string answer;
    std::string error;
    unsigned retry_after_s = 0;
    std::string location;  // for 307
    std::map<std::string, std::string> headers;
  };
  virtual Join join(const JoinRequest &request) = 0;
  enum class Leave { Left, Unknown, OtherCredentials };
  // A DELETE: a session started with credentials ends only with the same.
  virtual Leave leave(const std::string &session_id, const std::string &authorization) = 0;
  // Whether a POST or DELETE may go on: an application's own check of the
  // credentials (JWT, sessions). On the server's thread, before the body
  // is read: it must answer quickly.
  struct Access {
    std::string method;
    std::string path;
    std::string authorization;
    std::string remote_address;
  };
  virtual bool authorize(const Access &) { return true; }
  // JSON for GET <endpoint>/status; empty: no such resource.
  virtual std::string status_json() { return {}; }
  // Prometheus text for GET of the endpoint's metrics path, and the same
  // snapshot as JSON for GET /stats, with the server's own counts; empty:
  // none.
  virtual std::string metrics_text(const HttpCounts &) { return {}; }
  virtual std::string stats_json(const HttpCounts &) { return {}; }
  // Whether a session is live (event streams belong to one).
  virtual bool has_session(const std::string &) { return false; }
  // A session's WHEP "layers" event: its JSON, and the part of it whose
  // change is sent at once (its layer, not the estimates and rates, which
  // go at most every kLayersEventIntervalUs). Empty: none (no such session,
  // or no video).
  struct LayersEvent {
    std::string json;
    std::string state;
  };
  virtual LayersEvent layers_event(const std::string &) { return {}; }
  // POST <path>/<id>/layer: pins the session's video to `layer` (-1: its
  // own feedback chooses again). The HTTP status: 204, 400 (`error` says
  // why), 403 (a session started with other credentials) or 404.
  virtual int select_layer(const std::string &, const std::string &, int, std::string *error) {
    *error = "no layers here";
    return 404;
  }
};

// What the server serves: the endpoint path ("/whep" or "/whip"), the token
// a POST must bring (empty: none), ICE servers announced in Link headers,
// whether GET / serves the viewer page, and where the handler's metrics are
// (empty: nowhere, and no /stats either) with the token a scrape of them or
// of /stats must bring (empty: none).
struct Endpoint {
  std::string path = "/whep";
  std::string token;
  std::vector<std::string> ice_servers;  // stun:/turn: URIs, user:pass@ allowed for turn
  bool viewer_page = true;
  std::string metrics_path;
  std::string metrics_token;
  // The WHEP server-sent events extension (draft-ietf-wish-whep): a 201
  // links <path>/<id>/sse, where a POST of the events wanted opens
  // <path>/<id>/sse/events (see SignallingServer::update_events()).
  bool events = false;
};

// The events a session may subscribe to, and the Link relation that offers them.
constexpr const char *kEventsRel = "urn:ietf:params:whep:ext:core:server-sent-events";
constexpr const char *kEventNames[] = {"active", "inactive", "viewercount", "layers"};
// The layer-selection extension: a 201 links <path>/<id>/layer with it.
constexpr const char *kLayerRel = "urn:ietf:params:whep:ext:core:layer";
// A session's layers event goes out when its layer changes, else when its
// estimate or rates did, at most this often.
constexpr gint64 kLayersEventIntervalUs = 2 * G_USEC_PER_SEC;
constexpr size_t kMaxEventRequestBytes = 4096;
// A stream with nothing to say for this long gets a comment line.
constexpr gint64 kEventKeepaliveUs = 15 * G_USEC_PER_SEC;

// Link: <uri>; rel="ice-server" values for the endpoint's ICE servers.
std::vector<std::string> ice_server_links(const std::vector<std::string> &servers);

// How a request is routed, decided from its line and headers alone.
struct Route {
  enum class Action {
    Reply, Page, Dashboard, Join, Leave, Status, Metrics, Stats, Subscribe, EventStream, EndEvents, SelectLayer
  };
  Action action = Action::Reply;
  std::string session_id;  // for Leave and the events
  HttpReply reply;         // for Reply
};

// What one HTTP server lets a visitor do; the defaults of every node.
struct HttpLimits {
  static constexpr unsigned kDefaultMaxConnections = 1024;
  static constexpr unsigned kDefaultRequestTimeoutS = 10;
  static constexpr unsigned kDefaultOffersPerSecond = 20;
  // Open connections at most; further ones are closed at once (0: no cap).
  unsigned max_connections = kDefaultMaxConnections;
  // A connection whose request (headers and body) is not complete within
  // this is closed (slowloris).
  unsigned request_timeout_s = kDefaultRequestTimeoutS;
  // Offers (POST) per second from one IP address, in bursts of twice that;
  // beyond, 429 with Retry-After (0: no limit).
  unsigned offers_per_second = kDefaultOffersPerSecond;
};

// Offers being answered at once, and waiting for a worker: beyond, 503.
constexpr unsigned kJoinWorkers = 4;
constexpr size_t kMaxQueuedJoins = 64;

constexpr size_t kMaxOfferBytes = 64 * 1024;
// A session id is the only credential a DELETE needs (with no token set):
// 128 random bits.
constexpr size_t kSessionIdBytes = 16;

Route route_request(const std::string &method, const std::string &path,
                    const std::string &content_type, size_t body_size,
                    const Endpoint &endpoint = Endpoint{}, const std::string &authorization = "");

// A POST to <path>/<id>/sse: the events it asks for that we send, in
// `wanted`. False when the body is not a JSON array of strings.
bool parse_event_request(const std::string &body, std::set<std::string> *wanted);
// A POST to <path>/<id>/layer: {"encodingId": "1"} (or 1) pins layer 1, {}
// lets the viewer's feedback choose (-1). False when it is neither.
bool parse_layer_request(const std::string &body, int *layer);

// The reply for a finished join (201 with Location, 307, or the error).
HttpReply join_reply(const SessionHandler::Join &join, const Endpoint &endpoint = Endpoint{});

// Every reply says "Connection: close": libsoup 3.2 (Debian 12) never
// closes a kept-alive connection that the client closes while idle (fixed
// in 3.3.0), one descriptor lost per such connection. A WHEP viewer makes
// two or three requests in its life, so keep-alive buys nothing here.
class SignallingServer {
 public:
  // With `tls` set, the server speaks HTTPS only (start() fails when the
  // files cannot be used).
  SignallingServer(SessionHandler &handler, Endpoint endpoint = Endpoint{}, HttpLimits limits = HttpLimits{},
                   TlsFiles tls = TlsFiles{});
  ~SignallingServer();
  SignallingServer(const SignallingServer &) = delete;
  SignallingServer &operator=(const SignallingServer &) = delete;

  // Listens on address:port; must run on the thread that iterates `context`
  // (the server's sources attach to it). port 0 picks a free port.
  bool start(GMainContext *context, const std::string &address, unsigned port, std::string *error);
  void stop();
  // Workers::renew() on the threads that answer offers, with `between` run
  // once the old ones are gone: what a burst of offers left in their
  // per-thread caches is free by then.
  void renew_workers(const std::function<void()> &between);
  // The broadcast as the events tell it, a few times a second: what
  // changed goes to every stream subscribed to it, streams of sessions that
  // ended are closed, idle ones get a comment (proxies close silent ones).
  void update_events(bool active, unsigned viewers, gint64 now_us);

 private:
  struct Connection;
  struct EventStream;
  static void on_request_started(SoupServer *, SoupServerMessage *msg, gpointer self);
  static void on_early(SoupServer *, SoupServerMessage *msg, const char *path, GHashTable *, gpointer self);
  static void on_request(SoupServer *, SoupServerMessage *msg, const char *path, GHashTable *,
                         gpointer self);
  static void on_chunk(SoupServerMessage *msg, GBytes *chunk, gpointer self);
  static void on_message_gone(gpointer connection, GObject *msg);
  static void on_disconnected(SoupServerMessage *msg, gpointer self);
  static void release_lost_first_message(GMainContext *context, SoupServerMessage *msg);
  Route route(SoupServerMessage *msg, const char *path, size_t body_size);
  void handle(SoupServerMessage *msg, const char *path);
  void start_join(SoupServerMessage *msg, SessionHandler::JoinRequest request);
  HttpReply subscribe(SoupServerMessage *msg, const std::string &session_id);
  void open_event_stream(SoupServerMessage *msg, const std::string &session_id);
  void close_event_stream(SoupServerMessage *msg);
  std::string current_events(const std::set<std::string> &wanted) const;
  // The session's layers event when it changed (see kLayersEventIntervalUs),
  // or now with `force`; noted as sent in `stream`.
  std::string layers_text(EventStream *stream, gint64 now_us, bool force);
  HttpReply select_layer(SoupServerMessage *msg, const std::string &session_id);
  static void on_stream_gone(SoupServerMessage *msg, gpointer self);
  static void on_request_finished(SoupServer *, SoupServerMessage *msg, gpointer self);

  SessionHandler &handler_;
  const Endpoint endpoint_;
  const HttpLimits limits_;
  const TlsFiles tls_;
  SoupServer *server_ = nullptr;
  GMainContext *context_ = nullptr;
  // The server's thread only (libsoup emits everything there).
  std::map<SoupServerMessage *, std::unique_ptr<Connection>> connections_;
  HttpCounts counts_;
  RateLimit offers_;
  // The event streams (each holds a reference to its message) and the
  // events each session asked for; the server's thread only. A stream does
  // not count among max_connections: it belongs to a session, one each.
  struct EventStream {
    std::string session_id;
    std::set<std::string> events;
    gint64 last_write_us = 0;
    SessionHandler::LayersEvent layers;  // the last sent
    gint64 layers_us = 0;
  };
  std::map<SoupServerMessage *, EventStream> event_streams_;
  std::map<std::string, std::set<std::string>> event_subscriptions_;
  struct {
    bool known = false;
    bool active = false;
    unsigned viewers = 0;
  } event_state_;
  std::unique_ptr<Workers> workers_;
  // Completions that arrive after stop() find this false and are dropped.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace wb
