// The SDP side of ICE-lite viewers: whether an offer can be served from the
// shared port, and the answer we write for it ourselves (no webrtcbin).
// Pure functions of SDP text, unit-tested without a pipeline.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "viewer/offer.h"

namespace wb {

struct LiteOffer {
  std::string problem;  // empty: the offer can be served over ICE-lite
  std::string remote_fingerprint;  // sha-256 hex pairs
  bool we_are_dtls_server = true;  // the offer says actpass or active
  std::string ice_ufrag;  // the viewer's: our consent checks carry them
  std::string ice_pwd;
};

// An ICE-lite viewer has one transport for all its media, multiplexed with
// its RTCP, and proves its DTLS certificate with a sha-256 fingerprint.
LiteOffer read_lite_offer(const std::string &offer_sdp, const OfferCheck &check);

// A host candidate of ours: UDP, or passive TCP (RFC 6544).
struct LiteCandidate {
  std::string address;
  uint16_t port;
  bool tcp = false;
};

struct LiteAnswerParams {
  std::string ice_ufrag;
  std::string ice_pwd;
  std::string fingerprint;  // ours, sha-256
  bool dtls_server = true;
  std::vector<LiteCandidate> candidates;
  std::string cname;
  std::vector<uint32_t> ssrcs;  // per m-line of the offer; used for accepted ones
  // Per m-line: the SSRC of our RTX stream (0: none), for a video m-line
  // whose offer has RTX (MediaChoice::rtx_payload_type).
  std::vector<uint32_t> rtx_ssrcs;
};

// The answer: every m-line of the offer in order, the accepted ones
// bundled, sendonly, with the chosen payload type, and our SSRC (and RTX
// with its own SSRC, when the offer has RTX for that type); the others
// rejected with port 0 (the first of the offer's BUNDLE group: kept in the
// group, inactive), yet with our transport attributes and the first offered
// codec.
std::string write_lite_answer(const std::string &offer_sdp, const OfferCheck &check, const LiteAnswerParams &params);

}  // namespace wb
