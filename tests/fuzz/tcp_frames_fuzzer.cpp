// ICE-TCP framing (gst/transport/tcpstream.*): every byte a viewer's TCP
// connection sends to the ICE-lite port goes through TcpFrameReader before
// anything else reads it. The input: a byte of piece length, then the stream
// (RFC 4571: 16-bit length, frame, ...). Fed in pieces of that size (1-256),
// the reader must give exactly the frames a whole-buffer parse gives, never
// hold more than one frame's bytes, and keep the unfinished tail.
#include <cstring>

#include "fuzz.h"
#include "transport/tcpstream.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0) return 0;
  const size_t piece = size_t(data[0]) + 1;
  const uint8_t *stream = data + 1;
  const size_t length = size - 1;

  // The reference: walk the whole buffer.
  std::vector<std::vector<uint8_t>> expected;
  size_t at = 0;
  while (at + 2 <= length) {
    const size_t n = size_t(stream[at]) << 8 | stream[at + 1];
    if (at + 2 + n > length) break;
    if (n) expected.emplace_back(stream + at + 2, stream + at + 2 + n);
    at += 2 + n;
  }
  const size_t tail = length - at;

  wb::TcpFrameReader reader;
  size_t got = 0;
  for (size_t fed = 0; fed < length; fed += piece) {
    const size_t n = length - fed < piece ? length - fed : piece;
    reader.feed(stream + fed, n, [&](const uint8_t *frame, size_t len) {
      FUZZ_CHECK(got < expected.size());
      FUZZ_CHECK(len == expected[got].size() && std::memcmp(frame, expected[got].data(), len) == 0);
      ++got;
    });
    FUZZ_CHECK(reader.buffered() <= 2 + 0xFFFF);
  }
  FUZZ_CHECK(got == expected.size());
  FUZZ_CHECK(reader.buffered() == tail);
  return 0;
}
