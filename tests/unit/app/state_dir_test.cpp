// The state directory: where it is, and its private files.
#include <anyturn/app/state_dir.hpp>

#include <gtest/gtest.h>

#include "temp_dir.hpp"

#include <cstdlib>
#include <filesystem>
#include <string>

#include <sys/stat.h>

namespace anyturn::app {
namespace {

namespace fs = std::filesystem;

TEST(state_dir, follows_config_then_xdg_then_home) {
  EXPECT_EQ(resolve_state_dir("/srv/anyturn"), fs::path("/srv/anyturn"));
  const char* xdg = std::getenv("XDG_STATE_HOME");
  const std::string saved_xdg = xdg != nullptr ? xdg : "";
  ::setenv("XDG_STATE_HOME", "/tmp/xdg-state", 1);
  EXPECT_EQ(resolve_state_dir(""), fs::path("/tmp/xdg-state/anyturn"));
  ::setenv("XDG_STATE_HOME", "relative/ignored", 1);
  const char* home = std::getenv("HOME");
  if (home != nullptr && home[0] == '/') {
    EXPECT_EQ(resolve_state_dir(""), fs::path(home) / ".local/state/anyturn");
  }
  if (xdg != nullptr) ::setenv("XDG_STATE_HOME", saved_xdg.c_str(), 1);
  else ::unsetenv("XDG_STATE_HOME");
}

TEST(state_dir, is_created_private_and_files_are_written_whole_with_their_mode) {
  test::temp_dir tmp;
  const fs::path dir = tmp.path() / "a" / "b";
  std::string error;
  ASSERT_TRUE(ensure_state_dir(dir, "state_dir", error)) << error;
  struct stat st {};
  ASSERT_EQ(::stat(dir.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);

  ASSERT_TRUE(write_private(dir / "f", "one\n", 0600, error)) << error;
  ASSERT_TRUE(write_private(dir / "f", "two\n", 0600, error)) << error;  // replaced in place
  std::string text;
  ASSERT_TRUE(read_text(dir / "f", text));
  EXPECT_EQ(text, "two\n");
  ASSERT_EQ(::stat((dir / "f").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_FALSE(fs::exists(dir / "f.tmp"));
  EXPECT_FALSE(read_text(dir / "missing", text));

  // A file where the directory should be: a clear error naming the setting.
  ASSERT_TRUE(write_private(tmp.path() / "file", "x", 0600, error)) << error;
  EXPECT_FALSE(ensure_state_dir(tmp.path() / "file" / "sub", "state_dir in the config", error));
  EXPECT_NE(error.find("cannot create the state directory"), std::string::npos) << error;
  EXPECT_NE(error.find("state_dir in the config"), std::string::npos) << error;
}

}  // namespace
}  // namespace anyturn::app
