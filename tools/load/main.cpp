// gst-broadcast-load: many WHEP (or Janus) viewers from one process, each a
// real WebRTC receiver on the wire (ICE, DTLS-SRTP, RTCP), all on one epoll
// thread, so that the generator is never what limits a measurement.
#include <glib.h>
#include <sys/resource.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <memory>

#include "eventloop.h"
#include "generator.h"
#include "janusclient.h"
#include "report.h"
#include "signalling.h"
#include "transport/dtls.h"
#include "whepclient.h"

namespace {

// Blocking HTTP calls: enough threads that a slow server answer does not
// hold up the ramp, few enough to stay out of the media thread's way.
constexpr unsigned kSignallingThreads = 8;
constexpr unsigned kHttpTimeoutSeconds = 15;

std::atomic<bool> g_stop{false};

// One socket per viewer, plus room for HTTP connections and the rest.
void raise_fd_limit(unsigned viewers) {
  rlimit limit;
  getrlimit(RLIMIT_NOFILE, &limit);
  rlim_t want = rlim_t(viewers) + 256;
  if (limit.rlim_max < want) limit.rlim_max = want;  // works as root
  limit.rlim_cur = limit.rlim_max;
  if (setrlimit(RLIMIT_NOFILE, &limit) != 0) {
    getrlimit(RLIMIT_NOFILE, &limit);
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
  }
  getrlimit(RLIMIT_NOFILE, &limit);
  if (limit.rlim_cur < want)
    std::fprintf(stderr, "warning: only %llu file descriptors for %u viewers\n",
                 static_cast<unsigned long long>(limit.rlim_cur), viewers);
}

}  // namespace

int main(int argc, char **argv) {
  gchar *url = nullptr, *json = nullptr, *janus = nullptr, *local = nullptr, *srtp_profiles = nullptr;
  gint viewers = 10, verify = 10, video_pt = 102, audio_pt = 111, port_base = 0, remb_ceiling = 30000;
  gboolean remb = FALSE, abs_send_time = FALSE;
  gint64 mount = 1;
  gdouble ramp = 50, hold = 20, warmup = 0, lifetime = 0, vanish = 0, pli_interval = 0;
  GOptionEntry entries[] = {
      {"url", 'u', 0, G_OPTION_ARG_STRING, &url, "WHEP endpoint, e.g. http://127.0.0.1:8080/whep", "URL"},
      {"viewers", 'n', 0, G_OPTION_ARG_INT, &viewers, "Number of viewers (default: 10)", "N"},
      {"ramp", 'r', 0, G_OPTION_ARG_DOUBLE, &ramp, "Joins per second (default: 50)", "PER_SECOND"},
      {"hold", 0, 0, G_OPTION_ARG_DOUBLE, &hold,
       "Seconds to keep watching once every viewer has joined (connected with media, or failed); rates and CPU "
       "are measured over this window (default: 20)",
       "SECONDS"},
      {"warmup", 0, 0, G_OPTION_ARG_DOUBLE, &warmup,
       "Seconds to keep watching, unmeasured, between every viewer having joined and the hold window, e.g. "
       "for a server that chooses each viewer's layer to settle (default: 0)",
       "SECONDS"},
      {"lifetime", 0, 0, G_OPTION_ARG_DOUBLE, &lifetime,
       "Churn: each viewer leaves this many seconds after it joined (once connected with media, or failed), "
       "and the run ends when the last has left; about ramp x lifetime viewers watch at once. --hold is "
       "ignored, rates and CPU are over the whole run (default: 0, every viewer holds to the end)",
       "SECONDS"},
      {"vanish", 0, 0, G_OPTION_ARG_DOUBLE, &vanish,
       "This share (0-1) of the connected viewers leave as a killed tab does: no DELETE, no DTLS close_notify, "
       "the socket just closes; the server must time them out (default: 0)",
       "SHARE"},
      {"json", 'j', 0, G_OPTION_ARG_FILENAME, &json, "Also write the summary and every viewer's numbers as JSON",
       "FILE"},
      {"verify", 0, 0, G_OPTION_ARG_INT, &verify,
       "Authenticate and decrypt every packet (srtp_unprotect) of this many viewers, spread over the run; the "
       "others count packets from their clear headers, and decrypt only the first bytes of the few that show "
       "where the first keyframe is (default: 10)",
       "N"},
      {"local-address", 0, 0, G_OPTION_ARG_STRING, &local,
       "IPv4 address of the viewers' sockets and ICE candidates (default: 127.0.0.1)", "ADDRESS"},
      {"port-base", 0, 0, G_OPTION_ARG_INT, &port_base,
       "Viewer i (from 0) binds UDP port PORT + i, so that a traffic shaper can give each viewer a link of its "
       "own (default: 0, ports the system picks)",
       "PORT"},
      {"remb", 0, 0, G_OPTION_ARG_NONE, &remb,
       "Offer goog-remb and, when the server's answer has it, send a REMB with every receiver report: an "
       "emulated receive-side estimate from each second's video bytes and loss (1.5 x what arrived under 2 % "
       "loss, what arrived x (1 - loss / 2) from 10 %, unchanged in between; not Google congestion control), "
       "so that a server choosing layers by feedback sees each viewer's link (default: off, no REMB)",
       nullptr},
      {"abs-send-time", 0, 0, G_OPTION_ARG_NONE, &abs_send_time,
       "Offer the abs-send-time header extension on both m-lines, as browsers do; a server that takes it "
       "writes it into every packet, which is what this costs it (default: off)",
       nullptr},
      {"remb-ceiling", 0, 0, G_OPTION_ARG_INT, &remb_ceiling,
       "Highest estimate --remb reports, kbit/s, as a receiver's configured maximum (default: 30000)", "KBPS"},
      {"video-pt", 0, 0, G_OPTION_ARG_INT, &video_pt,
       "Payload type of H.264 in our WHEP offers (default: 102, as Chrome); servers that cannot remap payload "
       "types (the naive bench server) need their own",
       "PT"},
      {"audio-pt", 0, 0, G_OPTION_ARG_INT, &audio_pt, "Payload type of Opus in our WHEP offers (default: 111)", "PT"},
      {"pli-interval", 0, 0, G_OPTION_ARG_DOUBLE, &pli_interval,
       "Each viewer also sends a PLI this often, as a viewer whose network loses every keyframe would "
       "(default: 0, a PLI on connecting only)",
       "SECONDS"},
      {"srtp-profiles", 0, 0, G_OPTION_ARG_STRING, &srtp_profiles,
       "SRTP profiles DTLS offers, most preferred first, comma-separated from gcm (AEAD_AES_128_GCM), cm80 "
       "(AES_CM_128_HMAC_SHA1_80) and cm32 (_32); the server picks (default: gcm,cm80,cm32, as a browser offers "
       "GCM first)",
       "LIST"},
      {"janus", 0, 0, G_OPTION_ARG_STRING, &janus,
       "Instead of --url: Janus HTTP API root, e.g. http://127.0.0.1:8088/janus (watches a streaming mountpoint)",
       "URL"},
      {"mount", 0, 0, G_OPTION_ARG_INT64, &mount, "Janus streaming mountpoint id (default: 1)", "ID"},
      {nullptr, 0, 0, G_OPTION_ARG_NONE, nullptr, nullptr, nullptr}};
  GOptionContext *context = g_option_context_new("- simulate many WebRTC viewers of a WHEP (or Janus) broadcast");
  g_option_context_set_description(
      context,
      "Each viewer does real WebRTC on the wire: its own UDP socket, ICE (controlling for WHEP), DTLS 1.2, SRTP,\n"
      "RTCP receiver reports every second (echoing the server's sender reports, as browsers do, so that the\n"
      "server measures round trips; with --remb a REMB too) and a PLI on connecting. All viewers share one\n"
      "epoll thread. A WHEP offer refused for now (409, 429 or 503 with Retry-After) is sent again after it,\n"
      "as a browser page does, until the viewer's 30 s to join run out.\n"
      "Exit status: 0 when every viewer connected and got media and no verified packet failed, 1 otherwise,\n"
      "2 for bad options.");
  g_option_context_add_main_entries(context, entries, nullptr);
  GError *error = nullptr;
  if (!g_option_context_parse(context, &argc, &argv, &error)) {
    std::fprintf(stderr, "%s\n", error->message);
    return 2;
  }
  g_option_context_free(context);
  if (!url == !janus) {
    std::fprintf(stderr, "give either --url (WHEP) or --janus (with --mount)\n");
    return 2;
  }
  auto dynamic_pt = [](int pt) { return pt >= 96 && pt <= 127; };
  if (!dynamic_pt(video_pt) || !dynamic_pt(audio_pt) || video_pt == audio_pt) {
    std::fprintf(stderr, "--video-pt and --audio-pt must be two different dynamic payload types (96-127)\n");
    return 2;
  }
  if (viewers < 1 || ramp <= 0 || hold < 0 || warmup < 0 || verify < 0 || lifetime < 0 || vanish < 0 || vanish > 1) {
    std::fprintf(stderr,
                 "--viewers must be at least 1, --ramp positive, --hold, --warmup, --verify and --lifetime not "
                 "negative, --vanish between 0 and 1\n");
    return 2;
  }
  if (port_base < 0 || (port_base > 0 && (port_base < 1024 || int64_t(port_base) + viewers - 1 > 65535))) {
    std::fprintf(stderr, "--port-base: the viewers' ports, PORT to PORT + viewers - 1, must lie in 1024-65535\n");
    return 2;
  }
  if (remb_ceiling < 1) {
    std::fprintf(stderr, "--remb-ceiling must be positive\n");
    return 2;
  }

  load::GeneratorOptions options;
  options.viewers = unsigned(viewers);
  options.ramp = ramp;
  options.hold_seconds = hold;
  options.warmup_seconds = warmup;
  options.port_base = uint16_t(port_base);
  options.remb = remb;
  options.abs_send_time = abs_send_time;
  options.estimate.ceiling = uint64_t(remb_ceiling) * 1000;
  options.verify = unsigned(verify);
  options.lifetime_seconds = lifetime;
  options.vanish = vanish;
  if (local) options.local_address = local;
  options.video_pt = video_pt;
  options.audio_pt = audio_pt;
  options.pli_interval_seconds = pli_interval;
  // Churn closes each viewer's socket as it leaves: only those alive at
  // once need descriptors, at most ramp x (lifetime + the 30 s join limit).
  unsigned sockets = options.viewers;
  if (lifetime > 0) sockets = std::min(sockets, unsigned(ramp * (lifetime + 30)) + 1);
  raise_fd_limit(sockets);
  signal(SIGPIPE, SIG_IGN);
  signal(SIGINT, [](int) { g_stop = true; });
  signal(SIGTERM, [](int) { g_stop = true; });

  wb::SrtpProfiles profiles = wb::default_srtp_profiles();
  if (srtp_profiles) {
    profiles.clear();
    bool known = true;
    gchar **names = g_strsplit(srtp_profiles, ",", -1);
    for (gchar **name = names; *name; ++name) {
      if (g_str_equal(*name, "gcm")) profiles.push_back(wb::SrtpProfile::AeadAes128Gcm);
      else if (g_str_equal(*name, "cm80")) profiles.push_back(wb::SrtpProfile::Aes128CmSha1_80);
      else if (g_str_equal(*name, "cm32")) profiles.push_back(wb::SrtpProfile::Aes128CmSha1_32);
      else known = false;
    }
    g_strfreev(names);
    g_free(srtp_profiles);
    if (!known || profiles.empty()) {
      std::fprintf(stderr, "--srtp-profiles takes gcm, cm80 and cm32, comma-separated\n");
      return 2;
    }
  }

  std::string problem;
  auto identity = wb::DtlsIdentity::create(&problem, profiles);
  if (!identity) {
    std::fprintf(stderr, "%s\n", problem.c_str());
    return 2;
  }
  load::EventLoop loop;
  load::HttpPool pool(kSignallingThreads, kHttpTimeoutSeconds);
  std::unique_ptr<load::Signalling> signalling;
  if (url)
    signalling = std::make_unique<load::WhepClient>(loop, pool, url);
  else
    signalling = std::make_unique<load::JanusClient>(loop, pool, janus, mount);
  if (!signalling->start(&problem)) {
    std::fprintf(stderr, "%s\n", problem.c_str());
    return 2;
  }
  if (lifetime > 0)
    std::printf("%u viewers of %s, %.0f joins/s, each leaving %.0f s after it joined (%.0f %% vanishing), verifying %u\n",
                options.viewers, url ? url : janus, options.ramp, lifetime, 100 * vanish,
                std::min(options.verify, options.viewers));
  else
    std::printf("%u viewers of %s, %.0f joins/s, hold %.0f s, verifying %u\n", options.viewers, url ? url : janus,
                options.ramp, options.hold_seconds, std::min(options.verify, options.viewers));
  load::Generator generator(loop, *signalling, identity, options);
  load::RunResult result = generator.run(g_stop);
  pool.stop();  // if leaving timed out: requests in flight end here, queued ones are dropped
  signalling->finish();

  load::print_summary(result, options);
  if (json && !load::write_json(result, options, json, &problem)) std::fprintf(stderr, "--json: %s\n", problem.c_str());
  g_free(url);
  g_free(json);
  g_free(janus);
  g_free(local);
  return load::run_succeeded(result) ? 0 : 1;
}
