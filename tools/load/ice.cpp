#include "ice.h"

#include <openssl/rand.h>

#include "eventloop.h"

namespace load {

namespace {

// PRIORITY of a check: what a peer-reflexive candidate of ours would have
// (RFC 8445 7.1.1: type preference 110, one component).
constexpr uint32_t kCheckPriority = (110u << 24) | (65535u << 8) | 255u;
constexpr int64_t kFirstRto = 100 * kMs;
constexpr int64_t kMaxRto = 1600 * kMs;
constexpr int64_t kChecksGiveUp = 15 * kSecond;
constexpr int64_t kConsentInterval = 2500 * kMs;
constexpr int64_t kConsentLost = 30 * kSecond;  // RFC 7675

std::string random_token(size_t len) {
  static const char kChars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/";
  unsigned char bytes[64];
  RAND_bytes(bytes, int(len));
  std::string s(len, 'a');
  for (size_t i = 0; i < len; ++i) s[i] = kChars[bytes[i] % 64];
  return s;
}

}  // namespace

IceCredentials IceCredentials::random() { return {random_token(8), random_token(24)}; }

IceAgent::IceAgent(Role role, IceCredentials local, Send send)
    : role_(role), local_(std::move(local)), send_(std::move(send)) {
  RAND_bytes(reinterpret_cast<unsigned char *>(&tie_breaker_), sizeof tie_breaker_);
}

void IceAgent::start(const IceCredentials &remote, const sockaddr_in &candidate, int64_t now) {
  remote_ = remote;
  remote_address_ = candidate;
  state_ = State::Checking;
  checks_started_ = now;
  rto_ = kFirstRto;
  pending_ = wb::stun::random_transaction();
  send_check(role_ == Role::Controlling);
  deadline_ = now + rto_;
}

void IceAgent::send_check(bool nominate) {
  wb::stun::Writer w(wb::stun::kBindingRequest, pending_);
  w.add_string(wb::stun::kUsername, remote_.ufrag + ":" + local_.ufrag);
  w.add_u32(wb::stun::kPriority, kCheckPriority);
  w.add_u64(role_ == Role::Controlling ? wb::stun::kIceControlling : wb::stun::kIceControlled, tie_breaker_);
  // Aggressive nomination: the one pair we have is the one we want.
  if (nominate) w.add(wb::stun::kUseCandidate, nullptr, 0);
  const auto &bytes = w.finish(remote_.pwd);
  send_(bytes.data(), bytes.size(), remote_address_);
}

void IceAgent::answer(const wb::stun::Message &request, const sockaddr_in &from) {
  wb::stun::Writer w(wb::stun::kBindingSuccess, request.transaction());
  w.add_xor_mapped_address(from);
  const auto &bytes = w.finish(local_.pwd);
  send_(bytes.data(), bytes.size(), from);
}

void IceAgent::on_stun(const wb::stun::Message &message, const sockaddr_in &from, int64_t now) {
  if (message.type() == wb::stun::kBindingRequest) {
    // Only checks meant for us (USERNAME "ours:theirs", signed with our pwd).
    std::string user = message.username();
    if (user.compare(0, local_.ufrag.size() + 1, local_.ufrag + ":") == 0 && message.integrity_ok(local_.pwd))
      answer(message, from);
    return;
  }
  if (message.transaction() != pending_ || state_ == State::Idle || state_ == State::Failed) return;
  if (message.type() == wb::stun::kBindingError) {
    last_error_ = message.error_code();  // e.g. 401 while the peer does not know us yet: keep trying
    return;
  }
  if (message.type() != wb::stun::kBindingSuccess || !message.integrity_ok(remote_.pwd)) return;
  pending_ = wb::stun::random_transaction();  // a late duplicate must not count twice
  last_consent_reply_ = now;
  if (state_ == State::Checking) {
    state_ = State::Connected;
  } else {
    ++consent_answered_;
  }
  deadline_ = now + kConsentInterval;
}

void IceAgent::on_timer(int64_t now) {
  if (now < deadline_) return;
  if (state_ == State::Checking) {
    if (now - checks_started_ > kChecksGiveUp) {
      state_ = State::Failed;
      failure_ = "ICE: no answer to connectivity checks";
      if (last_error_) failure_ += " (last error " + std::to_string(last_error_) + ")";
      deadline_ = INT64_MAX;
      return;
    }
    send_check(role_ == Role::Controlling);  // same transaction: a retransmission
    rto_ = std::min(rto_ * 2, kMaxRto);
    deadline_ = now + rto_;
  } else if (state_ == State::Connected) {
    if (now - last_consent_reply_ > kConsentLost) {
      state_ = State::Failed;
      failure_ = "ICE: consent lost (no answer for 30 s)";
      deadline_ = INT64_MAX;
      return;
    }
    pending_ = wb::stun::random_transaction();
    send_check(false);
    ++consent_sent_;
    deadline_ = now + kConsentInterval;
  }
}

}  // namespace load
