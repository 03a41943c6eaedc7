#include <anyturn/app/app.hpp>
#include <anyturn/app/import_coturn_cmd.hpp>

#include <gtest/gtest.h>

#include "run_main.hpp"

#include <fstream>
#include <sstream>
#include <unistd.h>
#include <vector>

namespace anyturn::app {
namespace {

using test::run;
using result = test::run_result;

std::string write_temp(const std::string& name, const std::string& text) {
  const std::string path = ::testing::TempDir() + "import_coturn_cmd_test_" + std::to_string(::getpid()) + name;
  std::ofstream(path) << text;
  return path;
}

TEST(import_coturn_cmd, prints_yaml_that_check_config_accepts) {
  const auto conf = write_temp(".conf",
                               "realm=example.net\nuser=alice:Alice-static-pw-51203\nmobility\n"
                               "bogus-option\n");
  const auto r = run({"import-coturn", conf.c_str()});
  EXPECT_EQ(r.code, import_ok) << r.err;
  EXPECT_NE(r.out.find("realm: \"example.net\""), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("# line 3: mobility"), std::string::npos) << r.out;
  // Notes go to stderr, one per line, never into the YAML on stdout.
  EXPECT_EQ(r.err, "warning: line 4: bogus-option: unknown coturn option; written as a comment, not imported\n");

  const auto yaml = write_temp(".yaml", r.out);
  const auto check = run({"check-config", yaml.c_str()});
  EXPECT_EQ(check.code, 0) << check.err;
  EXPECT_EQ(check.out.rfind("configuration OK", 0), 0u) << check.out;
  std::remove(conf.c_str());
  std::remove(yaml.c_str());
}

TEST(import_coturn_cmd, exit_codes) {
  EXPECT_EQ(run({"import-coturn"}).code, import_bad_arguments);
  EXPECT_EQ(run({"import-coturn", "a.conf", "b.conf"}).code, import_bad_arguments);
  EXPECT_EQ(run({"import-coturn", "--frob", "a.conf"}).code, import_bad_arguments);
  const auto help = run({"import-coturn", "--help"});
  EXPECT_EQ(help.code, import_ok);
  EXPECT_NE(help.out.find("usage: anyturn import-coturn FILE"), std::string::npos);
  const auto missing = run({"import-coturn", "/nonexistent/turnserver.conf"});
  EXPECT_EQ(missing.code, import_unreadable);
  EXPECT_NE(missing.err.find("/nonexistent/turnserver.conf: cannot open"), std::string::npos) << missing.err;
  EXPECT_TRUE(missing.out.empty());
  // A directory opens but cannot be read.
  const auto dir = run({"import-coturn", ::testing::TempDir().c_str()});
  EXPECT_EQ(dir.code, import_unreadable) << dir.out;
  // The top-level usage names the command.
  EXPECT_NE(run({"--help"}).out.find("import-coturn FILE"), std::string::npos);
}

}  // namespace
}  // namespace anyturn::app
