#!/usr/bin/env python3
"""Sets one offload feature of a network interface, like `ethtool -K IF tx off`
or `ethtool -K IF gro on`, through the SIOCETHTOOL ioctl: the machine has no
ethtool binary. Run it inside the interface's namespace (ip netns exec NS).

    veth_features.py IFACE tx|gro on|off
"""
import ctypes
import fcntl
import socket
import struct
import sys

SIOCETHTOOL = 0x8946
# Legacy ethtool commands (linux/ethtool.h); the kernel maps them onto the
# feature bits (tx: NETIF_F_CSUM_MASK, gro: NETIF_F_GRO).
COMMANDS = {"tx": (0x16, 0x17), "gro": (0x2B, 0x2C)}  # (get, set)


def ethtool_value(sock, iface, cmd, data=0):
    value = ctypes.create_string_buffer(struct.pack("II", cmd, data), 8)
    ifreq = struct.pack("16sP16x", iface.encode(), ctypes.addressof(value))
    fcntl.ioctl(sock.fileno(), SIOCETHTOOL, ifreq)
    return struct.unpack("II", value.raw)[1]


def main():
    if len(sys.argv) != 4 or sys.argv[2] not in COMMANDS or sys.argv[3] not in ("on", "off"):
        sys.exit(__doc__)
    iface, feature, state = sys.argv[1:]
    get, put = COMMANDS[feature]
    wanted = 1 if state == "on" else 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            ethtool_value(sock, iface, put, wanted)
            now = ethtool_value(sock, iface, get)
        except OSError as e:
            sys.exit(f"{iface}: {feature} {state}: {e}")
    if now != wanted:
        sys.exit(f"{iface}: {feature} is still {'on' if now else 'off'}")


if __name__ == "__main__":
    main()
