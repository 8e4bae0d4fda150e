// One ICE agent with one candidate pair: our host candidate and the remote
// candidate picked from its description. Sends connectivity checks until one
// succeeds, answers the peer's checks for as long as the session lives
// (libnice checks us, and keeps checking for consent freshness), and sends
// its own consent checks once connected.
#pragma once

#include <netinet/in.h>

#include <cstdint>
#include <functional>
#include <string>

#include "transport/stun.h"

namespace load {

struct IceCredentials {
  std::string ufrag;
  std::string pwd;
  static IceCredentials random();
};

class IceAgent {
 public:
  enum class Role { Controlling, Controlled };
  using Send = std::function<void(const uint8_t *, size_t, const sockaddr_in &)>;

  IceAgent(Role role, IceCredentials local, Send send);
  const IceCredentials &local() const { return local_; }

  void start(const IceCredentials &remote, const sockaddr_in &candidate, int64_t now);
  void on_stun(const wb::stun::Message &message, const sockaddr_in &from, int64_t now);
  // Retransmits a check or sends a consent check when due.
  void on_timer(int64_t now);
  int64_t next_deadline() const { return deadline_; }

  bool connected() const { return state_ == State::Connected; }
  bool failed() const { return state_ == State::Failed; }
  const std::string &failure() const { return failure_; }
  const sockaddr_in &remote_address() const { return remote_address_; }
  unsigned consent_sent() const { return consent_sent_; }
  unsigned consent_answered() const { return consent_answered_; }

 private:
  enum class State { Idle, Checking, Connected, Failed };
  void send_check(bool nominate);
  void answer(const wb::stun::Message &request, const sockaddr_in &from);

  Role role_;
  IceCredentials local_;
  IceCredentials remote_;
  Send send_;
  State state_ = State::Idle;
  std::string failure_;
  sockaddr_in remote_address_{};
  uint64_t tie_breaker_;
  wb::stun::TransactionId pending_{};  // the check or consent request we wait on
  int64_t checks_started_ = 0;
  int64_t rto_ = 0;                // current retransmission timeout
  int64_t deadline_ = INT64_MAX;
  int64_t last_consent_reply_ = 0;
  int last_error_ = 0;
  unsigned consent_sent_ = 0;
  unsigned consent_answered_ = 0;
};

}  // namespace load
