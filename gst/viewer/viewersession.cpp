#include "viewersession.h"

#include <gst/webrtc/webrtc.h>
#include <nice/agent.h>

#include "common/debug.h"
#define GST_CAT_DEFAULT wb_viewer_debug

namespace wb {

namespace {

// Signal handlers hold the session's small shared Events object, never the
// session itself: a handler running on a webrtcbin thread must never end up
// dropping the last reference to the session (and so to its webrtcbin).
using EventsRef = std::shared_ptr<ViewerSession::Events>;

void free_events(gpointer data, GClosure *) { delete static_cast<EventsRef *>(data); }

// Runs a webrtcbin action that answers through a GstPromise and waits.
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

void configure_ice_agent(GstElement *webrtc, const TransportConfig &config) {
  GstObject *ice = nullptr;
  g_object_get(webrtc, "ice-agent", &ice, nullptr);
  if (!ice) return;
  // TCP candidates cost sockets per viewer and browsers reach us over UDP.
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

ViewerSession::ViewerSession(std::string id, GstBin *parent, const TransportConfig &config,
                             StateListener listener)
    : id_(id),
      parent_(parent),
      events_(std::make_shared<Events>()),
      last_heard_(std::make_shared<std::atomic<gint64>>(g_get_monotonic_time())),
      created_us_(g_get_monotonic_time()) {
  events_->id = std::move(id);
  events_->listener = std::move(listener);
  std::string name = "viewer-" + id_;
  webrtc_ = gst_element_factory_make("webrtcbin", name.c_str());
  if (!webrtc_) return;
  gst_object_ref_sink(webrtc_);
  g_object_set(webrtc_, "bundle-policy", GST_WEBRTC_BUNDLE_POLICY_MAX_BUNDLE, nullptr);
  if (!config.stun_server.empty()) g_object_set(webrtc_, "stun-server", config.stun_server.c_str(), nullptr);
  configure_ice_agent(webrtc_, config);
}

ViewerSession::~ViewerSession() {
  close();
  if (webrtc_) gst_object_unref(webrtc_);
}

ViewerSession::Answer ViewerSession::negotiate(const std::string &offer_sdp, const OfferCheck &offer,
                                               WbFanout *video, WbFanout *audio, std::chrono::milliseconds timeout) {
  Answer result;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  if (!webrtc_) {
    result.status = 500;
    result.error = "webrtcbin is not available (gst-plugins-bad webrtc plugin missing)";
    return result;
  }

  auto connect = [&](const char *signal, GCallback cb) {
    handlers_.push_back(g_signal_connect_data(webrtc_, signal, cb, new EventsRef(events_), free_events,
                                              GConnectFlags(0)));
  };
  connect("notify::connection-state",
          G_CALLBACK(+[](GstElement *webrtc, GParamSpec *, gpointer data) {
            Events &events = **static_cast<EventsRef *>(data);
            GstWebRTCPeerConnectionState state;
            g_object_get(webrtc, "connection-state", &state, nullptr);
            GST_DEBUG("viewer %s: connection state %d", events.id.c_str(), state);
            if (!events.closed && events.listener) events.listener(events.id, state);
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

  gst_bin_add(parent_, webrtc_);
  gst_element_sync_state_with_parent(webrtc_);

  // Caps (with payload type and SSRC) must reach webrtcbin before it answers,
  // or the answer carries no a=ssrc and the wrong payload types.
  for (const auto &choice : offer.media) {
    if (!choice.accepted()) continue;
    WbFanout *fanout = choice.kind == "video" ? video : audio;
    if (!fanout) continue;
    GstCaps *caps = gst_caps_copy(choice.caps.get());
    guint ssrc = g_random_int();
    gst_caps_set_simple(caps, "media", G_TYPE_STRING, choice.kind.c_str(), "ssrc", G_TYPE_UINT,
                        ssrc, nullptr);
    GstPad *sink = gst_element_request_pad_simple(webrtc_, "sink_%u");
    GstPad *branch = sink ? fanout_add_branch(fanout, sink, caps, uint8_t(choice.payload_type), ssrc)
                          : nullptr;
    gst_caps_unref(caps);
    if (sink) gst_object_unref(sink);
    if (!branch) {
      result.status = 500;
      result.error = "could not link " + choice.kind + " to the viewer's transport";
      return result;
    }
    branches_.push_back({fanout, branch});
  }

  GstSDPMessage *sdp = nullptr;
  gst_sdp_message_new(&sdp);
  gst_sdp_message_parse_buffer(reinterpret_cast<const guint8 *>(offer_sdp.data()), offer_sdp.size(),
                               sdp);
  GstWebRTCSessionDescription *remote =
      gst_webrtc_session_description_new(GST_WEBRTC_SDP_TYPE_OFFER, sdp);
  GstPromise *promise = gst_promise_new();
  g_signal_emit_by_name(webrtc_, "set-remote-description", remote, promise);
  gst_webrtc_session_description_free(remote);
  const GstStructure *reply = wait_promise(promise);
  if (reply && gst_structure_has_field(reply, "error")) {
    result.status = 400;
    result.error = promise_error(reply, "offer refused by webrtcbin");
    gst_promise_unref(promise);
    return result;
  }
  gst_promise_unref(promise);

  promise = gst_promise_new();
  g_signal_emit_by_name(webrtc_, "create-answer", nullptr, promise);
  reply = wait_promise(promise);
  GstWebRTCSessionDescription *answer = nullptr;
  if (reply) gst_structure_get(reply, "answer", GST_TYPE_WEBRTC_SESSION_DESCRIPTION, &answer, nullptr);
  if (!answer) {
    result.status = 400;
    result.error = promise_error(reply, "could not answer the offer");
    gst_promise_unref(promise);
    return result;
  }
  gst_promise_unref(promise);

  promise = gst_promise_new();
  g_signal_emit_by_name(webrtc_, "set-local-description", answer, promise);
  gst_webrtc_session_description_free(answer);
  reply = wait_promise(promise);
  if (reply && gst_structure_has_field(reply, "error")) {
    result.status = 500;
    result.error = promise_error(reply, "could not apply our answer");
    gst_promise_unref(promise);
    return result;
  }
  gst_promise_unref(promise);

  // WHEP answers carry every candidate (no trickle): wait for gathering.
  if (!wait_gathering_complete(deadline)) {
    result.status = 504;
    result.error = "ICE gathering did not complete in time";
    return result;
  }
  GstWebRTCSessionDescription *local = nullptr;
  g_object_get(webrtc_, "local-description", &local, nullptr);
  if (!local) {
    result.status = 500;
    result.error = "webrtcbin has no local description";
    return result;
  }
  gchar *answer_text = gst_sdp_message_as_text(local->sdp);
  gst_webrtc_session_description_free(local);
  result.sdp = repair_answer(answer_text, offer);
  g_free(answer_text);
  last_heard_->store(g_get_monotonic_time());
  GST_INFO("viewer %s answered", id_.c_str());
  return result;
}

bool ViewerSession::wait_gathering_complete(std::chrono::steady_clock::time_point deadline) {
  std::unique_lock<std::mutex> lock(events_->mutex);
  return events_->gathering_done.wait_until(lock, deadline, [this] { return events_->gathering_complete; });
}

void ViewerSession::start_media() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (closed_) return;
  ViewerState expected = ViewerState::Negotiating;
  if (!state_.compare_exchange_strong(expected, ViewerState::Connected)) return;
  watch_incoming_packets();
  for (const auto &b : branches_) fanout_start_branch(b.fanout, b.pad);
}

bool ViewerSession::has_keyframe() const {
  for (const auto &b : branches_)
    if (codec_is_video(fanout_get_codec(b.fanout)) && !fanout_branch_has_keyframe(b.fanout, b.pad))
      return false;
  return true;
}

// Whatever the viewer sends us (RTCP receiver reports, PLI, DTLS) passes the
// ICE source element: its silence is how a vanished viewer is noticed.
void ViewerSession::watch_incoming_packets() {
  if (packet_watch_installed_) return;
  GstIterator *it = gst_bin_iterate_recurse(GST_BIN(webrtc_));
  GValue item = G_VALUE_INIT;
  while (gst_iterator_next(it, &item) == GST_ITERATOR_OK) {
    GstElement *element = GST_ELEMENT(g_value_get_object(&item));
    GstElementFactory *factory = gst_element_get_factory(element);
    if (factory && g_strcmp0(GST_OBJECT_NAME(factory), "nicesrc") == 0) {
      GstPad *src = gst_element_get_static_pad(element, "src");
      if (src) {
        gst_pad_add_probe(
            src, GstPadProbeType(GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_BUFFER_LIST),
            +[](GstPad *, GstPadProbeInfo *, gpointer data) {
              static_cast<std::shared_ptr<std::atomic<gint64>> *>(data)->get()->store(
                  g_get_monotonic_time());
              return GST_PAD_PROBE_OK;
            },
            new std::shared_ptr<std::atomic<gint64>>(last_heard_),
            +[](gpointer data) { delete static_cast<std::shared_ptr<std::atomic<gint64>> *>(data); });
        gst_object_unref(src);
        packet_watch_installed_ = true;
      }
    }
    g_value_reset(&item);
  }
  g_value_unset(&item);
  gst_iterator_free(it);
}

void ViewerSession::close() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (closed_) return;
    closed_ = true;
  }
  state_.store(ViewerState::Closed);
  events_->closed = true;
  if (!webrtc_) return;
  for (gulong h : handlers_) g_signal_handler_disconnect(webrtc_, h);
  handlers_.clear();
  for (const auto &b : branches_) fanout_remove_branch(b.fanout, b.pad);
  branches_.clear();
  gst_element_set_locked_state(webrtc_, TRUE);
  gst_element_set_state(webrtc_, GST_STATE_NULL);
  if (GST_OBJECT_PARENT(webrtc_) == GST_OBJECT(parent_)) gst_bin_remove(parent_, webrtc_);
  GST_INFO("viewer %s closed", id_.c_str());
}

}  // namespace wb
