// One viewer's transport on the shared ICE-lite port: it answers the
// viewer's connectivity checks (ICE-lite, RFC 8445 2.5), runs DTLS-SRTP
// over the address the viewer nominated, reads the viewer's RTCP (keyframe
// requests, receiver reports) and writes the RTCP sender reports for the
// streams the fan-out sends it. It owns no socket and no thread: the port
// feeds it datagrams and ticks, on the port's thread.
//
// A check's source address proves nothing: a viewer knows its own ICE
// password and can forge any source. So media only goes where a check of
// ours, signed with the viewer's password, was answered: the first address
// is proven by the DTLS handshake completing over it, every later one by
// our check before anything moves there, and the current one again every
// few seconds (consent freshness, RFC 7675). Without a fresh answer the
// transport fails and sends nothing more.
#pragma once

#include <netinet/in.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "transport/dtls.h"
#include "transport/rtcp.h"
#include "transport/rtcpmetrics.h"
#include "transport/srtcpcontext.h"
#include "transport/srtpsender.h"
#include "transport/stun.h"

namespace wb {

struct PortSocket;

// Consent freshness (RFC 7675 5.1): a check every `consent_interval`
// (randomized by +-20 %), and no answer for `consent_timeout` ends the
// transport. A newly nominated address is checked every `probe_interval`,
// `probe_tries` times at most, before media moves there.
struct ConsentTiming {
  int64_t consent_interval_ns = 5000000000LL;
  int64_t consent_timeout_ns = 30000000000LL;
  int64_t probe_interval_ns = 200000000LL;
  unsigned probe_tries = 5;
};

// "a.b.c.d:port", for logs and stats.
std::string describe(const sockaddr_in &address);

class LiteTransport {
 public:
  enum class State { New, Connected, Failed, Closed };
  // What the viewer's offer said of its ICE agent: our checks carry these.
  struct RemoteIce {
    std::string ufrag;
    std::string pwd;
  };
  // What a check did (on_binding_request).
  enum class Check {
    Ignored,   // not answered: bad integrity, or the transport has ended
    Answered,  // answered; nothing moves
    Probing,   // answered; the source is being probed (on_binding_response moves it)
    Moved,     // the first address: DTLS and, once connected, media go there
  };
  // Both run on the port's thread, never under the transport's lock.
  struct Listener {
    std::function<void(State)> state;
    // Returns whether the viewer's link is being probed (padding): our
    // sender reports then go every 100 ms instead of every second, so that
    // the round trip each receiver report gives is that of a recent packet.
    // A queue a probe fills is seen within a report or two, not up to a
    // second later (seen: 1.7 ms, then 135 ms in the next report, 0.2 s
    // after, which still echoed a sender report sent before it).
    std::function<bool(const rtcp::Feedback &)> feedback;
  };
  // One stream the fan-out sends directly: what its sender reports describe.
  struct SentStream {
    uint32_t ssrc;
    uint32_t clock_rate;
    std::shared_ptr<SentCounters> counters;
  };
  // What came in as RTCP, counted from the connection on.
  using RtcpCounts = wb::RtcpCounts;
  struct StreamStats {
    uint32_t ssrc = 0;
    uint32_t clock_rate = 0;
    // As in our sender reports: both wrap at 2^32 (RFC 3550 6.4.1).
    uint32_t packets_sent = 0;
    uint32_t octets_sent = 0;  // payload octets
    rtcp::Reception reception;
  };
  struct Stats {
    State state = State::New;
    std::string remote_address;  // "ip:port" media goes to; empty before the first check
    RtcpCounts rtcp;
    uint64_t consent_answers = 0;  // our consent checks the viewer answered
    bool dtls_released = false;    // DtlsEndpoint::release(): the first SRTCP that authenticated
    const char *srtp_profile = "";  // srtp_profile_name() of what DTLS agreed; "" before
    const char *protocol = "";      // "udp", or "tcp" (ICE-TCP) once a pair checked out
    uint64_t tcp_dropped = 0;       // frames a slow TCP connection had no room for
    std::vector<StreamStats> streams;  // in the order they were added
  };
  static const char *state_name(State state);

  LiteTransport(std::string local_ufrag, std::string local_pwd, RemoteIce remote, std::shared_ptr<DtlsIdentity> identity,
                DtlsRole role, std::string remote_fingerprint, Listener listener, ConsentTiming timing = ConsentTiming{},
                std::shared_ptr<RtcpMetrics> metrics = nullptr);
  ~LiteTransport();
  LiteTransport(const LiteTransport &) = delete;
  LiteTransport &operator=(const LiteTransport &) = delete;

  const std::string &local_ufrag() const { return local_ufrag_; }
  const std::string &local_pwd() const { return local_pwd_; }
  const std::string &cname() const { return cname_; }

  // Port thread. A check for us (the port matched the ufrag): answers it if
  // its integrity holds. `taken`: another live viewer holds `from`, which
  // then never becomes ours.
  Check on_binding_request(const stun::Message &request, const sockaddr_in &from,
                           const std::shared_ptr<PortSocket> &socket, bool taken, int64_t now_ns);
  // Port thread. An answer to one of our checks, from `from`. True when it
  // proved a newly nominated address: media moves there now.
  bool on_binding_response(const stun::Message &response, const sockaddr_in &from,
                           const std::shared_ptr<PortSocket> &socket, int64_t now_ns);
  // Port thread. A datagram from the nominated address: DTLS or SRTCP.
  void on_datagram(const uint8_t *data, size_t len, int64_t now_ns);
  // Port thread, a few times a second: DTLS retransmission, sender reports.
  void on_tick(int64_t now_ns);

  State state() const { return state_.load(); }
  // Where media goes (following the viewer's nominations from now on) and
  // the key that protects it; only once connected. Any thread.
  std::shared_ptr<MediaRoute> media_route();
  SrtpKeyMaterial keys() const;
  // Streams to describe in sender reports from now on.
  void add_sent_stream(SentStream stream);
  // A consistent snapshot; any thread.
  Stats stats() const;
  // Monotonic µs of the last authenticated packet from the viewer.
  int64_t last_heard_us() const { return last_heard_us_.load(); }
  // Sends close_notify and stops answering. Idempotent, any thread.
  void close();

 private:
  // One check of ours in flight: to prove a new address, or consent.
  struct OutgoingCheck {
    bool active = false;
    std::shared_ptr<PortSocket> socket;
    sockaddr_in to{};
    stun::TransactionId id{};
    unsigned sent = 0;
    int64_t next_ns = 0;
  };
  void start_check_locked(OutgoingCheck *check, const std::shared_ptr<PortSocket> &socket, const sockaddr_in &to,
                          int64_t now_ns);
  void send_check_locked(OutgoingCheck *check, int64_t now_ns);
  void move_locked(const std::shared_ptr<PortSocket> &socket, const sockaddr_in &to, int64_t now_ns);
  void keep_consent_locked(int64_t now_ns);
  int64_t next_consent_check_ns(int64_t now_ns) const;
  void send_locked(const uint8_t *data, size_t len);
  UdpTarget target_locked() const;
  void handle_rtcp_locked(uint8_t *data, size_t len, int64_t now_ns, rtcp::Feedback *feedback);
  void send_reports_locked(int64_t now_ns);
  State update_state_locked();
  void notify(State previous, State now, const rtcp::Feedback *feedback);
  void count_feedback_locked(const rtcp::Feedback &feedback);

  struct Stream {
    SentStream sent;
    rtcp::Reception reception;
  };

  const std::string local_ufrag_;
  const std::string local_pwd_;
  const RemoteIce remote_ice_;
  const std::string cname_;
  const Listener listener_;
  const ConsentTiming timing_;
  const uint64_t tie_breaker_;
  const std::shared_ptr<RtcpMetrics> metrics_;  // the node's, null in tests

  mutable std::mutex mutex_;
  std::shared_ptr<PortSocket> socket_;  // where the nominated address reached us
  sockaddr_in remote_{};
  std::shared_ptr<MediaRoute> media_route_;  // once asked for
  bool nominated_ = false;
  OutgoingCheck probe_;    // a nominated address media may move to once it answers
  int64_t probe_started_ns_ = 0;
  OutgoingCheck consent_;  // the current address, asked again and again
  int64_t next_consent_ns_ = 0;
  int64_t consent_expires_ns_ = 0;
  uint64_t consent_answers_ = 0;
  bool consent_lost_ = false;
  std::unique_ptr<DtlsEndpoint> dtls_;
  bool dtls_started_ = false;
  std::unique_ptr<SrtcpContext> rtcp_out_;
  std::unique_ptr<SrtcpContext> rtcp_in_;
  std::vector<Stream> streams_;
  RtcpCounts rtcp_counts_;
  static constexpr int64_t kNoReport = INT64_MIN / 2;  // any interval after it has passed
  int64_t last_report_ns_ = kNoReport;
  std::atomic<bool> probed_{false};  // the last feedback said so (Listener::feedback)
  std::atomic<State> state_{State::New};
  std::atomic<int64_t> last_heard_us_;
};

}  // namespace wb
