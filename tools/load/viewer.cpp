#include "viewer.h"

#include <openssl/rand.h>

#include <algorithm>

#include "transport/rtcp.h"
#include "transport/stun.h"

namespace load {

namespace {

constexpr int64_t kReportInterval = 1 * kSecond;
constexpr int64_t kMediaPatience = 5 * kSecond;  // connected, no packet yet: "never got media"

double ms_since(int64_t from, int64_t to) { return from && to ? double(to - from) / kMs : -1; }

bool looks_like_dtls(const uint8_t *data, size_t len) { return len >= 13 && data[0] >= 20 && data[0] <= 63; }

const char *state_name(Viewer::State s) {
  switch (s) {
    case Viewer::State::Idle: return "idle";
    case Viewer::State::Signalling: return "signalling";
    case Viewer::State::Ice: return "ice";
    case Viewer::State::Dtls: return "dtls";
    case Viewer::State::Connected: return "connected";
    case Viewer::State::Leaving: return "leaving";
    case Viewer::State::Failed: return "failed";
    case Viewer::State::Closed: return "closed";
  }
  return "?";
}

StreamReport stream_report(const StreamStats &s) { return {s.packets(), s.bytes(), s.lost(), s.jitter_ms()}; }

}  // namespace

Viewer::Viewer(int index, bool verify, const Config &config)
    : index_(index),
      verify_(verify),
      config_(config),
      local_ice_(IceCredentials::random()),
      estimator_(config.estimate) {
  RAND_bytes(reinterpret_cast<unsigned char *>(&local_ssrc_), sizeof local_ssrc_);
  cname_ = IceCredentials::random().ufrag + IceCredentials::random().ufrag;
}

Viewer::~Viewer() { close(); }

bool Viewer::open() {
  opened_at_ = config_.loop->now();
  std::string error;
  const uint16_t port = config_.port_base ? uint16_t(config_.port_base + index_) : 0;
  if (!socket_.open(config_.local_address, port, &error)) {
    fail(error);
    return false;
  }
  config_.loop->watch(socket_, this);
  state_ = State::Signalling;
  return true;
}

std::string Viewer::offer() {
  ice_ = std::make_unique<IceAgent>(IceAgent::Role::Controlling, local_ice_,
                                    [this](const uint8_t *d, size_t n, const sockaddr_in &to) { send(d, n, to); });
  LocalTransport local{local_ice_, config_.identity->fingerprint(), config_.local_address, socket_.port()};
  return write_description(local, whep_offer_media(config_.video_pt, config_.audio_pt, config_.remb, config_.abs_send_time));
}

void Viewer::on_answer(const std::string &sdp) {
  if (state_ != State::Signalling) return;  // given up on meanwhile
  answered_at_ = config_.loop->now();
  if (negotiate(sdp, false, nullptr)) start_ice();
}

std::string Viewer::answer(const std::string &offer_sdp) {
  if (state_ != State::Signalling) return "";
  answered_at_ = config_.loop->now();  // Janus: its offer is the server's answer to our watch request
  // The offerer controls ICE; we answer its nominations.
  ice_ = std::make_unique<IceAgent>(IceAgent::Role::Controlled, local_ice_,
                                    [this](const uint8_t *d, size_t n, const sockaddr_in &to) { send(d, n, to); });
  std::vector<LocalMedia> media;
  if (!negotiate(offer_sdp, true, &media)) return "";
  for (auto &m : media)
    if (m.kind == "video" && !m.rejected) m.remb = sends_remb();
  LocalTransport local{local_ice_, config_.identity->fingerprint(), config_.local_address, socket_.port()};
  return write_description(local, media);
}

bool Viewer::negotiate(const std::string &sdp, bool is_offer, std::vector<LocalMedia> *answer) {
  SessionDescription description;
  std::string error;
  bool ok = description.parse(sdp, &error) &&
            (is_offer ? read_offer(description, config_.local_address, &remote_, answer, &error)
                      : read_answer(description, config_.local_address, &remote_, &error));
  if (!ok) fail(error);
  return ok;
}

void Viewer::start_ice() {
  if (state_ != State::Signalling) return;
  state_ = State::Ice;
  ice_->start(remote_.remote_ice, remote_.remote_candidate, config_.loop->now());
  reschedule();
}

void Viewer::start_dtls() {
  state_ = State::Dtls;
  dtls_ = std::make_unique<wb::DtlsEndpoint>(
      config_.identity, wb::DtlsRole::Client, remote_.remote_fingerprint,
      [this](const uint8_t *d, size_t n) { send(d, n, ice_->remote_address()); });
  dtls_->start(config_.loop->now());
}

void Viewer::dtls_done(int64_t arrival) {
  const wb::SrtpKeyMaterial &keys = dtls_->keys();
  std::string error;
  // An inbound libsrtp2 session only for the verified sample: Debian's
  // libsrtp2 does its crypto with NSS, whose cost per call grows with the
  // number of live sessions (our RTCP pays for every one of them).
  if ((verify_ && !srtp_in_.create(keys.profile, SrtpSession::Direction::Inbound, keys.remote, &error)) ||
      !srtp_out_.create(keys.profile, SrtpSession::Direction::Outbound, keys.local, &error)) {
    fail(error);
    return;
  }
  rtcp_in_ = wb::SrtcpContext::create(keys.profile, keys.remote);
  if (!peek_.create(keys.profile, keys.remote)) {
    fail("SRTP: no AES for the keyframe search");
    return;
  }
  state_ = State::Connected;
  // The server's Finished and its first media often share one read batch:
  // kernel arrival times keep them in order.
  connected_at_ = arrival;
  config_.loop->read_in_batches(socket_);  // media only from now on
  // Like a browser: ask for a keyframe at once, then report every second.
  pli_pending_ = remote_.video_pt >= 0;
  send_rtcp(pli_pending_ && remote_.video_ssrc != 0);
  next_report_ = connected_at_ + kReportInterval;
  estimator_.start(connected_at_);
}

void Viewer::fail(const std::string &why) {
  if (state_ == State::Leaving) {
    close();  // the server let go first, as it may on DELETE or detach
    return;
  }
  if (state_ == State::Failed || state_ == State::Closed) return;
  failure_ = why;
  shut_down(State::Failed);
}

void Viewer::leave() {
  if (state_ != State::Failed && state_ != State::Closed) state_ = State::Leaving;
}

void Viewer::close() {
  if (state_ != State::Failed && state_ != State::Closed) shut_down(State::Closed);
}

void Viewer::vanish() {
  if (state_ == State::Failed || state_ == State::Closed) return;
  vanished_ = true;
  dtls_.reset();  // before shut_down(), which would send close_notify
  shut_down(State::Closed);
}

void Viewer::release() {
  if (state_ != State::Failed && state_ != State::Closed) return;
  dtls_.reset();
  srtp_in_.destroy();
  srtp_out_.destroy();
}

void Viewer::shut_down(State final_state) {
  state_ = final_state;
  ++timer_generation_;        // cancels our pending timer
  if (dtls_) dtls_->close();  // close_notify, as a browser closing the tab
  if (socket_.fd() >= 0) {
    config_.loop->unwatch(socket_);
    socket_.close();
  }
}

bool Viewer::settled(int64_t now) const {
  switch (state_) {
    case State::Failed:
    case State::Closed:
      return true;
    case State::Connected:
      return media_flowing() || now - connected_at_ > kMediaPatience;
    default:
      return false;
  }
}

std::string Viewer::waiting_for() const {
  if (state_ == State::Signalling) {  // our own HTTP threads may not even have sent the request yet
    if (refusals_)
      return "an answer, asked " + std::to_string(refusals_ + 1) + " times (the last refusal: " + last_refusal_ + ")";
    return signalling_started_ ? "the signalling answer" : "a free signalling thread";
  }
  return state_ == State::Ice ? "ICE" : "the DTLS handshake";
}

void Viewer::on_datagram(uint8_t *data, size_t len, size_t wire_len, const sockaddr_in &from, int64_t arrival) {
  // RFC 7983 demultiplexing by the first byte.
  if (wb::stun::looks_like_stun(data, len)) {
    wb::stun::Message message;
    if (!ice_ || len < wire_len || !message.parse(data, len)) return;
    ice_->on_stun(message, from, config_.loop->now());
    if (state_ == State::Ice && ice_->connected()) start_dtls();
    reschedule();
  } else if (looks_like_dtls(data, len)) {
    // Cut short only once connected: a retransmission of the server's last
    // handshake flight, which needs no answer.
    if (!dtls_ || len < wire_len) return;
    dtls_->on_datagram(data, len, config_.loop->now());
    if (dtls_->failed())
      fail(dtls_->failure());
    else if (state_ == State::Dtls && dtls_->connected())
      dtls_done(arrival);
    reschedule();
  } else if (looks_like_rtp(data, len) && state_ == State::Connected) {
    if (is_rtcp(data))
      on_rtcp(data, len, arrival);
    else
      on_rtp(data, len, wire_len, arrival);
  }
}

void Viewer::on_rtp(uint8_t *data, size_t len, size_t wire_len, int64_t arrival) {
  RtpHeader h;
  if (!parse_rtp(data, len, &h)) return;
  if (!first_packet_at_) first_packet_at_ = arrival;
  StreamStats *stream = h.payload_type == remote_.video_pt   ? &video_
                        : h.payload_type == remote_.audio_pt ? &audio_
                                                             : nullptr;
  if (stream && stream->is_duplicate(h)) {
    ++duplicates_;
    return;
  }
  if (h.payload_type == remote_.video_pt) {
    bool in_sequence = video_.on_packet(h, wire_len, arrival);
    if (pli_pending_ && !remote_.video_ssrc) {  // not announced: now we know it
      remote_.video_ssrc = h.ssrc;
      send_rtcp(true);
    }
    keyframe_.on_header(h, in_sequence);
    if (keyframe_.wants_payload()) {
      // The search follows packets in sequence only: this one is the highest.
      size_t end = std::min(len, wire_len - std::min(wire_len, peek_.tag_length()));
      size_t payload = end > h.size ? end - h.size : 0;
      uint8_t head[SrtpPayloadPeek::kBytes];
      peek_.decrypt_head(h.ssrc, video_.highest_seq(), data + h.size, payload, head);
      keyframe_.on_payload(head, std::min(payload, SrtpPayloadPeek::kBytes));
    }
    if (keyframe_.completes_keyframe(h)) first_keyframe_at_ = arrival;
    if (verify_) verify(data, len);
  } else if (h.payload_type == remote_.audio_pt) {
    audio_.on_packet(h, wire_len, arrival);
    if (verify_) verify(data, len);
  } else if (h.payload_type == remote_.rtx_pt) {
    rtx_.on_packet(h, wire_len, arrival);
  }
}

void Viewer::on_rtcp(uint8_t *data, size_t len, int64_t arrival) {
  ++rtcp_received_;
  if (!rtcp_in_ || !rtcp_in_->unprotect(data, &len)) return;
  // A compound from a sender starts with its SR (RFC 3550 6.1).
  if (len < 28 || data[1] != 200) return;
  auto be32 = [&](size_t at) {
    return uint32_t(data[at]) << 24 | uint32_t(data[at + 1]) << 16 | uint32_t(data[at + 2]) << 8 | data[at + 3];
  };
  const uint32_t ssrc = be32(4);
  LastSenderReport *last = ssrc == video_.ssrc() ? &last_sr_[0] : ssrc == audio_.ssrc() ? &last_sr_[1] : nullptr;
  if (last) *last = {ssrc, be32(10), arrival};
}

void Viewer::verify(uint8_t *data, size_t len) {
  ++(srtp_in_.unprotect_rtp(data, &len) ? verified_packets_ : verify_failures_);
}

void Viewer::send_rtcp(bool with_pli, bool with_remb) {
  std::vector<ReceptionReport> blocks;
  if (video_.started()) blocks.push_back(video_.report());
  if (audio_.started()) blocks.push_back(audio_.report());
  if (rtx_.started()) blocks.push_back(rtx_.report());
  const int64_t now = config_.loop->now();
  for (auto &block : blocks)
    for (const auto &sr : last_sr_)
      if (sr.ssrc && sr.ssrc == block.ssrc) {
        block.lsr = sr.ntp_middle;
        block.dlsr = uint32_t((now - sr.arrival) * 65536 / kSecond);  // 1/65536 s
      }
  wb::rtcp::Compound rtcp(local_ssrc_);
  rtcp.receiver_report(blocks);
  rtcp.sdes_cname(cname_);
  if (with_pli) {
    rtcp.pli(remote_.video_ssrc);
    pli_pending_ = false;
  }
  std::vector<uint8_t> compound = rtcp.bytes();
  if (with_remb && sends_remb()) {
    // Padding counts as a browser counts it: one more stream of the video.
    estimator_.update(now, video_.bytes() + rtx_.bytes(), video_.packets() + rtx_.packets(),
                      video_.expected() + rtx_.expected());
    // Only once there is something to say, as a browser before its first
    // estimate: a REMB of 0 would read as "nothing fits".
    if (const uint64_t estimate = estimator_.to_send(now); estimate && video_.ssrc()) {
      append_remb(&compound, local_ssrc_, estimate, {video_.ssrc()});
      ++remb_sent_;
    }
  }
  uint8_t buf[1500];
  size_t len = compound.size();
  if (len + SrtpSession::kRtcpTrailer > sizeof buf) return;
  std::copy(compound.begin(), compound.end(), buf);
  if (srtp_out_.protect_rtcp(buf, &len)) send(buf, len, ice_->remote_address());
}

void Viewer::service() {
  int64_t now = config_.loop->now();
  if (ice_) ice_->on_timer(now);
  if (ice_ && ice_->failed()) {
    fail(ice_->failure());
    return;
  }
  if (dtls_ && state_ == State::Dtls) {
    dtls_->on_timer(now);
    if (dtls_->failed()) {
      fail(dtls_->failure());
      return;
    }
  }
  if (state_ == State::Connected && now >= next_report_) {
    record_interval(now);
    send_rtcp(false, true);
    next_report_ = now + kReportInterval;
  }
  if (state_ == State::Connected && config_.pli_interval) {
    if (next_pli_ == INT64_MAX) next_pli_ = now + config_.pli_interval;
    if (now >= next_pli_ && remote_.video_ssrc) {
      send_rtcp(true);
      next_pli_ = now + config_.pli_interval;
    }
  }
  reschedule();
}

void Viewer::reschedule() {
  if (state_ == State::Failed || state_ == State::Closed) return;
  // Only deadlines of what this state does: a stale one would fire forever.
  int64_t next = ice_ ? ice_->next_deadline() : INT64_MAX;
  if (state_ == State::Dtls) next = std::min(next, dtls_->next_deadline());
  if (state_ == State::Connected) next = std::min({next, next_report_, next_pli_});
  // A pending timer that fires no later will do: service() re-arms.
  if (next == INT64_MAX || next >= timer_at_) return;
  timer_at_ = next;
  uint64_t generation = ++timer_generation_;
  config_.loop->call_at(next, [this, generation] {
    if (generation != timer_generation_) return;  // replaced or cancelled
    timer_at_ = INT64_MAX;
    service();
  });
}

void Viewer::begin_window() {
  window_start_ = {video_.packets(), video_.bytes(), video_.expected()};
  in_window_ = true;
}

void Viewer::end_window() {
  window_ = {video_.packets() - window_start_.packets, video_.bytes() - window_start_.bytes,
             video_.expected() - window_start_.expected};
  in_window_ = false;
}

void Viewer::record_interval(int64_t now) {
  const Totals totals{video_.packets(), video_.bytes(), video_.expected()};
  if (in_window_ && interval_start_ && now > interval_start_) {
    window_kbps_.push_back(
        uint32_t(double(totals.bytes - interval_.bytes) * 8 * kSecond / 1000 / double(now - interval_start_)));
    const int64_t expected = totals.expected - interval_.expected;
    const int64_t lost = expected - int64_t(totals.packets - interval_.packets);
    window_loss_permille_.push_back(expected > 0 && lost > 0 ? uint16_t(1000 * lost / expected) : 0);
  }
  interval_ = totals;
  interval_start_ = now;
}

ViewerReport Viewer::report() const {
  ViewerReport r;
  r.index = index_;
  r.state = state_name(state_);
  r.failure = failure_;
  r.connected = connected_at_ != 0;
  r.answer_ms = ms_since(signalling_started_, answered_at_);
  r.connect_ms = ms_since(signalling_started_, connected_at_);
  r.first_packet_ms = ms_since(signalling_started_, first_packet_at_);
  r.first_keyframe_ms = ms_since(signalling_started_, first_keyframe_at_);
  r.first_keyframe_after_answer_ms = ms_since(answered_at_, first_keyframe_at_);
  r.video = stream_report(video_);
  r.audio = stream_report(audio_);
  r.window_video_packets = window_.packets;
  r.window_video_bytes = window_.bytes;
  r.window_video_lost = std::max<int64_t>(0, window_.expected - int64_t(window_.packets));
  r.window_kbps = window_kbps_;
  r.window_loss_permille = window_loss_permille_;
  r.remb = sends_remb() && remb_sent_ > 0;
  r.remb_sent = remb_sent_;
  r.rtx_packets = rtx_.packets();
  r.rtx_bytes = rtx_.bytes();
  r.estimate = estimator_.estimate();
  if (rtcp_in_) r.srtp_profile = wb::srtp_profile_name(dtls_->keys().profile);
  r.verified = verify_;
  r.verified_packets = verified_packets_;
  r.verify_failures = verify_failures_;
  r.rtcp_received = rtcp_received_;
  r.duplicates = duplicates_;
  r.vanished = vanished_;
  r.refusals = refusals_;
  r.last_refusal = last_refusal_;
  if (ice_) {
    r.consent_sent = ice_->consent_sent();
    r.consent_answered = ice_->consent_answered();
  }
  return r;
}

}  // namespace load
