// ICE-TCP's framing (RFC 6544 over RFC 4571): on a TCP connection every
// STUN message, DTLS record and SRTP/SRTCP packet travels as a 16-bit
// big-endian length and that many bytes. A viewer whose network blocks UDP
// connects to the ICE-lite port's passive TCP candidate; the port reads its
// frames with TcpFrameReader and everything we send it goes through its
// TcpStream.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <vector>

namespace wb {

// Splits the bytes read from one connection into frames. Nothing in a frame
// is trusted: the reader only counts bytes, at most one frame (64 KiB) is
// ever held, and a zero-length frame is skipped.
class TcpFrameReader {
 public:
  using Frame = std::function<void(const uint8_t *data, size_t len)>;
  // Calls `frame` for each frame `data` completes, in order.
  void feed(const uint8_t *data, size_t len, const Frame &frame);
  size_t buffered() const { return partial_.size(); }

 private:
  std::vector<uint8_t> partial_;  // an incomplete frame, its length prefix included
};

// The sending side of one viewer's TCP connection. Media comes from a sender
// shard's thread, STUN, DTLS and RTCP from the port's, so send() takes a
// lock; it never blocks: what the socket does not take at once waits in a
// bounded queue for flush(), and a frame that would overflow it is dropped
// whole. A viewer on a slow TCP path loses packets (as on a congested UDP
// path) instead of holding up the thread that serves everyone else.
class TcpStream {
 public:
  // Queued bytes beyond which frames are dropped: ~1 s of an 800 kbit/s
  // stream, enough to ride out a burst such as a keyframe.
  static constexpr size_t kMaxQueued = 128 * 1024;

  explicit TcpStream(int fd) : fd_(fd) {}
  TcpStream(const TcpStream &) = delete;
  TcpStream &operator=(const TcpStream &) = delete;

  // Frames `len` bytes (at most 65535) and writes what the socket takes.
  // False when the frame was dropped (queue full, too long, or the
  // connection failed).
  bool send(const uint8_t *data, size_t len);
  // Writes what is queued; the port's thread calls it when the socket is
  // writable.
  void flush();
  bool wants_write() const;
  bool failed() const;
  uint64_t dropped() const;

 private:
  void write_locked();

  const int fd_;  // owned by the PortSocket that holds this stream
  mutable std::mutex mutex_;
  std::vector<uint8_t> queue_;  // framed bytes not written yet, from `written_` on
  size_t written_ = 0;
  bool failed_ = false;
  uint64_t dropped_ = 0;
};

}  // namespace wb
