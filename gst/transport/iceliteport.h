// The shared UDP port of ICE-lite viewers: one socket per local address
// for every viewer, and one thread that reads them all and keeps their
// timers. A datagram finds its viewer the way single-port servers do: a
// STUN check by the ufrag in its USERNAME, anything else by the address
// the viewer nominated. A viewer then costs no socket, no thread and no
// element, and media for every viewer leaves through the same socket.
#pragma once

#include <netinet/in.h>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "transport/dtls.h"
#include "transport/litetransport.h"
#include "transport/tcpstream.h"

namespace wb {

// One socket of the port: the UDP socket of a host candidate viewers reach,
// or one viewer's connection to its passive TCP candidate (ICE-TCP).
struct PortSocket {
  PortSocket(int descriptor, sockaddr_in address, bool steered)
      : fd(descriptor), local(address), steers_to_itself(steered) {}
  // An accepted TCP connection (the descriptor is owned here too).
  PortSocket(int descriptor, sockaddr_in address)
      : fd(descriptor), local(address), steers_to_itself(false), tcp(std::make_shared<TcpStream>(descriptor)) {}
  ~PortSocket();
  PortSocket(const PortSocket &) = delete;
  PortSocket &operator=(const PortSocket &) = delete;
  // One STUN message, DTLS record or SRTCP packet to `to` (UDP), or framed
  // on the connection (TCP, where `to` is the connection's peer anyway).
  // Never blocks; what the socket cannot take is lost, as on a network.
  void send(const uint8_t *data, size_t len, const sockaddr_in &to) const;
  const int fd;
  const sockaddr_in local;
  // Every datagram to the port reaches this socket even when others are
  // bound to the same address and port (see only_first_receives()).
  const bool steers_to_itself;
  const std::shared_ptr<TcpStream> tcp;  // set for a TCP connection
};

class IceLitePort {
 public:
  struct Config {
    // IPv4 addresses to bind and announce; empty: every non-loopback IPv4
    // address that is up.
    std::vector<std::string> addresses;
    uint16_t port = 0;  // 0: one the system picks (the same on every address)
    ConsentTiming timing;
    // Where every transport of the port adds what its viewer reports (null: nowhere).
    std::shared_ptr<RtcpMetrics> rtcp_metrics;
  };
  struct Candidate {
    std::string address;
    uint16_t port;
    bool tcp;  // a passive TCP candidate (RFC 6544) on the same port number
  };

  // nullptr with the reason in `why` when no address could be bound.
  static std::shared_ptr<IceLitePort> open(const Config &config, std::string *why);
  ~IceLitePort();
  IceLitePort(const IceLitePort &) = delete;
  IceLitePort &operator=(const IceLitePort &) = delete;

  // A transport with fresh ICE credentials, reachable from now on.
  std::shared_ptr<LiteTransport> add(LiteTransport::RemoteIce remote, DtlsRole role, std::string remote_fingerprint,
                                     LiteTransport::Listener listener);
  // Closes the transport and forgets it: once this returns, none of its
  // listener's callbacks runs any more.
  void remove(const std::shared_ptr<LiteTransport> &transport);

  // The UDP candidates, then the TCP ones.
  const std::vector<Candidate> &candidates() const { return candidates_; }
  // The port's sockets (one per address) beside which sender shards may
  // bind sockets of their own to the same address and port, to send from
  // (SO_REUSEPORT; only the port's sockets receive). Empty where the kernel
  // cannot steer datagrams (no SO_ATTACH_REUSEPORT_CBPF: Linux before 4.5,
  // qemu-user): there the shards send through the port's own sockets.
  std::vector<int> socket_fds() const;
  const std::string &fingerprint() const { return identity_->fingerprint(); }

 private:
  IceLitePort() = default;
  struct TcpListener {
    int fd;
    sockaddr_in local;
  };
  struct Connection {
    std::shared_ptr<PortSocket> socket;
    sockaddr_in remote;
    TcpFrameReader reader;
    int64_t idle_since_ns;  // since accepted, or since no viewer holds it
    bool held = false;      // by a viewer, at the last sweep
  };
  void run();
  void read_socket(const std::shared_ptr<PortSocket> &socket, int64_t now_ns);
  void accept_connections(const TcpListener &listener, int64_t now_ns);
  // False once the connection is closed or failed.
  bool read_connection(Connection &connection, int64_t now_ns);
  void sweep_connections(int64_t now_ns);
  void dispatch(const std::shared_ptr<PortSocket> &socket, const uint8_t *data, size_t len,
                const sockaddr_in &from, int64_t now_ns);
  void tick(int64_t now_ns);
  void on_stun(const std::shared_ptr<PortSocket> &socket, const stun::Message &message, const sockaddr_in &from,
               int64_t now_ns);

  using AddressKey = std::tuple<uint32_t, uint16_t, int>;  // remote address, port, socket
  static AddressKey key_of(const sockaddr_in &from, const PortSocket &socket);
  // Port thread, mutex_ held: `transport` now owns `key` (its old address
  // and any probe are forgotten).
  void claim_locked(const std::shared_ptr<LiteTransport> &transport, const AddressKey &key);
  void forget_locked(const LiteTransport *transport);

  std::shared_ptr<DtlsIdentity> identity_;
  std::vector<std::shared_ptr<PortSocket>> sockets_;
  // ICE-TCP: a listening socket per address that could have one, and the
  // connections viewers opened to them (port thread only).
  std::vector<TcpListener> listeners_;
  std::vector<Connection> connections_;
  std::vector<Candidate> candidates_;
  int wake_fd_ = -1;  // eventfd: stop the thread

  mutable std::mutex mutex_;
  std::map<std::string, std::shared_ptr<LiteTransport>> by_ufrag_;
  std::map<AddressKey, std::shared_ptr<LiteTransport>> by_address_;
  std::map<const LiteTransport *, AddressKey> address_of_;
  // Addresses a viewer nominated and we are checking: their answers come
  // from there before anything else does.
  std::map<AddressKey, std::shared_ptr<LiteTransport>> by_probe_;
  std::map<const LiteTransport *, AddressKey> probe_of_;
  ConsentTiming timing_;
  std::shared_ptr<RtcpMetrics> rtcp_metrics_;
  // Held by the thread while it calls into transports: remove() waits on
  // it, so no callback of a removed transport runs after remove() returns.
  std::mutex dispatch_mutex_;
  std::thread thread_;
};

}  // namespace wb
