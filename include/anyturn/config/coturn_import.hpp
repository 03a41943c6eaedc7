// anyturn::config — `anyturn import-coturn FILE`: a coturn turnserver.conf
// translated into anyturn's YAML (docs/coming-from-coturn.md).
//
// A pure function: the file's text in, YAML text and notes out; no files,
// no sockets, no clock. coturn's syntax: one option a line, `name=value`,
// `name value` or a bare `name` (a flag; `name=false` turns it off), `#`
// starts a comment line, options may repeat (lists), `--name` is accepted
// as in coturn's command line.
//
// Every option ends up somewhere: mapped to an anyturn key, or written as a
// YAML comment that names it (with its line) and says what to do instead.
// Values of options whose name suggests a credential are never echoed in
// comments or notes.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace anyturn::config {

struct coturn_import_result {
  std::string yaml;                // the anyturn config, comments included
  std::vector<std::string> notes;  // "line N: ..." for the operator (stderr)
};

coturn_import_result import_coturn(std::string_view conf_text);

// "A-B" (an inclusive range of IPv4 or IPv6 addresses), a single address, or
// "ADDR/LEN" -> the smallest list of CIDRs covering exactly that set
// ("10.0.0.0-10.0.0.255" -> {"10.0.0.0/24"}). Empty when the text is not one
// of these (bad address, mixed families, A > B).
std::vector<std::string> coturn_range_to_cidrs(std::string_view text);

}  // namespace anyturn::config
