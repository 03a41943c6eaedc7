// anyturn::net — a bounded byte ring: the write queue of one stream connection.
//
// Messages toward a client are appended whole or not at all, so the stream
// never carries half a frame. The storage starts small and doubles up to a
// hard limit, so an idle connection costs little and a busy one reaches a
// steady size after which appending never allocates. Growing hands the old
// storage back to the caller, who keeps it alive while an asynchronous write
// still points into it.
//
// Sans-I/O and single-threaded: the owning worker is the only user.
#pragma once

#include <anyturn/stun/message.hpp>

#include <cstddef>
#include <memory>
#include <span>

namespace anyturn::net {

class byte_ring {
 public:
  // `limit`: the most bytes ever held. `initial`: the first allocation
  // (clamped to limit), made on the first append.
  explicit byte_ring(std::size_t limit, std::size_t initial = 16 * 1024);

  byte_ring(const byte_ring&) = delete;
  byte_ring& operator=(const byte_ring&) = delete;

  [[nodiscard]] std::size_t size() const { return size_; }
  [[nodiscard]] bool empty() const { return size_ == 0; }
  [[nodiscard]] std::size_t capacity() const { return capacity_; }
  [[nodiscard]] std::size_t limit() const { return limit_; }

  // Changes the limit (never below what is queued; the storage is kept). A
  // stream raises it once its client authenticated.
  void set_limit(std::size_t limit);

  // The capacity after appending `bytes` more (when that fits the limit):
  // capacity() unless the storage must grow. Lets a caller account for the
  // allocation before append() makes it.
  [[nodiscard]] std::size_t capacity_after(std::size_t bytes) const;

  // Appends every fragment, in order, or nothing when the total would pass
  // the limit (returns false). When the storage must grow and `retired` is
  // empty, the previous storage is moved into it: the caller frees it once
  // no write points into it any more. When `retired` already holds a block
  // (the one an unfinished write points into), the previous storage is
  // freed at once.
  bool append(std::span<const stun::bytes_view> fragments, std::unique_ptr<std::byte[]>& retired);

  // The queued bytes, oldest first, as at most two contiguous spans.
  struct segments {
    std::span<const std::byte> first;
    std::span<const std::byte> second;
  };
  [[nodiscard]] segments readable() const;

  // Drops the `n` oldest bytes (n <= size()).
  void consume(std::size_t n);

 private:
  void copy_in(const std::byte* data, std::size_t n);

  std::size_t limit_;
  std::size_t initial_;
  std::unique_ptr<std::byte[]> storage_;
  std::size_t capacity_ = 0;
  std::size_t head_ = 0;  // offset of the oldest byte
  std::size_t size_ = 0;
};

}  // namespace anyturn::net
