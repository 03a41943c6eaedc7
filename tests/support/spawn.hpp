// Starts a child process for a test: the daemon, or a real tool such as
// turnutils_uclient.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace anyturn::itest {

// Forks and execs `argv` (argv[0] looked up in PATH unless it has a slash),
// with stdin on /dev/null and stdout and stderr on `out_fd`, which the caller
// still owns and closes. The child dies with the test process
// (PR_SET_PDEATHSIG). `env`: the child's environment ("NAME=value"
// entries); null: this process's. Everything is built before the fork, so
// the child only calls async-signal-safe functions. Returns the child's
// PID; throws when fork fails. A failed exec exits the child with 127.
pid_t spawn(std::vector<std::string> argv, int out_fd, const std::vector<std::string>* env = nullptr);

// This process's environment with `name` set to `value` (replacing it).
std::vector<std::string> environment_with(const std::string& name, const std::string& value);

}  // namespace anyturn::itest
