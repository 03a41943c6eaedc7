// anyturn::xdp — loading the program, attaching it, reading its counters.
#include <anyturn/xdp/offload.hpp>

#include "bpf/relay_maps.h"
#include "relay.skel.h"
#include "shared.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <string_view>
#include <cstring>
#include <ctime>
#include <fstream>

namespace anyturn::xdp {

static_assert(static_cast<int>(fallback::expired) == AT_FB_EXPIRED);
static_assert(static_cast<int>(fallback::no_route) == AT_FB_NO_ROUTE);
static_assert(static_cast<int>(fallback::too_big) == AT_FB_TOO_BIG);
static_assert(static_cast<int>(fallback::padding) == AT_FB_PADDING);
static_assert(static_cast<int>(fallback::zero_checksum) == AT_FB_ZERO_CHECKSUM);
static_assert(fallback_count == AT_FB_COUNT);
static_assert(static_cast<int>(action::tx) == AT_ACTION_TX && static_cast<int>(action::drop) == AT_ACTION_DROP);
static_assert(static_cast<int>(direction::to_peer) == AT_TO_PEER);

const char* to_string(attach_mode m) {
  switch (m) {
    case attach_mode::native: return "native";
    case attach_mode::generic: return "generic";
    case attach_mode::automatic: return "auto";
  }
  return "?";
}
const char* to_string(direction d) { return d == direction::to_peer ? "to_peer" : "to_client"; }
const char* to_string(action a) {
  switch (a) {
    case action::tx: return "tx";
    case action::redirect: return "redirect";
    case action::pass: return "pass";
    case action::drop: return "drop";
  }
  return "?";
}
const char* to_string(fallback f) {
  switch (f) {
#define ANYTURN_XDP_NAME(name, help) \
  case fallback::name: return #name;
    ANYTURN_XDP_FALLBACKS(ANYTURN_XDP_NAME)
#undef ANYTURN_XDP_NAME
  }
  return "?";
}
const char* help_of(fallback f) {
  switch (f) {
#define ANYTURN_XDP_HELP(name, help) \
  case fallback::name: return help;
    ANYTURN_XDP_FALLBACKS(ANYTURN_XDP_HELP)
#undef ANYTURN_XDP_HELP
  }
  return "?";
}

namespace detail {
shared::~shared() {
  if (skel != nullptr) anyturn_relay_bpf__destroy(skel);
}
std::uint64_t monotonic_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000ULL + static_cast<std::uint64_t>(ts.tv_nsec);
}
}  // namespace detail

struct offload::impl {
  std::shared_ptr<detail::shared> shared;
  std::vector<int> links;  // BPF link fds: closing one detaches its program
  std::vector<attached_interface> ifaces;
  int cpus = 1;

  ~impl() {
    for (int fd : links) close(fd);
  }
};

namespace {

std::string errno_text(int err) {
  std::string s = std::strerror(err);
  if (err == EPERM) s += " (needs CAP_BPF and CAP_NET_ADMIN)";
  return s;
}

// bpf_fib_lookup answers only for an interface with forwarding on. The
// program asks its lookups as from loopback, so loopback's forwarding is
// turned on (in this network namespace) and the attached interfaces' own
// forwarding is left as it is: off, the host routes nothing that arrives
// on them. Without it every packet of an installed channel goes up to user
// space (counted as no_route), so a failure is logged, not fatal.
void enable_lookup_forwarding() {
  for (const char* family : {"ipv4", "ipv6"}) {
    const std::string path = std::string("/proc/sys/net/") + family + "/conf/lo/forwarding";
    int on = 0;
    {
      std::ifstream f(path);
      if (!(f >> on)) continue;  // no such family here (ipv6 disabled)
    }
    if (on != 0) continue;
    std::ofstream out(path);
    if (out << 1 << std::flush) {
      spdlog::info("xdp: set net.{}.conf.lo.forwarding=1 for the program's route lookups "
                   "(the attached interfaces' forwarding is unchanged)",
                   family);
    } else {
      spdlog::warn("xdp: cannot set net.{}.conf.lo.forwarding=1: the offload's route lookups fail "
                   "and its packets go through user space",
                   family);
    }
  }
}

// libbpf's messages (the verifier's log when a load fails) at debug level.
int libbpf_log(enum libbpf_print_level level, const char* format, va_list args) {
  if (level == LIBBPF_DEBUG || !spdlog::should_log(spdlog::level::debug)) return 0;
  char line[1024];
  const int n = std::vsnprintf(line, sizeof(line), format, args);
  if (n <= 0) return n;
  std::string_view text(line, std::min(static_cast<std::size_t>(n), sizeof(line) - 1));
  if (!text.empty() && text.back() == '\n') text.remove_suffix(1);
  spdlog::debug("xdp: libbpf: {}", text);
  return n;
}

// Attaches the program to one interface; returns the link fd or -errno.
int attach(int prog_fd, int ifindex, attach_mode mode) {
  LIBBPF_OPTS(bpf_link_create_opts, opts);
  opts.flags = mode == attach_mode::generic ? XDP_FLAGS_SKB_MODE : XDP_FLAGS_DRV_MODE;
  int fd = bpf_link_create(prog_fd, ifindex, BPF_XDP, &opts);
  return fd < 0 ? -errno : fd;
}

}  // namespace

std::unique_ptr<offload> offload::open(const options& opt, std::string& error) {
  auto p = std::make_unique<impl>();
  p->shared = std::make_shared<detail::shared>();
  auto& s = *p->shared;
  libbpf_set_print(libbpf_log);
  s.skel = anyturn_relay_bpf__open();
  if (s.skel == nullptr) {
    error = "xdp: cannot open the BPF program: " + errno_text(errno);
    return nullptr;
  }
  bpf_map__set_max_entries(s.skel->maps.chan_to_peer, std::max<std::uint32_t>(opt.max_channels, 1));
  bpf_map__set_max_entries(s.skel->maps.chan_to_client, std::max<std::uint32_t>(opt.max_channels, 1));
  bpf_map__set_max_entries(s.skel->maps.allocations, std::max<std::uint32_t>(opt.max_allocations, 1));
  bpf_map__set_max_entries(s.skel->maps.tx_ports,
                           std::max<std::uint32_t>(static_cast<std::uint32_t>(opt.interfaces.size()), 1));
  if (const unsigned lo = if_nametoindex("lo"); lo != 0) s.skel->rodata->lookup_ifindex = lo;
  if (int rc = anyturn_relay_bpf__load(s.skel); rc != 0) {
    error = "xdp: cannot load the BPF program: " + errno_text(-rc);
    return nullptr;
  }
  s.chan_to_peer = bpf_map__fd(s.skel->maps.chan_to_peer);
  s.chan_to_client = bpf_map__fd(s.skel->maps.chan_to_client);
  s.allocations = bpf_map__fd(s.skel->maps.allocations);
  s.stats = bpf_map__fd(s.skel->maps.stats);
  p->cpus = std::max(libbpf_num_possible_cpus(), 1);
  const int prog_fd = bpf_program__fd(s.skel->progs.anyturn_relay);

  for (const auto& name : opt.interfaces) {
    const int ifindex = static_cast<int>(if_nametoindex(name.c_str()));
    if (ifindex == 0) {
      error = "xdp: cannot attach to " + name + ": " + errno_text(errno == 0 ? ENODEV : errno);
      return nullptr;
    }
    attach_mode used = opt.mode == attach_mode::generic ? attach_mode::generic : attach_mode::native;
    int fd = attach(prog_fd, ifindex, used);
    if (fd < 0 && opt.mode == attach_mode::automatic && fd != -EPERM && fd != -EBUSY) {
      spdlog::info("xdp: native mode refused on {} ({}): trying generic mode", name, std::strerror(-fd));
      used = attach_mode::generic;
      fd = attach(prog_fd, ifindex, used);
    }
    if (fd < 0) {
      error = "xdp: cannot attach to " + name + ": ";
      if (opt.mode == attach_mode::native && fd == -EOPNOTSUPP) {
        error += "driver has no native XDP (use xdp.mode generic or auto)";
      } else {
        error += errno_text(-fd);
        if (fd == -EBUSY) error += " (another XDP program is attached)";
      }
      return nullptr;
    }
    p->links.push_back(fd);
    const auto key = static_cast<std::uint32_t>(ifindex);
    bpf_devmap_val port{};
    port.ifindex = key;
    if (bpf_map_update_elem(bpf_map__fd(s.skel->maps.tx_ports), &key, &port, BPF_ANY) != 0) {
      error = "xdp: cannot add " + name + " to the redirect map: " + errno_text(errno);
      return nullptr;
    }
    p->ifaces.push_back({name, ifindex, used});
    spdlog::info("xdp: attached to {} (ifindex {}, {} mode)", name, ifindex, to_string(used));
  }
  enable_lookup_forwarding();
  return std::unique_ptr<offload>(new offload(std::move(p)));
}

offload::offload(std::unique_ptr<impl> p) : impl_(std::move(p)) {}
offload::~offload() = default;

int offload::program_fd_for_test() const {
  return bpf_program__fd(impl_->shared->skel->progs.anyturn_relay);
}

std::unique_ptr<relay::fast_path> offload::port() { return detail::make_port(impl_->shared); }

const std::vector<attached_interface>& offload::interfaces() const { return impl_->ifaces; }

stats offload::read_stats() const {
  stats out;
  const auto& s = *impl_->shared;
  std::vector<at_stats> per_cpu(static_cast<std::size_t>(impl_->cpus));
  std::uint32_t zero = 0;
  if (bpf_map_lookup_elem(s.stats, &zero, per_cpu.data()) == 0) {
    for (const auto& c : per_cpu) {
      for (std::size_t d = 0; d < direction_count; ++d)
        for (std::size_t a = 0; a < action_count; ++a) out.packets[d][a] += c.packets[d][a];
      for (std::size_t f = 0; f < fallback_count; ++f) out.fallbacks[f] += c.fallbacks[f];
    }
  }
  for (std::size_t f = 0; f < fallback_count; ++f)
    out.fallbacks[f] += s.fallbacks[f].load(std::memory_order_relaxed);
  out.channel_entries = static_cast<std::uint64_t>(std::max<std::int64_t>(s.channel_entries.load(), 0));
  out.allocation_entries =
      static_cast<std::uint64_t>(std::max<std::int64_t>(s.allocation_entries.load(), 0));
  return out;
}

bool can_load(std::string& why) {
  // r0 = XDP_PASS; exit
  const bpf_insn insns[] = {
      {BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, XDP_PASS},
      {BPF_JMP | BPF_EXIT, 0, 0, 0, 0},
  };
  const int fd = bpf_prog_load(BPF_PROG_TYPE_XDP, "anyturn_probe", "GPL", insns, 2, nullptr);
  if (fd < 0) {
    why = "cannot load an XDP program: " + errno_text(errno);
    return false;
  }
  close(fd);
  return true;
}

}  // namespace anyturn::xdp
