#include "janusclient.h"

#include <json-glib/json-glib.h>
#include <openssl/rand.h>

#include "viewer.h"

namespace load {

namespace {

constexpr int64_t kKeepaliveInterval = 20 * kSecond;  // Janus drops sessions silent for 60 s
constexpr unsigned kPollTimeoutSeconds = 60;           // Janus answers an idle long poll after 30 s
constexpr int kEventsPerPoll = 64;

std::string transaction() {
  uint64_t t;
  RAND_bytes(reinterpret_cast<unsigned char *>(&t), sizeof t);
  return std::to_string(t);
}

// {"janus": type, "transaction": ..., "body": {request, [id]}, "jsep": {answer}}
std::string request(const char *type, const char *plugin_request = nullptr, int64_t mount = -1,
                    const std::string &answer_sdp = "") {
  JsonBuilder *b = json_builder_new();
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "janus");
  json_builder_add_string_value(b, type);
  json_builder_set_member_name(b, "transaction");
  json_builder_add_string_value(b, transaction().c_str());
  if (std::string(type) == "attach") {
    json_builder_set_member_name(b, "plugin");
    json_builder_add_string_value(b, "janus.plugin.streaming");
  }
  if (plugin_request) {
    json_builder_set_member_name(b, "body");
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "request");
    json_builder_add_string_value(b, plugin_request);
    if (mount >= 0) {
      json_builder_set_member_name(b, "id");
      json_builder_add_int_value(b, mount);
    }
    json_builder_end_object(b);
  }
  if (!answer_sdp.empty()) {
    json_builder_set_member_name(b, "jsep");
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "type");
    json_builder_add_string_value(b, "answer");
    json_builder_set_member_name(b, "sdp");
    json_builder_add_string_value(b, answer_sdp.c_str());
    json_builder_end_object(b);
  }
  json_builder_end_object(b);
  JsonNode *root = json_builder_get_root(b);
  gchar *text = json_to_string(root, FALSE);
  std::string s = text;
  g_free(text);
  json_node_unref(root);
  g_object_unref(b);
  return s;
}

// A parsed Janus reply. `ok` when janus is "success" or "ack".
struct JanusReply {
  bool ok = false;
  int64_t id = 0;  // data.id of a "success"
  std::string error;
};

JanusReply read_reply(const HttpReply &http) {
  JanusReply r;
  if (http.status != 200) {
    r.error = "HTTP " + http.describe();
    return r;
  }
  JsonParser *parser = json_parser_new();
  if (json_parser_load_from_data(parser, http.body.data(), gssize(http.body.size()), nullptr) &&
      JSON_NODE_HOLDS_OBJECT(json_parser_get_root(parser))) {
    JsonObject *o = json_node_get_object(json_parser_get_root(parser));
    std::string janus = json_object_get_string_member_with_default(o, "janus", "");
    r.ok = janus == "success" || janus == "ack";
    if (r.ok && json_object_has_member(o, "data"))
      r.id = json_object_get_int_member_with_default(json_object_get_object_member(o, "data"), "id", 0);
    if (!r.ok && json_object_has_member(o, "error"))
      r.error = json_object_get_string_member_with_default(json_object_get_object_member(o, "error"), "reason", "");
    if (!r.ok && r.error.empty()) r.error = "unexpected reply: " + http.body.substr(0, 200);
  } else {
    r.error = "not JSON: " + http.body.substr(0, 200);
  }
  g_object_unref(parser);
  return r;
}

JanusReply post(SoupSession *session, const std::string &url, const std::string &body) {
  return read_reply(http_send(session, "POST", url, "application/json", body));
}

}  // namespace

JanusClient::JanusClient(EventLoop &loop, HttpPool &pool, std::string url, int64_t mount)
    : loop_(loop), pool_(pool), url_(std::move(url)), mount_(mount) {}

JanusClient::~JanusClient() {
  finish();
}

bool JanusClient::start(std::string *error) {
  SoupSession *session = soup_session_new_with_options("timeout", 10, nullptr);
  JanusReply r = post(session, url_, request("create"));
  g_object_unref(session);
  if (!r.ok) {
    *error = "Janus create: " + r.error;
    return false;
  }
  session_ = r.id;
  session_url_ = url_ + "/" + std::to_string(session_);
  cancel_poll_ = g_cancellable_new();
  poller_ = std::thread([this] { poll(); });
  loop_.call_at(monotonic_ns() + kKeepaliveInterval, [this] { keepalive(); });
  return true;
}

void JanusClient::keepalive() {
  if (stopping_) return;
  pool_.submit([this](SoupSession *session) { post(session, session_url_, request("keepalive")); });
  loop_.call_at(loop_.now() + kKeepaliveInterval, [this] { keepalive(); });
}

void JanusClient::join(Viewer &viewer) {
  pool_.submit([this, &viewer](SoupSession *session) { attach_and_watch(session, viewer); });
}

void JanusClient::attach_and_watch(SoupSession *session, Viewer &viewer) {
  int64_t sent = monotonic_ns();
  loop_.post([&viewer, sent] { viewer.signalling_started(sent); });
  JanusReply attached = post(session, session_url_, request("attach"));
  if (!attached.ok) {
    loop_.post([&viewer, attached] { viewer.fail("Janus attach: " + attached.error); });
    return;
  }
  int64_t handle = attached.id;
  {
    std::lock_guard<std::mutex> lock(handles_mutex_);
    handles_[handle] = &viewer;
  }
  loop_.post([this, &viewer, handle] { handle_of_[viewer.index()] = handle; });
  // Janus acks at once; its offer comes as an event on the long poll.
  JanusReply watching = post(session, session_url_ + "/" + std::to_string(handle), request("message", "watch", mount_));
  if (!watching.ok) loop_.post([&viewer, watching] { viewer.fail("Janus watch: " + watching.error); });
}

void JanusClient::send_answer(Viewer &viewer, int64_t handle, const std::string &answer) {
  pool_.submit([this, &viewer, handle, answer](SoupSession *session) {
    JanusReply r = post(session, session_url_ + "/" + std::to_string(handle), request("message", "start", -1, answer));
    loop_.post([&viewer, r] {
      if (r.ok)
        viewer.start_ice();
      else
        viewer.fail("Janus start: " + r.error);
    });
  });
}

Viewer *JanusClient::viewer_for(int64_t handle) {
  std::lock_guard<std::mutex> lock(handles_mutex_);
  auto it = handles_.find(handle);
  return it == handles_.end() ? nullptr : it->second;
}

void JanusClient::poll() {
  SoupSession *session = soup_session_new_with_options("timeout", kPollTimeoutSeconds, nullptr);
  std::string url = session_url_ + "?maxev=" + std::to_string(kEventsPerPoll);
  while (!stopping_) {
    HttpReply reply = http_send(session, "GET", url, "", "", cancel_poll_);
    if (reply.status != 200) {
      if (!stopping_) g_usleep(100000);  // Janus restarting, or gone: do not spin
      continue;
    }
    dispatch(reply.body.c_str());
  }
  g_object_unref(session);
}

void JanusClient::dispatch(const char *events_json) {
  JsonParser *parser = json_parser_new();
  if (!json_parser_load_from_data(parser, events_json, -1, nullptr)) {
    g_object_unref(parser);
    return;
  }
  // With maxev Janus answers an array of events (one object when there is one).
  JsonNode *root = json_parser_get_root(parser);
  std::vector<JsonObject *> events;
  if (JSON_NODE_HOLDS_ARRAY(root)) {
    JsonArray *a = json_node_get_array(root);
    for (guint i = 0; i < json_array_get_length(a); ++i)
      if (JSON_NODE_HOLDS_OBJECT(json_array_get_element(a, i))) events.push_back(json_array_get_object_element(a, i));
  } else if (JSON_NODE_HOLDS_OBJECT(root)) {
    events.push_back(json_node_get_object(root));
  }
  for (JsonObject *e : events) {
    int64_t handle = json_object_get_int_member_with_default(e, "sender", 0);
    Viewer *viewer = viewer_for(handle);
    if (!viewer) continue;  // keepalives, and handles we are leaving
    std::string type = json_object_get_string_member_with_default(e, "janus", "");
    if (type == "hangup") {
      std::string reason = json_object_get_string_member_with_default(e, "reason", "");
      loop_.post([viewer, reason] { viewer->fail("Janus hung up: " + reason); });
      continue;
    }
    if (type != "event") continue;
    JsonObject *data = nullptr;
    if (json_object_has_member(e, "plugindata"))
      data = json_object_get_object_member(json_object_get_object_member(e, "plugindata"), "data");
    if (data && json_object_has_member(data, "error")) {
      std::string error = json_object_get_string_member_with_default(data, "error", "");
      loop_.post([viewer, error] { viewer->fail("Janus: " + error); });
      continue;
    }
    if (!json_object_has_member(e, "jsep")) continue;
    JsonObject *jsep = json_object_get_object_member(e, "jsep");
    if (std::string(json_object_get_string_member_with_default(jsep, "type", "")) != "offer") continue;
    std::string offer = json_object_get_string_member_with_default(jsep, "sdp", "");
    loop_.post([this, viewer, handle, offer] {
      std::string answer = viewer->answer(offer);
      if (!answer.empty()) send_answer(*viewer, handle, answer);
    });
  }
  g_object_unref(parser);
}

void JanusClient::leave(Viewer &viewer, std::function<void()> done) {
  auto it = handle_of_.find(viewer.index());
  if (it == handle_of_.end()) {
    loop_.post(std::move(done));
    return;
  }
  int64_t handle = it->second;
  handle_of_.erase(it);
  {
    std::lock_guard<std::mutex> lock(handles_mutex_);
    handles_.erase(handle);  // its hangup is ours, not a failure
  }
  pool_.submit([this, handle, done](SoupSession *session) {
    post(session, session_url_ + "/" + std::to_string(handle), request("detach"));
    loop_.post(done);
  });
}

void JanusClient::finish() {
  if (!session_ || stopping_.exchange(true)) return;
  SoupSession *session = soup_session_new_with_options("timeout", 10, nullptr);
  post(session, session_url_, request("destroy"));
  g_object_unref(session);
  g_cancellable_cancel(cancel_poll_);
  poller_.join();
  g_object_unref(cancel_poll_);
}

}  // namespace load
