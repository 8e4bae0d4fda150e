#include "httpclient.h"

#include <libsoup/soup.h>

#include <cstdlib>

#include "signalling/tls.h"

#include "common/debug.h"
#define GST_CAT_DEFAULT wb_signalling_debug

namespace wb {

std::string HttpResponse::header(const std::string &lower_name) const {
  auto it = headers.find(lower_name);
  return it == headers.end() ? "" : it->second;
}

unsigned HttpResponse::retry_after_s() const {
  std::string value = header("retry-after");
  if (value.empty()) return 0;
  char *end = nullptr;
  unsigned long s = strtoul(value.c_str(), &end, 10);
  return end && *end == '\0' ? unsigned(s) : 0;
}

std::string resolve_url(const std::string &base, const std::string &reference) {
  GError *error = nullptr;
  gchar *resolved = g_uri_resolve_relative(base.c_str(), reference.c_str(), G_URI_FLAGS_NONE, &error);
  if (!resolved) {
    g_clear_error(&error);
    return reference;
  }
  std::string out = resolved;
  g_free(resolved);
  return out;
}

HttpClient::HttpClient(unsigned timeout_s, const std::string &tls_ca) {
  session_ = soup_session_new_with_options("timeout", timeout_s, "idle-timeout", timeout_s,
                                           "user-agent", "webrtcbroadcast", nullptr);
  if (tls_ca.empty()) return;
  GTlsDatabase *database = load_tls_ca(tls_ca, &tls_ca_error_);
  if (!database) {
    GST_WARNING("%s", tls_ca_error_.c_str());
    return;
  }
  soup_session_set_tls_database(session_, database);
  g_object_unref(database);
}

HttpClient::~HttpClient() {
  soup_session_abort(session_);
  g_object_unref(session_);
}

HttpResponse HttpClient::send(const std::string &method, const std::string &url,
                              const std::map<std::string, std::string> &headers,
                              const std::string &content_type, const std::string &body) {
  HttpResponse response;
  response.url = url;
  if (!tls_ca_error_.empty()) {
    // Trusting the system's authorities instead would not be what was asked.
    response.error = tls_ca_error_;
    response.certificate_refused = true;
    return response;
  }
  SoupMessage *msg = soup_message_new(method.c_str(), url.c_str());
  if (!msg) {
    response.error = "not a usable URL: " + url;
    return response;
  }
  // Only asked when the certificate did not verify: keep why, and refuse it.
  GTlsCertificateFlags refused = GTlsCertificateFlags(0);
  g_signal_connect(msg, "accept-certificate",
                   G_CALLBACK(+[](SoupMessage *, GTlsCertificate *, GTlsCertificateFlags errors, gpointer data) {
                     *static_cast<GTlsCertificateFlags *>(data) = errors;
                     return FALSE;
                   }),
                   &refused);
  // Redirects are followed by post_offer() itself, so that only 307/308
  // are (as WHIP and WHEP require), with the body sent again.
  soup_message_add_flags(msg, SOUP_MESSAGE_NO_REDIRECT);
  SoupMessageHeaders *req = soup_message_get_request_headers(msg);
  // Signalling requests are rare, and a kept-alive connection to a node
  // that was killed in between trips an assertion in libsoup 3.2's
  // connection reuse (seen when a relay's upstream restarted).
  soup_message_headers_replace(req, "Connection", "close");
  for (const auto &h : headers) soup_message_headers_replace(req, h.first.c_str(), h.second.c_str());
  if (!content_type.empty()) {
    GBytes *bytes = g_bytes_new(body.data(), body.size());
    soup_message_set_request_body_from_bytes(msg, content_type.c_str(), bytes);
    g_bytes_unref(bytes);
  }
  GError *error = nullptr;
  GBytes *reply = soup_session_send_and_read(session_, msg, nullptr, &error);
  if (!reply && refused) {
    GUri *uri = soup_message_get_uri(msg);
    response.certificate_refused = true;
    const int port = g_uri_get_port(uri);
    response.error = std::string("TLS certificate of ") + g_uri_get_host(uri) +
                     (port > 0 ? ":" + std::to_string(port) : "") + " refused: " + tls_certificate_problems(refused) +
                     (refused & G_TLS_CERTIFICATE_UNKNOWN_CA ? " (for a private CA, set tls-ca)" : "");
    g_clear_error(&error);
    g_object_unref(msg);
    GST_WARNING("%s %s: %s", method.c_str(), url.c_str(), response.error.c_str());
    return response;
  }
  if (!reply) {
    response.error = error ? error->message : "no reply";
    g_clear_error(&error);
    g_object_unref(msg);
    GST_DEBUG("%s %s: %s", method.c_str(), url.c_str(), response.error.c_str());
    return response;
  }
  response.status = int(soup_message_get_status(msg));
  gsize size = 0;
  const char *data = static_cast<const char *>(g_bytes_get_data(reply, &size));
  response.body.assign(data ? data : "", size);
  g_bytes_unref(reply);
  SoupMessageHeadersIter iter;
  soup_message_headers_iter_init(&iter, soup_message_get_response_headers(msg));
  const char *name, *value;
  while (soup_message_headers_iter_next(&iter, &name, &value)) {
    gchar *lower = g_ascii_strdown(name, -1);
    auto &slot = response.headers[lower];
    // Repeated headers (Link) are joined as HTTP allows.
    slot = slot.empty() ? value : slot + ", " + value;
    g_free(lower);
  }
  const char *ctype = soup_message_headers_get_content_type(soup_message_get_response_headers(msg), nullptr);
  response.content_type = ctype ? ctype : "";
  g_object_unref(msg);
  GST_DEBUG("%s %s: %d", method.c_str(), url.c_str(), response.status);
  return response;
}

HttpResponse HttpClient::post_offer(const std::string &url, const std::string &sdp,
                                    const std::map<std::string, std::string> &headers, unsigned max_redirects) {
  std::string target = url;
  for (unsigned hop = 0;; ++hop) {
    HttpResponse r = send("POST", target, headers, "application/sdp", sdp);
    if ((r.status != 307 && r.status != 308) || hop == max_redirects) return r;
    std::string location = r.header("location");
    if (location.empty()) return r;
    target = resolve_url(target, location);
    GST_INFO("offer redirected to %s", target.c_str());
  }
}

}  // namespace wb
