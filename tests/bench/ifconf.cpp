// anyturn-bench-ifconf — sets a network interface's tx checksum offload and
// GRO, for the benchmark's veth topology where ethtool(8) is not installed
// (the legacy ETHTOOL_STXCSUM / ETHTOOL_SGRO ioctls, still served by Linux).
//
//   anyturn-bench-ifconf IFACE [tx on|off] [gro on|off]
//
// Run inside the interface's network namespace (ip netns exec NS ...).
#include <linux/ethtool.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string_view>

int main(int argc, char** argv) {
  if (argc < 4 || argc % 2 != 0) {
    std::fprintf(stderr, "usage: anyturn-bench-ifconf IFACE [tx on|off] [gro on|off]\n");
    return 2;
  }
  const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 1;
  int rc = 0;
  for (int i = 2; i + 1 < argc; i += 2) {
    const std::string_view what = argv[i];
    const std::string_view value = argv[i + 1];
    ethtool_value ev{};
    if (what == "tx") ev.cmd = ETHTOOL_STXCSUM;
    else if (what == "gro") ev.cmd = ETHTOOL_SGRO;
    else {
      std::fprintf(stderr, "anyturn-bench-ifconf: unknown setting %s\n", argv[i]);
      return 2;
    }
    ev.data = value == "on" ? 1 : 0;
    ifreq ifr{};
    std::strncpy(ifr.ifr_name, argv[1], IFNAMSIZ - 1);
    ifr.ifr_data = reinterpret_cast<char*>(&ev);
    if (::ioctl(fd, SIOCETHTOOL, &ifr) != 0) {
      std::fprintf(stderr, "anyturn-bench-ifconf: %s %s %s: %s\n", argv[1], argv[i], argv[i + 1], std::strerror(errno));
      rc = 1;
    }
  }
  ::close(fd);
  return rc;
}
