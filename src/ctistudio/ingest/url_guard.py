"""The SSRF guard: which URLs and addresses ctistudio may fetch.

A URL is fetched only if its scheme is http(s) and *every* address its host resolves to is a public
(global unicast) address. Loopback, private (RFC 1918, ULA), link-local, CGNAT, multicast, reserved and
unspecified addresses are refused unless ``CTISTUDIO_ALLOW_PRIVATE_FETCH=true`` (for an intranet wiki, or
the local feed server of the tests). Cloud metadata endpoints (169.254.169.254 and friends) are refused
even then: nothing worth ingesting lives there. The guarded transport in :mod:`ctistudio.ingest.http_fetch`
connects to the very address that was checked (no second DNS lookup to rebind), on every redirect hop.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from ctistudio.ingest.errors import Refused

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean …
        "169.254.170.2",  # AWS ECS task metadata
        "169.254.169.123",  # AWS time sync
        "100.100.100.200",  # Alibaba Cloud
        "168.63.129.16",  # Azure wire server
        "fd00:ec2::254",  # AWS IMDS over IPv6
    )
)
FIX = "Only public http(s) sites are fetched; set CTISTUDIO_ALLOW_PRIVATE_FETCH=true to allow private addresses."


def _unwrap(address: IPAddress) -> IPAddress:
    """IPv4 hidden inside IPv6 (``::ffff:10.0.0.1``, 6to4, NAT64 well-known prefix) is judged as IPv4."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address.sixtofour is not None:
            return address.sixtofour
        if address in ipaddress.ip_network("64:ff9b::/96"):
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


def address_refusal(address: IPAddress | str, *, allow_private: bool = False) -> str | None:
    """Why ``address`` may not be fetched (``None`` if it may). The guard's one decision function."""
    ip = _unwrap(ipaddress.ip_address(address) if isinstance(address, str) else address)
    if ip in METADATA_ADDRESSES:
        return f"cloud metadata address {ip}"
    if ip.is_global and not ip.is_multicast:
        return None
    if allow_private and not (ip.is_multicast or ip.is_unspecified):
        return None
    for label, test in (
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("unspecified", ip.is_unspecified),
        ("private", ip.is_private),
        ("reserved", ip.is_reserved),
    ):
        if test:
            return f"{label} address {ip}"
    return f"non-public address {ip}"


@dataclass(frozen=True)
class CheckedTarget:
    """A host and the address we checked and will connect to."""

    host: str
    port: int
    address: str


def url_refusal(url: str) -> str | None:
    """Why a URL is refused before any lookup (scheme, credentials, missing host), or ``None``."""
    try:
        parts = urlsplit(url)
        port = parts.port
        _ = httpx.URL(url).host  # what the client will parse: 0177.0.0.1, xn-- … fail here, not mid-fetch
    except (ValueError, UnicodeError, httpx.InvalidURL) as exc:
        return f"not a valid URL ({exc})"
    if parts.scheme not in ("http", "https"):
        return f"scheme {parts.scheme or '(none)'}: is not fetched (only http and https)"
    if not parts.hostname:
        return "the URL has no host"
    if parts.username or parts.password:
        return "URLs with user:password@ are not fetched"
    if port == 0:
        return "port 0 is not fetched"
    return None


async def resolve_checked(host: str, port: int, *, allow_private: bool) -> CheckedTarget:
    """Resolve ``host`` and check every address; raise :class:`Refused` if any is not allowed."""
    try:
        literal = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [str(literal)]
    else:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise Refused(f"cannot resolve host {host!r}: {exc.strerror}", fix="Check the URL's host name.") from exc
        except UnicodeError as exc:  # an empty or over-long label (a..b, xn--): the IDNA codec refuses it
            raise Refused(f"{host[:100]!r} is not a valid host name ({exc})", fix="Check the URL's host name.") from exc
        addresses = list(dict.fromkeys(str(info[4][0]).split("%")[0] for info in infos))
    for address in addresses:
        reason = address_refusal(address, allow_private=allow_private)
        if reason:
            where = "" if literal is not None else f"{host}: it resolves to "
            raise Refused(f"refused to fetch {where}{reason}", fix=FIX)
    return CheckedTarget(host=host, port=port, address=addresses[0])
