// src/turn/reload.cpp: a worker switches to the snapshot published on the
// config board at its next tick; removed credentials end their allocations
// (reload.revoke_removed), newly denied peers lose their permissions and
// channels at once, and quotas are released as they were taken.
#include "turn_core_fixture.hpp"

#include <anyturn/turn/config_board.hpp>

namespace anyturn::test {
namespace {

class Reload : public WorkerCore {
 protected:
  // The board the app would build, with the fixture's snapshot as generation 1.
  void with_board() {
    board_ = std::make_shared<turn::config_board>(shared_, 1);
    shared_->config = board_;
  }
  // A copy of the snapshot in force, to change and publish.
  std::shared_ptr<shared_state> next() const { return std::make_shared<shared_state>(*shared_); }

  std::shared_ptr<turn::config_board> board_;
};

std::shared_ptr<const auth::credential_store> only_bob() {
  std::vector<auth::static_user> users;
  users.push_back({"bob", std::string("builder"), std::nullopt});
  return std::make_shared<auth::credential_store>(realm, users, std::vector<std::string>{rest_secret});
}

TEST_F(Reload, RemovedUserEndsOnTheNextTickOthersStay) {
  start();
  with_board();
  const auto a = client("203.0.113.10:40000");
  const auto b = client("203.0.113.11:40000");
  allocate(a, "alice", "wonderland");
  allocate(b, "bob", "builder");
  ASSERT_EQ(core_->allocation_count(), 2u);

  auto s = next();
  s->credentials = only_bob();
  EXPECT_EQ(board_->publish(s), 2u);
  EXPECT_EQ(board_->switched(), 1u) << "nothing switches before the tick";
  EXPECT_EQ(core_->allocation_count(), 2u);
  advance(1);
  EXPECT_EQ(core_->allocation_count(), 1u);
  EXPECT_EQ(counters_.closed_reloaded.load(), 1u);
  EXPECT_EQ(board_->switched(), 2u);
  EXPECT_EQ(&core_->shared(), s.get());
  // alice is unknown from now on.
  learn_nonce(client("203.0.113.12:40000"));
  auto r = send(client("203.0.113.12:40000"),
                build(stun::method::allocate, new_tid(), requested_udp, "alice", "wonderland"));
  EXPECT_EQ(error_of(r), 401);
}

TEST_F(Reload, ChangedPasswordEndsTheAllocationTooButAnUnchangedStoreDoesNot) {
  start();
  with_board();
  allocate(client(), "alice", "wonderland");
  auto same = next();  // same credential store object: nothing to check
  board_->publish(same);
  advance(1);
  EXPECT_EQ(core_->allocation_count(), 1u);
  auto s = next();
  std::vector<auth::static_user> users;
  users.push_back({"alice", std::string("new-password"), std::nullopt});
  s->credentials = std::make_shared<auth::credential_store>(realm, users, std::vector<std::string>{});
  board_->publish(s);
  advance(1);
  EXPECT_EQ(core_->allocation_count(), 0u);
  EXPECT_EQ(counters_.closed_reloaded.load(), 1u);
}

TEST_F(Reload, RevokeRemovedFalseKeepsTheAllocation) {
  start();
  with_board();
  allocate(client(), "alice", "wonderland");
  auto s = next();
  s->credentials = only_bob();
  s->revoke_removed = false;
  board_->publish(s);
  advance(1);
  EXPECT_EQ(core_->allocation_count(), 1u);
  EXPECT_EQ(counters_.closed_reloaded.load(), 0u);
  EXPECT_EQ(board_->switched(), 2u);
}

TEST_F(Reload, RemovedRestSecretEndsItsAllocations) {
  start();
  with_board();
  const std::string username = "1900000000:carol";
  const std::string password = auth::rest_password(rest_secret, username);
  allocate(client(), username.c_str(), password.c_str());
  ASSERT_EQ(core_->allocation_count(), 1u);
  auto s = next();
  std::vector<auth::static_user> users;
  users.push_back({"alice", std::string("wonderland"), std::nullopt});
  s->credentials = std::make_shared<auth::credential_store>(
      realm, users, std::vector<std::string>{"another-rest-secret"});
  board_->publish(s);
  advance(1);
  EXPECT_EQ(core_->allocation_count(), 0u);
  EXPECT_EQ(counters_.closed_reloaded.load(), 1u);
}

TEST_F(Reload, NewlyDeniedPeerLosesPermissionAndChannelAtTheSwitch) {
  start();
  with_board();
  const auto c = client();
  allocate(c);
  ASSERT_EQ(permit(c, peer_).cls(), message_class::success_response);
  ASSERT_EQ(bind_channel(c, 0x4001, peer_).cls(), message_class::success_response);
  io_.to_peer.clear();
  core_->on_client_packet(c, channel_data(0x4001, "before"), now_);
  ASSERT_EQ(io_.to_peer.size(), 1u);

  auto s = next();
  s->peers = std::make_shared<auth::peer_policy>(std::vector<auth::cidr>{},
                                                 std::vector<auth::cidr>{*auth::cidr::parse("93.184.216.0/24")});
  board_->publish(s);
  advance(1);
  EXPECT_EQ(core_->allocation_count(), 1u) << "the allocation itself stays";
  EXPECT_EQ(counters_.reload_peers_removed.load(), 2u);
  io_.to_peer.clear();
  core_->on_client_packet(c, channel_data(0x4001, "after"), now_);
  EXPECT_TRUE(io_.to_peer.empty()) << "ChannelData still reached a denied peer";
  EXPECT_EQ(error_of(permit(c, peer_)), 403);
}

TEST_F(Reload, QuotaIsReleasedUnderTheLimitItWasTakenWith) {
  options o;
  o.per_user = 1;
  start(o);
  with_board();
  const auto quotas = shared_->user_quotas;
  allocate(client(), "alice", "wonderland");
  ASSERT_EQ(quotas->count("alice"), 1u);
  auto s = next();
  s->max_allocations_per_user = 0;  // the limit is lifted by the reload
  board_->publish(s);
  advance(1);
  // A second allocation is not counted (no limit now) ...
  allocate(client("203.0.113.20:40000"), "alice", "wonderland");
  EXPECT_EQ(quotas->count("alice"), 1u);
  // ... and the first one gives back exactly what it took.
  const auto c = client();
  learn_nonce(c);  // nonces are bound to the client's address
  auto r = send(c, build(stun::method::refresh, new_tid(),
                         [](stun::message_builder& b) { b.add_u32(attr::lifetime, 0); }, "alice",
                         "wonderland"));
  EXPECT_EQ(r.cls(), message_class::success_response) << error_of(r);
  EXPECT_EQ(quotas->count("alice"), 0u);
}

TEST(ConfigBoard, GenerationsAndSwitchedWorkers) {
  auto first = std::make_shared<const shared_state>();
  turn::config_board board(first, 2);
  EXPECT_EQ(board.generation(), 1u);
  EXPECT_EQ(board.snapshot().state, first);
  auto second = std::make_shared<const shared_state>();
  EXPECT_EQ(board.publish(second), 2u);
  EXPECT_EQ(board.snapshot().state, second);
  EXPECT_EQ(board.snapshot().generation, 2u);
  board.acknowledge(0, 2);
  EXPECT_EQ(board.switched(), 1u) << "worker 1 still runs generation 1";
  board.acknowledge(1, 2);
  EXPECT_EQ(board.switched(), 2u);
  board.acknowledge(7, 9);  // no such worker: ignored
  EXPECT_EQ(board.switched(), 2u);
}

}  // namespace
}  // namespace anyturn::test
