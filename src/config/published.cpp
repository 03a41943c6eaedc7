// The published credentials (see published.hpp). Exact, case-sensitive
// matches: an operator's real secret never collides with these by chance.
#include <anyturn/config/published.hpp>

#include <algorithm>
#include <iterator>

namespace anyturn::config {

namespace {

constexpr std::string_view published[] = {
    // anyturn's documentation and shipped config, past and present
    "demo-password",
    "change-me-rest-secret",
    "probe-password",
    "acme-rest-secret",
    "acme-api-key-at-least-16-chars",
    "replace-with-openssl-rand-hex-32",
    "0123456789abcdef0123456789abcdef",   // the example MD5 key
    "cd986face219f7ff0a639d21827153c3",   // MD5("alice:turn.example.com:secret")
    "s3cret-example",
    "a-long-random-secret",
    "2024-06-secret-new",
    "2024-05-secret-old",
    "default-tenant-secret",
    "default-tenant-key-0123456789abcdef",
    "acme-secret-2024-06",
    "acme-secret-2024-05",
    "acme-key-0123456789abcdef",
    "RquIJMcUf0u/RNBPajlE95zPw3c=",       // a documented REST password
    "alice-password",
    "bench",
    // common placeholders and defaults of other servers' examples
    "secret",
    "password",
    "passw0rd",
    "changeme",
    "change-me",
    "change_me",
    "CHANGE_ME",
    "changeit",
    "example",
    "test",
    "turn",
    "coturn",
    "anyturn",
    "north",                              // coturn's example static-auth-secret
    "youhavetoberealistic",               // coturn's example user passwords
    "hero",
};

}  // namespace

bool is_published_credential(std::string_view value) {
  return std::find(std::begin(published), std::end(published), value) != std::end(published);
}

}  // namespace anyturn::config
