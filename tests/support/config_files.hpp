// Helpers of the config tests: the shipped example, a config that validates,
// endpoints from text and error-list matching.
#pragma once

#include <anyturn/config/config.hpp>
#include <anyturn/stun/endpoint.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace anyturn::config {

inline const std::string example_path =
    std::string(ANYTURN_TESTDATA_DIR) + "/../../config/anyturn.yaml";

// True when some error message contains `needle`.
inline bool has_error(const std::vector<std::string>& errors, const std::string& needle) {
  return std::any_of(errors.begin(), errors.end(),
                     [&](const std::string& e) { return e.find(needle) != std::string::npos; });
}

// All messages, one per line, for failure output.
inline std::string dump(const std::vector<std::string>& errors) {
  std::string out;
  for (const auto& e : errors) out += "  " + e + "\n";
  return out;
}

// Writes `yaml` to a file in the test's temporary directory; returns its path.
inline std::string write_config_file(const std::string& name, const std::string& yaml) {
  const std::string path = ::testing::TempDir() + "anyturn-" + name + ".yaml";
  std::ofstream(path) << yaml;
  return path;
}

inline stun::endpoint ep(std::string_view text) {
  auto e = stun::endpoint::parse(text, true);
  EXPECT_TRUE(e.has_value()) << text;
  return e.value_or(stun::endpoint{});
}

// A config that validates: the defaults plus one user.
inline server_config valid_config() {
  server_config cfg = defaults();
  cfg.relay.ips = {stun::endpoint::v4(0xC0000201, 0)};  // 192.0.2.1
  cfg.relay.ips_auto = false;
  cfg.auth.users.push_back({"alice", std::string("alice-pass-4bd2"), std::nullopt});
  return cfg;
}

}  // namespace anyturn::config
