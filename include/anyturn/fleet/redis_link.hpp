// anyturn::fleet — one connection to Redis: hiredis' async API on Asio.
//
// The hiredis context's socket is watched by an Asio posix::stream_descriptor
// (async_wait for readability and writability); hiredis does the reads,
// writes and the protocol. Everything runs on the thread that runs the
// io_context (the fleet thread), never on a worker. Not thread-safe.
//
// Handlers are never called after close() or the destructor. Do not destroy
// a link from inside one of its handlers (close() there is fine).
#pragma once

#include <anyturn/config/redis_url.hpp>

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace anyturn::fleet {

using config::redis_url;

// Whether this build can talk TLS to Redis (rediss://): Debian's
// libhiredis-dev ships no hiredis_ssl, so no.
inline constexpr bool tls_supported = false;

// "redis://host:port/db" (with "***@" when there is a password), for logs.
std::string describe(const redis_url& url);

// A reply, copied out of hiredis.
struct reply {
  enum class kind : std::uint8_t { nil, integer, string, status, error, array };
  kind type = kind::nil;
  long long integer = 0;
  std::string str;  // string, status, error
  std::vector<reply> elements;

  [[nodiscard]] bool is_error() const { return type == kind::error; }
};

class redis_link {
 public:
  // nullptr: the connection went away before the reply came.
  using reply_handler = std::function<void(const reply*)>;
  using message_handler = std::function<void(std::string_view channel, std::string_view payload)>;
  // "" on success, else why the connection could not be set up.
  using connect_handler = std::function<void(const std::string& error)>;
  // The connection was lost after it was set up (not called after close()).
  using lost_handler = std::function<void(const std::string& why)>;

  explicit redis_link(boost::asio::io_context& io);
  ~redis_link();
  redis_link(const redis_link&) = delete;
  redis_link& operator=(const redis_link&) = delete;

  // Connects (closing any previous connection), sends AUTH and SELECT as
  // `url` asks, then PING; `done` is called once, when the PING is answered
  // or on the first failure or when `timeout` passes. `url.tls` fails at
  // once: this build has no TLS to Redis.
  void connect(const redis_url& url, std::chrono::milliseconds timeout, connect_handler done,
               lost_handler lost);
  [[nodiscard]] bool ready() const;

  // Queues a command (binary-safe arguments). False when not connected (the
  // handler is then not called).
  bool command(const std::vector<std::string>& args, reply_handler h);
  // SUBSCRIBE to `channels`: `subscribed` once every channel is confirmed,
  // `on_message` for each message. The link is in subscriber mode after
  // this: command() may no longer be used on it.
  bool subscribe(const std::vector<std::string>& channels, std::function<void()> subscribed,
                 message_handler on_message);

  void close();

  // Commands sent and not yet answered.
  [[nodiscard]] std::size_t pending() const;

  struct connection;  // the hiredis context and its descriptor (redis_link.cpp)

 private:
  boost::asio::io_context& io_;
  std::shared_ptr<connection> conn_;
};

}  // namespace anyturn::fleet
