#include "viewersession.h"

#include "common/debug.h"
#define GST_CAT_DEFAULT wb_viewer_debug

namespace wb {

ViewerSession::ViewerSession(std::string id, GstBin *parent, const TransportConfig &config, bool direct_send,
                             StateListener listener)
    : id_(id),
      parent_(parent),
      peer_("viewer-" + id, config),
      direct_send_(direct_send),
      created_us_(g_get_monotonic_time()) {
  peer_.on_state([id, listener = std::move(listener)](GstWebRTCPeerConnectionState state) {
    if (listener) listener(id, state);
  });
}

ViewerSession::~ViewerSession() { close(); }

ViewerSession::Answer ViewerSession::negotiate(const std::string &offer_sdp, const OfferCheck &offer,
                                               WbFanout *video, WbFanout *audio, std::chrono::milliseconds timeout) {
  Answer result;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  auto fail = [&](int status, std::string error) {
    result.status = status;
    result.error = std::move(error);
    return result;
  };
  if (!peer_.webrtcbin()) return fail(500, "webrtcbin is not available (gst-plugins-bad webrtc plugin missing)");
  peer_.start(parent_);

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
    GstPad *sink = gst_element_request_pad_simple(peer_.webrtcbin(), "sink_%u");
    GstPad *branch = sink ? fanout_add_branch(fanout, sink, caps, uint8_t(choice.payload_type), ssrc)
                          : nullptr;
    gst_caps_unref(caps);
    if (sink) gst_object_unref(sink);
    if (!branch) return fail(500, "could not link " + choice.kind + " to the viewer's transport");
    branches_.push_back({fanout, branch});
  }

  std::string error = peer_.set_remote(GST_WEBRTC_SDP_TYPE_OFFER, offer_sdp);
  if (!error.empty()) return fail(400, "offer refused by webrtcbin: " + error);
  error = peer_.create_local(GST_WEBRTC_SDP_TYPE_ANSWER);
  if (!error.empty()) return fail(400, error);
  // WHEP answers carry every candidate (no trickle).
  if (!peer_.wait_gathering(deadline)) return fail(504, "ICE gathering did not complete in time");
  std::string answer = peer_.local_sdp();
  if (answer.empty()) return fail(500, "webrtcbin has no local description");
  result.sdp = repair_answer(answer, offer);
  peer_.watch_incoming();
  GST_INFO("viewer %s answered", id_.c_str());
  return result;
}

void ViewerSession::start_media() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (closed_) return;
  ViewerState expected = ViewerState::Negotiating;
  if (!state_.compare_exchange_strong(expected, ViewerState::Connected)) return;
  peer_.watch_incoming();
  std::string why = "direct-send is off";
  std::shared_ptr<DirectRoute> route = direct_send_ ? DirectRoute::open(peer_.webrtcbin(), &why) : nullptr;
  std::vector<std::unique_ptr<SrtpSender>> senders;
  for (size_t i = 0; route && i < branches_.size(); ++i) {
    senders.push_back(SrtpSender::create(route, &why));
    if (!senders.back()) route.reset();
  }
  if (route) {
    GST_INFO("viewer %s: direct send, %s", id_.c_str(), route->describe().c_str());
    sends_direct_.store(true);
  } else {
    GST_INFO("viewer %s: sending through webrtcbin: %s", id_.c_str(), why.c_str());
  }
  for (size_t i = 0; i < branches_.size(); ++i)
    fanout_start_branch(branches_[i].fanout, branches_[i].pad, route ? std::move(senders[i]) : nullptr);
}

bool ViewerSession::has_keyframe() const {
  for (const auto &b : branches_)
    if (codec_is_video(fanout_get_codec(b.fanout)) && !fanout_branch_has_keyframe(b.fanout, b.pad))
      return false;
  return true;
}

void ViewerSession::close() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (closed_) return;
    closed_ = true;
  }
  state_.store(ViewerState::Closed);
  for (const auto &b : branches_) fanout_remove_branch(b.fanout, b.pad);
  branches_.clear();
  peer_.close();
  GST_INFO("viewer %s closed", id_.c_str());
}

}  // namespace wb
