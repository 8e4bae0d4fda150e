// One viewer: its transport (a place on the shared ICE-lite port, or a
// webrtcbin of its own), its fan-out subscriptions, and everything else it
// holds. The session owns all of its resources and releases them in
// close(), in one place.
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

#include "fanout/fanout.h"
#include "signalling/server.h"
#include "transport/iceliteport.h"
#include "viewer/offer.h"
#include "viewer/viewertransport.h"

namespace wb {

enum class ViewerState { Negotiating, Connected, Closed };

class ViewerSession {
 public:
  // Reports transport state changes; called from the transport's threads.
  using StateListener = std::function<void(const std::string &id, TransportState)>;
  using Answer = ViewerTransport::Answer;

  // `lite_port`: serve the viewer from that shared port when its offer
  // allows (else, and when null, through a webrtcbin of its own); its media
  // is then sent by a shard of `senders`.
  // `direct_send`: see start_media().
  ViewerSession(std::string id, GstBin *parent, const TransportConfig &config,
                std::shared_ptr<IceLitePort> lite_port, std::shared_ptr<SenderPool> senders, bool direct_send,
                StateListener listener);
  ~ViewerSession();
  ViewerSession(const ViewerSession &) = delete;
  ViewerSession &operator=(const ViewerSession &) = delete;

  // Builds the transport and answers the checked offer, subscribing to one
  // fan-out per accepted medium. The choice of transport is made here, once.
  // Blocks up to `timeout`; must not run on a webrtcbin thread.
  // `admit_webrtcbin` is asked before a webrtcbin is built (each costs
  // threads and sockets); false answers 503.
  Answer negotiate(const std::string &offer_sdp, const OfferCheck &offer, WbFanout *video, WbFanout *audio,
                   std::chrono::milliseconds timeout, const std::function<bool()> &admit_webrtcbin);

  // Transport connected: start delivery (each subscription waits for a
  // keyframe). On the ICE-lite port the fan-out always sends the media
  // itself. On a webrtcbin, with direct send, and when webrtcbin can give a
  // direct route (keys and a non-relayed pair), the fan-out sends it too;
  // otherwise it goes through webrtcbin. The transport chooses, once.
  void start_media();
  // A relay child: its keyframe requests speak for its own viewers' joins,
  // so no per-viewer back-off applies to them; and it serves a whole
  // subtree, whose video one lossy report window of its link must not move
  // down or pause: it stays on layer 0 unless set_video_layer() moves it.
  // After negotiate().
  void mark_relay_child();
  bool sends_direct() const { return sends_direct_.load(); }
  // Whether the viewer has (or is about to get) a webrtcbin of its own. The
  // audience marks it when it admits one, under its own lock, so that
  // concurrent admissions count each other.
  bool uses_webrtcbin() const { return webrtcbin_.load(); }
  void mark_webrtcbin() { webrtcbin_.store(true); }
  // Ends the subscriptions, then releases the transport. Idempotent; not on
  // a webrtcbin thread.
  void close();

  const std::string &id() const { return id_; }
  ViewerState state() const { return state_.load(); }
  // Monotonic time (µs) of the last packet received from the viewer, or of
  // the answer if nothing came yet.
  gint64 last_heard_us() const;
  gint64 created_us() const { return created_us_; }
  bool has_keyframe() const;
  // Pins the viewer's video to `layer` (a fan-out layer index), moving at
  // that layer's next keyframe; -1 gives the choice back to its feedback.
  // False when there is no such layer or its video cannot move (a
  // webrtcbin of its own gets layer 0). Any thread.
  bool set_video_layer(int layer);
  // The WHEP "layers" event for its video (empty without video): the
  // layer it is sent and the one it moves to, paused, pinned, its codec,
  // the estimate its feedback gives, and its codec's layers with their
  // rates. Any thread.
  SessionHandler::LayersEvent layers_event() const;
  // A "viewer-stats" structure (transfer full) with the fields documented
  // on viewermanager's get-viewer-stats. Any thread; cheap: it takes locks
  // held only briefly and never waits for webrtcbin.
  GstStructure *stats() const;

 private:
  const std::string id_;
  GstBin *parent_;
  const TransportConfig config_;
  StateListener listener_;
  std::shared_ptr<IceLitePort> lite_port_;
  std::shared_ptr<SenderPool> senders_;
  // Set by negotiate(), before the session's id is handed out.
  std::unique_ptr<ViewerTransport> transport_;
  std::vector<Subscription> subscriptions_;
  const bool direct_send_;
  std::atomic<bool> sends_direct_{false};
  std::atomic<bool> webrtcbin_{false};
  std::atomic<ViewerState> state_{ViewerState::Negotiating};
  gint64 created_us_;
  mutable std::mutex mutex_;
  bool closed_ = false;
};

}  // namespace wb
