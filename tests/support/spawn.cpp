#include "spawn.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <stdexcept>
#include <string_view>

extern char** environ;

namespace anyturn::itest {

pid_t spawn(std::vector<std::string> argv, int out_fd, const std::vector<std::string>* env) {
  std::vector<char*> cargv;
  for (auto& a : argv) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  std::vector<std::string> env_copy = env != nullptr ? *env : std::vector<std::string>{};
  std::vector<char*> cenv;
  for (auto& e : env_copy) cenv.push_back(e.data());
  cenv.push_back(nullptr);
  const std::string_view failed = "exec failed\n";

  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(126);  // the parent died before prctl
    const int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0) ::dup2(devnull, 0);
    ::dup2(out_fd, 1);
    ::dup2(out_fd, 2);
    if (env != nullptr) {
      ::execvpe(cargv[0], cargv.data(), cenv.data());
    } else {
      ::execvp(cargv[0], cargv.data());
    }
    (void)!::write(2, failed.data(), failed.size());
    ::_exit(127);
  }
  return pid;
}

std::vector<std::string> environment_with(const std::string& name, const std::string& value) {
  std::vector<std::string> out;
  const std::string prefix = name + "=";
  for (char** e = environ; *e != nullptr; ++e) {
    if (!std::string_view(*e).starts_with(prefix)) out.emplace_back(*e);
  }
  out.push_back(prefix + value);
  return out;
}

}  // namespace anyturn::itest
