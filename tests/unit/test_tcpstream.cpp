// ICE-TCP's framing (gst/transport/tcpstream.*): frames come out of any
// split of the byte stream whole and in order, and a viewer's connection
// that stops reading never blocks its sender.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <random>
#include <thread>
#include <vector>

#include "transport/tcpstream.h"

namespace {

using Frames = std::vector<std::vector<uint8_t>>;

std::vector<uint8_t> framed(const Frames &frames) {
  std::vector<uint8_t> bytes;
  for (const auto &f : frames) {
    bytes.push_back(uint8_t(f.size() >> 8));
    bytes.push_back(uint8_t(f.size()));
    bytes.insert(bytes.end(), f.begin(), f.end());
  }
  return bytes;
}

Frames read_in_pieces(const std::vector<uint8_t> &bytes, std::mt19937 &rng, size_t max_piece) {
  wb::TcpFrameReader reader;
  Frames out;
  size_t at = 0;
  while (at < bytes.size()) {
    const size_t piece = std::min(bytes.size() - at, size_t(1 + rng() % max_piece));
    reader.feed(bytes.data() + at, piece, [&](const uint8_t *d, size_t n) { out.emplace_back(d, d + n); });
    at += piece;
  }
  EXPECT_EQ(reader.buffered(), 0u);
  return out;
}

struct SocketPair {
  int fds[2] = {-1, -1};
  SocketPair() {
    EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds), 0);
    const int small = 4096;  // a receiver that falls behind, quickly
    setsockopt(fds[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    setsockopt(fds[1], SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  }
  ~SocketPair() {
    ::close(fds[0]);
    ::close(fds[1]);
  }
  std::vector<uint8_t> drain() const {
    std::vector<uint8_t> all;
    uint8_t buffer[65536];
    ssize_t n;
    while ((n = recv(fds[1], buffer, sizeof buffer, MSG_DONTWAIT)) > 0) all.insert(all.end(), buffer, buffer + n);
    return all;
  }
};

}  // namespace

TEST(TcpFrames, AnySplitOfTheStreamGivesTheSameFrames) {
  std::mt19937 rng(5);
  Frames sent;
  for (int i = 0; i < 300; ++i) {
    std::vector<uint8_t> f(i % 7 == 0 ? 1 + rng() % 3 : 1 + rng() % 1500);
    for (auto &b : f) b = uint8_t(rng());
    sent.push_back(f);
  }
  sent.push_back(std::vector<uint8_t>(65535, 0xAB));  // the largest frame
  const auto bytes = framed(sent);
  for (size_t max_piece : {1, 2, 3, 100, 1500, 70000}) EXPECT_EQ(read_in_pieces(bytes, rng, max_piece), sent) << max_piece;
}

TEST(TcpFrames, EmptyFramesAreSkipped) {
  wb::TcpFrameReader reader;
  const uint8_t bytes[] = {0, 0, 0, 1, 0x42, 0, 0};
  Frames out;
  reader.feed(bytes, sizeof bytes, [&](const uint8_t *d, size_t n) { out.emplace_back(d, d + n); });
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0], std::vector<uint8_t>{0x42});
  // Byte by byte, nothing is left held after an empty frame (fuzzing found
  // its prefix kept until the next byte).
  wb::TcpFrameReader bytewise;
  for (uint8_t b : bytes) bytewise.feed(&b, 1, [](const uint8_t *, size_t) {});
  EXPECT_EQ(bytewise.buffered(), 0u);
}

TEST(TcpStream, ASenderIsNeverBlockedByAReaderThatStopped) {
  SocketPair pair;
  wb::TcpStream stream(pair.fds[0]);
  const std::vector<uint8_t> packet(1200, 0x5A);
  size_t accepted = 0;
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 2000; ++i) accepted += stream.send(packet.data(), packet.size());
  const auto took = std::chrono::steady_clock::now() - start;
  // 2.4 MB into a 4 kB buffer nobody reads: most are dropped at once, whole.
  EXPECT_LT(took, std::chrono::seconds(1));
  EXPECT_GT(accepted, 0u);
  EXPECT_LE(accepted * (packet.size() + 2), wb::TcpStream::kMaxQueued + 64 * 1024);
  EXPECT_EQ(stream.dropped(), 2000 - accepted);
  EXPECT_TRUE(stream.wants_write());
  EXPECT_FALSE(stream.failed());

  // Once the reader reads again, every accepted frame arrives whole and in order.
  std::vector<uint8_t> received;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while ((stream.wants_write() || received.size() < accepted * (packet.size() + 2)) &&
         std::chrono::steady_clock::now() < deadline) {
    auto more = pair.drain();
    received.insert(received.end(), more.begin(), more.end());
    stream.flush();
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  auto more = pair.drain();
  received.insert(received.end(), more.begin(), more.end());
  Frames frames;
  wb::TcpFrameReader reader;
  reader.feed(received.data(), received.size(), [&](const uint8_t *d, size_t n) { frames.emplace_back(d, d + n); });
  EXPECT_EQ(frames.size(), accepted);
  for (const auto &f : frames) EXPECT_EQ(f, packet);
  EXPECT_EQ(reader.buffered(), 0u);
}

TEST(TcpStream, AClosedConnectionFailsAndDropsEverything) {
  SocketPair pair;
  wb::TcpStream stream(pair.fds[0]);
  ::shutdown(pair.fds[1], SHUT_RDWR);
  const uint8_t packet[100] = {};
  // The first write may still be taken by the kernel; a later one finds the reset.
  for (int i = 0; i < 10 && !stream.failed(); ++i) stream.send(packet, sizeof packet);
  EXPECT_TRUE(stream.failed());
  EXPECT_FALSE(stream.send(packet, sizeof packet));
  EXPECT_FALSE(stream.wants_write());
}

TEST(TcpStream, RefusesAFrameLongerThanItsLengthField) {
  SocketPair pair;
  wb::TcpStream stream(pair.fds[0]);
  std::vector<uint8_t> huge(65536);
  EXPECT_FALSE(stream.send(huge.data(), huge.size()));
  EXPECT_EQ(stream.dropped(), 1u);
}
