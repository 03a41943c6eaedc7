// src/app/xdp_setup.cpp and the app's start with xdp.interfaces: a program
// that cannot be attached fails the start in native and generic mode, and
// is logged and left out in auto mode; with BPF at hand (root), the app
// attaches in a network namespace of its own and detaches when it stops.
#include <anyturn/app/app.hpp>
#include <anyturn/app/xdp_setup.hpp>

#include <gtest/gtest.h>

#include "app_config.hpp"

#include <cstdio>
#include <cstdlib>
#include <string>

#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

namespace anyturn::app {
namespace {

using test::test_config;

TEST(xdp_setup, options_follow_the_keys) {
  config::xdp_config c;
  c.interfaces = {"eth0", "eth1"};
  c.max_channels = 100;
  c.max_allocations = 10;
  for (const auto& [mode, want] : {std::pair{"native", xdp::attach_mode::native},
                                   std::pair{"generic", xdp::attach_mode::generic},
                                   std::pair{"auto", xdp::attach_mode::automatic}}) {
    c.mode = mode;
    const xdp::options o = xdp_options_of(c);
    EXPECT_EQ(o.mode, want) << mode;
    EXPECT_EQ(o.interfaces, c.interfaces);
    EXPECT_EQ(o.max_channels, 100u);
    EXPECT_EQ(o.max_allocations, 10u);
  }
}

TEST(xdp_setup, nothing_without_interfaces) {
  std::string error;
  EXPECT_EQ(open_xdp(config::xdp_config{}, error), nullptr);
  EXPECT_TRUE(error.empty()) << error;
}

TEST(xdp_setup, native_mode_that_cannot_attach_fails_the_start_with_the_reason) {
  config::server_config cfg = test_config();
  cfg.xdp.interfaces = {"anyturn-none0"};
  cfg.xdp.mode = "native";
  server_app app(cfg);
  std::string error;
  EXPECT_FALSE(app.start(error));
  EXPECT_NE(error.find("xdp.mode native"), std::string::npos) << error;
  EXPECT_GT(error.size(), std::string("xdp (xdp.interfaces, xdp.mode native): ").size()) << error;
  EXPECT_EQ(app.wait(), 1);
}

TEST(xdp_setup, auto_mode_that_cannot_attach_runs_in_user_space) {
  config::server_config cfg = test_config();
  cfg.xdp.interfaces = {"anyturn-none0"};
  cfg.xdp.mode = "auto";
  server_app app(cfg);
  std::string error;
  ASSERT_TRUE(app.start(error)) << error;
  const std::string metrics = app.render_metrics();
  EXPECT_NE(metrics.find("anyturn_xdp_attached 0\n"), std::string::npos) << metrics;
  EXPECT_EQ(metrics.find("anyturn_xdp_packets_total"), std::string::npos);
  app.request_stop(0);
  EXPECT_EQ(app.wait(), 0);
}

// Runs a shell command; true when it exits 0.
bool run(const std::string& cmd) { return std::system(cmd.c_str()) == 0; }

std::string output_of(const std::string& cmd) {
  std::string out;
  if (FILE* p = ::popen(cmd.c_str(), "r")) {
    char buf[512];
    while (std::fgets(buf, sizeof buf, p) != nullptr) out += buf;
    ::pclose(p);
  }
  return out;
}

TEST(xdp_setup, attaches_in_generic_mode_and_detaches_when_the_app_ends) {
  std::string why;
  if (!xdp::can_load(why)) GTEST_SKIP() << "cannot load BPF programs here: " << why;
  const std::string ns = "anyturn-xb-" + std::to_string(::getpid());
  ASSERT_TRUE(run("ip netns add " + ns + " && ip -n " + ns + " link set lo up"));
  // This thread (and the threads the app starts from it) enters the
  // namespace; its lo carries the program, nothing outside it.
  const int home = ::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  const int there = ::open(("/var/run/netns/" + ns).c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(home, 0);
  ASSERT_GE(there, 0);
  ASSERT_EQ(::setns(there, CLONE_NEWNET), 0);
  {
    config::server_config cfg = test_config();
    cfg.xdp.interfaces = {"lo"};
    cfg.xdp.mode = "generic";
    server_app app(cfg);
    std::string error;
    const bool started = app.start(error);
    EXPECT_TRUE(started) << error;
    if (started) {
      const std::string metrics = app.render_metrics();
      EXPECT_NE(metrics.find("anyturn_xdp_attached 1\n"), std::string::npos) << metrics;
      EXPECT_NE(metrics.find("anyturn_xdp_map_entries{map=\"allocations\"} 0\n"), std::string::npos);
      EXPECT_NE(output_of("ip -n " + ns + " link show lo").find("xdp"), std::string::npos);
      app.request_stop(0);
      EXPECT_EQ(app.wait(), 0);
    }
  }  // the app and its offload are gone: the link is closed
  EXPECT_EQ(output_of("ip -n " + ns + " link show lo").find("xdp"), std::string::npos)
      << "the program must be detached when the app ends";
  EXPECT_EQ(::setns(home, CLONE_NEWNET), 0);
  ::close(there);
  ::close(home);
  run("ip netns del " + ns);
}

}  // namespace
}  // namespace anyturn::app
