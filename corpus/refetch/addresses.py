"""Which addresses may be connected to (public ones, or networks the settings allow), IP literals, and DNS
lookups bounded by a timeout."""

from __future__ import annotations

import ipaddress
import socket
import threading
from collections.abc import Iterable
from typing import Any

from corpus.config import IPAddress, IPNetwork
from corpus.refetch.results import ERROR, TIMEOUT, _Stop

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # well-known NAT64 prefix: the last 32 bits are an IPv4 address


def _canonical(ip: IPAddress) -> IPAddress:
    """IPv4-mapped IPv6 (::ffff:a.b.c.d) is the IPv4 address it maps: judge and connect to that."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def is_public_address(ip: IPAddress) -> bool:
    """Whether `ip` is a public internet address: not loopback, private, shared (CGNAT), link-local (which holds
    cloud metadata, 169.254.169.254), site-local (fec0::/10, deprecated but still routed inside some networks),
    multicast, reserved, unspecified or documentation space, in IPv4 or IPv6, and not an IPv6 form of such an
    IPv4 address (mapped, 6to4, NAT64)."""
    ip = _canonical(ip)
    if isinstance(ip, ipaddress.IPv6Address):
        if ip in _NAT64:  # reserved space in ipaddress's view, but on a DNS64 network it is how IPv4 is reached
            return is_public_address(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
        if ip.sixtofour is not None and not is_public_address(ip.sixtofour):
            return False
        if ip.is_site_local:  # ipaddress calls fec0::/10 global
            return False
    special = ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast or ip.is_reserved
    return ip.is_global and not special and not ip.is_unspecified


def address_allowed(ip: IPAddress, allowed_networks: Iterable[IPNetwork] = ()) -> bool:
    """A public address, or one inside a network the settings explicitly allow."""
    ip = _canonical(ip)
    return any(ip.version == net.version and ip in net for net in allowed_networks) or is_public_address(ip)


def _ip_literal(host: str) -> IPAddress | None:
    """`host` as an address if it is one, in any form a URL parser or inet_aton accepts: 10.0.0.1, ::1, and the
    IPv4 shorthands (2130706433, 0x7f.1, 0177.0.0.1, 127.1), so the address check never depends on a resolver."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    return _ipv4_shorthand(host)


def _ipv4_shorthand(host: str) -> ipaddress.IPv4Address | None:
    """The WHATWG URL standard's IPv4 parser: 1 to 4 dot-separated numbers in decimal, octal (leading 0) or hex
    (0x), the last one filling the remaining bytes."""
    parts = host.split(".")
    if parts and parts[-1] == "":
        parts.pop()
    if not 1 <= len(parts) <= 4:
        return None
    numbers = []
    for part in parts:
        text, base = part.lower(), 10
        if text.startswith("0x"):
            text, base = text[2:], 16
        elif len(text) > 1 and text.startswith("0"):
            text, base = text[1:], 8
        if text == "" and base == 16:
            numbers.append(0)
            continue
        try:
            numbers.append(int(text, base) if text and text.isalnum() and text.isascii() else -1)
        except ValueError:
            return None
        if numbers[-1] < 0:
            return None
    if any(n > 255 for n in numbers[:-1]) or numbers[-1] >= 256 ** (5 - len(numbers)):
        return None
    value = numbers[-1]
    for i, n in enumerate(numbers[:-1]):
        value += n << (8 * (3 - i))
    return ipaddress.IPv4Address(value)


def _getaddrinfo(host: str, port: int, timeout: float) -> list[IPAddress]:
    """DNS lookup bounded by `timeout`: getaddrinfo itself cannot be interrupted, so it runs in a daemon thread
    that is abandoned when it takes too long."""
    box: dict[str, Any] = {}

    def lookup() -> None:
        try:
            box["infos"] = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            box["error"] = exc

    thread = threading.Thread(target=lookup, name=f"refetch-dns-{host}", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise _Stop(TIMEOUT, f"DNS lookup of {host} timed out")
    if "error" in box:
        raise _Stop(ERROR, f"DNS lookup of {host} failed: {box['error']}")
    addresses: list[IPAddress] = []
    for _family, _type, _proto, _name, sockaddr in box["infos"]:
        ip = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if ip not in addresses:
            addresses.append(ip)
    return addresses
