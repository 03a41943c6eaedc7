// What the fleet keeps in Redis (src/fleet/records.cpp): keys, JSON both
// ways, the refusal of malformed records, the choice of a drain target.
#include <anyturn/fleet/records.hpp>

#include <gtest/gtest.h>

namespace anyturn::fleet {
namespace {

stun::endpoint ip(const char* s) { return *stun::endpoint::parse(s, true); }

node_record node(std::string id, double load, std::uint64_t allocations = 0, bool draining = false) {
  node_record n;
  n.id = std::move(id);
  n.address.v4 = ip("192.0.2.1");
  n.address.udp_port = 3478;
  n.load = load;
  n.allocations = allocations;
  n.draining = draining;
  return n;
}

TEST(records, KeysAndChannels) {
  EXPECT_EQ(node_key("n1"), "anyturn:node:n1");
  EXPECT_EQ(command_channel("n1"), "anyturn:command:n1");
  EXPECT_EQ(quota_key(""), "anyturn:quota:default");
  EXPECT_EQ(quota_key("acme"), "anyturn:quota:acme");
  EXPECT_EQ(revocation_key({"", "1700000000:alice", "", 1}), "anyturn:revoked:default:username:1700000000:alice");
  EXPECT_EQ(revocation_key({"acme", "", "bob", 1}), "anyturn:revoked:acme:user:bob");
}

TEST(records, NodeRecordRoundTrips) {
  node_record n;
  n.id = "turn-1.fra";
  n.address.v4 = ip("198.51.100.7");
  n.address.v6 = ip("2001:db8::7");
  n.address.udp_port = 3478;
  n.address.tcp_port = 3478;
  n.address.tls_port = 5349;
  n.allocations = 1234;
  n.load = 0.25;
  n.draining = true;
  n.updated_ms = 1'700'000'000'123;
  auto back = node_from_json(to_json(n));
  ASSERT_TRUE(back);
  EXPECT_EQ(*back, n);
}

TEST(records, RevocationRoundTrips) {
  const auth::revocation a{"acme", "1700003600:acme:alice", "", 1700003600};
  EXPECT_EQ(revocation_from_json(to_json(a)), a);
  const auth::revocation b{"", "", "bob", 1700086400};
  EXPECT_EQ(revocation_from_json(to_json(b)), b);
}

TEST(records, MalformedRecordsAreRefused) {
  EXPECT_FALSE(node_from_json(""));
  EXPECT_FALSE(node_from_json("not json"));
  EXPECT_FALSE(node_from_json("[1]"));
  EXPECT_FALSE(node_from_json(R"({"udp":3478})")) << "no id";
  EXPECT_FALSE(node_from_json(R"({"id":"a","v4":"2001:db8::1"})")) << "wrong family";
  EXPECT_FALSE(node_from_json(R"({"id":"a","v4":"nope"})"));
  EXPECT_FALSE(node_from_json(R"({"id":"a","udp":70000})"));
  EXPECT_FALSE(node_from_json(R"({"id":"a","udp":-1})"));
  EXPECT_FALSE(node_from_json(R"({"id":"a","load":"high"})"));
  EXPECT_FALSE(node_from_json(R"({"id":"a","draining":1})"));
  EXPECT_FALSE(node_from_json(R"({"id":")" + std::string(5000, 'x') + "\"}")) << "too long";
  EXPECT_FALSE(revocation_from_json(R"({"tenant":"","until":5})")) << "no target";
  EXPECT_FALSE(revocation_from_json(R"({"tenant":"","username":"a","user":"b","until":5})")) << "two targets";
  EXPECT_FALSE(revocation_from_json(R"({"tenant":"","username":"a","until":"soon"})"));
  EXPECT_FALSE(revocation_from_json(R"({"tenant":7,"username":"a","until":5})"));
}

TEST(records, DrainTargetIsTheLeastLoadedHealthyOtherNode) {
  std::vector<node_record> nodes{node("self", 0.0), node("busy", 0.9), node("idle-draining", 0.1, 0, true),
                                 node("b", 0.3, 10), node("a", 0.3, 10), node("c", 0.3, 5)};
  auto t = choose_drain_target(nodes, "self");
  ASSERT_TRUE(t);
  // c: same load as a and b, fewer allocations.
  nodes[5].address.v4 = ip("192.0.2.55");
  EXPECT_EQ(choose_drain_target(nodes, "self")->v4, ip("192.0.2.55"));
  nodes[5].load = 0.5;
  nodes[4].address.v4 = ip("192.0.2.44");
  EXPECT_EQ(choose_drain_target(nodes, "self")->v4, ip("192.0.2.44")) << "a before b: same load and count";
}

TEST(records, NoDrainTargetWithoutAnotherServingNode) {
  std::vector<node_record> nodes{node("self", 0.0), node("draining", 0.1, 0, true)};
  EXPECT_FALSE(choose_drain_target(nodes, "self"));
  auto no_port = node("noport", 0.0);
  no_port.address.udp_port = 0;
  auto no_ip = node("noip", 0.0);
  no_ip.address.v4.reset();
  nodes.push_back(no_port);
  nodes.push_back(no_ip);
  EXPECT_FALSE(choose_drain_target(nodes, "self"));
  EXPECT_FALSE(choose_drain_target({}, "self"));
}

}  // namespace
}  // namespace anyturn::fleet
