// anyturn::probe (private) — one control connection to a STUN/TURN server:
// a UDP socket, a TCP connection or TLS over TCP, with plain non-blocking
// sockets, poll() and one deadline. It moves whole frames: datagrams on
// UDP, STUN messages and ChannelData framed with stun::stream_frame_length
// on TCP and TLS. The socket and the SSL objects are owned here (RAII).
#pragma once

#include <anyturn/stun/message.hpp>

#include <openssl/types.h>
#include <sys/socket.h>

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>


namespace anyturn::probe::detail {

using clock = std::chrono::steady_clock;
using frame = std::vector<std::byte>;

// What went wrong: a cause for the report, and whether it was the deadline.
struct failure {
  std::string cause;
  bool timed_out = false;
};

struct socket_address {
  sockaddr_storage storage{};
  socklen_t length = 0;
  [[nodiscard]] const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&storage); }
  [[nodiscard]] stun::endpoint endpoint() const;
};

struct tls_settings {
  std::string host;     // for SNI and the name check (an IP literal: the IP check)
  std::string ca_file;  // empty: the system store
  bool insecure = false;
};

class connection {
 public:
  connection() = default;
  ~connection();
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;

  // UDP: a connected datagram socket (nothing is sent). TCP: a connect()
  // bounded by the deadline. False with `f` set on failure.
  bool open(const socket_address& server, bool stream, clock::time_point deadline, failure& f);
  // TLS handshake over the open TCP connection, verifying unless insecure.
  bool start_tls(const tls_settings& s, clock::time_point deadline, failure& f);

  bool send(stun::bytes_view data, clock::time_point deadline, failure& f);
  // The next frame, waiting until `until`. Returns false on timeout (f.timed_out)
  // or on a broken connection (f.cause set).
  bool receive(frame& out, clock::time_point until, failure& f);

  [[nodiscard]] bool stream() const { return stream_; }
  [[nodiscard]] bool is_open() const { return fd_ >= 0; }
  [[nodiscard]] int fd() const { return fd_; }

 private:
  bool wait(short events, clock::time_point until, failure& f) const;
  bool fill(clock::time_point until, failure& f);  // reads more stream bytes into in_
  void close();

  int fd_ = -1;
  bool stream_ = false;
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  std::vector<std::byte> in_;  // stream bytes not yet framed
};

// Remaining time until `deadline`, at least 0, as poll()'s milliseconds.
int poll_timeout(clock::time_point deadline);

}  // namespace anyturn::probe::detail
