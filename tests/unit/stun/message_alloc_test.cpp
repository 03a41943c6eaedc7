// Proves the parse path never touches the heap: global operator new is
// replaced by a counting version, and OpenSSL's allocator is hooked too.
#include <anyturn/stun/message.hpp>

#include <gtest/gtest.h>
#include <openssl/crypto.h>

#include <atomic>
#include <cstdlib>
#include <new>

#include "stun_bytes.hpp"

namespace {

std::atomic<bool> counting{false};
std::atomic<std::size_t> new_calls{0};
std::atomic<std::size_t> openssl_calls{0};

void* counted_new(std::size_t n) {
  if (counting.load(std::memory_order_relaxed)) new_calls.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}

void* counting_malloc(std::size_t n, const char*, int) {
  if (counting.load(std::memory_order_relaxed)) openssl_calls.fetch_add(1, std::memory_order_relaxed);
  return std::malloc(n);
}
void* counting_realloc(void* p, std::size_t n, const char*, int) {
  if (counting.load(std::memory_order_relaxed)) openssl_calls.fetch_add(1, std::memory_order_relaxed);
  return std::realloc(p, n);
}
void counting_free(void* p, const char*, int) { std::free(p); }

// Runs before main, hence before OpenSSL allocates anything.
const bool openssl_hooked = CRYPTO_set_mem_functions(counting_malloc, counting_realloc, counting_free) == 1;

}  // namespace

void* operator new(std::size_t n) { return counted_new(n); }
void* operator new[](std::size_t n) { return counted_new(n); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  try {
    return counted_new(n);
  } catch (...) {
    return nullptr;
  }
}
void* operator new[](std::size_t n, const std::nothrow_t& t) noexcept { return operator new(n, t); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }

namespace anyturn::stun {
namespace {

class NoAllocation : public ::testing::Test {
 protected:
  template <typename F>
  void measure(F&& body, std::size_t iterations) {
    new_calls = 0;
    openssl_calls = 0;
    counting = true;
    for (std::size_t i = 0; i < iterations; ++i) body();
    counting = false;
  }

  const std::vector<std::byte> key = test::digest("MD5", "alice:example.org:secret");
  const std::vector<std::byte> key256 = test::digest("SHA256", "alice:example.org:secret");
  const std::vector<std::byte> request = test::load_hex("coturn_allocate_request_auth.hex");
  const std::vector<std::byte> success = test::load_hex("coturn_allocate_success.hex");
  const std::vector<std::byte> refresh = test::load_hex("coturn_refresh_request.hex");
  const std::vector<std::byte> channel_data = test::from_hex("4001 0001 aa");
  std::vector<std::byte> out = std::vector<std::byte>(512);
};

TEST_F(NoAllocation, ParseFindDecodeFrameAndBuild) {
  // No HMAC here, so neither operator new nor OpenSSL may allocate.
  std::size_t checks = 0;
  measure([&] {
    for (const auto* bytes : {&request, &success}) {
      auto msg = parse_message(*bytes);
      if (!msg) return;
      for (const auto& a : msg->attributes()) {
        if (msg->find(a.type)) ++checks;
        if (decode_address(a, msg->tid(), true)) ++checks;
        if (decode_u32(a)) ++checks;
        if (decode_string(a, 763)) ++checks;
        if (decode_error_code(a)) ++checks;
      }
      std::array<std::uint16_t, 8> unknown{};
      checks += msg->unknown_required(unknown);
      if (stream_frame_length(*bytes, 1500)) ++checks;
    }
    if (parse_channel_data(channel_data)) ++checks;
    if (stream_frame_length(channel_data, 1500).error == codec_error::need_more) ++checks;
    auto built = message_builder(out, 0x003, message_class::success_response, transaction_id{})
                     .add_address(attr::xor_relayed_address, endpoint::v4(0x7F000001, 49172), true)
                     .add_u32(attr::lifetime, 600)
                     .add_error_code(437, "Allocation Mismatch")
                     .add_fingerprint()
                     .finish();
    if (built && parse_message(*built)) ++checks;
  }, 100);
  EXPECT_GT(checks, 100U * 20);
  EXPECT_EQ(new_calls.load(), 0U);
  if (openssl_hooked) {
    EXPECT_EQ(openssl_calls.load(), 0U);
  }
}

TEST_F(NoAllocation, IntegrityChecksUseNoOperatorNew) {
  // check_message_integrity feeds the header copy and the message to the
  // HMAC in place: no heap copy of the message. OpenSSL 3.0's EVP_MAC
  // re-keying allocates its digest state internally (malloc, not operator
  // new); that count is reported, not asserted.
  std::vector<std::byte> signed256(512);
  {
    message_builder b(signed256, 0x003, message_class::request, transaction_id{});
    b.add_string(attr::username, "alice").add_message_integrity_sha256(key256).add_fingerprint();
    ASSERT_TRUE(b.ok());
    signed256.resize(b.size());
  }
  std::size_t verified = 0;
  auto body = [&] {
    for (const auto* bytes : {&request, &success, &refresh}) {
      auto msg = parse_message(*bytes);
      if (msg && check_message_integrity(*msg, key)) ++verified;
    }
    auto msg = parse_message(signed256);
    if (msg && check_message_integrity_sha256(*msg, key256)) ++verified;
    auto built = message_builder(out, 0x003, message_class::success_response, transaction_id{})
                     .add_u32(attr::lifetime, 600)
                     .add_message_integrity(key)
                     .add_fingerprint()
                     .finish();
    if (built) ++verified;
  };
  body();  // the first use on a thread creates its MAC contexts
  verified = 0;
  measure(body, 100);
  EXPECT_EQ(verified, 500U);
  EXPECT_EQ(new_calls.load(), 0U);
  RecordProperty("openssl_mallocs_per_hmac", std::to_string(openssl_calls.load() / 500));
}

}  // namespace
}  // namespace anyturn::stun
