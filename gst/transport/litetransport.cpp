#include "litetransport.h"

#include <arpa/inet.h>
#include <glib.h>
#include <openssl/rand.h>
#include <sys/socket.h>

#include <array>
#include <cstring>

#include "common/debug.h"
#include "common/strings.h"
#include "transport/iceliteport.h"
#define GST_CAT_DEFAULT wb_viewer_debug

namespace wb {

namespace {

constexpr int64_t kReportIntervalNs = 1000000000;
constexpr int64_t kProbedReportIntervalNs = 100000000;
// Room for any RTCP compound a viewer sends us, and for ours plus the
// SRTCP trailer.
constexpr size_t kRtcpBuffer = 1500;

uint64_t random_tie_breaker() {
  uint64_t value = 0;
  RAND_bytes(reinterpret_cast<unsigned char *>(&value), sizeof value);
  return value;
}

bool same_address(const sockaddr_in &a, const sockaddr_in &b) {
  return a.sin_addr.s_addr == b.sin_addr.s_addr && a.sin_port == b.sin_port;
}

}  // namespace

LiteTransport::LiteTransport(std::string local_ufrag, std::string local_pwd, RemoteIce remote,
                             std::shared_ptr<DtlsIdentity> identity, DtlsRole role, std::string remote_fingerprint,
                             Listener listener, ConsentTiming timing, std::shared_ptr<RtcpMetrics> metrics)
    : local_ufrag_(std::move(local_ufrag)),
      local_pwd_(std::move(local_pwd)),
      remote_ice_(std::move(remote)),
      cname_(random_hex(12)),
      listener_(std::move(listener)),
      timing_(timing),
      tie_breaker_(random_tie_breaker()),
      metrics_(std::move(metrics)),
      dtls_(std::make_unique<DtlsEndpoint>(std::move(identity), role, std::move(remote_fingerprint),
                                           [this](const uint8_t *data, size_t len) { send_locked(data, len); })),
      last_heard_us_(g_get_monotonic_time()) {}

LiteTransport::~LiteTransport() = default;

std::string describe(const sockaddr_in &address) {
  char text[INET_ADDRSTRLEN] = "?";
  inet_ntop(AF_INET, &address.sin_addr, text, sizeof text);
  return std::string(text) + ":" + std::to_string(ntohs(address.sin_port));
}

void LiteTransport::send_locked(const uint8_t *data, size_t len) {
  if (!socket_) return;
  // A full send buffer drops this datagram as the network would; DTLS and
  // RTCP recover from a lost packet.
  socket_->send(data, len, remote_);
}

LiteTransport::Check LiteTransport::on_binding_request(const stun::Message &request, const sockaddr_in &from,
                                                       const std::shared_ptr<PortSocket> &socket, bool taken,
                                                       int64_t now_ns) {
  if (!request.integrity_ok(local_pwd_)) {
    GST_LOG("viewer ufrag %s: check from %s fails integrity", local_ufrag_.c_str(), describe(from).c_str());
    return Check::Ignored;
  }
  State previous, now;
  Check result = Check::Answered;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    previous = state_.load();
    if (previous == State::Closed || previous == State::Failed) return Check::Ignored;
    last_heard_us_.store(now_ns / 1000);
    stun::Writer reply(stun::kBindingSuccess, request.transaction());
    reply.add_xor_mapped_address(from);
    const auto &bytes = reply.finish(local_pwd_);
    socket->send(bytes.data(), bytes.size(), from);
    size_t ignored;
    const bool nominating = request.find(stun::kUseCandidate, &ignored) != nullptr;
    const bool current = socket_ == socket && same_address(remote_, from);
    if (taken && !current) {
      GST_INFO("viewer ufrag %s: %s is another viewer's address; not taken", local_ufrag_.c_str(),
               describe(from).c_str());
    } else if (!socket_) {
      // The first pair that checked out, so DTLS can start at once. The
      // handshake itself proves the address: it cannot complete unless
      // the viewer receives our flights there.
      GST_INFO("viewer ufrag %s: first pair %s", local_ufrag_.c_str(), describe(from).c_str());
      move_locked(socket, from, now_ns);
      result = Check::Moved;
    } else if ((nominating || !nominated_) && !current) {
      // A lite agent takes the pair the controlling agent nominates, but
      // only once that address answers a check of ours.
      // One probe at a time, and a new one at most once per probe's span:
      // a viewer forging nominations from many addresses gets no more than
      // probe_tries checks a second sent on its behalf.
      const bool probing = probe_.active && probe_.socket == socket && same_address(probe_.to, from);
      const int64_t span = timing_.probe_interval_ns * timing_.probe_tries;
      if (probing) {
        result = Check::Probing;
      } else if (!probe_.active || now_ns - probe_started_ns_ >= span) {
        GST_INFO("viewer ufrag %s: %s pair %s; checking it before media moves", local_ufrag_.c_str(),
                 nominating ? "nominated" : "another", describe(from).c_str());
        start_check_locked(&probe_, socket, from, now_ns);
        probe_started_ns_ = now_ns;
        result = Check::Probing;
      }
    }
    nominated_ |= nominating && !taken;
    if (!dtls_started_ && socket_) {
      dtls_started_ = true;
      dtls_->start(now_ns);
    }
    now = update_state_locked();
  }
  notify(previous, now, nullptr);
  return result;
}

bool LiteTransport::on_binding_response(const stun::Message &response, const sockaddr_in &from,
                                        const std::shared_ptr<PortSocket> &socket, int64_t now_ns) {
  if (response.type() != stun::kBindingSuccess) return false;
  std::lock_guard<std::mutex> lock(mutex_);
  const State state = state_.load();
  if (state == State::Closed || state == State::Failed) return false;
  auto answers = [&](const OutgoingCheck &check) {
    return check.active && check.id == response.transaction() && check.socket == socket &&
           same_address(check.to, from);
  };
  // Integrity last: it is the costly test, and only the viewer's own agent
  // can sign with its password.
  if (answers(probe_) && response.integrity_ok(remote_ice_.pwd)) {
    GST_INFO("viewer ufrag %s: %s answered our check; media moves there", local_ufrag_.c_str(),
             describe(from).c_str());
    probe_.active = false;
    move_locked(socket, from, now_ns);
    return true;
  }
  if (answers(consent_) && response.integrity_ok(remote_ice_.pwd)) {
    consent_.active = false;
    consent_expires_ns_ = now_ns + timing_.consent_timeout_ns;
    ++consent_answers_;
    GST_LOG("viewer ufrag %s: consent from %s", local_ufrag_.c_str(), describe(from).c_str());
  }
  return false;
}

void LiteTransport::move_locked(const std::shared_ptr<PortSocket> &socket, const sockaddr_in &to, int64_t now_ns) {
  socket_ = socket;
  remote_ = to;
  // The address just proved itself; the consent clock restarts there.
  consent_.active = false;
  consent_expires_ns_ = now_ns + timing_.consent_timeout_ns;
  next_consent_ns_ = next_consent_check_ns(now_ns);
  // Media follows: a viewer may nominate another pair after it connected.
  if (media_route_) media_route_->move_to(target_locked());
}

void LiteTransport::start_check_locked(OutgoingCheck *check, const std::shared_ptr<PortSocket> &socket,
                                       const sockaddr_in &to, int64_t now_ns) {
  check->active = true;
  check->socket = socket;
  check->to = to;
  check->id = stun::random_transaction();
  check->sent = 0;
  send_check_locked(check, now_ns);
}

// RFC 8445 7.1.1 and 7.2.2: USERNAME "theirs:ours", signed with their
// password; we are the controlled agent.
void LiteTransport::send_check_locked(OutgoingCheck *check, int64_t now_ns) {
  stun::Writer request(stun::kBindingRequest, check->id);
  request.add_string(stun::kUsername, remote_ice_.ufrag + ":" + local_ufrag_);
  request.add_u32(stun::kPriority, 0x6e7f1eff);  // a host candidate's, as ours are
  request.add_u64(stun::kIceControlled, tie_breaker_);
  const auto &bytes = request.finish(remote_ice_.pwd);
  check->socket->send(bytes.data(), bytes.size(), check->to);
  ++check->sent;
  check->next_ns = now_ns + timing_.probe_interval_ns;
}

int64_t LiteTransport::next_consent_check_ns(int64_t now_ns) const {
  // RFC 7675 5.1: randomized, so checks of many viewers do not fall together.
  uint32_t r = 0;
  RAND_bytes(reinterpret_cast<unsigned char *>(&r), sizeof r);
  const double factor = 0.8 + 0.4 * (double(r) / 4294967296.0);
  return now_ns + int64_t(double(timing_.consent_interval_ns) * factor);
}

// On every tick once an address is in use: a new consent check when one is
// due, the probe's retransmissions, and the verdict when consent ran out.
void LiteTransport::keep_consent_locked(int64_t now_ns) {
  if (probe_.active && now_ns >= probe_.next_ns) {
    if (probe_.sent >= timing_.probe_tries) {
      GST_INFO("viewer ufrag %s: %s never answered our check; media stays at %s", local_ufrag_.c_str(),
               describe(probe_.to).c_str(), describe(remote_).c_str());
      probe_.active = false;
    } else {
      send_check_locked(&probe_, now_ns);
    }
  }
  if (now_ns >= consent_expires_ns_) {
    GST_INFO("viewer ufrag %s: no consent from %s for %" G_GINT64_FORMAT " ms; sending stops",
             local_ufrag_.c_str(), describe(remote_).c_str(), timing_.consent_timeout_ns / 1000000);
    consent_lost_ = true;
    return;
  }
  // One check in flight at a time; a lost one is replaced by the next.
  if (now_ns >= next_consent_ns_) {
    start_check_locked(&consent_, socket_, remote_, now_ns);
    next_consent_ns_ = next_consent_check_ns(now_ns);
  }
}

void LiteTransport::on_datagram(const uint8_t *data, size_t len, int64_t now_ns) {
  if (len < 1) return;
  State previous, now;
  rtcp::Feedback feedback;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    previous = state_.load();
    if (previous == State::Closed || previous == State::Failed) return;
    const uint8_t first = data[0];
    if (first >= 20 && first <= 63) {  // RFC 7983: DTLS
      last_heard_us_.store(now_ns / 1000);
      dtls_->on_datagram(data, len, now_ns);
    } else if (first >= 128 && first <= 191 && len >= 8 && data[1] >= 192 && data[1] <= 223) {
      // RTCP (RFC 5761 4): the viewer's reports and feedback. Anything it
      // sends as RTP is not for a broadcast.
      if (!rtcp_in_ || len > kRtcpBuffer) return;
      uint8_t plain[kRtcpBuffer];
      memcpy(plain, data, len);
      handle_rtcp_locked(plain, len, now_ns, &feedback);
    }
    now = update_state_locked();
  }
  notify(previous, now, &feedback);
}

void LiteTransport::handle_rtcp_locked(uint8_t *data, size_t len, int64_t now_ns, rtcp::Feedback *feedback) {
  if (!rtcp_in_->unprotect(data, &len)) {
    ++rtcp_counts_.rejected;
    if (metrics_) metrics_->authenticated(false);
    GST_LOG("viewer ufrag %s: SRTCP packet rejected", local_ufrag_.c_str());
    return;
  }
  ++rtcp_counts_.received;
  if (metrics_) metrics_->authenticated(true);
  last_heard_us_.store(now_ns / 1000);
  // Sealed with the keys the handshake exported: the viewer has finished
  // it, and OpenSSL's state for it can go.
  dtls_->release();
  if (rtcp::parse(data, len, feedback))
    count_feedback_locked(*feedback);
  else
    GST_LOG("viewer ufrag %s: malformed RTCP compound", local_ufrag_.c_str());
}

void LiteTransport::count_feedback_locked(const rtcp::Feedback &feedback) {
  count_feedback(feedback, &rtcp_counts_);
  if (metrics_) metrics_->feedback(feedback);
  if (feedback.reports.empty()) return;
  // LSR echoes the NTP time of one of our sender reports: the round trip
  // needs the arrival time on that same clock.
  const uint64_t arrival_ntp = rtcp::ntp_from_unix_us(g_get_real_time());
  for (const auto &report : feedback.reports)
    for (auto &stream : streams_)
      if (stream.sent.ssrc == report.block.ssrc) {
        stream.reception.add(report.block, arrival_ntp);
        if (metrics_)
          metrics_->report(report.block, stream.sent.clock_rate, rtcp::round_trip(report.block, arrival_ntp));
      }
}

void LiteTransport::on_tick(int64_t now_ns) {
  State previous, now;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    previous = state_.load();
    if (previous == State::Closed || previous == State::Failed) return;
    if (dtls_started_ && now_ns >= dtls_->next_deadline()) dtls_->on_timer(now_ns);
    if (socket_) keep_consent_locked(now_ns);
    now = update_state_locked();
    const int64_t interval = probed_.load(std::memory_order_relaxed) ? kProbedReportIntervalNs : kReportIntervalNs;
    if (now == State::Connected && !streams_.empty() && now_ns >= last_report_ns_ + interval) {
      send_reports_locked(now_ns);
      last_report_ns_ = now_ns;
    }
  }
  notify(previous, now, nullptr);
}

// Called with the lock held after anything that may move DTLS along.
LiteTransport::State LiteTransport::update_state_locked() {
  State state = state_.load();
  if (consent_lost_ && (state == State::New || state == State::Connected)) {
    state = State::Failed;
    // Senders pick this up at their next packet: nothing more leaves for
    // an address that stopped consenting.
    if (media_route_) media_route_->move_to(UdpTarget{});
  } else if (state == State::New && dtls_->connected()) {
    const SrtpKeyMaterial &keys = dtls_->keys();
    rtcp_out_ = SrtcpContext::create(keys.profile, keys.local);
    rtcp_in_ = SrtcpContext::create(keys.profile, keys.remote);
    if (rtcp_out_ && rtcp_in_) {
      state = State::Connected;
      GST_INFO("viewer ufrag %s: DTLS connected, %s", local_ufrag_.c_str(), srtp_profile_name(keys.profile));
    } else {
      state = State::Failed;
      GST_WARNING("viewer ufrag %s: SRTCP could not be set up", local_ufrag_.c_str());
    }
  } else if (state == State::New && dtls_->failed()) {
    GST_INFO("viewer ufrag %s: DTLS failed: %s", local_ufrag_.c_str(), dtls_->failure().c_str());
    state = State::Failed;
  }
  state_.store(state);
  return state;
}

void LiteTransport::send_reports_locked(int64_t now_ns) {
  const int64_t now_us = now_ns / 1000;
  const uint64_t ntp = rtcp::ntp_from_unix_us(g_get_real_time());
  for (const Stream &entry : streams_) {
    const SentStream &stream = entry.sent;
    SentCounters::Snapshot sent = stream.counters->snapshot();
    if (!sent.any) continue;
    // The RTP time of "now": the last packet's, moved on by the time since
    // its sample was taken.
    const int64_t elapsed_us = now_us - sent.sampled_us;
    const uint32_t rtp_now = sent.rtp_time + uint32_t(elapsed_us * int64_t(stream.clock_rate) / 1000000);
    rtcp::Compound report(stream.ssrc);
    report.sender_report(ntp, rtp_now, sent.packets, sent.octets);
    report.sdes_cname(cname_);
    const auto &bytes = report.bytes();
    if (bytes.size() + SrtcpContext::kMaxTrailer > kRtcpBuffer) continue;
    uint8_t packet[kRtcpBuffer];
    memcpy(packet, bytes.data(), bytes.size());
    size_t len = bytes.size();
    if (rtcp_out_->protect(packet, &len)) send_locked(packet, len);
  }
}

void LiteTransport::notify(State previous, State now, const rtcp::Feedback *feedback) {
  if (previous != now && listener_.state) listener_.state(now);
  if (feedback && listener_.feedback &&
      (!feedback->pli.empty() || !feedback->fir.empty() || !feedback->nacks.empty() || !feedback->reports.empty()))
    probed_.store(listener_.feedback(*feedback), std::memory_order_relaxed);
}

UdpTarget LiteTransport::target_locked() const {
  UdpTarget target;
  if (!socket_) return target;
  target.fd = socket_->fd;
  memcpy(&target.remote, &remote_, sizeof remote_);
  target.remote_len = sizeof remote_;
  target.description = "ICE-lite " + describe(socket_->local) + " -> " + describe(remote_);
  target.owner = socket_;
  target.tcp = socket_->tcp;
  if (socket_->tcp) target.description = "ICE-TCP " + describe(socket_->local) + " -> " + describe(remote_);
  return target;
}

std::shared_ptr<MediaRoute> LiteTransport::media_route() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!media_route_ && socket_ && !consent_lost_) media_route_ = std::make_shared<MediaRoute>(target_locked());
  return media_route_;
}

SrtpKeyMaterial LiteTransport::keys() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return dtls_->keys();
}

void LiteTransport::add_sent_stream(SentStream stream) {
  std::lock_guard<std::mutex> lock(mutex_);
  streams_.push_back({std::move(stream), {}});
  last_report_ns_ = kNoReport;  // the first report as soon as there is something to say
}

LiteTransport::Stats LiteTransport::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  Stats stats;
  stats.state = state_.load();
  if (socket_) {
    stats.remote_address = describe(remote_);
    stats.protocol = socket_->tcp ? "tcp" : "udp";
    if (socket_->tcp) stats.tcp_dropped = socket_->tcp->dropped();
  }
  stats.rtcp = rtcp_counts_;
  stats.consent_answers = consent_answers_;
  stats.dtls_released = dtls_->released();
  if (rtcp_out_) stats.srtp_profile = srtp_profile_name(dtls_->keys().profile);
  for (const auto &stream : streams_) {
    const SentCounters::Snapshot sent = stream.sent.counters->snapshot();
    stats.streams.push_back(
        {stream.sent.ssrc, stream.sent.clock_rate, sent.packets, sent.octets, stream.reception});
  }
  return stats;
}

const char *LiteTransport::state_name(State state) {
  switch (state) {
    case State::New:
      return "new";
    case State::Connected:
      return "connected";
    case State::Failed:
      return "failed";
    case State::Closed:
      return "closed";
  }
  return "unknown";
}

void LiteTransport::close() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (state_.load() == State::Closed) return;
  if (dtls_->connected()) dtls_->close();
  state_.store(State::Closed);
}

}  // namespace wb
