// One session with whatever feeds a relay: an upstream WHEP node we pull
// from (we offer, recvonly), or a WHIP publisher (it offers, we answer).
// It owns the transport; the RTP pads it produces go to the relay's
// splices, which outlive it.
#pragma once

#include <gst/gst.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "peer/peerconnection.h"
#include "rtp/rtpcodec.h"
#include "viewer/offer.h"

namespace wb {

// The media an upstream's answer brings ("video", "audio"), in m-line
// order: a section answered with port 0 or inactive brings nothing. The
// answer is whatever the upstream URL sent back.
std::vector<std::string> answered_media(const std::string &answer_sdp);

class UpstreamSession {
 public:
  // pad: an RTP source pad with caps (media=video|audio); webrtcbin thread.
  using PadListener = std::function<void(GstPad *pad)>;
  using StateListener = PeerConnection::StateListener;
  using Deadline = PeerConnection::Deadline;

  UpstreamSession(const std::string &name, GstBin *bin, const TransportConfig &config, unsigned latency_ms,
                  StateListener on_state, PadListener on_pad);
  ~UpstreamSession();
  UpstreamSession(const UpstreamSession &) = delete;
  UpstreamSession &operator=(const UpstreamSession &) = delete;

  // Pull: a recvonly offer for any of `video` codecs (none: no video m-line)
  // and Opus audio. Returns the SDP, or "" with *error set.
  std::string make_offer(const std::vector<Codec> &video, bool audio, Deadline deadline, std::string *error);
  std::string accept_answer(const std::string &answer_sdp);
  // Media the negotiation settled on ("video", "audio"), in m-line order.
  std::vector<std::string> media() const { return media_; }

  // Ingest: answers a publisher's checked offer, receiving only the chosen
  // codec per m-line. Returns the SDP, or "" with *error set.
  std::string answer(const std::string &offer_sdp, const OfferCheck &check, Deadline deadline,
                     std::string *error);

  gint64 created_us() const { return created_us_; }
  void close();

 private:
  // Only pads of transceivers we made reach the relay: webrtcbin makes its
  // own for m-lines we refused, and their media must not take over a splice.
  void add_recvonly_transceiver(GstCaps *caps);
  struct Ours;

  PeerConnection peer_;
  std::shared_ptr<Ours> ours_;
  GstBin *bin_;
  std::vector<std::string> media_;
  gint64 created_us_;
};

}  // namespace wb
