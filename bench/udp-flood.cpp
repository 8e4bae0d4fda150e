// udp-flood: junk at the shared ICE-lite UDP port as fast as one thread can
// send it, to see what a stranger without credentials costs the node and
// whether viewers notice (bench/udp-flood.sh).
//
// Five kinds, sent in turn, each datagram from a pool made beforehand so the
// loop only sends:
//   random   random bytes of random length (first byte anything)
//   stun-bad first byte 0-1 and the magic cookie, then a length or
//            attributes that do not hold together (truncated, overlong)
//   stun     well-formed Binding requests (USERNAME, PRIORITY, ICE-CONTROLLING,
//            USE-CANDIDATE, MESSAGE-INTEGRITY, FINGERPRINT) whose ufrags no
//            viewer has: they pass every parser and must die at the lookup
//   dtls     DTLS 1.2 record headers (handshake, ClientHello type) with a
//            random body
//   rtcp     RTP version 2 with an RTCP packet type (200-206) and a random
//            body, and some with RTP payload types
// From --sockets sockets (each its own source port), so the node sees many
// addresses rather than one.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/rand.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "transport/stun.h"

namespace {

constexpr size_t kPool = 2048;  // datagrams made beforehand, per kind
constexpr size_t kBatch = 64;   // per sendmmsg

enum Kind { Random, StunBad, Stun, Dtls, Rtcp, kKinds };
const char *kKindNames[kKinds] = {"random", "stun-bad", "stun", "dtls", "rtcp"};

using Bytes = std::vector<uint8_t>;

uint32_t rnd32() {
  uint32_t v;
  RAND_bytes(reinterpret_cast<unsigned char *>(&v), sizeof v);
  return v;
}

Bytes random_bytes(size_t n) {
  Bytes b(n);
  if (n) RAND_bytes(b.data(), int(n));
  return b;
}

std::string random_token(size_t n) {
  static const char kChars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/";
  std::string s(n, 'a');
  for (auto &c : s) c = kChars[rnd32() % 64];
  return s;
}

void put16(uint8_t *p, uint16_t v) {
  p[0] = uint8_t(v >> 8);
  p[1] = uint8_t(v);
}

Bytes make(Kind kind) {
  switch (kind) {
    case Random:
      return random_bytes(1 + rnd32() % 1200);
    case StunBad: {
      // A header that claims STUN, and a body that lies about itself.
      Bytes b = random_bytes(20 + rnd32() % 200);
      b[0] = uint8_t(rnd32() % 2);
      b[1] = uint8_t(rnd32() % 2 ? 0x01 : rnd32());
      uint32_t cookie = htonl(0x2112A442);
      std::memcpy(&b[4], &cookie, 4);
      switch (rnd32() % 3) {
        case 0: put16(&b[2], uint16_t(b.size() - 20 + 4 * (1 + rnd32() % 64))); break;  // overlong
        case 1: put16(&b[2], uint16_t((b.size() - 20) & ~3u)); break;  // random attributes, any lengths
        default:  // USERNAME whose length runs past the end
          put16(&b[2], uint16_t((b.size() - 20) & ~3u));
          if (b.size() >= 24) {
            put16(&b[20], 0x0006);
            put16(&b[22], 0xFFF0);
          }
      }
      return b;
    }
    case Stun: {
      wb::stun::TransactionId id;
      RAND_bytes(id.data(), int(id.size()));
      wb::stun::Writer w(wb::stun::kBindingRequest, id);
      w.add_string(wb::stun::kUsername, random_token(8) + ":" + random_token(4));
      w.add_u32(wb::stun::kPriority, rnd32());
      uint64_t tie;
      RAND_bytes(reinterpret_cast<unsigned char *>(&tie), sizeof tie);
      w.add_u64(wb::stun::kIceControlling, tie);
      static const uint8_t kNothing = 0;
      if (rnd32() % 2) w.add(wb::stun::kUseCandidate, &kNothing, 0);
      return w.finish(random_token(24));
    }
    case Dtls: {
      Bytes b = random_bytes(13 + 12 + rnd32() % 300);
      b[0] = 22;  // handshake
      b[1] = 0xFE;
      b[2] = 0xFD;  // DTLS 1.2
      b[3] = 0;
      b[4] = 0;  // epoch 0
      put16(&b[11], uint16_t(b.size() - 13));
      b[13] = 1;  // ClientHello
      return b;
    }
    case Rtcp:
    default: {
      Bytes b = random_bytes(12 + rnd32() % 1200);
      b[0] = 0x80 | uint8_t(rnd32() % 32);
      // Mostly RTCP types (SR, RR, SDES, BYE, APP, RTPFB, PSFB), some RTP.
      b[1] = rnd32() % 4 ? uint8_t(200 + rnd32() % 7) : uint8_t(0x80 | (96 + rnd32() % 32));
      put16(&b[2], uint16_t(b.size() / 4 - 1));
      return b;
    }
  }
}

}  // namespace

int main(int argc, char **argv) {
  std::string host = "127.0.0.1";
  int port = 0, sockets = 16;
  double seconds = 30;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--host") host = argv[i + 1];
    else if (a == "--port") port = std::atoi(argv[i + 1]);
    else if (a == "--seconds") seconds = std::atof(argv[i + 1]);
    else if (a == "--sockets") sockets = std::atoi(argv[i + 1]);
    else {
      std::fprintf(stderr, "unknown option %s\n", a.c_str());
      return 2;
    }
  }
  if (port <= 0 || port > 65535 || sockets < 1 || seconds <= 0) {
    std::fprintf(stderr, "usage: udp-flood --port PORT [--host 127.0.0.1] [--seconds 30] [--sockets 16]\n");
    return 2;
  }
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(uint16_t(port));
  if (inet_pton(AF_INET, host.c_str(), &to.sin_addr) != 1) {
    std::fprintf(stderr, "--host: not an IPv4 address\n");
    return 2;
  }
  std::vector<int> fds;
  for (int i = 0; i < sockets; ++i) {
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0 || connect(fd, reinterpret_cast<sockaddr *>(&to), sizeof to) != 0) {
      std::perror("socket");
      return 1;
    }
    fds.push_back(fd);
  }
  std::vector<Bytes> pool[kKinds];
  for (int k = 0; k < kKinds; ++k)
    for (size_t i = 0; i < kPool; ++i) pool[k].push_back(make(Kind(k)));

  uint64_t sent[kKinds] = {}, bytes[kKinds] = {}, errors = 0;
  mmsghdr msgs[kBatch];
  iovec iov[kBatch];
  size_t cursor = 0, batches = 0;
  auto start = std::chrono::steady_clock::now();
  auto end = start + std::chrono::duration<double>(seconds);
  while (std::chrono::steady_clock::now() < end) {
    // Every batch is one kind from one socket; kinds and sockets take turns.
    for (int rounds = 0; rounds < 16; ++rounds, ++batches) {
      int kind = int(batches % kKinds);
      int fd = fds[(batches / kKinds) % fds.size()];
      std::memset(msgs, 0, sizeof msgs);
      for (size_t i = 0; i < kBatch; ++i) {
        Bytes &b = pool[kind][(cursor + i) % kPool];
        iov[i] = {b.data(), b.size()};
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
      }
      cursor += kBatch;
      int n = sendmmsg(fd, msgs, kBatch, 0);
      if (n < 0) {
        ++errors;  // ECONNREFUSED after an ICMP, or ENOBUFS: keep going
        continue;
      }
      sent[kind] += uint64_t(n);
      for (int i = 0; i < n; ++i) bytes[kind] += msgs[i].msg_len;
    }
  }
  double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  uint64_t total = 0, total_bytes = 0;
  for (int k = 0; k < kKinds; ++k) {
    total += sent[k];
    total_bytes += bytes[k];
  }
  std::printf("udp-flood: %llu datagrams (%.1f MB) in %.1f s to %s:%d from %d sockets: %.0f datagrams/s, %llu send errors\n",
              static_cast<unsigned long long>(total), double(total_bytes) / 1e6, elapsed, host.c_str(), port, sockets,
              double(total) / elapsed, static_cast<unsigned long long>(errors));
  for (int k = 0; k < kKinds; ++k)
    std::printf("  %-8s %llu\n", kKindNames[k], static_cast<unsigned long long>(sent[k]));
  // One line for scripts: total, seconds, then each kind in the order above.
  std::printf("RESULT %llu %.3f", static_cast<unsigned long long>(total), elapsed);
  for (int k = 0; k < kKinds; ++k) std::printf(" %llu", static_cast<unsigned long long>(sent[k]));
  std::printf("\n");
  for (int fd : fds) close(fd);
  return 0;
}
