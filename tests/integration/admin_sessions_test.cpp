// The sessions admin API and `anyturn ctl` against the real daemon
// (docs/admin.md): allocations made with the C++ TURN client are listed,
// filtered and paged by GET /admin/sessions, ended by id and by user
// (reason "admin" in anyturn_allocations_closed_total), an unknown id is
// 404, a missing or wrong key 401; then the real `anyturn ctl` binary lists
// (table and --json) and disconnects.
#include "daemon.hpp"
#include "spawn.hpp"
#include "turn_client.hpp"

#include <boost/json.hpp>

#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <set>
#include <string>
#include <vector>

namespace anyturn::itest {
namespace {

const std::string realm = "anyturn.test";
const std::string admin_key = "sessions-test-admin-key-0123456789";

struct command_result {
  int exit_code = -1;
  std::string out;
};

// Runs the anyturn binary with `args` and ANYTURN_ADMIN_KEY=`env_key` (when
// not empty); stdout captured, stderr discarded, bounded by a 10 s alarm.
command_result run_anyturn(const std::vector<std::string>& args, const std::string& env_key = {}) {
  int pipefd[2];
  if (::pipe(pipefd) != 0) return {};
  std::vector<std::string> env = environment_with("ANYTURN_ADMIN_KEY", env_key);
  if (env_key.empty()) std::erase_if(env, [](const std::string& e) { return e.starts_with("ANYTURN_ADMIN_KEY="); });
  std::vector<char*> envp;
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::string bin = ANYTURN_BINARY;
  std::vector<std::string> copy = args;
  std::vector<char*> argv{bin.data()};
  for (auto& a : copy) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(pipefd[1], 1);
    ::close(pipefd[0]);
    ::close(pipefd[1]);
    std::FILE* null = std::freopen("/dev/null", "w", stderr);
    (void)null;
    ::alarm(10);
    ::execve(argv[0], argv.data(), envp.data());
    ::_exit(127);
  }
  ::close(pipefd[1]);
  command_result r;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(pipefd[0], buf, sizeof buf)) > 0) r.out.append(buf, static_cast<std::size_t>(n));
  ::close(pipefd[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

class AdminSessions : public ::testing::Test {
 protected:
  void TearDown() override {
    if (daemon_ && daemon_->running()) {
      const int rc = daemon_->stop();
      EXPECT_EQ(rc, 0) << "anyturn did not exit cleanly on SIGTERM\n" << daemon_->log();
    }
    if (HasFailure() && daemon_) std::cerr << daemon_->log() << '\n';
  }

  [[nodiscard]] ::testing::AssertionResult start(unsigned slot) {
    const port_range ports = relay_ports_for_slot(slot);
    std::vector<std::string> args = {"--relay-ip", "127.0.0.1", "--relay-ports", ports.flag(), "--realm", realm,
                                     "--allow-peer", "127.0.0.1/32", "--user", "alice:wonderland-secret",
                                     "--user", "bob:builder-secret", "--threads", "2", "--admin-key", admin_key};
    daemon_ = std::make_unique<daemon>(daemon::options{false, args});
    if (!daemon_->start()) return ::testing::AssertionFailure() << "daemon did not become ready\n" << daemon_->log();
    return ::testing::AssertionSuccess();
  }

  std::unique_ptr<turn_client> allocated(const std::string& user, const std::string& password) {
    auto c = std::make_unique<turn_client>(daemon_->address());
    c->set_credentials({user, password});
    auto r = c->allocate();
    EXPECT_TRUE(r && r->is_success()) << describe(r);
    return c;
  }

  std::optional<http_response> call(std::string_view method, std::string_view target,
                                    const std::string& key = admin_key) const {
    std::vector<std::string> headers;
    if (!key.empty()) headers.push_back("Authorization: Bearer " + key);
    return http_request(daemon_->http_port(), method, target, headers);
  }

  // GET target: the "sessions" array and the "next" cursor ("" for null).
  std::pair<boost::json::array, std::string> list(const std::string& target) const {
    const auto r = call("GET", target);
    EXPECT_TRUE(r && r->status == 200) << (r ? r->body : "no answer");
    if (!r || r->status != 200) return {};
    const auto v = boost::json::parse(r->body);
    const auto& obj = v.as_object();
    const auto& next = obj.at("next");
    return {obj.at("sessions").as_array(), next.is_string() ? std::string(next.as_string()) : std::string()};
  }

  double admin_closed() const {
    const auto r = http_request(daemon_->http_port(), "GET", "/metrics");
    if (!r) return -1;
    return metric_value(r->body, "anyturn_allocations_closed_total{reason=\"admin\"}").value_or(-1);
  }

  std::string url() const { return "http://127.0.0.1:" + std::to_string(daemon_->http_port()); }

  std::unique_ptr<daemon> daemon_;
};

TEST_F(AdminSessions, ListFilterPageAndEndByIdAndByUser) {
  ASSERT_TRUE(start(251));
  udp_socket peer(v4_loopback());
  std::vector<std::unique_ptr<turn_client>> alice;
  for (int i = 0; i < 3; ++i) alice.push_back(allocated("alice", "wonderland-secret"));
  auto bob = allocated("bob", "builder-secret");
  auto perm = alice[0]->create_permission({peer.local()});
  ASSERT_TRUE(perm && perm->is_success()) << describe(perm);
  alice[0]->send_indication(peer.local(), to_bytes("hello"));
  ASSERT_TRUE(peer.recv(response_timeout).has_value());

  // All four, with their fields.
  auto [all, next] = list("/admin/sessions");
  ASSERT_EQ(all.size(), 4u);
  EXPECT_EQ(next, "");
  std::set<std::string> ids;
  const boost::json::object* first = nullptr;
  for (const auto& s : all) {
    const auto& o = s.as_object();
    ids.insert(std::string(o.at("id").as_string()));
    EXPECT_EQ(o.at("transport").as_string(), "udp");
    EXPECT_EQ(o.at("relayed").as_array().size(), 1u);
    if (o.at("client").as_string() == alice[0]->local().to_string()) first = &o;
  }
  EXPECT_EQ(ids.size(), 4u);
  ASSERT_NE(first, nullptr) << "alice's first client is not listed";
  EXPECT_EQ(first->at("user").as_string(), "alice");
  ASSERT_EQ(first->at("permissions").as_array().size(), 1u);
  EXPECT_EQ(first->at("permissions").as_array()[0].as_object().at("ip").as_string(), "127.0.0.1");
  EXPECT_EQ(first->at("packets_to_peer").as_int64(), 1);
  EXPECT_EQ(first->at("bytes_to_peer").as_int64(), 5);
  EXPECT_GT(first->at("expires_in_s").as_int64(), 500);
  const std::string first_id(first->at("id").as_string());

  // Filters.
  EXPECT_EQ(list("/admin/sessions?user=alice").first.size(), 3u);
  EXPECT_EQ(list("/admin/sessions?user=bob").first.size(), 1u);
  const auto by_client = list("/admin/sessions?client=" + alice[1]->local().to_string()).first;
  ASSERT_EQ(by_client.size(), 1u);
  EXPECT_EQ(by_client[0].as_object().at("client").as_string(), alice[1]->local().to_string());
  EXPECT_EQ(list("/admin/sessions?client=127.0.0.1").first.size(), 4u);
  EXPECT_EQ(list("/admin/sessions?transport=tcp").first.size(), 0u);
  EXPECT_EQ(list("/admin/sessions?transport=udp&user=bob").first.size(), 1u);

  // Pages of one, across both workers, each session once.
  std::set<std::string> paged;
  std::string cursor;
  for (int pages = 0; pages < 10; ++pages) {
    auto [page, more] = list("/admin/sessions?limit=1" + (cursor.empty() ? "" : "&cursor=" + cursor));
    ASSERT_LE(page.size(), 1u);
    for (const auto& s : page) EXPECT_TRUE(paged.insert(std::string(s.as_object().at("id").as_string())).second);
    if (more.empty()) break;
    cursor = more;
  }
  EXPECT_EQ(paged, ids);

  // End one by id: the client's next Refresh finds no allocation.
  const auto ended = call("DELETE", "/admin/sessions/" + first_id);
  ASSERT_TRUE(ended && ended->status == 200) << (ended ? ended->body : "no answer");
  auto refresh = alice[0]->refresh(600);
  ASSERT_TRUE(refresh.has_value());
  EXPECT_EQ(refresh->error_code(), 437) << refresh->describe();
  EXPECT_EQ(list("/admin/sessions").first.size(), 3u);
  const auto again = call("DELETE", "/admin/sessions/" + first_id);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, 404) << again->body;
  const auto unknown = call("DELETE", "/admin/sessions/00ffffff00000001");
  ASSERT_TRUE(unknown);
  EXPECT_EQ(unknown->status, 404);
  const auto other_worker = call("DELETE", "/admin/sessions/7f00000000000001");
  ASSERT_TRUE(other_worker);
  EXPECT_EQ(other_worker->status, 404);

  // End every allocation of a user.
  const auto bulk = call("DELETE", "/admin/sessions?user=alice");
  ASSERT_TRUE(bulk && bulk->status == 200) << (bulk ? bulk->body : "no answer");
  EXPECT_NE(bulk->body.find("\"ended\":2"), std::string::npos) << bulk->body;
  const auto left = list("/admin/sessions").first;
  ASSERT_EQ(left.size(), 1u);
  EXPECT_EQ(left[0].as_object().at("user").as_string(), "bob");
  EXPECT_EQ(admin_closed(), 3.0);
  // bob still relays.
  auto bob_refresh = bob->refresh(600);
  ASSERT_TRUE(bob_refresh && bob_refresh->is_success()) << describe(bob_refresh);
}

TEST_F(AdminSessions, MissingOrWrongKeyIs401) {
  ASSERT_TRUE(start(252));
  auto c = allocated("alice", "wonderland-secret");
  const auto missing = call("GET", "/admin/sessions", "");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 401);
  const auto wrong = call("DELETE", "/admin/sessions?user=alice", "not-the-key");
  ASSERT_TRUE(wrong);
  EXPECT_EQ(wrong->status, 401);
  EXPECT_EQ(list("/admin/sessions").first.size(), 1u) << "a refused DELETE ended something";
  const auto m = http_request(daemon_->http_port(), "GET", "/metrics");
  ASSERT_TRUE(m);
  EXPECT_EQ(metric_value(m->body, "anyturn_http_admin_auth_failures_total{reason=\"missing\"}"), 1.0);
  EXPECT_EQ(metric_value(m->body, "anyturn_http_admin_auth_failures_total{reason=\"invalid\"}"), 1.0);
}

TEST_F(AdminSessions, CtlBinaryListsAndDisconnects) {
  ASSERT_TRUE(start(253));
  auto a = allocated("alice", "wonderland-secret");
  auto b = allocated("bob", "builder-secret");

  // The table: a header, one line per session, the count.
  const auto table = run_anyturn({"ctl", "--url", url(), "sessions"}, admin_key);
  ASSERT_EQ(table.exit_code, 0) << table.out;
  EXPECT_TRUE(table.out.starts_with("ID ")) << table.out;
  EXPECT_NE(table.out.find(" alice "), std::string::npos) << table.out;
  EXPECT_NE(table.out.find(" bob "), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("\n2 sessions\n"), std::string::npos) << table.out;
  const auto header_user = table.out.find("USER");
  const auto line2 = table.out.find('\n') + 1;
  EXPECT_EQ(table.out[line2 + header_user - 1], ' ') << table.out;
  EXPECT_NE(table.out[line2 + header_user], ' ') << table.out;

  // --json: the server's listing; take bob's id from it.
  const auto json = run_anyturn({"ctl", "--url", url(), "--key", admin_key, "--json", "sessions", "--user", "bob"});
  ASSERT_EQ(json.exit_code, 0) << json.out;
  const auto v = boost::json::parse(json.out);
  const auto& sessions = v.as_object().at("sessions").as_array();
  ASSERT_EQ(sessions.size(), 1u);
  const std::string bob_id(sessions[0].as_object().at("id").as_string());

  const auto gone = run_anyturn({"ctl", "--url", url(), "disconnect", bob_id}, admin_key);
  EXPECT_EQ(gone.exit_code, 0) << gone.out;
  auto refresh = b->refresh(600);
  ASSERT_TRUE(refresh.has_value());
  EXPECT_EQ(refresh->error_code(), 437);
  EXPECT_EQ(run_anyturn({"ctl", "--url", url(), "disconnect", bob_id}, admin_key).exit_code, 1);  // 404
  EXPECT_EQ(run_anyturn({"ctl", "--url", url(), "sessions"}).exit_code, 1);                        // 401
  EXPECT_EQ(run_anyturn({"ctl", "--url", url(), "--key", "wrong", "status"}).exit_code, 1);        // 401
  EXPECT_EQ(run_anyturn({"ctl", "--url", url(), "sessions", "--limit"}, admin_key).exit_code, 2);
  EXPECT_EQ(run_anyturn({"ctl", "bogus"}, admin_key).exit_code, 2);
  const auto status = run_anyturn({"ctl", "--url", url(), "status"}, admin_key);
  ASSERT_EQ(status.exit_code, 0) << status.out;
  EXPECT_NE(status.out.find("allocations:"), std::string::npos) << status.out;
  EXPECT_EQ(admin_closed(), 1.0);
}

}  // namespace
}  // namespace anyturn::itest
