// How one viewer's media and feedback travel: a place on the shared
// ICE-lite port (LiteViewerTransport), or a webrtcbin of its own for offers
// the port cannot serve (WebrtcbinViewerTransport). ViewerSession chooses
// one when it answers and otherwise only talks to this interface; each
// implementation reports its state in our own terms (TransportState).
#pragma once

#include <gst/gst.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "fanout/fanout.h"
#include "peer/peerconnection.h"
#include "transport/iceliteport.h"
#include "viewer/liteanswer.h"
#include "layers/layerchoice.h"
#include "viewer/offer.h"

namespace wb {

enum class TransportState { Connecting, Connected, Failed, Closed };

// A viewer's subscription to one fan-out (one accepted medium). It holds
// the fan-out: an application may release the manager's pad for a medium
// while viewers still watch, and their sessions unsubscribe later.
struct Subscription {
  std::shared_ptr<WbFanout> fanout;
  SubscriberId id;
  uint32_t ssrc;
  uint32_t clock_rate;
  bool video;
  Codec codec;  // what the viewer decodes: the layers it may be moved between
  // Video: which layer the viewer's network carries, from its feedback
  // (only viewers on the ICE-lite port give it; the others stay on layer 0).
  std::shared_ptr<LayerChoice> layers;
  // Video on the ICE-lite port, when the offer has RTX: our RTX stream,
  // which carries the padding that probes the viewer's link (0: none).
  uint32_t rtx_ssrc = 0;
};

class ViewerTransport {
 public:
  // Called from the transport's own threads.
  using StateListener = std::function<void(TransportState)>;
  struct Answer {
    int status = 0;  // 0: answered, else an HTTP status (400, 500, 504)
    std::string sdp;
    std::string error;
  };

  virtual ~ViewerTransport() = default;

  // "ice-lite" or "webrtcbin", as get-viewer-stats reports it.
  virtual const char *path() const = 0;
  // Subscribes to the fan-out of each accepted medium (appending to
  // `subscriptions`) and answers the offer; may block until `deadline`.
  virtual Answer answer(const std::string &offer_sdp, const OfferCheck &offer, WbFanout *video, WbFanout *audio,
                        std::chrono::steady_clock::time_point deadline, std::vector<Subscription> *subscriptions) = 0;
  // The transport connected: starts delivery to the subscriptions, choosing
  // their sender once. Returns whether the fan-out sends the media itself.
  virtual bool start_media(const std::vector<Subscription> &subscriptions) = 0;
  // Monotonic time (µs) of the last packet received from the viewer (0:
  // none yet).
  virtual gint64 last_heard_us() const = 0;
  // After the subscriptions ended: releases the transport.
  virtual void close() = 0;
  // Adds what the transport knows (RTCP, consent, per stream) to a
  // viewer-stats structure.
  virtual void add_stats(GstStructure *stats, const std::vector<Subscription> &subscriptions) const = 0;
};

// Subscribes to the fan-out of each accepted medium of `offer`, with a pad
// linked to `sink_for()` when it is set; sets `ssrcs` by m-line index, and
// without a pad `rtx_ssrcs` too (the video's RTX stream, when offered). ""
// when all went well.
std::string subscribe_to_fanouts(const OfferCheck &offer, WbFanout *video, WbFanout *audio,
                                 const std::function<GstPad *()> &sink_for, std::vector<Subscription> *subscriptions,
                                 std::vector<uint32_t> *ssrcs, std::vector<uint32_t> *rtx_ssrcs = nullptr);

class LiteViewerTransport : public ViewerTransport {
 public:
  LiteViewerTransport(std::string id, std::shared_ptr<IceLitePort> port, std::shared_ptr<SenderPool> senders,
                      LiteOffer offer, StateListener listener);
  const char *path() const override { return "ice-lite"; }
  Answer answer(const std::string &offer_sdp, const OfferCheck &offer, WbFanout *video, WbFanout *audio,
                std::chrono::steady_clock::time_point deadline, std::vector<Subscription> *subscriptions) override;
  bool start_media(const std::vector<Subscription> &subscriptions) override;
  gint64 last_heard_us() const override;
  void close() override;
  void add_stats(GstStructure *stats, const std::vector<Subscription> &subscriptions) const override;

 private:
  const std::string id_;
  const std::shared_ptr<IceLitePort> port_;
  const std::shared_ptr<SenderPool> senders_;
  const LiteOffer offer_;
  StateListener listener_;
  std::shared_ptr<LiteTransport> lite_;
};

class WebrtcbinViewerTransport : public ViewerTransport {
 public:
  // `direct_send`: once connected, the fan-out sends the media itself on
  // the socket ICE selected, when webrtcbin can give it a route.
  WebrtcbinViewerTransport(std::string id, GstBin *parent, const TransportConfig &config, bool direct_send,
                           StateListener listener);
  const char *path() const override { return "webrtcbin"; }
  Answer answer(const std::string &offer_sdp, const OfferCheck &offer, WbFanout *video, WbFanout *audio,
                std::chrono::steady_clock::time_point deadline, std::vector<Subscription> *subscriptions) override;
  bool start_media(const std::vector<Subscription> &subscriptions) override;
  gint64 last_heard_us() const override;
  void close() override;
  // Nothing: the rest would wait on webrtcbin.
  void add_stats(GstStructure *, const std::vector<Subscription> &) const override {}

 private:
  const std::string id_;
  GstBin *parent_;
  const TransportConfig config_;
  const bool direct_send_;
  StateListener listener_;
  std::unique_ptr<PeerConnection> peer_;
};

}  // namespace wb
