// anyturn::app — `anyturn ctl`: the admin API from a terminal (docs/admin.md).
//
//   anyturn ctl [--url URL] [--key KEY | --key-file F] [--config FILE] [--json]
//               [--ca FILE | --insecure] [--timeout S] COMMAND [ARGS]
//
// COMMAND: sessions, disconnect, revoke, drain, undrain, reload, status. The
// key may also come from ANYTURN_ADMIN_KEY; --url defaults to
// http://127.0.0.1:9641, or the http.listen address of --config FILE. One
// synchronous HTTP/1.1 request per call (Boost.Beast; https with OpenSSL).
// Exit codes: 0 done, 1 the server said no or could not be reached, 2 bad
// arguments.
#pragma once

#include <cstddef>
#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace anyturn::app {

inline constexpr int ctl_ok = 0;
inline constexpr int ctl_refused = 1;
inline constexpr int ctl_bad_arguments = 2;

// Whether argv is `anyturn ctl ...`.
bool is_ctl_command(int argc, const char* const* argv);

// Runs `anyturn ctl` (argv[1] is "ctl"); `env_key` is ANYTURN_ADMIN_KEY
// (null: unset). Returns the exit code.
int run_ctl(int argc, const char* const* argv, const char* env_key, std::ostream& out, std::ostream& err);

std::string ctl_usage();

// Text in columns: each column as wide as its widest cell, two spaces apart
// (the last column unpadded). Rows may be shorter than the header.
std::string format_table(const std::vector<std::vector<std::string>>& rows);

// A URL the client can talk to: http or https, a host, a port.
struct ctl_url {
  bool tls = false;
  std::string host;
  std::string port;
  std::string base_path;  // without a trailing '/', maybe empty
};
std::optional<ctl_url> parse_ctl_url(std::string_view url);

}  // namespace anyturn::app
