#include "peerconnection.h"

#include <nice/agent.h>

#include "common/debug.h"
#define GST_CAT_DEFAULT wb_peer_debug

namespace wb {

struct PeerConnection::Events {
  std::string name;
  StateListener state_listener;
  PadListener pad_listener;
  std::atomic<bool> closed{false};
  std::mutex mutex;
  std::condition_variable gathering_done;
  bool gathering_complete = false;
};

namespace {

using EventsRef = std::shared_ptr<PeerConnection::Events>;

void free_events(gpointer data, GClosure *) { delete static_cast<EventsRef *>(data); }

const GstStructure *wait_promise(GstPromise *promise) {
  if (gst_promise_wait(promise) != GST_PROMISE_RESULT_REPLIED) return nullptr;
  return gst_promise_get_reply(promise);
}

std::string promise_error(const GstStructure *reply, const char *what) {
  GError *error = nullptr;
  if (reply && gst_structure_get(reply, "error", G_TYPE_ERROR, &error, nullptr) && error) {
    std::string msg = std::string(what) + ": " + error->message;
    g_error_free(error);
    return msg;
  }
  return std::string(what) + " failed";
}

// Emits a webrtcbin action that replies through a promise; returns the
// error, or "" on success.
std::string run_action(GstElement *webrtc, const char *action, GstWebRTCSessionDescription *desc,
                       const char *what) {
  GstPromise *promise = gst_promise_new();
  g_signal_emit_by_name(webrtc, action, desc, promise);
  std::string error;
  // Success replies carry no structure at all.
  if (gst_promise_wait(promise) != GST_PROMISE_RESULT_REPLIED) {
    error = std::string(what) + ": webrtcbin did not reply";
  } else {
    const GstStructure *reply = gst_promise_get_reply(promise);
    if (reply && gst_structure_has_field(reply, "error")) error = promise_error(reply, what);
  }
  gst_promise_unref(promise);
  return error;
}

void configure_ice_agent(GstElement *webrtc, const TransportConfig &config) {
  GstObject *ice = nullptr;
  g_object_get(webrtc, "ice-agent", &ice, nullptr);
  if (!ice) return;
  // TCP candidates cost sockets per peer and browsers reach us over UDP.
  if (g_object_class_find_property(G_OBJECT_GET_CLASS(ice), "ice-tcp"))
    g_object_set(ice, "ice-tcp", FALSE, nullptr);
  NiceAgent *agent = nullptr;
  if (g_object_class_find_property(G_OBJECT_GET_CLASS(ice), "agent"))
    g_object_get(ice, "agent", &agent, nullptr);
  if (agent) {
    // UPnP would send SSDP multicast on every gathering and delay answers.
    g_object_set(agent, "upnp", FALSE, nullptr);
    for (const auto &ip : config.ice_addresses) {
      NiceAddress addr;
      nice_address_init(&addr);
      if (nice_address_set_from_string(&addr, ip.c_str()))
        nice_agent_add_local_address(agent, &addr);
      else
        GST_WARNING("ignoring ICE address '%s'", ip.c_str());
    }
    g_object_unref(agent);
  }
  for (const auto &turn : config.turn_servers) {
    gboolean ok = FALSE;
    g_signal_emit_by_name(webrtc, "add-turn-server", turn.c_str(), &ok);
    if (!ok) GST_WARNING("webrtcbin refused TURN server %s", turn.c_str());
  }
  gst_object_unref(ice);
}

}  // namespace

PeerConnection::PeerConnection(const std::string &name, const TransportConfig &config)
    : events_(std::make_shared<Events>()),
      last_heard_(std::make_shared<std::atomic<gint64>>(g_get_monotonic_time())) {
  events_->name = name;
  webrtc_ = gst_element_factory_make("webrtcbin", name.c_str());
  if (!webrtc_) return;
  gst_object_ref_sink(webrtc_);
  g_object_set(webrtc_, "bundle-policy", GST_WEBRTC_BUNDLE_POLICY_MAX_BUNDLE, nullptr);
  if (!config.stun_server.empty()) g_object_set(webrtc_, "stun-server", config.stun_server.c_str(), nullptr);
  configure_ice_agent(webrtc_, config);
}

PeerConnection::~PeerConnection() {
  close();
  if (webrtc_) gst_object_unref(webrtc_);
}

void PeerConnection::on_state(StateListener listener) { events_->state_listener = std::move(listener); }

void PeerConnection::on_src_pad(PadListener listener) { events_->pad_listener = std::move(listener); }

void PeerConnection::start(GstBin *parent) {
  if (!webrtc_) return;
  auto connect = [&](const char *signal, GCallback cb) {
    handlers_.push_back(g_signal_connect_data(webrtc_, signal, cb, new EventsRef(events_), free_events,
                                              GConnectFlags(0)));
  };
  connect("notify::connection-state",
          G_CALLBACK(+[](GstElement *webrtc, GParamSpec *, gpointer data) {
            Events &events = **static_cast<EventsRef *>(data);
            GstWebRTCPeerConnectionState state;
            g_object_get(webrtc, "connection-state", &state, nullptr);
            GST_DEBUG("%s: connection state %d", events.name.c_str(), state);
            if (!events.closed && events.state_listener) events.state_listener(state);
          }));
  connect("notify::ice-gathering-state",
          G_CALLBACK(+[](GstElement *webrtc, GParamSpec *, gpointer data) {
            Events &events = **static_cast<EventsRef *>(data);
            GstWebRTCICEGatheringState state;
            g_object_get(webrtc, "ice-gathering-state", &state, nullptr);
            if (state != GST_WEBRTC_ICE_GATHERING_STATE_COMPLETE) return;
            std::lock_guard<std::mutex> lock(events.mutex);
            events.gathering_complete = true;
            events.gathering_done.notify_all();
          }));
  connect("pad-added", G_CALLBACK(+[](GstElement *, GstPad *pad, gpointer data) {
            Events &events = **static_cast<EventsRef *>(data);
            if (GST_PAD_DIRECTION(pad) != GST_PAD_SRC) return;
            GST_DEBUG("%s: new source pad %s", events.name.c_str(), GST_PAD_NAME(pad));
            if (!events.closed && events.pad_listener) events.pad_listener(pad);
          }));
  parent_ = parent;
  gst_bin_add(parent, webrtc_);
  gst_element_sync_state_with_parent(webrtc_);
}

std::string PeerConnection::set_remote(GstWebRTCSDPType type, const std::string &sdp_text) {
  if (!webrtc_) return "webrtcbin is not available (gst-plugins-bad webrtc plugin missing)";
  GstSDPMessage *sdp = nullptr;
  gst_sdp_message_new(&sdp);
  if (gst_sdp_message_parse_buffer(reinterpret_cast<const guint8 *>(sdp_text.data()), sdp_text.size(),
                                   sdp) != GST_SDP_OK) {
    gst_sdp_message_free(sdp);
    return "the SDP cannot be parsed";
  }
  GstWebRTCSessionDescription *desc = gst_webrtc_session_description_new(type, sdp);
  std::string error = run_action(webrtc_, "set-remote-description", desc, "remote description refused");
  gst_webrtc_session_description_free(desc);
  return error;
}

std::string PeerConnection::create_local(GstWebRTCSDPType type) {
  if (!webrtc_) return "webrtcbin is not available (gst-plugins-bad webrtc plugin missing)";
  const bool offer = type == GST_WEBRTC_SDP_TYPE_OFFER;
  GstPromise *promise = gst_promise_new();
  g_signal_emit_by_name(webrtc_, offer ? "create-offer" : "create-answer", nullptr, promise);
  const GstStructure *reply = wait_promise(promise);
  GstWebRTCSessionDescription *desc = nullptr;
  if (reply)
    gst_structure_get(reply, offer ? "offer" : "answer", GST_TYPE_WEBRTC_SESSION_DESCRIPTION, &desc, nullptr);
  if (!desc) {
    std::string error = promise_error(reply, offer ? "could not make an offer" : "could not answer the offer");
    gst_promise_unref(promise);
    return error;
  }
  gst_promise_unref(promise);
  std::string error = run_action(webrtc_, "set-local-description", desc, "could not apply our description");
  gst_webrtc_session_description_free(desc);
  return error;
}

bool PeerConnection::wait_gathering(Deadline deadline) {
  std::unique_lock<std::mutex> lock(events_->mutex);
  return events_->gathering_done.wait_until(lock, deadline, [this] { return events_->gathering_complete; });
}

std::string PeerConnection::local_sdp() const {
  if (!webrtc_) return "";
  GstWebRTCSessionDescription *local = nullptr;
  g_object_get(webrtc_, "local-description", &local, nullptr);
  if (!local) return "";
  gchar *text = gst_sdp_message_as_text(local->sdp);
  gst_webrtc_session_description_free(local);
  std::string sdp = text;
  g_free(text);
  return sdp;
}

// Whatever the peer sends (RTP, RTCP, DTLS) passes the ICE source element.
void PeerConnection::watch_incoming() {
  std::lock_guard<std::mutex> lock(mutex_);
  last_heard_->store(g_get_monotonic_time());
  if (watching_ || !webrtc_) return;
  GstIterator *it = gst_bin_iterate_recurse(GST_BIN(webrtc_));
  GValue item = G_VALUE_INIT;
  while (gst_iterator_next(it, &item) == GST_ITERATOR_OK) {
    GstElement *element = GST_ELEMENT(g_value_get_object(&item));
    GstElementFactory *factory = gst_element_get_factory(element);
    if (factory && g_strcmp0(GST_OBJECT_NAME(factory), "nicesrc") == 0) {
      GstPad *src = gst_element_get_static_pad(element, "src");
      if (src) {
        using Stamp = std::shared_ptr<std::atomic<gint64>>;
        gst_pad_add_probe(
            src, GstPadProbeType(GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_BUFFER_LIST),
            +[](GstPad *, GstPadProbeInfo *, gpointer data) {
              static_cast<Stamp *>(data)->get()->store(g_get_monotonic_time());
              return GST_PAD_PROBE_OK;
            },
            new Stamp(last_heard_), +[](gpointer data) { delete static_cast<Stamp *>(data); });
        gst_object_unref(src);
        watching_ = true;
      }
    }
    g_value_reset(&item);
  }
  g_value_unset(&item);
  gst_iterator_free(it);
}

void PeerConnection::close() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (closed_) return;
    closed_ = true;
  }
  events_->closed = true;
  if (!webrtc_) return;
  for (gulong h : handlers_) g_signal_handler_disconnect(webrtc_, h);
  handlers_.clear();
  gst_element_set_locked_state(webrtc_, TRUE);
  gst_element_set_state(webrtc_, GST_STATE_NULL);
  if (parent_ && GST_OBJECT_PARENT(webrtc_) == GST_OBJECT(parent_)) gst_bin_remove(parent_, webrtc_);
  GST_INFO("%s closed", events_->name.c_str());
}

std::string offer_without_bundle_only(const std::string &sdp) {
  std::string out;
  bool bundle_only_section = false;
  size_t start = 0;
  while (start < sdp.size()) {
    size_t end = sdp.find('\n', start);
    end = end == std::string::npos ? sdp.size() : end + 1;
    std::string line = sdp.substr(start, end - start);
    start = end;
    if (line.compare(0, 2, "m=") == 0) {
      // The section is bundle-only if one of its lines says so: look ahead.
      size_t next = sdp.find("\nm=", start - 1);
      const std::string section = sdp.substr(start, next == std::string::npos ? std::string::npos : next - start);
      bundle_only_section = section.find("a=bundle-only") != std::string::npos;
      const size_t port = line.find(' ');
      if (bundle_only_section && port != std::string::npos && line.compare(port, 3, " 0 ") == 0)
        line.replace(port, 3, " 9 ");
    } else if (bundle_only_section && line.compare(0, 13, "a=bundle-only") == 0) {
      continue;
    }
    out += line;
  }
  return out;
}

}  // namespace wb
