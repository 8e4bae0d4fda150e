#include "generator.h"

#include <glib.h>
#include <sys/resource.h>

#include <cstdio>

namespace load {

namespace {

constexpr int64_t kTick = 100 * kMs;
constexpr int64_t kJoinTimeout = 30 * kSecond;
constexpr int64_t kLeaveTimeout = 30 * kSecond;

double cpu_seconds(int who) {
  rusage u;
  getrusage(who, &u);
  return double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + double(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

}  // namespace

Generator::Generator(EventLoop &loop, Signalling &signalling, std::shared_ptr<wb::DtlsIdentity> identity,
                     const GeneratorOptions &options)
    : loop_(loop), signalling_(signalling), options_(options) {
  Viewer::Config config{&loop,
                        std::move(identity),
                        options.local_address,
                        options.video_pt,
                        options.audio_pt,
                        int64_t(options.pli_interval_seconds * kSecond),
                        options.port_base,
                        options.remb,
                        options.estimate,
                        options.abs_send_time};
  // The verified sample is spread over the run: early and late joiners.
  size_t n = options.viewers;
  size_t stride = options.verify ? std::max<size_t>(1, n / options.verify) : 0;
  for (size_t i = 0; i < n; ++i) {
    bool verify = stride && i % stride == 0 && i / stride < options.verify;
    viewers_.push_back(std::make_unique<Viewer>(int(i), verify, config));
  }
  leaving_.assign(n, false);
}

bool Generator::chosen_to_vanish(size_t i) const {
  // Every 1/vanish-th viewer, so any stretch of the run has its share.
  double f = options_.vanish;
  return f > 0 && size_t(double(i + 1) * f) > size_t(double(i) * f);
}

RunResult Generator::run(const std::atomic<bool> &stop) {
  stop_ = &stop;
  started_at_ = monotonic_ns();
  last_progress_ = started_at_;
  for (size_t i = 0; i < viewers_.size(); ++i)
    loop_.call_at(started_at_ + int64_t(double(i) * kSecond / options_.ramp), [this, i] { join(i); });
  loop_.call_at(started_at_ + kTick, [this] { tick(); });
  // Churn has no common hold: its window is the whole run.
  if (options_.lifetime_seconds > 0) open_window();
  loop_.run();
  for (const auto &v : viewers_) result_.viewers.push_back(v->report());
  result_.cpu_seconds = cpu_seconds(RUSAGE_SELF);
  return result_;
}

void Generator::join(size_t i) {
  if (phase_ != Phase::Ramp) return;  // interrupted
  ++joined_;
  Viewer &v = *viewers_[i];
  if (v.open()) signalling_.join(v);
}

void Generator::tick() {
  int64_t now = loop_.now();
  if (options_.lifetime_seconds > 0 && phase_ != Phase::Leaving) {
    churn(now);  // reschedules us
    return;
  }
  if (stop_->load() && phase_ != Phase::Leaving) {
    result_.interrupted = true;
    if (phase_ == Phase::Holding) end_window();
    leave_all();
  }
  if (phase_ == Phase::Ramp && joined_ == viewers_.size()) phase_ = Phase::Settling;
  if (phase_ == Phase::Ramp || phase_ == Phase::Settling) {
    bool all_settled = phase_ == Phase::Settling;
    for (size_t i = 0; i < joined_; ++i) {
      Viewer &v = *viewers_[i];
      if (v.settled(now)) continue;
      if (v.joining() && now - v.joined_at() > kJoinTimeout) {
        v.fail("gave up joining after 30 s, waiting for " + v.waiting_for());
        continue;
      }
      all_settled = false;
    }
    if (all_settled && options_.warmup_seconds > 0) {
      phase_ = Phase::Warming;
      warm_until_ = now + int64_t(options_.warmup_seconds * kSecond);
      std::printf("every viewer settled after %.1f s: warming up for %.0f s\n", double(now - started_at_) / kSecond,
                  options_.warmup_seconds);
      std::fflush(stdout);
    } else if (all_settled) {
      begin_window();
    }
  } else if (phase_ == Phase::Warming && now >= warm_until_) {
    begin_window();
  } else if (phase_ == Phase::Holding && now - window_start_ >= int64_t(options_.hold_seconds * kSecond)) {
    end_window();
    leave_all();
  }
  if (phase_ == Phase::Leaving && (left_ == viewers_.size() || now > leave_deadline_)) {
    if (left_ < viewers_.size()) std::printf("%zu viewers did not finish leaving in time\n", viewers_.size() - left_);
    loop_.stop();
    return;
  }
  if (now - last_progress_ >= kSecond) print_progress(now);
  loop_.call_at(now + kTick, [this] { tick(); });
}

// Each viewer leaves once it is settled and its lifetime has passed; the
// run ends when the last one has left.
void Generator::churn(int64_t now) {
  if (stop_->load()) {
    result_.interrupted = true;
    end_window();
    leave_all();  // then tick() waits for them as in a hold run
    loop_.call_at(now + kTick, [this] { tick(); });
    return;
  }
  int64_t lifetime = int64_t(options_.lifetime_seconds * kSecond);
  while (next_to_leave_ < joined_ && leaving_[next_to_leave_]) ++next_to_leave_;
  for (size_t i = next_to_leave_; i < joined_; ++i) {
    Viewer &v = *viewers_[i];
    if (leaving_[i]) continue;
    if (v.joining() && now - v.joined_at() > kJoinTimeout)
      v.fail("gave up joining after 30 s, waiting for " + v.waiting_for());
    if (v.settled(now) && now - v.joined_at() >= lifetime) leave_one(i);
  }
  if (joined_ == viewers_.size() && left_ == viewers_.size()) {
    end_window();
    phase_ = Phase::Leaving;
    loop_.stop();
    return;
  }
  if (now - last_progress_ >= kSecond) print_progress(now);
  loop_.call_at(now + kTick, [this] { tick(); });
}

void Generator::leave_one(size_t i) {
  leaving_[i] = true;
  Viewer *viewer = viewers_[i].get();
  if (chosen_to_vanish(i) && viewer->state() == Viewer::State::Connected) {
    viewer->vanish();
    viewer->release();
    signalling_.forget(*viewer);
    ++left_;
    return;
  }
  viewer->leave();
  signalling_.leave(*viewer, [this, viewer] {
    viewer->close();
    viewer->release();
    ++left_;
  });
}

void Generator::open_window() {
  window_start_ = loop_.now();
  result_.window_start_unix_ms = g_get_real_time() / 1000;
  window_cpu_start_ = cpu_seconds(RUSAGE_SELF);
  window_media_cpu_start_ = cpu_seconds(RUSAGE_THREAD);  // we are the loop thread
  for (auto &v : viewers_) v->begin_window();
}

void Generator::begin_window() {
  phase_ = Phase::Holding;
  open_window();
  std::printf("%s after %.1f s: holding for %.0f s\n",
              options_.warmup_seconds > 0 ? "warmed up" : "every viewer settled",
              double(window_start_ - started_at_) / kSecond, options_.hold_seconds);
  std::fflush(stdout);
}

void Generator::end_window() {
  result_.window_seconds = double(loop_.now() - window_start_) / kSecond;
  result_.window_end_unix_ms = g_get_real_time() / 1000;
  result_.window_cpu_seconds = cpu_seconds(RUSAGE_SELF) - window_cpu_start_;
  result_.window_media_cpu_seconds = cpu_seconds(RUSAGE_THREAD) - window_media_cpu_start_;
  for (auto &v : viewers_) v->end_window();
}

void Generator::leave_all() {
  bool churning = options_.lifetime_seconds > 0;
  phase_ = Phase::Leaving;
  leave_deadline_ = loop_.now() + kLeaveTimeout;
  for (size_t i = 0; i < viewers_.size(); ++i) {
    if (leaving_[i]) continue;  // churn: already left, or leaving
    if (churning) {
      leave_one(i);
      continue;
    }
    leaving_[i] = true;
    Viewer *viewer = viewers_[i].get();
    viewer->leave();
    signalling_.leave(*viewer, [this, viewer] {
      viewer->close();
      ++left_;
    });
  }
}

void Generator::print_progress(int64_t now) {
  size_t connected = 0, failed = 0, media = 0;
  uint64_t packets = 0, lost = 0;
  for (size_t i = 0; i < joined_; ++i) {
    const Viewer &v = *viewers_[i];
    connected += v.state() == Viewer::State::Connected;
    failed += v.state() == Viewer::State::Failed;
    media += v.has_media();
    packets += v.packets();
    lost += v.lost();
  }
  double seconds = double(now - last_progress_) / kSecond;
  // Totals so far (received, lost) let a long run's log be cut into minutes.
  std::printf("[%6.1f s] joined %zu/%zu  connected %zu  failed %zu  with media %zu  %.0f packets/s  received %llu  lost %llu",
              double(now - started_at_) / kSecond, joined_, viewers_.size(), connected, failed, media,
              double(packets - progress_packets_) / seconds, static_cast<unsigned long long>(packets),
              static_cast<unsigned long long>(lost));
  if (options_.lifetime_seconds > 0) std::printf("  left %zu", left_);
  std::printf("\n");
  std::fflush(stdout);
  progress_packets_ = packets;
  last_progress_ = now;
}

}  // namespace load
