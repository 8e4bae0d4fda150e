// srtp-ceiling: what this machine can do at best for the per-viewer work of a
// WebRTC broadcast, without GStreamer (issue 4): the ceiling to hold
// broadcastsink and the naive tee + webrtcbin server against.
//
// For each incoming RTP packet and each of N viewers, in one tight loop on one
// thread: copy it, rewrite PT, SSRC and sequence number (each viewer has its
// own), srtp_protect() with that viewer's own libsrtp2 session
// (AES_CM_128_HMAC_SHA1_80, what Chrome negotiates), and send the copies with
// sendmmsg (up to --batch per call, one datagram per viewer, each to that
// viewer's address) from one UDP socket.
//
// Input: the same RTP stream the servers get (--video-port/--audio-port: read
// with recvmmsg), or by default synthetic packets at the packet rate of a
// 640x360 800 kbps H.264 + Opus stream: 30 frames/s of 2 or 3 packets
// (75 video pkt/s) and one packet each 20 ms (50 audio pkt/s), of
// --video-size / --audio-size bytes (1200 / 1200 by default: real Opus packets
// are ~100-200 bytes, so the default overstates audio's share slightly).
//
// The viewers are N UDP sockets on 127.0.0.1 opened by this program and
// drained by a second thread (recvmmsg, counting), so nothing produces ICMP
// errors. The sender thread is pinned to --sender-cpu (0), the receiver to
// --receiver-cpu (1); CPU is measured per thread (getrusage RUSAGE_THREAD), so
// the receiver's reads are not in the sender's figure. What IS in it: on
// loopback the kernel delivers each datagram to the receiving socket in the
// sender's context (softirq at the end of each send), which a real NIC would
// not cost; so this is a slightly pessimistic ceiling. The receiver polls
// (epoll_wait with no timeout, then 1 ms sleeps) rather than blocking, so the
// sender does not also pay for waking it on every packet.
//
// libsrtp2 is the system's (Debian 12: 2.5.0 built against NSS, the same one
// GStreamer's srtpenc uses), so the crypto is on equal terms with webrtcbin.
// --openssl protects with broadcastsink's own SRTP instead (SrtpContext,
// gst/transport/srtpcontext.cpp, OpenSSL; byte-identical output): the
// ceiling for what our direct send does per packet.
//
// The machine may be shared: each run reports the CPU other processes used
// meanwhile (others_cpu, % of one core, from /proc/stat); runs start only
// once others use less than --noise % (waiting up to 5 min) and a run during
// which they used more is repeated (up to 4 times), marked NOISY.
//
// Modes:
//   srtp-ceiling --viewers N --seconds S   one run at the stream's rate:
//       sender CPU (% of one core), packets/s sent, CPU per viewer.
//   srtp-ceiling --find-max                raw throughput first (as fast as
//       possible, SRTP-protected packets per second per core, with and
//       without sending), then N increased at the real stream rate until the
//       sender uses ~95 % (--target, +-2.5) of one core without falling more
//       than 100 ms behind the stream: "ceiling: N viewers per core (at X
//       pkt/s each)", plus a linear estimate from every step at >= 50 %.
//       With --video-port/--audio-port it skips the raw part and ramps up
//       at the real input's rate.
//   --raw with --viewers N --seconds S      only the raw throughput.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <srtp2/srtp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "transport/srtpcontext.h"

namespace {

constexpr int kMaxPacket = 1500;
constexpr int kSlot = kMaxPacket + SRTP_MAX_TRAILER_LEN;

struct Options {
  int viewers = 0;
  double seconds = 10;
  bool find_max = false;
  bool raw = false;
  int video_port = 0;  // 0: synthetic input
  int audio_port = 0;
  int video_size = 1200;
  int audio_size = 1200;
  double video_fps = 30, video_pps = 75, audio_pps = 50;
  int batch = 64;
  int sender_cpu = 0;
  int receiver_cpu = 1;
  double target = 95;  // % of one core, for --find-max
  double step_seconds = 4;
  double noise = 10;  // % of one core used by other processes that voids a run
  bool openssl = false;  // SrtpContext instead of libsrtp2
};

Options opt;

double now_s() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

double thread_cpu_s() {
  rusage ru;
  getrusage(RUSAGE_THREAD, &ru);
  return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec * 1e-6;
}

double process_cpu_s() {
  rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec * 1e-6;
}

// CPU seconds the whole machine spent busy (all cores), from /proc/stat.
double machine_busy_s() {
  FILE *f = fopen("/proc/stat", "r");
  if (!f) return 0;
  unsigned long long v[10] = {};
  int got = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
                   &v[6], &v[7]);
  fclose(f);
  if (got < 8) return 0;
  // user nice system [idle iowait] irq softirq steal
  return double(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / double(sysconf(_SC_CLK_TCK));
}

// The machine may be shared: CPU used by other processes meanwhile, in % of
// one core. Numbers taken while others are busy are not worth much.
struct OthersMeter {
  double busy0 = machine_busy_s(), self0 = process_cpu_s(), wall0 = 0;
  OthersMeter() {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    wall0 = ts.tv_sec + ts.tv_nsec * 1e-9;
  }
  double percent() const {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    double wall = ts.tv_sec + ts.tv_nsec * 1e-9 - wall0;
    double others = (machine_busy_s() - busy0) - (process_cpu_s() - self0);
    return wall > 0 ? std::max(0.0, others / wall * 100) : 0;
  }
};

// Waits (up to `limit` s) until other processes use less than `max_pct` of
// one core over a second. Returns what was seen last.
double wait_quiet(double max_pct, double limit) {
  double waited = 0, pct = 0;
  bool said = false;
  for (;;) {
    OthersMeter m;
    usleep(1000000);
    pct = m.percent();
    if (pct < max_pct || waited >= limit) break;
    if (!said) {
      fprintf(stderr, "waiting for a quiet machine: others use %.0f %% of a core\n", pct);
      said = true;
    }
    waited += 1;
  }
  return pct;
}

void pin(int cpu) {
  if (cpu < 0) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  if (sched_setaffinity(0, sizeof(set), &set) != 0) perror("sched_setaffinity");
}

void die(const char *what) {
  perror(what);
  exit(1);
}

// ---------------------------------------------------------------- viewers

struct Viewer {
  srtp_t session = nullptr;
  std::shared_ptr<wb::SrtpContext> context[2];  // with --openssl, one per SSRC
  uint32_t ssrc[2];
  uint16_t seq_offset[2];
  uint8_t pt[2];
  sockaddr_in addr{};
  int rx_fd = -1;
};

std::vector<Viewer> viewers;
std::mt19937 rng(4);
int epoll_fd = -1;
std::atomic<bool> receiver_stop{false};
std::atomic<uint64_t> received{0};
std::atomic<double> receiver_cpu_s{0};

void add_viewers(int n) {
  while (int(viewers.size()) < n) {
    Viewer v;
    uint8_t key[SRTP_AES_ICM_128_KEY_LEN_WSALT];
    for (auto &b : key) b = uint8_t(rng());
    srtp_policy_t policy;
    memset(&policy, 0, sizeof(policy));
    srtp_crypto_policy_set_rtp_default(&policy.rtp);  // AES_CM_128_HMAC_SHA1_80
    srtp_crypto_policy_set_rtcp_default(&policy.rtcp);
    policy.ssrc.type = ssrc_any_outbound;
    policy.key = key;
    policy.window_size = 128;
    if (srtp_create(&v.session, &policy) != srtp_err_status_ok) {
      fprintf(stderr, "srtp_create failed\n");
      exit(1);
    }
    if (opt.openssl)
      for (auto &c : v.context) c = wb::SrtpContext::create(wb::SrtpProfile::Aes128CmSha1_80, key);
    for (int m = 0; m < 2; ++m) {
      v.ssrc[m] = rng();
      v.seq_offset[m] = uint16_t(rng());
    }
    v.pt[0] = 102;  // what a browser might have chosen; not the input's
    v.pt[1] = 109;
    v.rx_fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    if (v.rx_fd < 0) die("socket (raise ulimit -n?)");
    int rcvbuf = 1 << 20;
    setsockopt(v.rx_fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    v.addr.sin_family = AF_INET;
    v.addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    v.addr.sin_port = 0;
    if (bind(v.rx_fd, reinterpret_cast<sockaddr *>(&v.addr), sizeof(v.addr)) != 0) die("bind");
    socklen_t len = sizeof(v.addr);
    getsockname(v.rx_fd, reinterpret_cast<sockaddr *>(&v.addr), &len);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = v.rx_fd;
    if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, v.rx_fd, &ev) != 0) die("epoll_ctl");
    viewers.push_back(v);
  }
}

// Drains every viewer socket and counts; on its own core.
void receiver_main() {
  pin(opt.receiver_cpu);
  pthread_setname_np(pthread_self(), "receiver");
  constexpr int kBatch = 64;
  static char bufs[kBatch][kSlot];
  mmsghdr msgs[kBatch];
  iovec iovs[kBatch];
  for (int i = 0; i < kBatch; ++i) {
    iovs[i] = {bufs[i], kSlot};
    memset(&msgs[i], 0, sizeof(msgs[i]));
    msgs[i].msg_hdr.msg_iov = &iovs[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
  }
  epoll_event events[256];
  double cpu0 = thread_cpu_s();
  while (!receiver_stop.load(std::memory_order_relaxed)) {
    // Never blocks in epoll_wait: a sleeping waiter would make every send
    // wake this thread up (an IPI paid by the sender, which a NIC would not
    // cost). Polling each millisecond leaves the sender alone.
    int n = epoll_wait(epoll_fd, events, 256, 0);
    if (n == 0) {
      timespec pause{0, 1000000};
      nanosleep(&pause, nullptr);
      continue;
    }
    for (int i = 0; i < n; ++i) {
      for (;;) {
        int got = recvmmsg(events[i].data.fd, msgs, kBatch, MSG_DONTWAIT, nullptr);
        if (got <= 0) break;
        received.fetch_add(got, std::memory_order_relaxed);
        if (got < kBatch) break;
      }
    }
    receiver_cpu_s.store(thread_cpu_s() - cpu0, std::memory_order_relaxed);
  }
  receiver_cpu_s.store(thread_cpu_s() - cpu0, std::memory_order_relaxed);
}

// ----------------------------------------------------------------- sender

struct Sender {
  int fd = -1;
  std::vector<char> slots;
  std::vector<mmsghdr> msgs;
  std::vector<iovec> iovs;
  uint64_t sent = 0, send_errors = 0, protect_errors = 0;
  bool send = true;  // false: protect only (crypto ceiling)

  Sender() {
    fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0) die("socket");
    int sndbuf = 4 << 20;
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
    slots.resize(size_t(opt.batch) * kSlot);
    msgs.resize(opt.batch);
    iovs.resize(opt.batch);
  }

  void flush(int count) {
    int done = 0;
    while (done < count) {
      int r = sendmmsg(fd, &msgs[done], count - done, 0);
      if (r < 0) {
        if (errno == EINTR) continue;
        send_errors += count - done;  // ENOBUFS and the like: dropped
        return;
      }
      done += r;
      sent += r;
    }
  }

  // One incoming packet to viewers [0, n).
  void fan_out(const uint8_t *pkt, int len, int media, int n) {
    int in_batch = 0;
    const uint16_t seq = uint16_t(pkt[2] << 8 | pkt[3]);
    for (int i = 0; i < n; ++i) {
      Viewer &v = viewers[i];
      uint8_t *out = reinterpret_cast<uint8_t *>(&slots[size_t(in_batch) * kSlot]);
      memcpy(out, pkt, len);
      out[1] = uint8_t((pkt[1] & 0x80) | v.pt[media]);
      uint16_t s = uint16_t(seq + v.seq_offset[media]);
      out[2] = uint8_t(s >> 8);
      out[3] = uint8_t(s);
      uint32_t ssrc = htonl(v.ssrc[media]);
      memcpy(out + 8, &ssrc, 4);
      int out_len = len;
      if (opt.openssl) {
        size_t header = 12 + 4 * size_t(out[0] & 0x0f);
        if ((out[0] & 0x10) && size_t(len) >= header + 4) header += 4 + 4 * size_t(out[header + 2] << 8 | out[header + 3]);
        size_t protected_len = size_t(len);
        if (!v.context[media]->protect(out, &protected_len, header)) {
          ++protect_errors;
          continue;
        }
        out_len = int(protected_len);
      } else if (srtp_protect(v.session, out, &out_len) != srtp_err_status_ok) {
        ++protect_errors;
        continue;
      }
      if (!send) {
        ++sent;
        continue;
      }
      iovs[in_batch] = {out, size_t(out_len)};
      mmsghdr &m = msgs[in_batch];
      memset(&m, 0, sizeof(m));
      m.msg_hdr.msg_name = &v.addr;
      m.msg_hdr.msg_namelen = sizeof(v.addr);
      m.msg_hdr.msg_iov = &iovs[in_batch];
      m.msg_hdr.msg_iovlen = 1;
      if (++in_batch == opt.batch) {
        flush(in_batch);
        in_batch = 0;
      }
    }
    if (in_batch) flush(in_batch);
  }
};

// ------------------------------------------------------------------ input

// Synthetic: the packet pattern of 30 fps video at 2.5 packets per frame
// (75 pkt/s) and 50 audio pkt/s, paced on CLOCK_MONOTONIC, or back to back.
struct Synthetic {
  uint8_t video[kMaxPacket], audio[kMaxPacket];
  uint16_t vseq = 0, aseq = 0;
  uint32_t vts = 0, ats = 0;
  double next_frame = 0, next_audio = 0;
  long frame_no = 0;
  double video_carry = 0;

  Synthetic() {
    for (int i = 0; i < kMaxPacket; ++i) video[i] = audio[i] = uint8_t(i * 7);
    for (uint8_t *p : {video, audio}) {
      p[0] = 0x80;  // V=2, no padding/extension/CSRC
    }
    video[1] = 96;
    audio[1] = 111;
    uint32_t s = htonl(0x11111111);
    memcpy(video + 8, &s, 4);
    s = htonl(0x22222222);
    memcpy(audio + 8, &s, 4);
  }

  void start(double t) { next_frame = next_audio = t; }

  // Runs the schedule until `end`; paced or as fast as possible. Returns the
  // worst lateness seen (s).
  template <typename F>
  double run(double end, bool paced, F &&deliver) {
    const double frame_gap = 1.0 / opt.video_fps, audio_gap = 1.0 / opt.audio_pps;
    const double per_frame = opt.video_pps / opt.video_fps;
    double worst_late = 0;
    for (;;) {
      bool video_next = next_frame <= next_audio;
      double t = video_next ? next_frame : next_audio;
      if (paced) {
        if (t >= end) break;
        double n = now_s();
        if (t > n) {
          timespec ts;
          ts.tv_sec = time_t(t);
          ts.tv_nsec = long((t - double(ts.tv_sec)) * 1e9);
          clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr);
        } else {
          worst_late = std::max(worst_late, n - t);
        }
      } else if (now_s() >= end) {
        break;
      }
      if (video_next) {
        video_carry += per_frame;
        int packets = int(video_carry);
        video_carry -= packets;
        for (int k = 0; k < packets; ++k) {
          video[1] = uint8_t(96 | (k == packets - 1 ? 0x80 : 0));  // marker on the frame's last
          set_seq_ts(video, vseq++, vts);
          deliver(video, opt.video_size, 0);
        }
        vts += uint32_t(90000 / opt.video_fps);
        ++frame_no;
        next_frame += frame_gap;
      } else {
        set_seq_ts(audio, aseq++, ats);
        ats += 960;
        deliver(audio, opt.audio_size, 1);
        next_audio += audio_gap;
      }
    }
    return worst_late;
  }

  static void set_seq_ts(uint8_t *p, uint16_t seq, uint32_t ts) {
    p[2] = uint8_t(seq >> 8);
    p[3] = uint8_t(seq);
    uint32_t t = htonl(ts);
    memcpy(p + 4, &t, 4);
  }
};

// Real input: the RTP stream on --video-port / --audio-port.
struct UdpInput {
  int fd[2] = {-1, -1};
  int ep = -1;

  UdpInput() {
    ep = epoll_create1(0);
    int ports[2] = {opt.video_port, opt.audio_port};
    for (int m = 0; m < 2; ++m) {
      if (!ports[m]) continue;
      fd[m] = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
      int rcvbuf = 1 << 20;
      setsockopt(fd[m], SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      a.sin_port = htons(uint16_t(ports[m]));
      if (bind(fd[m], reinterpret_cast<sockaddr *>(&a), sizeof(a)) != 0) die("bind input port");
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.u32 = uint32_t(m);
      epoll_ctl(ep, EPOLL_CTL_ADD, fd[m], &ev);
    }
  }

  // Drops what queued up while we were busy (an overloaded step would
  // otherwise hand its backlog to the next one as a burst).
  void drain() {
    static uint8_t scratch[kMaxPacket];
    for (int m = 0; m < 2; ++m)
      if (fd[m] >= 0)
        while (recv(fd[m], scratch, sizeof(scratch), MSG_DONTWAIT) > 0) {
        }
  }

  template <typename F>
  void run(double end, F &&deliver) {
    static uint8_t buf[16][kMaxPacket];
    mmsghdr msgs[16];
    iovec iovs[16];
    for (;;) {
      double left = end - now_s();
      if (left <= 0) break;
      epoll_event events[2];
      int n = epoll_wait(ep, events, 2, int(std::ceil(left * 1000)));
      for (int i = 0; i < n; ++i) {
        int m = int(events[i].data.u32);
        for (;;) {
          for (int k = 0; k < 16; ++k) {
            iovs[k] = {buf[k], kMaxPacket};
            memset(&msgs[k], 0, sizeof(msgs[k]));
            msgs[k].msg_hdr.msg_iov = &iovs[k];
            msgs[k].msg_hdr.msg_iovlen = 1;
          }
          int got = recvmmsg(fd[m], msgs, 16, MSG_DONTWAIT, nullptr);
          if (got <= 0) break;
          for (int k = 0; k < got; ++k)
            if (msgs[k].msg_len >= 12) deliver(buf[k], int(msgs[k].msg_len), m);
        }
      }
    }
  }
};

// ------------------------------------------------------------------- runs

struct Result {
  int viewers;
  double wall, cpu, pct;
  uint64_t in_packets, sent, send_errors, delivered;
  double worst_late;
  double others_pct;  // CPU of other processes meanwhile, % of one core
  double pps() const { return sent / wall; }
  double per_core() const { return cpu > 0 ? sent / cpu : 0; }
};

// One measured run with n viewers for `seconds`; `paced` = at the stream's
// rate (else as fast as possible, synthetic only).
Result run(Sender &sender, int n, double seconds, bool paced) {
  add_viewers(n);
  static Synthetic synth;
  static UdpInput *udp = (opt.video_port || opt.audio_port) ? new UdpInput : nullptr;
  uint64_t in_packets = 0;
  auto deliver = [&](const uint8_t *p, int len, int media) {
    ++in_packets;
    sender.fan_out(p, len, media, n);
  };
  // Warm-up: every viewer's SRTP streams exist, caches are hot.
  double t = now_s();
  synth.start(t);
  if (udp) {
    udp->drain();
    udp->run(t + 0.5, deliver);
  } else {
    synth.run(t + 0.5, paced, deliver);
  }
  usleep(100000);  // let the receiver drain
  uint64_t sent0 = sender.sent, err0 = sender.send_errors, rx0 = received.load();
  in_packets = 0;
  OthersMeter others;
  double wall0 = now_s(), cpu0 = thread_cpu_s();
  synth.start(wall0);  // no catching up after the pause
  double late = 0;
  if (udp) udp->run(wall0 + seconds, deliver);
  else late = synth.run(wall0 + seconds, paced, deliver);
  double wall = now_s() - wall0, cpu = thread_cpu_s() - cpu0;
  Result r{};
  r.viewers = n;
  r.wall = wall;
  r.cpu = cpu;
  r.pct = cpu / wall * 100;
  r.in_packets = in_packets;
  r.sent = sender.sent - sent0;
  r.send_errors = sender.send_errors - err0;
  r.worst_late = late;
  r.others_pct = others.percent();
  if (sender.send) {
    // Everything sent in the window has arrived (or never will) shortly after.
    usleep(200000);
    r.delivered = received.load() - rx0;
  }
  return r;
}

void print_result(const char *what, const Result &r);

// run(), after waiting for the machine to be quiet, repeated (up to 4 times)
// while other processes were busy during it.
Result measured(const char *what, Sender &sender, int n, double seconds, bool paced) {
  Result r{};
  for (int attempt = 0; attempt < 4; ++attempt) {
    wait_quiet(opt.noise, 300);
    r = run(sender, n, seconds, paced);
    print_result(what, r);
    if (r.others_pct <= opt.noise) break;
  }
  return r;
}

void print_result(const char *what, const Result &r) {
  printf("%s viewers=%d wall=%.2fs in_pkt/s=%.1f sent_pkt/s=%.0f sender_cpu=%.1f%% cpu_per_viewer=%.3f%% "
         "us_per_packet=%.2f protected_pkt/s_per_core=%.0f delivered=%.2f%% send_errors=%llu late_max_ms=%.1f others_cpu=%.0f%%%s\n",
         what, r.viewers, r.wall, r.in_packets / r.wall, r.pps(), r.pct, r.viewers ? r.pct / r.viewers : 0,
         r.sent ? r.cpu / r.sent * 1e6 : 0, r.per_core(), r.sent ? 100.0 * r.delivered / r.sent : 0,
         (unsigned long long)r.send_errors, r.worst_late * 1e3, r.others_pct,
         r.others_pct > opt.noise ? " (NOISY: other processes were busy)" : "");
  fflush(stdout);
}

void usage(const char *argv0) {
  fprintf(stderr,
          "usage: %s --viewers N [--seconds S] [--raw] | --find-max\n"
          "  [--video-port P --audio-port P]  read the RTP stream instead of synthesising it\n"
          "  [--video-size 1200] [--audio-size 1200] [--video-pps 75] [--audio-pps 50] [--fps 30]\n"
          "  [--batch 64] [--sender-cpu 0] [--receiver-cpu 1] [--target 95] [--step-seconds 4] [--openssl]\n"
          "  [--noise 10]  a run during which other processes used more than this %% of a core is repeated\n",
          argv0);
  exit(2);
}

}  // namespace

int main(int argc, char **argv) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> double {
      if (i + 1 >= argc) usage(argv[0]);
      return atof(argv[++i]);
    };
    if (a == "--viewers") opt.viewers = int(value());
    else if (a == "--seconds") opt.seconds = value();
    else if (a == "--find-max") opt.find_max = true;
    else if (a == "--raw") opt.raw = true;
    else if (a == "--video-port") opt.video_port = int(value());
    else if (a == "--audio-port") opt.audio_port = int(value());
    else if (a == "--video-size") opt.video_size = int(value());
    else if (a == "--audio-size") opt.audio_size = int(value());
    else if (a == "--video-pps") opt.video_pps = value();
    else if (a == "--audio-pps") opt.audio_pps = value();
    else if (a == "--fps") opt.video_fps = value();
    else if (a == "--batch") opt.batch = std::max(1, int(value()));
    else if (a == "--sender-cpu") opt.sender_cpu = int(value());
    else if (a == "--receiver-cpu") opt.receiver_cpu = int(value());
    else if (a == "--target") opt.target = value();
    else if (a == "--step-seconds") opt.step_seconds = value();
    else if (a == "--noise") opt.noise = value();
    else if (a == "--openssl") opt.openssl = true;
    else usage(argv[0]);
  }
  if (!opt.find_max && opt.viewers <= 0) usage(argv[0]);
  opt.video_size = std::clamp(opt.video_size, 12, kMaxPacket);
  opt.audio_size = std::clamp(opt.audio_size, 12, kMaxPacket);
  bool udp_input = opt.video_port || opt.audio_port;
  if (udp_input && opt.raw) {
    fprintf(stderr, "--raw needs the synthetic input\n");
    return 2;
  }

  rlimit nofile;
  getrlimit(RLIMIT_NOFILE, &nofile);
  nofile.rlim_cur = nofile.rlim_max;
  setrlimit(RLIMIT_NOFILE, &nofile);
  if (srtp_init() != srtp_err_status_ok) {
    fprintf(stderr, "srtp_init failed\n");
    return 1;
  }
  epoll_fd = epoll_create1(0);
  pin(opt.sender_cpu);
  std::thread receiver(receiver_main);

  const double stream_pps = opt.video_pps + opt.audio_pps;
  if (udp_input)
    printf("srtp-ceiling: RTP input from UDP ports %d/%d, %s, AES_CM_128_HMAC_SHA1_80, sender on cpu %d, "
           "receiver on cpu %d, sendmmsg batch %d\n",
           opt.video_port, opt.audio_port, srtp_get_version_string(), opt.sender_cpu, opt.receiver_cpu, opt.batch);
  else
    printf("srtp-ceiling: synthetic input, %s, AES_CM_128_HMAC_SHA1_80, packets video %d B / audio %d B, "
           "%.0f+%.0f pkt/s per viewer, sender on cpu %d, receiver on cpu %d, sendmmsg batch %d\n",
           srtp_get_version_string(), opt.video_size, opt.audio_size, opt.video_pps, opt.audio_pps,
           opt.sender_cpu, opt.receiver_cpu, opt.batch);
  fflush(stdout);

  Sender sender;
  if (!opt.find_max) {
    measured(opt.raw ? "raw" : "rate", sender, opt.viewers, opt.seconds, !opt.raw);
  } else {
    // 1. Raw throughput, back to back (synthetic input only): crypto only,
    // then crypto + send.
    const int raw_viewers = 100;
    Result crypto{}, raw{};
    if (!udp_input) {
      sender.send = false;
      crypto = measured("raw-protect-only", sender, raw_viewers, 3, false);
      sender.send = true;
      raw = measured("raw-protect+send", sender, raw_viewers, 3, false);
    }
    // 2. At the stream's rate, more viewers until the sender uses ~target %.
    int n = udp_input ? 100 : std::max(10, int(raw.per_core() * opt.target / 100 / stream_pps / 4));
    // "~target": within 2.5 points of it. The answer is the largest N that
    // kept the sender at or under ~target without falling behind the stream.
    const double tolerance = 2.5;
    int best = 0;
    Result best_r{};
    Result last{};
    std::vector<Result> all;
    for (int step = 0; step < 12; ++step) {
      Result r = measured("rate", sender, n, opt.step_seconds, true);
      last = r;
      all.push_back(r);
      bool ok = r.pct <= opt.target + tolerance && r.worst_late < 0.1;
      if (ok && n > best) {
        best = n;
        best_r = r;
      }
      if (ok && r.pct >= opt.target - tolerance) break;
      // Proportional step towards the target: at most doubling up, and
      // never back below the best N already measured.
      double factor = std::min(2.0, opt.target / std::max(r.pct, 1.0));
      int next = ok ? std::max(n + 1, int(n * factor)) : std::max(best + 1, int(n * std::min(factor, 0.98)));
      if (next == n || (!ok && next >= n)) break;
      n = next;
    }
    // Linear estimate from every measurement at 50 % or more (per-viewer
    // cost is close to constant): what N would use exactly `target`.
    std::vector<double> estimates;
    for (const auto &r : all)
      if (r.pct >= 50) estimates.push_back(r.viewers * opt.target / r.pct);
    std::sort(estimates.begin(), estimates.end());
    double per_viewer = best ? best_r.pct / best : last.pct / last.viewers;
    if (!udp_input)
      printf("raw throughput: %.0f SRTP-protected packets/s per core with sendmmsg to loopback "
             "(%.0f without sending; %.2f us per packet)\n",
             raw.per_core(), crypto.per_core(), raw.sent ? raw.cpu / raw.sent * 1e6 : 0);
    const Result &at = best ? best_r : last;
    printf("cpu per viewer at the stream's rate: %.3f %% of one core (%.2f us per packet sent)\n", per_viewer,
           at.sent ? at.cpu / at.sent * 1e6 : 0);
    printf("ceiling: %d viewers per core (at %.0f pkt/s each; %.1f %% of one core measured at that count)",
           best, at.wall > 0 ? at.in_packets / at.wall : stream_pps, best_r.pct);
    if (!estimates.empty())
      printf("; linear estimate for %.0f %%: %.0f", opt.target, estimates[estimates.size() / 2]);
    printf("\n");
  }
  receiver_stop = true;
  receiver.join();
  printf("receiver thread cpu: %.1f s total\n", receiver_cpu_s.load());
  return sender.protect_errors ? 1 : 0;
}
