#include <anyturn/config/coturn_import.hpp>

#include <anyturn/auth/credentials.hpp>
#include <anyturn/config/cli.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <string>
#include <unistd.h>
#include <vector>

namespace anyturn::config {
namespace {

bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

bool has_note(const coturn_import_result& r, const std::string& part) {
  return std::any_of(r.notes.begin(), r.notes.end(), [&](const std::string& n) { return has(n, part); });
}

// What `anyturn check-config FILE` does: config::resolve on the file.
std::optional<server_config> check_config(const std::string& yaml, std::vector<std::string>& errors) {
  static int n = 0;
  const std::string path = ::testing::TempDir() + "coturn_import_test_" + std::to_string(::getpid()) + "_" +
                           std::to_string(n++) + ".yaml";
  std::ofstream(path) << yaml;
  cli_options opts;
  opts.cmd = command::check_config;
  opts.config_path = path;
  auto cfg = resolve(opts, errors);
  std::remove(path.c_str());
  return cfg;
}

server_config imported(const std::string& conf, coturn_import_result* out = nullptr) {
  const auto r = import_coturn(conf);
  if (out) *out = r;
  std::vector<std::string> errors;
  const auto cfg = check_config(r.yaml, errors);
  std::string all;
  for (const auto& e : errors) all += e + "\n";
  EXPECT_TRUE(cfg.has_value()) << all << "---- yaml:\n" << r.yaml;
  return cfg.value_or(server_config{});
}

std::string read_testdata(const std::string& name) {
  std::ifstream in(std::string(ANYTURN_TESTDATA_DIR) + "/coturn/" + name);
  EXPECT_TRUE(in.good()) << name;
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<std::string> texts(const std::vector<stun::endpoint>& eps) {
  std::vector<std::string> out;
  for (const auto& e : eps) out.push_back(e.to_string());
  return out;
}

std::size_t count_cidrs(const std::vector<auth::cidr>& list, const std::string& text) {
  const auto want = auth::cidr::parse(text);
  return static_cast<std::size_t>(std::count_if(list.begin(), list.end(), [&](const auth::cidr& c) {
    return want && c.family == want->family && c.ip == want->ip && c.prefix == want->prefix;
  }));
}

TEST(coturn_import, static_users_with_passwords_and_hex_keys) {
  coturn_import_result r;
  const auto cfg = imported(
      "realm=example.net\n"
      "user=alice:Alice-static-pw-51203\n"
      "user=bob:0x2db691371762b973a9e4f0d8d27e4e06\n"
      "user=carol:0x1A7BCC27A24F4E92DD2A6B0941D1A4E3\n"
      "user=dave:pass:with:colons\n",
      &r);
  EXPECT_TRUE(r.notes.empty());
  EXPECT_EQ(cfg.auth.realm, "example.net");
  ASSERT_EQ(cfg.auth.users.size(), 4u);
  EXPECT_EQ(cfg.auth.users[0].name, "alice");
  EXPECT_EQ(cfg.auth.users[0].password, "Alice-static-pw-51203");
  // coturn's hex key is the long-term key of the same password: anyturn's `key`.
  EXPECT_EQ(cfg.auth.users[1].name, "bob");
  EXPECT_EQ(cfg.auth.users[1].key, auth::derive_md5_key("bob", "example.net", "Bob-static-2nd-pw-9431"));
  EXPECT_EQ(cfg.auth.users[2].key, auth::derive_md5_key("carol", "example.net", "Carol-static-pw-77310"));
  EXPECT_EQ(cfg.auth.users[3].password, "pass:with:colons");  // split at the first ':'
}

TEST(coturn_import, passwords_with_yaml_specials_survive) {
  const std::string pw = R"(a"b\c #d: [e] {f} 'g' %h)";
  const auto cfg = imported("user=erin:" + pw + "\n");
  ASSERT_EQ(cfg.auth.users.size(), 1u);
  EXPECT_EQ(cfg.auth.users[0].password, pw);
}

TEST(coturn_import, line_breaks_and_controls_in_values_survive_quoting) {
  const std::string pw = "a\tb\x01" "c\xc2\x85" "d\xe2\x80\xa8" "e\xe2\x80\xa9" "f\x7f";
  const auto cfg = imported("user=frank:" + pw + "\n");
  ASSERT_EQ(cfg.auth.users.size(), 1u);
  EXPECT_EQ(cfg.auth.users[0].password, pw);
}

TEST(coturn_import, hex_keys_without_realm_get_a_warning_comment) {
  const auto r = import_coturn("user=bob:0x2db691371762b973a9e4f0d8d27e4e06\n");
  EXPECT_TRUE(has(r.yaml, "sets no realm")) << r.yaml;
}

TEST(coturn_import, rest_secrets) {
  coturn_import_result r;
  const auto cfg = imported(
      "use-auth-secret\nstatic-auth-secret=5f1c0a9e7d2b4c8a9e13d7f2b6a40c91\n"
      "static-auth-secret=\"retiring-rest-secret-2f8e61c4a0\"\nrealm=turn.example.org\n",
      &r);
  EXPECT_EQ(cfg.auth.rest_secrets,
            (std::vector<std::string>{"5f1c0a9e7d2b4c8a9e13d7f2b6a40c91", "retiring-rest-secret-2f8e61c4a0"}));
  EXPECT_TRUE(r.notes.empty());
  const auto db = import_coturn("use-auth-secret\n");
  EXPECT_TRUE(has_note(db, "line 1: use-auth-secret without static-auth-secret"));
  const auto short_secret = import_coturn("use-auth-secret\nstatic-auth-secret=tooshort\n");
  EXPECT_TRUE(has_note(short_secret, "line 2: static-auth-secret: secret shorter than 16 bytes"));
}

TEST(coturn_import, listeners_relay_and_external_ip) {
  const auto cfg = imported(
      "listening-ip=10.0.0.7\nlistening-ip=2001:db8::7\nlistening-port=3479\ntls-listening-port=5350\n"
      "cert=/etc/ssl/turn.pem\npkey=/etc/ssl/turn.key\nexternal-ip=203.0.113.7/10.0.0.7\n"
      "min-port=40000\nmax-port=40999\n");
  EXPECT_EQ(texts(cfg.listen), (std::vector<std::string>{"10.0.0.7:3479", "[2001:db8::7]:3479"}));
  EXPECT_EQ(texts(cfg.tls.listen), (std::vector<std::string>{"10.0.0.7:5350", "[2001:db8::7]:5350"}));
  EXPECT_EQ(cfg.tls.cert, "/etc/ssl/turn.pem");
  EXPECT_EQ(cfg.tls.key, "/etc/ssl/turn.key");
  // No relay-ip: coturn relays on its listening addresses.
  EXPECT_EQ(texts(cfg.relay.ips), (std::vector<std::string>{"10.0.0.7:0", "[2001:db8::7]:0"}));
  ASSERT_EQ(cfg.relay.external_ips.size(), 1u);
  EXPECT_EQ(cfg.relay.port_min, 40000);
  EXPECT_EQ(cfg.relay.port_max, 40999);
}

TEST(coturn_import, defaults_listen_everywhere_and_keep_auto_relay) {
  coturn_import_result r;
  const auto cfg = imported("listening-port=3478\nrelay-ip=198.51.100.20\n", &r);
  EXPECT_EQ(texts(cfg.listen), (std::vector<std::string>{"0.0.0.0:3478", "[::]:3478"}));
  EXPECT_EQ(texts(cfg.relay.ips), (std::vector<std::string>{"198.51.100.20:0"}));
  EXPECT_TRUE(cfg.tls.listen.empty());
  EXPECT_TRUE(has(r.yaml, "# tls: {listen: [\"0.0.0.0:5349\", \"[::]:5349\"]")) << r.yaml;
}

TEST(coturn_import, peers_ranges_become_cidrs) {
  coturn_import_result r;
  const auto cfg = imported(
      "denied-peer-ip=10.0.0.0-10.255.255.255\ndenied-peer-ip=192.0.2.1-192.0.2.6\n"
      "denied-peer-ip=fc00::-fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff\n"
      "allowed-peer-ip=10.20.30.40-10.20.30.47\nallowed-peer-ip=10.20.31.5\n"
      "no-loopback-peers\nno-multicast-peers\n",
      &r);
  EXPECT_EQ(count_cidrs(cfg.peers.deny, "10.0.0.0/8"), 1u);
  EXPECT_EQ(count_cidrs(cfg.peers.deny, "192.0.2.1/32"), 1u);
  EXPECT_EQ(count_cidrs(cfg.peers.deny, "192.0.2.2/31"), 1u);
  EXPECT_EQ(count_cidrs(cfg.peers.deny, "192.0.2.4/31"), 1u);
  EXPECT_EQ(count_cidrs(cfg.peers.deny, "192.0.2.6/32"), 1u);
  EXPECT_EQ(count_cidrs(cfg.peers.deny, "fc00::/7"), 1u);
  EXPECT_EQ(cfg.peers.deny.size(), 6u);
  EXPECT_EQ(count_cidrs(cfg.peers.allow, "10.20.30.40/29"), 1u);
  EXPECT_EQ(count_cidrs(cfg.peers.allow, "10.20.31.5/32"), 1u);
  // The difference in defaults is spelled out where the peers are.
  EXPECT_TRUE(has(r.yaml, "refuses loopback, RFC 1918")) << r.yaml;
  EXPECT_TRUE(has(r.yaml, "# line 6: no-loopback-peers  -- nothing to set")) << r.yaml;
  EXPECT_TRUE(has(r.yaml, "# line 7: no-multicast-peers  -- nothing to set")) << r.yaml;
}

TEST(coturn_import, allow_loopback_peers_opens_loopback_with_a_note) {
  coturn_import_result r;
  const auto cfg = imported("allow-loopback-peers\n", &r);
  EXPECT_EQ(count_cidrs(cfg.peers.allow, "127.0.0.0/8"), 1u);
  EXPECT_EQ(count_cidrs(cfg.peers.allow, "::1/128"), 1u);
  EXPECT_TRUE(has_note(r, "line 1: allow-loopback-peers"));
}

TEST(coturn_import, quotas_bandwidth_and_lifetimes) {
  const auto cfg = imported(
      "user-quota=12\ntotal-quota=1200\nmax-bps=3000000\nstale-nonce=300\nmax-allocate-lifetime=300\n"
      "permission-lifetime=200\nchannel-lifetime=500\nrelay-threads=3\n");
  EXPECT_EQ(cfg.max_allocations_per_user, 12u);
  EXPECT_EQ(cfg.max_allocations, 1200u);
  EXPECT_EQ(cfg.allocation_limits.bytes_per_second, 3000000u);
  EXPECT_EQ(cfg.lifetimes.nonce, 300u);
  EXPECT_EQ(cfg.lifetimes.allocation_max, 300u);
  EXPECT_EQ(cfg.lifetimes.allocation_default, 300u);  // kept <= allocation_max
  EXPECT_EQ(cfg.lifetimes.permission, 200u);
  EXPECT_EQ(cfg.lifetimes.channel, 500u);
  EXPECT_EQ(cfg.threads, 3u);
  // max-bps below anyturn's floor is raised to it (and said so); 0 keeps anyturn's default.
  coturn_import_result r;
  const auto low = imported("max-bps=1000\n", &r);
  EXPECT_EQ(low.allocation_limits.bytes_per_second, 65536u);
  EXPECT_TRUE(has(r.yaml, "anyturn's range is 65536..10^12")) << r.yaml;
  EXPECT_EQ(imported("max-bps=0\n", &r).allocation_limits.bytes_per_second,
            server_config{}.allocation_limits.bytes_per_second);
  EXPECT_TRUE(has(r.yaml, "# coturn: max-bps=0 (no limit)")) << r.yaml;
  // stale-nonce without a value is coturn's 600.
  EXPECT_EQ(imported("stale-nonce\n").lifetimes.nonce, 600u);
}

TEST(coturn_import, transports) {
  coturn_import_result r;
  const auto cfg = imported("no-tcp\nno-udp\nno-dtls\ncert=/c.pem\n", &r);
  EXPECT_FALSE(cfg.streams.tcp);
  EXPECT_EQ(cfg.tls.listen.size(), 2u);
  EXPECT_EQ(cfg.tls.key, "/c.pem");  // no pkey: the key is in the cert file
  EXPECT_TRUE(has(r.yaml, "no-udp. anyturn always serves UDP")) << r.yaml;
  EXPECT_TRUE(has(r.yaml, "coturn recognised TLS and plain TURN on each of its ports")) << r.yaml;
  EXPECT_FALSE(has(r.yaml, "dtls:")) << r.yaml;
  EXPECT_TRUE(cfg.dtls.listen.empty());

  // coturn serves DTLS on its TLS port with the same certificate.
  const auto no_tls = imported("no-tls\ncert=/c.pem\npkey=/k.pem\n", &r);
  EXPECT_TRUE(no_tls.tls.listen.empty());
  EXPECT_EQ(no_tls.tls.cert, "/c.pem");
  EXPECT_EQ(texts(no_tls.dtls.listen), (std::vector<std::string>{"0.0.0.0:5349", "[::]:5349"}));
  // A TLS port that is also the listen port: TLS (over TCP) and DTLS (over
  // UDP) each need a port of their own, written as comments.
  auto same = imported("listening-port=443\ntls-listening-port=443\ncert=/c.pem\n", &r);
  EXPECT_TRUE(same.dtls.listen.empty());
  EXPECT_TRUE(same.tls.listen.empty());
  EXPECT_EQ(same.tls.cert, "/c.pem");
  EXPECT_TRUE(has(r.yaml, "  # listen: [\"0.0.0.0:5349\", \"[::]:5349\"]")) << r.yaml;
  EXPECT_TRUE(has(r.yaml, "# dtls: {listen: [\"0.0.0.0:5349\", \"[::]:5349\"]}")) << r.yaml;
  same = imported("no-tcp\nlistening-port=443\ntls-listening-port=443\ncert=/c.pem\n", &r);
  EXPECT_EQ(texts(same.tls.listen), (std::vector<std::string>{"0.0.0.0:443", "[::]:443"}));
  EXPECT_TRUE(same.dtls.listen.empty());
  // RFC 6062 off in coturn: off in anyturn.
  EXPECT_TRUE(imported("listening-port=3478\n").relay.tcp);
  EXPECT_FALSE(imported("no-tcp-relay\n", &r).relay.tcp);
  EXPECT_TRUE(has(r.yaml, "  tcp: false   # coturn: no-tcp-relay")) << r.yaml;
}

TEST(coturn_import, second_listening_ip_is_the_rfc5780_other_address) {
  coturn_import_result r;
  imported("listening-ip=10.0.0.7\nlistening-ip=10.0.0.8\n", &r);
  EXPECT_TRUE(has(r.yaml, "# stun: {other_ip: \"10.0.0.8\"}")) << r.yaml;
  imported("listening-ip=10.0.0.7\nlistening-ip=10.0.0.8\nno-rfc5780\n", &r);
  EXPECT_FALSE(has(r.yaml, "# stun: {other_ip")) << r.yaml;
}

TEST(coturn_import, prometheus_software_and_verbosity) {
  coturn_import_result r;
  const auto cfg = imported("prometheus\nprometheus-port=9700\nno-software-attribute\nVerbose\n", &r);
  EXPECT_EQ(cfg.http.listen.to_string(), "0.0.0.0:9700");
  EXPECT_EQ(cfg.software, "");
  EXPECT_EQ(cfg.log_level, "debug");
}

// Every option the issue names has a place: a key, or a comment that says
// what to do instead.
TEST(coturn_import, every_option_of_the_issue_is_handled) {
  const std::vector<std::string> commented = {
      "fingerprint", "lt-cred-mech", "no-cli",  "log-file=/var/log/turn.log", "pidfile=/run/turn.pid",
      "mobility",    "no-tlsv1",     "no-tlsv1_1", "no-tlsv1_2", "alternate-server=192.0.2.9:3478",
      "no-loopback-peers", "no-multicast-peers"};
  std::string conf;
  for (const auto& o : commented) conf += o + "\n";
  coturn_import_result r;
  imported(conf, &r);
  for (std::size_t i = 0; i < commented.size(); ++i) {
    const std::string name = commented[i].substr(0, commented[i].find('='));
    EXPECT_TRUE(has(r.yaml, "# line " + std::to_string(i + 1) + ": " + name)) << name << "\n" << r.yaml;
  }
  EXPECT_TRUE(r.notes.empty());
}

TEST(coturn_import, syntax_forms_comments_and_repeats) {
  coturn_import_result r;
  const auto cfg = imported(
      "# a comment\n"
      "   # an indented comment\n"
      "\n"
      "listening-port 3480\n"          // name value
      "--realm=first.example\n"        // command-line form
      "realm = second.example\n"       // spaces around '=', repeated: the later wins
      "listening-ip=127.0.0.1\r\n"     // CRLF
      "listening-ip=127.0.0.2\n"
      "listening-ip=127.0.0.1\n"       // the same again: once
      "user=alice:first-password-123\n"
      "user=alice:second-password-456\n",
      &r);
  EXPECT_EQ(texts(cfg.listen), (std::vector<std::string>{"127.0.0.1:3480", "127.0.0.2:3480"}));
  EXPECT_EQ(cfg.auth.realm, "second.example");
  ASSERT_EQ(cfg.auth.users.size(), 1u);
  EXPECT_EQ(cfg.auth.users[0].password, "second-password-456");
  EXPECT_TRUE(has_note(r, "line 6: realm: realm given again"));
  EXPECT_TRUE(has_note(r, "line 11: user: user 'alice' given again"));
}

TEST(coturn_import, bad_lines_are_named_and_never_dropped_silently) {
  coturn_import_result r;
  imported(
      "min-port=abc\n"
      "user=nocolon\n"
      "%%% garbage\n"
      "frobnicate=1\n"
      "denied-peer-ip=10.0.0.9-10.0.0.1\n"
      "user=bob:0x1234\n"
      "no-tcp=maybe\n"
      "listening-port=70000\n"
      "relay-ip=0.0.0.0\n",
      &r);
  EXPECT_TRUE(has_note(r, "line 1: min-port: expected an integer in 1..65535")) << r.notes.size();
  EXPECT_TRUE(has_note(r, "line 2: user: expected user=NAME:PASSWORD"));
  EXPECT_TRUE(has_note(r, "line 3: not an option line"));
  EXPECT_TRUE(has_note(r, "line 4: frobnicate: unknown coturn option"));
  EXPECT_TRUE(has_note(r, "line 5: denied-peer-ip: expected an IP address, a range"));
  EXPECT_TRUE(has_note(r, "line 6: user: user 'bob': a 0x key must be 32 hex characters"));
  EXPECT_TRUE(has_note(r, "line 7: no-tcp: expected no value or a boolean"));
  EXPECT_TRUE(has_note(r, "line 8: listening-port: expected an integer in 1..65535"));
  EXPECT_TRUE(has_note(r, "line 9: relay-ip: expected a specific IP address"));
  EXPECT_EQ(r.notes.size(), 9u);
  for (int line = 1; line <= 9; ++line) {
    EXPECT_TRUE(has(r.yaml, "# line " + std::to_string(line) + ":")) << line << "\n" << r.yaml;
  }
}

TEST(coturn_import, credentials_are_never_echoed_in_comments) {
  const auto r = import_coturn(
      "cli-password=Cli-Secret-Value-1\nredis-userdb=\"ip=127.0.0.1 password=Redis-Secret-Value-2\"\n"
      "pkey-pwd=Key-Secret-Value-3\nsome-new-secret-option=Unknown-Secret-Value-4\n"
      "user=User-Secret-Value-5-without-colon\nuser=bob:0xUser-Secret-Value-6\n");
  for (const char* s : {"Cli-Secret-Value-1", "Redis-Secret-Value-2", "Key-Secret-Value-3", "Unknown-Secret-Value-4",
                        "User-Secret-Value-5", "User-Secret-Value-6"}) {
    EXPECT_FALSE(has(r.yaml, s)) << s;
    for (const auto& n : r.notes) EXPECT_FALSE(has(n, s)) << n;
  }
  EXPECT_TRUE(has(r.yaml, "# line 1: cli-password=<not shown>")) << r.yaml;
}

// The shipped and the real-world examples import into configs that pass
// check-config.
TEST(coturn_import, debian_turnserver_conf) {
  coturn_import_result r;
  const auto cfg = imported(read_testdata("debian-turnserver.conf"), &r);
  // Its only active lines: syslog, no-rfc5780, no-stun-backward-compatibility,
  // response-origin-only-with-rfc5780; each is a comment.
  for (const char* o : {": syslog  --", ": no-stun-backward-compatibility  --", ": response-origin-only-with-rfc5780  --"})
    EXPECT_TRUE(has(r.yaml, o)) << o << "\n" << r.yaml;
  EXPECT_TRUE(r.notes.empty());
  EXPECT_TRUE(has(r.yaml, "anyturn generates a REST secret"));
  EXPECT_EQ(cfg.listen.size(), 2u);
}

TEST(coturn_import, rest_quotas_example) {
  coturn_import_result r;
  const auto cfg = imported(read_testdata("rest-quotas.conf"), &r);
  EXPECT_TRUE(r.notes.empty());
  EXPECT_EQ(cfg.auth.rest_secrets.size(), 2u);
  EXPECT_EQ(cfg.auth.realm, "turn.example.org");
  EXPECT_EQ(cfg.max_allocations, 1200u);
  EXPECT_EQ(cfg.max_allocations_per_user, 40u);
  EXPECT_EQ(cfg.allocation_limits.bytes_per_second, 3000000u);
  EXPECT_EQ(cfg.relay.port_min, 49160);
  EXPECT_EQ(cfg.relay.port_max, 49959);
  EXPECT_EQ(cfg.peers.deny.size(), 11u);
  EXPECT_EQ(count_cidrs(cfg.peers.allow, "10.20.30.40/29"), 1u);
}

TEST(coturn_import, static_hex_example) {
  coturn_import_result r;
  const auto cfg = imported(read_testdata("static-hex.conf"), &r);
  EXPECT_TRUE(r.notes.empty());
  ASSERT_EQ(cfg.auth.users.size(), 3u);
  EXPECT_EQ(cfg.auth.users[1].key, auth::derive_md5_key("bob", "example.net", "Bob-static-2nd-pw-9431"));
  EXPECT_EQ(cfg.auth.users[2].key, auth::derive_md5_key("carol", "example.net", "Carol-static-pw-77310"));
  EXPECT_TRUE(cfg.tls.listen.empty());
  EXPECT_EQ(cfg.threads, 2u);
  EXPECT_EQ(cfg.software, "");
}

TEST(coturn_import, tls_only_example) {
  coturn_import_result r;
  const auto cfg = imported(read_testdata("tls-only.conf"), &r);
  EXPECT_TRUE(r.notes.empty());
  EXPECT_FALSE(cfg.streams.tcp);
  EXPECT_EQ(texts(cfg.tls.listen), (std::vector<std::string>{"10.0.0.7:443", "10.0.0.8:443"}));
  EXPECT_EQ(texts(cfg.relay.ips), (std::vector<std::string>{"10.0.0.7:0"}));
  ASSERT_EQ(cfg.relay.external_ips.size(), 1u);
  EXPECT_EQ(cfg.http.listen.to_string(), "0.0.0.0:9641");
  EXPECT_TRUE(has(r.yaml, "# stun: {other_ip: \"10.0.0.8\"}")) << r.yaml;
  EXPECT_EQ(texts(cfg.dtls.listen), (std::vector<std::string>{"10.0.0.7:443", "10.0.0.8:443"}));
  for (const char* o : {": alternate-server=", ": no-tlsv1_2  --", ": cipher-list=", ": proc-user=", ": syslog  --",
                        ": alt-tls-listening-port="})
    EXPECT_TRUE(has(r.yaml, o)) << o;
}

// Property: whatever the file holds, the output is YAML that parses (values
// may still fail validation, but never the YAML syntax), and the translator
// never throws. Deterministic pseudo-random files of real option names and
// hostile values.
TEST(coturn_import, output_always_parses_as_yaml) {
  const std::vector<std::string> names = {
      "user", "realm", "static-auth-secret", "listening-ip", "relay-ip", "external-ip", "cert", "pkey",
      "denied-peer-ip", "allowed-peer-ip", "log-file", "cli-password", "unknown-x", "min-port", "max-bps",
      "prometheus", "no-tcp", "listening-port", "alternate-server", "stale-nonce"};
  const std::vector<std::string> values = {
      "", "\"", "\\", "a\"b", "#x", "x: y", "[1, 2]", "{a: b}", "'q'", "- item", "&anchor", "*alias", "!tag",
      "%dir", "@", "`", "|", ">", "a\tb", "\x01\x02", "\xc3\xa9t\xc3\xa9", "10.0.0.1-10.0.0.9", "::1", "name:pw",
      "name:0x0123456789abcdef0123456789ABCDEF", "0x", "99999999999999999999", "-1", " lead", "trail ", "\"\"",
      "a\\\"b#c", "\xff\xfe", "a\rb: c", "x\xc2\x85y: z", "\xe2\x80\xa8k: v", "p\xe2\x80\xa9q: r"};
  std::uint32_t state = 12345;
  auto next = [&state] {
    state ^= state << 13;
    state ^= state >> 17;
    state ^= state << 5;
    return state;
  };
  for (int round = 0; round < 500; ++round) {
    std::string conf;
    const int lines = 1 + static_cast<int>(next() % 12);
    for (int l = 0; l < lines; ++l) {
      const auto& name = names[next() % names.size()];
      const auto& value = values[next() % values.size()];
      const char* sep[] = {"=", " ", " = ", "=\""};
      conf += name + sep[next() % 4] + value + (next() % 7 == 0 ? "\r\n" : "\n");
    }
    coturn_import_result r;
    ASSERT_NO_THROW(r = import_coturn(conf)) << conf;
    std::vector<std::string> errors;
    load_yaml(r.yaml, errors);
    // No syntax error, and no key the translator did not write (a value that
    // broke out of its line or its comment would add one).
    for (const auto& e : errors) {
      EXPECT_FALSE(e.starts_with("yaml") || has(e, "unknown key")) << e << "\n---- conf:\n" << conf << "---- yaml:\n"
                                                                   << r.yaml;
    }
    if (HasFailure()) break;
  }
}

}  // namespace
}  // namespace anyturn::config
