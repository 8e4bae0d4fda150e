// What every harness shares: reading a fuzz input as fields, and checking
// a property of our code (a failed check aborts, which libFuzzer reports as
// a crash with the input that caused it).
//
// Input reads a fuzz input front to back as the fields a harness needs. Running
// out of bytes gives zeros and empty fields, never an error, so that every
// input is a valid test case; reading from the front keeps the committed
// seeds writable by hand.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#define FUZZ_CHECK(condition)                                                               \
  do {                                                                                      \
    if (!(condition)) {                                                                     \
      std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #condition); \
      std::abort();                                                                         \
    }                                                                                       \
  } while (0)

namespace fuzz {

class Input {
 public:
  Input(const uint8_t *data, size_t size) : data_(data), size_(size) {}

  size_t remaining() const { return size_ - at_; }
  uint8_t u8() { return at_ < size_ ? data_[at_++] : 0; }
  uint16_t u16() { return uint16_t(u8() << 8 | u8()); }
  uint32_t u32() { return uint32_t(u16()) << 16 | u16(); }
  // Up to `n` bytes (fewer at the end).
  std::vector<uint8_t> bytes(size_t n) {
    n = n < remaining() ? n : remaining();
    std::vector<uint8_t> out(data_ + at_, data_ + at_ + n);
    at_ += n;
    return out;
  }
  // A field with a 16-bit big-endian length before it.
  std::vector<uint8_t> chunk() { return bytes(u16()); }
  // Up to the next `separator` (dropped) or the end.
  std::string line(char separator = '\n') {
    std::string out;
    while (at_ < size_) {
      char c = char(data_[at_++]);
      if (c == separator) break;
      out += c;
    }
    return out;
  }
  std::string rest() {
    std::string out(reinterpret_cast<const char *>(data_ + at_), remaining());
    at_ = size_;
    return out;
  }

 private:
  const uint8_t *data_;
  size_t size_;
  size_t at_ = 0;
};

}  // namespace fuzz
