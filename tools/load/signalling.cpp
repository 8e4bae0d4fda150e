#include "signalling.h"

#include <algorithm>
#include <cstdlib>

namespace load {

HttpPool::HttpPool(unsigned threads, unsigned timeout_seconds) {
  for (unsigned i = 0; i < threads; ++i) threads_.emplace_back([this, timeout_seconds] { work(timeout_seconds); });
}

void HttpPool::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
    jobs_.clear();
  }
  wake_.notify_all();
  for (auto &t : threads_) t.join();
  threads_.clear();
}

void HttpPool::submit(Job job) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    jobs_.push_back(std::move(job));
  }
  wake_.notify_one();
}

void HttpPool::work(unsigned timeout_seconds) {
  // A SoupSession belongs to the thread that made it; this one keeps its
  // connections alive across this thread's requests.
  SoupSession *session = soup_session_new_with_options("timeout", timeout_seconds, nullptr);
  for (;;) {
    Job job;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
      if (jobs_.empty()) break;
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    job(session);
  }
  g_object_unref(session);
}

std::string HttpReply::describe() const {
  if (!status) return error.empty() ? "no answer" : error;
  std::string text = body.substr(0, 200);
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  return std::to_string(status) + (text.empty() ? "" : ": " + text);
}

HttpReply http_send(SoupSession *session, const std::string &method, const std::string &url,
                    const std::string &content_type, const std::string &body, GCancellable *cancel) {
  HttpReply reply;
  SoupMessage *msg = soup_message_new(method.c_str(), url.c_str());
  if (!msg) {
    reply.error = "bad URL: " + url;
    return reply;
  }
  soup_message_add_flags(msg, SOUP_MESSAGE_NO_REDIRECT);
  if (!body.empty()) {
    GBytes *bytes = g_bytes_new(body.data(), body.size());
    soup_message_set_request_body_from_bytes(msg, content_type.c_str(), bytes);
    g_bytes_unref(bytes);
  }
  GError *error = nullptr;
  GBytes *answer = soup_session_send_and_read(session, msg, cancel, &error);
  if (answer) {
    gsize size;
    const char *data = static_cast<const char *>(g_bytes_get_data(answer, &size));
    reply.body.assign(data ? data : "", size);
    g_bytes_unref(answer);
  }
  if (error) {
    reply.error = error->message;
    g_error_free(error);
  } else {
    reply.status = int(soup_message_get_status(msg));
  }
  SoupMessageHeaders *headers = soup_message_get_response_headers(msg);
  const char *location = soup_message_headers_get_one(headers, "Location");
  if (location) {
    gchar *resolved = g_uri_resolve_relative(url.c_str(), location, G_URI_FLAGS_NONE, nullptr);
    reply.location = resolved ? resolved : location;
    g_free(resolved);
  }
  if (const char *retry = soup_message_headers_get_one(headers, "Retry-After")) {
    char *end = nullptr;
    unsigned long seconds = strtoul(retry, &end, 10);
    if (end != retry && *end == '\0') reply.retry_after_s = unsigned(std::min(seconds, 3600ul));
  }
  g_object_unref(msg);
  return reply;
}

}  // namespace load
