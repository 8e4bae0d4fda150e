#include "node.h"

#include "common/debug.h"
#include "common/fdlimit.h"

#define GST_CAT_DEFAULT wb_viewer_debug

namespace wb {

Node::Node(GstBin *bin, Audience::Callbacks callbacks)
    : bin_(bin), audience_(std::make_unique<Audience>(bin, loop_, std::move(callbacks))) {}

Node::~Node() { stop(); }

bool Node::start(const NodeSettings &settings, std::function<Pusher::Inputs()> push_inputs,
                 Pusher::StateListener on_push_state, std::string *what, std::string *error) {
  GST_DEBUG("open-file limit %lu", raise_open_file_limit());
  loop_.start("viewermanager");
  // Loading webrtcbin's plugins (webrtc, dtls, srtp, nice) and making the
  // process's DTLS certificate (once, by the first dtlsdec) take a few
  // hundred ms: pay them now rather than in the first viewer's answer,
  // which after a restart is a relay waiting to resume.
  loop_.invoke_async([] {
    for (const char *factory : {"webrtcbin", "dtlsdec"}) {
      GstElement *warm = gst_element_factory_make(factory, nullptr);
      if (warm) gst_object_unref(gst_object_ref_sink(warm));
    }
  });
  loop_.add_timer(500, [this] {
    const size_t left = audience_->reap();
    if (memory_return_.on_tick(left)) return_memory(left);
    update_events();
  });
  if (!settings.tls_ca.empty()) {
    GTlsDatabase *ca = load_tls_ca(settings.tls_ca, error);
    if (!ca) {
      *what = "Could not read tls-ca";
      return false;
    }
    g_object_unref(ca);
  }
  audience_->set_children_tls_ca(settings.tls_ca);
  if (!settings.push_url.empty()) {
    PushConfig push;
    push.url = settings.push_url;
    push.token = settings.push_token;
    push.tls_ca = settings.tls_ca;
    push.transport = audience_->config().transport;
    pusher_ = std::make_unique<Pusher>(bin_, std::move(push_inputs), push, std::move(on_push_state));
  }
  audience_->open_lite_port();
  if (settings.port == 0) return true;
  const std::string &metrics = settings.metrics_path;
  if (!metrics.empty() && (metrics[0] != '/' || metrics == "/" || metrics == "/index.html" || metrics == "/stats" ||
                           metrics == "/dashboard" || metrics.compare(0, 5, "/whep") == 0)) {
    *what = "metrics-path cannot be used";
    *error = "metrics-path '" + metrics +
             "' must start with '/' and be neither /, /index.html, /stats, /dashboard nor under /whep";
    return false;
  }
  bool ok = false;
  loop_.invoke_sync([&] {
    Endpoint endpoint;
    const TransportConfig transport = audience_->config().transport;
    endpoint.token = settings.viewer_token;
    endpoint.metrics_path = settings.metrics_path;
    endpoint.metrics_token = settings.metrics_token;
    endpoint.events = true;
    if (!transport.stun_server.empty()) endpoint.ice_servers.push_back(transport.stun_server);
    for (const auto &t : transport.turn_servers) endpoint.ice_servers.push_back(t);
    server_ = std::make_unique<SignallingServer>(*audience_, endpoint, settings.http, settings.tls);
    ok = server_->start(loop_.context(), settings.address, settings.port, error);
    if (!ok) server_.reset();
  });
  if (!ok) *what = "Could not start the WHEP server";
  return ok;
}

void Node::return_memory(size_t sessions_left) {
  GST_INFO("a burst of viewers has gone (%zu left): returning free memory to the system", sessions_left);
  if (server_)
    server_->renew_workers(return_free_memory);  // each new worker then trims the arena it takes over
  else
    return_free_memory();
}

void Node::update_events() {
  if (!server_) return;
  const Audience::Inputs inputs = audience_->inputs();
  uint64_t packets = 0;
  for (WbFanout *fanout : {inputs.video, inputs.audio})
    if (fanout) packets += fanout_get_stats(fanout).packets_in;
  const gint64 now = g_get_monotonic_time();
  server_->update_events(activity_.update(packets, now), audience_->viewers(), now);
}

void Node::stop() {
  pusher_.reset();
  if (!loop_.running()) return;
  loop_.invoke_sync([&] {
    server_.reset();
    audience_->remove_all("broadcast stopped");
  });
  loop_.stop();
}

}  // namespace wb
