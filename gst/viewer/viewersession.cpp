#include "viewersession.h"

#include "common/debug.h"
#define GST_CAT_DEFAULT wb_viewer_debug

namespace wb {

namespace {

GstWebRTCPeerConnectionState as_peer_state(LiteTransport::State state) {
  switch (state) {
    case LiteTransport::State::Connected:
      return GST_WEBRTC_PEER_CONNECTION_STATE_CONNECTED;
    case LiteTransport::State::Failed:
      return GST_WEBRTC_PEER_CONNECTION_STATE_FAILED;
    case LiteTransport::State::Closed:
      return GST_WEBRTC_PEER_CONNECTION_STATE_CLOSED;
    default:
      return GST_WEBRTC_PEER_CONNECTION_STATE_CONNECTING;
  }
}

// A reference that the transport's feedback handler may outlive the
// session with.
std::shared_ptr<WbFanout> hold(WbFanout *fanout) {
  gst_object_ref(fanout);
  return std::shared_ptr<WbFanout>(fanout, [](WbFanout *f) { gst_object_unref(f); });
}

// What a viewer's feedback acts on: one of its subscriptions.
struct FeedbackTarget {
  std::shared_ptr<WbFanout> fanout;
  SubscriberId id;
  uint32_t ssrc;
  bool video;
};

}  // namespace

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

std::string ViewerSession::subscribe(const OfferCheck &offer, WbFanout *video, WbFanout *audio,
                                     const std::function<GstPad *()> &sink_for, std::vector<uint32_t> *ssrcs) {
  ssrcs->assign(offer.media.size(), 0);
  for (const auto &choice : offer.media) {
    if (!choice.accepted()) continue;
    WbFanout *fanout = choice.kind == "video" ? video : audio;
    if (!fanout) continue;
    const Rewrite rewrite{uint8_t(choice.payload_type), g_random_int()};
    gint clock_rate = 0;
    gst_structure_get_int(gst_caps_get_structure(choice.caps.get(), 0), "clock-rate", &clock_rate);
    SubscriberId id = 0;
    if (sink_for) {
      GstCaps *caps = gst_caps_copy(choice.caps.get());
      gst_caps_set_simple(caps, "media", G_TYPE_STRING, choice.kind.c_str(), "ssrc", G_TYPE_UINT, rewrite.ssrc,
                          nullptr);
      GstPad *sink = sink_for();
      id = sink ? fanout_subscribe_pad(fanout, rewrite, sink, caps) : 0;
      gst_caps_unref(caps);
      if (sink) gst_object_unref(sink);
    } else {
      id = fanout_subscribe(fanout, rewrite);
    }
    if (!id) return "could not link " + choice.kind + " to the viewer's transport";
    subscriptions_.push_back({fanout, id, rewrite.ssrc, uint32_t(clock_rate)});
    const uint32_t ssrc = rewrite.ssrc;
    (*ssrcs)[choice.mline] = ssrc;
  }
  return {};
}

ViewerSession::Answer ViewerSession::negotiate(const std::string &offer_sdp, const OfferCheck &offer,
                                               WbFanout *video, WbFanout *audio, std::chrono::milliseconds timeout,
                                               const std::function<bool()> &admit_webrtcbin) {
  if (lite_port_) {
    LiteOffer lite = read_lite_offer(offer_sdp, offer);
    if (lite.problem.empty()) return negotiate_lite(offer_sdp, offer, lite, video, audio);
    GST_INFO("viewer %s: not on the ICE-lite port (%s); answering with a webrtcbin", id_.c_str(),
             lite.problem.c_str());
  }
  if (!admit_webrtcbin()) {
    Answer busy;
    busy.status = 503;
    busy.error = "too many viewers with a transport of their own (webrtcbin) are connecting; retry shortly";
    return busy;
  }
  return negotiate_webrtcbin(offer_sdp, offer, video, audio, timeout);
}

ViewerSession::Answer ViewerSession::negotiate_lite(const std::string &offer_sdp, const OfferCheck &offer,
                                                    const LiteOffer &lite, WbFanout *video, WbFanout *audio) {
  Answer result;
  LiteTransport::Listener listener;
  listener.state = [id = id_, on_state = listener_](LiteTransport::State state) {
    if (on_state) on_state(id, as_peer_state(state));
  };
  std::vector<uint32_t> ssrcs;
  std::string error = subscribe(offer, video, audio, nullptr, &ssrcs);
  std::vector<FeedbackTarget> targets;
  for (const auto &s : subscriptions_) targets.push_back({hold(s.fanout), s.id, s.ssrc, s.fanout == video});
  listener.feedback = [targets = std::move(targets)](const rtcp::Feedback &feedback) {
    for (const auto &target : targets) {
      bool wants_picture = false;
      for (uint32_t ssrc : feedback.pli) wants_picture |= ssrc == target.ssrc;
      for (uint32_t ssrc : feedback.fir) wants_picture |= ssrc == target.ssrc;
      if (wants_picture && target.video) fanout_request_keyframe(target.fanout.get());
      for (const auto &nack : feedback.nacks)
        if (nack.media_ssrc == target.ssrc) fanout_retransmit(target.fanout.get(), target.id, nack.seqs);
    }
  };
  if (!error.empty()) {
    result.status = 500;
    result.error = error;
    return result;
  }
  lite_ = lite_port_->add({lite.ice_ufrag, lite.ice_pwd}, lite.we_are_dtls_server ? DtlsRole::Server : DtlsRole::Client, lite.remote_fingerprint,
                          std::move(listener));
  LiteAnswerParams params;
  params.ice_ufrag = lite_->local_ufrag();
  params.ice_pwd = lite_->local_pwd();
  params.fingerprint = lite_port_->fingerprint();
  params.dtls_server = lite.we_are_dtls_server;
  for (const auto &c : lite_port_->candidates()) params.candidates.emplace_back(c.address, c.port);
  params.cname = lite_->cname();
  params.ssrcs = ssrcs;
  result.sdp = write_lite_answer(offer_sdp, offer, params);
  if (result.sdp.empty()) {
    result.status = 400;
    result.error = "malformed SDP offer";
    return result;
  }
  GST_INFO("viewer %s answered on the ICE-lite port (ufrag %s)", id_.c_str(), lite_->local_ufrag().c_str());
  return result;
}

ViewerSession::Answer ViewerSession::negotiate_webrtcbin(const std::string &offer_sdp, const OfferCheck &offer,
                                                         WbFanout *video, WbFanout *audio,
                                                         std::chrono::milliseconds timeout) {
  Answer result;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  auto fail = [&](int status, std::string error) {
    result.status = status;
    result.error = std::move(error);
    return result;
  };
  peer_ = std::make_unique<PeerConnection>("viewer-" + id_, config_);
  peer_->on_state([id = id_, on_state = listener_](GstWebRTCPeerConnectionState state) {
    if (on_state) on_state(id, state);
  });
  if (!peer_->webrtcbin()) return fail(500, "webrtcbin is not available (gst-plugins-bad webrtc plugin missing)");
  peer_->start(parent_);

  // Caps (with payload type and SSRC) must reach webrtcbin before it answers,
  // or the answer carries no a=ssrc and the wrong payload types.
  std::vector<uint32_t> ssrcs;
  std::string error = subscribe(
      offer, video, audio, [this] { return gst_element_request_pad_simple(peer_->webrtcbin(), "sink_%u"); }, &ssrcs);
  if (!error.empty()) return fail(500, error);

  error = peer_->set_remote(GST_WEBRTC_SDP_TYPE_OFFER, offer_sdp);
  if (!error.empty()) return fail(400, "offer refused by webrtcbin: " + error);
  error = peer_->create_local(GST_WEBRTC_SDP_TYPE_ANSWER);
  if (!error.empty()) return fail(400, error);
  // WHEP answers carry every candidate (no trickle).
  if (!peer_->wait_gathering(deadline)) return fail(504, "ICE gathering did not complete in time");
  std::string answer = peer_->local_sdp();
  if (answer.empty()) return fail(500, "webrtcbin has no local description");
  result.sdp = repair_answer(answer, offer);
  peer_->watch_incoming();
  GST_INFO("viewer %s answered with a webrtcbin", id_.c_str());
  return result;
}

void ViewerSession::start_media() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (closed_) return;
  ViewerState expected = ViewerState::Negotiating;
  if (!state_.compare_exchange_strong(expected, ViewerState::Connected)) return;
  if (lite_)
    start_lite_media();
  else if (peer_)
    start_webrtcbin_media();
}

void ViewerSession::start_lite_media() {
  const std::shared_ptr<MediaRoute> route = lite_->media_route();
  const SrtpKeyMaterial keys = lite_->keys();
  for (const auto &s : subscriptions_) {
    std::string why;
    auto sender = route ? SrtpSender::create(route, keys.local, keys.profile, &why) : nullptr;
    if (!sender) {
      GST_ERROR("viewer %s: no sender: %s", id_.c_str(), why.c_str());
      continue;
    }
    lite_->add_sent_stream({s.ssrc, s.clock_rate, sender->counters()});
    fanout_start(s.fanout, s.id, std::move(sender), senders_);
  }
  sends_direct_.store(true);
  if (route) GST_INFO("viewer %s: direct send, %s", id_.c_str(), route->current().description.c_str());
}

void ViewerSession::start_webrtcbin_media() {
  peer_->watch_incoming();
  std::string why = "direct-send is off";
  std::shared_ptr<DirectRoute> route = direct_send_ ? DirectRoute::open(peer_->webrtcbin(), &why) : nullptr;
  std::vector<std::unique_ptr<SrtpSender>> senders;
  if (route) {
    // DirectRoute read webrtcbin's selected pair once: this route stays.
    UdpTarget target;
    target.fd = route->fd();
    target.remote = route->remote();
    target.remote_len = route->remote_len();
    target.description = route->describe();
    target.owner = route;
    auto fixed = std::make_shared<const MediaRoute>(std::move(target));
    for (size_t i = 0; route && i < subscriptions_.size(); ++i) {
      senders.push_back(SrtpSender::create(fixed, route->master_key().data(), route->profile(), &why));
      if (!senders.back()) route.reset();
    }
  }
  if (route) {
    GST_INFO("viewer %s: direct send, %s", id_.c_str(), route->describe().c_str());
    sends_direct_.store(true);
  } else {
    GST_INFO("viewer %s: sending through webrtcbin: %s", id_.c_str(), why.c_str());
  }
  for (size_t i = 0; i < subscriptions_.size(); ++i)
    fanout_start(subscriptions_[i].fanout, subscriptions_[i].id, route ? std::move(senders[i]) : nullptr);
}

gint64 ViewerSession::last_heard_us() const {
  if (lite_) return lite_->last_heard_us();
  return peer_ ? peer_->last_heard_us() : created_us_;
}

bool ViewerSession::has_keyframe() const {
  for (const auto &s : subscriptions_)
    if (codec_is_video(fanout_get_codec(s.fanout)) && !fanout_has_keyframe(s.fanout, s.id)) return false;
  return true;
}

void ViewerSession::close() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (closed_) return;
    closed_ = true;
  }
  state_.store(ViewerState::Closed);
  for (const auto &s : subscriptions_) fanout_unsubscribe(s.fanout, s.id);
  subscriptions_.clear();
  if (lite_) lite_port_->remove(lite_);
  if (peer_) peer_->close();
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

// One sent stream's fields, each name prefixed with its kind ("video-...").
void set_stream_fields(GstStructure *s, const std::string &kind, const LiteTransport::StreamStats &stream,
                       int shard) {
  const rtcp::Reception &heard = stream.reception;
  const rtcp::ReportBlock &block = heard.latest;
  auto field = [&kind](const char *name) { return kind + "-" + name; };
  const double jitter_ms = stream.clock_rate ? block.jitter * 1000.0 / stream.clock_rate : -1.0;
  const double rtt_ms = heard.rtt >= 0 ? heard.rtt * 1000.0 / 65536.0 : -1.0;
  gst_structure_set(s, field("ssrc").c_str(), G_TYPE_UINT, stream.ssrc,
                    field("packets-sent").c_str(), G_TYPE_UINT, stream.packets_sent,
                    field("octets-sent").c_str(), G_TYPE_UINT, stream.octets_sent,
                    field("reports-received").c_str(), G_TYPE_UINT, heard.reports,
                    field("fraction-lost").c_str(), G_TYPE_DOUBLE, block.fraction_lost / 256.0,
                    field("packets-lost").c_str(), G_TYPE_INT, block.cumulative_lost,
                    field("highest-seq").c_str(), G_TYPE_UINT, block.highest_seq,
                    field("jitter").c_str(), G_TYPE_UINT, block.jitter,
                    field("jitter-ms").c_str(), G_TYPE_DOUBLE, jitter_ms,
                    field("rtt-ms").c_str(), G_TYPE_DOUBLE, rtt_ms,
                    field("sender-shard").c_str(), G_TYPE_INT, shard, nullptr);
}

}  // namespace

GstStructure *ViewerSession::stats() const {
  GstStructure *s = gst_structure_new("viewer-stats",
                                      "id", G_TYPE_STRING, id_.c_str(),
                                      "path", G_TYPE_STRING, lite_ ? "ice-lite" : "webrtcbin",
                                      "state", G_TYPE_STRING, state_name(state()),
                                      "sends-direct", G_TYPE_BOOLEAN, gboolean(sends_direct()), nullptr);
  // A session's id is handed out only once negotiate() has returned, so
  // lite_ and subscriptions_ no longer change, but for close() emptying
  // subscriptions_, which it does only after setting closed_ under this lock.
  std::lock_guard<std::mutex> lock(mutex_);
  if (!lite_ || closed_) return s;
  const LiteTransport::Stats lite = lite_->stats();
  gst_structure_set(s, "transport-state", G_TYPE_STRING, LiteTransport::state_name(lite.state),
                    "remote-address", G_TYPE_STRING, lite.remote_address.c_str(),
                    "rtcp-received", G_TYPE_UINT64, lite.rtcp.received,
                    "srtcp-rejected", G_TYPE_UINT64, lite.rtcp.rejected,
                    "pli-received", G_TYPE_UINT64, lite.rtcp.pli,
                    "fir-received", G_TYPE_UINT64, lite.rtcp.fir,
                    "nack-received", G_TYPE_UINT64, lite.rtcp.nack_packets,
                    "nacked-packets", G_TYPE_UINT64, lite.rtcp.nacked_seqs,
                    "consent-answers", G_TYPE_UINT64, lite.consent_answers, nullptr);
  for (const auto &stream : lite.streams)
    for (const auto &sub : subscriptions_)
      if (sub.ssrc == stream.ssrc)
        set_stream_fields(s, codec_is_video(fanout_get_codec(sub.fanout)) ? "video" : "audio", stream,
                          fanout_shard_of(sub.fanout, sub.id));
  return s;
}

}  // namespace wb
