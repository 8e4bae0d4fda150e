// One simulated viewer: a socket, an ICE agent, a DTLS client, SRTP, and
// reception statistics. Behaves on the wire like a browser that receives
// and does not render: answers and sends STUN checks, sends RTCP receiver
// reports (with a REMB, when asked to: estimate.h) and a PLI. Counts every packet from its clear header; decrypts
// every packet only when it is one of the verified sample, and otherwise
// only the first bytes of the few packets that tell where the first
// keyframe is.
// Lives on the event loop thread; signalling reaches it through the loop.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "estimate.h"
#include "eventloop.h"
#include "ice.h"
#include "rtp.h"
#include "sdp.h"
#include "srtp.h"
#include "transport/dtls.h"
#include "transport/srtcpcontext.h"

namespace load {

struct StreamReport {
  uint64_t packets = 0;
  uint64_t bytes = 0;
  int64_t lost = 0;
  double jitter_ms = 0;
};

// What a viewer saw, for the summary. Times in ms from the first signalling
// request, -1 when it never happened.
struct ViewerReport {
  int index = 0;
  std::string state;
  std::string failure;
  bool connected = false;  // DTLS completed at some point
  std::string srtp_profile;  // what DTLS agreed, once connected
  double answer_ms = -1;  // signalling: our request to the server's SDP
  double connect_ms = -1;
  double first_packet_ms = -1;
  double first_keyframe_ms = -1;
  // From the server's SDP (WHEP answer, Janus offer): what the server's
  // keyframe handling alone takes, without the signalling round trip.
  double first_keyframe_after_answer_ms = -1;
  StreamReport video, audio;
  uint64_t window_video_packets = 0;  // during the hold window
  uint64_t window_video_bytes = 0;
  int64_t window_video_lost = 0;  // expected from the sequence numbers, never received
  // Video kbit/s received, and the share of packets lost (per mille), in
  // each report interval (about a second) of the window: a viewer moved
  // between layers shows as steps, and what the server sent as received /
  // (1 - lost) even where the link carries less.
  std::vector<uint32_t> window_kbps;
  std::vector<uint16_t> window_loss_permille;
  bool remb = false;  // offered, answered, and sent
  uint64_t remb_sent = 0;
  uint64_t rtx_packets = 0;  // on the server's RTX stream (padding)
  uint64_t rtx_bytes = 0;
  uint64_t estimate = 0;  // bits/s, the last REMB's
  bool verified = false;
  uint64_t verified_packets = 0;
  uint64_t verify_failures = 0;
  uint64_t rtcp_received = 0;
  uint64_t duplicates = 0;  // dropped, as SRTP replay protection would
  unsigned consent_sent = 0;
  unsigned consent_answered = 0;
  bool vanished = false;  // left without DELETE or close_notify (--vanish)
  unsigned refusals = 0;  // offers sent again after a Retry-After
  std::string last_refusal;
};

class Viewer : public EventLoop::Receiver {
 public:
  struct Config {
    EventLoop *loop;
    std::shared_ptr<wb::DtlsIdentity> identity;
    std::string local_address;
    int video_pt;  // in our WHEP offers
    int audio_pt;
    int64_t pli_interval = 0;  // ns; 0: a PLI on connecting only
    // Viewer i binds port_base + i (a shaper can tell viewers apart by
    // port); 0: a port the system picks.
    uint16_t port_base = 0;
    // Offer goog-remb and, when the answer has it too, send our estimate
    // (estimate.h) with every regular receiver report.
    bool remb = false;
    EstimateRule estimate;
    // Offer abs-send-time, as browsers do: the server then writes it into
    // every packet (its cost is what this measures; we only skip it).
    bool abs_send_time = false;
  };
  enum class State { Idle, Signalling, Ice, Dtls, Connected, Leaving, Failed, Closed };

  Viewer(int index, bool verify, const Config &config);
  ~Viewer() override;
  int index() const { return index_; }
  State state() const { return state_; }

  // Joining, in this order. False/empty: the viewer failed (see report()).
  bool open();
  // WHEP: we offer, the server answers.
  std::string offer();
  void on_answer(const std::string &sdp);
  // Janus: the server offers, we answer, then start ICE once it has our answer.
  std::string answer(const std::string &offer_sdp);
  void start_ice();
  // When the first signalling request left: every time is measured from it.
  void signalling_started(int64_t when) { signalling_started_ = when; }
  // The server said "not now" (409, 429, 503 with Retry-After); the offer
  // goes again.
  void refused_for_now(const std::string &why) {
    ++refusals_;
    last_refusal_ = why;
  }
  void fail(const std::string &why);
  // Leaving: from now on the server ending the session is expected, not a
  // failure. Then close(): close_notify, no more timers, socket closed.
  // Stats stay.
  void leave();
  void close();
  // Leaving as a killed tab or a lost network does: the socket closes, and
  // the server hears nothing (no close_notify; the caller sends no DELETE).
  void vanish();
  bool vanished() const { return vanished_; }
  // After close() or vanish(): frees the DTLS and SRTP state, keeping the
  // report, so that a run of thousands of viewers holds only the live ones'.
  void release();

  // Done joining: failed, or connected and receiving every negotiated
  // medium (or waited 5 s for that).
  bool settled(int64_t now) const;
  // Signalling, ICE or DTLS still under way, and what it waits for.
  bool joining() const { return state_ == State::Signalling || state_ == State::Ice || state_ == State::Dtls; }
  std::string waiting_for() const;
  bool media_flowing() const {
    return (remote_.video_pt < 0 || video_.started()) && (remote_.audio_pt < 0 || audio_.started());
  }
  bool has_media() const { return first_packet_at_ != 0; }
  int64_t joined_at() const { return opened_at_; }
  uint64_t packets() const { return video_.packets() + audio_.packets(); }
  uint64_t lost() const { return uint64_t(video_.lost() + audio_.lost()); }
  void begin_window();
  void end_window();
  ViewerReport report() const;

  // Whole datagrams while handshaking and for the verified sample; else
  // the head is enough (see on_rtp()).
  bool wants_whole_datagrams() const override { return verify_ || state_ != State::Connected; }
  void on_datagram(uint8_t *data, size_t len, size_t wire_len, const sockaddr_in &from, int64_t arrival) override;

 private:
  void send(const uint8_t *data, size_t len, const sockaddr_in &to) { socket_.send_to(data, len, to); }
  void shut_down(State final_state);
  bool negotiate(const std::string &sdp, bool is_offer, std::vector<LocalMedia> *answer);
  void start_dtls();
  void dtls_done(int64_t arrival);
  void on_rtp(uint8_t *data, size_t len, size_t wire_len, int64_t arrival);
  void on_rtcp(uint8_t *data, size_t len, int64_t arrival);
  void record_interval(int64_t now);
  bool sends_remb() const { return config_.remb && remote_.video_remb && remote_.video_pt >= 0; }
  void verify(uint8_t *data, size_t len);
  // `with_remb`: a regular report, which also brings the estimate up to date.
  void send_rtcp(bool with_pli, bool with_remb = false);
  void service();     // runs whatever timer is due
  void reschedule();  // arms the loop timer for our next deadline

  const int index_;
  const bool verify_;
  Config config_;
  State state_ = State::Idle;
  std::string failure_;
  unsigned refusals_ = 0;  // offers the server asked us to send again
  std::string last_refusal_;
  UdpSocket socket_;
  IceCredentials local_ice_;
  std::unique_ptr<IceAgent> ice_;
  std::unique_ptr<wb::DtlsEndpoint> dtls_;
  SrtpSession srtp_in_;
  SrtpSession srtp_out_;
  SrtpPayloadPeek peek_;  // for the keyframe search
  // The server's sender reports, read for their NTP times, so that our
  // receiver reports echo them (LSR, DLSR) and the server can measure round
  // trips, as a browser's would. SRTCP on OpenSSL: cheap for every viewer.
  std::unique_ptr<wb::SrtcpContext> rtcp_in_;
  struct LastSenderReport {
    uint32_t ssrc = 0;
    uint32_t ntp_middle = 0;  // the middle 32 bits of its NTP timestamp
    int64_t arrival = 0;      // loop time, ns
  };
  LastSenderReport last_sr_[2];  // video, audio
  Negotiated remote_;
  uint32_t local_ssrc_;
  std::string cname_;
  bool pli_pending_ = false;  // sent as soon as the video SSRC is known
  bool vanished_ = false;

  StreamStats video_{90000};
  StreamStats audio_{48000};
  // The server's RTX stream: padding that probes our link (and
  // retransmissions, from a server that sends them there). Counted into
  // our estimate and reported on, as a browser does; not video.
  StreamStats rtx_{90000};
  H264KeyframeSearch keyframe_;
  uint64_t verified_packets_ = 0;
  uint64_t verify_failures_ = 0;
  uint64_t rtcp_received_ = 0;
  uint64_t duplicates_ = 0;
  struct Totals {
    uint64_t packets = 0, bytes = 0;
    int64_t expected = 0;
  };
  Totals window_start_, window_;
  bool in_window_ = false;
  std::vector<uint32_t> window_kbps_;
  std::vector<uint16_t> window_loss_permille_;
  Totals interval_;  // video totals at the last regular report
  int64_t interval_start_ = 0;
  ReceiveEstimator estimator_;
  uint64_t remb_sent_ = 0;

  int64_t opened_at_ = 0;
  int64_t signalling_started_ = 0;
  int64_t answered_at_ = 0;
  int64_t connected_at_ = 0;
  int64_t first_packet_at_ = 0;
  int64_t first_keyframe_at_ = 0;
  int64_t next_report_ = INT64_MAX;
  int64_t next_pli_ = INT64_MAX;
  int64_t timer_at_ = INT64_MAX;  // when our pending loop timer fires
  uint64_t timer_generation_ = 0;
};

}  // namespace load
