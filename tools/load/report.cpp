#include "report.h"

#include <json-glib/json-glib.h>

#include <algorithm>
#include <cstdio>
#include <functional>
#include <map>
#include <vector>

namespace load {

namespace {

struct Distribution {
  size_t count = 0;
  double median = -1;
  double p95 = -1;
  double min = -1;
  double max = -1;
};

// Over the viewers for which `value` is known (>= 0).
Distribution distribution(const std::vector<ViewerReport> &viewers, const std::function<double(const ViewerReport &)> &value) {
  std::vector<double> v;
  for (const auto &r : viewers)
    if (value(r) >= 0) v.push_back(value(r));
  Distribution d;
  d.count = v.size();
  if (v.empty()) return d;
  std::sort(v.begin(), v.end());
  // Nearest rank: the value at or below which the fraction of samples lies.
  auto rank = [&](double q) { return v[std::min(v.size() - 1, size_t(q * double(v.size() - 1) + 0.5))]; };
  d.median = rank(0.5);
  d.p95 = rank(0.95);
  d.min = v.front();
  d.max = v.back();
  return d;
}

struct Totals {
  size_t requested = 0, connected = 0, failed = 0, no_media = 0, keyframes = 0, vanished = 0, refusals = 0;
  std::string last_refusal;
  uint64_t packets = 0, bytes = 0, video_packets = 0, audio_packets = 0, duplicates = 0;
  int64_t lost = 0;
  size_t sampled = 0;
  uint64_t verified = 0, verify_failures = 0;
  std::map<std::string, size_t> failures;
  std::map<std::string, size_t> srtp_profiles;
  Distribution answer, connect, first_packet, first_keyframe, first_keyframe_after_answer, window_video_pps;
  uint64_t window_video_packets = 0;
  int64_t window_video_lost = 0;
  size_t remb = 0;
  uint64_t rtx_packets = 0, rtx_bytes = 0;
  Distribution window_video_kbps, estimate_kbps;
  double loss_percent() const { return packets + lost ? 100.0 * double(lost) / double(packets + lost) : 0; }
  double window_loss_percent() const {
    return window_video_packets + window_video_lost
               ? 100.0 * double(window_video_lost) / double(window_video_packets + window_video_lost)
               : 0;
  }
};

Totals totals(const RunResult &run) {
  Totals t;
  t.requested = run.viewers.size();
  for (const auto &r : run.viewers) {
    t.connected += r.connected;
    t.failed += !r.connected;
    t.no_media += r.connected && r.first_packet_ms < 0;
    t.keyframes += r.first_keyframe_ms >= 0;
    t.vanished += r.vanished;
    t.refusals += r.refusals;
    if (!r.last_refusal.empty()) t.last_refusal = r.last_refusal;
    t.video_packets += r.video.packets;
    t.audio_packets += r.audio.packets;
    t.packets += r.video.packets + r.audio.packets;
    t.bytes += r.video.bytes + r.audio.bytes;
    t.lost += r.video.lost + r.audio.lost;
    t.duplicates += r.duplicates;
    t.window_video_packets += r.window_video_packets;
    t.window_video_lost += r.window_video_lost;
    t.remb += r.remb;
    t.rtx_packets += r.rtx_packets;
    t.rtx_bytes += r.rtx_bytes;
    if (r.verified) {
      ++t.sampled;
      t.verified += r.verified_packets;
      t.verify_failures += r.verify_failures;
    }
    if (!r.failure.empty()) ++t.failures[r.failure];
    if (!r.srtp_profile.empty()) ++t.srtp_profiles[r.srtp_profile];
  }
  t.answer = distribution(run.viewers, [](const ViewerReport &r) { return r.answer_ms; });
  t.connect = distribution(run.viewers, [](const ViewerReport &r) { return r.connect_ms; });
  t.first_packet = distribution(run.viewers, [](const ViewerReport &r) { return r.first_packet_ms; });
  t.first_keyframe = distribution(run.viewers, [](const ViewerReport &r) { return r.first_keyframe_ms; });
  t.first_keyframe_after_answer =
      distribution(run.viewers, [](const ViewerReport &r) { return r.first_keyframe_after_answer_ms; });
  double window = run.window_seconds;
  t.window_video_pps = distribution(run.viewers, [window](const ViewerReport &r) {
    return window > 0 && r.first_packet_ms >= 0 ? double(r.window_video_packets) / window : -1;
  });
  t.window_video_kbps = distribution(run.viewers, [window](const ViewerReport &r) {
    return window > 0 && r.first_packet_ms >= 0 ? double(r.window_video_bytes) * 8 / 1000 / window : -1;
  });
  t.estimate_kbps =
      distribution(run.viewers, [](const ViewerReport &r) { return r.remb ? double(r.estimate) / 1000 : -1; });
  return t;
}

double percent_of_core(double cpu_seconds, double seconds) { return seconds > 0 ? 100.0 * cpu_seconds / seconds : 0; }

void add_distribution(JsonBuilder *b, const char *name, const Distribution &d) {
  json_builder_set_member_name(b, name);
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "count");
  json_builder_add_int_value(b, gint64(d.count));
  for (auto [key, value] : {std::pair{"median", d.median}, {"p95", d.p95}, {"min", d.min}, {"max", d.max}}) {
    json_builder_set_member_name(b, key);
    json_builder_add_double_value(b, value);
  }
  json_builder_end_object(b);
}

void add_int(JsonBuilder *b, const char *name, int64_t value) {
  json_builder_set_member_name(b, name);
  json_builder_add_int_value(b, value);
}

void add_double(JsonBuilder *b, const char *name, double value) {
  json_builder_set_member_name(b, name);
  json_builder_add_double_value(b, value);
}

void add_string(JsonBuilder *b, const char *name, const std::string &value) {
  json_builder_set_member_name(b, name);
  json_builder_add_string_value(b, value.c_str());
}

void add_stream(JsonBuilder *b, const char *name, const StreamReport &s) {
  json_builder_set_member_name(b, name);
  json_builder_begin_object(b);
  add_int(b, "packets", int64_t(s.packets));
  add_int(b, "bytes", int64_t(s.bytes));
  add_int(b, "lost", s.lost);
  add_double(b, "jitter_ms", s.jitter_ms);
  json_builder_end_object(b);
}

void add_viewer(JsonBuilder *b, const ViewerReport &r) {
  json_builder_begin_object(b);
  add_int(b, "index", r.index);
  add_string(b, "state", r.state);
  add_string(b, "failure", r.failure);
  add_string(b, "srtp_profile", r.srtp_profile);
  json_builder_set_member_name(b, "connected");
  json_builder_add_boolean_value(b, r.connected);
  add_double(b, "answer_ms", r.answer_ms);
  add_double(b, "connect_ms", r.connect_ms);
  add_double(b, "first_packet_ms", r.first_packet_ms);
  add_double(b, "first_keyframe_ms", r.first_keyframe_ms);
  add_double(b, "first_keyframe_after_answer_ms", r.first_keyframe_after_answer_ms);
  add_stream(b, "video", r.video);
  add_stream(b, "audio", r.audio);
  add_int(b, "window_video_packets", int64_t(r.window_video_packets));
  add_int(b, "window_video_bytes", int64_t(r.window_video_bytes));
  add_int(b, "window_video_lost", r.window_video_lost);
  json_builder_set_member_name(b, "window_kbps");
  json_builder_begin_array(b);
  for (uint32_t kbps : r.window_kbps) json_builder_add_int_value(b, kbps);
  json_builder_end_array(b);
  json_builder_set_member_name(b, "window_loss_permille");
  json_builder_begin_array(b);
  for (uint16_t loss : r.window_loss_permille) json_builder_add_int_value(b, loss);
  json_builder_end_array(b);
  json_builder_set_member_name(b, "remb");
  json_builder_add_boolean_value(b, r.remb);
  add_int(b, "remb_sent", int64_t(r.remb_sent));
  add_int(b, "rtx_packets", int64_t(r.rtx_packets));
  add_int(b, "rtx_bytes", int64_t(r.rtx_bytes));
  add_int(b, "estimate", int64_t(r.estimate));
  json_builder_set_member_name(b, "verified");
  json_builder_add_boolean_value(b, r.verified);
  add_int(b, "verified_packets", int64_t(r.verified_packets));
  add_int(b, "verify_failures", int64_t(r.verify_failures));
  add_int(b, "rtcp_received", int64_t(r.rtcp_received));
  add_int(b, "duplicates", int64_t(r.duplicates));
  add_int(b, "consent_sent", r.consent_sent);
  add_int(b, "consent_answered", r.consent_answered);
  json_builder_set_member_name(b, "vanished");
  json_builder_add_boolean_value(b, r.vanished);
  json_builder_end_object(b);
}

}  // namespace

bool run_succeeded(const RunResult &run) {
  Totals t = totals(run);
  return t.connected == t.requested && t.no_media == 0 && t.verify_failures == 0 && !run.interrupted;
}

void print_summary(const RunResult &run, const GeneratorOptions &options) {
  Totals t = totals(run);
  auto line = [](const char *name, const Distribution &d) {
    std::printf("  %-22s median %8.1f ms   p95 %8.1f ms   max %8.1f ms   (%zu viewers)\n", name, d.median, d.p95, d.max,
                d.count);
  };
  std::printf("\n== gst-broadcast-load summary%s ==\n", run.interrupted ? " (interrupted)" : "");
  std::printf("viewers: requested %zu, connected %zu, failed %zu, never got media %zu, vanished %zu\n", t.requested,
              t.connected, t.failed, t.no_media, t.vanished);
  for (const auto &f : t.failures) std::printf("  %zu x %s\n", f.second, f.first.c_str());
  if (t.refusals)
    std::printf("offers refused for now and sent again after Retry-After: %zu (one of them: %s)\n", t.refusals,
                t.last_refusal.c_str());
  line("answer (POST->SDP)", t.answer);
  line("connect (POST->DTLS)", t.connect);
  line("first RTP packet", t.first_packet);
  line("first full keyframe", t.first_keyframe);
  line("  after the answer", t.first_keyframe_after_answer);
  if (t.rtx_packets)
    std::printf("RTX stream (the server's padding probes): %llu packets, %.1f MB\n",
                static_cast<unsigned long long>(t.rtx_packets), double(t.rtx_bytes) / 1e6);
  std::printf("packets: %llu (video %llu, audio %llu), %.1f MB, lost %lld (%.3f %%), duplicates dropped %llu\n",
              static_cast<unsigned long long>(t.packets), static_cast<unsigned long long>(t.video_packets),
              static_cast<unsigned long long>(t.audio_packets), double(t.bytes) / 1e6, static_cast<long long>(t.lost),
              t.loss_percent(), static_cast<unsigned long long>(t.duplicates));
  if (run.window_seconds > 0) {
    std::printf("hold window %.1f s: video packets/s per viewer median %.1f (min %.1f, max %.1f)\n", run.window_seconds,
                t.window_video_pps.median, t.window_video_pps.min, t.window_video_pps.max);
    std::printf("  video kbit/s per viewer median %.0f (min %.0f, max %.0f), lost %lld of %llu expected (%.3f %%)\n",
                t.window_video_kbps.median, t.window_video_kbps.min, t.window_video_kbps.max,
                static_cast<long long>(t.window_video_lost),
                static_cast<unsigned long long>(t.window_video_packets + uint64_t(t.window_video_lost)),
                t.window_loss_percent());
    double cpu = percent_of_core(run.window_cpu_seconds, run.window_seconds);
    size_t watching = t.connected - t.no_media;
    std::printf("generator CPU in the window: %.1f %% of a core (media thread %.1f %%), %.3f %% per viewer with media\n",
                cpu, percent_of_core(run.window_media_cpu_seconds, run.window_seconds), watching ? cpu / double(watching) : 0);
  }
  if (options.remb)
    std::printf("REMB sent by %zu viewers; last estimate, kbit/s, median %.0f (min %.0f, max %.0f)\n", t.remb,
                t.estimate_kbps.median, t.estimate_kbps.min, t.estimate_kbps.max);
  std::printf("generator CPU, whole run: %.2f s\n", run.cpu_seconds);
  std::printf("verified (SRTP-authenticated) packets: %llu of %zu sampled viewers, %llu failures (--verify %u)\n",
              static_cast<unsigned long long>(t.verified), t.sampled, static_cast<unsigned long long>(t.verify_failures),
              options.verify);
  std::printf("SRTP profiles:");
  for (const auto &[name, viewers] : t.srtp_profiles) std::printf(" %s %zu", name.c_str(), viewers);
  std::printf("%s\n", t.srtp_profiles.empty() ? " none (no viewer connected)" : "");
  std::fflush(stdout);
}

bool write_json(const RunResult &run, const GeneratorOptions &options, const std::string &path, std::string *error) {
  Totals t = totals(run);
  JsonBuilder *b = json_builder_new();
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "options");
  json_builder_begin_object(b);
  add_int(b, "viewers", options.viewers);
  add_double(b, "ramp", options.ramp);
  add_double(b, "hold", options.hold_seconds);
  add_double(b, "warmup", options.warmup_seconds);
  add_int(b, "port_base", options.port_base);
  json_builder_set_member_name(b, "remb");
  json_builder_add_boolean_value(b, options.remb);
  add_int(b, "remb_ceiling", int64_t(options.estimate.ceiling));
  add_int(b, "verify", options.verify);
  add_double(b, "lifetime", options.lifetime_seconds);
  add_double(b, "vanish", options.vanish);
  json_builder_end_object(b);
  json_builder_set_member_name(b, "interrupted");
  json_builder_add_boolean_value(b, run.interrupted);
  add_int(b, "requested", int64_t(t.requested));
  add_int(b, "connected", int64_t(t.connected));
  add_int(b, "failed", int64_t(t.failed));
  add_int(b, "never_got_media", int64_t(t.no_media));
  add_int(b, "keyframes_seen", int64_t(t.keyframes));
  add_int(b, "vanished", int64_t(t.vanished));
  add_int(b, "offers_sent_again", int64_t(t.refusals));
  add_distribution(b, "answer_ms", t.answer);
  add_distribution(b, "connect_ms", t.connect);
  add_distribution(b, "first_packet_ms", t.first_packet);
  add_distribution(b, "first_keyframe_ms", t.first_keyframe);
  add_distribution(b, "first_keyframe_after_answer_ms", t.first_keyframe_after_answer);
  add_int(b, "packets", int64_t(t.packets));
  add_int(b, "video_packets", int64_t(t.video_packets));
  add_int(b, "audio_packets", int64_t(t.audio_packets));
  add_int(b, "bytes", int64_t(t.bytes));
  add_int(b, "lost", t.lost);
  add_double(b, "loss_percent", t.loss_percent());
  add_int(b, "duplicates", int64_t(t.duplicates));
  json_builder_set_member_name(b, "window");
  json_builder_begin_object(b);
  add_double(b, "seconds", run.window_seconds);
  add_int(b, "start_unix_ms", run.window_start_unix_ms);
  add_int(b, "end_unix_ms", run.window_end_unix_ms);
  add_distribution(b, "video_packets_per_second_per_viewer", t.window_video_pps);
  add_distribution(b, "video_kbps_per_viewer", t.window_video_kbps);
  add_int(b, "video_packets", int64_t(t.window_video_packets));
  add_int(b, "video_lost", t.window_video_lost);
  add_double(b, "video_loss_percent", t.window_loss_percent());
  json_builder_end_object(b);
  json_builder_set_member_name(b, "cpu");
  json_builder_begin_object(b);
  add_double(b, "total_seconds", run.cpu_seconds);
  double window_percent = percent_of_core(run.window_cpu_seconds, run.window_seconds);
  add_double(b, "window_percent_of_core", window_percent);
  add_double(b, "window_media_thread_percent_of_core", percent_of_core(run.window_media_cpu_seconds, run.window_seconds));
  size_t watching = t.connected - t.no_media;
  add_double(b, "window_percent_per_viewer", watching ? window_percent / double(watching) : 0);
  json_builder_end_object(b);
  json_builder_set_member_name(b, "verification");
  json_builder_begin_object(b);
  add_int(b, "sampled_viewers", int64_t(t.sampled));
  add_int(b, "packets", int64_t(t.verified));
  add_int(b, "failures", int64_t(t.verify_failures));
  json_builder_end_object(b);
  json_builder_set_member_name(b, "failures");
  json_builder_begin_object(b);
  for (const auto &f : t.failures) add_int(b, f.first.c_str(), int64_t(f.second));
  json_builder_end_object(b);
  json_builder_set_member_name(b, "per_viewer");
  json_builder_begin_array(b);
  for (const auto &r : run.viewers) add_viewer(b, r);
  json_builder_end_array(b);
  json_builder_end_object(b);

  JsonGenerator *gen = json_generator_new();
  JsonNode *root = json_builder_get_root(b);
  json_generator_set_root(gen, root);
  json_generator_set_pretty(gen, TRUE);
  GError *err = nullptr;
  bool ok = json_generator_to_file(gen, path.c_str(), &err);
  if (!ok) {
    *error = err->message;
    g_error_free(err);
  }
  json_node_unref(root);
  g_object_unref(gen);
  g_object_unref(b);
  return ok;
}

}  // namespace load
