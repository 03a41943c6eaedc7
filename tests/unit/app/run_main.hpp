// `anyturn ARGS...` run in-process through app::run_main, with its exit
// code and what it printed: for the tests of the subcommands.
#pragma once

#include <anyturn/app/app.hpp>

#include <sstream>
#include <string>
#include <vector>

namespace anyturn::app::test {

struct run_result {
  int code;
  std::string out;
  std::string err;
};

inline run_result run(std::vector<const char*> args) {
  args.insert(args.begin(), "anyturn");
  std::ostringstream out, err;
  const int code = run_main(static_cast<int>(args.size()), args.data(), out, err);
  return {code, out.str(), err.str()};
}

}  // namespace anyturn::app::test
