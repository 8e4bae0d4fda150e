// One WebRTC transport: a webrtcbin configured the way every peer of ours
// needs it (bundled, UPnP off, chosen ICE addresses, no ICE-TCP), with
// blocking helpers for the offer/answer steps. Viewers, relay pulls, the
// WHIP ingest and the WHIP push all negotiate through it; what flows over
// it is their business.
//
// Handlers connected to webrtcbin hold a small shared Events object, never
// the PeerConnection itself: a handler running on a webrtcbin thread must
// never drop the last reference to its own webrtcbin.
#pragma once

#include <gst/gst.h>
#include <gst/webrtc/webrtc.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace wb {

struct TransportConfig {
  std::string stun_server;                // stun://host:port, empty for none
  std::vector<std::string> turn_servers;  // turn(s)://user:pass@host:port
  std::vector<std::string> ice_addresses; // local addresses to gather on; empty: all
};

class PeerConnection {
 public:
  // Called on webrtcbin's threads: hand real work to another thread.
  using StateListener = std::function<void(GstWebRTCPeerConnectionState)>;
  using PadListener = std::function<void(GstPad *src)>;
  using Deadline = std::chrono::steady_clock::time_point;

  PeerConnection(const std::string &name, const TransportConfig &config);
  ~PeerConnection();
  PeerConnection(const PeerConnection &) = delete;
  PeerConnection &operator=(const PeerConnection &) = delete;

  // nullptr when webrtcbin is not installed.
  GstElement *webrtcbin() const { return webrtc_; }

  // Listeners must be set before start().
  void on_state(StateListener listener);
  void on_src_pad(PadListener listener);

  // Adds the webrtcbin to `parent` and brings it to the parent's state.
  void start(GstBin *parent);

  // Each returns an empty string on success, else what went wrong.
  std::string set_remote(GstWebRTCSDPType type, const std::string &sdp);
  // Creates the offer or answer and applies it as the local description.
  std::string create_local(GstWebRTCSDPType type);
  // Without trickle ICE every candidate goes in the SDP: wait for them.
  bool wait_gathering(Deadline deadline);
  std::string local_sdp() const;

  // Monotonic time (µs) of the last packet received from the peer (RTP,
  // RTCP, DTLS), or of the call to watch_incoming(). Its silence is how a
  // peer that vanished is noticed.
  void watch_incoming();
  gint64 last_heard_us() const { return last_heard_->load(); }

  // Disconnects handlers, stops the webrtcbin and removes it from its bin.
  // Idempotent; must not run on one of webrtcbin's own threads.
  void close();

  struct Events;

 private:
  GstElement *webrtc_ = nullptr;
  GstBin *parent_ = nullptr;
  std::shared_ptr<Events> events_;
  std::vector<gulong> handlers_;
  std::shared_ptr<std::atomic<gint64>> last_heard_;
  std::mutex mutex_;
  bool watching_ = false;
  bool closed_ = false;
};

// An offer as browsers write it: webrtcbin's max-bundle offer gives every
// m-section after the first port 0 and a=bundle-only (RFC 8843), which
// some servers take for a rejected section (werift sees no audio track);
// here they get port 9 and stay in the BUNDLE group.
std::string offer_without_bundle_only(const std::string &sdp);

}  // namespace wb
