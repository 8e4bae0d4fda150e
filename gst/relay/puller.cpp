#include "puller.h"

#include <map>

#include "relay/backoff.h"
#include "relay/upstreamsession.h"
#include "signalling/httpclient.h"
#include "tree/children.h"

#include "common/debug.h"
#define GST_CAT_DEFAULT wb_relay_debug

namespace wb {

namespace {

using Clock = std::chrono::steady_clock;

// The upstream session's transport state, written on webrtcbin's thread.
struct TransportFlag {
  std::atomic<bool> failed{false};
};

bool path_contains(const std::string &path, const std::string &id) {
  std::string padded = "," + path + ",";
  return !id.empty() && padded.find("," + id + ",") != std::string::npos;
}

}  // namespace

Puller::Puller(RelayOutput &output, PullConfig config) : output_(output), config_(std::move(config)) {
  thread_ = std::thread([this] { run(); });
}

Puller::~Puller() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool Puller::sleep(std::chrono::milliseconds delay) {
  std::unique_lock<std::mutex> lock(mutex_);
  return !wake_.wait_for(lock, delay, [this] { return stopping_; });
}

// Full attempts back off, but an upstream that comes back must not wait out
// a long delay: a cheap OPTIONS each second ends the wait as soon as its
// HTTP side answers again. Only for an upstream that did not answer: one
// whose answers were the failure answers OPTIONS too, and would be retried
// every second.
bool Puller::wait_backoff(HttpClient &http, std::chrono::milliseconds delay,
                          const std::map<std::string, std::string> &headers) {
  const auto step = std::chrono::milliseconds(1000);
  auto end = Clock::now() + delay;
  while (Clock::now() + step < end) {
    if (!sleep(step)) return false;
    if (http.send("OPTIONS", config_.url, headers).status != 0) {
      GST_INFO("upstream %s answers again", config_.url.c_str());
      return true;
    }
  }
  auto rest = std::chrono::duration_cast<std::chrono::milliseconds>(end - Clock::now());
  return sleep(std::max(rest, std::chrono::milliseconds(0)));
}

void Puller::run() {
  HttpClient http(HttpClient::kDefaultTimeoutS, config_.tls_ca);
  Backoff backoff;
  std::map<std::string, std::string> headers;
  if (!config_.token.empty()) headers["Authorization"] = "Bearer " + config_.token;
  if (!config_.node_id.empty()) headers["Broadcast-Node"] = config_.node_id;
  if (!config_.advertise_url.empty()) headers["Broadcast-Relay-Url"] = config_.advertise_url;
  unsigned attempt = 0;

  while (true) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (stopping_) break;
    }
    if (attempt++) reconnects_++;
    output_.set_state(UpstreamState::Connecting, "", config_.url);
    auto flag = std::make_shared<TransportFlag>();
    auto session = std::make_unique<UpstreamSession>(
        "upstream" + std::to_string(attempt), output_.bin(), config_.transport, config_.latency_ms,
        [flag](GstWebRTCPeerConnectionState s) {
          if (s == GST_WEBRTC_PEER_CONNECTION_STATE_FAILED || s == GST_WEBRTC_PEER_CONNECTION_STATE_CLOSED)
            flag->failed = true;
        },
        [this](GstPad *pad) { output_.link(pad); });

    // Once viewers watch one codec, only that codec can continue; a medium
    // the relay does not carry is not asked for.
    std::vector<Codec> video;
    Codec established = output_.codec("video");
    if (!output_.carries("video")) video = {};
    else if (established != Codec::Unknown) video = {established};
    else video = {Codec::H264, Codec::VP8, Codec::VP9};

    std::string error;
    unsigned retry_after_s = 0;
    bool unreachable = false;
    std::string offer = session->make_offer(video, output_.carries("audio"), Clock::now() + std::chrono::seconds(5), &error);
    HttpResponse response;
    std::string resource;
    if (!offer.empty()) {
      response = http.post_offer(config_.url, offer, headers);
      if (response.status == 201) {
        resource = resolve_url(response.url, response.header("location"));
        std::string path = response.header("broadcast-path");
        if (path_contains(path, config_.node_id)) {
          error = "refusing " + response.url + ": it is below us in the relay tree (a loop)";
        } else {
          error = session->accept_answer(response.body);
          if (error.empty()) {
            output_.set_path(path.empty() ? config_.node_id : path + "," + config_.node_id);
            output_.expect(session->media());
          }
        }
      } else if (response.status) {
        error = "upstream answered " + std::to_string(response.status) + ": " + response.body;
        while (!error.empty() && (error.back() == '\n' || error.back() == '\r')) error.pop_back();
        retry_after_s = response.retry_after_s();
      } else if (response.certificate_refused) {
        // It answered, with a certificate we refuse: it will answer an
        // OPTIONS the same way, so this is waited out like any refusal.
        error = response.error;
      } else {
        error = "upstream unreachable: " + response.error;
        unreachable = true;
      }
    }

    bool had_media = false;
    if (error.empty()) {
      GST_INFO("pulling from %s (session %s)", response.url.c_str(), resource.c_str());
      output_.set_state(UpstreamState::Live, "", response.url);
      // Which running node answered: if it is still the one answering its
      // status later, our session with it still stands.
      const std::string status_url = response.url + "/status";
      NodeStatus upstream_node;
      HttpResponse first = http.send("GET", status_url, headers);
      if (first.status != 200 || !parse_node_status(first.body, &upstream_node)) upstream_node.instance.clear();
      // Silence counts from the answer: a session that never delivers is lost too.
      const gint64 started_us = g_get_monotonic_time();
      const gint64 first_media_grace_us = 3 * G_USEC_PER_SEC;
      gint64 excused_until = 0;
      while (sleep(std::chrono::milliseconds(100))) {
        gint64 now = g_get_monotonic_time();
        gint64 last = output_.last_media_us();
        if (last > started_us) had_media = true;
        gint64 since = std::max(had_media ? last : started_us + first_media_grace_us, excused_until);
        if (flag->failed) {
          error = "transport failed";
        } else if (now - since > gint64(config_.upstream_timeout.count()) * 1000) {
          // A relay upstream that lost its own upstream is alive but silent:
          // our session with it will carry media again once it recovers, so
          // keep it rather than pile new sessions onto it.
          NodeStatus status;
          HttpResponse r = http.send("GET", status_url, headers);
          if (!upstream_node.instance.empty() && r.status == 200 && parse_node_status(r.body, &status) &&
              status.instance == upstream_node.instance) {
            excused_until = g_get_monotonic_time();
            output_.set_state(UpstreamState::Live, "upstream is alive but has no media itself", response.url);
          } else {
            error = had_media ? "no media for " + std::to_string(config_.upstream_timeout.count()) + " ms"
                              : "no media after the answer";
          }
        }
        if (!error.empty()) break;
      }
      if (error.empty()) error = "relay stopped";
    }
    // Also a session whose answer we refused: the upstream would otherwise
    // hold it until it times out, one per attempt.
    if (!resource.empty()) http.send("DELETE", resource, headers);
    session->close();
    output_.unlink_all();
    session.reset();
    if (had_media) backoff.reset();

    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (stopping_) break;
    }
    // A lost session is retried at once (a restarted upstream is often
    // already back); failed attempts back off.
    auto delay = had_media ? std::chrono::milliseconds(0)
                 : retry_after_s ? std::chrono::milliseconds(retry_after_s * 1000)
                                 : backoff.next();
    GST_WARNING("upstream %s: %s; retrying in %lld ms%s", config_.url.c_str(), error.c_str(),
                (long long)delay.count(), unreachable ? " (sooner once it answers)" : "");
    output_.set_state(UpstreamState::Lost, error, config_.url);
    if (!(unreachable ? wait_backoff(http, delay, headers) : sleep(delay))) break;
  }
  output_.set_state(UpstreamState::Idle, "", config_.url);
}

}  // namespace wb
