// tls.*, streams.*, state_dir and the --tls-* flags.
#include <anyturn/config/cli.hpp>
#include <anyturn/config/config.hpp>

#include <gtest/gtest.h>

#include "config_files.hpp"

#include <algorithm>
#include <string>
#include <vector>

namespace anyturn::config {
namespace {

server_config valid_config() {
  server_config cfg = defaults();
  cfg.relay.ips = {stun::endpoint::v4(0xC0000201, 0)};
  cfg.relay.ips_auto = false;
  cfg.auth.users.push_back({"alice", std::string("secret"), std::nullopt});
  return cfg;
}

TEST(ConfigStreams, DefaultsServeTcpButNoTls) {
  const server_config cfg = defaults();
  EXPECT_TRUE(cfg.streams.tcp);
  EXPECT_TRUE(cfg.tls.listen.empty());
  EXPECT_EQ(cfg.streams.max_connections, 65536u);
  EXPECT_EQ(cfg.streams.max_connections_per_ip, 256u);
  EXPECT_EQ(cfg.streams.tls_handshake_timeout, 10u);
  EXPECT_EQ(cfg.streams.idle_timeout, 30u);
  EXPECT_EQ(cfg.streams.max_message_size, 65552u);
  EXPECT_EQ(cfg.streams.write_queue_size, 262144u);
  EXPECT_TRUE(cfg.state_dir.empty());
}

TEST(ConfigStreams, ExampleServesTlsOn5349WithADevelopmentCertificate) {
  std::vector<std::string> errors;
  auto cfg = load_file(example_path, errors);
  ASSERT_TRUE(cfg) << dump(errors);
  ASSERT_EQ(cfg->tls.listen.size(), 1u);
  EXPECT_EQ(cfg->tls.listen[0], ep("0.0.0.0:5349"));
  EXPECT_TRUE(cfg->tls.cert.empty());
  EXPECT_TRUE(cfg->streams.tcp);
  EXPECT_TRUE(validate(*cfg, errors)) << dump(errors);
  const auto w = warnings(*cfg);
  EXPECT_TRUE(std::any_of(w.begin(), w.end(), [](const std::string& s) {
    return s.find("self-signed") != std::string::npos;
  }));
}

TEST(ConfigStreams, YamlKeysParse) {
  std::vector<std::string> errors;
  auto cfg = load_yaml(R"(
tls:
  listen: ["127.0.0.1:5349", "[::1]:5349"]
  cert: /etc/anyturn/chain.pem
  key: /etc/anyturn/key.pem
streams:
  tcp: false
  max_connections: 100
  max_connections_per_ip: 5
  tls_handshake_timeout: 3
  idle_timeout: 7
  max_message_size: 4096
  write_queue_size: 65536
state_dir: /var/lib/anyturn
auth:
  users: [{name: a, password: b}]
)",
                       errors);
  ASSERT_TRUE(cfg) << dump(errors);
  EXPECT_EQ(cfg->tls.listen, (std::vector{ep("127.0.0.1:5349"), ep("[::1]:5349")}));
  EXPECT_EQ(cfg->tls.cert, "/etc/anyturn/chain.pem");
  EXPECT_EQ(cfg->tls.key, "/etc/anyturn/key.pem");
  EXPECT_FALSE(cfg->streams.tcp);
  EXPECT_EQ(cfg->streams.max_connections, 100u);
  EXPECT_EQ(cfg->streams.max_connections_per_ip, 5u);
  EXPECT_EQ(cfg->streams.tls_handshake_timeout, 3u);
  EXPECT_EQ(cfg->streams.idle_timeout, 7u);
  EXPECT_EQ(cfg->streams.max_message_size, 4096u);
  EXPECT_EQ(cfg->streams.write_queue_size, 65536u);
  EXPECT_EQ(cfg->state_dir, "/var/lib/anyturn");
}

TEST(ConfigStreams, YamlErrorsNameTheirKeys) {
  std::vector<std::string> errors;
  EXPECT_FALSE(load_yaml("tls:\n  listn: []\nstreams:\n  tcp: maybe\n  idle_timeout: -1\n", errors));
  EXPECT_TRUE(has_error(errors, "tls.listn: unknown key")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "streams.tcp: expected true or false")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "streams.idle_timeout: expected an integer")) << dump(errors);
}

TEST(ConfigStreams, ValidationCatchesEveryStreamProblem) {
  server_config cfg = valid_config();
  cfg.listen = {ep("0.0.0.0:3478")};
  cfg.tls.listen = {ep("127.0.0.1:3478"), ep("127.0.0.1:0"), ep("127.0.0.1:0")};
  cfg.tls.cert = "/x.pem";
  cfg.streams.tls_handshake_timeout = 0;
  cfg.streams.idle_timeout = 0;
  cfg.streams.max_message_size = 100;
  cfg.streams.write_queue_size = 10;
  std::vector<std::string> errors;
  EXPECT_FALSE(validate(cfg, errors));
  EXPECT_TRUE(has_error(errors, "tls.listen[0]: 127.0.0.1:3478 overlaps listen[0]")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "tls.listen[1]: port must not be 0")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "tls.listen[2]: 127.0.0.1:0 is already listed as tls.listen[1]")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "tls.key: must be set together with tls.cert")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "streams.tls_handshake_timeout: must be greater than 0")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "streams.idle_timeout: must be greater than 0")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "streams.max_message_size: expected 548..65552, got 100")) << dump(errors);
  EXPECT_TRUE(has_error(errors, "streams.write_queue_size: at least 8192 bytes")) << dump(errors);

  // Without TCP on `listen`, TLS may take the same port.
  server_config ok = valid_config();
  ok.streams.tcp = false;
  ok.listen = {ep("0.0.0.0:3478")};
  ok.tls.listen = {ep("0.0.0.0:3478")};
  errors.clear();
  EXPECT_TRUE(validate(ok, errors)) << dump(errors);
}

TEST(ConfigStreams, TlsFlags) {
  const char* argv[] = {"anyturn", "--user", "a:b", "--tls-listen", "127.0.0.1:5349",
                        "--tls-listen=[::1]:5350", "--tls-cert", "c.pem", "--tls-key=k.pem"};
  std::vector<std::string> errors;
  auto opts = parse_cli(9, argv, errors);
  ASSERT_TRUE(opts) << dump(errors);
  EXPECT_EQ(opts->tls_listen, (std::vector<std::string>{"127.0.0.1:5349", "[::1]:5350"}));
  auto cfg = resolve(*opts, errors);
  ASSERT_TRUE(cfg) << dump(errors);
  EXPECT_EQ(cfg->tls.listen, (std::vector{ep("127.0.0.1:5349"), ep("[::1]:5350")}));
  EXPECT_EQ(cfg->tls.cert, "c.pem");
  EXPECT_EQ(cfg->tls.key, "k.pem");

  const char* bad[] = {"anyturn", "--user", "a:b", "--tls-listen", "nonsense"};
  errors.clear();
  auto bad_opts = parse_cli(5, bad, errors);
  ASSERT_TRUE(bad_opts);
  EXPECT_FALSE(resolve(*bad_opts, errors));
  EXPECT_TRUE(has_error(errors, "--tls-listen: expected ADDR:PORT")) << dump(errors);
  EXPECT_NE(usage().find("--tls-listen ADDR:PORT"), std::string::npos);
}

}  // namespace
}  // namespace anyturn::config
