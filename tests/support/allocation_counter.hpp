// Counts heap allocations, so a test can prove that a path allocates nothing.
//
// allocation_counter.cpp replaces the global operator new/delete of the test
// executable it is linked into (CMake: link anyturn_test_allocation_counter);
// the count includes every thread's allocations.
#pragma once

#include <cstddef>
#include <utility>

namespace anyturn::test {

// Heap allocations (operator new calls) so far in this process.
std::size_t allocation_count();

// The allocations `f` makes.
template <typename F>
std::size_t allocations_in(F&& f) {
  const std::size_t before = allocation_count();
  std::forward<F>(f)();
  return allocation_count() - before;
}

}  // namespace anyturn::test
