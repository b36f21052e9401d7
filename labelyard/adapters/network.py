"""Reaching addresses that users name (remote files, export URLs, git repositories)
without becoming a way into the server's own network.

A host name is resolved once, every address it has is checked, and the connection goes
to the address that was checked: resolving again to connect would let a name that
answers a public address to the check and a private one a moment later (DNS rebinding)
through. ``pinned`` does it for an HTTP request; git's transports take the checked
address from ``resolve`` (see adapters/git.py)."""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass, field

import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# NAT64's prefix: its addresses reach the IPv4 address they end with.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
DEFAULT_PORTS = {"http": 80, "https": 443, "git": 9418, "ssh": 22}


class AddressRefused(ValueError):
    """The host cannot be resolved, or resolves to an address that is not public; the
    message says which, for the user (callers say what it was for)."""


class HostNotFound(AddressRefused):
    """The name does not resolve (now: a name may come to resolve later)."""


def is_public(address: IPAddress) -> bool:
    """Globally routable unicast: no loopback, private, link-local (cloud metadata at
    169.254.169.254), shared, reserved, multicast or unspecified address, also not
    when an IPv6 address carries one of IPv4's."""
    if isinstance(address, ipaddress.IPv6Address):
        carried = address.ipv4_mapped or address.sixtofour
        if carried is None and address in _NAT64:
            carried = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if carried is not None:
            return is_public(carried)
    return address.is_global and not address.is_multicast


def resolve(host: str, port: int, *, allow_private: bool = False) -> str:
    """The address to connect to for ``host``: resolved once, and refused unless every
    address the name has is public (``allow_private`` lets any through, for tests and
    closed networks). Raises AddressRefused."""
    bare = host.strip("[]")
    try:
        infos = socket.getaddrinfo(bare, port, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        raise HostNotFound("the host cannot be resolved") from None
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
    if not addresses:
        raise HostNotFound("the host cannot be resolved")
    if not allow_private:
        for address in addresses:
            if not is_public(address):
                raise AddressRefused(f"the address {address} is not a public one")
    return str(addresses[0])


@dataclass(frozen=True)
class PinnedRequest:
    """An HTTP request to ``url`` sent to an address checked once: the URL names the
    address, the Host header and TLS (SNI, and the certificate's name) the host."""

    url: httpx.URL
    headers: dict[str, str] = field(default_factory=dict)
    extensions: dict[str, str] = field(default_factory=dict)


def pinned(url: str, *, allow_private: bool = False) -> PinnedRequest:
    """``url`` (http or https) to send to its host's checked address. Raises
    AddressRefused, or ValueError for a URL that is not http(s)."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise ValueError(str(exc)) from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ValueError("only http and https URLs can be fetched")
    port = parsed.port or DEFAULT_PORTS[parsed.scheme]
    address = resolve(parsed.host, port, allow_private=allow_private)
    extensions = {"sni_hostname": parsed.host} if parsed.scheme == "https" else {}
    return PinnedRequest(
        parsed.copy_with(host=address), {"Host": parsed.netloc.decode("ascii")}, extensions
    )
