// The HTTP server over real loopback sockets, with a Beast client.
#include <anyturn/auth/credentials.hpp>
#include <anyturn/http/server.hpp>
#include <anyturn/metrics/registry.hpp>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <mutex>
#include <thread>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

namespace anyturn::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;
using client_response = bhttp::response<bhttp::string_body>;

constexpr std::int64_t fixed_now = 1700000000;

server_config base_config(metrics::registry* reg, std::atomic<bool>* ready) {
  server_config cfg;
  cfg.port = 0;
  cfg.registry = reg;
  cfg.ready = [ready] { return ready->load(); };
  cfg.now = [] { return fixed_now; };
  cfg.tenants.push_back({"acme", {"k-acme"}, {"s-acme", "s-old"}, 3600, 600});
  cfg.urls.stun = {"stun:turn.example.com:3478"};
  cfg.urls.turn = {"turn:turn.example.com:3478?transport=udp",
                   "turn:turn.example.com:3478?transport=tcp",
                   "turns:turn.example.com:5349?transport=tcp"};
  return cfg;
}

class http_server : public ::testing::Test {
 protected:
  void start(server_config cfg) {
    server_ = std::make_unique<server>(std::move(cfg));
    server_->start();
    ASSERT_NE(server_->port(), 0);
    std::printf("[ info     ] HTTP server bound to 127.0.0.1:%u\n", server_->port());
  }
  void SetUp() override {
    reg_.add_collector([](metrics::sink& s) { s.gauge("test_marker", "A test gauge.", {}, 42); });
  }

  tcp::endpoint endpoint() const {
    return {asio::ip::make_address("127.0.0.1"), server_->port()};
  }

  client_response fetch(bhttp::verb verb, const std::string& target, const std::string& body = {},
                        const std::string& bearer = {}) {
    beast::tcp_stream stream(ioc_);
    stream.connect(endpoint());
    bhttp::request<bhttp::string_body> req{verb, target, 11};
    req.set(bhttp::field::host, "127.0.0.1");
    if (!bearer.empty()) req.set(bhttp::field::authorization, "Bearer " + bearer);
    if (!body.empty()) req.set(bhttp::field::content_type, "application/json");
    req.body() = body;
    req.prepare_payload();
    bhttp::write(stream, req);
    beast::flat_buffer buf;
    client_response res;
    bhttp::read(stream, buf, res);
    return res;
  }

  metrics::registry reg_;
  std::atomic<bool> ready_{true};
  asio::io_context ioc_;
  std::unique_ptr<server> server_;
};

std::string member(const std::string& body, const std::string& key) {
  const std::string k = "\"" + key + "\":\"";
  const auto pos = body.find(k);
  if (pos == std::string::npos) return {};
  const auto start = pos + k.size();
  return body.substr(start, body.find('"', start) - start);
}

TEST_F(http_server, healthz_and_readyz) {
  start(base_config(&reg_, &ready_));
  const auto health = fetch(bhttp::verb::get, "/healthz");
  EXPECT_EQ(health.result_int(), 200u);
  EXPECT_EQ(health.body(), "ok\n");
  EXPECT_EQ(fetch(bhttp::verb::get, "/readyz").result_int(), 200u);
  ready_ = false;
  const auto not_ready = fetch(bhttp::verb::get, "/readyz");
  EXPECT_EQ(not_ready.result_int(), 503u);
  EXPECT_EQ(not_ready.body(), "not ready\n");
}

TEST_F(http_server, metrics_content_type_and_content) {
  start(base_config(&reg_, &ready_));
  fetch(bhttp::verb::get, "/healthz");
  const auto res = fetch(bhttp::verb::get, "/metrics");
  ASSERT_EQ(res.result_int(), 200u);
  EXPECT_EQ(res[bhttp::field::content_type], "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_NE(res.body().find("\ntest_marker 42\n"), std::string::npos) << res.body();
  EXPECT_NE(res.body().find("anyturn_http_requests_total{route=\"/healthz\",code=\"200\"} 1\n"),
            std::string::npos) << res.body();
  // At least this connection (the previous one may still be closing).
  const auto pos = res.body().find("\nanyturn_http_connections_active ");
  ASSERT_NE(pos, std::string::npos);
  EXPECT_GE(std::stoi(res.body().substr(pos + 33)), 1);
}

TEST_F(http_server, api_requires_a_valid_key) {
  start(base_config(&reg_, &ready_));
  const auto missing = fetch(bhttp::verb::post, "/api/v1/ice-servers", "{}");
  EXPECT_EQ(missing.result_int(), 401u);
  EXPECT_EQ(missing[bhttp::field::www_authenticate], "Bearer realm=\"anyturn\"");
  EXPECT_EQ(missing[bhttp::field::content_type], "application/json");
  EXPECT_EQ(missing.body(), "{\"error\":\"missing API key\"}\n");
  const auto wrong = fetch(bhttp::verb::post, "/api/v1/ice-servers", "{}", "k-acmE");
  EXPECT_EQ(wrong.result_int(), 401u);
  EXPECT_EQ(wrong.body(), "{\"error\":\"invalid API key\"}\n");
  EXPECT_NE(std::string(wrong[bhttp::field::www_authenticate]).rfind("Bearer", 0),
            std::string::npos);
}

TEST_F(http_server, ice_servers_issue_valid_rest_credentials) {
  start(base_config(&reg_, &ready_));
  const auto res =
      fetch(bhttp::verb::post, "/api/v1/ice-servers", "{\"ttl\": 120, \"user\": \"alice\"}", "k-acme");
  ASSERT_EQ(res.result_int(), 200u) << res.body();
  const std::string username = member(res.body(), "username");
  const std::string credential = member(res.body(), "credential");
  EXPECT_EQ(username, auth::rest_username(fixed_now, 120, "acme:alice"));
  EXPECT_EQ(credential, auth::rest_password("s-acme", username));
  EXPECT_EQ(member(res.body(), "expiresAt"), "2023-11-14T22:15:20Z");
  EXPECT_NE(res.body().find("\"urls\":[\"turn:turn.example.com:3478?transport=udp\","
                            "\"turn:turn.example.com:3478?transport=tcp\","
                            "\"turns:turn.example.com:5349?transport=tcp\"]"),
            std::string::npos);

  // The TURN side accepts it: the store maps it to tenant "acme" and derives
  // the same key from that tenant's secret.
  auth::credential_store store(
      "anyturn", std::vector<auth::tenant_credentials>{{"", {}, {"s-default"}},
                                                       {"acme", {}, {"s-acme"}}});
  std::array<auth::key_candidate, auth::max_candidates> cands{};
  std::size_t count = 0;
  auth::tenant_index tenant = 0;
  ASSERT_EQ(store.lookup(username, fixed_now, cands, count, tenant), auth::lookup_status::ok);
  EXPECT_EQ(tenant, 1u);
  ASSERT_GE(count, 1u);
  EXPECT_EQ(cands[0].md5, auth::derive_md5_key(username, "anyturn", credential));
}

TEST_F(http_server, ttl_is_capped_and_defaulted) {
  start(base_config(&reg_, &ready_));
  const auto capped = fetch(bhttp::verb::post, "/api/v1/ice-servers", "{\"ttl\": 999999}", "k-acme");
  ASSERT_EQ(capped.result_int(), 200u);
  EXPECT_EQ(member(capped.body(), "username").substr(0, 16), std::to_string(fixed_now + 3600) + ":acme:");
  const auto dflt = fetch(bhttp::verb::post, "/api/v1/ice-servers", "", "k-acme");
  ASSERT_EQ(dflt.result_int(), 200u);
  const std::string user = member(dflt.body(), "username");
  EXPECT_EQ(user.substr(0, 16), std::to_string(fixed_now + 600) + ":acme:");
  EXPECT_EQ(user.size(), 16u + 16u);  // generated 16 hex digits
  const auto bad = fetch(bhttp::verb::post, "/api/v1/ice-servers", "{\"ttl\":", "k-acme");
  EXPECT_EQ(bad.result_int(), 400u);
  EXPECT_EQ(bad.body().rfind("{\"error\":\"invalid JSON", 0), 0u) << bad.body();
}

TEST_F(http_server, turn_credentials_shape) {
  start(base_config(&reg_, &ready_));
  const auto res = fetch(bhttp::verb::get,
                         "/api/v1/turn-credentials?service=turn&username=bob&ttl=86400", {}, "k-acme");
  ASSERT_EQ(res.result_int(), 200u) << res.body();
  const std::string username = auth::rest_username(fixed_now, 3600, "acme:bob");
  EXPECT_EQ(res.body(),
            "{\"username\":\"" + username + "\",\"password\":\"" +
                auth::rest_password("s-acme", username) +
                "\",\"ttl\":3600,\"uris\":[\"turn:turn.example.com:3478?transport=udp\","
                "\"turn:turn.example.com:3478?transport=tcp\","
                "\"turns:turn.example.com:5349?transport=tcp\"]}\n");
  EXPECT_EQ(fetch(bhttp::verb::get, "/api/v1/turn-credentials?service=stun", {}, "k-acme").result_int(),
            400u);
}

TEST_F(http_server, not_found_and_method_not_allowed) {
  start(base_config(&reg_, &ready_));
  const auto nf = fetch(bhttp::verb::get, "/admin");
  EXPECT_EQ(nf.result_int(), 404u);
  EXPECT_EQ(nf.body(), "{\"error\":\"not found\"}\n");
  const auto na = fetch(bhttp::verb::delete_, "/api/v1/ice-servers", {}, "k-acme");
  EXPECT_EQ(na.result_int(), 405u);
  EXPECT_EQ(na[bhttp::field::allow], "POST");
  EXPECT_EQ(fetch(bhttp::verb::post, "/healthz").result_int(), 405u);
}

TEST_F(http_server, oversized_requests_are_rejected) {
  start(base_config(&reg_, &ready_));
  const auto big_body = fetch(bhttp::verb::post, "/api/v1/ice-servers",
                              "{\"user\":\"" + std::string(20 * 1024, 'x') + "\"}", "k-acme");
  EXPECT_EQ(big_body.result_int(), 413u);
  EXPECT_FALSE(big_body.keep_alive());

  beast::tcp_stream stream(ioc_);
  stream.connect(endpoint());
  bhttp::request<bhttp::string_body> req{bhttp::verb::get, "/healthz", 11};
  req.set("X-Padding", std::string(20 * 1024, 'p'));
  bhttp::write(stream, req);
  beast::flat_buffer buf;
  client_response res;
  bhttp::read(stream, buf, res);
  EXPECT_EQ(res.result_int(), 431u);
}

// Issue 13: the admin endpoints, the revoke route and the Cloudflare-compatible
// routes over real sockets.
TEST_F(http_server, admin_drain_turns_readyz_to_503_and_undrain_back) {
  server_config cfg = base_config(&reg_, &ready_);
  cfg.admin_keys = {"admin-key-0123456789"};
  std::atomic<bool> draining{false};
  cfg.ready = [&draining] { return !draining.load(); };
  cfg.drain = [&draining] { return !draining.exchange(true); };
  cfg.undrain = [&draining] { return draining.exchange(false); };
  start(std::move(cfg));
  EXPECT_EQ(fetch(bhttp::verb::get, "/readyz").result_int(), 200u);
  EXPECT_EQ(fetch(bhttp::verb::post, "/admin/drain", "", "k-acme").result_int(), 401u);
  const auto drained = fetch(bhttp::verb::post, "/admin/drain", "", "admin-key-0123456789");
  ASSERT_EQ(drained.result_int(), 200u);
  EXPECT_EQ(drained.body(), "{\"draining\":true,\"changed\":true}\n");
  EXPECT_EQ(fetch(bhttp::verb::get, "/readyz").result_int(), 503u);
  EXPECT_EQ(fetch(bhttp::verb::post, "/admin/undrain", "", "admin-key-0123456789").body(),
            "{\"draining\":false,\"changed\":true}\n");
  EXPECT_EQ(fetch(bhttp::verb::get, "/readyz").result_int(), 200u);
}

// The server keys the admin failure limit by the peer's address: a client
// on 127.0.0.2 is limited, one on 127.0.0.3 is not.
TEST_F(http_server, admin_failures_are_limited_per_peer_address) {
  server_config cfg = base_config(&reg_, &ready_);
  cfg.admin_keys = {"admin-key-0123456789"};
  cfg.drain = [] { return true; };
  start(std::move(cfg));
  const auto drain_from = [&](const char* source, const std::string& key) {
    beast::tcp_stream stream(ioc_);
    stream.socket().open(tcp::v4());
    stream.socket().bind({asio::ip::make_address(source), 0});
    stream.connect(endpoint());
    bhttp::request<bhttp::string_body> req{bhttp::verb::post, "/admin/drain", 11};
    req.set(bhttp::field::authorization, "Bearer " + key);
    req.prepare_payload();
    bhttp::write(stream, req);
    beast::flat_buffer buf;
    client_response res;
    bhttp::read(stream, buf, res);
    return res.result_int();
  };
  for (int i = 0; i < 5; ++i) EXPECT_EQ(drain_from("127.0.0.2", "wrong"), 401u) << i;
  EXPECT_EQ(drain_from("127.0.0.2", "admin-key-0123456789"), 429u);
  EXPECT_EQ(drain_from("127.0.0.3", "admin-key-0123456789"), 200u);
}

TEST_F(http_server, cloudflare_routes_and_revoke_on_the_wire) {
  server_config cfg = base_config(&reg_, &ready_);
  std::mutex m;
  std::vector<auth::revocation> seen;
  cfg.revoke = [&](const auth::revocation& r) {
    const std::lock_guard lock(m);
    seen.push_back(r);
  };
  start(std::move(cfg));
  const auto gen = fetch(bhttp::verb::post, "/v1/turn/keys/acme/credentials/generate-ice-servers",
                         "{\"ttl\":60,\"customIdentifier\":\"c1\"}", "k-acme");
  ASSERT_EQ(gen.result_int(), 201u) << gen.body();
  const std::string username = member(gen.body(), "username");
  ASSERT_EQ(username.substr(0, 16), "1700000060:acme:");
  EXPECT_EQ(username.substr(username.size() - 3), "~c1");
  EXPECT_EQ(member(gen.body(), "credential"), auth::rest_password("s-acme", username));

  // 204 and a JSON 200 on one keep-alive connection: the framing holds.
  beast::tcp_stream stream(ioc_);
  stream.connect(endpoint());
  beast::flat_buffer buf;
  // The username goes into the path as it is: nothing in it needs escaping.
  bhttp::request<bhttp::string_body> cf{
      bhttp::verb::post, "/v1/turn/keys/acme/credentials/" + username + "/revoke", 11};
  cf.set(bhttp::field::authorization, "Bearer k-acme");
  cf.prepare_payload();
  bhttp::write(stream, cf);
  client_response cf_res;
  bhttp::read(stream, buf, cf_res);
  EXPECT_EQ(cf_res.result_int(), 204u);
  EXPECT_TRUE(cf_res.body().empty());
  bhttp::request<bhttp::string_body> native{bhttp::verb::post, "/api/v1/credentials/revoke", 11};
  native.set(bhttp::field::authorization, "Bearer k-acme");
  native.body() = "{\"user\":\"bob\"}";
  native.prepare_payload();
  bhttp::write(stream, native);
  client_response native_res;
  bhttp::read(stream, buf, native_res);
  EXPECT_EQ(native_res.result_int(), 200u) << native_res.body();
  EXPECT_EQ(native_res.body(),
            "{\"tenant\":\"acme\",\"user\":\"bob\",\"until\":\"2023-11-14T23:13:20Z\"}\n");
  const std::lock_guard lock(m);
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0], (auth::revocation{"acme", username, "", 1700000060}));
  EXPECT_EQ(seen[1], (auth::revocation{"acme", "", "bob", 1700003600}));
}

TEST_F(http_server, keep_alive_serves_several_requests_on_one_connection) {
  start(base_config(&reg_, &ready_));
  beast::tcp_stream stream(ioc_);
  stream.connect(endpoint());
  beast::flat_buffer buf;
  for (int i = 0; i < 3; ++i) {
    bhttp::request<bhttp::string_body> req{bhttp::verb::get, "/healthz", 11};
    bhttp::write(stream, req);
    client_response res;
    bhttp::read(stream, buf, res);
    EXPECT_EQ(res.result_int(), 200u);
    EXPECT_TRUE(res.keep_alive());
  }
}

TEST_F(http_server, idle_connection_is_closed_after_the_read_timeout) {
  server_config cfg = base_config(&reg_, &ready_);
  cfg.limits.read_timeout = std::chrono::milliseconds(200);
  start(std::move(cfg));
  tcp::socket sock(ioc_);
  sock.connect(endpoint());
  const auto t0 = std::chrono::steady_clock::now();
  std::array<char, 16> b{};
  beast::error_code ec;
  sock.read_some(asio::buffer(b), ec);  // blocks until the server closes
  const auto elapsed = std::chrono::steady_clock::now() - t0;
  EXPECT_TRUE(ec == asio::error::eof || ec == asio::error::connection_reset) << ec.message();
  EXPECT_GE(elapsed, std::chrono::milliseconds(150));
  EXPECT_LT(elapsed, std::chrono::seconds(5));
}

TEST_F(http_server, connections_over_the_limit_are_closed) {
  server_config cfg = base_config(&reg_, &ready_);
  cfg.limits.max_connections = 2;
  start(std::move(cfg));
  tcp::socket a(ioc_), b(ioc_), c(ioc_);
  a.connect(endpoint());
  b.connect(endpoint());
  for (int i = 0; i < 200 && server_->connections() < 2; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_EQ(server_->connections(), 2u);
  c.connect(endpoint());
  std::array<char, 16> buf{};
  beast::error_code ec;
  c.read_some(asio::buffer(buf), ec);
  EXPECT_TRUE(ec == asio::error::eof || ec == asio::error::connection_reset) << ec.message();
  a.close();
  b.close();
  for (int i = 0; i < 200 && server_->connections() > 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(fetch(bhttp::verb::get, "/healthz").result_int(), 200u);
  const std::string text = reg_.render();
  EXPECT_NE(text.find("anyturn_http_connections_total{result=\"rejected_limit\"} 1\n"),
            std::string::npos) << text;
}

TEST_F(http_server, stop_closes_open_connections) {
  start(base_config(&reg_, &ready_));
  tcp::socket sock(ioc_);
  sock.connect(endpoint());
  for (int i = 0; i < 200 && server_->connections() < 1; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  server_->stop();
  std::array<char, 16> buf{};
  beast::error_code ec;
  sock.read_some(asio::buffer(buf), ec);
  EXPECT_TRUE(ec == asio::error::eof || ec == asio::error::connection_reset) << ec.message();
  server_->stop();  // idempotent
}

TEST(http_server_config, invalid_config_and_bind_failure_throw) {
  server_config cfg;
  cfg.threads = 0;
  EXPECT_THROW(server{cfg}, std::invalid_argument);
  server_config a;
  a.port = 0;
  server first(a);
  first.start();
  server_config b;
  b.port = first.port();
  server second(b);
  EXPECT_THROW(second.start(), std::system_error);
}

// ---- TLS, with a self-signed certificate made for the test ----

struct pem_files {
  std::string cert;
  std::string key;
};

pem_files make_self_signed() {
  EVP_PKEY* pkey = EVP_EC_gen("P-256");
  X509* x = X509_new();
  ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
  X509_gmtime_adj(X509_getm_notBefore(x), -60);
  X509_gmtime_adj(X509_getm_notAfter(x), 3600);
  X509_set_pubkey(x, pkey);
  X509_NAME* name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("127.0.0.1"), -1, -1, 0);
  X509_set_issuer_name(x, name);
  X509_sign(x, pkey, EVP_sha256());
  const std::string dir = ::testing::TempDir();
  pem_files files{dir + "anyturn_http_test_cert.pem", dir + "anyturn_http_test_key.pem"};
  FILE* f = std::fopen(files.cert.c_str(), "w");
  PEM_write_X509(f, x);
  std::fclose(f);
  f = std::fopen(files.key.c_str(), "w");
  PEM_write_PrivateKey(f, pkey, nullptr, nullptr, 0, nullptr, nullptr);
  std::fclose(f);
  X509_free(x);
  EVP_PKEY_free(pkey);
  return files;
}

TEST_F(http_server, serves_https_when_tls_is_configured) {
  const pem_files files = make_self_signed();
  server_config cfg = base_config(&reg_, &ready_);
  cfg.tls = tls_files{files.cert, files.key};
  start(std::move(cfg));

  asio::ssl::context ctx(asio::ssl::context::tls_client);
  ctx.load_verify_file(files.cert);
  ctx.set_verify_mode(asio::ssl::verify_peer);
  beast::ssl_stream<beast::tcp_stream> stream(ioc_, ctx);
  beast::get_lowest_layer(stream).connect(endpoint());
  stream.handshake(asio::ssl::stream_base::client);
  bhttp::request<bhttp::string_body> req{bhttp::verb::post, "/api/v1/ice-servers", 11};
  req.set(bhttp::field::authorization, "Bearer k-acme");
  req.body() = "{\"user\":\"tls-user\"}";
  req.prepare_payload();
  bhttp::write(stream, req);
  beast::flat_buffer buf;
  client_response res;
  bhttp::read(stream, buf, res);
  EXPECT_EQ(res.result_int(), 200u);
  const std::string username = member(res.body(), "username");
  EXPECT_EQ(member(res.body(), "credential"), auth::rest_password("s-acme", username));

  // Plain HTTP to the TLS port gets nothing useful back.
  tcp::socket plain(ioc_);
  plain.connect(endpoint());
  const std::string get = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
  asio::write(plain, asio::buffer(get));
  std::array<char, 64> b{};
  beast::error_code ec;
  const std::size_t n = plain.read_some(asio::buffer(b), ec);
  EXPECT_EQ(std::string(b.data(), n).find("200 OK"), std::string::npos);
  std::remove(files.cert.c_str());
  std::remove(files.key.c_str());
}

TEST(http_server_config, missing_tls_files_throw) {
  server_config cfg;
  cfg.tls = tls_files{"/nonexistent/cert.pem", "/nonexistent/key.pem"};
  EXPECT_THROW(server{cfg}, std::runtime_error);
}

// ---- out of file descriptors (EMFILE) ----

// Child-side helpers: no gtest in the forked child, only exit codes.
bool write_all(int fd, const void* data, std::size_t n) {
  const auto* p = static_cast<const char*>(data);
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w <= 0) return false;
    p += w;
    n -= static_cast<std::size_t>(w);
  }
  return true;
}
bool read_all(int fd, void* data, std::size_t n, int timeout_ms) {
  auto* p = static_cast<char*>(data);
  while (n > 0) {
    pollfd pfd{fd, POLLIN, 0};
    if (::poll(&pfd, 1, timeout_ms) != 1) return false;
    const ssize_t r = ::read(fd, p, n);
    if (r <= 0) return false;
    p += r;
    n -= static_cast<std::size_t>(r);
  }
  return true;
}

// user + system CPU seconds of a process, from /proc/<pid>/stat.
double cpu_seconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto close_paren = text.rfind(')');
  if (close_paren == std::string::npos) return -1;
  std::istringstream fields(text.substr(close_paren + 2));
  std::string f;
  double ticks = 0;
  for (int i = 3; i <= 15 && fields >> f; ++i) {
    if (i == 14 || i == 15) ticks += std::stod(f);  // utime, stime
  }
  return ticks / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

// One blocking HTTP/1.1 GET over a raw socket; the status code, 0 on no
// answer within 3 s, -1 when the connection was closed without one.
int raw_get(std::uint16_t port, const std::string& target, std::string* body = nullptr) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  timeval tv{3, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    ::close(fd);
    return 0;
  }
  const std::string req = "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  (void)::send(fd, req.data(), req.size(), MSG_NOSIGNAL);
  std::string got;
  std::array<char, 4096> buf{};
  bool timed_out = false;
  for (;;) {
    const ssize_t n = ::recv(fd, buf.data(), buf.size(), 0);
    if (n > 0) {
      got.append(buf.data(), static_cast<std::size_t>(n));
      continue;
    }
    timed_out = n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
    break;
  }
  ::close(fd);
  if (body != nullptr) *body = got;
  if (got.rfind("HTTP/1.1 ", 0) != 0 || got.size() < 12) return timed_out ? 0 : -1;
  return std::stoi(got.substr(9, 3));
}

// The server runs in a child process whose descriptor table is then filled
// up, so accept() fails with EMFILE. The acceptor must neither spin (the
// child's CPU time stays low) nor die, must shed queued connections with a
// 503 through its reserve descriptor, count what happened, and serve again
// once descriptors are free.
TEST(http_server_fd_limit, emfile_sheds_with_503_backs_off_and_recovers) {
#if defined(ANYTURN_SANITIZE_ADDRESS)
  // UBSan's vptr check opens a pipe to test whether memory is readable
  // (sanitizer_common's IsAccessibleMemoryRange); with every descriptor
  // taken, as here on purpose, that fails and it reports a false "invalid
  // vptr" inside Asio's scheduler. The normal suite runs this test.
  GTEST_SKIP() << "needs free descriptors under UBSan (false vptr report at EMFILE); runs in the normal build";
#endif
  int to_parent[2];
  int to_child[2];
  ASSERT_EQ(::pipe2(to_parent, O_CLOEXEC), 0);
  ASSERT_EQ(::pipe2(to_child, O_CLOEXEC), 0);
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::close(to_parent[0]);
    ::close(to_child[1]);
    rlimit rl{};
    ::getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = std::min<rlim_t>(rl.rlim_max, 256);
    if (::setrlimit(RLIMIT_NOFILE, &rl) != 0) ::_exit(10);
    int code = 0;
    {
      metrics::registry reg;
      std::atomic<bool> ready{true};
      server_config cfg = base_config(&reg, &ready);
      cfg.threads = 1;
      server srv(cfg);
      srv.start();
      const std::uint16_t port = srv.port();
      if (!write_all(to_parent[1], &port, sizeof port)) ::_exit(11);
      std::vector<int> hogs;
      for (int fd; (fd = ::dup(to_parent[1])) >= 0;) hogs.push_back(fd);
      if (errno != EMFILE) ::_exit(12);
      const char filled = 'F';
      if (!write_all(to_parent[1], &filled, 1)) ::_exit(13);
      char cmd = 0;
      if (!read_all(to_child[0], &cmd, 1, 20'000) || cmd != 'f') code = 14;
      for (int fd : hogs) ::close(fd);
      if (code == 0 && (!read_all(to_child[0], &cmd, 1, 20'000) || cmd != 'x')) code = 15;
      srv.stop();
    }
    ::_exit(code);
  }
  ::close(to_parent[1]);
  ::close(to_child[0]);
  auto finish_child = [&](char cmd) {
    (void)::write(to_child[1], &cmd, 1);
  };
  std::uint16_t port = 0;
  char filled = 0;
  const bool child_ready = read_all(to_parent[0], &port, sizeof port, 10'000) &&
                           read_all(to_parent[0], &filled, 1, 10'000) && filled == 'F';
  if (!child_ready) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    FAIL() << "the child server did not start or could not fill its descriptor table";
  }

  // The child has no descriptor left. The first connection is shed with a
  // 503 (the reserve descriptor), instead of staying queued for ever.
  const double cpu_before = cpu_seconds(pid);
  std::string body;
  EXPECT_EQ(raw_get(port, "/healthz", &body), 503) << body;
  EXPECT_NE(body.find("out of file descriptors"), std::string::npos) << body;
  // More connections queue up while the acceptor cannot take them: it must
  // wait between tries, not spin on the readable listen socket.
  std::vector<int> queued;
  for (int i = 0; i < 20; ++i) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && ::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0) queued.push_back(fd);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  const double cpu_used = cpu_seconds(pid) - cpu_before;
  EXPECT_GE(cpu_used, 0.0);
  EXPECT_LT(cpu_used, 0.3) << "the acceptor spins while out of descriptors (" << cpu_used
                           << " s of CPU in about 1 s)";
  int alive = 0;
  EXPECT_EQ(::waitpid(pid, &alive, WNOHANG), 0) << "the server died";
  for (int fd : queued) ::close(fd);

  // Descriptors free again: served normally, and the counters tell.
  finish_child('f');
  int status = 0;
  for (int i = 0; i < 50 && (status = raw_get(port, "/healthz")) != 200; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(status, 200) << "not served again once descriptors were free";
  std::string metrics;
  EXPECT_EQ(raw_get(port, "/metrics", &metrics), 200);
  auto value = [&](const std::string& series) -> double {
    const auto at = metrics.find("\n" + series + " ");
    if (at == std::string::npos) return -1;
    return std::stod(metrics.substr(at + series.size() + 2));
  };
  const double errors = value("anyturn_http_accept_errors_total");
  std::printf("[ info     ] out of descriptors for about 1 s: %.2f s of CPU, %.0f accept errors\n",
              cpu_used, errors);
  EXPECT_GE(errors, 1.0) << metrics;
  EXPECT_LT(errors, 60.0) << "about one try per 100 ms, not a busy loop";
  EXPECT_GE(value("anyturn_http_connections_total{result=\"rejected_fd_limit\"}"), 1.0) << metrics;

  finish_child('x');
  int child_status = 0;
  for (int i = 0; i < 100 && ::waitpid(pid, &child_status, WNOHANG) == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (::waitpid(pid, &child_status, WNOHANG) == 0) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &child_status, 0);
    ADD_FAILURE() << "the child server did not stop";
  }
  EXPECT_TRUE(WIFEXITED(child_status) && WEXITSTATUS(child_status) == 0)
      << "child status " << child_status;
  ::close(to_parent[0]);
  ::close(to_child[1]);
}

}  // namespace
}  // namespace anyturn::http
