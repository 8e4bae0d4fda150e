// naive-tee: the baseline for issue 4, "the naive GStreamer way" a user would
// write a WebRTC broadcast server, so that our broadcastsink can be compared
// with it on the same input and the same viewers.
//
//   udpsrc (H.264 RTP) ! tee allow-not-linked=true ─┬─ queue ! webrtcbin (viewer 1)
//   udpsrc (Opus RTP)  ! tee allow-not-linked=true ─┘  queue ! ... (viewer N)
//
// One tee per medium; per viewer one queue per medium and one webrtcbin
// (bundle-policy=max-bundle, UPnP off, ICE-TCP off, ICE on --ice-address: the
// same ICE hygiene as gst/peer/peerconnection.cpp). Nothing else: no keyframe
// gating (a new viewer gets whatever comes next and waits for the next natural
// keyframe), no PLI/FIR coalescing (webrtcbin passes nothing upstream here
// anyway: the input is a udpsrc), no payload type or SSRC rewriting.
//
// Minimal WHEP endpoint (libsoup 3), handled one request at a time on the main
// loop, as a simple program would:
//   POST /whep (application/sdp offer) -> new webrtcbin, queues linked from the
//        tees, set-remote-description(offer), create-answer,
//        set-local-description, wait until ICE gathering is complete,
//        201 Created + Location: /whep/<id> + the answer (all candidates).
//   DELETE /whep/<id> -> unlink from the tees, set to NULL, remove.
//
// INPUT: the same RTP stream every server under test gets, sent by whoever runs
// the benchmark (no encoding in this process, so its CPU is the per-viewer cost
// only):
//   udpsrc port=VPORT caps="application/x-rtp,media=video,encoding-name=H264,clock-rate=90000,payload=96"
//   udpsrc port=APORT caps="application/x-rtp,media=audio,encoding-name=OPUS,clock-rate=48000,payload=111"
//
// PAYLOAD TYPES: nothing rewrites payload types, so a viewer must offer PT 96
// for H.264 and 111 for Opus (load generator: --video-pt 96 --audio-pt 111).
// Checked with GStreamer 1.22.0: webrtcbin matches the offer's m-lines to the
// transceivers of our sink pads by their caps, payload included, so an offer
// with other PTs (bench/viewer-load offers 102/109) gets an answer whose
// m-lines are a=inactive (a fresh transceiver with nothing to send): that
// viewer gets 201 and never a packet. Worse, an offer where only one PT
// agrees (video 102, audio 111: the new load generator's defaults) ABORTS this
// process: webrtcbin answers the video m-line from a fresh transceiver, and the
// video sink pad's transceiver, left without a transport stream, hits
// "_connect_input_stream: assertion failed: (trans->stream)" (gstwebrtcbin.c).
// Browsers choose their own PTs, so a naive server works with a browser only
// when the PTs happen to agree or the SDP is munged. So that a benchmark fails
// loudly instead, an offer without H264 on PT 96 in its video m-line and OPUS
// on PT 111 in its audio m-line is answered 406 before any webrtcbin exists
// (--any-pt skips that check, to see webrtcbin's own behaviour above).
//
// VIDEO ONLY (--no-audio): no audio udpsrc, tee or queues at all; the offer
// needs only H264 on PT 96, and webrtcbin answers its audio m-line inactive.
//
// Usage: naive-tee [--port 8080] [--address 127.0.0.1] [--ice-address IP]...
//                  [--video-port 5004] [--audio-port 5006] [--no-audio] [--any-pt]
// (--ice-address may repeat; without it libnice gathers on its own interface
// list, which never includes loopback: pass 127.0.0.1 in a netns.)
// Prints one line "READY" once the pipeline plays and HTTP is listening.
#include <gst/gst.h>
#include <gst/sdp/sdp.h>
#include <gst/webrtc/webrtc.h>
#include <libsoup/soup.h>
#include <glib-unix.h>
#include <nice/agent.h>

#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace {

struct Options {
  int port = 8080;
  std::string address = "127.0.0.1";
  std::vector<std::string> ice_addresses;
  int video_port = 5004;
  int audio_port = 5006;
  bool audio = true;
  bool any_pt = false;
};

struct Viewer {
  std::string id;
  GstElement *webrtc = nullptr;
  GstElement *vqueue = nullptr;
  GstElement *aqueue = nullptr;
  GstPad *vtee_pad = nullptr;
  GstPad *atee_pad = nullptr;
  std::mutex mutex;
  std::condition_variable cond;
  bool gathered = false;
};

Options opt;
GstElement *pipeline = nullptr;
GstElement *vtee = nullptr;
GstElement *atee = nullptr;  // none with --no-audio
std::map<std::string, Viewer *> viewers;
unsigned next_id = 1;
GMainLoop *loop = nullptr;

void configure_ice(GstElement *webrtc) {
  GstObject *ice = nullptr;
  g_object_get(webrtc, "ice-agent", &ice, nullptr);
  if (!ice) return;
  g_object_set(ice, "ice-tcp", FALSE, nullptr);
  NiceAgent *agent = nullptr;
  g_object_get(ice, "agent", &agent, nullptr);
  if (agent) {
    g_object_set(agent, "upnp", FALSE, nullptr);
    for (const auto &ip : opt.ice_addresses) {
      NiceAddress addr;
      nice_address_init(&addr);
      if (nice_address_set_from_string(&addr, ip.c_str())) nice_agent_add_local_address(agent, &addr);
    }
    g_object_unref(agent);
  }
  gst_object_unref(ice);
}

// Waits for a promise; returns its reply (owned by the promise) or null.
const GstStructure *wait(GstPromise *promise) {
  if (gst_promise_wait(promise) != GST_PROMISE_RESULT_REPLIED) return nullptr;
  return gst_promise_get_reply(promise);
}

bool has_error(const GstStructure *reply) { return reply && gst_structure_has_field(reply, "error"); }

// queue ! webrtcbin first, and the tee only once the queue is PLAYING: a tee
// pushing into a queue that is still in NULL gets FLUSHING back, and that
// stops the udpsrc for every viewer (found the hard way: 50 joins).
void link_queue(GstElement *queue, GstElement *webrtc) {
  GstPad *wsink = gst_element_request_pad_simple(webrtc, "sink_%u");
  GstPad *qsrc = gst_element_get_static_pad(queue, "src");
  gst_pad_link(qsrc, wsink);
  gst_object_unref(qsrc);
  gst_object_unref(wsink);
}

GstPad *link_tee(GstElement *tee, GstElement *queue) {
  GstPad *tee_pad = gst_element_request_pad_simple(tee, "src_%u");
  GstPad *qsink = gst_element_get_static_pad(queue, "sink");
  gst_pad_link(tee_pad, qsink);
  gst_object_unref(qsink);
  return tee_pad;
}

void unlink_branch(GstElement *tee, GstPad *tee_pad, GstElement *queue) {
  GstPad *qsink = gst_element_get_static_pad(queue, "sink");
  gst_pad_unlink(tee_pad, qsink);
  gst_object_unref(qsink);
  gst_element_release_request_pad(tee, tee_pad);
  gst_object_unref(tee_pad);
}

void destroy_viewer(Viewer *v) {
  unlink_branch(vtee, v->vtee_pad, v->vqueue);
  if (atee) unlink_branch(atee, v->atee_pad, v->aqueue);
  for (GstElement *e : {v->webrtc, v->vqueue, v->aqueue}) {
    if (!e) continue;
    gst_element_set_state(e, GST_STATE_NULL);
    gst_bin_remove(GST_BIN(pipeline), e);
  }
  delete v;
}

// True when the offer's video m-line maps PT 96 to H264 and (unless
// --no-audio) its audio m-line PT 111 to OPUS: the payload types our packets
// carry.
bool offer_uses_our_pts(const GstSDPMessage *sdp, std::string *error) {
  bool video = false, audio = false;
  for (guint i = 0; i < gst_sdp_message_medias_len(sdp); ++i) {
    const GstSDPMedia *media = gst_sdp_message_get_media(sdp, i);
    const char *kind = gst_sdp_media_get_media(media);
    for (guint j = 0; j < gst_sdp_media_attributes_len(media); ++j) {
      const GstSDPAttribute *attr = gst_sdp_media_get_attribute(media, j);
      if (g_strcmp0(attr->key, "rtpmap") != 0 || !attr->value) continue;
      if (g_strcmp0(kind, "video") == 0 && g_ascii_strncasecmp(attr->value, "96 H264/", 8) == 0) video = true;
      if (g_strcmp0(kind, "audio") == 0 && g_ascii_strncasecmp(attr->value, "111 OPUS/", 9) == 0) audio = true;
    }
  }
  bool ok = video && (audio || !opt.audio);
  if (!ok) *error = "naive-tee does not rewrite payload types: offer H264 as PT 96 and OPUS as PT 111";
  return ok;
}

// Returns the HTTP status; fills `answer` or `error`.
int add_viewer(const std::string &offer_text, std::string *id, std::string *answer, std::string *error) {
  GstSDPMessage *sdp = nullptr;
  gst_sdp_message_new(&sdp);
  if (gst_sdp_message_parse_buffer(reinterpret_cast<const guint8 *>(offer_text.data()), offer_text.size(), sdp) !=
      GST_SDP_OK) {
    gst_sdp_message_free(sdp);
    *error = "bad SDP";
    return 400;
  }
  if (!opt.any_pt && !offer_uses_our_pts(sdp, error)) {
    gst_sdp_message_free(sdp);
    return 406;
  }
  auto *v = new Viewer;
  v->id = std::to_string(next_id++);
  v->webrtc = gst_element_factory_make("webrtcbin", ("viewer" + v->id).c_str());
  v->vqueue = gst_element_factory_make("queue", nullptr);
  if (atee) v->aqueue = gst_element_factory_make("queue", nullptr);
  g_object_set(v->webrtc, "bundle-policy", GST_WEBRTC_BUNDLE_POLICY_MAX_BUNDLE, nullptr);
  configure_ice(v->webrtc);
  g_signal_connect(v->webrtc, "notify::ice-gathering-state", G_CALLBACK(+[](GstElement *w, GParamSpec *, gpointer d) {
                     auto *viewer = static_cast<Viewer *>(d);
                     GstWebRTCICEGatheringState state;
                     g_object_get(w, "ice-gathering-state", &state, nullptr);
                     if (state != GST_WEBRTC_ICE_GATHERING_STATE_COMPLETE) return;
                     std::lock_guard<std::mutex> lock(viewer->mutex);
                     viewer->gathered = true;
                     viewer->cond.notify_all();
                   }),
                   v);
  gst_bin_add_many(GST_BIN(pipeline), v->vqueue, v->webrtc, nullptr);
  link_queue(v->vqueue, v->webrtc);
  if (atee) {
    gst_bin_add(GST_BIN(pipeline), v->aqueue);
    link_queue(v->aqueue, v->webrtc);
  }
  gst_element_sync_state_with_parent(v->webrtc);
  gst_element_sync_state_with_parent(v->vqueue);
  if (atee) gst_element_sync_state_with_parent(v->aqueue);
  v->vtee_pad = link_tee(vtee, v->vqueue);
  if (atee) v->atee_pad = link_tee(atee, v->aqueue);

  GstWebRTCSessionDescription *offer = gst_webrtc_session_description_new(GST_WEBRTC_SDP_TYPE_OFFER, sdp);
  GstPromise *promise = gst_promise_new();
  g_signal_emit_by_name(v->webrtc, "set-remote-description", offer, promise);
  const GstStructure *reply = wait(promise);
  bool failed = has_error(reply);
  gst_promise_unref(promise);
  gst_webrtc_session_description_free(offer);
  GstWebRTCSessionDescription *local = nullptr;
  if (!failed) {
    promise = gst_promise_new();
    g_signal_emit_by_name(v->webrtc, "create-answer", nullptr, promise);
    reply = wait(promise);
    if (reply) gst_structure_get(reply, "answer", GST_TYPE_WEBRTC_SESSION_DESCRIPTION, &local, nullptr);
    gst_promise_unref(promise);
  }
  if (local) {
    promise = gst_promise_new();
    g_signal_emit_by_name(v->webrtc, "set-local-description", local, promise);
    failed = has_error(wait(promise));
    gst_promise_unref(promise);
    gst_webrtc_session_description_free(local);
  } else {
    failed = true;
  }
  if (!failed) {
    std::unique_lock<std::mutex> lock(v->mutex);
    failed = !v->cond.wait_for(lock, std::chrono::seconds(5), [v] { return v->gathered; });
  }
  if (!failed) {
    GstWebRTCSessionDescription *desc = nullptr;
    g_object_get(v->webrtc, "local-description", &desc, nullptr);
    if (desc) {
      gchar *text = gst_sdp_message_as_text(desc->sdp);
      *answer = text;
      g_free(text);
      gst_webrtc_session_description_free(desc);
    } else {
      failed = true;
    }
  }
  if (failed) {
    destroy_viewer(v);
    *error = "negotiation failed";
    return 406;
  }
  *id = v->id;
  viewers[v->id] = v;
  return 201;
}

void on_request(SoupServer *, SoupServerMessage *msg, const char *path, GHashTable *, gpointer) {
  const char *method = soup_server_message_get_method(msg);
  auto reply = [&](int status, const std::string &body, const char *type = "text/plain") {
    soup_server_message_set_status(msg, status, nullptr);
    soup_server_message_set_response(msg, type, SOUP_MEMORY_COPY, body.data(), body.size());
  };
  if (strcmp(path, "/whep") == 0) {
    if (strcmp(method, "POST") != 0) return reply(405, "POST only\n");
    const char *ctype =
        soup_message_headers_get_content_type(soup_server_message_get_request_headers(msg), nullptr);
    if (!ctype || g_ascii_strcasecmp(ctype, "application/sdp") != 0) return reply(415, "application/sdp only\n");
    GBytes *bytes = soup_message_body_flatten(soup_server_message_get_request_body(msg));
    gsize size = 0;
    const char *data = static_cast<const char *>(g_bytes_get_data(bytes, &size));
    std::string offer(data ? data : "", size);
    g_bytes_unref(bytes);
    std::string id, answer, error;
    int status = add_viewer(offer, &id, &answer, &error);
    if (status != 201) return reply(status, error + "\n");
    soup_message_headers_replace(soup_server_message_get_response_headers(msg), "Location",
                                 ("/whep/" + id).c_str());
    return reply(201, answer, "application/sdp");
  }
  if (g_str_has_prefix(path, "/whep/")) {
    if (strcmp(method, "DELETE") != 0) return reply(405, "DELETE only\n");
    auto it = viewers.find(path + strlen("/whep/"));
    if (it == viewers.end()) return reply(404, "no such viewer\n");
    Viewer *v = it->second;
    viewers.erase(it);
    destroy_viewer(v);
    return reply(200, "");
  }
  reply(404, "not found\n");
}

gboolean on_bus(GstBus *, GstMessage *message, gpointer) {
  if (GST_MESSAGE_TYPE(message) == GST_MESSAGE_ERROR) {
    GError *err = nullptr;
    gchar *dbg = nullptr;
    gst_message_parse_error(message, &err, &dbg);
    g_printerr("error from %s: %s (%s)\n", GST_OBJECT_NAME(message->src), err->message, dbg ? dbg : "");
    g_clear_error(&err);
    g_free(dbg);
  }
  return TRUE;
}

gboolean on_signal(gpointer) {
  g_main_loop_quit(loop);
  return G_SOURCE_REMOVE;
}

void usage(const char *argv0) {
  fprintf(stderr,
          "usage: %s [--port 8080] [--address 127.0.0.1] [--ice-address IP]... "
          "[--video-port 5004] [--audio-port 5006] [--no-audio] [--any-pt]\n",
          argv0);
  exit(2);
}

}  // namespace

int main(int argc, char **argv) {
  gst_init(&argc, &argv);
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage(argv[0]);
      return argv[++i];
    };
    if (a == "--port") opt.port = atoi(value().c_str());
    else if (a == "--address") opt.address = value();
    else if (a == "--ice-address") opt.ice_addresses.push_back(value());
    else if (a == "--video-port") opt.video_port = atoi(value().c_str());
    else if (a == "--audio-port") opt.audio_port = atoi(value().c_str());
    else if (a == "--no-audio") opt.audio = false;
    else if (a == "--any-pt") opt.any_pt = true;
    else usage(argv[0]);
  }
  std::string launch =
      "udpsrc port=" + std::to_string(opt.video_port) +
      " caps=\"application/x-rtp,media=video,encoding-name=H264,clock-rate=90000,payload=96\""
      " ! tee name=vtee allow-not-linked=true";
  if (opt.audio)
    launch += " udpsrc port=" + std::to_string(opt.audio_port) +
              " caps=\"application/x-rtp,media=audio,encoding-name=OPUS,clock-rate=48000,payload=111\""
              " ! tee name=atee allow-not-linked=true";
  GError *err = nullptr;
  pipeline = gst_parse_launch(launch.c_str(), &err);
  if (!pipeline) {
    fprintf(stderr, "pipeline: %s\n", err ? err->message : "?");
    return 1;
  }
  vtee = gst_bin_get_by_name(GST_BIN(pipeline), "vtee");
  if (opt.audio) atee = gst_bin_get_by_name(GST_BIN(pipeline), "atee");
  GstBus *bus = gst_element_get_bus(pipeline);
  gst_bus_add_watch(bus, on_bus, nullptr);
  gst_object_unref(bus);
  if (gst_element_set_state(pipeline, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) {
    fprintf(stderr, "pipeline does not play\n");
    return 1;
  }

  SoupServer *server = soup_server_new("server-header", "naive-tee ", nullptr);
  soup_server_add_handler(server, nullptr, on_request, nullptr, nullptr);
  GInetAddress *inet = g_inet_address_new_from_string(opt.address.c_str());
  if (!inet) {
    fprintf(stderr, "bad --address %s\n", opt.address.c_str());
    return 1;
  }
  GSocketAddress *sockaddr = g_inet_socket_address_new(inet, opt.port);
  g_object_unref(inet);
  if (!soup_server_listen(server, sockaddr, SoupServerListenOptions(0), &err)) {
    fprintf(stderr, "listen: %s\n", err->message);
    return 1;
  }
  g_object_unref(sockaddr);

  loop = g_main_loop_new(nullptr, FALSE);
  g_unix_signal_add(SIGINT, on_signal, nullptr);
  g_unix_signal_add(SIGTERM, on_signal, nullptr);
  printf("READY\n");
  fflush(stdout);
  g_main_loop_run(loop);

  soup_server_disconnect(server);
  g_object_unref(server);
  for (auto &kv : viewers) destroy_viewer(kv.second);
  viewers.clear();
  gst_element_set_state(pipeline, GST_STATE_NULL);
  gst_object_unref(vtee);
  if (atee) gst_object_unref(atee);
  gst_object_unref(pipeline);
  g_main_loop_unref(loop);
  return 0;
}
