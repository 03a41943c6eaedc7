// anyturn::xdp — the XDP offload of established channels (the kernel fast path).
//
// One `offload` per process: it loads the BPF program (src/xdp/bpf/relay.bpf.c,
// built with clang -target bpf, opened through its bpftool skeleton), sizes
// and creates its maps, and attaches it to each interface of xdp.interfaces
// through a BPF link. A link lives as long as its file descriptor: the
// program is detached when the offload is destroyed, and by the kernel when
// the process dies, so no program keeps forwarding for allocations that no
// longer exist.
//
// Each worker gets its own relay::fast_path from port(); the ports share the
// maps. User space is the only writer of the channel and allocation maps;
// the program only reads them and bumps counters.
#pragma once

#include <anyturn/relay/fast_path.hpp>

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace anyturn::xdp {

// xdp.mode: native (driver mode; fail when the driver cannot), generic
// (skb mode, any device, slower), auto (native, else generic, else run
// without the offload).
enum class attach_mode : std::uint8_t { native, generic, automatic };
const char* to_string(attach_mode m);  // "native" | "generic" | "auto"

struct options {
  std::vector<std::string> interfaces;  // xdp.interfaces / --xdp IFACE
  attach_mode mode = attach_mode::automatic;
  std::uint32_t max_channels = 65'536;  // xdp.max_channels: entries of each channel map
  std::uint32_t max_allocations = 16'384;  // xdp.max_allocations: entries of the allocation map
};

// anyturn_xdp_packets_total{direction,action}
enum class direction : std::uint8_t { to_peer = 0, to_client = 1 };
enum class action : std::uint8_t { tx = 0, redirect = 1, pass = 2, drop = 3 };
inline constexpr std::size_t direction_count = 2;
inline constexpr std::size_t action_count = 4;
const char* to_string(direction d);  // "to_peer" | "to_client"
const char* to_string(action a);     // "tx" | "redirect" | "pass" | "drop"

// anyturn_xdp_fallbacks_total{reason}: packets or channels that user space
// handles instead of the program, and why.
#define ANYTURN_XDP_FALLBACKS(X)                                                               \
  /* user space: channels not installed */                                                    \
  X(map_full, "a channel or allocation map was full: the channel stays in user space")        \
  X(not_offloadable, "the channel cannot be offloaded (mixed address families, own-address peer)") \
  X(map_error, "the kernel refused a map update for another reason")                          \
  /* the program: packets of an installed channel passed up */                                \
  X(expired, "the entry had expired (user space drops or refreshes it)")                      \
  X(no_route, "no route or neighbour entry toward the destination yet (FIB lookup)")          \
  X(too_big, "the rewritten packet would exceed the egress MTU")                              \
  X(padding, "ChannelData with non-zero padding or a length beyond the datagram")             \
  X(zero_checksum, "an IPv6 UDP datagram with checksum zero")
enum class fallback : std::uint8_t {
#define ANYTURN_XDP_ENUM(name, help) name,
  ANYTURN_XDP_FALLBACKS(ANYTURN_XDP_ENUM)
#undef ANYTURN_XDP_ENUM
};
inline constexpr std::size_t fallback_count = 0
#define ANYTURN_XDP_COUNT(name, help) +1
    ANYTURN_XDP_FALLBACKS(ANYTURN_XDP_COUNT)
#undef ANYTURN_XDP_COUNT
    ;
const char* to_string(fallback f);
const char* help_of(fallback f);

// The counters the metrics collector reads on a scrape. `packets` counts
// only packets of installed channels (tx, redirect: forwarded; pass: passed
// up for one of the program's fallback reasons, or in the moment between
// removing an allocation and its channels; drop: over a limit); packets the
// program does not know pass uncounted.
struct stats {
  std::array<std::array<std::uint64_t, action_count>, direction_count> packets{};
  std::array<std::uint64_t, fallback_count> fallbacks{};
  std::uint64_t channel_entries = 0;     // anyturn_xdp_map_entries{map="channels"}
  std::uint64_t allocation_entries = 0;  // anyturn_xdp_map_entries{map="allocations"}
};

// One interface the program is attached to.
struct attached_interface {
  std::string name;
  int ifindex = 0;
  attach_mode mode = attach_mode::native;  // native or generic: what the kernel accepted
};

class offload {
 public:
  // Loads the program and attaches it to every interface of `opt`. On
  // failure returns null and sets `error` to one line naming the interface
  // and the kernel's reason (no BPF permission, no such device, the
  // driver has no native XDP, ...). In automatic mode an interface where
  // native fails is tried in generic mode; the caller decides what a
  // failure means (fail the start, or log and run without).
  static std::unique_ptr<offload> open(const options& opt, std::string& error);
  ~offload();  // detaches from every interface and frees the maps
  offload(const offload&) = delete;
  offload& operator=(const offload&) = delete;

  // A fast path for one worker's relay core. Thread-safe with respect to
  // the other workers' ports.
  std::unique_ptr<relay::fast_path> port();

  [[nodiscard]] stats read_stats() const;
  [[nodiscard]] const std::vector<attached_interface>& interfaces() const;

  // The loaded program's file descriptor, for BPF_PROG_TEST_RUN in tests.
  [[nodiscard]] int program_fd_for_test() const;

  struct impl;

 private:
  explicit offload(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

// Whether this process can load BPF programs at all (root or CAP_BPF and
// CAP_NET_ADMIN, a kernel with BPF): tests skip with `why` when it cannot.
bool can_load(std::string& why);

}  // namespace anyturn::xdp
