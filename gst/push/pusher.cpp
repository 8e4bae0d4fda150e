#include "pusher.h"

#include <map>
#include <vector>

#include "relay/backoff.h"
#include "signalling/httpclient.h"

#include "common/debug.h"
#define GST_CAT_DEFAULT wb_push_debug

namespace wb {

namespace {

struct Subscription {
  WbFanout *fanout;
  SubscriberId id;
};

struct TransportState {
  std::atomic<bool> connected{false};
  std::atomic<bool> failed{false};
};

// Every input the broadcast has must flow before the offer can describe it.
bool inputs_ready(const Pusher::Inputs &in) {
  if (!in.video && !in.audio) return false;
  for (WbFanout *f : {in.video, in.audio}) {
    if (!f) continue;
    GstCaps *caps = fanout_get_stream_caps(f);
    if (!caps) return false;
    gst_caps_unref(caps);
  }
  return true;
}

// Payload types of our offer, one per codec: the payloaders' own (96 for
// every one of them by default) would collide within the bundle.
int offer_payload_type(Codec codec) {
  switch (codec) {
    case Codec::H264: return 102;
    case Codec::VP8: return 96;
    case Codec::VP9: return 98;
    default: return 111;
  }
}

// A fresh SSRC per session; the WHIP server answers with our payload types.
bool subscribe(GstElement *webrtc, WbFanout *fanout, std::vector<Subscription> &subscriptions) {
  GstCaps *stream = fanout_get_stream_caps(fanout);
  if (!stream) return false;
  GstCaps *caps = gst_caps_copy(stream);
  gst_caps_unref(stream);
  gint pt = offer_payload_type(fanout_get_codec(fanout));
  guint ssrc = g_random_int();
  gst_caps_set_simple(caps, "payload", G_TYPE_INT, pt, "ssrc", G_TYPE_UINT, ssrc, nullptr);
  GstPad *sink = gst_element_request_pad_simple(webrtc, "sink_%u");
  SubscriberId id = sink ? fanout_subscribe_pad(fanout, Rewrite{uint8_t(pt), ssrc}, sink, caps) : 0;
  // The ingest asks for keyframes for its own viewers' joins, as a relay
  // child does: no per-viewer back-off.
  if (id) fanout_exempt_from_keyframe_backoff(fanout, id);
  if (sink) {
    GstWebRTCRTPTransceiver *trans = nullptr;
    g_object_get(sink, "transceiver", &trans, nullptr);
    if (trans) {
      // The offer must name the SSRC the fan-out writes: a server that
      // routes bundled packets by the offer's a=ssrc (werift does) drops
      // the rest. webrtcbin takes it from the codec preferences; without
      // them it makes one up when the offer is created before caps flow.
      g_object_set(trans, "direction", GST_WEBRTC_RTP_TRANSCEIVER_DIRECTION_SENDONLY, "codec-preferences", caps,
                   nullptr);
      gst_object_unref(trans);
    }
    gst_object_unref(sink);
  }
  gst_caps_unref(caps);
  if (id) subscriptions.push_back({fanout, id});
  return id != 0;
}

}  // namespace

const char *Pusher::state_name(State state) {
  switch (state) {
    case State::Idle: return "idle";
    case State::Connecting: return "connecting";
    case State::Live: return "live";
    case State::Lost: return "lost";
  }
  return "idle";
}

Pusher::Pusher(GstBin *bin, std::function<Inputs()> inputs, PushConfig config, StateListener on_state)
    : bin_(bin), inputs_(std::move(inputs)), config_(std::move(config)), on_state_(std::move(on_state)) {
  thread_ = std::thread([this] { run(); });
}

Pusher::~Pusher() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool Pusher::stopping() {
  std::lock_guard<std::mutex> lock(mutex_);
  return stopping_;
}

bool Pusher::sleep(std::chrono::milliseconds delay) {
  std::unique_lock<std::mutex> lock(mutex_);
  return !wake_.wait_for(lock, delay, [this] { return stopping_; });
}

void Pusher::run() {
  HttpClient http(HttpClient::kDefaultTimeoutS, config_.tls_ca);
  Backoff backoff;
  std::map<std::string, std::string> headers;
  if (!config_.token.empty()) headers["Authorization"] = "Bearer " + config_.token;
  unsigned attempt = 0;

  while (!stopping()) {
    Inputs inputs = inputs_();
    if (!inputs_ready(inputs)) {
      if (!sleep(std::chrono::milliseconds(100))) break;
      continue;
    }
    on_state_(State::Connecting, config_.url);
    auto transport = std::make_shared<TransportState>();
    PeerConnection peer("push" + std::to_string(++attempt), config_.transport);
    peer.on_state([transport](GstWebRTCPeerConnectionState s) {
      if (s == GST_WEBRTC_PEER_CONNECTION_STATE_CONNECTED) transport->connected = true;
      if (s == GST_WEBRTC_PEER_CONNECTION_STATE_FAILED || s == GST_WEBRTC_PEER_CONNECTION_STATE_CLOSED)
        transport->failed = true;
    });
    std::vector<Subscription> subscriptions;
    std::string error;
    unsigned retry_after_s = 0;
    std::string resource;
    if (!peer.webrtcbin()) {
      error = "webrtcbin is not available";
    } else {
      peer.start(bin_);
      for (WbFanout *f : {inputs.video, inputs.audio})
        if (f && !subscribe(peer.webrtcbin(), f, subscriptions)) error = "could not link the stream to the push";
    }
    if (error.empty()) error = peer.create_local(GST_WEBRTC_SDP_TYPE_OFFER);
    if (error.empty() && !peer.wait_gathering(std::chrono::steady_clock::now() + std::chrono::seconds(5)))
      error = "ICE gathering did not complete in time";
    if (error.empty()) {
      HttpResponse r = http.post_offer(config_.url, offer_without_bundle_only(peer.local_sdp()), headers);
      if (r.status == 201) {
        resource = resolve_url(r.url, r.header("location"));
        error = peer.set_remote(GST_WEBRTC_SDP_TYPE_ANSWER, r.body);
      } else if (r.status) {
        error = "WHIP server answered " + std::to_string(r.status) + ": " + r.body;
        while (!error.empty() && (error.back() == '\n' || error.back() == '\r')) error.pop_back();
        retry_after_s = r.retry_after_s();
      } else {
        error = r.certificate_refused ? r.error : "WHIP server unreachable: " + r.error;
      }
    }

    bool went_live = false;
    if (error.empty()) {
      const gint64 answered_us = g_get_monotonic_time();
      peer.watch_incoming();
      while (sleep(std::chrono::milliseconds(100))) {
        if (transport->failed) {
          error = "transport failed";
          break;
        }
        if (transport->connected && !went_live) {
          went_live = true;
          for (const auto &s : subscriptions) fanout_start(s.fanout, s.id);
          backoff.reset();
          GST_INFO("pushing to %s", config_.url.c_str());
          on_state_(State::Live, config_.url);
        }
        gint64 now = g_get_monotonic_time();
        if (!went_live && now - answered_us > 10 * G_USEC_PER_SEC) {
          error = "transport never connected";
          break;
        }
        // A WHIP server's receiver reports stop when it is gone.
        if (went_live && now - peer.last_heard_us() > 15 * G_USEC_PER_SEC) {
          error = "nothing heard from the WHIP server for 15 s";
          break;
        }
      }
      if (error.empty()) error = "broadcast stopped";
      if (!resource.empty()) http.send("DELETE", resource, headers);
    }
    for (const auto &s : subscriptions) fanout_unsubscribe(s.fanout, s.id);
    peer.close();
    if (stopping()) break;

    auto delay = retry_after_s ? std::chrono::milliseconds(retry_after_s * 1000) : backoff.next();
    GST_WARNING("push to %s: %s; retrying in %lld ms", config_.url.c_str(), error.c_str(),
                (long long)delay.count());
    on_state_(State::Lost, error);
    if (!sleep(delay)) break;
  }
  on_state_(State::Idle, "");
}

}  // namespace wb
