// DTLS 1.2 for DTLS-SRTP (RFC 5764), either role, with OpenSSL over memory
// BIOs: datagrams go in and out through us, on a socket the caller shares
// with STUN and SRTP (RFC 7983). The load generator's viewers are clients;
// the plugin's ICE-lite transport is the server.
#pragma once

#include <openssl/ssl.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "transport/srtpcontext.h"

namespace wb {

// The SRTP profiles an identity's endpoints offer (as clients) or accept (as
// servers), most preferred first.
using SrtpProfiles = std::vector<SrtpProfile>;
// GCM, then AES_CM_128_HMAC_SHA1_80, then _32: an OpenSSL server takes the
// first of its own list that the client also offers.
const SrtpProfiles &default_srtp_profiles();

// The process's self-signed EC P-256 certificate and the SSL_CTX using it:
// made once, shared by every endpoint of either role, from any thread (key
// generation is the costly part; each endpoint has its own SSL).
class DtlsIdentity {
 public:
  static std::shared_ptr<DtlsIdentity> create(std::string *error,
                                              const SrtpProfiles &profiles = default_srtp_profiles());
  ~DtlsIdentity();
  DtlsIdentity(const DtlsIdentity &) = delete;
  DtlsIdentity &operator=(const DtlsIdentity &) = delete;
  SSL_CTX *context() const { return ctx_; }
  // "sha-256" fingerprint as SDP writes it: upper-case hex pairs joined by ':'.
  const std::string &fingerprint() const { return fingerprint_; }

 private:
  DtlsIdentity() = default;
  SSL_CTX *ctx_ = nullptr;
  std::string fingerprint_;
};

// SRTP master keys and salts from the handshake (RFC 5764 4.2), already
// sorted by direction for this endpoint's role.
struct SrtpKeyMaterial {
  // AES-128 key + salt: 112 bits (CM) or 96 (GCM); the last two bytes are
  // zero for GCM.
  static constexpr size_t kKeySalt = 16 + 14;
  uint8_t local[kKeySalt] = {};   // protects what this endpoint sends
  uint8_t remote[kKeySalt] = {};  // protects what the peer sends
  SrtpProfile profile = SrtpProfile::Aes128CmSha1_80;
};

enum class DtlsRole { Client, Server };

// One DTLS association, driven by one thread at a time.
// Times are nanoseconds of a monotonic clock. They must advance in real
// time: OpenSSL keeps its own retransmission timer on the system clock and
// ignores on_timer() calls before it expires; we only translate it into a
// deadline on the caller's clock.
class DtlsEndpoint {
 public:
  using Send = std::function<void(const uint8_t *, size_t)>;
  // `remote_fingerprint`: the peer's a=fingerprint sha-256 value (hex pairs
  // joined by ':', any case). `send` gets whole datagrams, at most 1200 bytes.
  DtlsEndpoint(std::shared_ptr<DtlsIdentity> identity, DtlsRole role, std::string remote_fingerprint, Send send);
  ~DtlsEndpoint();
  DtlsEndpoint(const DtlsEndpoint &) = delete;
  DtlsEndpoint &operator=(const DtlsEndpoint &) = delete;

  // Client: sends the ClientHello. Server: waits for it (no cookie exchange:
  // ICE has already proved the peer's address).
  void start(int64_t now_ns);
  // A datagram before start() starts us: a client may send its ClientHello
  // as soon as its own ICE check succeeds, before we know ICE is done.
  void on_datagram(const uint8_t *data, size_t len, int64_t now_ns);
  // Handshake retransmission, and giving up 15 s after start().
  void on_timer(int64_t now_ns);
  int64_t next_deadline() const { return deadline_; }  // INT64_MAX: none
  // Sends close_notify if connected; later calls do nothing.
  void close();
  // Once the peer has proved that it finished the handshake (a packet
  // protected with the exported keys came from it), OpenSSL's state serves
  // nothing but our close_notify: the peer will not retransmit its last
  // flight, and we read nothing else from it. Frees that state (~75 kB: the
  // record and handshake buffers OpenSSL keeps for retransmission, see
  // docs/soak.md), keeping a close_notify record written now for close().
  // Connected only; later calls do nothing.
  void release();
  bool released() const { return state_ == State::Connected && !ssl_; }

  DtlsRole role() const { return role_; }
  bool connected() const { return state_ == State::Connected; }
  bool failed() const { return state_ == State::Failed; }
  const std::string &failure() const { return failure_; }
  const SrtpKeyMaterial &keys() const { return keys_; }  // once connected()

 private:
  enum class State { Idle, Handshaking, Connected, Failed, Closed };
  bool create_ssl();
  void advance(int64_t now_ns);
  bool finish_handshake();
  void fail(const std::string &why);
  void flush();
  void update_deadline(int64_t now_ns);
  const char *peer() const { return role_ == DtlsRole::Client ? "server" : "client"; }

  std::shared_ptr<DtlsIdentity> identity_;
  DtlsRole role_;
  SSL *ssl_ = nullptr;  // from start() on
  BIO *in_ = nullptr;   // datagrams from the network, read by OpenSSL
  BIO *out_ = nullptr;  // records OpenSSL wrote, to send
  std::string remote_fingerprint_;
  Send send_;
  State state_ = State::Idle;
  std::string failure_;
  int64_t started_ = 0;
  int64_t deadline_ = INT64_MAX;
  SrtpKeyMaterial keys_{};
  std::vector<uint8_t> close_notify_;  // after release()
};

}  // namespace wb
