// TLS for the signalling: the certificate a server shows (HTTPS for the
// page, WHEP and WHIP) and the authorities a client trusts (relay pulls,
// WHIP pushes). GLib's TLS comes from a GIO module, glib-networking: where
// it is missing, these fail and say so.
#pragma once

#include <gio/gio.h>

#include <string>

namespace wb {

// A certificate (chain, leaf first) and its private key, PEM files. Both
// empty: plain HTTP.
struct TlsFiles {
  std::string certificate;
  std::string key;
  bool enabled() const { return !certificate.empty() || !key.empty(); }
};

// The server's identity (a new reference), or null with `error` naming the
// file at fault: unreadable, not PEM, or a key that is not the
// certificate's. Only one of the two set is an error too.
GTlsCertificate *load_tls_certificate(const TlsFiles &files, std::string *error);

// The certificate authorities in a PEM file, to trust instead of the
// system's (a new reference), or null with `error` naming the file.
GTlsDatabase *load_tls_ca(const std::string &file, std::string *error);

// Why a peer's certificate was not accepted, in words, e.g. "signed by an
// unknown authority, expired".
std::string tls_certificate_problems(GTlsCertificateFlags flags);

}  // namespace wb
