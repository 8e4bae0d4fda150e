// Blocking HTTP for the WHIP/WHEP client side (relay pulls, WHIP pushes),
// on libsoup 3. One client per thread: a SoupSession is not shared.
// https:// URLs are verified against the system's certificate authorities,
// or only against those of a `tls_ca` file.
#pragma once

#include <map>
#include <string>

typedef struct _SoupSession SoupSession;

namespace wb {

struct HttpResponse {
  int status = 0;            // 0: no HTTP answer at all (see error)
  std::string error;         // transport error, empty if an answer came
  bool certificate_refused = false;  // the server's TLS certificate did not verify (see error)
  std::string url;           // the URL that answered (after redirects)
  std::string content_type;
  std::string body;
  std::map<std::string, std::string> headers;  // names in lower case

  std::string header(const std::string &lower_name) const;
  // Retry-After in seconds, 0 if absent or not a number of seconds.
  unsigned retry_after_s() const;
};

class HttpClient {
 public:
  static constexpr unsigned kDefaultTimeoutS = 5;
  // `tls_ca`: a PEM file of the only authorities to trust (empty: the
  // system's). One that cannot be read fails every request, saying why.
  explicit HttpClient(unsigned timeout_s = kDefaultTimeoutS, const std::string &tls_ca = "");
  ~HttpClient();
  HttpClient(const HttpClient &) = delete;
  HttpClient &operator=(const HttpClient &) = delete;

  HttpResponse send(const std::string &method, const std::string &url,
                    const std::map<std::string, std::string> &headers, const std::string &content_type = "",
                    const std::string &body = "");
  // POSTs an SDP offer, following 307/308 redirects (WHIP/WHEP load
  // balancing) with the same body, at most `max_redirects` times.
  HttpResponse post_offer(const std::string &url, const std::string &sdp,
                          const std::map<std::string, std::string> &headers, unsigned max_redirects = 5);

 private:
  SoupSession *session_;
  std::string tls_ca_error_;
};

// `reference` (a Location header) resolved against `base`.
std::string resolve_url(const std::string &base, const std::string &reference);

}  // namespace wb
