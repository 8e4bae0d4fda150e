// The relays that pull from this node (its children in the relay tree),
// as they announced themselves on their WHEP POST (Broadcast-Relay-Url),
// and their load as they report it on GET <their WHEP URL>/status. A full
// node sends new viewers to the child with the most room (307).
#pragma once

#include <json-glib/json-glib.h>

#include <condition_variable>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace wb {

// What a node reports about itself on GET <endpoint>/status.
struct NodeStatus {
  std::string path;      // node ids from the root down to this node
  std::string instance;  // random per running node: a restart changes it
  unsigned viewers = 0;
  unsigned max_viewers = 0;  // 0: unlimited
  unsigned children = 0;
};
std::string node_status_json(const NodeStatus &status);
// The same members, into an object being built (for documents that carry
// more, such as node_stats_json()).
void add_node_status_members(JsonBuilder *builder, const NodeStatus &status);
// The built document as text; unrefs `builder`.
std::string json_text(JsonBuilder *builder);
bool parse_node_status(const std::string &json, NodeStatus *out);

class Children {
 public:
  Children();
  ~Children();
  Children(const Children &) = delete;
  Children &operator=(const Children &) = delete;

  void add(const std::string &session_id, const std::string &node_id, const std::string &url);
  void remove(const std::string &session_id);
  unsigned count() const;
  // What the last status poll of each child said (for metrics).
  struct Load {
    std::string url;
    bool reachable = false;
    unsigned viewers = 0;
    unsigned max_viewers = 0;  // 0: unlimited
    unsigned children = 0;     // its own relay children
  };
  std::vector<Load> loads() const;
  // The WHEP URL of a live child with room for one more viewer, the
  // emptiest first; never the node `exclude_node` (the one asking). Empty
  // when none can take it.
  std::string pick(const std::string &exclude_node);
  // The authorities a child's https:// status URL must chain to instead of
  // the system's (a PEM file; empty: the system's). Takes effect on the
  // next poll.
  void set_tls_ca(const std::string &tls_ca);

 private:
  struct Child {
    std::string node_id;
    std::string url;
    bool reachable = false;  // answered its last status poll
    NodeStatus status;
  };
  void poll_loop();

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::map<std::string, Child> children_;  // by session id
  std::string tls_ca_;
  std::thread thread_;
};

}  // namespace wb
