#include "audience.h"

#include <algorithm>

#include "common/debug.h"
#include "common/strings.h"

#define GST_CAT_DEFAULT wb_viewer_debug

namespace wb {

namespace {

StreamFormat format_of(Codec codec, GstCaps *caps) {
  StreamFormat format;
  format.codec = codec;
  const gchar *plid = gst_structure_get_string(gst_caps_get_structure(caps, 0), "profile-level-id");
  if (plid) format.h264_profile_level_id = plid;
  gst_caps_unref(caps);
  return format;
}

StreamFormat stream_format(WbFanout *fanout) {
  GstCaps *caps = fanout ? fanout_get_stream_caps(fanout) : nullptr;
  return caps ? format_of(fanout_get_codec(fanout), caps) : StreamFormat{};
}

// One per codec the layers are in, in layer order (the best first).
std::vector<StreamFormat> layer_formats(WbFanout *fanout) {
  std::vector<StreamFormat> formats;
  if (!fanout) return formats;
  const auto codecs = fanout_layer_codecs(fanout);
  for (unsigned i = 0; i < kMaxLayers; ++i) {
    if (codecs[i] == Codec::Unknown ||
        std::any_of(formats.begin(), formats.end(), [&](const StreamFormat &f) { return f.codec == codecs[i]; }))
      continue;
    if (GstCaps *caps = fanout_get_layer_caps(fanout, i)) formats.push_back(format_of(codecs[i], caps));
  }
  return formats;
}

}  // namespace

Audience::Audience(GstBin *bin, ControlLoop &loop, Callbacks callbacks)
    : bin_(bin), loop_(loop), callbacks_(std::move(callbacks)) {}

Audience::~Audience() {
  remove_all("shutting down");
  std::unique_lock<std::mutex> lock(mutex_);
  joins_done_.wait(lock, [this] { return joins_in_flight_ == 0; });
  *alive_ = false;
}

void Audience::configure(const AudienceConfig &config) {
  std::lock_guard<std::mutex> lock(mutex_);
  // Viewers already on the port keep it (they hold it); new ones get a port
  // that matches the new settings.
  if (config.ice_lite != config_.ice_lite || config.ice_lite_port != config_.ice_lite_port ||
      config.transport.ice_addresses != config_.transport.ice_addresses ||
      config.sender_threads != config_.sender_threads) {
    lite_port_.reset();
    senders_.reset();
    lite_port_error_.clear();
  }
  config_ = config;
}

std::shared_ptr<IceLitePort> Audience::lite_port_locked() {
  if (!config_.ice_lite || !lite_port_error_.empty()) return lite_port_;
  if (!lite_port_) {
    IceLitePort::Config port_config;
    port_config.addresses = config_.transport.ice_addresses;
    port_config.port = config_.ice_lite_port;
    port_config.rtcp_metrics = rtcp_metrics_;
    lite_port_ = IceLitePort::open(port_config, &lite_port_error_);
    if (!lite_port_) {
      GST_WARNING("ICE-lite port: %s; every viewer gets a webrtcbin of its own", lite_port_error_.c_str());
      return nullptr;
    }
    senders_ = std::make_shared<SenderPool>(config_.sender_threads ? config_.sender_threads
                                                                   : SenderPool::available_cores());
    if (lite_port_->socket_fds().empty())
      GST_INFO("ICE-lite port: the sender shards send through the port's own socket");
    for (int fd : lite_port_->socket_fds()) {
      std::string why;
      if (!senders_->send_from_own_sockets(fd, &why))
        GST_WARNING("ICE-lite port: %s; the sender shards share the port's socket", why.c_str());
    }
  }
  return lite_port_;
}

void Audience::open_lite_port() {
  std::lock_guard<std::mutex> lock(mutex_);
  lite_port_locked();
}

AudienceConfig Audience::config() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return config_;
}

GstStructure *Audience::viewer_stats(const std::string &session_id) const {
  auto session = find(session_id);
  return session ? session->stats() : nullptr;
}

bool Audience::set_viewer_layer(const std::string &session_id, int layer) {
  auto session = find(session_id);
  return session && session->set_video_layer(layer);
}

SessionHandler::LayersEvent Audience::layers_event(const std::string &session_id) {
  auto session = find(session_id);
  return session ? session->layers_event() : LayersEvent{};
}

int Audience::select_layer(const std::string &session_id, const std::string &authorization, int layer,
                           std::string *error) {
  const Holder who = holder(session_id, authorization);
  if (who == Holder::Other) {
    *error = "this session was started with other credentials";
    return 403;
  }
  auto session = who == Holder::Same ? find(session_id) : nullptr;
  if (!session) {
    *error = "unknown session: " + session_id;
    return 404;
  }
  if (!session->set_video_layer(layer)) {
    *error = "no layer " + std::to_string(layer) + " this viewer can be moved to (its codec's layers, on the "
             "ICE-lite path only)";
    return 400;
  }
  return 204;
}

NodeStats Audience::stats() const {
  NodeStats stats;
  stats.status.path = callbacks_.path ? callbacks_.path() : "";
  stats.status.instance = callbacks_.instance ? callbacks_.instance() : "";
  stats.status.children = children_.count();
  const Inputs inputs = callbacks_.inputs ? callbacks_.inputs() : Inputs{};
  for (const auto &[kind, fanout] : {std::pair{"video", inputs.video}, std::pair{"audio", inputs.audio}})
    if (fanout) stats.streams.push_back({kind, fanout_get_stats(fanout)});
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stats.status.max_viewers = config_.max_viewers;
    stats.sessions = unsigned(sessions_.size());
    unsigned relays = 0;
    for (const auto &r : is_relay_) relays += r.second;
    stats.status.viewers = stats.sessions - relays;
    stats.pending = pending_locked(&stats.pending_webrtcbin);
    for (const auto &session : sessions_) stats.direct += session.second->sends_direct();
    if (senders_)
      for (unsigned i = 0; i < senders_->size(); ++i) stats.shards.push_back(senders_->stats(i));
  }
  return stats;
}

NodeStats Audience::full_stats() const {
  NodeStats stats = this->stats();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stats.offers = offers_;
    for (const auto &e : ended_) stats.ended[ended_name(e.first)] = e.second;
  }
  stats.answer_seconds = answer_seconds_.snapshot();
  stats.rtcp = rtcp_metrics_->snapshot();
  stats.child_loads = children_.loads();
  if (callbacks_.links) callbacks_.links(&stats);
  stats.process = process_stats();
  return stats;
}

unsigned Audience::viewers() const {
  std::lock_guard<std::mutex> lock(mutex_);
  unsigned relays = 0;
  for (const auto &r : is_relay_) relays += r.second;
  return unsigned(sessions_.size()) - relays;
}

std::string Audience::status_json() { return node_stats_json(stats()); }

namespace {
NodeStats with_http(NodeStats stats, const HttpCounts &http) {
  stats.http_responses = http.responses;
  stats.http_dropped = http.dropped;
  return stats;
}
}  // namespace

std::string Audience::metrics_text(const HttpCounts &http) {
  return node_stats_prometheus(with_http(full_stats(), http));
}

std::string Audience::stats_json(const HttpCounts &http) {
  return node_stats_json(with_http(full_stats(), http), true);
}

unsigned Audience::pending_locked(unsigned *webrtcbin) const {
  if (webrtcbin)
    for (const auto &id : pending_) {
      auto it = sessions_.find(id);
      if (it != sessions_.end()) *webrtcbin += it->second->uses_webrtcbin();
    }
  return unsigned(pending_.size());
}

SessionHandler::Join Audience::redirect_or_refuse(const JoinRequest &request, const std::string &why) {
  Join result;
  std::string child = children_.pick(request.node_id);
  if (!child.empty()) {
    GST_INFO("%s: redirecting to %s", why.c_str(), child.c_str());
    result.status = 307;
    result.location = child;
    return result;
  }
  result.status = 503;
  result.error = why + "; retry later";
  result.retry_after_s = 5;
  return result;
}

std::shared_ptr<ViewerSession> Audience::find(const std::string &id) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = sessions_.find(id);
  return it == sessions_.end() ? nullptr : it->second;
}

SessionHandler::Join Audience::join(const JoinRequest &request) {
  const gint64 started_us = g_get_monotonic_time();
  Join result = admit(request);
  if (result.status == 201) answer_seconds_.observe(double(g_get_monotonic_time() - started_us) / G_USEC_PER_SEC);
  std::lock_guard<std::mutex> lock(mutex_);
  ++offers_[result.status];
  return result;
}

SessionHandler::Join Audience::admit(const JoinRequest &request) {
  const std::string &offer_sdp = request.offer;
  const bool relay = !request.relay_url.empty();
  Join result;
  const std::string path = callbacks_.path ? callbacks_.path() : "";
  if (!request.node_id.empty() && ("," + path + ",").find("," + request.node_id + ",") != std::string::npos) {
    result.status = 508;
    result.error = "node " + request.node_id + " is above this node in the relay tree (" + path +
                   "): pulling from here would make a loop";
    return result;
  }
  gint64 started_us = g_get_monotonic_time();
  Inputs inputs = callbacks_.inputs ? callbacks_.inputs() : Inputs{};
  StreamFormat video = stream_format(inputs.video);
  StreamFormat audio = stream_format(inputs.audio);
  // Every input the broadcast has must be flowing: a viewer answered while
  // one medium had not started yet would never receive it.
  const char *missing = inputs.video && video.codec == Codec::Unknown   ? "video"
                        : inputs.audio && audio.codec == Codec::Unknown ? "audio"
                        : !inputs.video && !inputs.audio                ? "media"
                                                                        : nullptr;
  if (missing) {
    result.status = 409;
    result.error = std::string("the broadcast has no ") + missing + " flowing yet; retry shortly";
    result.retry_after_s = 1;
    return result;
  }
  OfferCheck check = check_offer(offer_sdp, layer_formats(inputs.video), audio);
  if (check.status) {
    result.status = check.status;
    result.error = check.error;
    GST_INFO("offer refused (%d): %s", check.status, check.error.c_str());
    return result;
  }

  for (const auto &m : check.media)
    GST_DEBUG("offer m-line %u (%s): %s", m.mline, m.kind.c_str(),
              m.accepted() ? ("payload type " + std::to_string(m.payload_type)).c_str() : m.reason.c_str());

  AudienceConfig config;
  std::string id = random_hex(kSessionIdBytes);
  std::shared_ptr<ViewerSession> session;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    config = config_;
    unsigned relays = 0;
    for (const auto &r : is_relay_) relays += r.second;
    const unsigned viewers = unsigned(sessions_.size()) - relays;
    std::string full;
    if (relay && relays >= kMaxChildren)
      full = "this node has its most relays (" + std::to_string(kMaxChildren) + ")";
    else if (!relay && config.max_viewers && viewers >= config.max_viewers)
      full = "this broadcast is full (max-viewers " + std::to_string(config.max_viewers) + ")";
    if (!full.empty()) return redirect_or_refuse(request, full);
    if (config.max_pending && pending_locked(nullptr) >= config.max_pending) {
      GST_INFO("%u viewers connecting: refusing an offer from %s", config.max_pending,
               request.remote_address.c_str());
      result.status = 503;
      result.error = "too many viewers are connecting at once (max-pending-viewers " +
                     std::to_string(config.max_pending) + "); retry shortly";
      result.retry_after_s = 2;
      return result;
    }
    std::weak_ptr<bool> alive = alive_;
    std::shared_ptr<IceLitePort> port = lite_port_locked();
    session = std::make_shared<ViewerSession>(
        id, bin_, config.transport, port, senders_, config.direct_send,
        [this, alive](const std::string &sid, TransportState state) {
          auto guard = alive.lock();
          if (guard && *guard) on_transport_state(sid, state);
        });
    sessions_[id] = session;
    pending_.insert(id);
    is_relay_[id] = relay;
    credentials_[id] = request.authorization;
    ++joins_in_flight_;
  }
  if (callbacks_.count_changed) callbacks_.count_changed();

  auto admit_webrtcbin = [this, &config, raw = session.get()] {
    std::lock_guard<std::mutex> lock(mutex_);
    unsigned webrtcbin = 0;
    pending_locked(&webrtcbin);
    if (config.max_pending_webrtcbin && webrtcbin >= config.max_pending_webrtcbin) return false;
    raw->mark_webrtcbin();
    return true;
  };
  auto answer = session->negotiate(offer_sdp, check, inputs.video, inputs.audio, config.answer_timeout,
                                   admit_webrtcbin);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    --joins_in_flight_;
    joins_done_.notify_all();
  }
  if (answer.status) {
    GST_WARNING("viewer %s: %s", id.c_str(), answer.error.c_str());
    remove(id, answer.error, Ended::NotAnswered);
    result.status = answer.status;
    result.error = answer.error;
    if (answer.status == 503) result.retry_after_s = 2;
    return result;
  }
  GST_INFO("viewer %s answered in %.1f ms", id.c_str(), (g_get_monotonic_time() - started_us) / 1000.0);
  result.status = 201;
  result.session_id = id;
  result.answer = answer.sdp;
  if (!path.empty()) result.headers["Broadcast-Path"] = path;
  // What the viewer asked for and will not get, and why: a page can tell
  // its user that this browser cannot decode the broadcast's video.
  std::string unserved;
  for (const auto &m : check.media)
    if (!m.accepted() && (m.kind == "video" || m.kind == "audio"))
      unserved += (unserved.empty() ? "" : "; ") + m.kind + ": " + m.reason;
  // The reasons quote the offer's codec names: printable ASCII only, and short.
  for (char &c : unserved)
    if (c < 0x20 || c > 0x7e) c = '?';
  if (unserved.size() > 256) unserved.resize(256);
  if (!unserved.empty()) result.headers["Broadcast-Unserved"] = unserved;
  if (relay) {
    children_.add(id, request.node_id, request.relay_url);
    session->mark_relay_child();
  }
  return result;
}

Audience::Holder Audience::holder(const std::string &session_id, const std::string &authorization) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = credentials_.find(session_id);
  if (it == credentials_.end()) return Holder::Unknown;
  return it->second.empty() || secrets_equal(it->second, authorization) ? Holder::Same : Holder::Other;
}

SessionHandler::Leave Audience::leave(const std::string &session_id, const std::string &authorization) {
  switch (holder(session_id, authorization)) {
    case Holder::Unknown:
      return Leave::Unknown;
    case Holder::Other:
      return Leave::OtherCredentials;
    case Holder::Same:
      break;
  }
  return remove(session_id, "viewer left", Ended::Left) ? Leave::Left : Leave::Unknown;
}

bool Audience::authorize(const Access &access) { return !callbacks_.authorize || callbacks_.authorize(access); }

void Audience::on_transport_state(const std::string &id, TransportState state) {
  // The transport's thread: hand over to the control loop, which may tear it down.
  loop_.invoke_async([this, id, state, alive = std::weak_ptr<bool>(alive_)] {
    auto guard = alive.lock();
    if (!guard || !*guard) return;
    auto session = find(id);
    if (!session) return;
    switch (state) {
      case TransportState::Connected:
        if (session->state() == ViewerState::Negotiating) {
          session->start_media();
          {
            std::lock_guard<std::mutex> lock(mutex_);
            pending_.erase(id);
          }
          GST_INFO("viewer %s connected", id.c_str());
          if (callbacks_.joined) callbacks_.joined(id);
        }
        break;
      case TransportState::Failed:
        remove(id, "transport failed (ICE or DTLS)", Ended::TransportFailed);
        break;
      case TransportState::Closed:
        remove(id, "transport closed", Ended::TransportClosed);
        break;
      case TransportState::Connecting:
        break;
    }
  });
}

bool Audience::remove(const std::string &session_id, const std::string &reason, Ended why) {
  std::shared_ptr<ViewerSession> session;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = sessions_.find(session_id);
    if (it == sessions_.end()) return false;
    session = it->second;
    sessions_.erase(it);
    pending_.erase(session_id);
    is_relay_.erase(session_id);
    credentials_.erase(session_id);
    ++ended_[why];
  }
  children_.remove(session_id);
  bool was_connected = session->state() == ViewerState::Connected;
  session->close();
  GST_INFO("viewer %s removed: %s", session_id.c_str(), reason.c_str());
  if (was_connected && callbacks_.left) callbacks_.left(session_id, reason);
  if (callbacks_.count_changed) callbacks_.count_changed();
  return true;
}

void Audience::remove_all(const std::string &reason) {
  std::vector<std::string> ids;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto &s : sessions_) ids.push_back(s.first);
  }
  for (const auto &id : ids) remove(id, reason, Ended::Shutdown);
}

size_t Audience::reap() {
  gint64 now = g_get_monotonic_time();
  struct Doomed {
    std::string id;
    const char *reason;
    Ended why;
  };
  std::vector<Doomed> doomed;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    gint64 timeout_us = gint64(config_.viewer_timeout.count()) * 1000;
    for (const auto &s : sessions_) {
      const auto &session = s.second;
      if (session->state() == ViewerState::Negotiating && now - session->created_us() > timeout_us)
        doomed.push_back({s.first, "transport never connected", Ended::NeverConnected});
      else if (session->state() == ViewerState::Connected && now - session->last_heard_us() > timeout_us)
        doomed.push_back({s.first, "viewer went silent (no packets from it)", Ended::WentSilent});
    }
  }
  for (const auto &d : doomed) remove(d.id, d.reason, d.why);
  std::lock_guard<std::mutex> lock(mutex_);
  return sessions_.size();
}

}  // namespace wb
