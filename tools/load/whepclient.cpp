#include "whepclient.h"

#include "viewer.h"

namespace load {

namespace {
constexpr int kMaxRedirects = 5;
}

WhepClient::WhepClient(EventLoop &loop, HttpPool &pool, std::string endpoint)
    : loop_(loop), pool_(pool), endpoint_(std::move(endpoint)) {}

void WhepClient::join(Viewer &viewer) {
  std::string offer = viewer.offer();
  pool_.submit([this, &viewer, offer](SoupSession *session) {
    int64_t sent = monotonic_ns();
    loop_.post([&viewer, sent] { viewer.signalling_started(sent); });
    HttpReply reply;
    std::string target = endpoint_;
    // A full node sends us on to a relay with 307: POST the same offer there.
    for (int hop = 0; hop <= kMaxRedirects; ++hop) {
      reply = http_send(session, "POST", target, "application/sdp", offer);
      if ((reply.status != 307 && reply.status != 308) || reply.location.empty()) break;
      target = reply.location;
    }
    loop_.post([this, &viewer, reply] {
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
