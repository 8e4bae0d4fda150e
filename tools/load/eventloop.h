// The one media thread: every viewer's socket on epoll, datagrams read in
// batches with recvmmsg, timers on a heap, and a queue through which
// signalling threads hand results back. Everything a viewer does runs here,
// so viewers need no locks.
#pragma once

#include <netinet/in.h>
#include <sys/epoll.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <queue>
#include <string>
#include <vector>

namespace load {

// Monotonic clock in nanoseconds: every time in the generator is one of these.
int64_t monotonic_ns();
constexpr int64_t kMs = 1000000;
constexpr int64_t kSecond = 1000 * kMs;

// One non-blocking UDP socket bound to address:port (0: any), with kernel receive
// timestamps (so jitter measures the network, not our own scheduling).
class UdpSocket {
 public:
  UdpSocket() = default;
  UdpSocket(const UdpSocket &) = delete;
  UdpSocket &operator=(const UdpSocket &) = delete;
  ~UdpSocket() { close(); }
  bool open(const std::string &address, uint16_t port, std::string *error);
  void close();
  int fd() const { return fd_; }
  uint16_t port() const { return port_; }
  void send_to(const uint8_t *data, size_t len, const sockaddr_in &to) const;

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
};

class EventLoop {
 public:
  class Receiver {
   public:
    virtual ~Receiver() = default;
    // Whether the next datagrams are needed whole. If not, only their first
    // kHeadBytes are copied in: media headers are in the clear, and copying
    // whole media packets to user space is a large part of receiving them.
    virtual bool wants_whole_datagrams() const = 0;
    // `data` holds `len` bytes of a `wire_len`-byte datagram, and may be
    // modified in place (SRTP decrypts there). `arrival` is the kernel's
    // receive time, on the monotonic_ns() clock.
    virtual void on_datagram(uint8_t *data, size_t len, size_t wire_len, const sockaddr_in &from,
                             int64_t arrival) = 0;
  };
  static constexpr size_t kHeadBytes = 256;  // RTP header, extensions, a NAL header or two; STUN, DTLS alerts

  EventLoop();
  ~EventLoop();
  EventLoop(const EventLoop &) = delete;
  EventLoop &operator=(const EventLoop &) = delete;

  // The receiver must stay alive until unwatch() or the end of run().
  // Its datagrams are handled as soon as they arrive (handshakes: our
  // replies are part of what is measured)...
  void watch(const UdpSocket &socket, Receiver *receiver);
  // ...until it only receives media: then they are read in batches, every
  // kBatchPeriod, which costs a fraction of waking up for each packet.
  void read_in_batches(const UdpSocket &socket);
  void unwatch(const UdpSocket &socket);
  // Runs `fn` on the loop thread at `when` (monotonic_ns), or soon after.
  void call_at(int64_t when, std::function<void()> fn);
  // Thread-safe: runs `fn` on the loop thread as soon as it can.
  void post(std::function<void()> fn);
  void run();   // until stop()
  void stop();  // loop thread only
  // The time at the start of the current iteration: cheap, and the same for
  // everything handled in one batch.
  int64_t now() const { return now_; }

 private:
  struct Timer {
    int64_t when;
    uint64_t order;  // FIFO among equal times
    std::function<void()> fn;
    bool operator>(const Timer &o) const { return when != o.when ? when > o.when : order > o.order; }
  };
  void handle(const epoll_event *events, int n);
  void read_socket(int fd, Receiver *receiver);
  void read_batched();
  void run_posted();
  void run_due_timers();
  int wait_ms() const;

  int prompt_ = -1;   // epoll: sockets handled at once, and the wakeup fd
  int batched_ = -1;  // epoll: sockets read every kBatchPeriod
  int wakeup_ = -1;   // eventfd: post() was called
  bool running_ = false;
  int64_t now_ = 0;
  int64_t next_batch_ = 0;
  int64_t realtime_offset_ = 0;  // CLOCK_REALTIME - CLOCK_MONOTONIC, for kernel timestamps
  uint64_t timer_order_ = 0;
  std::priority_queue<Timer, std::vector<Timer>, std::greater<Timer>> timers_;
  std::mutex posted_mutex_;
  std::vector<std::function<void()>> posted_;
  std::vector<Receiver *> receivers_;  // indexed by fd: fds are small and dense
  struct Batch;                        // recvmmsg buffers, reused for every read
  std::unique_ptr<Batch> batch_;
};

}  // namespace load
