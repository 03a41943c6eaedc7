// A network namespace that a test creates, enters (in the calling thread)
// and deletes: veth pairs with addresses and static neighbour entries, so
// that the program's FIB lookups succeed in BPF_PROG_TEST_RUN.
#pragma once

#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <vector>

namespace anyturn::xdp::test {

class scoped_netns {
 public:
  // Runs each command with `{ns}` replaced by the namespace's name; ok()
  // is false when one fails (the test then skips with the command).
  explicit scoped_netns(const std::vector<std::string>& setup)
      : name_("anyturn-xdp-ut-" + std::to_string(getpid())) {
    run("ip netns del " + name_ + " 2>/dev/null");
    if (!run("ip netns add " + name_)) return;
    created_ = true;
    for (const auto& cmd : setup) {
      std::string c = cmd;
      for (auto at = c.find("{ns}"); at != std::string::npos; at = c.find("{ns}"))
        c.replace(at, 4, name_);
      if (!run(c + " >/dev/null 2>&1")) {
        failed_ = c;
        return;
      }
    }
    original_ = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
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
  }
  scoped_netns(const scoped_netns&) = delete;
  scoped_netns& operator=(const scoped_netns&) = delete;

  [[nodiscard]] bool ok() const { return entered_; }
  [[nodiscard]] const std::string& failed_command() const { return failed_; }
  [[nodiscard]] const std::string& name() const { return name_; }

 private:
  static bool run(const std::string& cmd) { return std::system(cmd.c_str()) == 0; }

  std::string name_;
  std::string failed_;
  int original_ = -1;
  bool created_ = false;
  bool entered_ = false;
};

}  // namespace anyturn::xdp::test
