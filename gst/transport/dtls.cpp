#include "dtls.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <strings.h>

#include <algorithm>
#include <cstring>
#include <vector>

namespace wb {

namespace {

constexpr int64_t kMs = 1000000;
constexpr int64_t kSecond = 1000 * kMs;

// Datagrams we send stay below any path MTU on the way (loopback or not).
constexpr size_t kMtu = 1200;
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
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char *>("webrtcbroadcast"),
                             -1, -1, 0);
  X509_set_issuer_name(cert, name);
  X509_set_pubkey(cert, key);
  if (!X509_sign(cert, key, EVP_sha256())) {
    X509_free(cert);
    return nullptr;
  }
  return cert;
}

// OpenSSL's names for SSL_CTX_set_tlsext_use_srtp.
std::string openssl_profile_list(const SrtpProfiles &profiles) {
  std::string list;
  for (SrtpProfile p : profiles) {
    if (!list.empty()) list += ':';
    switch (p) {
      case SrtpProfile::AeadAes128Gcm: list += "SRTP_AEAD_AES_128_GCM"; break;
      case SrtpProfile::Aes128CmSha1_80: list += "SRTP_AES128_CM_SHA1_80"; break;
      case SrtpProfile::Aes128CmSha1_32: list += "SRTP_AES128_CM_SHA1_32"; break;
    }
  }
  return list;
}

unsigned retransmit_timeout(SSL *, unsigned previous_us) {
  return previous_us == 0 ? kFirstTimeoutUs : std::min(previous_us * 2, kMaxTimeoutUs);
}

}  // namespace

// GCM first: about 0.6x the CPU of CM for a full-sized packet
// (bench/srtp-cost), and browsers offer it. The two CM ones are all
// GStreamer's DTLS (a relay's webrtcbin) offers.
const SrtpProfiles &default_srtp_profiles() {
  static const SrtpProfiles profiles = {SrtpProfile::AeadAes128Gcm, SrtpProfile::Aes128CmSha1_80,
                                        SrtpProfile::Aes128CmSha1_32};
  return profiles;
}

std::shared_ptr<DtlsIdentity> DtlsIdentity::create(std::string *error, const SrtpProfiles &profiles) {
  EVP_PKEY *key = EVP_EC_gen("P-256");
  X509 *cert = key ? self_signed(key) : nullptr;
  if (!cert) {
    *error = "certificate: " + openssl_error();
    EVP_PKEY_free(key);
    return nullptr;
  }
  std::shared_ptr<DtlsIdentity> id(new DtlsIdentity);
  id->fingerprint_ = sha256_fingerprint(cert);
  // Either role: each endpoint picks its own with SSL_set_connect_state or
  // SSL_set_accept_state.
  SSL_CTX *ctx = SSL_CTX_new(DTLS_method());
  id->ctx_ = ctx;
  bool ok = ctx && SSL_CTX_set_min_proto_version(ctx, DTLS1_2_VERSION) &&
            SSL_CTX_set_max_proto_version(ctx, DTLS1_2_VERSION) && SSL_CTX_use_certificate(ctx, cert) &&
            SSL_CTX_use_PrivateKey(ctx, key) &&
            !profiles.empty() &&
            SSL_CTX_set_tlsext_use_srtp(ctx, openssl_profile_list(profiles).c_str()) == 0;  // this one returns 0 on success
  X509_free(cert);
  EVP_PKEY_free(key);
  if (!ok) {
    *error = "DTLS context: " + openssl_error();
    return nullptr;
  }
  // Every association is new (fresh ICE credentials, fresh fingerprints):
  // a server-side session cache would only grow, under a lock every thread
  // takes, and tickets would cost a message and a key for nothing.
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
  // Peers' certificates are self-signed: they are checked against the SDP
  // fingerprint after the handshake, not against a CA. Asking for one makes
  // OpenSSL insist that the peer sends it, in both roles (a server does not
  // request a client certificate otherwise).
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, [](int, X509_STORE_CTX *) { return 1; });
  return id;
}

DtlsIdentity::~DtlsIdentity() { SSL_CTX_free(ctx_); }

DtlsEndpoint::DtlsEndpoint(std::shared_ptr<DtlsIdentity> identity, DtlsRole role, std::string remote_fingerprint,
                           Send send)
    : identity_(std::move(identity)),
      role_(role),
      remote_fingerprint_(std::move(remote_fingerprint)),
      send_(std::move(send)) {}

// Made on start(), not with the endpoint: a viewer that is answered but
// never gets as far as DTLS (most of a burst of offers from a stranger)
// then costs no OpenSSL state, about 9 kB of a pending viewer's 23.
bool DtlsEndpoint::create_ssl() {
  ssl_ = SSL_new(identity_->context());
  if (!ssl_) {
    fail("DTLS: " + openssl_error());
    return false;
  }
  in_ = BIO_new(BIO_s_mem());
  out_ = BIO_new(BIO_s_mem());
  BIO_set_mem_eof_return(in_, -1);  // empty means "would block", not EOF
  SSL_set_bio(ssl_, in_, out_);     // ssl_ owns both now
  SSL_set_options(ssl_, SSL_OP_NO_QUERY_MTU);  // a memory BIO has no MTU to ask
  SSL_set_mtu(ssl_, kMtu);
  DTLS_set_timer_cb(ssl_, retransmit_timeout);
  if (role_ == DtlsRole::Client)
    SSL_set_connect_state(ssl_);
  else
    SSL_set_accept_state(ssl_);
  return true;
}

DtlsEndpoint::~DtlsEndpoint() { SSL_free(ssl_); }

void DtlsEndpoint::start(int64_t now_ns) {
  if (state_ != State::Idle) return;
  if (!create_ssl()) return;
  state_ = State::Handshaking;
  started_ = now_ns;
  advance(now_ns);
}

void DtlsEndpoint::on_datagram(const uint8_t *data, size_t len, int64_t now_ns) {
  if (state_ == State::Idle) start(now_ns);
  if (state_ == State::Failed || state_ == State::Closed || released()) return;
  BIO_write(in_, data, int(len));
  if (state_ == State::Handshaking) {
    advance(now_ns);
    return;
  }
  // After the handshake only alerts and retransmitted handshake records
  // arrive (media is SRTP, not DTLS application data). Reading them lets
  // OpenSSL answer a retransmitted final flight with its own.
  uint8_t sink[2048];
  int n;
  // SSL_get_error() reads this thread's error queue, which other endpoints
  // on the thread share: it must start empty.
  ERR_clear_error();
  while ((n = SSL_read(ssl_, sink, sizeof sink)) > 0) continue;  // no use for application data
  int err = SSL_get_error(ssl_, n);
  ERR_clear_error();
  if (err == SSL_ERROR_ZERO_RETURN) fail(std::string("DTLS: the ") + peer() + " closed the connection");
  flush();
}

void DtlsEndpoint::advance(int64_t now_ns) {
  ERR_clear_error();
  int r = SSL_do_handshake(ssl_);
  flush();  // also a fatal alert OpenSSL wrote before giving up
  if (r == 1) {
    if (finish_handshake()) {
      state_ = State::Connected;
      deadline_ = INT64_MAX;
    } else {
      // The peer may already have our Finished and think it is connected:
      // close_notify spares it waiting for media until consent runs out.
      ERR_clear_error();
      SSL_shutdown(ssl_);
      ERR_clear_error();
      flush();
    }
    return;
  }
  int err = SSL_get_error(ssl_, r);
  if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) {
    fail("DTLS handshake: " + openssl_error());
    return;
  }
  update_deadline(now_ns);
}

void DtlsEndpoint::update_deadline(int64_t now_ns) {
  timeval tv;
  // No timer: no flight of ours waits for an answer (a server before the
  // ClientHello); the give-up time still applies.
  int64_t retransmit = DTLSv1_get_timeout(ssl_, &tv)
                           ? now_ns + int64_t(tv.tv_sec) * kSecond + int64_t(tv.tv_usec) * 1000
                           : INT64_MAX;
  deadline_ = std::min(retransmit, started_ + kHandshakeGiveUp);
}

void DtlsEndpoint::on_timer(int64_t now_ns) {
  if (state_ != State::Handshaking || now_ns < deadline_) return;
  ERR_clear_error();
  if (now_ns - started_ >= kHandshakeGiveUp || DTLSv1_handle_timeout(ssl_) < 0) {
    fail("DTLS: handshake timed out");
    return;
  }
  flush();
  update_deadline(now_ns);
}

bool DtlsEndpoint::finish_handshake() {
  X509 *cert = SSL_get1_peer_certificate(ssl_);
  if (!cert) {
    fail(std::string("DTLS: the ") + peer() + " sent no certificate");
    return false;
  }
  std::string seen = sha256_fingerprint(cert);
  X509_free(cert);
  // The only thing that authenticates the peer: whoever signalled the SDP
  // vouches for this certificate. The message stays the same for every
  // endpoint, so that reports can count failures by message.
  if (strcasecmp(seen.c_str(), remote_fingerprint_.c_str()) != 0) {
    fail(std::string("DTLS: the ") + peer() + "'s certificate does not match the fingerprint in its SDP");
    return false;
  }
  const SRTP_PROTECTION_PROFILE *profile = SSL_get_selected_srtp_profile(ssl_);
  if (!profile) {
    fail("DTLS: no SRTP profile negotiated");
    return false;
  }
  if (profile->id == SRTP_AEAD_AES_128_GCM) {
    keys_.profile = SrtpProfile::AeadAes128Gcm;
  } else if (profile->id == SRTP_AES128_CM_SHA1_80) {
    keys_.profile = SrtpProfile::Aes128CmSha1_80;
  } else if (profile->id == SRTP_AES128_CM_SHA1_32) {
    keys_.profile = SrtpProfile::Aes128CmSha1_32;
  } else {
    fail(std::string("DTLS: unexpected SRTP profile ") + profile->name);
    return false;
  }
  // Layout (RFC 5764 4.2): client key, server key, client salt, server salt.
  // Every profile has 128-bit keys; salts are 112 bits (CM) or 96 (GCM).
  constexpr size_t kKey = SrtpContext::kMasterKeyLength;
  const size_t salt = srtp_profile_sizes(keys_.profile).salt;
  uint8_t block[2 * SrtpKeyMaterial::kKeySalt];
  const size_t used = 2 * (kKey + salt);
  if (SSL_export_keying_material(ssl_, block, used, kExporterLabel, sizeof kExporterLabel - 1, nullptr, 0, 0) !=
      1) {
    fail("DTLS: keying material export failed");
    return false;
  }
  uint8_t *client = role_ == DtlsRole::Client ? keys_.local : keys_.remote;
  uint8_t *server = role_ == DtlsRole::Client ? keys_.remote : keys_.local;
  std::memcpy(client, block, kKey);
  std::memcpy(server, block + kKey, kKey);
  std::memcpy(client + kKey, block + 2 * kKey, salt);
  std::memcpy(server + kKey, block + 2 * kKey + salt, salt);
  OPENSSL_cleanse(block, sizeof block);
  return true;
}

void DtlsEndpoint::fail(const std::string &why) {
  state_ = State::Failed;
  failure_ = why;
  deadline_ = INT64_MAX;
}

void DtlsEndpoint::release() {
  if (state_ != State::Connected || !ssl_) return;
  // The alert is sealed with the current keys and the next record number;
  // nothing else of ours follows it, so it is as good later as now.
  ERR_clear_error();
  SSL_shutdown(ssl_);
  ERR_clear_error();
  close_notify_.resize(BIO_ctrl_pending(out_));
  if (!close_notify_.empty()) BIO_read(out_, close_notify_.data(), int(close_notify_.size()));
  SSL_free(ssl_);  // and in_, out_
  ssl_ = nullptr;
  in_ = out_ = nullptr;
}

void DtlsEndpoint::close() {
  if (state_ == State::Connected && ssl_) {
    ERR_clear_error();
    SSL_shutdown(ssl_);
    ERR_clear_error();
    flush();
  } else if (state_ == State::Connected && !close_notify_.empty()) {
    send_(close_notify_.data(), close_notify_.size());
    close_notify_.clear();
  }
  if (state_ != State::Failed) state_ = State::Closed;  // a failure stays readable
  deadline_ = INT64_MAX;
}

void DtlsEndpoint::flush() {
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

}  // namespace wb
