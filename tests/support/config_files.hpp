// Temporary config files and the shipped example, for tests that load config.
#pragma once

#include <anyturn/stun/endpoint.hpp>

#include <gtest/gtest.h>

#include <algorithm>
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

inline stun::endpoint ep(std::string_view text) {
  auto e = stun::endpoint::parse(text, true);
  EXPECT_TRUE(e.has_value()) << text;
  return e.value_or(stun::endpoint{});
}

}  // namespace anyturn::config
