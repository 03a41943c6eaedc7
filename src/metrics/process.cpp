// Process metrics from Linux /proc/self (proc(5)), read at scrape time.
#include <anyturn/metrics/process.hpp>

#include <sys/resource.h>
#include <unistd.h>

#include <charconv>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#ifndef ANYTURN_VERSION
#define ANYTURN_VERSION "unknown"
#endif

namespace anyturn::metrics {
namespace {

std::optional<std::string> read_file(const char* path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) return std::nullopt;
  return text;
}

template <typename T>
bool parse_number(std::string_view s, T& out) {
  const auto r = std::from_chars(s.data(), s.data() + s.size(), out);
  return r.ec == std::errc{} && r.ptr == s.data() + s.size();
}

std::optional<double> count_open_fds() {
  std::error_code ec;
  std::filesystem::directory_iterator it("/proc/self/fd", ec);
  if (ec) return std::nullopt;
  double n = 0;
  for (const auto& entry : it) {
    (void)entry;
    ++n;
  }
  return n;
}

std::optional<double> max_fds() {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) return std::nullopt;
  return static_cast<double>(rl.rlim_cur);  // RLIM_INFINITY reads as 2^64-1
}

}  // namespace

std::optional<proc_stat> parse_proc_stat(std::string_view text, long clock_ticks, long page_size,
                                         double boot_time) {
  // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so the
  // fields start after the last ')'. Field numbers below are proc(5)'s.
  const auto close = text.rfind(')');
  if (close == std::string_view::npos || clock_ticks <= 0 || page_size <= 0) return std::nullopt;
  std::string_view rest = text.substr(close + 1);
  std::vector<std::string_view> fields;  // fields[0] is field 3 (state)
  while (!rest.empty()) {
    const auto start = rest.find_first_not_of(" \n");
    if (start == std::string_view::npos) break;
    rest.remove_prefix(start);
    const auto end = rest.find_first_of(" \n");
    fields.push_back(rest.substr(0, end));
    if (end == std::string_view::npos) break;
    rest.remove_prefix(end);
  }
  auto field = [&](int n) { return fields[static_cast<std::size_t>(n - 3)]; };
  if (fields.size() < 24 - 3 + 1) return std::nullopt;
  std::uint64_t utime = 0, stime = 0, starttime = 0, vsize = 0;
  std::int64_t rss = 0;
  if (!parse_number(field(14), utime) || !parse_number(field(15), stime) ||
      !parse_number(field(22), starttime) || !parse_number(field(23), vsize) ||
      !parse_number(field(24), rss)) {
    return std::nullopt;
  }
  const auto ticks = static_cast<double>(clock_ticks);
  proc_stat out;
  out.cpu_seconds = static_cast<double>(utime + stime) / ticks;
  out.start_time_seconds = boot_time + static_cast<double>(starttime) / ticks;
  out.virtual_bytes = static_cast<double>(vsize);
  out.resident_bytes = static_cast<double>(rss < 0 ? 0 : rss) * static_cast<double>(page_size);
  return out;
}

std::optional<double> parse_boot_time(std::string_view text) {
  std::size_t pos = 0;
  while (pos < text.size()) {
    auto end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view line = text.substr(pos, end - pos);
    if (line.starts_with("btime ")) {
      std::uint64_t v = 0;
      if (parse_number(line.substr(6), v)) return static_cast<double>(v);
      return std::nullopt;
    }
    pos = end + 1;
  }
  return std::nullopt;
}

registry::collector process_collector() {
  const long ticks = ::sysconf(_SC_CLK_TCK);
  const long page = ::sysconf(_SC_PAGESIZE);
  std::optional<double> boot;
  if (auto text = read_file("/proc/stat")) boot = parse_boot_time(*text);

  return [ticks, page, boot](sink& s) {
    if (boot) {
      if (auto text = read_file("/proc/self/stat")) {
        if (auto st = parse_proc_stat(*text, ticks, page, *boot)) {
          s.counter("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
                    {}, st->cpu_seconds);
          s.gauge("process_resident_memory_bytes", "Resident memory size in bytes.", {},
                  st->resident_bytes);
          s.gauge("process_virtual_memory_bytes", "Virtual memory size in bytes.", {},
                  st->virtual_bytes);
          s.gauge("process_start_time_seconds",
                  "Start time of the process since unix epoch in seconds.", {},
                  st->start_time_seconds);
        }
      }
    }
    if (auto n = count_open_fds()) {
      s.gauge("process_open_fds", "Number of open file descriptors.", {}, *n);
    }
    if (auto n = max_fds()) {
      s.gauge("process_max_fds", "Maximum number of open file descriptors.", {}, *n);
    }
  };
}

std::string_view anyturn_version() { return ANYTURN_VERSION; }

std::string compiler_description() {
#if defined(__clang__)
  return "clang " + std::to_string(__clang_major__) + "." + std::to_string(__clang_minor__) + "." +
         std::to_string(__clang_patchlevel__);
#elif defined(__GNUC__)
  return "gcc " + std::to_string(__GNUC__) + "." + std::to_string(__GNUC_MINOR__) + "." +
         std::to_string(__GNUC_PATCHLEVEL__);
#else
  return "unknown";
#endif
}

registry::collector build_info_collector(std::string version, std::string compiler) {
  return [version = std::move(version), compiler = std::move(compiler)](sink& s) {
    s.gauge("anyturn_build_info",
            "A metric with a constant '1' value labelled by the version and compiler anyturn was "
            "built with.",
            {{"version", version}, {"compiler", compiler}}, 1);
  };
}

}  // namespace anyturn::metrics
