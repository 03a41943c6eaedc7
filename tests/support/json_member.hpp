// The value of a "key":"value" string member in the flat part of a JSON
// body (no unescaping), or "" when there is none: enough for tests that
// read one field of an API answer.
#pragma once

#include <string>

namespace anyturn::test {

inline std::string json_string_member(const std::string& body, const std::string& key) {
  const std::string k = "\"" + key + "\":\"";
  const auto pos = body.find(k);
  if (pos == std::string::npos) return {};
  const auto start = pos + k.size();
  return body.substr(start, body.find('"', start) - start);
}

}  // namespace anyturn::test
