#include <anyturn/metrics/usage_log.hpp>

#include <spdlog/spdlog.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>

#include <fcntl.h>
#include <unistd.h>

namespace anyturn::metrics {

namespace {

int open_append(const std::string& path) {
  return ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
}

// A bounded writer over a caller's buffer; once full it stays failed.
class line_writer {
 public:
  line_writer(char* out, std::size_t size) : out_(out), size_(size) {}
  void raw(std::string_view s) {
    if (!ok_ || s.size() > size_ - len_) {
      ok_ = false;
      return;
    }
    std::memcpy(out_ + len_, s.data(), s.size());
    len_ += s.size();
  }
  void ch(char c) { raw(std::string_view(&c, 1)); }
  // A JSON string, escaping quotes, backslashes and control characters.
  void str(std::string_view s) {
    ch('"');
    for (const char c : s) {
      const auto u = static_cast<unsigned char>(c);
      if (c == '"' || c == '\\') {
        ch('\\');
        ch(c);
      } else if (u < 0x20) {
        std::array<char, 7> esc{};
        std::snprintf(esc.data(), esc.size(), "\\u%04x", u);
        raw(std::string_view(esc.data(), 6));
      } else {
        ch(c);
      }
    }
    ch('"');
  }
  void num(std::uint64_t v) {
    std::array<char, 24> b{};
    const int n = std::snprintf(b.data(), b.size(), "%llu", static_cast<unsigned long long>(v));
    raw(std::string_view(b.data(), static_cast<std::size_t>(n)));
  }
  void time(std::int64_t unix_ms) {
    const std::time_t secs = static_cast<std::time_t>(unix_ms / 1000);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    std::array<char, 32> b{};
    const int n = std::snprintf(b.data(), b.size(), "\"%04d-%02d-%02dT%02d:%02d:%02d.%03dZ\"",
                                tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                                tm.tm_min, tm.tm_sec, static_cast<int>(unix_ms % 1000));
    raw(std::string_view(b.data(), static_cast<std::size_t>(n)));
  }
  void endpoint(const stun::endpoint& ep) {
    raw("\"");
    raw(ep.to_string());  // once per ended allocation: a small string is fine
    raw("\"");
  }
  [[nodiscard]] std::size_t size() const { return ok_ ? len_ : 0; }

 private:
  char* out_;
  std::size_t size_;
  std::size_t len_ = 0;
  bool ok_ = true;
};

}  // namespace

usage_log::usage_log(std::string path) : path_(std::move(path)) {
  const int fd = open_append(path_);
  if (fd < 0) throw std::system_error(errno, std::generic_category(), "usage log " + path_);
  fd_.store(fd, std::memory_order_release);
}

usage_log::~usage_log() {
  const int fd = fd_.exchange(-1);
  if (fd >= 0) ::close(fd);
  if (retired_fd_ >= 0) ::close(retired_fd_);
}

std::size_t usage_log::format(const turn::usage_record& r, char* out, std::size_t size) noexcept {
  line_writer w(out, size);
  w.raw("{");
  if (r.session) {  // the allocation's id, as in the log lines and the admin API
    // session_id::str() without its std::string: 16 lower-case hex digits.
    static constexpr char hex[] = "0123456789abcdef";
    char id[16];
    std::uint64_t v = r.session->packed();
    for (int i = 15; i >= 0; --i, v >>= 4) id[i] = hex[v & 0xF];
    w.raw("\"session\":");
    w.str(std::string_view(id, sizeof id));
    w.raw(",");
  }
  w.raw("\"tenant\":");
  w.str(r.tenant);
  w.raw(",\"user\":");
  w.str(r.user);
  if (!r.custom_identifier.empty()) {  // the credentials API's customIdentifier
    w.raw(",\"custom_identifier\":");
    w.str(r.custom_identifier);
  }
  w.raw(",\"transport\":");
  w.str(relay::to_string(r.proto));
  w.raw(",\"client\":");
  w.endpoint(r.client);
  w.raw(",\"relay\":");
  w.endpoint(r.relay);
  if (r.relay6 != nullptr) {
    w.raw(",\"relay6\":");
    w.endpoint(*r.relay6);
  }
  w.raw(",\"start\":");
  w.time(r.start_unix_ms);
  w.raw(",\"end\":");
  w.time(r.end_unix_ms);
  w.raw(",\"duration_ms\":");
  w.num(static_cast<std::uint64_t>(std::max<std::int64_t>(0, r.end_unix_ms - r.start_unix_ms)));
  w.raw(",\"packets_to_peer\":");
  w.num(r.packets_to_peer);
  w.raw(",\"bytes_to_peer\":");
  w.num(r.bytes_to_peer);
  w.raw(",\"packets_to_client\":");
  w.num(r.packets_to_client);
  w.raw(",\"bytes_to_client\":");
  w.num(r.bytes_to_client);
  w.raw(",\"reason\":");
  w.str(r.reason);
  w.raw("}\n");
  return w.size();
}

void usage_log::record(const turn::usage_record& r) noexcept {
  std::array<char, 4096> line{};
  std::size_t n = 0;
  try {
    n = format(r, line.data(), line.size());
  } catch (...) {
    n = 0;
  }
  const int fd = fd_.load(std::memory_order_acquire);
  if (n == 0 || fd < 0) {
    errors_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  ssize_t rc;
  do {
    rc = ::write(fd, line.data(), n);
  } while (rc < 0 && errno == EINTR);
  if (rc != static_cast<ssize_t>(n)) {
    const auto failures = errors_.fetch_add(1, std::memory_order_relaxed);
    if ((failures & (failures + 1)) == 0)  // 1st, 2nd, 4th, 8th ... failure
      spdlog::error("usage log {}: write failed: {} ({} failures so far)", path_,
                    rc < 0 ? std::strerror(errno) : "short write", failures + 1);
    return;
  }
  written_.fetch_add(1, std::memory_order_relaxed);
}

std::error_code usage_log::reopen() {
  const int fresh = open_append(path_);
  if (fresh < 0) return {errno, std::generic_category()};
  const int old = fd_.exchange(fresh, std::memory_order_acq_rel);
  if (retired_fd_ >= 0) ::close(retired_fd_);
  retired_fd_ = old;
  return {};
}

registry::collector usage_log::collector() const {
  return [this](sink& s) {
    s.counter("anyturn_usage_records", "Usage records (one per ended allocation) by write result.",
              {{"result", "written"}}, records_written());
    s.counter("anyturn_usage_records", "Usage records (one per ended allocation) by write result.",
              {{"result", "failed"}}, write_errors());
  };
}

}  // namespace anyturn::metrics
