#include <anyturn/metrics/process.hpp>

#include <gtest/gtest.h>

#include <ctime>

namespace anyturn::metrics {
namespace {

// proc(5) layout; comm holds spaces and a ')' to check we split at the last one.
constexpr std::string_view stat_line =
    "4242 (we ird) name) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 150 0 0 20 0 3 0 "
    "12000 104857600 2560 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 1 0 0 0 0 0\n";

TEST(process, parses_proc_stat_into_base_units) {
  const auto st = parse_proc_stat(stat_line, 100, 4096, 1700000000);
  ASSERT_TRUE(st);
  EXPECT_DOUBLE_EQ(st->cpu_seconds, 4.0);  // (250 + 150) / 100
  EXPECT_DOUBLE_EQ(st->start_time_seconds, 1700000000 + 120.0);
  EXPECT_DOUBLE_EQ(st->virtual_bytes, 104857600.0);
  EXPECT_DOUBLE_EQ(st->resident_bytes, 2560.0 * 4096);
}

TEST(process, rejects_malformed_proc_stat) {
  EXPECT_FALSE(parse_proc_stat("", 100, 4096, 0));
  EXPECT_FALSE(parse_proc_stat("1 (x) S 1 2 3", 100, 4096, 0));
  EXPECT_FALSE(parse_proc_stat("1 (x) S 1 4242 4242 0 -1 4194560 1000 0 0 0 abc 150 0 0 20 0 3 0 "
                               "12000 104857600 2560",
                               100, 4096, 0));
  EXPECT_FALSE(parse_proc_stat(stat_line, 0, 4096, 0));
}

TEST(process, parses_boot_time) {
  EXPECT_EQ(parse_boot_time("cpu  1 2 3\nintr 5\nbtime 1699999999\nprocesses 9\n"), 1699999999.0);
  EXPECT_FALSE(parse_boot_time("cpu 1\n"));
  EXPECT_FALSE(parse_boot_time("btime x\n"));
}

TEST(process, collector_reads_this_process) {
  sink s;
  process_collector()(s);
  const std::string text = s.text();
  EXPECT_EQ(s.rejected(), 0u);
  for (const char* name : {"process_cpu_seconds_total ", "process_resident_memory_bytes ",
                           "process_virtual_memory_bytes ", "process_open_fds ",
                           "process_max_fds ", "process_start_time_seconds "}) {
    EXPECT_NE(text.find(std::string("\n") + name), std::string::npos) << name << "\n" << text;
  }
  // The start time is in the past and not before 2020.
  const auto pos = text.find("\nprocess_start_time_seconds ");
  const double start = std::stod(text.substr(pos + 28));
  EXPECT_GT(start, 1577836800.0);
  EXPECT_LE(start, static_cast<double>(std::time(nullptr)) + 1);
}

TEST(process, build_info) {
  sink s;
  build_info_collector("1.2.3", "gcc 12.2.0")(s);
  EXPECT_EQ(s.text(),
            "# HELP anyturn_build_info A metric with a constant '1' value labelled by the version "
            "and compiler anyturn was built with.\n"
            "# TYPE anyturn_build_info gauge\n"
            "anyturn_build_info{version=\"1.2.3\",compiler=\"gcc 12.2.0\"} 1\n");
  EXPECT_FALSE(anyturn_version().empty());
  EXPECT_NE(compiler_description(), "unknown");
}

}  // namespace
}  // namespace anyturn::metrics
