"""Server-side request forgery guard: where ingestd may send a request it was told to make (a webhook, a source
URL to fetch).

A URL is resolved, and refused when any address it resolves to is loopback, private, link-local (cloud metadata
lives there), shared, reserved or multicast, also when carried inside an IPv6 address (6to4, NAT64, Teredo,
IPv4-mapped), unless the operator allows the host name or the address. The request then goes to the address
that was checked (the ``Host`` header and TLS server name stay the URL's), so a DNS answer that changes between
the check and the connection (rebinding) cannot redirect it. Redirects are the caller's to check, hop by hop.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import SplitResult, urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# Cloud metadata services, named in the error because they are the usual target of such requests.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "169.254.170.2", "100.100.100.200", "fd00:ec2::254")
)
_SHARED = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT: not "private" to Python, not public either
# IPv6 prefixes whose last 32 bits are an IPv4 address: NAT64 well-known, IPv4-translated (SIIT), IPv4-compatible.
_IPV4_IN_LOW_BITS = tuple(ipaddress.ip_network(n) for n in ("64:ff9b::/96", "::ffff:0:0:0/96", "::/96"))
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")  # the IPv4 address may sit anywhere in it: refused whole


class Refused(Exception):
    """A URL ingestd will not call; ``str()`` says why, ``fields`` name the host, address and reason."""

    def __init__(self, detail: str, **fields: Any) -> None:
        super().__init__(detail)
        self.fields = fields


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for: IPv4-mapped or -translated, IPv4-compatible, 6to4, NAT64
    (RFC 6052) or a Teredo client. A relay or translator on the path delivers to that IPv4 address."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1 to the kernel
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    low32 = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if any(address in net for net in _IPV4_IN_LOW_BITS) and int(address) > 1:  # :: and ::1 are IPv6's own
        return low32
    return None


def refusal_reason(address: IPAddress) -> str | None:
    """Why a request must not go to ``address`` (None: a public address)."""
    if isinstance(address, ipaddress.IPv6Address):
        if address in _NAT64_LOCAL:
            return "a local-use NAT64 address (RFC 8215)"
        inner = embedded_ipv4(address)
        if inner is not None and inner != address.ipv4_mapped:
            why = refusal_reason(inner)
            return f"{why} ({inner}, carried inside this IPv6 address)" if why else None
        address = inner or address
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    checks = [
        (address.is_loopback, "a loopback address"),
        (address.is_link_local, "a link-local address"),
        (isinstance(address, ipaddress.IPv4Address) and address in _SHARED, "a shared (CGNAT) address"),
        (address.is_unspecified, "an unspecified address"),
        (address.is_multicast, "a multicast address"),
        (address.is_private, "a private address"),
        (address.is_reserved, "a reserved address"),
    ]
    return next((why for hit, why in checks if hit), None)


@dataclass(frozen=True)
class Target:
    """A checked URL and the address to connect to."""

    url: str
    host: str
    address: str

    def pinned_url(self) -> str:
        """The URL with its host replaced by the checked address (the port and path kept)."""
        parts = urlsplit(self.url)
        literal = f"[{self.address}]" if ":" in self.address else self.address
        netloc = literal if parts.port is None else f"{literal}:{parts.port}"
        return parts._replace(netloc=netloc).geturl()

    def host_header(self) -> str:
        return urlsplit(self.url).netloc.rsplit("@", 1)[-1]


def _parse(url: str, what: str) -> tuple[SplitResult, str]:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  # raises for a port out of range or not a number
    except ValueError as exc:  # also an unbalanced IPv6 bracket
        raise Refused(f"{what} URL {url!r} is malformed: {exc}", url=url) from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Refused(f"{what} URL {url!r} is not an http(s) URL with a host", url=url)
    if parts.username or parts.password:
        raise Refused(f"{what} URLs may not carry credentials", url=url)
    return parts, parts.hostname


async def _resolve(host: str, port: int, what: str) -> list[IPAddress]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:  # UnicodeError: a host name IDNA cannot encode
        raise Refused(f"{what} host {host!r} does not resolve: {exc}", host=host) from exc
    found: list[IPAddress] = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if address not in found:
            found.append(address)
    return found


def _allowed(address: IPAddress, networks: Sequence[str]) -> bool:
    return any(address in ipaddress.ip_network(n, strict=False) for n in networks)


async def check_url(url: str, *, allow_hosts: Sequence[str], allow_networks: Sequence[str], what: str) -> Target:
    """Resolve ``url`` and check every address it resolves to; raise ``Refused`` saying why and how an operator
    allows it (``what``: "webhook" or "source", whose allow-lists are the settings ``<what>_allow_hosts`` and
    ``<what>_allow_networks``).

    An allow-listed host name passes whatever it resolves to; otherwise each address must be public or inside
    ``allow_networks``.
    """
    parts, host = _parse(url, what)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    addresses = await _resolve(host, port, what)
    if not addresses:
        raise Refused(f"{what} host {host!r} has no address", host=host)
    if host.lower() not in {h.lower() for h in allow_hosts}:
        for address in addresses:
            why = refusal_reason(address)
            if why is not None and not _allowed(address, allow_networks):
                where = f"{address} is" if host.strip("[]") == str(address) else f"{host} resolves to {address},"
                hint = f"INGESTD_{what.upper()}_ALLOW_HOSTS or INGESTD_{what.upper()}_ALLOW_NETWORKS"
                detail = f"{what} target {url!r} refused: {where} {why} (an operator can allow it with {hint})"
                raise Refused(detail, host=host, address=str(address), reason=why)
    return Target(url, host, str(addresses[0]))


__all__ = ["METADATA_ADDRESSES", "Refused", "Target", "check_url", "embedded_ipv4", "refusal_reason"]
