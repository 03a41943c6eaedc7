// xdp.* / --xdp / --xdp-mode end to end through the config module: the
// YAML keys (yaml_loader.cpp), the flags (cli.cpp) and their checks
// (validate_xdp.cpp).
#include <anyturn/config/cli.hpp>
#include <anyturn/config/config.hpp>

#include <gtest/gtest.h>

#include "config_files.hpp"

#include <string>
#include <vector>

namespace anyturn::config {
namespace {

TEST(Xdp, OffByDefault) {
  const server_config cfg = defaults();
  EXPECT_TRUE(cfg.xdp.interfaces.empty());
  EXPECT_EQ(cfg.xdp.mode, "auto");
  EXPECT_EQ(cfg.xdp.max_channels, 65'536u);
  EXPECT_EQ(cfg.xdp.max_allocations, 16'384u);
}

TEST(Xdp, YamlKeysLoad) {
  std::vector<std::string> errors;
  auto cfg = load_yaml(
      "xdp:\n  interfaces: [eth0, veth-s1]\n  mode: native\n  max_channels: 1024\n  max_allocations: 64\n",
      errors);
  ASSERT_TRUE(cfg) << dump(errors);
  EXPECT_EQ(cfg->xdp.interfaces, (std::vector<std::string>{"eth0", "veth-s1"}));
  EXPECT_EQ(cfg->xdp.mode, "native");
  EXPECT_EQ(cfg->xdp.max_channels, 1024u);
  EXPECT_EQ(cfg->xdp.max_allocations, 64u);
  errors.clear();
  EXPECT_FALSE(load_yaml("xdp:\n  interface: eth0\n", errors));
  EXPECT_TRUE(has_error(errors, "xdp.interface")) << dump(errors);
}

TEST(Xdp, FlagsReplaceTheKeys) {
  std::vector<std::string> errors;
  const std::vector<const char*> argv = {"anyturn", "--listen", "127.0.0.1:3478", "--relay-ip", "127.0.0.1",
                                         "--xdp", "veth0", "--xdp=veth1", "--xdp-mode", "generic"};
  auto opts = parse_cli(static_cast<int>(argv.size()), argv.data(), errors);
  ASSERT_TRUE(opts) << dump(errors);
  EXPECT_EQ(opts->xdp, (std::vector<std::string>{"veth0", "veth1"}));
  auto cfg = resolve(*opts, errors);
  ASSERT_TRUE(cfg) << dump(errors);
  EXPECT_EQ(cfg->xdp.interfaces, (std::vector<std::string>{"veth0", "veth1"}));
  EXPECT_EQ(cfg->xdp.mode, "generic");

  const std::vector<const char*> bad = {"anyturn", "--listen", "127.0.0.1:3478", "--relay-ip",
                                        "127.0.0.1", "--xdp-mode", "turbo"};
  errors.clear();
  opts = parse_cli(static_cast<int>(bad.size()), bad.data(), errors);
  ASSERT_TRUE(opts) << dump(errors);
  EXPECT_FALSE(resolve(*opts, errors));
  EXPECT_TRUE(has_error(errors, "xdp.mode: expected native, generic or auto, got 'turbo'")) << dump(errors);
}

TEST(Xdp, ValidationNamesTheKey) {
  const struct {
    std::vector<std::string> interfaces;
    std::string mode;
    std::uint32_t channels, allocations;
    const char* error;
  } cases[] = {
      {{""}, "auto", 1, 1, "xdp.interfaces[0]: expected an interface name of 1..15 characters"},
      {{"a-very-long-interface"}, "auto", 1, 1, "xdp.interfaces[0]: expected an interface name"},
      {{"eth0", "../x"}, "auto", 1, 1, "xdp.interfaces[1]: expected an interface name"},
      {{"eth 0"}, "auto", 1, 1, "xdp.interfaces[0]: expected an interface name"},
      {{"eth0", "eth0"}, "auto", 1, 1, "xdp.interfaces[1]: 'eth0' is listed twice"},
      {{"eth0"}, "fast", 1, 1, "xdp.mode: expected native, generic or auto, got 'fast'"},
      {{"eth0"}, "auto", 0, 1, "xdp.max_channels: expected 1..4194304 entries, got 0"},
      {{"eth0"}, "auto", 1, 4'194'305, "xdp.max_allocations: expected 1..4194304 entries, got 4194305"},
  };
  for (const auto& c : cases) {
    server_config cfg = valid_config();
    cfg.xdp.interfaces = c.interfaces;
    cfg.xdp.mode = c.mode;
    cfg.xdp.max_channels = c.channels;
    cfg.xdp.max_allocations = c.allocations;
    std::vector<std::string> errors;
    EXPECT_FALSE(validate(cfg, errors)) << c.error;
    EXPECT_TRUE(has_error(errors, c.error)) << dump(errors);
  }
  server_config ok = valid_config();
  ok.xdp.interfaces = {"eth0", "veth-srv.100"};
  ok.xdp.mode = "native";
  ok.xdp.max_channels = 4'194'304;
  std::vector<std::string> errors;
  EXPECT_TRUE(validate(ok, errors)) << dump(errors);
}

}  // namespace
}  // namespace anyturn::config
