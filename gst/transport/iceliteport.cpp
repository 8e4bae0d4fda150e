#include "iceliteport.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <linux/filter.h>
#include <net/if.h>
#include <openssl/rand.h>
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <netinet/tcp.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>

#include "common/debug.h"
#define GST_CAT_DEFAULT wb_viewer_debug

namespace wb {

namespace {

constexpr int kTickMs = 50;
constexpr unsigned kBatch = 32;
constexpr size_t kDatagram = 2048;
// One socket carries every viewer's media: a keyframe for a thousand
// viewers is tens of megabytes in flight on a real NIC. Root may go past
// net.core.wmem_max; others get what it allows.
constexpr int kSendBuffer = 32 * 1024 * 1024;
constexpr int kReceiveBuffer = 4 * 1024 * 1024;
// ICE-TCP. A viewer opens its connection and checks over it at once: one
// that no viewer holds (a stranger's, or a viewer's that left) is closed
// after this long. At most this many are open, held or not, so that
// connections cost their openers, not the port.
constexpr int64_t kTcpIdleNs = 10 * 1000000000LL;
constexpr size_t kMaxTcpConnections = 1024;
// Connections no viewer holds yet, from one IP address: a browser opens one
// per candidate pair it checks, a stranger cannot take every slot.
constexpr size_t kMaxUnheldTcpPerAddress = 16;
constexpr size_t kTcpRead = 16 * 1024;

int64_t monotonic_ns() { return g_get_monotonic_time() * 1000; }

// ICE's ice-char set (RFC 8839 5.4), from a strong random source: the
// password is what authenticates the viewer's checks.
std::string random_ice_string(size_t len) {
  static const char kChars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/";
  std::array<unsigned char, 64> bytes;
  RAND_bytes(bytes.data(), int(len));
  std::string s(len, 'a');
  for (size_t i = 0; i < len; ++i) s[i] = kChars[bytes[i] % 64];
  return s;
}

std::vector<std::string> interface_addresses() {
  std::vector<std::string> out;
  ifaddrs *list = nullptr;
  if (getifaddrs(&list) != 0) return out;
  for (ifaddrs *i = list; i; i = i->ifa_next) {
    if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET) continue;
    if (!(i->ifa_flags & IFF_UP) || (i->ifa_flags & IFF_LOOPBACK)) continue;
    char text[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in *>(i->ifa_addr)->sin_addr, text, sizeof text);
    out.push_back(text);
  }
  freeifaddrs(list);
  return out;
}

// SO_REUSEPORT would let us bind a port another node of ours holds (and
// then receive nothing): a plain bind tells whether it is free.
bool port_is_free(const sockaddr_in &local) {
  if (local.sin_port == 0) return true;
  int probe = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (probe < 0) return false;
  const bool free = bind(probe, reinterpret_cast<const sockaddr *>(&local), sizeof local) == 0;
  const int error = errno;
  ::close(probe);
  errno = error;
  return free;
}

// Every datagram to the port goes to its first socket, this one, whatever
// else is bound to the same port with SO_REUSEPORT (the kernel would
// otherwise spread viewers' packets over the senders' sockets by hash).
bool only_first_receives(int fd) {
  sock_filter first[] = {{BPF_RET | BPF_K, 0, 0, 0}};
  sock_fprog program = {1, first};
  return setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &program, sizeof program) == 0;
}

void set_buffer(int fd, int force_option, int option, int size) {
  if (setsockopt(fd, SOL_SOCKET, force_option, &size, sizeof size) != 0)
    setsockopt(fd, SOL_SOCKET, option, &size, sizeof size);
}

}  // namespace

PortSocket::~PortSocket() { ::close(fd); }

void PortSocket::send(const uint8_t *data, size_t len, const sockaddr_in &to) const {
  if (tcp) tcp->send(data, len);
  else sendto(fd, data, len, MSG_DONTWAIT, reinterpret_cast<const sockaddr *>(&to), sizeof to);
}

namespace {

// The passive TCP candidate on the UDP port's number, or -1 when that
// number is taken for TCP on this address.
int listen_tcp(const sockaddr_in &local) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  const int one = 1;
  if (fd < 0) return -1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(fd, reinterpret_cast<const sockaddr *>(&local), sizeof local) != 0 || listen(fd, 128) != 0) {
    const int error = errno;
    ::close(fd);
    errno = error;
    return -1;
  }
  return fd;
}

}  // namespace

std::vector<int> IceLitePort::socket_fds() const {
  std::vector<int> fds;
  for (const auto &socket : sockets_)
    if (socket->steers_to_itself) fds.push_back(socket->fd);
  return fds;
}

std::shared_ptr<IceLitePort> IceLitePort::open(const Config &config, std::string *why) {
  std::shared_ptr<IceLitePort> port(new IceLitePort());
  port->identity_ = DtlsIdentity::create(why);
  port->timing_ = config.timing;
  port->rtcp_metrics_ = config.rtcp_metrics;
  if (!port->identity_) return nullptr;
  std::vector<std::string> addresses = config.addresses.empty() ? interface_addresses() : config.addresses;
  uint16_t port_number = config.port;
  std::string failures;
  for (const auto &address : addresses) {
    sockaddr_in local{};
    local.sin_family = AF_INET;
    local.sin_port = htons(port_number);
    if (inet_pton(AF_INET, address.c_str(), &local.sin_addr) != 1) {
      failures += " " + address + " (not an IPv4 address)";
      continue;
    }
    int fd = port_is_free(local) ? socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0) : -1;
    const int one = 1;
    // Sender shards bind sockets of their own to the same port, for sending
    // only (see only_first_receives()).
    if (fd >= 0) setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    if (fd < 0 || bind(fd, reinterpret_cast<sockaddr *>(&local), sizeof local) != 0) {
      failures += " " + address + ":" + std::to_string(port_number) + " (" + g_strerror(errno) + ")";
      if (fd >= 0) ::close(fd);
      continue;
    }
    const bool steered = only_first_receives(fd);
    if (!steered) {
      // Nothing may share a port that cannot steer its datagrams to itself.
      GST_INFO("ICE-lite port %s: no SO_ATTACH_REUSEPORT_CBPF (%s); the port keeps its socket to itself",
               address.c_str(), g_strerror(errno));
      const int zero = 0;
      setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &zero, sizeof zero);
    }
    set_buffer(fd, SO_SNDBUFFORCE, SO_SNDBUF, kSendBuffer);
    set_buffer(fd, SO_RCVBUFFORCE, SO_RCVBUF, kReceiveBuffer);
    socklen_t len = sizeof local;
    getsockname(fd, reinterpret_cast<sockaddr *>(&local), &len);
    // Every address on the one port the first bind got: one number for
    // firewalls to open.
    port_number = ntohs(local.sin_port);
    port->sockets_.push_back(std::make_shared<PortSocket>(fd, local, steered));
    port->candidates_.push_back({address, port_number, false});
    const int tcp = listen_tcp(local);
    if (tcp >= 0) port->listeners_.push_back({tcp, local});
    else GST_WARNING("ICE-lite port %s: no TCP candidate on port %u (%s)", address.c_str(), unsigned(port_number),
                     g_strerror(errno));
  }
  for (const auto &l : port->listeners_) {
    char text[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &l.local.sin_addr, text, sizeof text);
    port->candidates_.push_back({text, ntohs(l.local.sin_port), true});
  }
  if (port->sockets_.empty()) {
    *why = addresses.empty() ? "no IPv4 address to bind (set ice-address)" : "could not bind:" + failures;
    return nullptr;
  }
  if (!failures.empty()) GST_WARNING("ICE-lite port: could not bind%s", failures.c_str());
  port->wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (port->wake_fd_ < 0) {
    *why = std::string("eventfd: ") + g_strerror(errno);
    return nullptr;
  }
  port->thread_ = std::thread([p = port.get()] { p->run(); });
  GST_INFO("ICE-lite port on %zu address(es), port %u", port->sockets_.size(), unsigned(port_number));
  return port;
}

IceLitePort::~IceLitePort() {
  if (thread_.joinable()) {
    uint64_t one = 1;
    if (write(wake_fd_, &one, sizeof one) < 0) GST_WARNING("ICE-lite port: cannot wake its thread");
    thread_.join();
  }
  if (wake_fd_ >= 0) ::close(wake_fd_);
  for (const auto &l : listeners_) ::close(l.fd);
  for (const auto &c : connections_) shutdown(c.socket->fd, SHUT_RDWR);
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto &t : by_ufrag_) t.second->close();
}

IceLitePort::AddressKey IceLitePort::key_of(const sockaddr_in &from, const PortSocket &socket) {
  return AddressKey(from.sin_addr.s_addr, from.sin_port, socket.fd);
}

std::shared_ptr<LiteTransport> IceLitePort::add(LiteTransport::RemoteIce remote, DtlsRole role,
                                                std::string remote_fingerprint, LiteTransport::Listener listener) {
  std::lock_guard<std::mutex> lock(mutex_);
  std::string ufrag;
  do {
    ufrag = random_ice_string(8);
  } while (by_ufrag_.count(ufrag));
  auto transport = std::make_shared<LiteTransport>(ufrag, random_ice_string(24), std::move(remote), identity_, role,
                                                   std::move(remote_fingerprint), std::move(listener), timing_,
                                                   rtcp_metrics_);
  by_ufrag_[ufrag] = transport;
  return transport;
}

void IceLitePort::remove(const std::shared_ptr<LiteTransport> &transport) {
  if (!transport) return;
  {
    std::lock_guard<std::mutex> dispatching(dispatch_mutex_);
    std::lock_guard<std::mutex> lock(mutex_);
    by_ufrag_.erase(transport->local_ufrag());
    forget_locked(transport.get());
  }
  transport->close();
}

void IceLitePort::run() {
  pthread_setname_np(pthread_self(), "ice-lite-port");
  std::vector<pollfd> fds;
  int64_t next_tick = monotonic_ns();
  for (;;) {
    // UDP sockets, TCP listeners, TCP connections (writable too while they
    // have frames waiting), the wake-up.
    fds.clear();
    for (const auto &s : sockets_) fds.push_back({s->fd, POLLIN, 0});
    for (const auto &l : listeners_) fds.push_back({l.fd, POLLIN, 0});
    for (const auto &c : connections_)  // an ended one waits for the sweep, unpolled
      fds.push_back({c.idle_since_ns == INT64_MIN ? -1 : c.socket->fd,
                     short(POLLIN | (c.socket->tcp->wants_write() ? POLLOUT : 0)), 0});
    fds.push_back({wake_fd_, POLLIN, 0});
    int64_t wait_ms = std::max<int64_t>(0, (next_tick - monotonic_ns()) / 1000000);
    int ready = poll(fds.data(), fds.size(), int(wait_ms));
    if (ready < 0 && errno != EINTR) {
      GST_ERROR("ICE-lite port: poll: %s", g_strerror(errno));
      return;
    }
    if (fds.back().revents) return;
    std::lock_guard<std::mutex> dispatching(dispatch_mutex_);
    int64_t now = monotonic_ns();
    size_t at = 0;
    for (size_t i = 0; i < sockets_.size(); ++i, ++at)
      if (fds[at].revents & POLLIN) read_socket(sockets_[i], now);
    const size_t listening = listeners_.size(), connected = connections_.size();
    for (size_t i = 0; i < connected; ++i) {
      const short revents = fds[at + listening + i].revents;
      Connection &c = connections_[i];
      if (revents & POLLOUT) c.socket->tcp->flush();
      if ((revents & (POLLIN | POLLHUP | POLLERR)) && !read_connection(c, now)) c.idle_since_ns = INT64_MIN;
    }
    for (size_t i = 0; i < listening; ++i)
      if (fds[at + i].revents & POLLIN) accept_connections(listeners_[i], now);
    if (now >= next_tick) {
      tick(now);
      sweep_connections(now);
      next_tick = now + kTickMs * 1000000LL;
    }
  }
}

void IceLitePort::accept_connections(const TcpListener &listener, int64_t now_ns) {
  for (int i = 0; i < 16; ++i) {
    sockaddr_in remote{};
    socklen_t len = sizeof remote;
    int fd = accept4(listener.fd, reinterpret_cast<sockaddr *>(&remote), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;
    size_t unheld_from_there = 0;
    for (const auto &c : connections_)
      unheld_from_there += c.remote.sin_addr.s_addr == remote.sin_addr.s_addr && !c.held &&
                           c.idle_since_ns != INT64_MIN;
    if (connections_.size() >= kMaxTcpConnections || unheld_from_there >= kMaxUnheldTcpPerAddress ||
        len != sizeof remote) {
      GST_INFO("ICE-lite port: TCP connection from %s refused: %zu open, %zu of them not held from there",
               describe(remote).c_str(), connections_.size(), unheld_from_there);
      ::close(fd);
      continue;
    }
    const int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    GST_DEBUG("ICE-lite port: TCP connection from %s", describe(remote).c_str());
    connections_.push_back({std::make_shared<PortSocket>(fd, listener.local), remote, {}, now_ns});
  }
}

bool IceLitePort::read_connection(Connection &c, int64_t now_ns) {
  static thread_local std::array<uint8_t, kTcpRead> buffer;
  // A bounded amount per round, so one connection cannot starve the rest.
  for (int round = 0; round < 4; ++round) {
    const ssize_t n = recv(c.socket->fd, buffer.data(), buffer.size(), MSG_DONTWAIT);
    if (n == 0) return false;
    if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
    c.reader.feed(buffer.data(), size_t(n), [&](const uint8_t *frame, size_t len) {
      dispatch(c.socket, frame, len, c.remote, now_ns);
    });
    if (size_t(n) < buffer.size()) break;
  }
  return !c.socket->tcp->failed();
}

// Closes connections that ended, and those no viewer has held for
// kTcpIdleNs. A viewer's transport may still hold the socket for a moment:
// shutdown() ends the connection now, the descriptor closes with the last
// holder.
void IceLitePort::sweep_connections(int64_t now_ns) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto &c : connections_) {
    if (c.idle_since_ns == INT64_MIN) continue;
    const AddressKey key = key_of(c.remote, *c.socket);
    c.held = by_address_.count(key) || by_probe_.count(key);
    if (c.held) c.idle_since_ns = now_ns;
  }
  auto ended = [&](const Connection &c) {
    if (c.idle_since_ns != INT64_MIN && now_ns - c.idle_since_ns < kTcpIdleNs) return false;
    GST_DEBUG("ICE-lite port: TCP connection from %s closed", describe(c.remote).c_str());
    shutdown(c.socket->fd, SHUT_RDWR);
    return true;
  };
  connections_.erase(std::remove_if(connections_.begin(), connections_.end(), ended), connections_.end());
}

void IceLitePort::read_socket(const std::shared_ptr<PortSocket> &socket, int64_t now_ns) {
  static thread_local std::array<std::array<uint8_t, kDatagram>, kBatch> buffers;
  std::array<iovec, kBatch> iov;
  std::array<sockaddr_in, kBatch> from;
  std::array<mmsghdr, kBatch> msgs;
  // A bounded number of rounds, so a flood cannot starve the timers.
  for (int round = 0; round < 8; ++round) {
    for (unsigned i = 0; i < kBatch; ++i) {
      iov[i] = {buffers[i].data(), kDatagram};
      memset(&msgs[i], 0, sizeof msgs[i]);
      msgs[i].msg_hdr.msg_name = &from[i];
      msgs[i].msg_hdr.msg_namelen = sizeof from[i];
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
    }
    int n = recvmmsg(socket->fd, msgs.data(), kBatch, MSG_DONTWAIT, nullptr);
    if (n <= 0) return;
    for (int i = 0; i < n; ++i)
      if (msgs[i].msg_hdr.msg_namelen == sizeof(sockaddr_in) && !(msgs[i].msg_hdr.msg_flags & MSG_TRUNC))
        dispatch(socket, buffers[i].data(), msgs[i].msg_len, from[i], now_ns);
    if (unsigned(n) < kBatch) return;
  }
}

void IceLitePort::forget_locked(const LiteTransport *transport) {
  auto at = address_of_.find(transport);
  if (at != address_of_.end()) {
    by_address_.erase(at->second);
    address_of_.erase(at);
  }
  auto probe = probe_of_.find(transport);
  if (probe != probe_of_.end()) {
    by_probe_.erase(probe->second);
    probe_of_.erase(probe);
  }
}

void IceLitePort::claim_locked(const std::shared_ptr<LiteTransport> &transport, const AddressKey &key) {
  forget_locked(transport.get());
  // A failed or closed viewer may still hold it until it is removed.
  auto previous = by_address_.find(key);
  if (previous != by_address_.end()) address_of_.erase(previous->second.get());
  by_address_[key] = transport;
  address_of_[transport.get()] = key;
}

void IceLitePort::dispatch(const std::shared_ptr<PortSocket> &socket, const uint8_t *data, size_t len,
                           const sockaddr_in &from, int64_t now_ns) {
  if (stun::looks_like_stun(data, len)) {
    stun::Message message;
    if (message.parse(data, len)) on_stun(socket, message, from, now_ns);
    return;
  }
  std::shared_ptr<LiteTransport> transport;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = by_address_.find(key_of(from, *socket));
    if (it != by_address_.end()) transport = it->second;
  }
  if (transport) transport->on_datagram(data, len, now_ns);
}

// A check finds its viewer by the ufrag it names; an answer to one of ours
// by the address it comes from (the viewer's, or one being probed).
void IceLitePort::on_stun(const std::shared_ptr<PortSocket> &socket, const stun::Message &message,
                          const sockaddr_in &from, int64_t now_ns) {
  const AddressKey key = key_of(from, *socket);
  std::shared_ptr<LiteTransport> transport;
  if (message.type() == stun::kBindingSuccess) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto held = by_address_.find(key);
      auto probed = by_probe_.find(key);
      if (held != by_address_.end()) transport = held->second;
      else if (probed != by_probe_.end()) transport = probed->second;
    }
    if (!transport || !transport->on_binding_response(message, from, socket, now_ns)) return;
    std::lock_guard<std::mutex> lock(mutex_);
    if (by_ufrag_.count(transport->local_ufrag())) claim_locked(transport, key);
    return;
  }
  if (message.type() != stun::kBindingRequest) return;
  const std::string user = message.username();
  const std::string ufrag = user.substr(0, user.find(':'));
  bool taken = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = by_ufrag_.find(ufrag);
    if (it != by_ufrag_.end()) transport = it->second;
    auto held = by_address_.find(key);
    // An address belongs to one live viewer; no one else's check takes it.
    taken = transport && held != by_address_.end() && held->second != transport &&
            held->second->state() != LiteTransport::State::Failed &&
            held->second->state() != LiteTransport::State::Closed;
  }
  if (!transport) {
    GST_LOG("ICE-lite port: check for unknown ufrag '%s'", ufrag.c_str());
    return;
  }
  const LiteTransport::Check check = transport->on_binding_request(message, from, socket, taken, now_ns);
  if (check != LiteTransport::Check::Moved && check != LiteTransport::Check::Probing) return;
  std::lock_guard<std::mutex> lock(mutex_);
  if (!by_ufrag_.count(ufrag)) return;  // removed meanwhile
  if (check == LiteTransport::Check::Moved) {
    claim_locked(transport, key);
    return;
  }
  auto old = probe_of_.find(transport.get());
  if (old != probe_of_.end()) by_probe_.erase(old->second);
  auto other = by_probe_.find(key);
  if (other != by_probe_.end()) probe_of_.erase(other->second.get());
  by_probe_[key] = transport;
  probe_of_[transport.get()] = key;
}

void IceLitePort::tick(int64_t now_ns) {
  std::vector<std::shared_ptr<LiteTransport>> all;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    all.reserve(by_ufrag_.size());
    for (const auto &t : by_ufrag_) all.push_back(t.second);
  }
  for (const auto &t : all) t->on_tick(now_ns);
}

}  // namespace wb
