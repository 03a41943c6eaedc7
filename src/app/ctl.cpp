// `anyturn ctl`: argument parsing, one HTTP request to the admin API, and
// the answer as a table (or, with --json, as the server sent it).
#include <anyturn/app/ctl.hpp>

#include <anyturn/config/config.hpp>
#include <anyturn/http/json.hpp>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/json.hpp>

#include <openssl/ssl.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <fstream>
#include <ostream>
#include <sstream>

namespace anyturn::app {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

namespace {

constexpr std::string_view default_url = "http://127.0.0.1:9641";

struct ctl_options {
  std::string url;
  std::string key;
  bool json = false;
  std::string ca;
  bool insecure = false;
  std::chrono::milliseconds timeout{10'000};
  std::string command;
  std::vector<std::string> positional;  // after the command
  // Filters and command options.
  std::optional<std::string> user, username, tenant, client, transport, limit, cursor, ttl;
  bool all = false;
};

struct answer {
  unsigned status = 0;
  std::string body;
};

std::string percent_encode(std::string_view s) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 0xF];
    }
  }
  return out;
}

std::string trim(std::string s) {
  const auto first = s.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) return {};
  const auto last = s.find_last_not_of(" \t\r\n");
  return s.substr(first, last - first + 1);
}

// The URL of the side server in a config file: its http.listen (a wildcard
// address becomes loopback), https when it has a certificate.
std::optional<std::string> url_from_config(const std::string& path, std::ostream& err) {
  std::vector<std::string> errors;
  const auto cfg = config::load_file(path, errors);
  if (!cfg) {
    for (const auto& e : errors) err << "anyturn ctl: " << path << ": " << e << '\n';
    return std::nullopt;
  }
  stun::endpoint at = cfg->http.listen;
  const bool any = std::all_of(at.ip.begin(), at.ip.end(), [](std::uint8_t b) { return b == 0; });
  if (any) {
    at = at.is_v4() ? stun::endpoint::v4(0x7F000001u, at.port)
                    : stun::endpoint::v6({0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, at.port);
  }
  return std::string(cfg->http.tls_cert.empty() ? "http://" : "https://") + at.to_string();
}

// Parses argv[2...]; options may come before or after the command. Returns
// false (and says why on `err`) on a bad argument.
bool parse_args(int argc, const char* const* argv, const char* env_key, ctl_options& o,
                std::ostream& err, bool& help) {
  std::optional<std::string> key, key_file, config_file;
  const auto value = [&](int& i, std::string_view name) -> std::optional<std::string> {
    if (i + 1 >= argc) {
      err << "anyturn ctl: " << name << " needs a value\n";
      return std::nullopt;
    }
    return std::string(argv[++i]);
  };
  struct string_flag {
    std::string_view name;
    std::optional<std::string>* into;
  };
  const string_flag flags[] = {
      {"--key", &key},         {"--key-file", &key_file},   {"--config", &config_file},
      {"--user", &o.user},     {"--username", &o.username}, {"--tenant", &o.tenant},
      {"--client", &o.client}, {"--transport", &o.transport}, {"--limit", &o.limit},
      {"--cursor", &o.cursor}, {"--ttl", &o.ttl},
  };
  std::optional<std::string> url, ca, timeout;
  for (int i = 2; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a == "-h" || a == "--help") {
      help = true;
      return true;
    }
    if (a == "--json") {
      o.json = true;
      continue;
    }
    if (a == "--insecure") {
      o.insecure = true;
      continue;
    }
    if (a == "--all") {
      o.all = true;
      continue;
    }
    if (a == "--url" || a == "--ca" || a == "--timeout") {
      auto v = value(i, a);
      if (!v) return false;
      (a == "--url" ? url : a == "--ca" ? ca : timeout) = std::move(v);
      continue;
    }
    bool matched = false;
    for (const auto& f : flags) {
      if (a != f.name) continue;
      auto v = value(i, a);
      if (!v) return false;
      *f.into = std::move(v);
      matched = true;
    }
    if (matched) continue;
    if (a.starts_with("-")) {
      err << "anyturn ctl: unknown option " << a << '\n';
      return false;
    }
    if (o.command.empty()) {
      o.command = std::string(a);
    } else {
      o.positional.emplace_back(a);
    }
  }
  if (key && key_file) {
    err << "anyturn ctl: give --key or --key-file, not both\n";
    return false;
  }
  if (key) {
    o.key = *key;
  } else if (key_file) {
    std::ifstream in(*key_file);
    std::string line;
    if (!in || !std::getline(in, line) || trim(line).empty()) {
      err << "anyturn ctl: --key-file " << *key_file << ": cannot read a key from it\n";
      return false;
    }
    o.key = trim(line);
  } else if (env_key != nullptr) {
    o.key = trim(env_key);
  }
  if (url && config_file) {
    err << "anyturn ctl: give --url or --config, not both\n";
    return false;
  }
  if (url) {
    o.url = *url;
  } else if (config_file) {
    auto u = url_from_config(*config_file, err);
    if (!u) return false;
    o.url = *u;
  } else {
    o.url = std::string(default_url);
  }
  if (ca) o.ca = *ca;
  if (timeout) {
    int seconds = 0;
    const auto [end, ec] = std::from_chars(timeout->data(), timeout->data() + timeout->size(), seconds);
    if (ec != std::errc{} || end != timeout->data() + timeout->size() || seconds < 1 || seconds > 3600) {
      err << "anyturn ctl: --timeout: expected 1 to 3600 seconds\n";
      return false;
    }
    o.timeout = std::chrono::seconds{seconds};
  }
  return true;
}

// One request; nullopt (and `error`) when no answer came.
std::optional<answer> exchange(const ctl_options& o, const ctl_url& u, bhttp::verb verb,
                               const std::string& target, const std::string& body, std::string& error) {
  asio::io_context ioc;
  beast::error_code ec;
  const auto wait = [&] {
    ioc.run();
    ioc.restart();
  };
  tcp::resolver resolver(ioc);
  const auto endpoints = resolver.resolve(u.host, u.port, ec);
  if (ec) {
    error = "cannot resolve " + u.host + ": " + ec.message();
    return std::nullopt;
  }
  bhttp::request<bhttp::string_body> req{verb, u.base_path + target, 11};
  req.set(bhttp::field::host, u.host);
  req.set(bhttp::field::user_agent, "anyturn-ctl");
  req.set(bhttp::field::accept, "application/json");
  if (!o.key.empty()) req.set(bhttp::field::authorization, "Bearer " + o.key);
  if (!body.empty()) req.set(bhttp::field::content_type, "application/json");
  req.body() = body;
  req.prepare_payload();
  bhttp::response<bhttp::string_body> res;
  beast::flat_buffer buffer;

  const auto talk = [&](auto& stream, auto& lowest) -> bool {
    lowest.expires_after(o.timeout);
    bhttp::async_write(stream, req, [&](beast::error_code e, std::size_t) { ec = e; });
    wait();
    if (ec) return false;
    bhttp::async_read(stream, buffer, res, [&](beast::error_code e, std::size_t) { ec = e; });
    wait();
    return !ec;
  };

  beast::tcp_stream tcp_stream(ioc);
  tcp_stream.expires_after(o.timeout);
  tcp_stream.async_connect(endpoints, [&](beast::error_code e, const tcp::endpoint&) { ec = e; });
  wait();
  if (ec) {
    error = "cannot connect to " + o.url + ": " + ec.message();
    return std::nullopt;
  }
  if (!u.tls) {
    if (!talk(tcp_stream, tcp_stream)) {
      error = "no answer from " + o.url + ": " + ec.message();
      return std::nullopt;
    }
  } else {
    asio::ssl::context ctx(asio::ssl::context::tls_client);
    if (o.insecure) {
      ctx.set_verify_mode(asio::ssl::verify_none);
    } else {
      ctx.set_verify_mode(asio::ssl::verify_peer);
      if (!o.ca.empty()) {
        ctx.load_verify_file(o.ca, ec);
        if (ec) {
          error = "--ca " + o.ca + ": " + ec.message();
          return std::nullopt;
        }
      } else {
        ctx.set_default_verify_paths();
      }
    }
    beast::ssl_stream<beast::tcp_stream> stream(std::move(tcp_stream), ctx);
    if (!o.insecure) stream.set_verify_callback(asio::ssl::host_name_verification(u.host));
    SSL_set_tlsext_host_name(stream.native_handle(), u.host.c_str());
    beast::get_lowest_layer(stream).expires_after(o.timeout);
    stream.async_handshake(asio::ssl::stream_base::client, [&](beast::error_code e) { ec = e; });
    wait();
    if (ec) {
      error = "TLS handshake with " + o.url + " failed: " + ec.message();
      return std::nullopt;
    }
    if (!talk(stream, beast::get_lowest_layer(stream))) {
      error = "no answer from " + o.url + ": " + ec.message();
      return std::nullopt;
    }
  }
  return answer{res.result_int(), std::move(res.body())};
}

std::string scalar_text(const boost::json::value& v) {
  switch (v.kind()) {
    case boost::json::kind::string: return std::string(v.get_string());
    case boost::json::kind::null: return "-";
    case boost::json::kind::bool_: return v.get_bool() ? "true" : "false";
    default: return boost::json::serialize(v);
  }
}

// A JSON object as "key  value" lines.
std::string key_values(const boost::json::object& obj) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& kv : obj) rows.push_back({std::string(kv.key()) + ":", scalar_text(kv.value())});
  return format_table(rows);
}

std::string duration_text(std::int64_t s) {
  if (s < 0) return "-";
  if (s < 120) return std::to_string(s) + "s";
  if (s < 7200) return std::to_string(s / 60) + "m" + std::to_string(s % 60) + "s";
  return std::to_string(s / 3600) + "h" + std::to_string(s % 3600 / 60) + "m";
}

std::string number_text(const boost::json::value* v) {
  if (v == nullptr) return "-";
  if (v->is_int64()) return std::to_string(v->get_int64());
  if (v->is_uint64()) return std::to_string(v->get_uint64());
  return scalar_text(*v);
}

void session_rows(const boost::json::array& sessions, std::vector<std::vector<std::string>>& rows) {
  for (const auto& item : sessions) {
    if (!item.is_object()) continue;
    const auto& s = item.get_object();
    const auto text = [&](std::string_view k) {
      const auto* v = s.if_contains(k);
      return v ? scalar_text(*v) : std::string("-");
    };
    const auto count = [&](std::string_view k) {
      const auto* v = s.if_contains(k);
      return v && v->is_array() ? std::to_string(v->get_array().size()) : std::string("-");
    };
    std::string relayed;
    if (const auto* r = s.if_contains("relayed"); r && r->is_array()) {
      for (const auto& a : r->get_array()) {
        if (!relayed.empty()) relayed += ',';
        relayed += scalar_text(a);
      }
    }
    std::string tenant = text("tenant");
    if (tenant.empty()) tenant = "-";
    const auto seconds = [&](std::string_view k) {
      const auto* v = s.if_contains(k);
      return v && v->is_int64() ? duration_text(v->get_int64()) : std::string("-");
    };
    rows.push_back({text("id"), text("user"), tenant, text("transport"), text("client"),
                    relayed.empty() ? "-" : relayed, count("permissions"), count("channels"),
                    number_text(s.if_contains("packets_to_peer")) + "/" + number_text(s.if_contains("bytes_to_peer")),
                    number_text(s.if_contains("packets_to_client")) + "/" +
                        number_text(s.if_contains("bytes_to_client")),
                    seconds("age_s"), seconds("expires_in_s")});
  }
}

// What the server said, for a refusal: its "error" member, or the body.
std::string refusal_text(const answer& a) {
  boost::system::error_code ec;
  const auto v = boost::json::parse(a.body, ec);
  if (!ec && v.is_object()) {
    if (const auto* e = v.get_object().if_contains("error"); e && e->is_string())
      return std::string(e->get_string());
  }
  return trim(a.body);
}

class ctl_run {
 public:
  ctl_run(const ctl_options& o, const ctl_url& u, std::ostream& out, std::ostream& err)
      : o_(o), u_(u), out_(out), err_(err) {}

  int run() {
    const std::string& c = o_.command;
    if (c == "status") return simple(bhttp::verb::get, "/admin/status");
    if (c == "drain") return simple(bhttp::verb::post, "/admin/drain");
    if (c == "undrain") return simple(bhttp::verb::post, "/admin/undrain");
    if (c == "reload") return simple(bhttp::verb::post, "/admin/reload");
    if (c == "sessions") return sessions();
    if (c == "disconnect") return disconnect();
    if (c == "revoke") return revoke();
    err_ << "anyturn ctl: unknown command '" << c << "'\nTry 'anyturn ctl --help'.\n";
    return ctl_bad_arguments;
  }

 private:
  // The answer, or nullopt after saying why on err_ (the exit code is then 1).
  std::optional<answer> call(bhttp::verb verb, const std::string& target, const std::string& body = {}) {
    std::string error;
    auto a = exchange(o_, u_, verb, target, body, error);
    if (!a) {
      err_ << "anyturn ctl: " << error << '\n';
      return std::nullopt;
    }
    if (a->status >= 300) {
      err_ << "anyturn ctl: " << bhttp::obsolete_reason(static_cast<bhttp::status>(a->status)) << " ("
           << a->status << "): " << refusal_text(*a) << '\n';
      if (o_.json) out_ << a->body;
      return std::nullopt;
    }
    return a;
  }

  // Prints a JSON object answer as key/value lines (or raw with --json).
  int print(const answer& a) {
    if (o_.json) {
      out_ << a.body;
      return ctl_ok;
    }
    boost::system::error_code ec;
    const auto v = boost::json::parse(a.body, ec);
    if (ec || !v.is_object()) {
      out_ << a.body;
      if (!a.body.empty() && a.body.back() != '\n') out_ << '\n';
      return ctl_ok;
    }
    out_ << key_values(v.get_object());
    return ctl_ok;
  }

  int simple(bhttp::verb verb, const std::string& target) {
    if (!o_.positional.empty()) return extra_argument();
    auto a = call(verb, target);
    return a ? print(*a) : ctl_refused;
  }

  int extra_argument() {
    err_ << "anyturn ctl: " << o_.command << ": unexpected argument '" << o_.positional.front() << "'\n";
    return ctl_bad_arguments;
  }

  std::string filter_query(bool paging) const {
    std::string q;
    const auto add = [&](std::string_view k, const std::optional<std::string>& v) {
      if (!v) return;
      q += q.empty() ? '?' : '&';
      q += k;
      q += '=';
      q += percent_encode(*v);
    };
    add("user", o_.user);
    add("tenant", o_.tenant);
    add("client", o_.client);
    add("transport", o_.transport);
    if (paging) add("limit", o_.limit);
    return q;
  }

  int sessions() {
    if (!o_.positional.empty()) return extra_argument();
    std::vector<std::vector<std::string>> rows{{"ID", "USER", "TENANT", "PROTO", "CLIENT", "RELAYED", "PERMS",
                                                "CHANS", "TO-PEER(PKT/B)", "TO-CLIENT(PKT/B)", "AGE", "EXPIRES"}};
    std::optional<std::string> cursor = o_.cursor;
    // --all follows the cursor; a bounded number of pages all the same.
    for (int pages = 0; pages < 100'000; ++pages) {
      std::string target = "/admin/sessions" + filter_query(true);
      if (cursor) target += (target.find('?') == std::string::npos ? "?cursor=" : "&cursor=") + *cursor;
      auto a = call(bhttp::verb::get, target);
      if (!a) return ctl_refused;
      if (o_.json) out_ << a->body;
      boost::system::error_code ec;
      const auto v = boost::json::parse(a->body, ec);
      if (ec || !v.is_object() || !v.get_object().contains("sessions")) {
        err_ << "anyturn ctl: the server's answer is not a session listing\n";
        return ctl_refused;
      }
      const auto& obj = v.get_object();
      if (const auto* s = obj.if_contains("sessions"); s && s->is_array()) session_rows(s->get_array(), rows);
      const auto* next = obj.if_contains("next");
      cursor = next && next->is_string() ? std::optional<std::string>(std::string(next->get_string())) : std::nullopt;
      if (!o_.all || !cursor) break;
    }
    if (!o_.json) {
      out_ << format_table(rows);
      out_ << rows.size() - 1 << (rows.size() == 2 ? " session" : " sessions") << '\n';
      if (cursor && !o_.all) err_ << "more: anyturn ctl sessions --cursor " << *cursor << " (or --all)\n";
    }
    return ctl_ok;
  }

  int disconnect() {
    if (o_.positional.size() > 1) {
      err_ << "anyturn ctl: disconnect takes one session id\n";
      return ctl_bad_arguments;
    }
    std::optional<answer> a;
    if (o_.positional.size() == 1) {
      if (o_.user) {
        err_ << "anyturn ctl: disconnect: give a session id or --user, not both\n";
        return ctl_bad_arguments;
      }
      a = call(bhttp::verb::delete_, "/admin/sessions/" + percent_encode(o_.positional[0]));
    } else if (o_.user) {
      a = call(bhttp::verb::delete_, "/admin/sessions" + filter_query(false));
    } else {
      err_ << "anyturn ctl: disconnect: give a session id or --user USER\n";
      return ctl_bad_arguments;
    }
    return a ? print(*a) : ctl_refused;
  }

  int revoke() {
    std::optional<std::string> username = o_.username;
    if (!o_.positional.empty()) {
      if (username || o_.positional.size() > 1) {
        err_ << "anyturn ctl: revoke takes one username\n";
        return ctl_bad_arguments;
      }
      username = o_.positional[0];
    }
    if (username.has_value() == o_.user.has_value()) {
      err_ << "anyturn ctl: revoke: give a username (or --username NAME) or --user USER\n";
      return ctl_bad_arguments;
    }
    std::string body = "{\"tenant\":";
    http::json::append_string(body, o_.tenant.value_or(""));
    body += username ? ",\"username\":" : ",\"user\":";
    http::json::append_string(body, username ? *username : *o_.user);
    if (o_.ttl) {
      int ttl = 0;
      const auto [end, ec] = std::from_chars(o_.ttl->data(), o_.ttl->data() + o_.ttl->size(), ttl);
      if (ec != std::errc{} || end != o_.ttl->data() + o_.ttl->size() || ttl < 1) {
        err_ << "anyturn ctl: --ttl: expected a number of seconds\n";
        return ctl_bad_arguments;
      }
      body += ",\"ttl\":" + std::to_string(ttl);
    }
    body += '}';
    auto a = call(bhttp::verb::post, "/admin/revoke", body);
    return a ? print(*a) : ctl_refused;
  }

  const ctl_options& o_;
  const ctl_url& u_;
  std::ostream& out_;
  std::ostream& err_;
};

}  // namespace

bool is_ctl_command(int argc, const char* const* argv) {
  return argc >= 2 && std::string_view(argv[1]) == "ctl";
}

std::string ctl_usage() {
  return R"(Usage: anyturn ctl [OPTIONS] COMMAND [ARGS]

Talks to the admin API of a running anyturn (docs/admin.md).

Commands:
  status                         version, allocations, draining
  sessions [FILTERS] [--limit N] [--cursor C] [--all]
                                 list allocations (a page; --all follows every page)
  disconnect ID                  end one allocation
  disconnect --user U [FILTERS]  end every allocation of a user
  revoke USERNAME | --user U [--tenant T] [--ttl S]
                                 refuse a credential (or every credential of a
                                 REST user) and end its allocations
  drain | undrain                start or end a drain
  reload                         re-read the config file

Filters: --user U (a username or a REST user), --tenant T, --client IP[:PORT],
         --transport udp|tcp|tls

Options:
  --url URL          the side server (default http://127.0.0.1:9641)
  --config FILE      take the URL from FILE's http.listen instead
  --key KEY          the admin key (default: $ANYTURN_ADMIN_KEY)
  --key-file FILE    read the admin key from FILE's first line
  --json             print the server's JSON as it came
  --ca FILE          trust this CA for https (default: the system's)
  --insecure         https without checking the certificate
  --timeout S        seconds to wait for an answer (default 10)

Exit codes: 0 done, 1 the server said no or could not be reached, 2 bad arguments.
)";
}

std::string format_table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::size_t> width;
  for (const auto& r : rows) {
    if (r.size() > width.size()) width.resize(r.size(), 0);
    for (std::size_t i = 0; i < r.size(); ++i) width[i] = std::max(width[i], r[i].size());
  }
  std::string out;
  for (const auto& r : rows) {
    for (std::size_t i = 0; i < r.size(); ++i) {
      out += r[i];
      if (i + 1 < r.size()) out.append(width[i] - r[i].size() + 2, ' ');
    }
    out += '\n';
  }
  return out;
}

std::optional<ctl_url> parse_ctl_url(std::string_view url) {
  ctl_url u;
  if (url.starts_with("http://")) {
    url.remove_prefix(7);
  } else if (url.starts_with("https://")) {
    url.remove_prefix(8);
    u.tls = true;
  } else {
    return std::nullopt;
  }
  const auto slash = url.find('/');
  std::string_view authority = url.substr(0, slash);
  if (slash != std::string_view::npos) {
    u.base_path = std::string(url.substr(slash));
    while (!u.base_path.empty() && u.base_path.back() == '/') u.base_path.pop_back();
  }
  if (authority.empty()) return std::nullopt;
  std::string_view port;
  if (authority.front() == '[') {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    u.host = std::string(authority.substr(1, close - 1));
    const std::string_view rest = authority.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return std::nullopt;
      port = rest.substr(1);
    }
  } else {
    const auto colon = authority.find(':');
    u.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) port = authority.substr(colon + 1);
  }
  if (u.host.empty()) return std::nullopt;
  if (port.empty()) {
    u.port = u.tls ? "443" : "80";
  } else {
    unsigned p = 0;
    const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
    if (ec != std::errc{} || end != port.data() + port.size() || p == 0 || p > 65535) return std::nullopt;
    u.port = std::string(port);
  }
  return u;
}

int run_ctl(int argc, const char* const* argv, const char* env_key, std::ostream& out, std::ostream& err) {
  ctl_options o;
  bool help = false;
  if (!parse_args(argc, argv, env_key, o, err, help)) {
    err << "Try 'anyturn ctl --help'.\n";
    return ctl_bad_arguments;
  }
  if (help) {
    out << ctl_usage();
    return ctl_ok;
  }
  if (o.command.empty()) {
    err << "anyturn ctl: no command\nTry 'anyturn ctl --help'.\n";
    return ctl_bad_arguments;
  }
  const auto u = parse_ctl_url(o.url);
  if (!u) {
    err << "anyturn ctl: --url " << o.url << ": expected http://HOST:PORT or https://HOST:PORT\n";
    return ctl_bad_arguments;
  }
  try {
    return ctl_run(o, *u, out, err).run();
  } catch (const std::exception& e) {
    err << "anyturn ctl: " << e.what() << '\n';
    return ctl_refused;
  }
}

}  // namespace anyturn::app
