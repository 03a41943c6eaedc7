// anyturn::app — the state directory: where the server keeps what it makes
// for itself (the development TLS certificate, the generated REST secret and
// nonce key). Private to the service user: the directory is 0700 and the
// secret files 0600. Start-up and SIGHUP only; errors are text.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include <sys/types.h>

namespace anyturn::app {

// `configured` if set; else $XDG_STATE_HOME/anyturn (when absolute); else
// $HOME/.local/state/anyturn; else ./var/anyturn.
std::filesystem::path resolve_state_dir(const std::string& configured);

// Creates `dir` (and its parents) and makes it 0700. `why` ends the error
// message with what the operator can set instead.
bool ensure_state_dir(const std::filesystem::path& dir, std::string_view why, std::string& error);

// The whole file; false if it cannot be opened or read.
bool read_text(const std::filesystem::path& path, std::string& out);

// Writes `text` to `path` through a temporary file, fsync and rename, with
// `mode`: a crash never leaves half a key behind.
bool write_private(const std::filesystem::path& path, const std::string& text, mode_t mode,
                   std::string& error);

}  // namespace anyturn::app
