#include "tcpstream.h"

#include <sys/socket.h>

#include <cerrno>

namespace wb {

namespace {

constexpr size_t kPrefix = 2;
constexpr size_t kMaxFrame = 0xFFFF;

}  // namespace

void TcpFrameReader::feed(const uint8_t *data, size_t len, const Frame &frame) {
  while (len > 0) {
    if (partial_.empty() && len >= kPrefix) {
      // The common case: whole frames straight from the read buffer.
      const size_t size = size_t(data[0]) << 8 | data[1];
      if (len < kPrefix + size) break;
      if (size) frame(data + kPrefix, size);
      data += kPrefix + size;
      len -= kPrefix + size;
      continue;
    }
    // Complete the prefix, then the frame, from what was kept.
    if (partial_.size() < kPrefix) {
      partial_.push_back(*data++);
      --len;
      if (partial_.size() == kPrefix && partial_[0] == 0 && partial_[1] == 0) partial_.clear();  // empty frame
      continue;
    }
    const size_t size = size_t(partial_[0]) << 8 | partial_[1];
    const size_t missing = kPrefix + size - partial_.size();
    const size_t take = missing < len ? missing : len;
    partial_.insert(partial_.end(), data, data + take);
    data += take;
    len -= take;
    if (partial_.size() == kPrefix + size) {
      if (size) frame(partial_.data() + kPrefix, size);
      partial_.clear();
    }
  }
  if (len) partial_.assign(data, data + len);  // the start of a frame
}

bool TcpStream::send(const uint8_t *data, size_t len) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (failed_ || len > kMaxFrame || queue_.size() - written_ + kPrefix + len > kMaxQueued) {
    ++dropped_;
    return false;
  }
  if (written_ == queue_.size()) {
    queue_.clear();
    written_ = 0;
  }
  queue_.push_back(uint8_t(len >> 8));
  queue_.push_back(uint8_t(len));
  queue_.insert(queue_.end(), data, data + len);
  write_locked();
  return !failed_;
}

void TcpStream::flush() {
  std::lock_guard<std::mutex> lock(mutex_);
  write_locked();
}

void TcpStream::write_locked() {
  while (written_ < queue_.size()) {
    const ssize_t n = ::send(fd_, queue_.data() + written_, queue_.size() - written_, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n > 0) {
      written_ += size_t(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    failed_ = true;  // reset or closed: the port notices on its side too
    break;
  }
  // Keep the queue from creeping: move what is left to the front once
  // most of it is written.
  if (written_ > kMaxQueued / 2) {
    queue_.erase(queue_.begin(), queue_.begin() + long(written_));
    written_ = 0;
  }
}

bool TcpStream::wants_write() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return !failed_ && written_ < queue_.size();
}

bool TcpStream::failed() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return failed_;
}

uint64_t TcpStream::dropped() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return dropped_;
}

}  // namespace wb
