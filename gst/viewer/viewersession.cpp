#include "viewersession.h"

#include "common/debug.h"
#include "viewer/liteanswer.h"
#define GST_CAT_DEFAULT wb_viewer_debug

namespace wb {

ViewerSession::ViewerSession(std::string id, GstBin *parent, const TransportConfig &config,
                             std::shared_ptr<IceLitePort> lite_port, std::shared_ptr<SenderPool> senders,
                             bool direct_send, StateListener listener)
    : id_(std::move(id)),
      parent_(parent),
      config_(config),
      listener_(std::move(listener)),
      lite_port_(std::move(lite_port)),
      senders_(std::move(senders)),
      direct_send_(direct_send),
      created_us_(g_get_monotonic_time()) {}

ViewerSession::~ViewerSession() { close(); }

ViewerSession::Answer ViewerSession::negotiate(const std::string &offer_sdp, const OfferCheck &offer,
                                               WbFanout *video, WbFanout *audio, std::chrono::milliseconds timeout,
                                               const std::function<bool()> &admit_webrtcbin) {
  auto on_state = [id = id_, listener = listener_](TransportState state) {
    if (listener) listener(id, state);
  };
  if (lite_port_) {
    LiteOffer lite = read_lite_offer(offer_sdp, offer);
    if (lite.problem.empty())
      transport_ = std::make_unique<LiteViewerTransport>(id_, lite_port_, senders_, std::move(lite), on_state);
    else
      GST_INFO("viewer %s: not on the ICE-lite port (%s); answering with a webrtcbin", id_.c_str(),
               lite.problem.c_str());
  }
  if (!transport_) {
    if (!admit_webrtcbin()) {
      Answer busy;
      busy.status = 503;
      busy.error = "too many viewers with a transport of their own (webrtcbin) are connecting; retry shortly";
      return busy;
    }
    transport_ = std::make_unique<WebrtcbinViewerTransport>(id_, parent_, config_, direct_send_, on_state);
  }
  return transport_->answer(offer_sdp, offer, video, audio, std::chrono::steady_clock::now() + timeout,
                            &subscriptions_);
}

void ViewerSession::mark_relay_child() {
  std::lock_guard<std::mutex> lock(mutex_);
  for (const auto &s : subscriptions_) {
    if (!s.video) continue;
    fanout_exempt_from_keyframe_backoff(s.fanout.get(), s.id);
    if (s.layers) s.layers->pin(true);
  }
}

void ViewerSession::start_media() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (closed_ || !transport_) return;
  ViewerState expected = ViewerState::Negotiating;
  if (!state_.compare_exchange_strong(expected, ViewerState::Connected)) return;
  sends_direct_.store(transport_->start_media(subscriptions_));
}

gint64 ViewerSession::last_heard_us() const {
  const gint64 heard = transport_ ? transport_->last_heard_us() : 0;
  return heard ? heard : created_us_;
}

bool ViewerSession::has_keyframe() const {
  for (const auto &s : subscriptions_)
    if (s.video && !fanout_has_keyframe(s.fanout.get(), s.id)) return false;
  return true;
}

bool ViewerSession::set_video_layer(int layer) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (closed_) return false;
  for (const auto &s : subscriptions_) {
    if (!s.video || !s.layers) continue;
    if (layer < 0) {
      s.layers->pin(false);
      return true;
    }
    if (!fanout_set_layer(s.fanout.get(), s.id, unsigned(layer))) return false;
    s.layers->pin(true);
    return true;
  }
  return false;
}

SessionHandler::LayersEvent ViewerSession::layers_event() const {
  std::lock_guard<std::mutex> lock(mutex_);
  SessionHandler::LayersEvent event;
  if (closed_) return event;
  for (const auto &sub : subscriptions_) {
    if (!sub.video) continue;
    WbFanout *fanout = sub.fanout.get();
    const int wanted = fanout_wanted_layer_of(fanout, sub.id);
    const bool paused = wanted == int(kPaused);
    const bool pinned = sub.layers && sub.layers->pinned();
    event.state = std::string("{\"layer\":") + std::to_string(fanout_layer_of(fanout, sub.id)) +
                  ",\"wanted\":" + std::to_string(paused ? -1 : wanted) + ",\"paused\":" + (paused ? "true" : "false") +
                  ",\"pinned\":" + (pinned ? "true" : "false") + ",\"codec\":\"" + codec_encoding_name(sub.codec) + "\"";
    std::string layers;
    const auto rates = fanout_layer_bitrates(fanout, sub.codec);
    const auto codecs = fanout_layer_codecs(fanout);
    for (unsigned i = 0; i < kMaxLayers; ++i)
      if (codecs[i] != Codec::Unknown && codecs[i] == sub.codec)
        layers += std::string(layers.empty() ? "" : ",") + "{\"encodingId\":\"" + std::to_string(i) +
                  "\",\"bitrate\":" + std::to_string(rates[i]) + "}";
    const uint64_t estimate = sub.layers ? sub.layers->estimate(LayerChoice::Clock::now()) : 0;
    event.json = "{\"video\":" + event.state + ",\"estimate\":" + std::to_string(estimate) + ",\"layers\":[" +
                 layers + "]}}";
    event.state += "}";
    break;
  }
  return event;
}

void ViewerSession::close() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (closed_) return;
    closed_ = true;
  }
  state_.store(ViewerState::Closed);
  for (const auto &s : subscriptions_) fanout_unsubscribe(s.fanout.get(), s.id);
  subscriptions_.clear();
  if (transport_) transport_->close();
  GST_INFO("viewer %s closed", id_.c_str());
}

namespace {

const char *state_name(ViewerState state) {
  switch (state) {
    case ViewerState::Negotiating:
      return "negotiating";
    case ViewerState::Connected:
      return "connected";
    case ViewerState::Closed:
      return "closed";
  }
  return "unknown";
}

}  // namespace

GstStructure *ViewerSession::stats() const {
  GstStructure *s = gst_structure_new("viewer-stats",
                                      "id", G_TYPE_STRING, id_.c_str(),
                                      "path", G_TYPE_STRING, transport_ ? transport_->path() : "none",
                                      "state", G_TYPE_STRING, state_name(state()),
                                      "sends-direct", G_TYPE_BOOLEAN, gboolean(sends_direct()), nullptr);
  // A session's id is handed out only once negotiate() has returned, so
  // transport_ and subscriptions_ no longer change, but for close()
  // emptying subscriptions_, which it does only after setting closed_
  // under this lock.
  std::lock_guard<std::mutex> lock(mutex_);
  if (closed_) return s;
  if (transport_) transport_->add_stats(s, subscriptions_);
  for (const auto &sub : subscriptions_) {
    if (!sub.video) continue;
    const int wanted = fanout_wanted_layer_of(sub.fanout.get(), sub.id);
    const bool paused = wanted == int(kPaused);
    gst_structure_set(s, "video-layer", G_TYPE_INT, fanout_layer_of(sub.fanout.get(), sub.id), "video-layer-wanted",
                        G_TYPE_INT, paused ? -1 : wanted, "video-paused", G_TYPE_BOOLEAN, gboolean(paused),
                        "video-layers", G_TYPE_UINT,
                        fanout_layer_count(sub.fanout.get()), "video-layer-pinned", G_TYPE_BOOLEAN,
                        gboolean(sub.layers && sub.layers->pinned()), "video-layer-moves", G_TYPE_UINT,
                        sub.layers ? sub.layers->moves() : 0u, "video-estimate", G_TYPE_UINT64,
                        guint64(sub.layers ? sub.layers->estimate(LayerChoice::Clock::now()) : 0), "video-codec",
                        G_TYPE_STRING, codec_encoding_name(sub.codec), "video-rtx-ssrc", G_TYPE_UINT, sub.rtx_ssrc,
                        "video-padding", G_TYPE_UINT64, guint64(sub.layers ? sub.layers->padding() : 0),
                        "video-padding-probes", G_TYPE_UINT, sub.layers ? sub.layers->padding_probes() : 0u,
                        "video-padding-probes-failed", G_TYPE_UINT,
                        sub.layers ? sub.layers->padding_probes_failed() : 0u, nullptr);
  }
  return s;
}

}  // namespace wb
