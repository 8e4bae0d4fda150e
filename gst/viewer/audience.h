// The set of viewers of one broadcast: admission (capacity, media present,
// offer usable), the sessions themselves, and their removal when they leave,
// fail or go silent. It answers WHEP for the server and action signals for
// applications alike.
#pragma once

#include <gst/gst.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "common/controlloop.h"
#include "fanout/fanout.h"
#include "signalling/server.h"
#include "tree/children.h"
#include "viewer/nodestats.h"
#include "viewer/viewersession.h"

namespace wb {

struct AudienceConfig {
  static constexpr unsigned kDefaultMaxPending = 200;
  static constexpr unsigned kDefaultMaxPendingWebrtcbin = 8;
  unsigned max_viewers = 0;  // 0: unlimited
  // Sessions whose transport has not connected yet: what an offer costs
  // before the viewer proved anything but that it can POST (0: unlimited).
  unsigned max_pending = kDefaultMaxPending;
  // Of those, the ones with a webrtcbin of their own (about 8 threads and
  // a few sockets each) (0: unlimited).
  unsigned max_pending_webrtcbin = kDefaultMaxPendingWebrtcbin;
  TransportConfig transport;
  std::chrono::milliseconds viewer_timeout{8000};
  std::chrono::milliseconds answer_timeout{5000};
  bool direct_send = true;  // see ViewerSession::start_media
  bool ice_lite = true;     // serve viewers from the shared ICE-lite port
  uint16_t ice_lite_port = 0;
  // Sender shards of ICE-lite viewers' media (0: one per core this process
  // may use).
  unsigned sender_threads = 0;
};

class Audience : public SessionHandler {
 public:
  struct Inputs {
    WbFanout *video = nullptr;
    WbFanout *audio = nullptr;
  };
  struct Callbacks {
    std::function<Inputs()> inputs;
    std::function<void(const std::string &id)> joined;
    std::function<void(const std::string &id, const std::string &reason)> left;
    std::function<void()> count_changed;
    // Node ids from the root down to this node.
    std::function<std::string()> path;
    // Random per running node, for GET /status.
    std::function<std::string()> instance;
    // The application's check of a POST or DELETE (unset: allowed).
    std::function<bool(const Access &)> authorize;
    // Adds the node's links (push, upstream) to a snapshot.
    std::function<void(NodeStats *)> links;
  };
  // Relays are admitted beyond max-viewers (each one multiplies capacity),
  // up to this many; further relays are redirected like viewers.
  static constexpr unsigned kMaxChildren = 16;

  Audience(GstBin *bin, ControlLoop &loop, Callbacks callbacks);
  ~Audience() override;

  void configure(const AudienceConfig &config);
  AudienceConfig config() const;
  // Opens the shared ICE-lite port now rather than on the first viewer: a
  // node's descriptors and threads are then what they will be, and a port
  // that cannot be opened shows at start.
  void open_lite_port();

  Join join(const JoinRequest &request) override;
  Leave leave(const std::string &session_id, const std::string &authorization) override;
  bool authorize(const Access &access) override;
  std::string status_json() override;
  std::string metrics_text(const HttpCounts &http) override;
  std::string stats_json(const HttpCounts &http) override;
  bool has_session(const std::string &id) override { return find(id) != nullptr; }
  LayersEvent layers_event(const std::string &session_id) override;
  int select_layer(const std::string &session_id, const std::string &authorization, int layer,
                   std::string *error) override;
  // Viewers connected or connecting, relays not counted (NodeStatus's).
  unsigned viewers() const;
  // The fan-outs the broadcast has now.
  Inputs inputs() const { return callbacks_.inputs ? callbacks_.inputs() : Inputs{}; }

  bool remove(const std::string &session_id, const std::string &reason, Ended why = Ended::Removed);
  void remove_all(const std::string &reason);
  // Removes viewers that never connected or went silent; run periodically.
  // Returns the sessions left.
  size_t reap();
  // The counts, streams and shards: what get-stats, the properties and
  // /status show, cheap enough for a parent's poll every second.
  NodeStats stats() const;
  // And what only the metrics and /stats show: the histograms, the links
  // (a walk of the pipeline) and the process (reads of /proc).
  NodeStats full_stats() const;
  // See Children::set_tls_ca().
  void set_children_tls_ca(const std::string &tls_ca) { children_.set_tls_ca(tls_ca); }
  // ViewerSession::stats() of a session; null for an unknown id. Any thread.
  GstStructure *viewer_stats(const std::string &session_id) const;
  // ViewerSession::set_video_layer() of a session; false for an unknown id.
  bool set_viewer_layer(const std::string &session_id, int layer);

 private:
  // Sessions not connected yet (of them with a webrtcbin, in `webrtcbin`).
  // With mutex_ held.
  unsigned pending_locked(unsigned *webrtcbin) const;
  // join() but for what every answer counts.
  Join admit(const JoinRequest &request);
  // 307 to a child with room, or 503: what a full node answers.
  Join redirect_or_refuse(const JoinRequest &request, const std::string &why);
  void on_transport_state(const std::string &id, TransportState state);
  std::shared_ptr<ViewerSession> find(const std::string &id) const;
  // Whether a request with `authorization` may act on a session (leave it,
  // pin its layer): only with the credentials that started it, if any.
  enum class Holder { Unknown, Other, Same };
  Holder holder(const std::string &session_id, const std::string &authorization) const;
  // The shared port for new viewers, opened at start (open_lite_port()) or,
  // after a change of its settings, on the next viewer; null when ice-lite
  // is off or it cannot be opened. With mutex_ held.
  std::shared_ptr<IceLitePort> lite_port_locked();

  GstBin *bin_;
  ControlLoop &loop_;
  Callbacks callbacks_;
  mutable std::mutex mutex_;
  std::condition_variable joins_done_;
  AudienceConfig config_;
  std::map<std::string, std::shared_ptr<ViewerSession>> sessions_;
  std::map<std::string, bool> is_relay_;  // by session id
  // Sessions whose transport has not connected yet: counted at every join,
  // so kept apart rather than found among all the viewers.
  std::set<std::string> pending_;
  // The Authorization header each session's offer came with: its DELETE
  // must bring the same.
  std::map<std::string, std::string> credentials_;
  Children children_;
  unsigned joins_in_flight_ = 0;
  std::shared_ptr<IceLitePort> lite_port_;
  std::shared_ptr<SenderPool> senders_;  // opened and closed with lite_port_
  std::string lite_port_error_;  // why it could not be opened with the current config
  // What the node's metrics count from its start. The transports and the
  // offer workers record into them, as they go.
  const std::shared_ptr<RtcpMetrics> rtcp_metrics_ = std::make_shared<RtcpMetrics>();
  Histogram answer_seconds_{buckets::kAnswerSeconds};
  std::map<int, uint64_t> offers_;         // by status; mutex_
  std::map<Ended, uint64_t> ended_;        // mutex_
  // Cleared on destruction; transport callbacks that arrive late check it.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace wb
