#include "sdp.h"

#include <strings.h>

#include <arpa/inet.h>
#include <openssl/rand.h>

#include <algorithm>
#include <sstream>

namespace load {

namespace {

// Host candidate priority (RFC 8445 5.1.2.1): type preference 126, local
// preference 65535, component 1.
constexpr uint32_t kHostPriority = (126u << 24) | (65535u << 8) | 255u;

constexpr char kH264Fmtp[] = "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f";

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  return s;
}

bool starts_with(const std::string &s, const char *prefix) { return s.rfind(prefix, 0) == 0; }

std::vector<std::string> split(const std::string &s) {
  std::istringstream in(s);
  std::vector<std::string> words;
  std::string w;
  while (in >> w) words.push_back(w);
  return words;
}

// "a=candidate:foundation component transport priority address port typ type ..."
bool parse_candidate(const std::string &value, SdpCandidate *c) {
  auto w = split(value);
  if (w.size() < 8 || w[6] != "typ") return false;
  c->component = std::atoi(w[1].c_str());
  c->transport = lower(w[2]);
  c->priority = uint32_t(std::strtoul(w[3].c_str(), nullptr, 10));
  c->address = w[4];
  c->port = uint16_t(std::atoi(w[5].c_str()));
  c->type = w[7];
  return true;
}

// Adds one attribute line ("name:value" after "a=") to `m`.
void parse_attribute(const std::string &line, SdpMedia *m) {
  size_t colon = line.find(':');
  std::string name = line.substr(0, colon);
  std::string value = colon == std::string::npos ? "" : line.substr(colon + 1);
  if (name == "mid") {
    m->mid = value;
  } else if (name == "ice-ufrag") {
    m->ufrag = value;
  } else if (name == "ice-pwd") {
    m->pwd = value;
  } else if (name == "setup") {
    m->setup = value;
  } else if (name == "fingerprint") {
    auto w = split(value);
    if (w.size() == 2) {
      m->fingerprint_algorithm = lower(w[0]);
      m->fingerprint = w[1];
    }
  } else if (name == "candidate") {
    SdpCandidate c;
    if (parse_candidate(value, &c)) m->candidates.push_back(c);
  } else if (name == "rtpmap" || name == "fmtp") {
    size_t space = value.find(' ');
    if (space == std::string::npos) return;
    int pt = std::atoi(value.c_str());
    (name == "rtpmap" ? m->rtpmap : m->fmtp)[pt] = value.substr(space + 1);
  } else if (name == "rtcp-fb") {
    size_t space = value.find(' ');
    if (space == std::string::npos) return;
    int pt = value[0] == '*' ? -1 : std::atoi(value.c_str());
    m->rtcp_fb[pt].push_back(lower(value.substr(space + 1)));
  } else if (name == "sendrecv" || name == "sendonly" || name == "recvonly" || name == "inactive") {
    m->direction = name;
  } else if (name == "ssrc") {
    uint32_t ssrc = uint32_t(std::strtoul(value.c_str(), nullptr, 10));
    if (std::find(m->ssrcs.begin(), m->ssrcs.end(), ssrc) == m->ssrcs.end()) m->ssrcs.push_back(ssrc);
  }
}

bool fmtp_has(const std::string &fmtp, const std::string &param) {
  std::string f = ";" + lower(fmtp);
  f.erase(std::remove(f.begin(), f.end(), ' '), f.end());
  return f.find(";" + param) != std::string::npos;
}

// The payload type for `encoding` ("h264", "opus"): for H.264 only with
// packetization-mode=1, the constrained-baseline one first.
int choose_payload_type(const SdpMedia &m, const std::string &encoding) {
  int best = -1;
  for (const auto &f : m.formats) {
    int pt = std::atoi(f.c_str());
    auto map = m.rtpmap.find(pt);
    if (map == m.rtpmap.end() || !starts_with(lower(map->second), (encoding + "/").c_str())) continue;
    if (encoding != "h264") return pt;
    auto fmtp = m.fmtp.find(pt);
    std::string params = fmtp == m.fmtp.end() ? "" : fmtp->second;
    if (!fmtp_has(params, "packetization-mode=1")) continue;
    if (fmtp_has(params, "profile-level-id=42e01f")) return pt;
    if (best < 0) best = pt;
  }
  return best;
}

// How many leading bits two IPv4 addresses share (32: the same address).
int common_prefix(const in_addr &a, const in_addr &b) {
  uint32_t differ = ntohl(a.s_addr) ^ ntohl(b.s_addr);
  return differ ? __builtin_clz(differ) : 32;
}

// The one remote candidate we check: an IPv4 UDP host candidate of
// component 1, `prefer` if it is there, else the one nearest it (the longest
// common prefix: a server on several subnets, e.g. one per shaped group of
// viewers, is reached on ours), else the highest priority.
bool pick_candidate(const SessionDescription &d, const std::string &prefer, sockaddr_in *out) {
  const SdpCandidate *best = nullptr;
  int best_prefix = -1;
  in_addr ours{};
  const bool have_ours = inet_pton(AF_INET, prefer.c_str(), &ours) == 1;
  for (const auto &m : d.media)
    for (const auto &c : m.candidates) {
      in_addr a;
      if (c.component != 1 || c.transport != "udp" || c.type != "host" || inet_pton(AF_INET, c.address.c_str(), &a) != 1)
        continue;
      const int prefix = have_ours ? common_prefix(a, ours) : 0;
      bool better = !best || prefix > best_prefix || (prefix == best_prefix && c.priority > best->priority);
      if (better) {
        best = &c;
        best_prefix = prefix;
      }
    }
  if (!best) return false;
  *out = sockaddr_in{};
  out->sin_family = AF_INET;
  out->sin_port = htons(best->port);
  inet_pton(AF_INET, best->address.c_str(), &out->sin_addr);
  return true;
}

// ICE and DTLS parameters of the (bundled) transport: the first media
// section's that is not rejected.
bool read_transport(const SessionDescription &d, const std::string &prefer, Negotiated *out, std::string *error) {
  auto m = std::find_if(d.media.begin(), d.media.end(), [](const SdpMedia &s) { return s.port != 0; });
  if (m == d.media.end()) {
    *error = "SDP: every media section is rejected";
    return false;
  }
  if (m->ufrag.empty() || m->pwd.empty()) {
    *error = "SDP: no ICE credentials";
    return false;
  }
  if (m->fingerprint_algorithm != "sha-256") {
    *error = "SDP: no sha-256 fingerprint";
    return false;
  }
  if (m->setup == "active") {  // we are always the DTLS client
    *error = "SDP: a=setup:active, but so are we";
    return false;
  }
  if (!pick_candidate(d, prefer, &out->remote_candidate)) {
    *error = "SDP: no IPv4 UDP host candidate";
    return false;
  }
  out->remote_ice = {m->ufrag, m->pwd};
  out->remote_fingerprint = m->fingerprint;
  return true;
}

bool has_feedback(const SdpMedia &m, int pt, const std::string &feedback) {
  for (int key : {pt, -1}) {
    auto it = m.rtcp_fb.find(key);
    if (it != m.rtcp_fb.end() && std::find(it->second.begin(), it->second.end(), feedback) != it->second.end())
      return true;
  }
  return false;
}

const SdpMedia *find_kind(const SessionDescription &d, const std::string &kind) {
  for (const auto &m : d.media)
    if (m.kind == kind && m.port != 0) return &m;
  return nullptr;
}

}  // namespace

bool SessionDescription::parse(const std::string &text, std::string *error) {
  SdpMedia session;  // session-level attributes, inherited by every section
  SdpMedia *current = &session;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (starts_with(line, "m=")) {
      auto w = split(line.substr(2));
      if (w.size() < 4) {
        *error = "SDP: bad m-line: " + line;
        return false;
      }
      SdpMedia m;
      m.kind = w[0];
      m.port = uint16_t(std::atoi(w[1].c_str()));
      m.proto = w[2];
      m.formats.assign(w.begin() + 3, w.end());
      media.push_back(m);
      current = &media.back();
    } else if (starts_with(line, "a=")) {
      parse_attribute(line.substr(2), current);
    }
  }
  if (media.empty()) {
    *error = "SDP: no media sections";
    return false;
  }
  for (auto &m : media) {
    if (m.ufrag.empty()) m.ufrag = session.ufrag;
    if (m.pwd.empty()) m.pwd = session.pwd;
    if (m.fingerprint.empty()) {
      m.fingerprint_algorithm = session.fingerprint_algorithm;
      m.fingerprint = session.fingerprint;
    }
    if (m.setup.empty()) m.setup = session.setup;
    if (m.direction.empty()) m.direction = session.direction;
  }
  return true;
}

std::string write_description(const LocalTransport &local, const std::vector<LocalMedia> &media) {
  uint64_t session_id;
  RAND_bytes(reinterpret_cast<unsigned char *>(&session_id), sizeof session_id);
  std::ostringstream s;
  s << "v=0\r\no=- " << (session_id >> 2) << " 2 IN IP4 " << local.address << "\r\ns=-\r\nt=0 0\r\n";
  s << "a=group:BUNDLE";
  for (const auto &m : media)
    if (!m.rejected) s << ' ' << m.mid;
  s << "\r\n";
  for (const auto &m : media) {
    if (m.rejected) {
      s << "m=" << m.kind << " 0 " << m.proto;
      for (const auto &f : m.formats) s << ' ' << f;
      s << "\r\nc=IN IP4 0.0.0.0\r\na=mid:" << m.mid << "\r\n";
      continue;
    }
    s << "m=" << m.kind << ' ' << local.port << ' ' << m.proto << ' ' << m.pt;
    if (m.rtx_pt >= 0) s << ' ' << m.rtx_pt;
    s << "\r\n"
      << "c=IN IP4 " << local.address << "\r\n"
      << "a=candidate:1 1 udp " << kHostPriority << ' ' << local.address << ' ' << local.port << " typ host\r\n"
      << "a=end-of-candidates\r\n"
      << "a=ice-ufrag:" << local.ice.ufrag << "\r\n"
      << "a=ice-pwd:" << local.ice.pwd << "\r\n"
      << "a=fingerprint:sha-256 " << local.fingerprint << "\r\n"
      << "a=setup:active\r\n"  // we are the DTLS client, in offers and answers alike
      << "a=mid:" << m.mid << "\r\n"
      << "a=recvonly\r\na=rtcp-mux\r\na=rtcp-rsize\r\n"
      << "a=rtpmap:" << m.pt << ' ' << m.rtpmap << "\r\n";
    if (m.video_feedback) s << "a=rtcp-fb:" << m.pt << " nack pli\r\na=rtcp-fb:" << m.pt << " ccm fir\r\n";
    if (m.remb) s << "a=rtcp-fb:" << m.pt << " goog-remb\r\n";
    if (!m.fmtp.empty()) s << "a=fmtp:" << m.pt << ' ' << m.fmtp << "\r\n";
    if (m.rtx_pt >= 0) s << "a=rtpmap:" << m.rtx_pt << " rtx/90000\r\na=fmtp:" << m.rtx_pt << " apt=" << m.pt << "\r\n";
    if (m.abs_send_time_id)
      s << "a=extmap:" << m.abs_send_time_id << " http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time\r\n";
  }
  return s.str();
}

std::vector<LocalMedia> whep_offer_media(int video_pt, int audio_pt, bool remb, bool abs_send_time) {
  LocalMedia video;
  video.kind = "video";
  video.mid = "0";
  video.pt = video_pt;
  video.rtpmap = "H264/90000";
  video.fmtp = kH264Fmtp;
  video.video_feedback = true;
  video.remb = remb;
  if (remb) video.rtx_pt = video_pt + 1 == audio_pt || video_pt == 127 ? video_pt - 1 : video_pt + 1;
  LocalMedia audio;
  audio.kind = "audio";
  audio.mid = "1";
  audio.pt = audio_pt;
  audio.rtpmap = "opus/48000/2";
  audio.fmtp = "minptime=10;useinbandfec=1";
  // Chromium's id, on both sections, as it offers it.
  if (abs_send_time) video.abs_send_time_id = audio.abs_send_time_id = 2;
  return {video, audio};
}

bool read_answer(const SessionDescription &answer, const std::string &prefer, Negotiated *out, std::string *error) {
  if (!read_transport(answer, prefer, out, error)) return false;
  // A server without the medium rejects its m-line (port 0) or, as webrtcbin
  // does, answers it inactive with the codec still listed: nothing will come.
  auto sends = [](const SdpMedia *m) {
    return m && m->port != 0 && m->direction != "inactive" && m->direction != "recvonly";
  };
  if (const SdpMedia *v = find_kind(answer, "video"); sends(v)) {
    out->video_pt = choose_payload_type(*v, "h264");
    if (!v->ssrcs.empty()) out->video_ssrc = v->ssrcs.front();
    out->video_remb = out->video_pt >= 0 && has_feedback(*v, out->video_pt, "goog-remb");
    for (const auto &[pt, map] : v->rtpmap) {
      auto apt = v->fmtp.find(pt);
      if (out->video_pt >= 0 && strncasecmp(map.c_str(), "rtx/", 4) == 0 && apt != v->fmtp.end() &&
          apt->second == "apt=" + std::to_string(out->video_pt))
        out->rtx_pt = pt;
    }
  }
  if (const SdpMedia *a = find_kind(answer, "audio"); sends(a)) out->audio_pt = choose_payload_type(*a, "opus");
  if (out->video_pt < 0 && out->audio_pt < 0) {
    *error = "SDP: the answer accepts neither H.264 video nor Opus audio";
    return false;
  }
  return true;
}

bool read_offer(const SessionDescription &offer, const std::string &prefer, Negotiated *out,
                std::vector<LocalMedia> *answer, std::string *error) {
  if (!read_transport(offer, prefer, out, error)) return false;
  for (const auto &m : offer.media) {
    LocalMedia local;
    local.kind = m.kind;
    local.mid = m.mid;
    local.proto = m.proto;
    local.formats = m.formats;
    bool video = m.kind == "video" && out->video_pt < 0;
    bool audio = m.kind == "audio" && out->audio_pt < 0;
    int pt = m.port != 0 && (video || audio) ? choose_payload_type(m, video ? "h264" : "opus") : -1;
    if (pt < 0) {
      local.rejected = true;
      answer->push_back(local);
      continue;
    }
    local.pt = pt;
    local.rtpmap = m.rtpmap.at(pt);
    auto fmtp = m.fmtp.find(pt);
    if (fmtp != m.fmtp.end()) local.fmtp = fmtp->second;
    local.video_feedback = video;
    (video ? out->video_pt : out->audio_pt) = pt;
    if (video && !m.ssrcs.empty()) out->video_ssrc = m.ssrcs.front();
    if (video) out->video_remb = has_feedback(m, pt, "goog-remb");
    answer->push_back(local);
  }
  if (out->video_pt < 0 && out->audio_pt < 0) {
    *error = "SDP: the offer has neither H.264 (packetization-mode=1) nor Opus";
    return false;
  }
  return true;
}

}  // namespace load
