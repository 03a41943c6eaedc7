// anyturn::app — the credentials a server gets when its config names none.
//
// The shipped config has no usable credential. A server started with an
// empty auth.secrets, or no nonce key, does not run open and does not run on
// a value from the docs: at its first start it writes a random REST secret
// (STATE_DIR/rest-secret) and nonce key (STATE_DIR/nonce-key), 0600, and
// reads them back on later starts, so credentials it minted stay good across
// a restart. The operator mints TURN credentials from the file
// (`anyturn credentials --secret-file STATE_DIR/rest-secret`) or through the
// credentials API, which signs with it.
#pragma once

#include <anyturn/config/config.hpp>

#include <filesystem>
#include <string>

namespace anyturn::app {

inline constexpr const char* rest_secret_file = "rest-secret";
inline constexpr const char* nonce_key_file = "nonce-key";

// Where one secret came from, for the start-up log.
struct provisioned {
  bool used = false;       // the config had none, so the file's value is in use
  bool generated = false;  // the file was created by this call
  std::filesystem::path path;
};

struct provisioned_secrets {
  provisioned rest_secret;
  provisioned nonce_key;
};

// Fills cfg.auth.rest_secrets (when empty) and cfg.auth.nonce_keys (when
// empty) from the files in `state_dir`, creating the directory and any
// missing file with 64 random hex characters. A file that holds fewer than
// config::min_secret_bytes characters, or a published value, is an error
// (delete it to have a new one made). False with `error` on failure.
bool provision_secrets(config::server_config& cfg, const std::filesystem::path& state_dir,
                       provisioned_secrets& done, std::string& error);

}  // namespace anyturn::app
