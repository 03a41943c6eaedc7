// anyturn::metrics — usage records as JSON lines, what an operator bills from.
//
// One line per ended allocation: tenant, user, transport, client and relay
// addresses, start and end (RFC 3339, milliseconds), bytes and packets in each
// direction, and why it ended. Workers call record() directly: each line is
// formatted on the stack and handed to the kernel with a single write() on an
// O_APPEND descriptor, so lines from different workers never interleave, no
// lock is taken, and nothing is buffered in user space that a clean shutdown
// could lose. reopen() (on SIGHUP) swaps in a fresh descriptor for log
// rotation; the previous one is closed only at the next reopen, so a worker
// that loaded it just before the swap still writes to a valid file.
#pragma once

#include <anyturn/metrics/registry.hpp>
#include <anyturn/turn/usage.hpp>

#include <atomic>
#include <cstddef>
#include <string>
#include <string_view>
#include <system_error>

namespace anyturn::metrics {

class usage_log final : public turn::usage_sink {
 public:
  // Opens (creates, mode 0640) `path` for appending; throws std::system_error
  // naming the path if it cannot (start-up only).
  explicit usage_log(std::string path);
  ~usage_log() override;
  usage_log(const usage_log&) = delete;
  usage_log& operator=(const usage_log&) = delete;

  void record(const turn::usage_record& r) noexcept override;
  // Re-opens the path (after logrotate moved the file). Returns the error,
  // and keeps writing to the old file, if the path cannot be opened.
  std::error_code reopen();

  [[nodiscard]] const std::string& path() const { return path_; }
  [[nodiscard]] std::uint64_t records_written() const { return written_.load(std::memory_order_relaxed); }
  [[nodiscard]] std::uint64_t write_errors() const { return errors_.load(std::memory_order_relaxed); }
  // anyturn_usage_records_total{result="written|failed"}
  registry::collector collector() const;

  // Formats one record as a JSON line (with the trailing newline) into
  // `out`; returns the length, or 0 if it did not fit. Exposed for tests.
  static std::size_t format(const turn::usage_record& r, char* out, std::size_t size) noexcept;

 private:
  std::string path_;
  std::atomic<int> fd_{-1};
  int retired_fd_ = -1;  // touched only by reopen() and the destructor
  std::atomic<std::uint64_t> written_{0};
  std::atomic<std::uint64_t> errors_{0};
};

}  // namespace anyturn::metrics
