#include "tls.h"

#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <memory>

namespace wb {

namespace {

bool tls_backend_ready(std::string *error) {
  if (g_tls_backend_supports_tls(g_tls_backend_get_default())) return true;
  if (error) *error = "GLib has no TLS backend: install glib-networking";
  return false;
}

// GLib (2.74, GnuTLS backend) takes any key with any certificate, and the
// mismatch would only show as every handshake failing: check it here.
bool key_matches_certificate(const TlsFiles &files) {
  std::unique_ptr<BIO, decltype(&BIO_free)> cert_bio(BIO_new_file(files.certificate.c_str(), "r"), BIO_free);
  std::unique_ptr<BIO, decltype(&BIO_free)> key_bio(BIO_new_file(files.key.c_str(), "r"), BIO_free);
  if (!cert_bio || !key_bio) return false;
  std::unique_ptr<X509, decltype(&X509_free)> cert(PEM_read_bio_X509(cert_bio.get(), nullptr, nullptr, nullptr),
                                                   X509_free);
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(
      PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr), EVP_PKEY_free);
  return cert && key && X509_check_private_key(cert.get(), key.get()) == 1;
}

}  // namespace

GTlsCertificate *load_tls_certificate(const TlsFiles &files, std::string *error) {
  if (files.certificate.empty() || files.key.empty()) {
    if (error) *error = "TLS needs both tls-certificate and tls-key (PEM files)";
    return nullptr;
  }
  if (!tls_backend_ready(error)) return nullptr;
  GError *err = nullptr;
  // The certificate alone first, so that an error names the right file.
  GTlsCertificate *certificate = g_tls_certificate_new_from_file(files.certificate.c_str(), &err);
  if (!certificate) {
    if (error) *error = "tls-certificate " + files.certificate + ": " + err->message;
    g_error_free(err);
    return nullptr;
  }
  g_object_unref(certificate);
  certificate = g_tls_certificate_new_from_files(files.certificate.c_str(), files.key.c_str(), &err);
  if (!certificate) {
    if (error) *error = "tls-key " + files.key + ": " + err->message;
    g_error_free(err);
    return nullptr;
  }
  if (!key_matches_certificate(files)) {
    if (error) *error = "tls-key " + files.key + " is not the private key of tls-certificate " + files.certificate;
    g_object_unref(certificate);
    return nullptr;
  }
  return certificate;
}

GTlsDatabase *load_tls_ca(const std::string &file, std::string *error) {
  if (!tls_backend_ready(error)) return nullptr;
  GError *err = nullptr;
  GTlsDatabase *database = g_tls_file_database_new(file.c_str(), &err);
  if (!database) {
    if (error) *error = "tls-ca " + file + ": " + err->message;
    g_error_free(err);
    return nullptr;
  }
  // GLib accepts a readable file without a single certificate in it, which
  // would then trust nothing: say so now rather than at every connection.
  GList *anchors = g_tls_certificate_list_new_from_file(file.c_str(), nullptr);
  const bool empty = anchors == nullptr;
  g_list_free_full(anchors, g_object_unref);
  if (empty) {
    if (error) *error = "tls-ca " + file + ": no PEM certificate in it";
    g_object_unref(database);
    return nullptr;
  }
  return database;
}

std::string tls_certificate_problems(GTlsCertificateFlags flags) {
  static const std::pair<GTlsCertificateFlags, const char *> names[] = {
      {G_TLS_CERTIFICATE_UNKNOWN_CA, "signed by an unknown authority"},
      {G_TLS_CERTIFICATE_BAD_IDENTITY, "issued for another host name or address"},
      {G_TLS_CERTIFICATE_NOT_ACTIVATED, "not valid yet"},
      {G_TLS_CERTIFICATE_EXPIRED, "expired"},
      {G_TLS_CERTIFICATE_REVOKED, "revoked"},
      {G_TLS_CERTIFICATE_INSECURE, "insecure algorithm"},
      {G_TLS_CERTIFICATE_GENERIC_ERROR, "invalid"},
  };
  std::string out;
  for (const auto &n : names)
    if (flags & n.first) out += (out.empty() ? "" : ", ") + std::string(n.second);
  return out.empty() ? "rejected" : out;
}

}  // namespace wb
