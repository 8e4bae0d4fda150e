#include "eventloop.h"

#include <arpa/inet.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <memory>

namespace load {

namespace {

int64_t clock_ns(clockid_t clock) {
  timespec ts;
  clock_gettime(clock, &ts);
  return int64_t(ts.tv_sec) * kSecond + ts.tv_nsec;
}

// Media sockets are read every kBatchPeriod: waking up for every packet of
// every viewer (a context switch, a syscall and an epoll round each) costs
// several times more than handling it. Kernel timestamps keep arrival times
// exact; only our replies to the server (STUN consent, RTCP) wait up to this
// long, which is nothing next to their own timeouts. 20 ms is ~4 packets
// per read at 800 kbps, well within a socket's receive buffer.
constexpr int64_t kBatchPeriod = 20 * kMs;
constexpr unsigned kBatch = 32;  // most bursts (a keyframe) in one recvmmsg
constexpr size_t kMaxDatagram = 2048;
constexpr int kMaxEvents = 1024;

}  // namespace

int64_t monotonic_ns() { return clock_ns(CLOCK_MONOTONIC); }

bool UdpSocket::open(const std::string &address, uint16_t port, std::string *error) {
  fd_ = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd_ < 0) {
    *error = std::string("socket: ") + strerror(errno);
    return false;
  }
  int on = 1;
  setsockopt(fd_, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  if (inet_pton(AF_INET, address.c_str(), &addr.sin_addr) != 1) {
    *error = "not an IPv4 address: " + address;
    close();
    return false;
  }
  socklen_t len = sizeof addr;
  if (bind(fd_, reinterpret_cast<sockaddr *>(&addr), len) < 0 ||
      getsockname(fd_, reinterpret_cast<sockaddr *>(&addr), &len) < 0) {
    *error = std::string("bind: ") + strerror(errno);
    close();
    return false;
  }
  port_ = ntohs(addr.sin_port);
  return true;
}

void UdpSocket::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

void UdpSocket::send_to(const uint8_t *data, size_t len, const sockaddr_in &to) const {
  // UDP: a full socket buffer drops the datagram, as the network would.
  sendto(fd_, data, len, MSG_DONTWAIT, reinterpret_cast<const sockaddr *>(&to), sizeof to);
}

struct EventLoop::Batch {
  mmsghdr messages[kBatch];
  iovec iov[kBatch];
  sockaddr_in from[kBatch];
  uint8_t data[kBatch][kMaxDatagram];
  alignas(cmsghdr) uint8_t control[kBatch][CMSG_SPACE(sizeof(timespec))];
};

EventLoop::EventLoop() : batch_(std::make_unique<Batch>()) {
  for (unsigned i = 0; i < kBatch; ++i) {
    batch_->iov[i].iov_base = batch_->data[i];
    msghdr &h = batch_->messages[i].msg_hdr;
    h.msg_name = &batch_->from[i];
    h.msg_iov = &batch_->iov[i];
    h.msg_iovlen = 1;
    h.msg_control = batch_->control[i];
  }
  prompt_ = epoll_create1(EPOLL_CLOEXEC);
  batched_ = epoll_create1(EPOLL_CLOEXEC);
  wakeup_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = wakeup_;
  epoll_ctl(prompt_, EPOLL_CTL_ADD, wakeup_, &ev);
  now_ = monotonic_ns();
}

EventLoop::~EventLoop() {
  ::close(wakeup_);
  ::close(batched_);
  ::close(prompt_);
}

void EventLoop::watch(const UdpSocket &socket, Receiver *receiver) {
  int fd = socket.fd();
  if (receivers_.size() <= size_t(fd)) receivers_.resize(fd + 1, nullptr);
  receivers_[fd] = receiver;
  // Edge-triggered: a level-triggered socket would be polled once more after
  // every read, drained or not. Every datagram that arrives re-arms the edge.
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLET;
  ev.data.fd = fd;
  epoll_ctl(prompt_, EPOLL_CTL_ADD, fd, &ev);
}

void EventLoop::read_in_batches(const UdpSocket &socket) {
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLET;
  ev.data.fd = socket.fd();
  epoll_ctl(prompt_, EPOLL_CTL_DEL, socket.fd(), nullptr);
  epoll_ctl(batched_, EPOLL_CTL_ADD, socket.fd(), &ev);  // reports data already waiting
}

void EventLoop::unwatch(const UdpSocket &socket) {
  // In one of the two sets; removing it from the other fails harmlessly.
  epoll_ctl(prompt_, EPOLL_CTL_DEL, socket.fd(), nullptr);
  epoll_ctl(batched_, EPOLL_CTL_DEL, socket.fd(), nullptr);
  receivers_[socket.fd()] = nullptr;
}

void EventLoop::call_at(int64_t when, std::function<void()> fn) {
  timers_.push(Timer{when, timer_order_++, std::move(fn)});
}

void EventLoop::post(std::function<void()> fn) {
  {
    std::lock_guard<std::mutex> lock(posted_mutex_);
    posted_.push_back(std::move(fn));
  }
  uint64_t one = 1;
  (void)!write(wakeup_, &one, sizeof one);
}

void EventLoop::stop() { running_ = false; }

int EventLoop::wait_ms() const {
  int64_t next = next_batch_;
  if (!timers_.empty()) next = std::min(next, timers_.top().when);
  int64_t wait = next - monotonic_ns();
  if (wait <= 0) return 0;
  return int((wait + kMs - 1) / kMs);  // round up: never wake before it is due
}

void EventLoop::run() {
  running_ = true;
  epoll_event events[kMaxEvents];
  while (running_) {
    int n = epoll_wait(prompt_, events, kMaxEvents, wait_ms());
    now_ = monotonic_ns();
    realtime_offset_ = clock_ns(CLOCK_REALTIME) - now_;
    handle(events, n);
    if (now_ >= next_batch_) {
      read_batched();
      next_batch_ = now_ + kBatchPeriod;
    }
    run_due_timers();
  }
}

void EventLoop::read_batched() {
  epoll_event events[kMaxEvents];
  int n;
  do {  // ready sockets beyond kMaxEvents stay queued for the next call
    n = epoll_wait(batched_, events, kMaxEvents, 0);
    handle(events, n);
  } while (n == kMaxEvents);
}

void EventLoop::handle(const epoll_event *events, int n) {
  for (int i = 0; i < n; ++i) {
    int fd = events[i].data.fd;
    if (fd == wakeup_) {
      run_posted();
    } else if (Receiver *receiver = receivers_[fd]) {
      read_socket(fd, receiver);
    }
  }
}

void EventLoop::read_socket(int fd, Receiver *receiver) {
  Batch &b = *batch_;
  int n;
  do {  // until a short batch: the socket is drained, and the edge re-armed
    size_t room = receiver->wants_whole_datagrams() ? kMaxDatagram : kHeadBytes;
    for (unsigned i = 0; i < kBatch; ++i) {  // the kernel shrinks these to what it wrote
      b.iov[i].iov_len = room;
      b.messages[i].msg_hdr.msg_namelen = sizeof b.from[i];
      b.messages[i].msg_hdr.msg_controllen = sizeof b.control[i];
    }
    // MSG_TRUNC: msg_len is the datagram's length even when only its head was copied.
    n = recvmmsg(fd, b.messages, kBatch, MSG_DONTWAIT | MSG_TRUNC, nullptr);
    for (int i = 0; i < n; ++i) {
      int64_t arrival = now_;
      msghdr &h = b.messages[i].msg_hdr;
      for (cmsghdr *c = CMSG_FIRSTHDR(&h); c; c = CMSG_NXTHDR(&h, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
          timespec ts;
          std::memcpy(&ts, CMSG_DATA(c), sizeof ts);
          arrival = int64_t(ts.tv_sec) * kSecond + ts.tv_nsec - realtime_offset_;
        }
      }
      size_t wire_len = b.messages[i].msg_len;
      receiver->on_datagram(b.data[i], std::min(wire_len, room), wire_len, b.from[i], arrival);
      // A receiver may stop watching while handling a datagram.
      if (receivers_[fd] != receiver) return;
    }
  } while (n == int(kBatch));
}

void EventLoop::run_posted() {
  uint64_t count;
  (void)!read(wakeup_, &count, sizeof count);
  std::vector<std::function<void()>> jobs;
  {
    std::lock_guard<std::mutex> lock(posted_mutex_);
    jobs.swap(posted_);
  }
  for (auto &job : jobs) job();
}

void EventLoop::run_due_timers() {
  // Timers added while running wait for the next round, so a timer that
  // re-arms itself at `now` cannot starve the sockets.
  size_t budget = timers_.size();
  while (budget-- > 0 && !timers_.empty() && timers_.top().when <= now_) {
    Timer timer = std::move(const_cast<Timer &>(timers_.top()));
    timers_.pop();
    timer.fn();
  }
}

}  // namespace load
