"""Observables as typed indicators of compromise: IPv4/IPv6 addresses, domains, URLs and file hashes.

Articles defang their indicators (``lantern-sync[.]workers[.]dev``, ``hxxps://``); the exports refang them,
drop a port from an address (``203.0.113.77:8443``), and leave out what is not an indicator to share: an
address on a private, loopback or link-local network (a victim's own host) and values that do not parse.
Documentation ranges (RFC 5737) are kept: reports and demos use them for real indicators.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from typing import Literal

from pydantic import BaseModel

from ctistudio.export.material import ExportObservable

IocType = Literal["ipv4", "ipv6", "domain", "url", "md5", "sha1", "sha256"]

_DEFANG = [
    (re.compile(r"\[\.\]|\(\.\)|\{\.\}|\[dot\]", re.I), "."),
    (re.compile(r"\[:\]"), ":"),
    (re.compile(r"^hxxp", re.I), "http"),
    (re.compile(r"^fxp", re.I), "ftp"),
]
_DOMAIN = re.compile(r"^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,62}$", re.I)
_URL = re.compile(r"^(?:https?|ftp)://[^\s/$.?#][^\s]*$", re.I)
_HASH_TYPES: dict[int, IocType] = {32: "md5", 40: "sha1", 64: "sha256"}
_INTERNAL_V4 = [ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10")]


class Ioc(BaseModel):
    """One indicator, refanged, with the article it came from."""

    type: IocType
    value: str
    article_id: int
    evidence: str | None = None


def refang(value: str) -> str:
    text = value.strip().strip("`'\"<>")
    for pattern, replacement in _DEFANG:
        text = pattern.sub(replacement, text)
    return text


def _address(value: str) -> tuple[IocType, str] | None:
    host = value
    if host.count(":") == 1 and "." in host:  # 203.0.113.77:8443
        host = host.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
    if address.is_loopback or address.is_link_local or address.is_unspecified or address.is_multicast:
        return None
    if address.version == 4 and any(address in net for net in _INTERNAL_V4):
        return None
    if address.version == 6 and address.is_private and not str(address).startswith("2001:db8"):
        return None
    return ("ipv4" if address.version == 4 else "ipv6"), str(address)


def classify(observable: ExportObservable) -> Ioc | None:
    """The indicator an observable is, or ``None`` (not a network or hash observable, or unusable)."""
    if observable.kind not in ("network", "hash"):
        return None
    value = refang(observable.value)
    found: tuple[IocType, str] | None = None
    if observable.kind == "hash":
        if re.fullmatch(r"[0-9a-fA-F]+", value) and len(value) in _HASH_TYPES:
            found = _HASH_TYPES[len(value)], value.lower()
    elif _URL.match(value):
        found = "url", value
    else:
        found = _address(value)
        if found is None and _DOMAIN.match(value.rstrip(".")):
            found = "domain", value.rstrip(".").lower()
    if found is None:
        return None
    return Ioc(type=found[0], value=found[1], article_id=observable.article_id, evidence=observable.evidence)


def indicators(observables: Iterable[ExportObservable]) -> list[Ioc]:
    """The distinct indicators among ``observables`` (first occurrence kept), in their order."""
    seen: dict[tuple[str, str], Ioc] = {}
    for observable in observables:
        ioc = classify(observable)
        if ioc is not None:
            seen.setdefault((ioc.type, ioc.value), ioc)
    return list(seen.values())
