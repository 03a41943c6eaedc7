// stun.other_ip / --other-ip (RFC 5780) end to end through the config
// module: the YAML key (yaml_loader.cpp), the flag (cli.cpp) and its checks
// (validate.cpp, check_other_ip). Kept apart from those files' tests, which
// are at their size limit.
#include <anyturn/config/cli.hpp>
#include <anyturn/config/config.hpp>

#include <gtest/gtest.h>

#include "config_files.hpp"

#include <initializer_list>
#include <string>
#include <vector>

namespace anyturn::config {
namespace {

server_config with_other_ip(std::vector<stun::endpoint> listen, const char* other) {
  server_config cfg = valid_config();
  cfg.listen = std::move(listen);
  cfg.stun.other_ip = ep(other);
  return cfg;
}

TEST(StunOtherIp, YamlKeyLoads) {
  std::vector<std::string> errors;
  auto cfg = load_yaml("listen: [\"127.0.0.1:3478\"]\nstun:\n  other_ip: 127.0.0.2\n", errors);
  ASSERT_TRUE(cfg) << dump(errors);
  EXPECT_EQ(cfg->stun.other_ip, ep("127.0.0.2"));

  errors.clear();
  EXPECT_FALSE(load_yaml("stun:\n  other_ip: 127.0.0.2:3478\n", errors));
  EXPECT_TRUE(has_error(errors, "stun.other_ip: expected an IP address without a port")) << dump(errors);
  errors.clear();
  EXPECT_FALSE(load_yaml("stun:\n  other_ips: 127.0.0.2\n", errors));
  EXPECT_TRUE(has_error(errors, "stun.other_ips")) << dump(errors);
  errors.clear();
  cfg = load_yaml("stun: {}\n", errors);
  ASSERT_TRUE(cfg) << dump(errors);
  EXPECT_FALSE(cfg->stun.other_ip);
}

TEST(StunOtherIp, FlagSetsTheKey) {
  std::vector<std::string> errors;
  const std::vector<const char*> argv = {"anyturn", "--listen", "127.0.0.1:3478", "--relay-ip",
                                         "127.0.0.1", "--other-ip=127.0.0.2"};
  auto opts = parse_cli(static_cast<int>(argv.size()), argv.data(), errors);
  ASSERT_TRUE(opts) << dump(errors);
  EXPECT_EQ(opts->other_ip, std::optional<std::string>("127.0.0.2"));
  auto cfg = resolve(*opts, errors);
  ASSERT_TRUE(cfg) << dump(errors);
  EXPECT_EQ(cfg->stun.other_ip, ep("127.0.0.2"));

  const std::vector<const char*> bad = {"anyturn", "--listen", "127.0.0.1:3478", "--relay-ip",
                                        "127.0.0.1", "--other-ip", "example.org"};
  errors.clear();
  opts = parse_cli(static_cast<int>(bad.size()), bad.data(), errors);
  ASSERT_TRUE(opts) << dump(errors);
  EXPECT_FALSE(resolve(*opts, errors));
  EXPECT_TRUE(has_error(errors, "--other-ip: expected an IP address without a port")) << dump(errors);
}

TEST(StunOtherIp, ValidPairPasses) {
  std::vector<std::string> errors;
  EXPECT_TRUE(validate(with_other_ip({ep("127.0.0.1:3478")}, "127.0.0.2"), errors)) << dump(errors);
  // A listener of the other family keeps plain Binding; that is fine.
  EXPECT_TRUE(validate(with_other_ip({ep("192.0.2.10:3478"), ep("[::1]:3478")}, "192.0.2.11"), errors))
      << dump(errors);
}

TEST(StunOtherIp, RefusesWhatCannotWork) {
  const struct {
    std::vector<stun::endpoint> listen;
    const char* other;
    const char* error;
  } cases[] = {
      {{ep("127.0.0.1:3478")}, "0.0.0.0", "stun.other_ip: 0.0.0.0 is a wildcard"},
      {{ep("0.0.0.0:3478")}, "127.0.0.2", "stun.other_ip: listen[0] (0.0.0.0:3478) is a wildcard"},
      {{ep("127.0.0.1:3478")}, "127.0.0.1", "stun.other_ip: 127.0.0.1 is the address of listen[0]"},
      {{ep("127.0.0.1:3478")}, "::2", "stun.other_ip: no listen address of ::2's family (IPv6)"},
      {{ep("127.0.0.1:3478"), ep("127.0.0.1:3479")}, "127.0.0.2",
       "stun.other_ip: listen[0] needs UDP 127.0.0.1:3479, which listen[1] uses"},
      {{ep("127.0.0.1:65535")}, "127.0.0.2", "stun.other_ip: listen[0] (127.0.0.1:65535) has no port+1"},
  };
  for (const auto& c : cases) {
    std::vector<std::string> errors;
    EXPECT_FALSE(validate(with_other_ip(c.listen, c.other), errors)) << c.error;
    EXPECT_TRUE(has_error(errors, c.error)) << dump(errors);
  }
}

// The extra sockets of a listener on a relay address must stay out of relay.ports.
TEST(StunOtherIp, RefusesPortsInsideTheRelayRange) {
  server_config cfg = with_other_ip({ep("192.0.2.1:50000")}, "192.0.2.2");
  cfg.relay.port_min = 49152;
  cfg.relay.port_max = 65535;
  std::vector<std::string> errors;
  EXPECT_FALSE(validate(cfg, errors));
  EXPECT_TRUE(has_error(errors, "stun.other_ip: listen[0] needs UDP 192.0.2.1:50001, inside relay.ports"))
      << dump(errors);
}

// A DTLS listener on one of the extra sockets' ports would share it (both
// SO_REUSEPORT): refused, naming both entries.
TEST(StunOtherIp, RefusesADtlsListenerOnAnExtraSocket) {
  server_config cfg = with_other_ip({ep("192.0.2.1:3478")}, "192.0.2.2");
  cfg.dtls.listen = {ep("0.0.0.0:3479")};
  std::vector<std::string> errors;
  EXPECT_FALSE(validate(cfg, errors));
  EXPECT_TRUE(has_error(errors, "stun.other_ip: listen[0] needs UDP 192.0.2.1:3479, which dtls.listen[0] (0.0.0.0:3479) uses"))
      << dump(errors);
  cfg.dtls.listen = {ep("192.0.2.1:5349")};
  errors.clear();
  EXPECT_TRUE(validate(cfg, errors)) << dump(errors);
}

}  // namespace
}  // namespace anyturn::config
