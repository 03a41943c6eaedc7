// A network namespace that a test creates, enters (in the calling thread)
// and deletes: veth pairs with addresses and static neighbour entries, so
// that the program's FIB lookups succeed in BPF_PROG_TEST_RUN.
#pragma once

#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace anyturn::xdp::test {

// A sysctl of the calling thread's network namespace ("net/ipv4/conf/lo/
// forwarding"), as its file reads without the newline; "" when absent.
inline std::string read_sysctl(const std::string& key) {
  std::string value;
  if (FILE* f = std::fopen(("/proc/sys/" + key).c_str(), "r")) {
    char buf[64] = {};
    if (std::fgets(buf, sizeof(buf), f) != nullptr) value = buf;
    std::fclose(f);
  }
  while (!value.empty() && (value.back() == '\n' || value.back() == ' ')) value.pop_back();
  return value;
}

class scoped_netns {
 public:
  // Runs each command with `{ns}` replaced by the namespace's name; ok()
  // is false when one fails (the test then skips with the command).
  // `extra`: more namespaces ("{ns}-x" names) the commands create; they
  // are deleted with this one.
  explicit scoped_netns(const std::vector<std::string>& setup, std::vector<std::string> extra = {})
      : name_("anyturn-xdp-ut-" + std::to_string(getpid()) + "-" + std::to_string(next_id())) {
    run("ip netns del " + name_ + " 2>/dev/null");
    for (auto& e : extra) {
      e = expand(e);
      run("ip netns del " + e + " 2>/dev/null");
    }
    extra_ = std::move(extra);
    if (!run("ip netns add " + name_)) return;
    created_ = true;
    for (const auto& cmd : setup) {
      const std::string c = expand(cmd);
      if (!run(c + " >/dev/null 2>&1")) {
        failed_ = c;
        return;
      }
    }
    original_ = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    const int fd = open(("/run/netns/" + name_).c_str(), O_RDONLY | O_CLOEXEC);
    if (original_ < 0 || fd < 0 || setns(fd, CLONE_NEWNET) != 0) {
      failed_ = "setns " + name_;
      if (fd >= 0) close(fd);
      return;
    }
    close(fd);
    entered_ = true;
  }
  ~scoped_netns() {
    if (entered_) setns(original_, CLONE_NEWNET);
    if (original_ >= 0) close(original_);
    if (created_) run("ip netns del " + name_);
    for (const auto& e : extra_) run("ip netns del " + e + " 2>/dev/null");
  }
  scoped_netns(const scoped_netns&) = delete;
  scoped_netns& operator=(const scoped_netns&) = delete;

  [[nodiscard]] bool ok() const { return entered_; }
  [[nodiscard]] const std::string& failed_command() const { return failed_; }
  [[nodiscard]] const std::string& name() const { return name_; }

  // Runs `fn` with the calling thread in namespace `ns` (sockets it opens
  // stay there), then returns to the namespace it was in.
  template <typename F>
  static auto in(const std::string& ns, F fn) {
    const int here = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    const int there = open(("/run/netns/" + ns).c_str(), O_RDONLY | O_CLOEXEC);
    if (there >= 0) setns(there, CLONE_NEWNET);
    auto result = fn();
    if (here >= 0) setns(here, CLONE_NEWNET);
    if (here >= 0) close(here);
    if (there >= 0) close(there);
    return result;
  }
  [[nodiscard]] std::string expand(std::string c) const {
    for (auto at = c.find("{ns}"); at != std::string::npos; at = c.find("{ns}")) c.replace(at, 4, name_);
    return c;
  }

 private:
  static bool run(const std::string& cmd) { return std::system(cmd.c_str()) == 0; }
  static int next_id() {
    static int id = 0;
    return ++id;
  }

  std::string name_;
  std::string failed_;
  std::vector<std::string> extra_;
  int original_ = -1;
  bool created_ = false;
  bool entered_ = false;
};

}  // namespace anyturn::xdp::test
