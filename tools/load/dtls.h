// DTLS 1.2 for DTLS-SRTP (RFC 5764), client side, with OpenSSL over memory
// BIOs: datagrams go in and out through us, on the viewer's one socket.
#pragma once

#include <openssl/ssl.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace load {

// The process's self-signed EC P-256 certificate and the SSL_CTX using it:
// made once, shared by every viewer (key generation is the costly part).
class DtlsIdentity {
 public:
  static std::unique_ptr<DtlsIdentity> create(std::string *error);
  ~DtlsIdentity();
  SSL_CTX *context() const { return ctx_; }
  // "sha-256" fingerprint as SDP writes it: upper-case hex pairs joined by ':'.
  const std::string &fingerprint() const { return fingerprint_; }

 private:
  DtlsIdentity() = default;
  SSL_CTX *ctx_ = nullptr;
  std::string fingerprint_;
};

// SRTP master keys and salts from the handshake (RFC 5764 4.2).
struct SrtpKeyMaterial {
  static constexpr size_t kKeySalt = 16 + 14;  // AES-128 key + 112-bit salt
  uint8_t client[kKeySalt];                     // protects what we send
  uint8_t server[kKeySalt];                     // protects what the server sends
};

class DtlsClient {
 public:
  using Send = std::function<void(const uint8_t *, size_t)>;
  DtlsClient(const DtlsIdentity &identity, std::string remote_fingerprint, Send send);
  ~DtlsClient();
  DtlsClient(const DtlsClient &) = delete;
  DtlsClient &operator=(const DtlsClient &) = delete;

  void start(int64_t now);  // sends the ClientHello
  void on_datagram(const uint8_t *data, size_t len, int64_t now);
  void on_timer(int64_t now);  // handshake retransmission
  int64_t next_deadline() const { return deadline_; }
  void close();  // sends close_notify

  bool connected() const { return state_ == State::Connected; }
  bool failed() const { return state_ == State::Failed; }
  const std::string &failure() const { return failure_; }
  const SrtpKeyMaterial &keys() const { return keys_; }

 private:
  enum class State { Handshaking, Connected, Failed, Closed };
  void advance(int64_t now);
  bool finish_handshake();
  void fail(const std::string &why);
  void flush();
  void update_deadline(int64_t now);

  SSL *ssl_ = nullptr;
  BIO *in_ = nullptr;   // datagrams from the network, read by OpenSSL
  BIO *out_ = nullptr;  // records OpenSSL wrote, to send
  std::string remote_fingerprint_;
  Send send_;
  State state_ = State::Handshaking;
  std::string failure_;
  int64_t started_ = 0;
  int64_t deadline_ = INT64_MAX;
  SrtpKeyMaterial keys_{};
};

}  // namespace load
