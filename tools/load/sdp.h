// The SDP we write (a browser-like recvonly offer for WHEP, or the answer to
// Janus's offer) and what we need from the other side's: ICE credentials,
// one candidate to check, the DTLS fingerprint, payload types and SSRCs.
#pragma once

#include <netinet/in.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "ice.h"

namespace load {

struct SdpCandidate {
  int component = 0;
  std::string transport;  // "udp", "tcp" (lower-cased)
  uint32_t priority = 0;
  std::string address;
  uint16_t port = 0;
  std::string type;  // host, srflx, ...
};

struct SdpMedia {
  std::string kind;  // video, audio, application, ...
  uint16_t port = 0;
  std::string proto;
  std::vector<std::string> formats;
  std::string mid;
  std::map<int, std::string> rtpmap;  // "H264/90000"
  std::map<int, std::string> fmtp;
  std::map<int, std::vector<std::string>> rtcp_fb;  // "goog-remb", "nack pli"; key -1: "*", every format
  std::vector<uint32_t> ssrcs;
  std::string direction;  // sendrecv, sendonly, recvonly, inactive; empty: none given (sendrecv)
  // Transport attributes, with session-level values filled in when the
  // media section has none.
  std::string ufrag, pwd, fingerprint_algorithm, fingerprint, setup;
  std::vector<SdpCandidate> candidates;
};

struct SessionDescription {
  std::vector<SdpMedia> media;
  bool parse(const std::string &text, std::string *error);
};

// Everything a viewer needs from the negotiation.
struct Negotiated {
  IceCredentials remote_ice;
  sockaddr_in remote_candidate{};
  std::string remote_fingerprint;  // sha-256
  int video_pt = -1;
  int audio_pt = -1;
  uint32_t video_ssrc = 0;  // for our PLI; 0: not announced, learnt from the first packet
  bool video_remb = false;  // the other side's video section has goog-remb for its payload type
  int rtx_pt = -1;          // the answer's RTX for video_pt (padding, retransmissions), -1: none
};

// Our side of the description.
struct LocalTransport {
  IceCredentials ice;
  std::string fingerprint;  // sha-256
  std::string address;
  uint16_t port = 0;
};

struct LocalMedia {
  std::string kind;
  std::string mid;
  std::string proto = "UDP/TLS/RTP/SAVPF";
  bool rejected = false;
  std::vector<std::string> formats;  // what a rejected section echoes back
  int pt = -1;
  std::string rtpmap;
  std::string fmtp;
  bool video_feedback = false;  // rtcp-fb nack pli, ccm fir
  bool remb = false;            // rtcp-fb goog-remb
  int rtx_pt = -1;              // RTX (apt=pt) offered too, -1: not
  int abs_send_time_id = 0;     // a=extmap for abs-send-time, 0: not offered
};

std::string write_description(const LocalTransport &local, const std::vector<LocalMedia> &media);

// The WHEP offer: recvonly H.264 (packetization-mode=1, 42e01f) and Opus,
// bundled, rtcp-mux, with the payload types given (a browser's are 102/111);
// with `remb`, its video offers goog-remb and RTX (payload type video_pt +
// 1) as Chromium's does, so that a server may probe with padding.
std::vector<LocalMedia> whep_offer_media(int video_pt, int audio_pt, bool remb = false, bool abs_send_time = false);

// Reads the server's answer to our offer. `prefer_address`: the candidate
// address to pick when the server offers several.
bool read_answer(const SessionDescription &answer, const std::string &prefer_address, Negotiated *out,
                 std::string *error);

// Reads an offer (Janus's) and decides our answer's sections: its H.264
// (packetization-mode=1) and Opus accepted, anything else rejected.
bool read_offer(const SessionDescription &offer, const std::string &prefer_address, Negotiated *out,
                std::vector<LocalMedia> *answer, std::string *error);

}  // namespace load
