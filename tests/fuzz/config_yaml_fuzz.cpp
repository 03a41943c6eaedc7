// libFuzzer target: the YAML config loader and validator
// (config::load_yaml, config::validate, config::warnings), what the daemon
// runs on --config and on every SIGHUP reload.
//
// Checks (any failure traps or aborts):
//   - neither throws, whatever the text (load_yaml turns YAML errors into
//     messages; an escaping exception would kill a reload);
//   - load_yaml fails if and only if it reported at least one error, and
//     validate likewise; every message is non-empty;
//   - loading is deterministic: the same text gives the same messages.
#include <anyturn/config/config.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace {

#define FUZZ_CHECK(cond) \
  do {                   \
    if (!(cond)) __builtin_trap(); \
  } while (0)

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace anyturn;
  const std::string text(reinterpret_cast<const char*>(data), size);

  std::vector<std::string> errors;
  const auto cfg = config::load_yaml(text, errors);
  FUZZ_CHECK(cfg.has_value() == errors.empty());
  for (const auto& e : errors) FUZZ_CHECK(!e.empty());

  std::vector<std::string> again;
  const auto cfg2 = config::load_yaml(text, again);
  FUZZ_CHECK(cfg2.has_value() == cfg.has_value() && again == errors);
  if (!cfg) return 0;

  std::vector<std::string> problems;
  const bool ok = config::validate(*cfg, problems);
  FUZZ_CHECK(ok == problems.empty());
  for (const auto& p : problems) FUZZ_CHECK(!p.empty());
  if (ok) {
    for (const auto& w : config::warnings(*cfg)) FUZZ_CHECK(!w.empty());
  }
  return 0;
}
