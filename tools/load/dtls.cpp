#include "dtls.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include <cstring>
#include <vector>

#include "eventloop.h"

namespace load {

namespace {

// Datagrams we send stay below any path MTU on the way (loopback or not).
constexpr size_t kMtu = 1200;
constexpr char kSrtpProfile[] = "SRTP_AES128_CM_SHA1_80";
constexpr char kExporterLabel[] = "EXTRACTOR-dtls_srtp";
// Handshake retransmission: first after 250 ms (OpenSSL's default is 1 s,
// which would dominate connect times on any loss), doubling up to 4 s.
constexpr unsigned kFirstTimeoutUs = 250000;
constexpr unsigned kMaxTimeoutUs = 4000000;
constexpr int64_t kHandshakeGiveUp = 15 * kSecond;

std::string openssl_error() {
  char buf[256] = "unknown error";
  unsigned long e = ERR_get_error();
  if (e) ERR_error_string_n(e, buf, sizeof buf);
  ERR_clear_error();
  return buf;
}

std::string sha256_fingerprint(X509 *cert) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  X509_digest(cert, EVP_sha256(), md, &len);
  static const char kHex[] = "0123456789ABCDEF";
  std::string s;
  for (unsigned i = 0; i < len; ++i) {
    if (i) s += ':';
    s += kHex[md[i] >> 4];
    s += kHex[md[i] & 15];
  }
  return s;
}

X509 *self_signed(EVP_PKEY *key) {
  X509 *cert = X509_new();
  X509_set_version(cert, 2);
  uint64_t serial;
  RAND_bytes(reinterpret_cast<unsigned char *>(&serial), sizeof serial);
  ASN1_INTEGER_set_uint64(X509_get_serialNumber(cert), serial >> 1);
  X509_gmtime_adj(X509_getm_notBefore(cert), -24 * 3600);  // tolerate clock skew
  X509_gmtime_adj(X509_getm_notAfter(cert), 30L * 24 * 3600);
  X509_NAME *name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char *>("gst-broadcast-load"), -1, -1, 0);
  X509_set_issuer_name(cert, name);
  X509_set_pubkey(cert, key);
  if (!X509_sign(cert, key, EVP_sha256())) {
    X509_free(cert);
    return nullptr;
  }
  return cert;
}

unsigned retransmit_timeout(SSL *, unsigned previous_us) {
  return previous_us == 0 ? kFirstTimeoutUs : std::min(previous_us * 2, kMaxTimeoutUs);
}

}  // namespace

std::unique_ptr<DtlsIdentity> DtlsIdentity::create(std::string *error) {
  EVP_PKEY *key = EVP_EC_gen("P-256");
  X509 *cert = key ? self_signed(key) : nullptr;
  if (!cert) {
    *error = "certificate: " + openssl_error();
    EVP_PKEY_free(key);
    return nullptr;
  }
  std::unique_ptr<DtlsIdentity> id(new DtlsIdentity);
  id->fingerprint_ = sha256_fingerprint(cert);
  SSL_CTX *ctx = SSL_CTX_new(DTLS_client_method());
  id->ctx_ = ctx;
  bool ok = ctx && SSL_CTX_set_min_proto_version(ctx, DTLS1_2_VERSION) &&
            SSL_CTX_set_max_proto_version(ctx, DTLS1_2_VERSION) && SSL_CTX_use_certificate(ctx, cert) &&
            SSL_CTX_use_PrivateKey(ctx, key) &&
            SSL_CTX_set_tlsext_use_srtp(ctx, kSrtpProfile) == 0;  // this one returns 0 on success
  X509_free(cert);
  EVP_PKEY_free(key);
  if (!ok) {
    *error = "DTLS context: " + openssl_error();
    return nullptr;
  }
  // Peers' certificates are self-signed: they are checked against the SDP
  // fingerprint after the handshake, not against a CA. Asking for it makes
  // OpenSSL insist that the server sends one.
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, [](int, X509_STORE_CTX *) { return 1; });
  return id;
}

DtlsIdentity::~DtlsIdentity() { SSL_CTX_free(ctx_); }

DtlsClient::DtlsClient(const DtlsIdentity &identity, std::string remote_fingerprint, Send send)
    : remote_fingerprint_(std::move(remote_fingerprint)), send_(std::move(send)) {
  ssl_ = SSL_new(identity.context());
  in_ = BIO_new(BIO_s_mem());
  out_ = BIO_new(BIO_s_mem());
  BIO_set_mem_eof_return(in_, -1);  // empty means "would block", not EOF
  SSL_set_bio(ssl_, in_, out_);     // ssl_ owns both now
  SSL_set_options(ssl_, SSL_OP_NO_QUERY_MTU);  // a memory BIO has no MTU to ask
  SSL_set_mtu(ssl_, kMtu);
  DTLS_set_timer_cb(ssl_, retransmit_timeout);
  SSL_set_connect_state(ssl_);
}

DtlsClient::~DtlsClient() { SSL_free(ssl_); }

void DtlsClient::start(int64_t now) {
  started_ = now;
  advance(now);
}

void DtlsClient::on_datagram(const uint8_t *data, size_t len, int64_t now) {
  if (state_ == State::Failed || state_ == State::Closed) return;
  BIO_write(in_, data, int(len));
  if (state_ == State::Handshaking) {
    advance(now);
    return;
  }
  // After the handshake only alerts and retransmitted handshake records
  // arrive (media is SRTP, not DTLS application data).
  uint8_t sink[2048];
  int n = SSL_read(ssl_, sink, sizeof sink);
  if (n <= 0 && SSL_get_error(ssl_, n) == SSL_ERROR_ZERO_RETURN) fail("DTLS: the server closed the connection");
  flush();
}

void DtlsClient::advance(int64_t now) {
  int r = SSL_do_handshake(ssl_);
  flush();
  if (r == 1) {
    if (finish_handshake()) {
      state_ = State::Connected;
      deadline_ = INT64_MAX;
    }
    return;
  }
  int err = SSL_get_error(ssl_, r);
  if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) {
    fail("DTLS handshake: " + openssl_error());
    return;
  }
  update_deadline(now);
}

void DtlsClient::update_deadline(int64_t now) {
  timeval tv;
  deadline_ = DTLSv1_get_timeout(ssl_, &tv) ? now + int64_t(tv.tv_sec) * kSecond + int64_t(tv.tv_usec) * 1000
                                            : INT64_MAX;  // no flight of ours waiting for an answer
}

void DtlsClient::on_timer(int64_t now) {
  if (state_ != State::Handshaking || now < deadline_) return;
  if (now - started_ > kHandshakeGiveUp || DTLSv1_handle_timeout(ssl_) < 0) {
    fail("DTLS: handshake timed out");
    return;
  }
  flush();
  update_deadline(now);
}

bool DtlsClient::finish_handshake() {
  X509 *cert = SSL_get1_peer_certificate(ssl_);
  if (!cert) {
    fail("DTLS: the server sent no certificate");
    return false;
  }
  std::string seen = sha256_fingerprint(cert);
  X509_free(cert);
  if (strcasecmp(seen.c_str(), remote_fingerprint_.c_str()) != 0) {
    fail("DTLS: the server's certificate does not match the fingerprint in its SDP");
    return false;
  }
  SRTP_PROTECTION_PROFILE *profile = SSL_get_selected_srtp_profile(ssl_);
  if (!profile || std::strcmp(profile->name, kSrtpProfile) != 0) {
    fail("DTLS: no SRTP profile negotiated");
    return false;
  }
  // Layout (RFC 5764 4.2): client key, server key, client salt, server salt.
  uint8_t block[2 * SrtpKeyMaterial::kKeySalt];
  if (SSL_export_keying_material(ssl_, block, sizeof block, kExporterLabel, sizeof kExporterLabel - 1, nullptr, 0,
                                 0) != 1) {
    fail("DTLS: keying material export failed");
    return false;
  }
  std::memcpy(keys_.client, block, 16);
  std::memcpy(keys_.server, block + 16, 16);
  std::memcpy(keys_.client + 16, block + 32, 14);
  std::memcpy(keys_.server + 16, block + 46, 14);
  return true;
}

void DtlsClient::fail(const std::string &why) {
  state_ = State::Failed;
  failure_ = why;
  deadline_ = INT64_MAX;
}

void DtlsClient::close() {
  if (state_ == State::Connected) {
    SSL_shutdown(ssl_);
    flush();
  }
  state_ = State::Closed;
  deadline_ = INT64_MAX;
}

void DtlsClient::flush() {
  // OpenSSL writes one record per BIO_write and the memory BIO concatenates
  // them: cut them apart again at record boundaries (13-byte header, length
  // in bytes 11-12) and pack whole records into datagrams up to the MTU.
  size_t pending = BIO_ctrl_pending(out_);
  if (!pending) return;
  std::vector<uint8_t> bytes(pending);
  BIO_read(out_, bytes.data(), int(pending));
  size_t start = 0, at = 0;
  while (at + 13 <= bytes.size()) {
    size_t record = 13 + (size_t(bytes[at + 11]) << 8 | bytes[at + 12]);
    if (at > start && at + record - start > kMtu) {
      send_(bytes.data() + start, at - start);
      start = at;
    }
    at += record;
  }
  if (bytes.size() > start) send_(bytes.data() + start, bytes.size() - start);
}

}  // namespace load
