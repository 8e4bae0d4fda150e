// Blocking HTTP for the WHIP/WHEP client side (relay pulls, WHIP pushes),
// on libsoup 3. One client per thread: a SoupSession is not shared.
#pragma once

#include <map>
#include <string>

typedef struct _SoupSession SoupSession;

namespace wb {

struct HttpResponse {
  int status = 0;            // 0: no HTTP answer at all (see error)
  std::string error;         // transport error, empty if an answer came
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
  explicit HttpClient(unsigned timeout_s = 5);
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
};

// `reference` (a Location header) resolved against `base`.
std::string resolve_url(const std::string &base, const std::string &reference);

}  // namespace wb
