// The /test self-test page against the real daemon (http.test_page,
// docs/probe.md "## /test"): off by default (404); on, the page comes with its
// Content-Security-Policy, POST /admin/test-link makes a one-time link, and
// the credentials POST /test/credentials returns for it allocate on a node
// that has static users only (signed with the generated REST secret). The
// browser half is tests/interop/browser/test_page_test.mjs.
#include "daemon.hpp"
#include "turn_client.hpp"

#include <gtest/gtest.h>

#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#ifndef ANYTURN_BINARY
#error "ANYTURN_BINARY must name the anyturn executable"
#endif

namespace anyturn::itest {
namespace {

const std::string admin_key = "test-page-admin-key-0123456789";

std::optional<std::string> member(const std::string& body, const std::string& key) {
  const std::string needle = "\"" + key + "\":\"";
  const auto at = body.find(needle);
  if (at == std::string::npos) return std::nullopt;
  const auto begin = at + needle.size();
  return body.substr(begin, body.find('"', begin) - begin);
}

class TestPage : public ::testing::Test {
 protected:
  void TearDown() override {
    if (daemon_ && daemon_->running()) {
      EXPECT_EQ(daemon_->stop(), 0) << "anyturn did not exit cleanly on SIGTERM\n" << daemon_->log();
    }
    if (HasFailure() && daemon_) std::cerr << daemon_->log() << '\n';
  }

  [[nodiscard]] ::testing::AssertionResult start(std::vector<std::string> extra) {
    std::vector<std::string> args = {"--relay-ip", "127.0.0.1", "--relay-ports", relay_ports_for_slot(150).flag(),
                                     "--realm", "anyturn.test", "--user", "alice:wonderland-secret",
                                     "--threads", "1", "--admin-key", admin_key};
    args.insert(args.end(), extra.begin(), extra.end());
    daemon_ = std::make_unique<daemon>(daemon::options{false, args});
    if (!daemon_->start()) return ::testing::AssertionFailure() << "daemon not ready\n" << daemon_->log();
    return ::testing::AssertionSuccess();
  }

  std::optional<http_response> post(const std::string& target, const std::string& bearer) {
    return http_request(daemon_->http_port(), "POST", target, {"Authorization: Bearer " + bearer});
  }

  std::unique_ptr<daemon> daemon_;
};

TEST_F(TestPage, OffByDefault) {
  ASSERT_TRUE(start({}));
  const auto page = http_request(daemon_->http_port(), "GET", "/test");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 404);
  const auto link = post("/admin/test-link", admin_key);
  ASSERT_TRUE(link);
  EXPECT_EQ(link->status, 404);
}

TEST_F(TestPage, OneTimeLinkGivesCredentialsTheNodeAccepts) {
  ASSERT_TRUE(start({"--test-page"}));
  const auto page = http_request(daemon_->http_port(), "GET", "/test");
  ASSERT_TRUE(page);
  ASSERT_EQ(page->status, 200);
  EXPECT_NE(page->headers.find("content-security-policy: default-src 'none'; script-src 'sha256-"),
            std::string::npos)
      << page->headers;
  EXPECT_NE(page->headers.find("referrer-policy: no-referrer"), std::string::npos) << page->headers;
  EXPECT_NE(page->body.find("id=\"result-tls\""), std::string::npos);

  EXPECT_EQ(post("/admin/test-link", "wrong-admin-key-0123456789")->status, 401);
  const auto link = post("/admin/test-link", admin_key);
  ASSERT_TRUE(link);
  ASSERT_EQ(link->status, 201) << link->body;
  const auto token = member(link->body, "token");
  ASSERT_TRUE(token && token->size() == 64) << link->body;
  // The base is the request's Host header (this client sends "127.0.0.1").
  EXPECT_EQ(member(link->body, "url"), "http://127.0.0.1/test#token=" + *token);

  const auto creds = post("/test/credentials", *token);
  ASSERT_TRUE(creds);
  ASSERT_EQ(creds->status, 200) << creds->body;
  const auto username = member(creds->body, "username");
  const auto credential = member(creds->body, "credential");
  ASSERT_TRUE(username && credential) << creds->body;
  EXPECT_NE(username->find(":selftest-"), std::string::npos) << *username;
  // The URLs derived from the listener are handed out with them.
  EXPECT_NE(creds->body.find("turn:127.0.0.1:" + std::to_string(daemon_->address().port) + "?transport=udp"),
            std::string::npos)
      << creds->body;

  // The node has only a static user, yet accepts them: they are signed with
  // the REST secret it generated in its state directory.
  turn_client client(daemon_->address());
  client.set_credentials({*username, *credential});
  const auto allocated = client.allocate();
  ASSERT_TRUE(allocated && allocated->is_success()) << describe(allocated);

  const auto again = post("/test/credentials", *token);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, 401);
  EXPECT_NE(again->body.find("already used"), std::string::npos) << again->body;

  const auto metrics = http_request(daemon_->http_port(), "GET", "/metrics");
  ASSERT_TRUE(metrics && metrics->status == 200);
  EXPECT_EQ(metric_value(metrics->body, "anyturn_http_test_links_total{result=\"issued\"}"), 1.0);
  EXPECT_EQ(metric_value(metrics->body, "anyturn_http_test_links_total{result=\"redeemed\"}"), 1.0);
  EXPECT_EQ(metric_value(metrics->body, "anyturn_http_test_links_total{result=\"reused\"}"), 1.0);
  EXPECT_EQ(metric_value(metrics->body, "anyturn_http_requests_total{route=\"/test\",code=\"200\"}"), 1.0);
}

}  // namespace
}  // namespace anyturn::itest
