// The loader: clear errors, attach through BPF links, detach on destruction.
#include <anyturn/xdp/offload.hpp>

#include "netns.hpp"

#include <bpf/libbpf.h>
#include <linux/capability.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/if_link.h>
#include <net/if.h>

#include <gtest/gtest.h>

namespace anyturn::xdp {
namespace {

// The program's id on `ifindex` (0: none), as `bpftool net` shows it.
std::uint32_t attached_program(int ifindex) {
  LIBBPF_OPTS(bpf_xdp_query_opts, q);
  if (bpf_xdp_query(ifindex, 0, &q) != 0) return 0;
  return q.prog_id != 0 ? q.prog_id : (q.drv_prog_id != 0 ? q.drv_prog_id : q.skb_prog_id);
}

TEST(offload, names_the_labels) {
  EXPECT_STREQ(to_string(attach_mode::automatic), "auto");
  EXPECT_STREQ(to_string(direction::to_client), "to_client");
  EXPECT_STREQ(to_string(action::redirect), "redirect");
  EXPECT_STREQ(to_string(fallback::zero_checksum), "zero_checksum");
  EXPECT_STRNE(help_of(fallback::map_full), "?");
}

TEST(offload, opening_on_a_missing_interface_fails_with_its_name) {
  std::string why;
  if (!can_load(why)) GTEST_SKIP() << why;
  options opt;
  opt.interfaces = {"anyturn-nope9"};
  std::string error;
  EXPECT_EQ(offload::open(opt, error), nullptr);
  EXPECT_EQ(error, "xdp: cannot attach to anyturn-nope9: No such device");
}

// In a child without any capability: can_load says no, and open names the
// capabilities it needs.
TEST(offload, without_capabilities_says_what_it_needs) {
  std::string why;
  if (!can_load(why)) GTEST_SKIP() << why;
  int out[2];
  ASSERT_EQ(pipe(out), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    close(out[0]);
    __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct none[2] = {};
    if (syscall(SYS_capset, &header, none) != 0) _exit(2);
    std::string text;
    if (can_load(text)) _exit(3);
    options opt;
    opt.interfaces = {"lo"};
    std::string error;
    if (offload::open(opt, error) != nullptr) _exit(4);
    text += "\n" + error;
    if (write(out[1], text.data(), text.size()) != static_cast<ssize_t>(text.size())) _exit(5);
    _exit(0);
  }
  close(out[1]);
  std::string text;
  char buf[512];
  for (ssize_t n; (n = read(out[0], buf, sizeof(buf))) > 0;) text.append(buf, static_cast<std::size_t>(n));
  close(out[0]);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 0);
  EXPECT_EQ(text,
            "cannot load an XDP program: Operation not permitted (needs CAP_BPF and CAP_NET_ADMIN)\n"
            "xdp: cannot load the BPF program: Operation not permitted (needs CAP_BPF and CAP_NET_ADMIN)");
}

class attach_fixture : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    if (!can_load(why)) GTEST_SKIP() << why;
    ns_ = std::make_unique<test::scoped_netns>(std::vector<std::string>{
        "ip -n {ns} link add xt0 type veth peer name xt1",
        "ip -n {ns} link set xt0 up", "ip -n {ns} link set xt1 up",
        "ip -n {ns} link set lo up"});
    if (!ns_->ok()) GTEST_SKIP() << "cannot set up the test namespace: " << ns_->failed_command();
  }
  std::unique_ptr<test::scoped_netns> ns_;
};

TEST_F(attach_fixture, attaches_natively_to_a_veth_and_detaches_on_destruction) {
  const int ifindex = static_cast<int>(if_nametoindex("xt0"));
  ASSERT_GT(ifindex, 0);
  options opt;
  opt.interfaces = {"xt0"};
  opt.mode = attach_mode::native;
  std::string error;
  auto off = offload::open(opt, error);
  ASSERT_NE(off, nullptr) << error;
  ASSERT_EQ(off->interfaces().size(), 1u);
  EXPECT_EQ(off->interfaces()[0].name, "xt0");
  EXPECT_EQ(off->interfaces()[0].ifindex, ifindex);
  EXPECT_EQ(off->interfaces()[0].mode, attach_mode::native);
  EXPECT_NE(attached_program(ifindex), 0u);
  off.reset();
  EXPECT_EQ(attached_program(ifindex), 0u) << "the program stays attached after ~offload";
}

TEST_F(attach_fixture, generic_mode_attaches_and_a_second_offload_is_refused) {
  options opt;
  opt.interfaces = {"xt1"};
  opt.mode = attach_mode::generic;
  std::string error;
  auto off = offload::open(opt, error);
  ASSERT_NE(off, nullptr) << error;
  EXPECT_EQ(off->interfaces()[0].mode, attach_mode::generic);
  auto second = offload::open(opt, error);
  EXPECT_EQ(second, nullptr);
  EXPECT_EQ(error, "xdp: cannot attach to xt1: Device or resource busy (another XDP program is attached)");
  off.reset();
  EXPECT_EQ(attached_program(static_cast<int>(if_nametoindex("xt1"))), 0u);
}

TEST_F(attach_fixture, native_mode_names_a_driver_without_native_xdp_and_auto_falls_back) {
  options opt;
  opt.interfaces = {"lo"};  // the loopback driver has no native XDP
  opt.mode = attach_mode::native;
  std::string error;
  EXPECT_EQ(offload::open(opt, error), nullptr);
  EXPECT_EQ(error, "xdp: cannot attach to lo: driver has no native XDP (use xdp.mode generic or auto)");
  opt.mode = attach_mode::automatic;
  auto off = offload::open(opt, error);
  ASSERT_NE(off, nullptr) << error;
  EXPECT_EQ(off->interfaces()[0].mode, attach_mode::generic);
  EXPECT_NE(attached_program(static_cast<int>(if_nametoindex("lo"))), 0u);
}

TEST_F(attach_fixture, xdp_pass_attaches_with_ip_link) {
  const std::string cmd = "ip -n " + ns_->name() + " link set dev xt1 xdp obj " +
                          ANYTURN_XDP_PASS_OBJECT + " sec xdp >/dev/null 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  EXPECT_NE(attached_program(static_cast<int>(if_nametoindex("xt1"))), 0u);
  ASSERT_EQ(std::system(("ip -n " + ns_->name() + " link set dev xt1 xdp off").c_str()), 0);
  EXPECT_EQ(attached_program(static_cast<int>(if_nametoindex("xt1"))), 0u);
}

}  // namespace
}  // namespace anyturn::xdp
