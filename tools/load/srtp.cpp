#include "srtp.h"

#include <mutex>

namespace load {

namespace {

bool library_ready() {
  static std::once_flag once;
  static bool ok = false;
  std::call_once(once, [] { ok = srtp_init() == srtp_err_status_ok; });
  return ok;
}

}  // namespace

SrtpSession::~SrtpSession() {
  if (session_) srtp_dealloc(session_);
}

bool SrtpSession::create(Direction direction, const uint8_t *key_salt, std::string *error) {
  if (!library_ready()) {
    *error = "SRTP: srtp_init failed";
    return false;
  }
  srtp_policy_t policy{};
  srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&policy.rtp);
  srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&policy.rtcp);
  // Any SSRC: the server picks its SSRCs, and ours are our own business.
  policy.ssrc.type = direction == Direction::Inbound ? ssrc_any_inbound : ssrc_any_outbound;
  policy.key = const_cast<uint8_t *>(key_salt);
  srtp_err_status_t status = srtp_create(&session_, &policy);
  if (status != srtp_err_status_ok) {
    *error = "SRTP: srtp_create failed (" + std::to_string(int(status)) + ")";
    session_ = nullptr;
    return false;
  }
  return true;
}

bool SrtpSession::unprotect_rtp(uint8_t *data, size_t *len) {
  int n = int(*len);
  if (srtp_unprotect(session_, data, &n) != srtp_err_status_ok) return false;
  *len = size_t(n);
  return true;
}

bool SrtpSession::protect_rtcp(uint8_t *data, size_t *len) {
  int n = int(*len);
  if (srtp_protect_rtcp(session_, data, &n) != srtp_err_status_ok) return false;
  *len = size_t(n);
  return true;
}

}  // namespace load
