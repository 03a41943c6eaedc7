// `anyturn probe`: argument checks, then one probe::run per URL, printed
// as text blocks or JSON lines.
#include <anyturn/app/probe_cmd.hpp>

#include <anyturn/config/cli.hpp>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <ctime>
#include <ostream>
#include <string_view>

namespace anyturn::app {
namespace {

constexpr std::uint32_t default_ttl = 600;
constexpr std::string_view default_rest_user = "probe";

template <typename T>
bool parse_number(std::string_view flag, std::string_view text, T low, T high, T& out,
                  std::string& error) {
  T v{};
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc{} || end != text.data() + text.size() || text.empty()) {
    error = std::string(flag) + ": not a number: '" + std::string(text) + "'";
    return false;
  }
  if (v < low || v > high) {
    error = std::string(flag) + ": " + std::string(text) + " is out of range [" + std::to_string(low) +
            ", " + std::to_string(high) + "]";
    return false;
  }
  out = v;
  return true;
}

// Seconds, maybe fractional ("0.5"), in (0, 600].
bool parse_seconds(std::string_view flag, std::string_view text, std::chrono::milliseconds& out,
                   std::string& error) {
  double v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc{} || end != text.data() + text.size() || text.empty() || !std::isfinite(v)) {
    error = std::string(flag) + ": not a number: '" + std::string(text) + "'";
    return false;
  }
  if (v < 0.001 || v > 600) {
    error = std::string(flag) + ": " + std::string(text) + " is out of range (0, 600] seconds";
    return false;
  }
  out = std::chrono::milliseconds(static_cast<long long>(std::llround(v * 1000)));
  return true;
}

}  // namespace

bool is_probe_command(int argc, const char* const* argv) {
  return argc >= 2 && argv[1] != nullptr && std::string_view(argv[1]) == "probe";
}

std::optional<probe_invocation> parse_probe_cli(int argc, const char* const* argv,
                                                std::int64_t now_unix, std::string& error) {
  probe_invocation inv;
  std::optional<std::string> user, password, secret, ca;
  std::optional<std::uint32_t> ttl;
  bool insecure = false;
  std::vector<std::string_view> urls;
  for (int i = 2; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (!arg.starts_with("-")) {
      urls.push_back(arg);
      continue;
    }
    const auto [name, inline_value] = config::split_flag(arg);
    const auto flag_only = [&]() {
      if (inline_value) error = std::string(name) + " takes no value";
      return !inline_value;
    };
    if (name == "--help" || name == "-h") {
      if (!flag_only()) return std::nullopt;
      inv.help = true;
      return inv;
    }
    if (name == "--json") {
      if (!flag_only()) return std::nullopt;
      inv.json = true;
      continue;
    }
    if (name == "--insecure") {
      if (!flag_only()) return std::nullopt;
      insecure = true;
      continue;
    }
    static constexpr std::string_view with_value[] = {"--user",        "--password", "--secret",
                                                      "--ttl",         "--count",    "--interval-ms",
                                                      "--size",        "--timeout-s", "--ca"};
    if (std::find(std::begin(with_value), std::end(with_value), name) == std::end(with_value)) {
      error = "probe: unknown flag '" + std::string(name) + "'";
      return std::nullopt;
    }
    std::string_view value;
    if (inline_value) {
      value = *inline_value;
    } else if (i + 1 < argc) {
      value = argv[++i];
    } else {
      error = std::string(name) + " needs a value";
      return std::nullopt;
    }
    auto& o = inv.opts;
    bool ok = true;
    if (name == "--user") {
      user = std::string(value);
    } else if (name == "--password") {
      password = std::string(value);
    } else if (name == "--secret") {
      secret = std::string(value);
    } else if (name == "--ca") {
      ca = std::string(value);
    } else if (name == "--ttl") {
      std::uint32_t v = 0;
      ok = parse_number<std::uint32_t>(name, value, 1, 7 * 86400, v, error);
      ttl = v;
    } else if (name == "--count") {
      ok = parse_number<unsigned>(name, value, 1, probe::max_count, o.count, error);
    } else if (name == "--size") {
      ok = parse_number<std::size_t>(name, value, probe::min_size, probe::max_size, o.size, error);
    } else if (name == "--interval-ms") {
      unsigned v = 0;
      ok = parse_number<unsigned>(name, value, 0, 10'000, v, error);
      o.interval = std::chrono::milliseconds(v);
    } else if (name == "--timeout-s") {
      ok = parse_seconds(name, value, o.timeout, error);
    }
    if (!ok) return std::nullopt;
  }

  if (secret && password) {
    error = "--secret and --password exclude each other";
    return std::nullopt;
  }
  if (user && !password && !secret) {
    error = "--user needs --password (or --secret)";
    return std::nullopt;
  }
  if (password && !user) {
    error = "--password needs --user";
    return std::nullopt;
  }
  if (ttl && !secret) {
    error = "--ttl needs --secret";
    return std::nullopt;
  }
  if (ca && insecure) {
    error = "--ca and --insecure exclude each other";
    return std::nullopt;
  }
  if (secret && secret->empty()) {
    error = "--secret is empty";
    return std::nullopt;
  }
  if (urls.empty()) {
    error = "probe: no URL (e.g. turn:turn.example.com:3478?transport=udp)";
    return std::nullopt;
  }
  for (const auto url : urls) {
    std::string why;
    auto t = probe::parse_url(url, why);
    if (!t) {
      error = "bad URL '" + std::string(url) + "': " + why;
      return std::nullopt;
    }
    inv.targets.push_back(std::move(*t));
  }
  if (secret) {
    inv.opts.auth = probe::rest_credentials(*secret, user.value_or(std::string(default_rest_user)),
                                            ttl.value_or(default_ttl), now_unix);
  } else if (user) {
    inv.opts.auth = probe::credentials{*user, *password};
  }
  inv.opts.insecure = insecure;
  inv.opts.ca_file = ca.value_or("");
  return inv;
}

int run_probe(int argc, const char* const* argv, std::ostream& out, std::ostream& err) {
  std::string error;
  const auto inv = parse_probe_cli(argc, argv, static_cast<std::int64_t>(std::time(nullptr)), error);
  if (!inv) {
    err << "anyturn: " << error << "\nTry 'anyturn probe --help'.\n";
    return probe_bad_arguments;
  }
  if (inv->help) {
    out << probe_usage();
    return probe_passed;
  }
  int rc = probe_passed;
  bool first = true;
  for (const auto& t : inv->targets) {
    const auto r = probe::run(t, inv->opts);
    if (inv->json) {
      out << probe::format_json(r) << '\n';
    } else {
      out << (first ? "" : "\n") << probe::format_text(r);
    }
    out.flush();
    first = false;
    if (!r.success) rc = probe_failed;
  }
  return rc;
}

std::string probe_usage() {
  return R"(Usage:
  anyturn probe URL... [--user U --password P | --secret S [--ttl T]] [--count N]
                [--interval-ms M] [--size B] [--timeout-s T] [--ca FILE | --insecure] [--json]

Checks that a STUN or TURN service works end to end, the way a WebRTC client
uses it. URL is an iceServers URL: turn:HOST[:PORT][?transport=udp|tcp],
turns:HOST[:PORT][?transport=tcp] or stun:HOST[:PORT]; IPv6 in brackets.
For turn(s): it resolves, connects (and verifies the certificate), passes the
401 challenge, makes two allocations, gives each a permission and a channel
to the other's relayed address, sends N packets each way through both relays,
refreshes and deletes. stun: sends one Binding. Works against any server.

  --user U --password P   long-term credentials
  --secret S              a TURN REST shared secret: mints credentials for user
                          U (default "probe") valid for --ttl T seconds (600)
  --count N               packets each way, 1-1000 (10)
  --interval-ms M         between packets (20)
  --size B                payload bytes, 16-1200 (100)
  --timeout-s T           for each URL as a whole (5)
  --ca FILE               PEM CA bundle for turns: (default: the system store)
  --insecure              turns: without certificate or name checks
  --json                  one JSON object per URL, one per line

Exit status: 0 every URL passed, 1 one failed, 2 bad arguments.
)";
}

}  // namespace anyturn::app
