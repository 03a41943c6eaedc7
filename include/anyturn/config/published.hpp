// anyturn::config — credentials that anybody can read: the
// example passwords, secrets and keys of anyturn's own documentation and
// shipped config, and the common placeholders. The validator refuses them
// wherever a credential goes, because a server that accepts them is open to
// whoever reads the docs.
#pragma once

#include <string_view>

namespace anyturn::config {

// True when `value` is a published example or a well-known placeholder.
// tests/unit/config/published_test.cpp scans the docs and checks that every
// credential they show is listed here.
bool is_published_credential(std::string_view value);

}  // namespace anyturn::config
