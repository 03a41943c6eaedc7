// The published-credential list must cover every example credential that
// anyturn's documentation and shipped config show: the test reads them all.
#include <anyturn/config/published.hpp>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace anyturn::config {
namespace {

namespace fs = std::filesystem;

const fs::path source_root = fs::path(ANYTURN_TESTDATA_DIR) / ".." / "..";

// What an operator reads: the README, docs/, the shipped configs and
// everything under deploy/, docker/ and packaging/.
std::vector<fs::path> documentation() {
  std::vector<fs::path> files{source_root / "README.md"};
  for (const char* dir : {"docs", "config", "deploy", "docker", "packaging"}) {
    const fs::path d = source_root / dir;
    if (!fs::exists(d)) continue;
    for (const auto& e : fs::recursive_directory_iterator(d)) {
      if (!e.is_regular_file()) continue;
      const auto ext = e.path().extension().string();
      if (ext == ".png" || ext == ".json" || ext == ".pem") continue;
      files.push_back(e.path());
    }
  }
  return files;
}

// Placeholders an operator must replace are not credentials: variables,
// <angle brackets>, ellipses and ALL-CAPS words.
bool is_placeholder(const std::string& v) {
  if (v.empty() || v[0] == '$' || v[0] == '<' || v.starts_with("--") || v.starts_with("\xE2\x80\xA6")) {
    return true;
  }
  if (v.find(' ') != std::string::npos) return true;  // prose
  return std::all_of(v.begin(), v.end(), [](char c) { return (c >= 'A' && c <= 'Z') || c == '_'; });
}

std::string trim(std::string v) {
  while (!v.empty() && std::string_view("`\"',;").find(v.back()) != std::string_view::npos) v.pop_back();
  while (!v.empty() && std::string_view("`\"'").find(v.front()) != std::string_view::npos) v.erase(0, 1);
  return v;
}

// Every credential-looking value in `text`: YAML passwords, keys, secret and
// key lists (inline and block), the flags that take credentials, shell
// assignments and the iceServers credential field.
std::set<std::string> credentials_in(const std::string& text) {
  std::set<std::string> out;
  auto add = [&](std::string v) {
    v = trim(std::move(v));
    if (!is_placeholder(v)) out.insert(v);
  };
  static const std::vector<std::regex> single{
      std::regex(R"re(password:[ \t]*"?([^\s"#,}]+)"?(?=[ \t]*(?:[,}#\n]|$)))re"),
      std::regex(R"re(credential:\s*'([^']+)')re"),
      std::regex(R"re(--user[ =]"?[^\s:"]+:([^\s"]+))re"),
      std::regex(R"re(--(?:auth-secret|secret|api-key|admin-key|static-auth-secret)[ =]"?([^\s"]+))re"),
      std::regex(R"re(rediss?://[^:\s/@]*:([^@\s/]+)@)re"),
      std::regex(R"re(\b[Ss][Ee][Cc][Rr][Ee][Tt]=\s*'?([^\s'$(]+))re"),
      std::regex(R"re(\bkey:\s*"([0-9a-fA-F]{32})")re"),
      std::regex(R"re(nonce_key:\s*"([^"]+)")re"),
  };
  for (const auto& re : single) {
    for (std::sregex_iterator it(text.begin(), text.end(), re), end; it != end; ++it) add((*it)[1].str());
  }
  static const std::regex inline_list(R"((?:secrets|api_keys|admin_keys|nonce_keys):\s*\[([^\]]*)\])");
  static const std::regex item(R"([^,\s][^,]*)");
  for (std::sregex_iterator it(text.begin(), text.end(), inline_list), end; it != end; ++it) {
    const std::string items = (*it)[1].str();
    for (std::sregex_iterator i(items.begin(), items.end(), item); i != end; ++i) add(i->str());
  }
  // Block lists: "secrets:" then "- value" lines (comments may sit between).
  std::istringstream lines(text);
  std::string line;
  bool in_list = false;
  static const std::regex list_head(R"(^\s*#?\s*(?:secrets|api_keys|admin_keys|nonce_keys):\s*$)");
  static const std::regex list_item(R"re(^\s*#?\s*-\s+"?([^"\s#]+)"?)re");
  while (std::getline(lines, line)) {
    std::smatch m;
    if (std::regex_search(line, list_head)) {
      in_list = true;
    } else if (in_list && std::regex_search(line, m, list_item)) {
      add(m[1].str());
    } else if (!(in_list && std::regex_search(line, std::regex(R"re(^\s*#)re")))) {
      in_list = false;
    }
  }
  return out;
}

TEST(published, the_scanner_finds_each_form) {
  const auto found = credentials_in(R"(
  password: p-one
  users: [{name: a, password: "p-two"}]
  --user bob:p-three --auth-secret s-four --secret=s-five --api-key k-six
  secret='s-seven'
  SECRET=s-eight
  key: "00112233445566778899aabbccddeeff"
  secrets: ["s-nine", "s-ten"]
  api_keys:
    # a comment
    - "k-eleven"
  credential: 'p-twelve',
  --auth-secret "$SECRET" --user NAME:PASSWORD secrets: [<openssl rand -hex 32>]
  --admin-key k-thirteen admin_keys: ["k-fourteen"] --redis redis://:p-fifteen@10.0.0.5:6379/0
  redis: "rediss://default:p-sixteen@redis.example.com:6380" --redis redis://:PASSWORD@HOST:6379
  admin_keys:
    - k-seventeen
)");
  const std::set<std::string> expected{"p-one",   "p-two",    "p-three", "s-four",   "s-five",
                                       "k-six",   "s-seven",  "s-eight", "00112233445566778899aabbccddeeff",
                                       "s-nine",  "s-ten",    "k-eleven", "p-twelve",
                                       "k-thirteen", "k-fourteen", "p-fifteen", "p-sixteen",
                                       "k-seventeen"};
  EXPECT_EQ(found, expected);
}

TEST(published, every_credential_in_the_docs_is_refused) {
  std::size_t files = 0;
  for (const auto& path : documentation()) {
    std::ifstream in(path);
    ASSERT_TRUE(in) << path;
    std::stringstream text;
    text << in.rdbuf();
    ++files;
    for (const auto& value : credentials_in(text.str())) {
      EXPECT_TRUE(is_published_credential(value))
          << path.lexically_relative(source_root) << " shows the credential '" << value
          << "': add it to src/config/published.cpp so that no server accepts it";
    }
  }
  EXPECT_GE(files, 5u);  // README, docs/*.md, config/anyturn.yaml at least
}

TEST(published, placeholders_and_real_secrets_differ) {
  EXPECT_TRUE(is_published_credential("demo-password"));
  EXPECT_TRUE(is_published_credential("change-me-rest-secret"));
  EXPECT_TRUE(is_published_credential("0123456789abcdef0123456789abcdef"));
  EXPECT_FALSE(is_published_credential("3f9c1e0a7b5d42e8a6c1f0b9d8e7a6c5"));
  EXPECT_FALSE(is_published_credential("Demo-Password"));  // exact matches only
  EXPECT_FALSE(is_published_credential(""));
}

}  // namespace
}  // namespace anyturn::config
