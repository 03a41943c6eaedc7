// anyturn-xdp-ceiling — the kernel ceiling for the relay benchmark: loads
// xdp_ceiling.bpf.o (a 4-tuple map, address/port rewrite, FIB lookup,
// XDP_TX or redirect; no TURN) on the given interfaces and answers the bare
// forwarder's registration (forwarder_protocol.hpp) by installing the two
// map entries of a client: client -> listener becomes relay -> peer, and
// peer -> relay becomes listener -> client. The ChannelData header is
// passed through untouched (the peer echoes it back as it is).
//
//   anyturn-xdp-ceiling --listen IP:PORT --relay-ip IP --iface IF [--iface IF...]
//       [--relay-ports LOW-HIGH] [--mode native|generic] [--object PATH]
//       [--max-seconds S]
//
// The program is attached through BPF links, so it goes when the process
// does (SIGINT/SIGTERM, --max-seconds, or a crash). At exit it prints the
// program's counters. IPv4 only.
#include "bench_util.hpp"
#include "forwarder_protocol.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <poll.h>

#include <atomic>
#include <csignal>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#ifndef ANYTURN_XDP_CEILING_OBJECT
#define ANYTURN_XDP_CEILING_OBJECT "xdp_ceiling.bpf.o"
#endif

namespace anyturn::bench {
namespace {

std::atomic<bool> stop_requested{false};
extern "C" void on_signal(int) { stop_requested.store(true); }

// Must match xdp_ceiling.bpf.c.
struct route_key {
  std::uint32_t dst_ip, src_ip;
  std::uint16_t dst_port, src_port;
};
struct route {
  std::uint32_t new_src_ip, new_dst_ip;
  std::uint16_t new_src_port, new_dst_port;
};

struct options {
  sockaddr_in listen{};
  in_addr relay_ip{};
  std::uint32_t port_low = 0, port_high = 0;
  std::vector<std::string> ifaces;
  bool native = true;
  std::string object = ANYTURN_XDP_CEILING_OBJECT;
  int max_seconds = 1800;
};

int usage(const std::string& why) {
  std::cerr << "anyturn-xdp-ceiling: " << why << "\n"
            << "usage: anyturn-xdp-ceiling --listen IP:PORT --relay-ip IP --iface IF [--iface IF...]\n"
            << "         [--relay-ports LOW-HIGH] [--mode native|generic] [--object PATH] [--max-seconds S]\n";
  return 2;
}

class ceiling {
 public:
  explicit ceiling(options o) : o_(std::move(o)) {}
  ~ceiling() {
    for (int fd : links_) ::close(fd);
    for (auto& [port, fd] : relay_fds_) ::close(fd);
    if (control_ >= 0) ::close(control_);
    if (obj_ != nullptr) bpf_object__close(obj_);
  }

  bool load() {
    obj_ = bpf_object__open_file(o_.object.c_str(), nullptr);
    if (obj_ == nullptr) return fail("open " + o_.object);
    if (bpf_object__load(obj_) != 0) return fail("load " + o_.object);
    bpf_program* prog = bpf_object__find_program_by_name(obj_, "xdp_ceiling");
    routes_ = bpf_object__find_map_fd_by_name(obj_, "routes");
    stats_ = bpf_object__find_map_fd_by_name(obj_, "stats");
    if (prog == nullptr || routes_ < 0 || stats_ < 0) return fail("program or maps missing");
    for (const std::string& name : o_.ifaces) {
      const unsigned ifindex = ::if_nametoindex(name.c_str());
      if (ifindex == 0) return fail("no interface " + name);
      LIBBPF_OPTS(bpf_link_create_opts, opts, .flags = o_.native ? XDP_FLAGS_DRV_MODE : XDP_FLAGS_SKB_MODE);
      const int link = bpf_link_create(bpf_program__fd(prog), static_cast<int>(ifindex), BPF_XDP, &opts);
      if (link < 0) return fail("attach to " + name);
      links_.push_back(link);
    }
    control_ = open_udp(o_.listen, 4 << 20);
    if (control_ < 0) return fail("bind " + to_string(o_.listen));
    return true;
  }

  void run() {
    const std::int64_t deadline = now_ns() + std::int64_t{o_.max_seconds} * 1'000'000'000;
    std::array<std::byte, 2048> buf{};
    while (!stop_requested.load() && now_ns() < deadline) {
      pollfd p{control_, POLLIN, 0};
      if (::poll(&p, 1, 200) <= 0) continue;
      for (int k = 0; k < 256; ++k) {
        sockaddr_in from{};
        socklen_t len = sizeof from;
        const ssize_t n = ::recvfrom(control_, buf.data(), buf.size(), MSG_DONTWAIT,
                                     reinterpret_cast<sockaddr*>(&from), &len);
        if (n < 0) break;
        forwarder::control c;
        if (!forwarder::read_control(buf.data(), static_cast<std::size_t>(n), c) || c.op != forwarder::op_register) {
          ++passed_up_;  // data the program passed (no neighbour yet), or garbage
          continue;
        }
        on_register(from, c);
      }
    }
  }

  void report() const {
    const int cpus = libbpf_num_possible_cpus();
    static constexpr const char* names[] = {"tx", "redirect", "pass_no_entry", "pass_no_neighbour"};
    std::cerr << "anyturn-xdp-ceiling: clients=" << clients_ << " passed_up=" << passed_up_;
    for (std::uint32_t key = 0; key < 4 && cpus > 0; ++key) {
      std::vector<std::uint64_t> values(static_cast<std::size_t>(cpus));
      std::uint64_t sum = 0;
      if (bpf_map_lookup_elem(stats_, &key, values.data()) == 0) {
        for (auto v : values) sum += v;
      }
      std::cerr << " " << names[key] << "=" << sum;
    }
    std::cerr << "\n";
  }

 private:
  bool fail(const std::string& what) {
    std::cerr << "anyturn-xdp-ceiling: " << what << ": " << std::strerror(errno) << "\n";
    return false;
  }

  // A relay port of our own (bound, so nobody else takes it), once per client.
  int relay_port_for(std::uint64_t client) {
    if (auto it = client_ports_.find(client); it != client_ports_.end()) return it->second;
    sockaddr_in at{};
    at.sin_family = AF_INET;
    at.sin_addr = o_.relay_ip;
    const std::uint32_t width = o_.port_low == 0 ? 1 : o_.port_high - o_.port_low + 1;
    for (std::uint32_t tries = 0; tries < width; ++tries) {
      at.sin_port = o_.port_low == 0 ? 0 : htons(static_cast<std::uint16_t>(o_.port_low + next_port_++ % width));
      const int fd = open_udp(at, 4096);
      if (fd < 0) continue;
      const int port = ntohs(local_address(fd).sin_port);
      relay_fds_[port] = fd;
      client_ports_[client] = port;
      return port;
    }
    return -1;
  }

  void on_register(const sockaddr_in& from, const forwarder::control& c) {
    const std::uint64_t client = (std::uint64_t{from.sin_addr.s_addr} << 16) | from.sin_port;
    const int port = relay_port_for(client);
    if (port < 0) return;
    const auto relay_port = htons(static_cast<std::uint16_t>(port));
    const route_key up{o_.listen.sin_addr.s_addr, from.sin_addr.s_addr, o_.listen.sin_port, from.sin_port};
    const route to_peer{o_.relay_ip.s_addr, c.ip_be, relay_port, c.port_be};
    const route_key down{o_.relay_ip.s_addr, c.ip_be, relay_port, c.port_be};
    const route to_client{o_.listen.sin_addr.s_addr, from.sin_addr.s_addr, o_.listen.sin_port, from.sin_port};
    if (bpf_map_update_elem(routes_, &up, &to_peer, BPF_ANY) != 0 ||
        bpf_map_update_elem(routes_, &down, &to_client, BPF_ANY) != 0) {
      fail("map update");
      return;
    }
    ++clients_;
    std::array<std::byte, forwarder::control_size> reply{};
    forwarder::write_control(reply.data(), {forwarder::op_registered, o_.relay_ip.s_addr, relay_port});
    ::sendto(control_, reply.data(), reply.size(), MSG_DONTWAIT, reinterpret_cast<const sockaddr*>(&from),
             sizeof from);
  }

  options o_;
  bpf_object* obj_ = nullptr;
  int routes_ = -1, stats_ = -1, control_ = -1;
  std::vector<int> links_;
  std::map<int, int> relay_fds_;
  std::map<std::uint64_t, int> client_ports_;
  std::uint32_t next_port_ = 0;
  std::uint64_t clients_ = 0, passed_up_ = 0;
};

int run(int argc, char** argv) {
  options o;
  bool have_listen = false, have_relay = false;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (i + 1 >= argc) return usage("missing value for " + std::string(a));
    const std::string v = argv[++i];
    if (a == "--listen") {
      auto sa = parse_v4(v);
      if (!sa) return usage("bad --listen");
      o.listen = *sa;
      have_listen = true;
    } else if (a == "--relay-ip") {
      if (::inet_pton(AF_INET, v.c_str(), &o.relay_ip) != 1) return usage("bad --relay-ip");
      have_relay = true;
    } else if (a == "--relay-ports") {
      if (!parse_range(v, o.port_low, o.port_high) || o.port_high > 65535 || o.port_low == 0)
        return usage("bad --relay-ports");
    } else if (a == "--iface") {
      o.ifaces.push_back(v);
    } else if (a == "--mode") {
      if (v != "native" && v != "generic") return usage("--mode is native or generic");
      o.native = v == "native";
    } else if (a == "--object") {
      o.object = v;
    } else if (a == "--max-seconds") {
      o.max_seconds = std::max(1, std::atoi(v.c_str()));
    } else {
      return usage("unknown flag " + std::string(a));
    }
  }
  if (!have_listen || !have_relay || o.ifaces.empty()) return usage("--listen, --relay-ip and --iface are required");
  struct sigaction sa{};
  sa.sa_handler = on_signal;
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
  ceiling c(std::move(o));
  if (!c.load()) return 1;
  std::cerr << "anyturn-xdp-ceiling: attached\n";
  c.run();
  c.report();
  return 0;
}

}  // namespace
}  // namespace anyturn::bench

int main(int argc, char** argv) { return anyturn::bench::run(argc, argv); }
