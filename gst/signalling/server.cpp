#include "server.h"

#include <gio/gio.h>
#include <json-glib/json-glib.h>
#include <libsoup/soup.h>


#include "common/memoryreturn.h"
#include "common/strings.h"
#include "common/workers.h"
#include "signalling/pages.h"

#include "common/debug.h"
#define GST_CAT_DEFAULT wb_signalling_debug

namespace wb {

namespace {

void add_cors(std::map<std::string, std::string> &h) {
  h["Access-Control-Allow-Origin"] = "*";
  h["Access-Control-Allow-Methods"] = "GET, POST, DELETE, OPTIONS";
  h["Access-Control-Allow-Headers"] = "Content-Type, Authorization, If-Match";
  h["Access-Control-Expose-Headers"] = "Location, ETag, Link, Retry-After, Accept-Post, Broadcast-Path, Broadcast-Unserved";
}

HttpReply error_reply(int status, const std::string &message) {
  HttpReply r;
  r.status = status;
  r.content_type = "text/plain; charset=utf-8";
  r.body = message + "\n";
  return r;
}

HttpReply method_not_allowed(const char *allow) {
  HttpReply r = error_reply(405, std::string("method not allowed; allowed: ") + allow);
  r.headers["Allow"] = allow;
  return r;
}

bool is_sdp_content_type(const std::string &content_type) {
  std::string base = content_type.substr(0, content_type.find(';'));
  while (!base.empty() && base.back() == ' ') base.pop_back();
  return g_ascii_strcasecmp(base.c_str(), "application/sdp") == 0;
}

bool token_matches(const std::string &token, const std::string &authorization) {
  const std::string scheme = "Bearer ";
  if (authorization.size() <= scheme.size() ||
      g_ascii_strncasecmp(authorization.c_str(), scheme.c_str(), scheme.size()) != 0)
    return false;
  return secrets_equal(authorization.substr(scheme.size()), token);
}

HttpReply unauthorized(const std::string &authorization) {
  HttpReply r = error_reply(401, authorization.empty() ? "this endpoint needs Authorization: Bearer <token>"
                                                       : "wrong token");
  r.headers["WWW-Authenticate"] = "Bearer";
  return r;
}

void add_links(std::map<std::string, std::string> &h, const Endpoint &endpoint) {
  std::string links;
  for (const auto &l : ice_server_links(endpoint.ice_servers)) links += (links.empty() ? "" : ", ") + l;
  if (!links.empty()) h["Link"] = links;
}

}  // namespace

std::vector<std::string> ice_server_links(const std::vector<std::string> &servers) {
  std::vector<std::string> links;
  for (const auto &server : servers) {
    // turn://user:pass@host:port (webrtcbin's form) -> turn:host:port with
    // the credentials as Link parameters (RFC 9725 section 4.6).
    std::string uri = server, user, pass;
    auto scheme_end = uri.find(':');
    if (scheme_end == std::string::npos) continue;
    std::string scheme = uri.substr(0, scheme_end);
    std::string rest = uri.substr(scheme_end + 1);
    if (rest.compare(0, 2, "//") == 0) rest = rest.substr(2);
    auto at = rest.rfind('@');
    if (at != std::string::npos) {
      std::string cred = rest.substr(0, at);
      rest = rest.substr(at + 1);
      auto colon = cred.find(':');
      user = cred.substr(0, colon);
      if (colon != std::string::npos) pass = cred.substr(colon + 1);
      gchar *u = g_uri_unescape_string(user.c_str(), nullptr), *p = g_uri_unescape_string(pass.c_str(), nullptr);
      user = u ? u : user;
      pass = p ? p : pass;
      g_free(u);
      g_free(p);
    }
    std::string link = "<" + scheme + ":" + rest + ">; rel=\"ice-server\"";
    if (!user.empty()) link += "; username=\"" + user + "\"; credential=\"" + pass + "\"; credential-type=\"password\"";
    links.push_back(link);
  }
  return links;
}

Route route_request(const std::string &method, const std::string &path,
                    const std::string &content_type, size_t body_size, const Endpoint &endpoint,
                    const std::string &authorization) {
  Route route;
  const std::string &base = endpoint.path;
  if (!endpoint.metrics_path.empty() && (path == endpoint.metrics_path || path == "/stats")) {
    if (method != "GET" && method != "HEAD") route.reply = method_not_allowed("GET, HEAD");
    else if (!endpoint.metrics_token.empty() && !token_matches(endpoint.metrics_token, authorization))
      route.reply = unauthorized(authorization);
    else route.action = path == endpoint.metrics_path ? Route::Action::Metrics : Route::Action::Stats;
  } else if (!endpoint.metrics_path.empty() && path == "/dashboard") {
    // The page holds no numbers: it asks /stats for them, with the token
    // its fragment carries.
    if (method != "GET" && method != "HEAD") route.reply = method_not_allowed("GET, HEAD");
    else route.action = Route::Action::Dashboard;
  } else if (endpoint.viewer_page && (path == "/" || path == "/index.html")) {
    if (method != "GET" && method != "HEAD") route.reply = method_not_allowed("GET, HEAD");
    else route.action = Route::Action::Page;
  } else if (path == base + "/status") {
    if (method != "GET") route.reply = method_not_allowed("GET");
    else route.action = Route::Action::Status;
  } else if (path == base) {
    if (method == "OPTIONS") {
      route.reply.status = 204;
      route.reply.headers["Accept-Post"] = "application/sdp";
      add_links(route.reply.headers, endpoint);
    } else if (method != "POST") {
      route.reply = method_not_allowed("POST, OPTIONS");
    } else if (!is_sdp_content_type(content_type)) {
      route.reply = error_reply(415, "the offer must be sent as Content-Type: application/sdp, not '" +
                                         content_type + "'");
      route.reply.headers["Accept-Post"] = "application/sdp";
    } else if (body_size > kMaxOfferBytes) {
      route.reply = error_reply(413, "offer larger than " + std::to_string(kMaxOfferBytes) + " bytes");
    } else if (!endpoint.token.empty() && !token_matches(endpoint.token, authorization)) {
      route.reply = unauthorized(authorization);
    } else {
      route.action = Route::Action::Join;
    }
  } else if (path.compare(0, base.size() + 1, base + "/") == 0 && path.size() > base.size() + 1) {
    const std::string rest = path.substr(base.size() + 1);
    const size_t slash = rest.find('/');
    route.session_id = rest.substr(0, slash);
    const std::string sub = slash == std::string::npos ? "" : rest.substr(slash);
    if (sub.empty()) {
      // Ending a session takes the credentials starting it took: the id
      // alone is not enough where a token guards the endpoint.
      if (method == "DELETE" && !endpoint.token.empty() && !token_matches(endpoint.token, authorization))
        route.reply = unauthorized(authorization);
      else if (method == "DELETE") route.action = Route::Action::Leave;
      else if (method == "OPTIONS") route.reply.status = 204;
      else route.reply = method_not_allowed("DELETE, OPTIONS");
    } else if (endpoint.events && sub == "/sse") {
      // The session id is the credential, as for its DELETE.
      if (method == "OPTIONS") route.reply.status = 204;
      else if (method != "POST") route.reply = method_not_allowed("POST, OPTIONS");
      else if (body_size > kMaxEventRequestBytes)
        route.reply = error_reply(413, "more than " + std::to_string(kMaxEventRequestBytes) + " bytes of events");
      else route.action = Route::Action::Subscribe;
    } else if (endpoint.events && sub == "/layer") {
      // Changes the session as its DELETE does: the same credentials.
      if (method == "OPTIONS") route.reply.status = 204;
      else if (method != "POST") route.reply = method_not_allowed("POST, OPTIONS");
      else if (body_size > kMaxEventRequestBytes)
        route.reply = error_reply(413, "more than " + std::to_string(kMaxEventRequestBytes) + " bytes");
      else if (!endpoint.token.empty() && !token_matches(endpoint.token, authorization))
        route.reply = unauthorized(authorization);
      else route.action = Route::Action::SelectLayer;
    } else if (endpoint.events && sub == "/sse/events") {
      if (method == "GET") route.action = Route::Action::EventStream;
      else if (method == "DELETE") route.action = Route::Action::EndEvents;
      else if (method == "OPTIONS") route.reply.status = 204;
      else route.reply = method_not_allowed("GET, DELETE, OPTIONS");
    } else {
      route.reply = error_reply(404, "no such resource: " + path);
    }
  } else {
    route.reply = error_reply(404, "no such resource: " + path);
  }
  add_cors(route.reply.headers);
  return route;
}

HttpReply join_reply(const SessionHandler::Join &join, const Endpoint &endpoint) {
  HttpReply r;
  if (join.status == 201) {
    r.status = 201;
    r.content_type = "application/sdp";
    r.body = join.answer;
    r.headers["Location"] = endpoint.path + "/" + join.session_id;
    r.headers["ETag"] = "\"" + join.session_id + "\"";
    add_links(r.headers, endpoint);
    if (endpoint.events) {
      std::string events;
      for (const char *e : kEventNames) events += std::string(events.empty() ? "" : ",") + e;
      const std::string link = "<" + endpoint.path + "/" + join.session_id + "/sse>; rel=\"" + kEventsRel +
                               "\"; events=\"" + events + "\", <" + endpoint.path + "/" + join.session_id +
                               "/layer>; rel=\"" + kLayerRel + "\"";
      auto it = r.headers.find("Link");
      r.headers["Link"] = it == r.headers.end() ? link : it->second + ", " + link;
    }
  } else if (join.status == 307) {
    r = error_reply(307, "served by " + join.location);
    r.headers["Location"] = join.location;
  } else {
    r = error_reply(join.status, join.error);
    if (join.retry_after_s) r.headers["Retry-After"] = std::to_string(join.retry_after_s);
  }
  for (const auto &h : join.headers) r.headers[h.first] = h.second;
  add_cors(r.headers);
  return r;
}

namespace {

// A view of the handler's snapshot, never cached; 404 when it has none.
HttpReply snapshot_reply(const std::string &body, const char *content_type, const char *path) {
  HttpReply r = body.empty() ? error_reply(404, std::string("no such resource: ") + path)
                             : HttpReply{200, content_type, body, {}};
  r.headers["Cache-Control"] = "no-cache";
  add_cors(r.headers);
  return r;
}

HttpReply page_reply(const std::string &html) {
  HttpReply page{200, "text/html; charset=utf-8", html, {}};
  page.headers["Cache-Control"] = "no-cache";
  return page;
}

// The dashboard loads nothing from anywhere else and talks only to its
// node; the policy tells the browser so. (Not on the viewer page: sites
// frame it, and its ?whep= may name another node.)
HttpReply dashboard_reply() {
  HttpReply page = page_reply(dashboard_html());
  page.headers["Content-Security-Policy"] =
      "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:; "
      "connect-src 'self'; frame-ancestors 'self'";
  return page;
}

// The request's body, as read (its size was checked by the route).
std::string request_body(SoupServerMessage *msg) {
  GBytes *bytes = soup_message_body_flatten(soup_server_message_get_request_body(msg));
  gsize size = 0;
  const char *data = static_cast<const char *>(g_bytes_get_data(bytes, &size));
  std::string body(data ? data : "", size);
  g_bytes_unref(bytes);
  return body;
}

void send_reply(SoupServerMessage *msg, const HttpReply &reply) {
  SoupMessageHeaders *headers = soup_server_message_get_response_headers(msg);
  for (const auto &h : reply.headers) soup_message_headers_replace(headers, h.first.c_str(), h.second.c_str());
  soup_message_headers_replace(headers, "Connection", "close");
  soup_server_message_set_status(msg, reply.status, nullptr);
  if (!reply.content_type.empty())
    soup_server_message_set_response(msg, reply.content_type.c_str(), SOUP_MEMORY_COPY,
                                     reply.body.data(), reply.body.size());
}

// Ends a connection we will not serve: the client sees it closed, and
// libsoup, reading end-of-file, lets it go.
void drop_connection(SoupServerMessage *msg) {
  GSocket *socket = soup_server_message_get_socket(msg);
  if (socket) g_socket_shutdown(socket, TRUE, TRUE, nullptr);
}

// libsoup 3.1.2 to 3.3.x keep one reference too many to every socket they
// accept: soup-listener.c's listen_watch() never drops the one
// g_socket_accept() returned (upstream fixed it in 3.4.0, commit b545d5f0
// "soup-listener: Plug a leak"; Debian 12 has 3.2.3). The descriptor is
// closed with the connection, but the GSocket object stays for the life of
// the node: about 340 bytes, and the slab or heap page it pins, per HTTP
// connection, so per viewer session (found by heap profile, docs/soak.md).
// So we drop that reference on the connection's first message. libsoup
// emits request-started for it before it wraps the socket in a
// GSocketConnection, so the socket then has exactly the connection's
// reference and the lost one; a libsoup that does not lose it (fixed, or a
// patched 3.2) has one, and is left alone. The mark keeps a kept-alive
// connection's later messages from dropping anything.
// The running libsoup is 3.1.2 or later and older than 3.<fixed_minor>.0.
bool libsoup_before_fix(guint fixed_minor) {
  const guint minor = soup_get_minor_version();
  return soup_get_major_version() == 3 && minor < fixed_minor &&
         (minor > 1 || (minor == 1 && soup_get_micro_version() >= 2));
}

void release_lost_socket_reference(SoupServerMessage *msg) {
  static const bool affected = libsoup_before_fix(4);
  if (!affected) return;
  GSocket *socket = soup_server_message_get_socket(msg);
  if (!socket) return;
  static const GQuark seen = g_quark_from_static_string("wb-lost-socket-reference-checked");
  if (g_object_get_qdata(G_OBJECT(socket), seen)) return;
  g_object_set_qdata(G_OBJECT(socket), seen, GINT_TO_POINTER(1));
  if (g_atomic_int_get(&G_OBJECT(socket)->ref_count) == 2) g_object_unref(socket);
}

std::string remote_host(SoupServerMessage *msg) {
  const char *host = soup_server_message_get_remote_host(msg);
  return host ? host : "";
}

}  // namespace

// One client connection (with Connection: close, one request), from its
// first byte to its end: the clock its request must finish within.
struct SignallingServer::Connection {
  SignallingServer *server;
  SoupServerMessage *msg;
  GSource *deadline = nullptr;
  bool headers = false;   // a request's headers were read
  bool complete = false;  // and its body
};

SignallingServer::SignallingServer(SessionHandler &handler, Endpoint endpoint, HttpLimits limits, TlsFiles tls)
    : handler_(handler),
      endpoint_(std::move(endpoint)),
      limits_(limits),
      tls_(std::move(tls)),
      offers_(limits.offers_per_second, 2.0 * limits.offers_per_second) {}

SignallingServer::~SignallingServer() { stop(); }

bool SignallingServer::start(GMainContext *context, const std::string &address, unsigned port,
                       std::string *error) {
  GTlsCertificate *certificate = nullptr;
  if (tls_.enabled() && !(certificate = load_tls_certificate(tls_, error))) return false;
  context_ = context;
  workers_ = std::make_unique<Workers>("whep-answer", kJoinWorkers, kMaxQueuedJoins, trim_thread_arena);
  server_ = soup_server_new("server-header", "webrtcbroadcast ", "tls-certificate", certificate, nullptr);
  if (certificate) g_object_unref(certificate);
  g_signal_connect(server_, "request-started", G_CALLBACK(on_request_started), this);
  g_signal_connect(server_, "request-finished", G_CALLBACK(on_request_finished), this);
  soup_server_add_early_handler(server_, nullptr, on_early, this, nullptr);
  soup_server_add_handler(server_, nullptr, on_request, this, nullptr);
  GInetAddress *inet = g_inet_address_new_from_string(address.c_str());
  if (!inet) {
    if (error) *error = "not an IP address: " + address;
    stop();
    return false;
  }
  GSocketAddress *sockaddr = g_inet_socket_address_new(inet, port);
  g_object_unref(inet);
  GError *err = nullptr;
  gboolean ok = soup_server_listen(server_, sockaddr,
                                   tls_.enabled() ? SOUP_SERVER_LISTEN_HTTPS : SoupServerListenOptions(0), &err);
  g_object_unref(sockaddr);
  if (!ok) {
    if (error) *error = std::string("cannot listen on ") + address + ":" + std::to_string(port) +
                        ": " + err->message;
    g_error_free(err);
    stop();
    return false;
  }
  GST_INFO("%s endpoint listening on %s://%s:%u", endpoint_.path.c_str(), tls_.enabled() ? "https" : "http",
           address.c_str(), port);
  return true;
}

void SignallingServer::renew_workers(const std::function<void()> &between) {
  if (!workers_) {
    if (between) between();
    return;
  }
  // Idle threads exit at once; a join being answered is not waited for long.
  const unsigned exited = workers_->renew(std::chrono::milliseconds(200), between);
  GST_DEBUG("%u of the offer workers renewed", exited);
}

void SignallingServer::stop() {
  // Offers not yet taken by a worker are dropped; those being answered
  // finish first (they call into the handler).
  workers_.reset();
  *alive_ = false;
  alive_ = std::make_shared<bool>(true);
  for (auto &c : connections_) {
    g_object_weak_unref(G_OBJECT(c.first), on_message_gone, c.second.get());
    g_signal_handlers_disconnect_by_data(c.first, this);
    if (c.second->deadline) {
      g_source_destroy(c.second->deadline);
      g_source_unref(c.second->deadline);
    }
  }
  connections_.clear();
  while (!event_streams_.empty()) close_event_stream(event_streams_.begin()->first);
  event_subscriptions_.clear();
  if (server_) {
    soup_server_disconnect(server_);
    g_object_unref(server_);
    server_ = nullptr;
  }
}

void SignallingServer::on_request_finished(SoupServer *, SoupServerMessage *msg, gpointer data) {
  const guint status = soup_server_message_get_status(msg);
  if (status >= 100) ++static_cast<SignallingServer *>(data)->counts_.responses[int(status)];
}

// A new connection's first message, before any byte of its request.
void SignallingServer::on_request_started(SoupServer *, SoupServerMessage *msg, gpointer data) {
  auto *self = static_cast<SignallingServer *>(data);
  release_lost_socket_reference(msg);
  if (self->limits_.max_connections && self->connections_.size() >= self->limits_.max_connections) {
    GST_INFO("%u HTTP connections open: closing a new one from %s", self->limits_.max_connections,
             remote_host(msg).c_str());
    ++self->counts_.dropped;
    drop_connection(msg);
    return;
  }
  auto connection = std::make_unique<Connection>(Connection{self, msg});
  if (self->limits_.request_timeout_s) {
    connection->deadline = g_timeout_source_new_seconds(self->limits_.request_timeout_s);
    g_source_set_callback(
        connection->deadline,
        +[](gpointer data) -> gboolean {
          auto *c = static_cast<Connection *>(data);
          if (!c->complete) {
            GST_INFO("no complete request from %s within %u s: closing", remote_host(c->msg).c_str(),
                     c->server->limits_.request_timeout_s);
            ++c->server->counts_.dropped;
            drop_connection(c->msg);
          }
          return G_SOURCE_REMOVE;
        },
        connection.get(), nullptr);
    g_source_attach(connection->deadline, self->context_);
  }
  g_signal_connect(msg, "got-chunk", G_CALLBACK(on_chunk), self);
  g_signal_connect(msg, "disconnected", G_CALLBACK(on_disconnected), self);
  g_object_weak_ref(G_OBJECT(msg), on_message_gone, connection.get());
  self->connections_[msg] = std::move(connection);
}

void SignallingServer::on_message_gone(gpointer data, GObject *msg) {
  auto *c = static_cast<Connection *>(data);
  if (c->deadline) {
    g_source_destroy(c->deadline);
    g_source_unref(c->deadline);
  }
  c->server->connections_.erase(reinterpret_cast<SoupServerMessage *>(msg));
}

// A connection is forgotten when it disconnects: a message that libsoup
// never frees (below) would otherwise hold its place and deadline for ever.
void SignallingServer::on_disconnected(SoupServerMessage *msg, gpointer data) {
  auto *self = static_cast<SignallingServer *>(data);
  auto it = self->connections_.find(msg);
  if (it == self->connections_.end()) return;
  Connection *connection = it->second.get();
  const bool handshake_failed = self->tls_.enabled() && !connection->headers;
  g_object_weak_unref(G_OBJECT(msg), on_message_gone, connection);
  on_message_gone(connection, G_OBJECT(msg));
  if (handshake_failed) release_lost_first_message(self->context_, msg);
}

// libsoup 3.1.2 to 3.2.x never free a connection whose TLS handshake
// failed: the connection keeps its first message (made before the
// handshake, for client certificates) and the message keeps the
// connection, and only a successful handshake hands the message on
// (soup-server-connection.c; fixed in 3.3.0, commit 6308303e). With the
// connection go its TLS session and buffers: about 31 kB per refused
// handshake, a cost any scanner could make the node pay without bound.
// Once the connection is gone and its signal handlers have returned, such
// a message is held by that cycle alone, so dropping the connection's
// reference frees both. A message that got as far as a request's headers
// was handed on, and is never touched.
void SignallingServer::release_lost_first_message(GMainContext *context, SoupServerMessage *msg) {
  static const bool affected = libsoup_before_fix(3);
  if (!affected) return;
  auto *weak = g_new0(GWeakRef, 1);
  g_weak_ref_init(weak, msg);
  GSource *idle = g_idle_source_new();
  g_source_set_callback(
      idle,
      +[](gpointer data) -> gboolean {
        auto *message = static_cast<GObject *>(g_weak_ref_get(static_cast<GWeakRef *>(data)));
        if (!message) return G_SOURCE_REMOVE;
        // Ours from g_weak_ref_get(), and the cycle's.
        const bool only_the_cycle = g_atomic_int_get(&message->ref_count) == 2;
        if (only_the_cycle) GST_DEBUG("freeing the first message of a connection whose TLS handshake failed");
        if (only_the_cycle) g_object_unref(message);
        g_object_unref(message);
        return G_SOURCE_REMOVE;
      },
      weak,
      +[](gpointer data) {
        g_weak_ref_clear(static_cast<GWeakRef *>(data));
        g_free(data);
      });
  g_source_attach(idle, context);
  g_source_unref(idle);
}

Route SignallingServer::route(SoupServerMessage *msg, const char *path, size_t body_size) {
  SoupMessageHeaders *headers = soup_server_message_get_request_headers(msg);
  const char *ctype = soup_message_headers_get_one(headers, "Content-Type");
  const char *auth = soup_message_headers_get_one(headers, "Authorization");
  return route_request(soup_server_message_get_method(msg), path, ctype ? ctype : "", body_size, endpoint_,
                       auth ? auth : "");
}

// Headers read, body not yet: whatever can be refused is refused now, so a
// body we would not read is never kept (a refused request's body is read
// and dropped as it comes; the request deadline bounds how long).
void SignallingServer::on_early(SoupServer *, SoupServerMessage *msg, const char *path, GHashTable *,
                                gpointer data) {
  auto *self = static_cast<SignallingServer *>(data);
  SoupMessageHeaders *headers = soup_server_message_get_request_headers(msg);
  SoupMessageBody *body = soup_server_message_get_request_body(msg);
  const goffset declared = soup_message_headers_get_encoding(headers) == SOUP_ENCODING_CONTENT_LENGTH
                               ? soup_message_headers_get_content_length(headers)
                               : 0;
  auto connection = self->connections_.find(msg);
  if (connection != self->connections_.end()) connection->second->headers = true;
  Route route = self->route(msg, path, size_t(declared));
  if (route.action == Route::Action::Join || route.action == Route::Action::Leave ||
      route.action == Route::Action::SelectLayer) {
    const char *auth = soup_message_headers_get_one(headers, "Authorization");
    SessionHandler::Access access{soup_server_message_get_method(msg), path, auth ? auth : "", remote_host(msg)};
    if (!self->handler_.authorize(access)) {
      GST_INFO("%s %s from %s: not authorized", access.method.c_str(), path, access.remote_address.c_str());
      route.action = Route::Action::Reply;
      route.reply = access.authorization.empty() ? unauthorized("")
                                                 : error_reply(403, "these credentials do not allow this");
      add_cors(route.reply.headers);
    }
  }
  // Their bodies: the events wanted, the layer.
  if (route.action == Route::Action::Subscribe || route.action == Route::Action::SelectLayer) return;
  if (route.action != Route::Action::Join) {
    // Nothing but an offer and a subscription has a body we read.
    soup_message_body_set_accumulate(body, FALSE);
    if (route.action == Route::Action::Reply) send_reply(msg, route.reply);
    return;
  }
  unsigned retry_after = 1;
  if (!self->offers_.allow(remote_host(msg), g_get_monotonic_time(), &retry_after)) {
    GST_INFO("offers from %s: more than %u a second", remote_host(msg).c_str(), self->limits_.offers_per_second);
    HttpReply r = error_reply(429, "too many offers from " + remote_host(msg) + "; retry later");
    r.headers["Retry-After"] = std::to_string(retry_after);
    add_cors(r.headers);
    soup_message_body_set_accumulate(body, FALSE);
    send_reply(msg, r);
  }
}

// An offer without Content-Length (chunked) is refused as soon as it grows
// past the limit, not once it has all arrived.
void SignallingServer::on_chunk(SoupServerMessage *msg, GBytes *, gpointer) {
  SoupMessageBody *body = soup_server_message_get_request_body(msg);
  if (soup_server_message_get_status(msg) != 0 || size_t(body->length) <= kMaxOfferBytes) return;
  HttpReply r = error_reply(413, "offer larger than " + std::to_string(kMaxOfferBytes) + " bytes");
  add_cors(r.headers);
  send_reply(msg, r);
  soup_message_body_set_accumulate(body, FALSE);
  soup_message_body_truncate(body);
}

void SignallingServer::on_request(SoupServer *, SoupServerMessage *msg, const char *path, GHashTable *,
                            gpointer self) {
  static_cast<SignallingServer *>(self)->handle(msg, path);
}

void SignallingServer::handle(SoupServerMessage *msg, const char *path) {
  auto connection = connections_.find(msg);
  if (connection != connections_.end()) connection->second->complete = true;
  SoupMessageBody *body = soup_server_message_get_request_body(msg);
  size_t body_size = body ? size_t(body->length) : 0;
  GST_DEBUG("%s %s (%zu bytes)", soup_server_message_get_method(msg), path, body_size);

  Route route = this->route(msg, path, body_size);
  switch (route.action) {
    case Route::Action::Reply:
      send_reply(msg, route.reply);
      return;
    case Route::Action::Page:
      send_reply(msg, page_reply(viewer_page_html()));
      return;
    case Route::Action::Dashboard:
      send_reply(msg, dashboard_reply());
      return;
    case Route::Action::Leave: {
      const char *auth = soup_message_headers_get_one(soup_server_message_get_request_headers(msg), "Authorization");
      HttpReply r;
      switch (handler_.leave(route.session_id, auth ? auth : "")) {
        case SessionHandler::Leave::Left:
          r.status = 200;
          break;
        case SessionHandler::Leave::Unknown:
          r = error_reply(404, "unknown session: " + route.session_id);
          break;
        case SessionHandler::Leave::OtherCredentials:
          r = error_reply(403, "this session was started with other credentials");
          break;
      }
      add_cors(r.headers);
      send_reply(msg, r);
      return;
    }
    case Route::Action::Status:
      send_reply(msg, snapshot_reply(handler_.status_json(), "application/json", path));
      return;
    case Route::Action::Stats:
      send_reply(msg, snapshot_reply(handler_.stats_json(counts_), "application/json", path));
      return;
    case Route::Action::Metrics:
      send_reply(msg, snapshot_reply(handler_.metrics_text(counts_), "text/plain; version=0.0.4; charset=utf-8", path));
      return;
    case Route::Action::Subscribe:
      send_reply(msg, subscribe(msg, route.session_id));
      return;
    case Route::Action::SelectLayer:
      send_reply(msg, select_layer(msg, route.session_id));
      return;
    case Route::Action::EventStream:
      // The stream is the resource a subscription (POST .../sse) created:
      // none before it, none after its DELETE.
      if (handler_.has_session(route.session_id) && event_subscriptions_.count(route.session_id)) {
        open_event_stream(msg, route.session_id);
      } else {
        HttpReply r = error_reply(404, handler_.has_session(route.session_id)
                                           ? "no event subscription: POST the events wanted to " + endpoint_.path +
                                                 "/" + route.session_id + "/sse first"
                                           : "unknown session: " + route.session_id);
        add_cors(r.headers);
        send_reply(msg, r);
      }
      return;
    case Route::Action::EndEvents: {
      SoupServerMessage *stream = nullptr;
      for (const auto &e : event_streams_)
        if (e.second.session_id == route.session_id) stream = e.first;
      HttpReply r;
      if (stream) close_event_stream(stream);
      if (!event_subscriptions_.erase(route.session_id) && !stream)
        r = error_reply(404, "no event subscription for session " + route.session_id);
      add_cors(r.headers);
      send_reply(msg, r);
      return;
    }
    case Route::Action::Join: {
      SessionHandler::JoinRequest request;
      request.offer = request_body(msg);
      SoupMessageHeaders *req_headers = soup_server_message_get_request_headers(msg);
      const char *relay = soup_message_headers_get_one(req_headers, "Broadcast-Relay-Url");
      const char *node = soup_message_headers_get_one(req_headers, "Broadcast-Node");
      request.relay_url = relay ? relay : "";
      request.node_id = node ? node : "";
      request.remote_address = remote_host(msg);
      const char *auth = soup_message_headers_get_one(req_headers, "Authorization");
      request.authorization = auth ? auth : "";
      start_join(msg, std::move(request));
      return;
    }
  }
}

// Answering an offer waits on the viewer's transport: one of a few workers
// does it, and the HTTP thread stays free for other requests meanwhile.
void SignallingServer::start_join(SoupServerMessage *msg, SessionHandler::JoinRequest request) {
  struct Job {
    SoupServerMessage *msg;
    std::weak_ptr<bool> alive;
    GMainContext *context;
    Job(SoupServerMessage *m, std::weak_ptr<bool> a, GMainContext *c)
        : msg(SOUP_SERVER_MESSAGE(g_object_ref(m))), alive(std::move(a)), context(g_main_context_ref(c)) {}
    // A job dropped unrun (the server stopping) lets its message go on the
    // server's thread, the only one libsoup objects may be touched on.
    ~Job() {
      if (msg) g_main_context_invoke_full(context, G_PRIORITY_DEFAULT, +[](gpointer) -> gboolean { return G_SOURCE_REMOVE; },
                                          msg, g_object_unref);
      g_main_context_unref(context);
    }
  };
  auto job = std::make_shared<Job>(msg, alive_, context_);
  SessionHandler *handler = &handler_;
  const Endpoint *endpoint = &endpoint_;
  soup_server_message_pause(msg);
  const bool queued = workers_->post([job, handler, endpoint, request = std::move(request)]() {
    auto *reply = new HttpReply(join_reply(handler->join(request), *endpoint));
    struct Done {
      SoupServerMessage *msg;
      HttpReply *reply;
      std::weak_ptr<bool> alive;
    };
    auto *done = new Done{job->msg, reply, job->alive};
    job->msg = nullptr;  // Done owns the reference now
    g_main_context_invoke_full(
        job->context, G_PRIORITY_DEFAULT,
        +[](gpointer data) -> gboolean {
          auto *d = static_cast<Done *>(data);
          auto alive_now = d->alive.lock();
          if (alive_now && *alive_now) {
            send_reply(d->msg, *d->reply);
            soup_server_message_unpause(d->msg);
          }
          return G_SOURCE_REMOVE;
        },
        done,
        +[](gpointer data) {
          auto *d = static_cast<Done *>(data);
          g_object_unref(d->msg);
          delete d->reply;
          delete d;
        });
  });
  if (queued) return;
  soup_server_message_unpause(msg);
  GST_INFO("%zu offers waiting to be answered: refusing one from %s", kMaxQueuedJoins, remote_host(msg).c_str());
  HttpReply r = error_reply(503, "too many offers being answered; retry shortly");
  r.headers["Retry-After"] = "1";
  add_cors(r.headers);
  send_reply(msg, r);
}

bool parse_event_request(const std::string &body, std::set<std::string> *wanted) {
  wanted->clear();
  JsonParser *parser = json_parser_new();
  const bool parsed = json_parser_load_from_data(parser, body.data(), gssize(body.size()), nullptr);
  JsonNode *root = parsed ? json_parser_get_root(parser) : nullptr;
  bool ok = root && JSON_NODE_HOLDS_ARRAY(root);
  if (ok) {
    JsonArray *array = json_node_get_array(root);
    for (guint i = 0; ok && i < json_array_get_length(array); ++i) {
      JsonNode *item = json_array_get_element(array, i);
      ok = JSON_NODE_HOLDS_VALUE(item) && json_node_get_value_type(item) == G_TYPE_STRING;
      if (!ok) break;
      const std::string name = json_node_get_string(item);
      for (const char *known : kEventNames)
        if (name == known) wanted->insert(name);
    }
  }
  g_object_unref(parser);
  if (!ok) wanted->clear();
  return ok;
}

bool parse_layer_request(const std::string &body, int *layer) {
  JsonParser *parser = json_parser_new();
  const bool parsed = json_parser_load_from_data(parser, body.data(), gssize(body.size()), nullptr);
  JsonNode *root = parsed ? json_parser_get_root(parser) : nullptr;
  bool ok = root && JSON_NODE_HOLDS_OBJECT(root);
  *layer = -1;
  if (ok) {
    JsonNode *id = json_object_get_member(json_node_get_object(root), "encodingId");
    if (id && JSON_NODE_HOLDS_VALUE(id) && json_node_get_value_type(id) == G_TYPE_INT64) {
      const gint64 n = json_node_get_int(id);
      ok = n >= 0 && n < 64;
      *layer = int(n);
    } else if (id && JSON_NODE_HOLDS_VALUE(id) && json_node_get_value_type(id) == G_TYPE_STRING) {
      const char *text = json_node_get_string(id);
      guint64 n = 0;
      ok = g_ascii_string_to_unsigned(text, 10, 0, 63, &n, nullptr);
      *layer = int(n);
    } else {
      ok = !id || JSON_NODE_HOLDS_NULL(id);  // none: automatic
    }
  }
  g_object_unref(parser);
  if (!ok) *layer = -1;
  return ok;
}

// POST <path>/<id>/layer: {"encodingId": "<n>"} pins the viewer's video to
// layer n (0 is the `video` pad's), {} lets its feedback choose again.
HttpReply SignallingServer::select_layer(SoupServerMessage *msg, const std::string &session_id) {
  HttpReply r;
  int layer = -1;
  const bool ok = parse_layer_request(request_body(msg), &layer);
  if (!ok) {
    r = error_reply(400, "expected a JSON object: {\"encodingId\": \"1\"} for layer 1, {} to choose by the network");
  } else {
    const char *auth = soup_message_headers_get_one(soup_server_message_get_request_headers(msg), "Authorization");
    std::string error;
    const int status = handler_.select_layer(session_id, auth ? auth : "", layer, &error);
    if (status == 204) r.status = 204;
    else r = error_reply(status, error);
  }
  add_cors(r.headers);
  return r;
}

// POST <path>/<id>/sse: a JSON array of the events wanted. Those we do not
// send are left out; the stream is at <path>/<id>/sse/events.
HttpReply SignallingServer::subscribe(SoupServerMessage *msg, const std::string &session_id) {
  HttpReply r;
  std::set<std::string> wanted;
  const bool ok = parse_event_request(request_body(msg), &wanted);
  if (!ok) {
    r = error_reply(400, "expected a JSON array of event names, e.g. [\"active\",\"inactive\",\"viewercount\"]");
  } else if (!handler_.has_session(session_id)) {
    r = error_reply(404, "unknown session: " + session_id);
  } else {
    event_subscriptions_[session_id] = wanted;
    r.status = 201;
    r.headers["Location"] = endpoint_.path + "/" + session_id + "/sse/events";
  }
  add_cors(r.headers);
  return r;
}

namespace {

std::string event_text(const char *name, const std::string &json) {
  return std::string("event: ") + name + "\ndata: " + json + "\n\n";
}

void write_to_stream(SoupServerMessage *msg, const std::string &text) {
  soup_message_body_append(soup_server_message_get_response_body(msg), SOUP_MEMORY_COPY, text.data(), text.size());
  // libsoup pauses a chunked response that has written all it was given.
  soup_server_message_unpause(msg);
}

}  // namespace

std::string SignallingServer::current_events(const std::set<std::string> &wanted) const {
  std::string text;
  if (!event_state_.known) return text;
  const char *activity = event_state_.active ? "active" : "inactive";
  if (wanted.count(activity)) text += event_text(activity, "{}");
  if (wanted.count("viewercount"))
    text += event_text("viewercount", "{\"viewercount\":" + std::to_string(event_state_.viewers) + "}");
  return text;
}

std::string SignallingServer::layers_text(EventStream *stream, gint64 now_us, bool force) {
  if (!stream->events.count("layers")) return {};
  SessionHandler::LayersEvent event = handler_.layers_event(stream->session_id);
  if (event.json.empty() || event.json == stream->layers.json) return {};
  if (!force && event.state == stream->layers.state && now_us - stream->layers_us < kLayersEventIntervalUs) return {};
  stream->layers = event;
  stream->layers_us = now_us;
  return event_text("layers", event.json);
}

// GET <path>/<id>/sse/events: a response that does not end. It starts with
// the state as it is, then what changes.
void SignallingServer::open_event_stream(SoupServerMessage *msg, const std::string &session_id) {
  for (const auto &e : event_streams_)
    if (e.second.session_id == session_id) {
      close_event_stream(e.first);  // one stream a session: the newer wins
      break;
    }
  // From now on it is a session's stream, not a connection waiting for its
  // request: no deadline, no place among max_connections.
  auto connection = connections_.find(msg);
  if (connection != connections_.end()) {
    g_object_weak_unref(G_OBJECT(msg), on_message_gone, connection->second.get());
    on_message_gone(connection->second.get(), G_OBJECT(msg));
  }
  EventStream stream;
  stream.session_id = session_id;
  stream.events = event_subscriptions_.at(session_id);
  stream.last_write_us = g_get_monotonic_time();
  HttpReply head;
  head.headers["Cache-Control"] = "no-cache";
  add_cors(head.headers);
  send_reply(msg, head);
  SoupMessageHeaders *headers = soup_server_message_get_response_headers(msg);
  soup_message_headers_set_content_type(headers, "text/event-stream", nullptr);
  soup_message_headers_set_encoding(headers, SOUP_ENCODING_CHUNKED);
  soup_message_body_set_accumulate(soup_server_message_get_response_body(msg), FALSE);
  g_signal_connect(msg, "disconnected", G_CALLBACK(on_stream_gone), this);
  g_signal_connect(msg, "finished", G_CALLBACK(on_stream_gone), this);
  const std::string first = current_events(stream.events) + layers_text(&stream, stream.last_write_us, true);
  event_streams_[msg] = std::move(stream);
  g_object_ref(msg);
  // An empty first write would end the chunked body: a comment instead.
  write_to_stream(msg, first.empty() ? ":\n\n" : first);
  GST_DEBUG("event stream opened for session %s (%zu open)", session_id.c_str(), event_streams_.size());
}

void SignallingServer::close_event_stream(SoupServerMessage *msg) {
  auto it = event_streams_.find(msg);
  if (it == event_streams_.end()) return;
  GST_DEBUG("event stream of session %s closed", it->second.session_id.c_str());
  event_streams_.erase(it);
  g_signal_handlers_disconnect_by_func(msg, reinterpret_cast<gpointer>(on_stream_gone), this);
  soup_message_body_complete(soup_server_message_get_response_body(msg));
  soup_server_message_unpause(msg);
  g_object_unref(msg);
}

void SignallingServer::on_stream_gone(SoupServerMessage *msg, gpointer data) {
  auto *self = static_cast<SignallingServer *>(data);
  auto it = self->event_streams_.find(msg);
  if (it == self->event_streams_.end()) return;
  self->event_streams_.erase(it);
  g_signal_handlers_disconnect_by_func(msg, reinterpret_cast<gpointer>(on_stream_gone), self);
  g_object_unref(msg);
}

void SignallingServer::update_events(bool active, unsigned viewers, gint64 now_us) {
  const bool first = !event_state_.known;
  const bool activity_changed = first || active != event_state_.active;
  const bool count_changed = first || viewers != event_state_.viewers;
  event_state_.known = true;
  event_state_.active = active;
  event_state_.viewers = viewers;
  for (auto it = event_subscriptions_.begin(); it != event_subscriptions_.end();)
    it = handler_.has_session(it->first) ? std::next(it) : event_subscriptions_.erase(it);
  std::vector<SoupServerMessage *> ended;
  for (auto &e : event_streams_) {
    if (!handler_.has_session(e.second.session_id)) {
      ended.push_back(e.first);
      continue;
    }
    std::string text;
    const char *activity = active ? "active" : "inactive";
    if (activity_changed && e.second.events.count(activity)) text += event_text(activity, "{}");
    if (count_changed && e.second.events.count("viewercount"))
      text += event_text("viewercount", "{\"viewercount\":" + std::to_string(viewers) + "}");
    text += layers_text(&e.second, now_us, false);
    if (text.empty() && now_us - e.second.last_write_us >= kEventKeepaliveUs) text = ":\n\n";
    if (text.empty()) continue;
    e.second.last_write_us = now_us;
    write_to_stream(e.first, text);
  }
  for (SoupServerMessage *msg : ended) close_event_stream(msg);
}

}  // namespace wb
