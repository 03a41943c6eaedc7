// Bytes, hex and transaction ids for tests of the stun codec and its users.
#pragma once

#include <anyturn/stun/message.hpp>

#include <openssl/evp.h>

#include <cctype>
#include <cstddef>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace anyturn::stun::test {

// Hex digits to bytes; whitespace is ignored, '#' starts a comment line.
inline std::vector<std::byte> from_hex(std::string_view text) {
  std::vector<std::byte> out;
  int high = -1;
  bool comment = false;
  for (char c : text) {
    if (c == '\n') comment = false;
    if (comment) continue;
    if (c == '#') {
      comment = true;
      continue;
    }
    if (std::isspace(static_cast<unsigned char>(c)) != 0) continue;
    int v = 0;
    if (c >= '0' && c <= '9') v = c - '0';
    else if (c >= 'a' && c <= 'f') v = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F') v = c - 'A' + 10;
    else throw std::invalid_argument("bad hex digit");
    if (high < 0) {
      high = v;
    } else {
      out.push_back(static_cast<std::byte>(high * 16 + v));
      high = -1;
    }
  }
  if (high >= 0) throw std::invalid_argument("odd number of hex digits");
  return out;
}

inline std::vector<std::byte> load_hex(const std::string& name) {
  std::ifstream in(std::string(ANYTURN_TESTDATA_DIR) + "/stun/" + name);
  if (!in) throw std::runtime_error("cannot open testdata " + name);
  std::stringstream ss;
  ss << in.rdbuf();
  return from_hex(ss.str());
}

inline bytes_view as_bytes(std::string_view s) {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

inline std::string to_string(bytes_view v) {
  return {reinterpret_cast<const char*>(v.data()), v.size()};
}

// Digest of `text` with an OpenSSL digest ("MD5", "SHA256"): the long-term
// keys of RFC 8489 §9.2.2 are digests of "username:realm:password".
inline std::vector<std::byte> digest(const char* name, std::string_view text) {
  std::vector<std::byte> out(EVP_MAX_MD_SIZE);
  unsigned len = 0;
  EVP_MD* md = EVP_MD_fetch(nullptr, name, nullptr);
  if (md == nullptr ||
      EVP_Digest(text.data(), text.size(), reinterpret_cast<unsigned char*>(out.data()), &len, md,
                 nullptr) != 1) {
    EVP_MD_free(md);
    throw std::runtime_error("digest failed");
  }
  EVP_MD_free(md);
  out.resize(len);
  return out;
}

inline transaction_id tid_from(std::string_view hex) {
  transaction_id t;
  const auto bytes = from_hex(hex);
  if (bytes.size() != t.bytes.size()) throw std::invalid_argument("tid must be 12 bytes");
  std::copy(bytes.begin(), bytes.end(), t.bytes.begin());
  return t;
}

// Sets a raw message's header length to cover everything after the header.
inline void set_body_length(std::vector<std::byte>& msg, std::size_t extra = 0) {
  const auto body = msg.size() - header_size + extra;
  msg[2] = static_cast<std::byte>(body >> 8);
  msg[3] = static_cast<std::byte>(body);
}

// Appends a raw attribute (zero padding) to a message and fixes the header
// length. It lands after whatever the message ends with, MESSAGE-INTEGRITY
// included: what an on-path attacker can do to a signed request.
inline void append_attribute(std::vector<std::byte>& msg, std::uint16_t type,
                             const std::vector<std::byte>& value) {
  msg.push_back(static_cast<std::byte>(type >> 8));
  msg.push_back(static_cast<std::byte>(type));
  msg.push_back(static_cast<std::byte>(value.size() >> 8));
  msg.push_back(static_cast<std::byte>(value.size()));
  msg.insert(msg.end(), value.begin(), value.end());
  while (msg.size() % 4 != 0) msg.push_back(std::byte{0});
  set_body_length(msg);
}

// Appends a correct FINGERPRINT to a raw message.
inline void append_fingerprint(std::vector<std::byte>& msg) {
  set_body_length(msg, 8);
  const auto fp = fingerprint_of(msg);
  for (int b : {0x80, 0x28, 0x00, 0x04}) msg.push_back(static_cast<std::byte>(b));
  for (int shift = 24; shift >= 0; shift -= 8) msg.push_back(static_cast<std::byte>(fp >> shift));
}

// A method's 16-bit code, for message_builder.
inline std::uint16_t m(method x) { return static_cast<std::uint16_t>(x); }

// The transaction id of the build-and-parse round trips.
inline const transaction_id round_trip_tid = tid_from("a1b2c3d4e5f60718293a4b5c");

}  // namespace anyturn::stun::test
