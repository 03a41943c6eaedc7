// Generated credentials in the state directory (secrets.hpp).
#include <anyturn/app/secrets.hpp>

#include <anyturn/app/state_dir.hpp>
#include <anyturn/auth/nonce.hpp>
#include <anyturn/config/published.hpp>

#include <cstdint>
#include <exception>

namespace anyturn::app {

namespace fs = std::filesystem;

namespace {

constexpr std::size_t generated_bytes = 32;  // 64 hex characters, 256 bits

std::string random_hex(std::size_t bytes) {
  static constexpr char digits[] = "0123456789abcdef";
  const std::vector<std::uint8_t> raw = auth::random_key(bytes);  // OpenSSL CSPRNG
  std::string out;
  out.reserve(bytes * 2);
  for (const std::uint8_t b : raw) {
    out.push_back(digits[b >> 4]);
    out.push_back(digits[b & 0xf]);
  }
  return out;
}

// The first line of `path`, without its line ending.
std::string first_line(const std::string& text) {
  std::string line = text.substr(0, text.find('\n'));
  while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
  return line;
}

// Reads STATE_DIR/`name`, or creates it. `out` gets the value.
bool read_or_generate(const fs::path& state_dir, const char* name, provisioned& done,
                      std::string& out, std::string& error) {
  done.used = true;
  done.path = state_dir / name;
  std::string text;
  if (read_text(done.path, text)) {
    out = first_line(text);
    if (out.size() < config::min_secret_bytes || config::is_published_credential(out)) {
      error = done.path.string() + ": holds " +
              (out.size() < config::min_secret_bytes
                   ? "fewer than " + std::to_string(config::min_secret_bytes) + " characters"
                   : std::string("a published example value")) +
              "; delete it and the server generates a new one at start";
      return false;
    }
    return true;
  }
  std::error_code ec;
  if (fs::exists(done.path, ec)) {
    error = done.path.string() + ": exists but cannot be read (check its owner and mode)";
    return false;
  }
  if (!ensure_state_dir(state_dir, "state_dir in the config, or auth.secrets and auth.nonce_keys",
                        error)) {
    return false;
  }
  try {
    out = random_hex(generated_bytes);
  } catch (const std::exception& e) {
    error = std::string("cannot draw a random ") + name + ": " + e.what();
    return false;
  }
  if (!write_private(done.path, out + "\n", 0600, error)) return false;
  done.generated = true;
  return true;
}

}  // namespace

bool provision_secrets(config::server_config& cfg, const fs::path& state_dir,
                       provisioned_secrets& done, std::string& error) {
  done = {};
  if (cfg.auth.rest_secrets.empty()) {
    std::string secret;
    if (!read_or_generate(state_dir, rest_secret_file, done.rest_secret, secret, error)) return false;
    cfg.auth.rest_secrets.push_back(std::move(secret));
  }
  if (cfg.auth.nonce_keys.empty()) {
    std::string key;
    if (!read_or_generate(state_dir, nonce_key_file, done.nonce_key, key, error)) return false;
    cfg.auth.nonce_keys.push_back(std::move(key));
  }
  return true;
}

}  // namespace anyturn::app
