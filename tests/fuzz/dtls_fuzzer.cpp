// DTLS (gst/transport/dtls.*): a viewer's first datagrams reach our server
// endpoint before anything about them is known but their address. The
// input is a sequence of datagrams, a 16-bit length before each, fed into
// a fresh server endpoint in its waiting state (as the ICE-lite port feeds
// a viewer's DTLS before and after start()); our part is what wraps
// OpenSSL: starting on a datagram, the handshake steps, the deadline, and
// cutting what OpenSSL writes into datagrams.
#include <time.h>

#include "fuzz.h"
#include "transport/dtls.h"

namespace {

using wb::DtlsEndpoint;

// OpenSSL runs its retransmission timer on the real clock: so do we.
int64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

const std::shared_ptr<wb::DtlsIdentity> &identity() {
  static const auto id = [] {
    std::string error;
    auto made = wb::DtlsIdentity::create(&error);
    if (!made) std::fprintf(stderr, "%s\n", error.c_str());
    FUZZ_CHECK(made);
    return made;
  }();
  return id;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz::Input in(data, size);
  const uint8_t flags = in.u8();
  size_t sent = 0;
  DtlsEndpoint server(identity(), wb::DtlsRole::Server, "AA:BB", [&sent](const uint8_t *d, size_t n) {
    FUZZ_CHECK(d && n > 0 && n <= 1200);
    sent += n;
  });
  if (flags & 1) server.start(now_ns());  // else the first datagram starts it
  while (in.remaining()) {
    std::vector<uint8_t> datagram = in.chunk();
    server.on_datagram(datagram.data(), datagram.size(), now_ns());
    // A certificate that could match "AA:BB" does not exist.
    FUZZ_CHECK(!server.connected());
    server.on_timer(now_ns());
    if (server.failed()) FUZZ_CHECK(!server.failure().empty() && server.next_deadline() == INT64_MAX);
  }
  if (flags & 2) server.close();
  return 0;
}
