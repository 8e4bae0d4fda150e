#include "testsupport.h"

#include <json-glib/json-glib.h>

#include <gio/gio.h>
#include <gst/rtp/gstrtpbuffer.h>
#include <gst/webrtc/webrtc.h>
#include <libsoup/soup.h>
#include <nice/agent.h>

#include <cstring>
#include <thread>

namespace wbtest {

std::chrono::milliseconds scaled(std::chrono::milliseconds timeout) {
  static const double scale = [] {
    const char *value = g_getenv("WB_TEST_TIME_SCALE");
    const double parsed = value ? g_ascii_strtod(value, nullptr) : 1.0;
    return parsed >= 1.0 ? parsed : 1.0;
  }();
  return std::chrono::milliseconds(static_cast<int64_t>(timeout.count() * scale));
}

bool wait_until(const std::function<bool()> &condition, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + scaled(timeout);
  while (!condition()) {
    if (std::chrono::steady_clock::now() >= deadline) return condition();
    std::this_thread::sleep_for(10ms);
  }
  return true;
}

// Below Linux's ephemeral range (32768-60999): a port the kernel picked
// for us from that range can be taken, between our check and the node's
// bind, as the local port of any client connection on the machine (seen
// under ASan: "Address already in use" on a port this returned).
unsigned free_tcp_port() {
  GInetAddress *lo = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
  unsigned port = 0;
  for (int attempt = 0; attempt < 200 && !port; ++attempt) {
    const unsigned candidate = unsigned(g_random_int_range(20000, 32768));
    GSocket *sock = g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, nullptr);
    GSocketAddress *addr = g_inet_socket_address_new(lo, guint16(candidate));
    if (sock && g_socket_bind(sock, addr, FALSE, nullptr)) port = candidate;
    g_object_unref(addr);
    if (sock) {
      g_socket_close(sock, nullptr);
      g_object_unref(sock);
    }
  }
  g_object_unref(lo);
  return port;
}

std::string HttpResponse::header(const std::string &name) const {
  gchar *lower = g_ascii_strdown(name.c_str(), -1);
  auto it = headers.find(lower);
  g_free(lower);
  return it == headers.end() ? "" : it->second;
}

HttpResponse http_request(const std::string &method, const std::string &url,
                          const std::string &content_type, const std::string &body,
                          const std::map<std::string, std::string> &headers, bool follow_redirects,
                          const std::string &tls_ca) {
  HttpResponse response;
  SoupSession *session = soup_session_new_with_options("timeout", 15, nullptr);
  if (!tls_ca.empty()) {
    GError *error = nullptr;
    GTlsDatabase *database = g_tls_file_database_new(tls_ca.c_str(), &error);
    if (!database) {
      ADD_FAILURE() << "tls_ca " << tls_ca << ": " << error->message;
      g_error_free(error);
      g_object_unref(session);
      return response;
    }
    soup_session_set_tls_database(session, database);
    g_object_unref(database);
  }
  SoupMessage *msg = soup_message_new(method.c_str(), url.c_str());
  if (!msg) {
    g_object_unref(session);
    return response;
  }
  // libsoup re-sends the body on 307/308, as WHEP clients must.
  if (!follow_redirects) soup_message_add_flags(msg, SOUP_MESSAGE_NO_REDIRECT);
  for (const auto &h : headers)
    soup_message_headers_replace(soup_message_get_request_headers(msg), h.first.c_str(), h.second.c_str());
  if (!content_type.empty() || !body.empty()) {
    GBytes *bytes = g_bytes_new(body.data(), body.size());
    soup_message_set_request_body_from_bytes(msg, content_type.empty() ? nullptr : content_type.c_str(), bytes);
    g_bytes_unref(bytes);
  }
  GError *error = nullptr;
  GBytes *reply = soup_session_send_and_read(session, msg, nullptr, &error);
  if (reply) {
    gsize size;
    const char *data = static_cast<const char *>(g_bytes_get_data(reply, &size));
    response.body.assign(data ? data : "", size);
    g_bytes_unref(reply);
  }
  if (error) g_error_free(error);
  response.status = soup_message_get_status(msg);
  gchar *final_url = g_uri_to_string(soup_message_get_uri(msg));
  response.url = final_url;
  g_free(final_url);
  SoupMessageHeadersIter iter;
  const char *name, *value;
  soup_message_headers_iter_init(&iter, soup_message_get_response_headers(msg));
  while (soup_message_headers_iter_next(&iter, &name, &value)) {
    gchar *lower = g_ascii_strdown(name, -1);
    response.headers[lower] = value;
    g_free(lower);
  }
  g_object_unref(msg);
  g_object_unref(session);
  return response;
}

int64_t video_stream_stat(const std::string &stats_url, const char *field) {
  HttpResponse r = http_request("GET", stats_url);
  JsonNode *root = r.status == 200 ? json_from_string(r.body.c_str(), nullptr) : nullptr;
  if (!root) return -1;
  int64_t value = -1;
  JsonObject *o = JSON_NODE_HOLDS_OBJECT(root) ? json_node_get_object(root) : nullptr;
  JsonObject *streams = o && json_object_has_member(o, "streams") ? json_object_get_object_member(o, "streams") : nullptr;
  JsonObject *video =
      streams && json_object_has_member(streams, "video") ? json_object_get_object_member(streams, "video") : nullptr;
  if (video && json_object_has_member(video, field)) value = json_object_get_int_member(video, field);
  json_node_unref(root);
  return value;
}

namespace {

std::string encoder_for(const std::string &video, unsigned gop) {
  std::string g = std::to_string(gop);
  if (video == "h264")
    return "x264enc tune=zerolatency speed-preset=ultrafast key-int-max=" + g +
           " bitrate=800 ! video/x-h264,profile=constrained-baseline";
  if (video == "vp8") return "vp8enc deadline=1 cpu-used=8 keyframe-max-dist=" + g + " lag-in-frames=0";
  if (video == "vp9") return "vp9enc deadline=1 cpu-used=8 keyframe-max-dist=" + g + " lag-in-frames=0";
  return "";
}


}  // namespace

void use_loopback_for_ice(GstElement *webrtc) {
  GstObject *ice = nullptr;
  g_object_get(webrtc, "ice-agent", &ice, nullptr);
  NiceAgent *agent = nullptr;
  g_object_get(ice, "agent", &agent, nullptr);
  g_object_set(agent, "upnp", FALSE, nullptr);
  g_object_set(ice, "ice-tcp", FALSE, nullptr);
  NiceAddress addr;
  nice_address_init(&addr);
  nice_address_set_from_string(&addr, "127.0.0.1");
  nice_agent_add_local_address(agent, &addr);
  g_object_unref(agent);
  gst_object_unref(ice);
}

const GstStructure *wait_reply(GstPromise *promise) {
  gst_promise_wait(promise);
  return gst_promise_get_reply(promise);
}

Broadcast::Broadcast(const Options &options) : tls_ca_(options.tls_ca) {
  port_ = free_tcp_port();
  std::string launch;
  if (options.video != "none")
    launch += "videotestsrc is-live=true pattern=ball ! video/x-raw,width=320,height=240,framerate=30/1 ! " +
              encoder_for(options.video, options.gop) + " ! bs.video ";
  if (options.audio)
    // 10 ms source buffers, as gst-broadcast's test tone and a capture card's.
    launch += "audiotestsrc is-live=true wave=ticks samplesperbuffer=480 ! audioconvert ! audioresample ! opusenc ! "
              "bs.audio ";
  launch += "broadcastsink name=bs address=127.0.0.1 ice-address=127.0.0.1 port=" + std::to_string(port_) +
            " " + options.extra_sink_props;
  GError *error = nullptr;
  pipeline_ = gst_parse_launch(launch.c_str(), &error);
  if (error) {
    error_ = error->message;
    g_error_free(error);
  }
  if (pipeline_) sink_ = gst_bin_get_by_name(GST_BIN(pipeline_), "bs");
}

Broadcast::Broadcast(const std::string &launch_line, unsigned port, const std::string &tls_ca)
    : port_(port), tls_ca_(tls_ca) {
  GError *error = nullptr;
  pipeline_ = gst_parse_launch(launch_line.c_str(), &error);
  if (error) {
    error_ = error->message;
    g_error_free(error);
  }
  if (pipeline_) sink_ = gst_bin_get_by_name(GST_BIN(pipeline_), "bs");
}

Broadcast::~Broadcast() {
  stop();
  if (sink_) gst_object_unref(sink_);
  if (pipeline_) gst_object_unref(pipeline_);
}

bool Broadcast::start() {
  if (!pipeline_ || !sink_) return false;
  GstBus *bus = gst_element_get_bus(pipeline_);
  gst_bus_set_sync_handler(
      bus,
      +[](GstBus *, GstMessage *msg, gpointer data) {
        auto *self = static_cast<Broadcast *>(data);
        if (GST_MESSAGE_TYPE(msg) == GST_MESSAGE_ERROR) {
          GError *err;
          gchar *dbg;
          gst_message_parse_error(msg, &err, &dbg);
          std::lock_guard<std::mutex> lock(self->mutex_);
          self->error_ = std::string(err->message) + " (" + (dbg ? dbg : "") + ")";
          g_error_free(err);
          g_free(dbg);
        } else if (GST_MESSAGE_TYPE(msg) == GST_MESSAGE_EOS) {
          self->eos_ = true;
        }
        return GST_BUS_PASS;
      },
      this, nullptr);
  gst_object_unref(bus);
  if (gst_element_set_state(pipeline_, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) return false;
  return wait_until([this] { return http_request("GET", url("/"), "", "", {}, true, tls_ca_).status == 200; },
                    5000ms);
}

bool Broadcast::wait_media_flowing() {
  return wait_until(
      [&] {
        GstStructure *result = nullptr;
        g_signal_emit_by_name(sink_, "add-viewer", "", &result);
        int status = 0;
        gst_structure_get_int(result, "status", &status);
        gst_structure_free(result);
        return status != 409;  // the empty offer gets 400 once media flows
      },
      5000ms);
}

void Broadcast::stop() {
  if (pipeline_) gst_element_set_state(pipeline_, GST_STATE_NULL);
}

std::string Broadcast::url(const std::string &path) const {
  return (tls_ca_.empty() ? "http://127.0.0.1:" : "https://127.0.0.1:") + std::to_string(port_) + path;
}

std::string Broadcast::last_error() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return error_;
}

guint Broadcast::viewer_count() const {
  guint n = 0;
  g_object_get(sink_, "viewer-count", &n, nullptr);
  return n;
}

WhepViewer::WhepViewer() : WhepViewer(Options()) {}

WhepViewer::WhepViewer(const Options &options) : options_(options) {
  pipeline_ = gst_pipeline_new(nullptr);
  webrtc_ = gst_element_factory_make("webrtcbin", nullptr);
  g_object_set(webrtc_, "bundle-policy", GST_WEBRTC_BUNDLE_POLICY_MAX_BUNDLE, nullptr);
  use_loopback_for_ice(webrtc_);
  // GStreamer's rtpsession holds a NACK back to RFC 4585's early-feedback
  // timing (a browser sends it at once): here up to 930 ms from the drop to
  // the answer's arrival, so the jitter buffer waits twice that.
  if (options.nack) g_object_set(webrtc_, "latency", 2000u, nullptr);
  gst_bin_add(GST_BIN(pipeline_), webrtc_);
  g_signal_connect(webrtc_, "pad-added", G_CALLBACK(on_pad_added), this);
}

WhepViewer::~WhepViewer() {
  disconnect(!session_url_.empty());
  gst_object_unref(pipeline_);
}

std::string make_offer_with(GstElement *webrtc, const WhepViewer::Options &options) {
  auto add = [&](const std::string &caps_str, bool nack) {
    GstCaps *caps = gst_caps_from_string(caps_str.c_str());
    GstWebRTCRTPTransceiver *trans = nullptr;
    g_signal_emit_by_name(webrtc, "add-transceiver", GST_WEBRTC_RTP_TRANSCEIVER_DIRECTION_RECVONLY, caps, &trans);
    gst_caps_unref(caps);
    // The jitter buffer asks for what is missing; rtpsession sends the NACK.
    // (webrtcbin 1.22 sets a bundled jitter buffer's do-retransmission from
    // each transceiver in turn, the last one winning: so on all of them.)
    if (trans && nack) g_object_set(trans, "do-nack", TRUE, nullptr);
    if (trans) gst_object_unref(trans);
  };
  if (!options.video_codec.empty()) {
    std::string caps = "application/x-rtp,media=video,clock-rate=90000,encoding-name=" + options.video_codec +
                       ",payload=" + std::to_string(options.video_pt);
    if (options.video_codec == "H264")
      caps += ",packetization-mode=(string)1,profile-level-id=(string)42e01f,level-asymmetry-allowed=(string)1";
    if (options.nack) caps += ",rtcp-fb-nack=(boolean)true";
    add(caps, options.nack);
  }
  if (options.audio)
    add("application/x-rtp,media=audio,clock-rate=48000,encoding-name=OPUS,encoding-params=(string)2,payload=" +
            std::to_string(options.audio_pt),
        options.nack);
  GstPromise *promise = gst_promise_new();
  g_signal_emit_by_name(webrtc, "create-offer", nullptr, promise);
  const GstStructure *reply = wait_reply(promise);
  GstWebRTCSessionDescription *offer = nullptr;
  gst_structure_get(reply, "offer", GST_TYPE_WEBRTC_SESSION_DESCRIPTION, &offer, nullptr);
  gst_promise_unref(promise);
  if (!offer) return "";
  promise = gst_promise_new();
  g_signal_emit_by_name(webrtc, "set-local-description", offer, promise);
  wait_reply(promise);
  gst_promise_unref(promise);
  gst_webrtc_session_description_free(offer);
  wait_until(
      [&] {
        GstWebRTCICEGatheringState state;
        g_object_get(webrtc, "ice-gathering-state", &state, nullptr);
        return state == GST_WEBRTC_ICE_GATHERING_STATE_COMPLETE;
      },
      5000ms);
  GstWebRTCSessionDescription *local = nullptr;
  g_object_get(webrtc, "local-description", &local, nullptr);
  gchar *text = gst_sdp_message_as_text(local->sdp);
  std::string sdp(text);
  g_free(text);
  gst_webrtc_session_description_free(local);
  return sdp;
}

std::string make_offer(const WhepViewer::Options &options) {
  GstElement *pipeline = gst_pipeline_new(nullptr);
  GstElement *webrtc = gst_element_factory_make("webrtcbin", nullptr);
  use_loopback_for_ice(webrtc);
  g_object_set(webrtc, "bundle-policy", GST_WEBRTC_BUNDLE_POLICY_MAX_BUNDLE, nullptr);
  gst_bin_add(GST_BIN(pipeline), webrtc);
  gst_element_set_state(pipeline, GST_STATE_PLAYING);
  std::string sdp = make_offer_with(webrtc, options);
  gst_element_set_state(pipeline, GST_STATE_NULL);
  gst_object_unref(pipeline);
  return sdp;
}

int WhepViewer::connect(const std::string &endpoint) {
  connect_time_ = std::chrono::steady_clock::now();
  gst_element_set_state(pipeline_, GST_STATE_PLAYING);
  std::string offer = make_offer_with(webrtc_, options_);
  if (offer.empty()) {
    error_ = "no offer";
    return 0;
  }
  // WHEP load balancing: re-POST the offer where a 307/308 points.
  HttpResponse response;
  std::string target = endpoint;
  for (int hop = 0; hop < 5; ++hop) {
    response = http_request("POST", target, "application/sdp", offer, {}, false, options_.tls_ca);
    if (response.status != 307 && response.status != 308) break;
    gchar *next = g_uri_resolve_relative(target.c_str(), response.header("location").c_str(), G_URI_FLAGS_NONE, nullptr);
    target = next ? next : target;
    g_free(next);
  }
  if (response.status != 201) {
    error_ = response.body;
    return response.status;
  }
  answer_ = response.body;
  answered_by_ = response.url;
  link_ = response.header("link");
  unserved_ = response.header("broadcast-unserved");
  std::string location = response.header("location");
  // Location is relative to the endpoint that answered (after redirects).
  gchar *resolved = g_uri_resolve_relative(response.url.c_str(), location.c_str(), G_URI_FLAGS_NONE, nullptr);
  session_url_ = resolved ? resolved : location;
  g_free(resolved);
  GstSDPMessage *sdp;
  gst_sdp_message_new(&sdp);
  gst_sdp_message_parse_buffer(reinterpret_cast<const guint8 *>(answer_.data()), answer_.size(), sdp);
  GstWebRTCSessionDescription *answer = gst_webrtc_session_description_new(GST_WEBRTC_SDP_TYPE_ANSWER, sdp);
  GstPromise *promise = gst_promise_new();
  g_signal_emit_by_name(webrtc_, "set-remote-description", answer, promise);
  const GstStructure *reply = wait_reply(promise);
  if (reply && gst_structure_has_field(reply, "error")) error_ = "answer refused";
  gst_promise_unref(promise);
  gst_webrtc_session_description_free(answer);
  if (options_.drop_video_seq_every) drop_on_the_way_in();
  return response.status;
}

// Network loss, made in the viewer: a probe where libnice hands webrtcbin
// what arrived, before SRTP and the jitter buffer. A packet is only dropped
// the first time, so its retransmission gets through.
void WhepViewer::drop_on_the_way_in() {
  GstIterator *it = gst_bin_iterate_recurse(GST_BIN(webrtc_));
  GValue item = G_VALUE_INIT;
  while (gst_iterator_next(it, &item) == GST_ITERATOR_OK) {
    GstElement *element = GST_ELEMENT(g_value_get_object(&item));
    GstElementFactory *factory = gst_element_get_factory(element);
    if (factory && g_strcmp0(GST_OBJECT_NAME(factory), "nicesrc") == 0) {
      GstPad *src = gst_element_get_static_pad(element, "src");
      gst_pad_add_probe(src, GST_PAD_PROBE_TYPE_BUFFER,
                        +[](GstPad *, GstPadProbeInfo *info, gpointer data) {
                          auto *v = static_cast<WhepViewer *>(data);
                          GstMapInfo map;
                          GstBuffer *buffer = GST_PAD_PROBE_INFO_BUFFER(info);
                          if (!gst_buffer_map(buffer, &map, GST_MAP_READ)) return GST_PAD_PROBE_OK;
                          bool drop = false;
                          if (map.size >= 12 && (map.data[0] & 0xc0) == 0x80 &&
                              (map.data[1] & 0x7f) == v->options_.video_pt) {
                            guint16 seq = guint16(map.data[2] << 8 | map.data[3]);
                            std::lock_guard<std::mutex> lock(v->dropped_lock_);
                            if (seq % v->options_.drop_video_seq_every == 0) {
                              const gint64 now = g_get_monotonic_time();
                              auto [it, first] = v->dropped_seqs_.emplace(seq, now);
                              drop = first;
                              if (!first && it->second != 0) {
                                v->video_came_again_++;
                                if (now - it->second > v->slowest_came_again_us_) v->slowest_came_again_us_ = now - it->second;
                                it->second = 0;
                              }
                            }
                          }
                          gst_buffer_unmap(buffer, &map);
                          if (!drop) return GST_PAD_PROBE_OK;
                          v->video_dropped_++;
                          return GST_PAD_PROBE_DROP;
                        },
                        this, nullptr);
      gst_object_unref(src);
    }
    g_value_reset(&item);
  }
  g_value_unset(&item);
  gst_iterator_free(it);
}

void WhepViewer::disconnect(bool send_delete) {
  if (send_delete && !session_url_.empty()) http_request("DELETE", session_url_, "", "", {}, true, options_.tls_ca);
  session_url_.clear();
  gst_element_set_state(pipeline_, GST_STATE_NULL);
}

void WhepViewer::vanish() {
  session_url_.clear();
  gst_element_set_state(pipeline_, GST_STATE_NULL);
}

unsigned WhepViewer::sender_reports_seen() {
  if (!webrtc_) return 0;
  GstPromise *promise = gst_promise_new();
  g_signal_emit_by_name(webrtc_, "get-stats", nullptr, promise);
  const GstStructure *reply = wait_reply(promise);
  unsigned streams = 0;
  for (int i = 0; reply && i < gst_structure_n_fields(reply); ++i) {
    const GValue *value = gst_structure_get_value(reply, gst_structure_nth_field_name(reply, i));
    if (!GST_VALUE_HOLDS_STRUCTURE(value)) continue;
    const GstStructure *stats = gst_value_get_structure(value);
    GstWebRTCStatsType type;
    double remote_timestamp = 0;  // stays 0 for a source that never sent a report
    if (gst_structure_get(stats, "type", GST_TYPE_WEBRTC_STATS_TYPE, &type, nullptr) &&
        type == GST_WEBRTC_STATS_REMOTE_OUTBOUND_RTP &&
        gst_structure_get_double(stats, "remote-timestamp", &remote_timestamp) && remote_timestamp > 0)
      ++streams;
  }
  gst_promise_unref(promise);
  return streams;
}

std::vector<WhepViewer::SenderReport> WhepViewer::sender_reports() {
  std::vector<SenderReport> reports;
  GstElement *rtpbin = webrtc_ ? gst_bin_get_by_name(GST_BIN(webrtc_), "rtpbin") : nullptr;
  if (!rtpbin) return reports;
  // Bundled: every stream is in session 0.
  GObject *session = nullptr;
  g_signal_emit_by_name(rtpbin, "get-internal-session", 0u, &session);
  GValueArray *sources = nullptr;
  if (session) g_object_get(session, "sources", &sources, nullptr);
  G_GNUC_BEGIN_IGNORE_DEPRECATIONS
  for (guint i = 0; sources && i < sources->n_values; ++i) {
    GObject *source = G_OBJECT(g_value_get_object(g_value_array_get_nth(sources, i)));
    GstStructure *stats = nullptr;
    g_object_get(source, "stats", &stats, nullptr);
    gboolean have_sr = FALSE;
    SenderReport report;
    gint clock_rate = 0;
    guint rtp = 0;
    if (stats && gst_structure_get_boolean(stats, "have-sr", &have_sr) && have_sr &&
        gst_structure_get_uint(stats, "ssrc", &report.ssrc) &&
        gst_structure_get_uint64(stats, "sr-ntptime", &report.ntp) &&
        gst_structure_get_uint(stats, "sr-rtptime", &rtp) &&
        gst_structure_get_int(stats, "clock-rate", &clock_rate) && clock_rate > 0) {
      report.rtp = rtp;
      report.clock_rate = guint(clock_rate);
      reports.push_back(report);
    }
    if (stats) gst_structure_free(stats);
  }
  if (sources) g_value_array_free(sources);
  G_GNUC_END_IGNORE_DEPRECATIONS
  if (session) g_object_unref(session);
  gst_object_unref(rtpbin);
  return reports;
}

double WhepViewer::first_video_frame_ms() const {
  gint64 us = first_video_us_.load();
  if (us < 0) return -1;
  return us / 1000.0;
}

void WhepViewer::on_pad_added(GstElement *, GstPad *pad, WhepViewer *self) {
  if (GST_PAD_DIRECTION(pad) != GST_PAD_SRC) return;
  GstCaps *caps = gst_pad_get_current_caps(pad);
  if (!caps) caps = gst_pad_query_caps(pad, nullptr);
  const gchar *media = gst_structure_get_string(gst_caps_get_structure(caps, 0), "media");
  bool video = g_strcmp0(media, "video") == 0;
  gst_caps_unref(caps);
  if (video) {
    // Sequence gaps of what the viewer received: loss seen by this viewer.
    gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_BUFFER,
                      +[](GstPad *, GstPadProbeInfo *info, gpointer data) {
                        auto *v = static_cast<WhepViewer *>(data);
                        GstRTPBuffer rtp = GST_RTP_BUFFER_INIT;
                        if (gst_rtp_buffer_map(GST_PAD_PROBE_INFO_BUFFER(info), GST_MAP_READ, &rtp)) {
                          guint64 seq = gst_rtp_buffer_get_seq(&rtp);
                          v->video_packets_++;
                          guint64 last = v->last_video_pts_.exchange(seq);
                          if (last != GST_CLOCK_TIME_NONE) {
                            guint16 diff = guint16(seq - last);
                            if (diff > 1 && diff < 1000) v->video_gaps_ += diff - 1;
                            if (diff != 1) v->video_seq_breaks_++;
                          }
                          gst_rtp_buffer_unmap(&rtp);
                        }
                        return GST_PAD_PROBE_OK;
                      },
                      self, nullptr);
  }
  if (!self->options_.decode) {
    self->count_decoded(pad, video);
    return;
  }
  GstElement *decodebin = gst_element_factory_make("decodebin", nullptr);
  g_signal_connect(decodebin, "pad-added", G_CALLBACK(+[](GstElement *, GstPad *dpad, gpointer data) {
                     auto *v = static_cast<WhepViewer *>(data);
                     GstCaps *c = gst_pad_get_current_caps(dpad);
                     bool is_video = c && g_str_has_prefix(gst_structure_get_name(gst_caps_get_structure(c, 0)), "video/");
                     if (c) gst_caps_unref(c);
                     v->count_decoded(dpad, is_video);
                   }),
                   self);
  gst_bin_add(GST_BIN(self->pipeline_), decodebin);
  gst_element_set_state(decodebin, GST_STATE_PLAYING);
  GstPad *sink = gst_element_get_static_pad(decodebin, "sink");
  gst_pad_link(pad, sink);
  gst_object_unref(sink);
}

void WhepViewer::count_decoded(GstPad *pad, bool video) {
  GstElement *fakesink = gst_element_factory_make("fakesink", nullptr);
  g_object_set(fakesink, "sync", FALSE, "async", FALSE, nullptr);
  gst_bin_add(GST_BIN(pipeline_), fakesink);
  // Straight to PLAYING: syncing with a pipeline whose state is still
  // settling can leave a late sink prerolled in PAUSED, blocking the stream.
  gst_element_set_state(fakesink, GST_STATE_PLAYING);
  GstPad *sink = gst_element_get_static_pad(fakesink, "sink");
  gst_pad_link(pad, sink);
  gst_object_unref(sink);
  gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_BUFFER,
                    video ? +[](GstPad *p, GstPadProbeInfo *, gpointer data) {
                      auto *v = static_cast<WhepViewer *>(data);
                      if (v->video_frames_++ == 0) {
                        auto elapsed = std::chrono::steady_clock::now() - v->connect_time_;
                        v->first_video_us_ =
                            std::chrono::duration_cast<std::chrono::microseconds>(elapsed).count();
                      }
                      GstCaps *caps = gst_pad_get_current_caps(p);
                      gint width = 0;
                      if (caps) {
                        gst_structure_get_int(gst_caps_get_structure(caps, 0), "width", &width);
                        gst_caps_unref(caps);
                      }
                      v->video_width_ = unsigned(width);
                      return GST_PAD_PROBE_OK;
                    }
                          : +[](GstPad *, GstPadProbeInfo *, gpointer data) {
                              static_cast<WhepViewer *>(data)->audio_frames_++;
                              return GST_PAD_PROBE_OK;
                            },
                    this, nullptr);
}

NodeProcess::NodeProcess(const std::string &launch) {
  const char *node = g_getenv("WB_TEST_NODE");
  spawn({node ? node : "test-node", launch});
}

NodeProcess::NodeProcess(const std::vector<std::string> &argv) { spawn(argv); }

void NodeProcess::spawn(const std::vector<std::string> &args) {
  std::vector<const gchar *> argv;
  for (const auto &a : args) argv.push_back(a.c_str());
  argv.push_back(nullptr);
  GError *error = nullptr;
  process_ = g_subprocess_newv(argv.data(),
                               GSubprocessFlags(G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE),
                               &error);
  if (!process_) {
    lines_.push_back(std::string("ERROR ") + (error ? error->message : "spawn failed"));
    g_clear_error(&error);
    return;
  }
  GInputStream *out = g_subprocess_get_stdout_pipe(process_);
  GDataInputStream *data = g_data_input_stream_new(out);
  reader_ = std::thread([this, data] {
    gchar *line;
    while ((line = g_data_input_stream_read_line(data, nullptr, nullptr, nullptr))) {
      std::lock_guard<std::mutex> lock(mutex_);
      lines_.push_back(line);
      g_free(line);
    }
    g_object_unref(data);
  });
}

NodeProcess::~NodeProcess() {
  kill();
  if (reader_.joinable()) reader_.join();
  if (process_) g_object_unref(process_);
}

void NodeProcess::kill() {
  if (!process_) return;
  g_subprocess_force_exit(process_);
  g_subprocess_wait(process_, nullptr, nullptr);
}

std::string NodeProcess::output() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::string out;
  for (const auto &l : lines_) out += l + "\n";
  return out;
}

bool NodeProcess::wait_line(const std::string &prefix, std::chrono::milliseconds timeout, std::string *line) {
  size_t seen = 0;
  return wait_until([&] {
    std::lock_guard<std::mutex> lock(mutex_);
    for (; seen < lines_.size(); ++seen)
      if (lines_[seen].rfind(prefix, 0) == 0) {
        if (line) *line = lines_[seen];
        return true;
      }
    return false;
  }, timeout);
}

bool NodeProcess::wait_ready(std::chrono::milliseconds timeout) { return wait_line("READY", timeout, nullptr); }

std::vector<std::string> NodeProcess::elements() {
  std::vector<std::string> out;
  if (!process_) return out;
  size_t before;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    before = lines_.size();
  }
  GOutputStream *in = g_subprocess_get_stdin_pipe(process_);
  g_output_stream_write_all(in, "elements\n", 9, nullptr, nullptr, nullptr);
  g_output_stream_flush(in, nullptr, nullptr);
  std::string line;
  bool got = wait_until([&] {
    std::lock_guard<std::mutex> lock(mutex_);
    for (size_t i = before; i < lines_.size(); ++i)
      if (lines_[i].rfind("ELEMENTS ", 0) == 0) {
        line = lines_[i].substr(9);
        return true;
      }
    return false;
  }, 5000ms);
  if (!got) return out;
  size_t start = 0, bar;
  while ((bar = line.find('|', start)) != std::string::npos) {
    out.push_back(line.substr(start, bar - start));
    start = bar + 1;
  }
  return out;
}

void WatchedBroadcast::start(const std::string &sink_props) {
  Broadcast::Options options;
  options.extra_sink_props = sink_props;
  broadcast_ = std::make_unique<Broadcast>(options);
  ASSERT_TRUE(broadcast_->start()) << broadcast_->last_error();
  ASSERT_TRUE(broadcast_->wait_media_flowing());
  ASSERT_EQ(watcher_.connect(broadcast_->url()), 201) << watcher_.error();
  ASSERT_TRUE(wait_until([&] { return watcher_.video_frames() > 5; }, 5000ms));
}

void WatchedBroadcast::expect_watcher_served() {
  unsigned frames = watcher_.video_frames();
  unsigned gaps = watcher_.video_gaps();
  EXPECT_TRUE(wait_until([&] { return watcher_.video_frames() > frames + 15; }, 3000ms));
  EXPECT_EQ(watcher_.video_gaps(), gaps);
}

namespace {
unsigned entries(const char *directory) {
  unsigned n = 0;
  GDir *dir = g_dir_open(directory, 0, nullptr);
  while (dir && g_dir_read_name(dir)) ++n;
  if (dir) g_dir_close(dir);
  return n;
}
}  // namespace

unsigned open_descriptors() { return entries("/proc/self/fd"); }
unsigned threads() { return entries("/proc/self/task"); }

long rss_kb() {
  gchar *status = nullptr;
  if (!g_file_get_contents("/proc/self/status", &status, nullptr, nullptr)) return -1;
  const char *line = strstr(status, "\nVmRSS:");
  long kb = line ? strtol(line + 7, nullptr, 10) : -1;
  g_free(status);
  return kb;
}

}  // namespace wbtest
