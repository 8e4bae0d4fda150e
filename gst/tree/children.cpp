#include "children.h"

#include <json-glib/json-glib.h>

#include <memory>

#include "signalling/httpclient.h"

#include "common/debug.h"
#define GST_CAT_DEFAULT wb_signalling_debug

namespace wb {

namespace {
constexpr auto kPollInterval = std::chrono::milliseconds(1000);
}

void add_node_status_members(JsonBuilder *b, const NodeStatus &status) {
  json_builder_set_member_name(b, "path");
  json_builder_add_string_value(b, status.path.c_str());
  json_builder_set_member_name(b, "instance");
  json_builder_add_string_value(b, status.instance.c_str());
  json_builder_set_member_name(b, "viewers");
  json_builder_add_int_value(b, status.viewers);
  json_builder_set_member_name(b, "max_viewers");
  json_builder_add_int_value(b, status.max_viewers);
  json_builder_set_member_name(b, "children");
  json_builder_add_int_value(b, status.children);
}

std::string json_text(JsonBuilder *b) {
  JsonNode *root = json_builder_get_root(b);
  gchar *text = json_to_string(root, FALSE);
  std::string out = text;
  g_free(text);
  json_node_unref(root);
  g_object_unref(b);
  return out;
}

std::string node_status_json(const NodeStatus &status) {
  JsonBuilder *b = json_builder_new();
  json_builder_begin_object(b);
  add_node_status_members(b, status);
  json_builder_end_object(b);
  return json_text(b);
}

namespace {

// json-glib's getters log a critical for a member of another type (and its
// integers are 64-bit): the JSON comes from whatever answers at a node's
// URL, so each member is checked before it is read.
bool read_count(JsonObject *o, const char *name, bool required, unsigned *out) {
  JsonNode *n = json_object_get_member(o, name);
  if (!n) {
    *out = 0;
    return !required;
  }
  if (JSON_NODE_TYPE(n) != JSON_NODE_VALUE || json_node_get_value_type(n) != G_TYPE_INT64) return false;
  gint64 v = json_node_get_int(n);
  if (v < 0 || v > G_MAXUINT) return false;
  *out = unsigned(v);
  return true;
}

bool read_text(JsonObject *o, const char *name, std::string *out) {
  JsonNode *n = json_object_get_member(o, name);
  if (!n) {
    out->clear();
    return true;
  }
  if (JSON_NODE_TYPE(n) != JSON_NODE_VALUE || json_node_get_value_type(n) != G_TYPE_STRING) return false;
  // json-glib turns an unpaired surrogate escape ("\ud800x") into bytes
  // that are not UTF-8, which its own writer then cannot write back.
  const char *text = json_node_get_string(n);
  if (!g_utf8_validate(text, -1, nullptr)) return false;
  *out = text;
  return true;
}

}  // namespace

bool parse_node_status(const std::string &json, NodeStatus *out) {
  JsonParser *parser = json_parser_new();
  bool ok = json_parser_load_from_data(parser, json.data(), gssize(json.size()), nullptr);
  JsonNode *root = ok ? json_parser_get_root(parser) : nullptr;
  ok = root && JSON_NODE_HOLDS_OBJECT(root);
  if (ok) {
    JsonObject *o = json_node_get_object(root);
    NodeStatus status;
    ok = read_count(o, "viewers", true, &status.viewers) && read_count(o, "max_viewers", true, &status.max_viewers) &&
         read_count(o, "children", false, &status.children) && read_text(o, "path", &status.path) &&
         read_text(o, "instance", &status.instance);
    if (ok) *out = std::move(status);
  }
  g_object_unref(parser);
  return ok;
}

Children::Children() { thread_ = std::thread([this] { poll_loop(); }); }

Children::~Children() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void Children::add(const std::string &session_id, const std::string &node_id, const std::string &url) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    children_[session_id] = Child{node_id, url, false, {}};
  }
  GST_INFO("relay child %s at %s", node_id.c_str(), url.c_str());
  wake_.notify_all();  // learn its load now, not a second later
}

void Children::remove(const std::string &session_id) {
  std::lock_guard<std::mutex> lock(mutex_);
  children_.erase(session_id);
}

unsigned Children::count() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return unsigned(children_.size());
}

std::vector<Children::Load> Children::loads() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<Load> loads;
  for (const auto &c : children_)
    loads.push_back({c.second.url, c.second.reachable, c.second.status.viewers, c.second.status.max_viewers,
                     c.second.status.children});
  return loads;
}

std::string Children::pick(const std::string &exclude_node) {
  std::lock_guard<std::mutex> lock(mutex_);
  const Child *best = nullptr;
  double best_load = 2.0;
  for (const auto &c : children_) {
    const Child &child = c.second;
    if (!child.reachable || (!exclude_node.empty() && child.node_id == exclude_node)) continue;
    const NodeStatus &s = child.status;
    // A full child may still redirect further down to its own children.
    if (s.max_viewers && s.viewers >= s.max_viewers && s.children == 0) continue;
    double load = s.max_viewers ? double(s.viewers) / s.max_viewers : 0.0;
    if (load < best_load) {
      best_load = load;
      best = &child;
    }
  }
  if (!best) return {};
  // Count the viewer we send there until the next poll says otherwise.
  const_cast<Child *>(best)->status.viewers++;
  return best->url;
}

void Children::set_tls_ca(const std::string &tls_ca) {
  std::lock_guard<std::mutex> lock(mutex_);
  tls_ca_ = tls_ca;
}

void Children::poll_loop() {
  std::unique_ptr<HttpClient> http;
  std::string http_ca;
  std::unique_lock<std::mutex> lock(mutex_);
  while (!stopping_) {
    std::vector<std::pair<std::string, std::string>> targets;  // session id, status URL
    for (const auto &c : children_) targets.emplace_back(c.first, c.second.url + "/status");
    if (!http || http_ca != tls_ca_) {
      http_ca = tls_ca_;
      http = std::make_unique<HttpClient>(1, http_ca);
    }
    lock.unlock();
    for (const auto &t : targets) {
      HttpResponse r = http->send("GET", t.second, {});
      NodeStatus status;
      bool ok = r.status == 200 && parse_node_status(r.body, &status);
      std::lock_guard<std::mutex> relock(mutex_);
      auto it = children_.find(t.first);
      if (it == children_.end()) continue;
      it->second.reachable = ok;
      if (ok) it->second.status = status;
    }
    lock.lock();
    wake_.wait_for(lock, kPollInterval);
  }
}

}  // namespace wb
