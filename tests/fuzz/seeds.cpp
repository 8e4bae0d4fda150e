// Writes the binary seed corpora (corpus/stun, rtcp, srtcp, srtp, dtls)
// from real packets: RFC 5769's STUN vectors, and what the project's own
// builders, SRTP/SRTCP contexts and DTLS endpoints send. The seeds are
// committed; this only makes them again: fuzz-seeds <tests/fuzz/corpus>.
#include <time.h>

#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "transport/dtls.h"
#include "transport/rtcp.h"
#include "transport/srtcpcontext.h"
#include "transport/stun.h"

namespace {

using Bytes = std::vector<uint8_t>;

std::string root;

void write(const std::string &harness, const std::string &name, const Bytes &bytes) {
  std::ofstream(root + "/" + harness + "/" + name, std::ios::binary)
      .write(reinterpret_cast<const char *>(bytes.data()), std::streamsize(bytes.size()));
}

Bytes cat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const Bytes &p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

// A field as fuzz::Input::chunk() reads it.
Bytes chunk(const Bytes &b) { return cat({{uint8_t(b.size() >> 8), uint8_t(b.size())}, b}); }

const Bytes kRfc5769Request = {
    0x00, 0x01, 0x00, 0x58, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87,
    0xdf, 0xae, 0x80, 0x22, 0x00, 0x10, 0x53, 0x54, 0x55, 0x4e, 0x20, 0x74, 0x65, 0x73, 0x74, 0x20, 0x63, 0x6c,
    0x69, 0x65, 0x6e, 0x74, 0x00, 0x24, 0x00, 0x04, 0x6e, 0x00, 0x01, 0xff, 0x80, 0x29, 0x00, 0x08, 0x93, 0x2f,
    0xf9, 0xb1, 0x51, 0x26, 0x3b, 0x36, 0x00, 0x06, 0x00, 0x09, 0x65, 0x76, 0x74, 0x6a, 0x3a, 0x68, 0x36, 0x76,
    0x59, 0x20, 0x20, 0x20, 0x00, 0x08, 0x00, 0x14, 0x9a, 0xea, 0xa7, 0x0c, 0xbf, 0xd8, 0xcb, 0x56, 0x78, 0x1e,
    0xf2, 0xb5, 0xb2, 0xd3, 0xf2, 0x49, 0xc1, 0xb5, 0x71, 0xa2, 0x80, 0x28, 0x00, 0x04, 0xe5, 0x7a, 0x3b, 0xcf,
};
const Bytes kRfc5769Ipv4Response = {
    0x01, 0x01, 0x00, 0x3c, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa,
    0x87, 0xdf, 0xae, 0x80, 0x22, 0x00, 0x0b, 0x74, 0x65, 0x73, 0x74, 0x20, 0x76, 0x65, 0x63, 0x74, 0x6f,
    0x72, 0x20, 0x00, 0x20, 0x00, 0x08, 0x00, 0x01, 0xa1, 0x47, 0xe1, 0x12, 0xa6, 0x43, 0x00, 0x08, 0x00,
    0x14, 0x2b, 0x91, 0xf5, 0x99, 0xfd, 0x9e, 0x90, 0xc3, 0x8c, 0x74, 0x89, 0xf9, 0x2a, 0xf9, 0xba, 0x53,
    0xf0, 0x6b, 0xe7, 0xd7, 0x80, 0x28, 0x00, 0x04, 0xc0, 0x7d, 0x4c, 0x96,
};

void stun() {
  using namespace wb::stun;
  write("stun", "rfc5769-request", cat({{0}, kRfc5769Request}));
  write("stun", "rfc5769-ipv4-response", cat({{0}, kRfc5769Ipv4Response}));
  TransactionId id = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  // A browser's check with USE-CANDIDATE, signed with RFC 5769's password.
  Writer check(kBindingRequest, id);
  check.add_string(kUsername, "uFrg:abcd");
  check.add_u32(kPriority, 0x6e7f1eff);
  check.add_u64(kIceControlling, 0x0123456789abcdefull);
  check.add(kUseCandidate, nullptr, 0);
  write("stun", "browser-check", cat({{0}, check.finish("VOkJxbRl1RmTxUk/WvJxBt")}));
  Writer error(kBindingError, id);
  error.add_error_code(401, "Unauthorized");
  write("stun", "error-401", cat({{0}, error.finish_without_integrity()}));
  // Built by the harness: key, transaction, type, integrity, attributes, flip.
  Bytes key = {4, 'p', 'a', 's', 's'};
  write("stun", "build-username", cat({{1}, key, Bytes(id.begin(), id.end()), {0x00, 0x01, 1, 2},
                                       {0x00, 0x06, 9}, Bytes{'u', 'F', 'r', 'g', ':', 'a', 'b', 'c', 'd'},
                                       {0x00, 0x24, 4, 0x6e, 0, 1, 0xff}, {0, 7, 3}}));
}

void rtcp() {
  using namespace wb::rtcp;
  const Bytes arrival = {0xe8, 0x00, 0x00, 0x00, 0x12, 0x34, 0x56, 0x78};
  auto raw = [&](const std::string &name, const Bytes &compound) { write("rtcp", name, cat({{0}, arrival, compound})); };
  Compound sr(0x11223344);
  sr.sender_report(ntp_from_unix_us(1700000000000000), 90000, 100, 120000);
  sr.sdes_cname("broadcast");
  raw("sr-sdes", sr.bytes());
  Compound rr(0xaabbccdd);
  ReportBlock block{0x11223344, 12, -3, 70000, 42, 0x12345678, 0x00010000};
  rr.receiver_report({block, block});
  rr.sdes_cname("{c3a1e8f0-0000-4000-8000-000000000000}");
  rr.pli(0x11223344);
  raw("rr-sdes-pli", rr.bytes());
  Compound pli(1);
  pli.pli(0x11223344);
  raw("pli", pli.bytes());
  // Builders we do not need for sending, written by hand: NACK (RTPFB 1,
  // two PID/BLP pairs), FIR (PSFB 4, one entry), REMB (PSFB 15),
  // transport-cc (RTPFB 15), APP, XR, and an RR with padding.
  raw("nack", {0x81, 205, 0, 4, 0, 0, 0, 1, 0x11, 0x22, 0x33, 0x44, 0x03, 0xe8, 0x80, 0x01, 0xff, 0xff, 0, 0});
  raw("fir", {0x84, 206, 0, 4, 0, 0, 0, 1, 0, 0, 0, 0, 0x11, 0x22, 0x33, 0x44, 7, 0, 0, 0});
  raw("remb", {0x8f, 206, 0, 5, 0, 0, 0, 1, 0, 0, 0, 0, 'R', 'E', 'M', 'B', 1, 0x0a, 0x12, 0x34, 0x11, 0x22, 0x33, 0x44});
  raw("twcc", {0x8f, 205, 0, 4, 0, 0, 0, 1, 0x11, 0x22, 0x33, 0x44, 0, 1, 0, 1, 0, 0, 0x10, 0, 0x20, 0x01, 0, 0});
  raw("app-xr", {0x80, 204, 0, 2, 0, 0, 0, 1, 'n', 'a', 'm', 'e', 0x80, 207, 0, 1, 0, 0, 0, 1});
  raw("rr-padding", {0xa0, 201, 0, 2, 0, 0, 0, 1, 0, 0, 0, 4});
  // Built by the harness: SSRC, parts, SR fields, blocks, CNAME, PLI target.
  write("rtcp", "build-all", cat({{1}, {0, 0, 0, 1}, {0x0f}, Bytes(20, 7), {2}, Bytes(48, 9), {0, 3}, {'a', 'b', 'c'},
                                  {0x11, 0x22, 0x33, 0x44}}));
}

const uint8_t kKeySalt[30] = {0xe1, 0xf9, 0x7a, 0x0d, 0x3e, 0x01, 0x8b, 0xe0, 0xd6, 0x4f, 0xa3, 0x2c, 0x06, 0xde, 0x41, 0x39,
                              0x0e, 0xc6, 0x75, 0xad, 0x49, 0x8a, 0xfe, 0xeb, 0xb6, 0x96, 0x0b, 0x3a, 0xab, 0xe6};

void srtcp() {
  wb::rtcp::Compound rr(0xaabbccdd);
  rr.receiver_report({{0x11223344, 0, 0, 1000, 5, 0, 0}});
  rr.pli(0x11223344);
  Bytes plain = rr.bytes();
  // Mode byte: bit 7 for GCM.
  for (auto [profile, gcm] : {std::pair{wb::SrtpProfile::Aes128CmSha1_80, uint8_t(0)},
                              std::pair{wb::SrtpProfile::AeadAes128Gcm, uint8_t(0x80)}}) {
    const std::string suffix = gcm ? "-gcm" : "";
    auto sender = wb::SrtcpContext::create(profile, kKeySalt);
    Bytes first(plain), second(plain);
    first.resize(plain.size() + sender->trailer_length());
    second.resize(first.size());
    size_t length = plain.size();
    sender->protect(first.data(), &length);
    length = plain.size();
    sender->protect(second.data(), &length);
    // Valid packets, then the first again (a replay).
    write("srtcp", "protected-rr-pli" + suffix, cat({{gcm}, chunk(first), chunk(second), chunk(first)}));
    write("srtcp", "round-trip" + suffix, cat({{uint8_t(gcm | 1)}, chunk(plain), chunk(plain)}));
    // Forged: SSRC choice, E|index, body length, body.
    write("srtcp", "forged" + suffix,
          cat({{uint8_t(gcm | 2)}, {0, 0x80, 0, 0, 1, 4, 1, 2, 3, 4}, {1, 0, 0, 0, 1, 0}, {0, 0x80, 0, 0, 3, 0},
               {19, 0x7f, 0xff, 0xff, 0xff, 0}}));
  }
}

void srtp() {
  Bytes packet = {0x80, 0x66, 0x12, 0x34, 0, 0, 0x10, 0, 0x11, 0x22, 0x33, 0x44, 0x7c, 0x85, 0xb8, 0, 0, 0};
  write("srtp", "raw-80", cat({{0}, chunk(packet), {0, 12}}));
  write("srtp", "raw-32", cat({{2}, chunk(packet), {0, 12}}));
  write("srtp", "raw-gcm", cat({{4}, chunk(packet), {0, 12}}));
  // Against libsrtp: SSRC, first seq, then per packet step, flags, PT,
  // timestamp, CSRCs / extension, payload length / 5, payload.
  Bytes stream = {1, 0x11, 0x22, 0x33, 0x44, 0xff, 0xf0};
  for (int i = 0; i < 8; ++i) {
    const bool extended = i == 3;  // one CSRC and a one-word header extension
    stream = cat({stream, {0, 7}, extended ? Bytes{0x11, 1} : Bytes{0}, {102, 0, 0, 0x10, uint8_t(i)},
                  extended ? Bytes(8, 0x5a) : Bytes{}, {2}, Bytes(10, uint8_t(i))});
  }
  // A retransmission of the packet five back.
  stream = cat({stream, {0x80, 35, 0, 102, 0, 0, 0x10, 0, 2}, Bytes(10, 0xaa)});
  write("srtp", "stream-wrap-nack", stream);
  stream[0] = 5;  // the same against libsrtp2's GCM
  write("srtp", "stream-wrap-nack-gcm", stream);
}

int64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

// What a browser's DTLS client sends to us, in a real handshake.
void dtls() {
  std::string error;
  auto client_id = wb::DtlsIdentity::create(&error), server_id = wb::DtlsIdentity::create(&error);
  std::vector<Bytes> to_server, to_client;
  wb::DtlsEndpoint client(client_id, wb::DtlsRole::Client, server_id->fingerprint(),
                          [&](const uint8_t *d, size_t n) { to_server.emplace_back(d, d + n); });
  wb::DtlsEndpoint server(server_id, wb::DtlsRole::Server, client_id->fingerprint(),
                          [&](const uint8_t *d, size_t n) { to_client.emplace_back(d, d + n); });
  Bytes flights = {0};
  server.start(now_ns());
  client.start(now_ns());
  Bytes hello = chunk(to_server.front());
  for (int round = 0; round < 10 && !(client.connected() && server.connected()); ++round) {
    for (auto &d : to_server) {
      flights = cat({flights, chunk(d)});
      server.on_datagram(d.data(), d.size(), now_ns());
    }
    to_server.clear();
    for (auto &d : to_client) client.on_datagram(d.data(), d.size(), now_ns());
    to_client.clear();
  }
  write("dtls", "client-hello", cat({{0}, hello}));
  write("dtls", "client-hello-after-start", cat({{1}, hello}));
  write("dtls", "client-flights", flights);
}

}  // namespace

int main(int argc, char **argv) {
  if (argc != 2) return 2;
  root = argv[1];
  stun();
  rtcp();
  srtcp();
  srtp();
  dtls();
  return 0;
}
