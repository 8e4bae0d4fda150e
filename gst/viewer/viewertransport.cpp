#include "viewertransport.h"

#include <algorithm>

#include "common/debug.h"
#include "transport/directroute.h"
#define GST_CAT_DEFAULT wb_viewer_debug

namespace wb {

namespace {

TransportState from_lite(LiteTransport::State state) {
  switch (state) {
    case LiteTransport::State::Connected:
      return TransportState::Connected;
    case LiteTransport::State::Failed:
      return TransportState::Failed;
    case LiteTransport::State::Closed:
      return TransportState::Closed;
    default:
      return TransportState::Connecting;
  }
}

TransportState from_webrtcbin(GstWebRTCPeerConnectionState state) {
  switch (state) {
    case GST_WEBRTC_PEER_CONNECTION_STATE_CONNECTED:
      return TransportState::Connected;
    case GST_WEBRTC_PEER_CONNECTION_STATE_FAILED:
      return TransportState::Failed;
    case GST_WEBRTC_PEER_CONNECTION_STATE_CLOSED:
      return TransportState::Closed;
    default:
      return TransportState::Connecting;
  }
}

std::shared_ptr<WbFanout> hold(WbFanout *fanout) {
  gst_object_ref(fanout);
  return std::shared_ptr<WbFanout>(fanout, [](WbFanout *f) { gst_object_unref(f); });
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

namespace {

// What the viewer's feedback says of its video's layer: its estimate and
// loss go to its LayerChoice, and a change of mind moves its subscriber.
// Per compound packet, not per media packet.
// Returns whether the viewer's link is being probed with padding.
bool choose_layer(const Subscription &target, const rtcp::Feedback &feedback) {
  const auto now = LayerChoice::Clock::now();
  LayerChoice &choice = *target.layers;
  if (feedback.remb_bitrate &&
      (feedback.remb_ssrcs.empty() ||
       std::find(feedback.remb_ssrcs.begin(), feedback.remb_ssrcs.end(), target.ssrc) != feedback.remb_ssrcs.end()))
    choice.on_estimate(now, feedback.remb_bitrate);
  int loss = -1, padding_loss = -1;  // of 256, for the log
  int64_t rtt = -1;  // 1/65536 s
  const uint64_t arrival_ntp = rtcp::ntp_from_unix_us(g_get_real_time());
  for (const auto &report : feedback.reports) {
    const rtcp::ReportBlock &block = report.block;
    if (block.ssrc == target.ssrc) {
      loss = block.fraction_lost;
      choice.on_video_report(now, block.cumulative_lost, block.highest_seq);
    } else if (target.rtx_ssrc && block.ssrc == target.rtx_ssrc) {
      padding_loss = block.fraction_lost;
      choice.on_padding_report(now, block.cumulative_lost, block.highest_seq);
    }
    // Every block of this viewer's (its audio's too) is about our streams.
    const int64_t trip = rtcp::round_trip(block, arrival_ntp);
    if (trip >= 0) {
      rtt = trip;
      choice.on_round_trip(now, double(trip) / 65536.0);
    }
  }
  // Any of the viewer's RTCP is a time to choose: a paused video gets no
  // more reports of its own (a receiver stops reporting a silent sender),
  // but its audio's keep coming.
  // Before its first keyframe a viewer has nothing to move.
  if (!fanout_has_keyframe(target.fanout.get(), target.id)) return false;
  const int wanted = fanout_wanted_layer_of(target.fanout.get(), target.id);
  if (wanted < 0) return false;
  const auto rates = LayerChoice::in_peak_order(fanout_layer_bitrates(target.fanout.get(), target.codec),
                                                fanout_layer_bitrates(target.fanout.get(), target.codec, true));
  const unsigned want = choice.choose(now, rates, unsigned(wanted),
                                     [&] { return fanout_padding_room(target.fanout.get()); });
  if (target.rtx_ssrc) fanout_set_probe_rate(target.fanout.get(), target.id, choice.padding(), choice.padding_full());
  GST_LOG("subscriber %" G_GUINT64_FORMAT ": feedback: estimate %" G_GUINT64_FORMAT " bit/s%s, video loss %d/256, "
          "padding loss %d/256, round trip %.1f ms; layer %d, padding %" G_GUINT64_FORMAT " bit/s",
          target.id, choice.estimate(now), feedback.remb_bitrate ? " (REMB)" : "", loss, padding_loss,
          rtt >= 0 ? double(rtt) * 1000 / 65536 : -1.0, wanted, choice.padding());
  if (want != unsigned(wanted)) {
    GST_INFO("subscriber %" G_GUINT64_FORMAT ": layer %d -> %d (estimate %" G_GUINT64_FORMAT " bit/s; %d: no video)",
             target.id, wanted, int(want), choice.estimate(now), int(kPaused));
    fanout_set_layer(target.fanout.get(), target.id, want);
  }
  return choice.padding() > 0;
}

}  // namespace

std::string subscribe_to_fanouts(const OfferCheck &offer, WbFanout *video, WbFanout *audio,
                                 const std::function<GstPad *()> &sink_for, std::vector<Subscription> *subscriptions,
                                 std::vector<uint32_t> *ssrcs, std::vector<uint32_t> *rtx_ssrcs) {
  ssrcs->assign(offer.media.size(), 0);
  if (rtx_ssrcs) rtx_ssrcs->assign(offer.media.size(), 0);
  for (const auto &choice : offer.media) {
    if (!choice.accepted()) continue;
    WbFanout *fanout = choice.kind == "video" ? video : audio;
    if (!fanout) continue;
    Rewrite rewrite{uint8_t(choice.payload_type), g_random_int()};
    // Only our own senders write it (the answer offers it on the ICE-lite path alone).
    if (!sink_for) rewrite.abs_send_time_id = uint8_t(choice.abs_send_time_id);
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
      id = fanout_subscribe(fanout, rewrite, choice.codec);
    }
    if (!id) return "could not link " + choice.kind + " to the viewer's transport";
    uint32_t rtx_ssrc = 0;
    if (!sink_for && rtx_ssrcs && fanout == video && choice.rtx_payload_type >= 0) {
      do rtx_ssrc = g_random_int();
      while (!rtx_ssrc || rtx_ssrc == rewrite.ssrc);
      fanout_set_padding_stream(fanout, id, uint8_t(choice.rtx_payload_type), rtx_ssrc);
      (*rtx_ssrcs)[choice.mline] = rtx_ssrc;
    }
    LayerChoice::Config layers;
    layers.padding = rtx_ssrc != 0;
    if (fanout == video && !sink_for) {
      const int first = fanout_wanted_layer_of(fanout, id);
      if (first >= 0) {
        const unsigned start = LayerChoice::start(fanout_layer_bitrates(fanout, choice.codec, true), unsigned(first),
                                                  fanout_start_bitrate(fanout));
        if (start != unsigned(first) && fanout_set_layer(fanout, id, start))
          GST_INFO("subscriber %" G_GUINT64_FORMAT ": starts on layer %u", id, start);
      }
    }
    std::shared_ptr<LayerChoice> layer_choice;
    if (fanout == video) {
      layer_choice = std::make_shared<LayerChoice>(layers);
      // Before its first packet, so the receiver's 5 s of start-up end
      // later than overuse_before from here.
      layer_choice->on_start(LayerChoice::Clock::now());
    }
    subscriptions->push_back({hold(fanout), id, rewrite.ssrc, uint32_t(clock_rate), fanout == video, choice.codec,
                              std::move(layer_choice), rtx_ssrc});
    (*ssrcs)[choice.mline] = rewrite.ssrc;
  }
  return {};
}

LiteViewerTransport::LiteViewerTransport(std::string id, std::shared_ptr<IceLitePort> port,
                                         std::shared_ptr<SenderPool> senders, LiteOffer offer, StateListener listener)
    : id_(std::move(id)),
      port_(std::move(port)),
      senders_(std::move(senders)),
      offer_(std::move(offer)),
      listener_(std::move(listener)) {}

ViewerTransport::Answer LiteViewerTransport::answer(const std::string &offer_sdp, const OfferCheck &offer,
                                                    WbFanout *video, WbFanout *audio,
                                                    std::chrono::steady_clock::time_point,
                                                    std::vector<Subscription> *subscriptions) {
  Answer result;
  std::vector<uint32_t> ssrcs, rtx_ssrcs;
  const std::string error = subscribe_to_fanouts(offer, video, audio, nullptr, subscriptions, &ssrcs, &rtx_ssrcs);
  if (!error.empty()) {
    result.status = 500;
    result.error = error;
    return result;
  }
  LiteTransport::Listener listener;
  listener.state = [on_state = listener_](LiteTransport::State state) {
    if (on_state) on_state(from_lite(state));
  };
  // A copy: the transport's feedback handler may outlive the session, and
  // each subscription holds its fan-out.
  listener.feedback = [targets = *subscriptions](const rtcp::Feedback &feedback) {
    bool probed = false;
    for (const auto &target : targets) {
      bool wants_picture = false;
      for (uint32_t ssrc : feedback.pli) wants_picture |= ssrc == target.ssrc;
      for (uint32_t ssrc : feedback.fir) wants_picture |= ssrc == target.ssrc;
      if (wants_picture && target.video) fanout_request_keyframe(target.fanout.get(), target.id);
      for (const auto &nack : feedback.nacks) {
        if (nack.media_ssrc != target.ssrc) continue;
        fanout_retransmit(target.fanout.get(), target.id, nack.seqs);
        // Before choose_layer() reads the compound's reports: loss the
        // retransmission will hide from later reports.
        if (target.layers) target.layers->on_nack(nack.seqs);
      }
      if (target.layers) probed |= choose_layer(target, feedback);
    }
    return probed;
  };
  lite_ = port_->add({offer_.ice_ufrag, offer_.ice_pwd},
                     offer_.we_are_dtls_server ? DtlsRole::Server : DtlsRole::Client, offer_.remote_fingerprint,
                     std::move(listener));
  LiteAnswerParams params;
  params.ice_ufrag = lite_->local_ufrag();
  params.ice_pwd = lite_->local_pwd();
  params.fingerprint = port_->fingerprint();
  params.dtls_server = offer_.we_are_dtls_server;
  for (const auto &c : port_->candidates()) params.candidates.push_back({c.address, c.port, c.tcp});
  params.cname = lite_->cname();
  params.ssrcs = ssrcs;
  params.rtx_ssrcs = rtx_ssrcs;
  result.sdp = write_lite_answer(offer_sdp, offer, params);
  if (result.sdp.empty()) {
    result.status = 400;
    result.error = "malformed SDP offer";
    return result;
  }
  GST_INFO("viewer %s answered on the ICE-lite port (ufrag %s)", id_.c_str(), lite_->local_ufrag().c_str());
  return result;
}

bool LiteViewerTransport::start_media(const std::vector<Subscription> &subscriptions) {
  const std::shared_ptr<MediaRoute> route = lite_->media_route();
  const SrtpKeyMaterial keys = lite_->keys();
  for (const auto &s : subscriptions) {
    std::string why;
    auto sender = route ? SrtpSender::create(route, keys.local, keys.profile, &why) : nullptr;
    if (!sender) {
      GST_ERROR("viewer %s: no sender: %s", id_.c_str(), why.c_str());
      continue;
    }
    lite_->add_sent_stream({s.ssrc, s.clock_rate, sender->counters()});
    fanout_start(s.fanout.get(), s.id, std::move(sender), senders_);
  }
  if (route) GST_INFO("viewer %s: direct send, %s", id_.c_str(), route->current().description.c_str());
  return true;
}

gint64 LiteViewerTransport::last_heard_us() const { return lite_ ? lite_->last_heard_us() : 0; }

void LiteViewerTransport::close() {
  if (lite_) port_->remove(lite_);
}

void LiteViewerTransport::add_stats(GstStructure *s, const std::vector<Subscription> &subscriptions) const {
  if (!lite_) return;
  const LiteTransport::Stats lite = lite_->stats();
  gst_structure_set(s, "transport-state", G_TYPE_STRING, LiteTransport::state_name(lite.state),
                    "remote-address", G_TYPE_STRING, lite.remote_address.c_str(),
                    "srtp-profile", G_TYPE_STRING, lite.srtp_profile,
                    "ice-protocol", G_TYPE_STRING, lite.protocol,
                    "tcp-packets-dropped", G_TYPE_UINT64, lite.tcp_dropped,
                    "rtcp-received", G_TYPE_UINT64, lite.rtcp.received,
                    "srtcp-rejected", G_TYPE_UINT64, lite.rtcp.rejected,
                    "pli-received", G_TYPE_UINT64, lite.rtcp.pli,
                    "fir-received", G_TYPE_UINT64, lite.rtcp.fir,
                    "nack-received", G_TYPE_UINT64, lite.rtcp.nack_packets,
                    "nacked-packets", G_TYPE_UINT64, lite.rtcp.nacked_seqs,
                    "consent-answers", G_TYPE_UINT64, lite.consent_answers,
                    "dtls-released", G_TYPE_BOOLEAN, gboolean(lite.dtls_released), nullptr);
  for (const auto &stream : lite.streams)
    for (const auto &sub : subscriptions)
      if (sub.ssrc == stream.ssrc)
        set_stream_fields(s, sub.video ? "video" : "audio", stream, fanout_shard_of(sub.fanout.get(), sub.id));
}

WebrtcbinViewerTransport::WebrtcbinViewerTransport(std::string id, GstBin *parent, const TransportConfig &config,
                                                   bool direct_send, StateListener listener)
    : id_(std::move(id)), parent_(parent), config_(config), direct_send_(direct_send), listener_(std::move(listener)) {}

ViewerTransport::Answer WebrtcbinViewerTransport::answer(const std::string &offer_sdp, const OfferCheck &offer,
                                                         WbFanout *video, WbFanout *audio,
                                                         std::chrono::steady_clock::time_point deadline,
                                                         std::vector<Subscription> *subscriptions) {
  Answer result;
  auto fail = [&](int status, std::string error) {
    result.status = status;
    result.error = std::move(error);
    return result;
  };
  // Its video comes from a pad of the fan-out, which stays on layer 0.
  for (const auto &choice : offer.media)
    if (video && choice.accepted() && choice.kind == "video" && fanout_layer_codecs(video)[0] != choice.codec)
      return fail(406, std::string("an offer the shared ICE-lite port cannot serve gets a webrtcbin of its own, "
                                   "which is sent only the first layer's codec, ") +
                           codec_encoding_name(fanout_layer_codecs(video)[0]) + ", not " +
                           codec_encoding_name(choice.codec));
  peer_ = std::make_unique<PeerConnection>("viewer-" + id_, config_);
  peer_->on_state([on_state = listener_](GstWebRTCPeerConnectionState state) {
    if (on_state) on_state(from_webrtcbin(state));
  });
  if (!peer_->webrtcbin()) return fail(500, "webrtcbin is not available (gst-plugins-bad webrtc plugin missing)");
  peer_->start(parent_);

  // Caps (with payload type and SSRC) must reach webrtcbin before it answers,
  // or the answer carries no a=ssrc and the wrong payload types.
  std::vector<uint32_t> ssrcs;
  std::string error = subscribe_to_fanouts(
      offer, video, audio, [this] { return gst_element_request_pad_simple(peer_->webrtcbin(), "sink_%u"); },
      subscriptions, &ssrcs);
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

bool WebrtcbinViewerTransport::start_media(const std::vector<Subscription> &subscriptions) {
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
    for (size_t i = 0; route && i < subscriptions.size(); ++i) {
      senders.push_back(SrtpSender::create(fixed, route->master_key().data(), route->profile(), &why));
      if (!senders.back()) route.reset();
    }
  }
  if (route)
    GST_INFO("viewer %s: direct send, %s", id_.c_str(), route->describe().c_str());
  else
    GST_INFO("viewer %s: sending through webrtcbin: %s", id_.c_str(), why.c_str());
  for (size_t i = 0; i < subscriptions.size(); ++i)
    fanout_start(subscriptions[i].fanout.get(), subscriptions[i].id, route ? std::move(senders[i]) : nullptr);
  return route != nullptr;
}

gint64 WebrtcbinViewerTransport::last_heard_us() const { return peer_ ? peer_->last_heard_us() : 0; }

void WebrtcbinViewerTransport::close() {
  if (peer_) peer_->close();
}

}  // namespace wb
