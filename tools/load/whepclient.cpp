#include "whepclient.h"

#include "viewer.h"

#include <algorithm>

namespace load {

namespace {
constexpr int kMaxRedirects = 5;
// A node that is starting, full for now or busy answers 409, 429 or 503
// with Retry-After; a browser page asks again after it, and so do we, until
// the generator gives up on the viewer's join.
constexpr unsigned kLongestRetryAfterS = 10;

bool asks_to_retry(const HttpReply &reply) {
  return reply.retry_after_s && (reply.status == 409 || reply.status == 429 || reply.status == 503);
}
}  // namespace

WhepClient::WhepClient(EventLoop &loop, HttpPool &pool, std::string endpoint)
    : loop_(loop), pool_(pool), endpoint_(std::move(endpoint)) {}

void WhepClient::join(Viewer &viewer) { post(viewer, viewer.offer(), false); }

void WhepClient::post(Viewer &viewer, const std::string &offer, bool again) {
  pool_.submit([this, &viewer, offer, again](SoupSession *session) {
    // Times are measured from the first POST, as a user waits from there.
    if (!again) {
      const int64_t sent = monotonic_ns();
      loop_.post([&viewer, sent] { viewer.signalling_started(sent); });
    }
    HttpReply reply;
    std::string target = endpoint_;
    // A full node sends us on to a relay with 307: POST the same offer there.
    for (int hop = 0; hop <= kMaxRedirects; ++hop) {
      reply = http_send(session, "POST", target, "application/sdp", offer);
      if ((reply.status != 307 && reply.status != 308) || reply.location.empty()) break;
      target = reply.location;
    }
    loop_.post([this, &viewer, reply, offer] {
      if (asks_to_retry(reply) && viewer.state() == Viewer::State::Signalling) {
        viewer.refused_for_now(reply.describe());
        const int64_t wait = int64_t(std::min(reply.retry_after_s, kLongestRetryAfterS)) * kSecond;
        loop_.call_at(loop_.now() + wait, [this, &viewer, offer] {
          if (viewer.state() == Viewer::State::Signalling) post(viewer, offer, true);
        });
        return;
      }
      if (reply.status != 201) {
        viewer.fail("WHEP POST: " + reply.describe());
        return;
      }
      if (!reply.location.empty()) sessions_[viewer.index()] = reply.location;
      viewer.on_answer(reply.body);
    });
  });
}

void WhepClient::leave(Viewer &viewer, std::function<void()> done) {
  auto it = sessions_.find(viewer.index());
  if (it == sessions_.end()) {
    loop_.post(std::move(done));
    return;
  }
  std::string url = it->second;
  sessions_.erase(it);
  pool_.submit([this, url, done](SoupSession *session) {
    http_send(session, "DELETE", url);
    loop_.post(done);
  });
}

void WhepClient::forget(Viewer &viewer) { sessions_.erase(viewer.index()); }

}  // namespace load
