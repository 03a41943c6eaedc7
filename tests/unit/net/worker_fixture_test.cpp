// The allocation counter of worker_fixture.hpp: the replacement operator
// new it relies on (a program may replace it only once, so for the whole
// net test binary it is here) and a check that it counts.
#include "worker_fixture.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <thread>

// GCC pairs the inlined malloc/free of the replacements with new/delete
// expressions and warns about a mismatch that is not one.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

namespace anyturn::net {
std::atomic<bool> counting_allocations{false};
std::atomic<std::uint64_t> counted_allocations{0};
}  // namespace anyturn::net

void* operator new(std::size_t size) {
  if (anyturn::net::counting_allocations.load(std::memory_order_relaxed)) {
    anyturn::net::counted_allocations.fetch_add(1, std::memory_order_relaxed);
  }
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace anyturn::net {
namespace {

TEST(worker_fixture, allocations_in_counts_operator_new_on_any_thread) {
  // A call the optimiser may not elide.
  EXPECT_EQ(allocations_in([] { ::operator delete(::operator new(8)); }), 1u);
  EXPECT_EQ(allocations_in([] {}), 0u);

  // One allocation on another thread while the counter runs (the thread
  // itself is started before and joined after).
  std::atomic<int> step{0};
  std::thread other([&] {
    while (step.load() != 1) std::this_thread::yield();
    ::operator delete(::operator new(16));
    step = 2;
  });
  EXPECT_EQ(allocations_in([&] {
              step = 1;
              while (step.load() != 2) std::this_thread::yield();
            }),
            1u);
  other.join();
}

}  // namespace
}  // namespace anyturn::net
