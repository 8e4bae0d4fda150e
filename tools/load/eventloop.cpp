#include "eventloop.h"

#include <arpa/inet.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

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

// Rounds are at least kCoalesce apart (see run()); a socket gets a few
// packets per round, and kBatch covers most bursts (a keyframe).
constexpr int64_t kCoalesce = 5 * kMs;
constexpr unsigned kBatch = 32;
constexpr size_t kMaxDatagram = 2048;
constexpr int kMaxEvents = 1024;

}  // namespace

int64_t monotonic_ns() { return clock_ns(CLOCK_MONOTONIC); }

bool UdpSocket::open(const std::string &address, std::string *error) {
  fd_ = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd_ < 0) {
    *error = std::string("socket: ") + strerror(errno);
    return false;
  }
  int on = 1;
  setsockopt(fd_, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
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
    batch_->iov[i] = {batch_->data[i], kMaxDatagram};
    msghdr &h = batch_->messages[i].msg_hdr;
    h.msg_name = &batch_->from[i];
    h.msg_iov = &batch_->iov[i];
    h.msg_iovlen = 1;
    h.msg_control = batch_->control[i];
  }
  epoll_ = epoll_create1(EPOLL_CLOEXEC);
  wakeup_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = wakeup_;
  epoll_ctl(epoll_, EPOLL_CTL_ADD, wakeup_, &ev);
  now_ = monotonic_ns();
}

EventLoop::~EventLoop() {
  ::close(wakeup_);
  ::close(epoll_);
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
  epoll_ctl(epoll_, EPOLL_CTL_ADD, fd, &ev);
}

void EventLoop::unwatch(const UdpSocket &socket) {
  epoll_ctl(epoll_, EPOLL_CTL_DEL, socket.fd(), nullptr);
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
  if (timers_.empty()) return 100;
  int64_t wait = timers_.top().when - monotonic_ns();
  if (wait <= 0) return 0;
  return int((wait + kMs - 1) / kMs);  // round up: never wake before the timer
}

void EventLoop::run() {
  running_ = true;
  epoll_event events[kMaxEvents];
  bool busy = false;
  while (running_) {
    // Every viewer's packets arrive all the time, and waking up once per
    // packet (a context switch each) costs far more than handling it. So
    // after a round with socket events, let packets queue in the socket
    // buffers for the rest of kCoalesce and read them in batches. Kernel
    // timestamps keep arrival times exact; only our replies wait longer.
    if (busy) {
      int64_t until = last_round_ + kCoalesce;
      timespec ts{time_t(until / kSecond), long(until % kSecond)};
      if (monotonic_ns() < until) clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr);
    }
    int n = epoll_wait(epoll_, events, kMaxEvents, wait_ms());
    now_ = last_round_ = monotonic_ns();
    realtime_offset_ = clock_ns(CLOCK_REALTIME) - now_;
    busy = n > 0;
    for (int i = 0; i < n; ++i) {
      int fd = events[i].data.fd;
      if (fd == wakeup_) {
        run_posted();
      } else if (Receiver *receiver = receivers_[fd]) {
        read_socket(fd, receiver);
      }
    }
    run_due_timers();
  }
}

void EventLoop::read_socket(int fd, Receiver *receiver) {
  Batch &b = *batch_;
  int n;
  do {  // until a short batch: the socket is drained, and the edge re-armed
    for (unsigned i = 0; i < kBatch; ++i) {  // the kernel shrinks these to what it wrote
      b.messages[i].msg_hdr.msg_namelen = sizeof b.from[i];
      b.messages[i].msg_hdr.msg_controllen = sizeof b.control[i];
    }
    n = recvmmsg(fd, b.messages, kBatch, MSG_DONTWAIT, nullptr);
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
      receiver->on_datagram(b.data[i], b.messages[i].msg_len, b.from[i], arrival);
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
