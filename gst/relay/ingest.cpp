#include "ingest.h"

#include <atomic>

#include "relay/upstreamsession.h"
#include "viewer/offer.h"

#include "common/debug.h"
#include "common/strings.h"
#define GST_CAT_DEFAULT wb_relay_debug

namespace wb {

struct Ingest::Publisher {
  std::string id;
  std::unique_ptr<UpstreamSession> session;
  std::shared_ptr<std::atomic<bool>> failed = std::make_shared<std::atomic<bool>>(false);
  bool answered = false;
};

namespace {

// The publisher's offer, checked for the codecs we can relay: the one our
// viewers already get, or else H.264 (any browser decodes it), VP8, VP9.
OfferCheck check_publisher_offer(const std::string &sdp, Codec established_video, Codec established_audio) {
  std::vector<Codec> candidates = established_video != Codec::Unknown
                                      ? std::vector<Codec>{established_video}
                                      : std::vector<Codec>{Codec::H264, Codec::VP8, Codec::VP9};
  StreamFormat audio{established_audio != Codec::Unknown ? established_audio : Codec::Opus, ""};
  OfferCheck last;
  for (Codec c : candidates) {
    StreamFormat video{c, c == Codec::H264 ? "42e01f" : ""};
    OfferCheck check = check_offer(sdp, video, audio, Offerer::Publisher);
    if (check.status == 400) return check;
    bool video_ok = false, has_video = false;
    for (const auto &m : check.media) {
      if (m.kind != "video") continue;
      has_video = true;
      video_ok |= m.accepted();
    }
    if (check.status == 0 && (video_ok || !has_video)) return check;
    last = std::move(check);
  }
  return last;
}

}  // namespace

Ingest::Ingest(RelayOutput &output, IngestConfig config) : output_(output), config_(std::move(config)) {}

Ingest::~Ingest() { stop(); }

bool Ingest::start(std::string *error) {
  loop_.start("relay-ingest");
  loop_.add_timer(100, [this] { watch(); });
  Endpoint endpoint;
  endpoint.path = "/whip";
  endpoint.token = config_.token;
  endpoint.viewer_page = false;
  if (!config_.transport.stun_server.empty()) endpoint.ice_servers.push_back(config_.transport.stun_server);
  for (const auto &t : config_.transport.turn_servers) endpoint.ice_servers.push_back(t);
  bool ok = false;
  loop_.invoke_sync([&] {
    server_ = std::make_unique<SignallingServer>(*this, endpoint, HttpLimits{}, config_.tls);
    ok = server_->start(loop_.context(), config_.address, config_.port, error);
    if (!ok) server_.reset();
  });
  output_.set_state(UpstreamState::Idle, "waiting for a WHIP publisher", "");
  return ok;
}

void Ingest::stop() {
  if (!loop_.running()) return;
  loop_.invoke_sync([&] {
    server_.reset();
    end_publisher("relay stopped");
  });
  loop_.stop();
}

SessionHandler::Join Ingest::join(const JoinRequest &request) {
  Join result;
  auto publisher = std::make_shared<Publisher>();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (publisher_) {
      result.status = 409;
      result.error = "a publisher is already live on this endpoint";
      return result;
    }
    publisher_ = publisher;  // holds the slot while we answer
  }
  OfferCheck check = check_publisher_offer(request.offer, output_.codec("video"), output_.codec("audio"));
  if (check.status) {
    GST_INFO("publisher offer refused (%d): %s", check.status, check.error.c_str());
    std::lock_guard<std::mutex> lock(mutex_);
    publisher_.reset();
    result.status = check.status;
    result.error = check.error;
    return result;
  }
  publisher->id = random_hex(kSessionIdBytes);
  auto failed = publisher->failed;
  publisher->session = std::make_unique<UpstreamSession>(
      "publisher" + std::to_string(++sessions_), output_.bin(), config_.transport, config_.latency_ms,
      [failed](GstWebRTCPeerConnectionState s) {
        if (s == GST_WEBRTC_PEER_CONNECTION_STATE_FAILED || s == GST_WEBRTC_PEER_CONNECTION_STATE_CLOSED)
          *failed = true;
      },
      [this](GstPad *pad) { output_.link(pad); });
  std::string error;
  std::string answer = publisher->session->answer(
      request.offer, check, std::chrono::steady_clock::now() + std::chrono::seconds(5), &error);
  if (answer.empty()) {
    GST_WARNING("publisher: %s", error.c_str());
    loop_.invoke_sync([&] {
      publisher->session->close();
      output_.unlink_all();
      std::lock_guard<std::mutex> lock(mutex_);
      if (publisher_ == publisher) publisher_.reset();
    });
    result.status = 400;
    result.error = error;
    return result;
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    publisher->answered = true;
  }
  output_.set_path(config_.node_id);
  output_.expect(publisher->session->media());
  output_.set_state(UpstreamState::Live, "publisher " + publisher->id, "");
  GST_INFO("publisher %s answered", publisher->id.c_str());
  result.status = 201;
  result.session_id = publisher->id;
  result.answer = answer;
  return result;
}

// The WHIP token, checked by the server for POST and DELETE alike, is the
// one credential here.
SessionHandler::Leave Ingest::leave(const std::string &session_id, const std::string &) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!publisher_ || publisher_->id != session_id) return Leave::Unknown;
  }
  end_publisher("publisher left (DELETE)");
  return Leave::Left;
}

void Ingest::end_publisher(const std::string &reason) {
  std::shared_ptr<Publisher> publisher;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!publisher_ || !publisher_->answered) return;
    publisher = std::move(publisher_);
  }
  publisher->session->close();
  output_.unlink_all();
  GST_INFO("publisher %s ended: %s", publisher->id.c_str(), reason.c_str());
  output_.set_state(UpstreamState::Lost, reason, "");
}

void Ingest::watch() {
  std::shared_ptr<Publisher> publisher;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!publisher_ || !publisher_->answered) return;
    publisher = publisher_;
  }
  gint64 now = g_get_monotonic_time();
  gint64 last = output_.last_media_us();
  gint64 since = std::max(last, publisher->session->created_us() + 3 * G_USEC_PER_SEC);
  if (*publisher->failed) end_publisher("publisher's transport failed");
  else if (now - since > gint64(config_.upstream_timeout.count()) * 1000) end_publisher("publisher went silent");
}

}  // namespace wb
