// The run: viewers join at the ramp rate, the hold window starts once every
// viewer has settled (connected with media, or failed) and a warm-up has
// passed, lasts --hold seconds, then every viewer leaves. Runs on the event
// loop thread.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "eventloop.h"
#include "signalling.h"
#include "transport/dtls.h"
#include "viewer.h"

namespace load {

struct GeneratorOptions {
  unsigned viewers = 10;
  double ramp = 50;  // joins per second
  double hold_seconds = 20;
  // Watched but not measured between settling and the hold window: what
  // the server does for new viewers (layer choice) has time to settle.
  double warmup_seconds = 0;
  unsigned verify = 10;  // viewers whose every packet is authenticated and decrypted
  std::string local_address = "127.0.0.1";
  int video_pt = 102;  // what Chrome offers for H.264 mode 1 42e01f
  int audio_pt = 111;
  // Each viewer sends a PLI this often (0: only on connecting), as one whose
  // network loses every keyframe would.
  double pli_interval_seconds = 0;
  // Churn: each viewer leaves this long after it joined (once settled)
  // instead of at the end of the hold window; 0: everyone holds together.
  double lifetime_seconds = 0;
  // The share of leaving viewers that vanish (no DELETE, no close_notify),
  // spread evenly over the run.
  double vanish = 0;
  uint16_t port_base = 0;  // viewer i binds port_base + i; 0: any port
  bool remb = false;       // offer goog-remb and send our estimate
  EstimateRule estimate;
  bool abs_send_time = false;  // offer abs-send-time
};

struct RunResult {
  std::vector<ViewerReport> viewers;
  double window_seconds = 0;  // the hold window, where rates and CPU are measured
  int64_t window_start_unix_ms = 0;
  int64_t window_end_unix_ms = 0;
  double cpu_seconds = 0;                  // the whole process, the whole run
  double window_cpu_seconds = 0;           // the whole process, during the window
  double window_media_cpu_seconds = 0;     // the event loop thread, during the window
  bool interrupted = false;
};

class Generator {
 public:
  Generator(EventLoop &loop, Signalling &signalling, std::shared_ptr<wb::DtlsIdentity> identity,
            const GeneratorOptions &options);
  // Blocks until every viewer has left (or `stop` became true and they left).
  RunResult run(const std::atomic<bool> &stop);

 private:
  enum class Phase { Ramp, Settling, Warming, Holding, Leaving };
  void join(size_t i);
  void tick();
  void begin_window();
  void open_window();
  void end_window();
  void leave_all();
  void leave_one(size_t i);
  void churn(int64_t now);
  bool chosen_to_vanish(size_t i) const;
  void print_progress(int64_t now);

  EventLoop &loop_;
  Signalling &signalling_;
  GeneratorOptions options_;
  std::vector<std::unique_ptr<Viewer>> viewers_;
  const std::atomic<bool> *stop_ = nullptr;
  Phase phase_ = Phase::Ramp;
  size_t joined_ = 0;
  size_t left_ = 0;
  std::vector<bool> leaving_;  // leave_one() was called for this viewer
  size_t next_to_leave_ = 0;   // churn: every viewer before it has been made to leave
  int64_t started_at_ = 0;
  int64_t window_start_ = 0;
  int64_t warm_until_ = 0;
  int64_t leave_deadline_ = 0;
  int64_t last_progress_ = 0;
  uint64_t progress_packets_ = 0;
  double window_cpu_start_ = 0;
  double window_media_cpu_start_ = 0;
  RunResult result_;
};

}  // namespace load
