// `anyturn import-coturn FILE`: reads the file and hands its text to the
// pure translator; nothing here but arguments, the file and the output.
#include <anyturn/app/import_coturn_cmd.hpp>

#include <anyturn/config/coturn_import.hpp>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <ostream>
#include <sstream>
#include <string_view>

namespace anyturn::app {

bool is_import_coturn_command(int argc, const char* const* argv) {
  return argc >= 2 && std::string_view(argv[1]) == "import-coturn";
}

std::string import_coturn_usage() {
  return "usage: anyturn import-coturn FILE\n"
         "  Reads a coturn turnserver.conf and prints the equivalent anyturn YAML on\n"
         "  stdout; every coturn option without an anyturn key becomes a comment that\n"
         "  says what to do instead. Warnings go to stderr. Check the result with\n"
         "  `anyturn check-config`. See docs/coming-from-coturn.md.\n"
         "  Exit: 0 translated, 1 the file cannot be read, 2 bad arguments.\n";
}

int run_import_coturn(int argc, const char* const* argv, std::ostream& out, std::ostream& err) {
  std::string path;
  for (int i = 2; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      out << import_coturn_usage();
      return import_ok;
    }
    if (arg.starts_with("-") && arg != "-") {
      err << "anyturn import-coturn: unknown option '" << arg << "'\n" << import_coturn_usage();
      return import_bad_arguments;
    }
    if (!path.empty()) {
      err << "anyturn import-coturn: one FILE only\n" << import_coturn_usage();
      return import_bad_arguments;
    }
    path = arg;
  }
  if (path.empty()) {
    err << "anyturn import-coturn: missing FILE\n" << import_coturn_usage();
    return import_bad_arguments;
  }
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    err << "anyturn import-coturn: " << path << ": cannot read: " << std::strerror(EISDIR) << '\n';
    return import_unreadable;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    err << "anyturn import-coturn: " << path << ": cannot open: " << std::strerror(errno) << '\n';
    return import_unreadable;
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) {
    err << "anyturn import-coturn: " << path << ": cannot read: " << std::strerror(errno) << '\n';
    return import_unreadable;
  }
  const auto result = config::import_coturn(text.str());
  out << result.yaml;
  for (const auto& n : result.notes) err << "warning: " << n << '\n';
  return import_ok;
}

}  // namespace anyturn::app
