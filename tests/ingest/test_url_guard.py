"""The SSRF guard's decision function, URL checks and DNS-resolved checks."""

from __future__ import annotations

import re

import pytest

from ctistudio.ingest.errors import Refused
from ctistudio.ingest.url_guard import address_refusal, resolve_checked, url_refusal


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.5", "private"),
        ("192.168.1.1", "private"),
        ("fc00::1", "private"),
        ("169.254.10.1", "link-local"),
        ("fe80::1", "link-local"),
        ("100.64.0.1", "non-public"),  # carrier-grade NAT
        ("0.0.0.0", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("::ffff:10.0.0.1", "private"),  # IPv4-mapped IPv6 is judged as the IPv4 inside
        ("64:ff9b::a00:1", "private"),  # NAT64 of 10.0.0.1
        ("2002:a00:1::", "private"),  # 6to4 of 10.0.0.1
    ],
)
def test_non_public_addresses_are_refused_by_default(address, kind):
    reason = address_refusal(address)
    assert reason is not None and reason.startswith(kind)


@pytest.mark.parametrize("address", ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111"])
def test_public_addresses_pass(address):
    assert address_refusal(address) is None


def test_allow_private_opens_private_ranges_but_not_metadata_or_multicast():
    for address in ("127.0.0.1", "::1", "10.0.0.1", "192.168.0.10", "fe80::1"):
        assert address_refusal(address, allow_private=True) is None
    for address in ("169.254.169.254", "::ffff:169.254.169.254", "fd00:ec2::254", "100.100.100.200"):
        assert "cloud metadata" in address_refusal(address, allow_private=True)
    assert address_refusal("224.0.0.1", allow_private=True).startswith("multicast")


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("file:///etc/passwd", "scheme file"),
        ("gopher://x/", "scheme gopher"),
        ("javascript:alert(1)", "scheme javascript"),
        ("http://user:pw@example.org/", "user:password"),
        ("http:///nohost", "no host"),
        ("http://example.org:99999/", "not a valid URL"),
    ],
)
def test_url_refusals(url, fragment):
    assert fragment in url_refusal(url)


def test_ordinary_urls_pass():
    assert url_refusal("https://thedfirreport.com/feed/") is None


async def test_names_are_checked_after_dns_resolution():
    with pytest.raises(Refused) as caught:
        await resolve_checked("localhost", 80, allow_private=False)
    assert "localhost: it resolves to loopback address" in caught.value.message
    assert "CTISTUDIO_ALLOW_PRIVATE_FETCH" in caught.value.fix
    target = await resolve_checked("localhost", 80, allow_private=True)
    assert address_refusal(target.address) is not None  # it is loopback, allowed only by the setting


async def test_literal_addresses_are_checked_without_dns():
    with pytest.raises(Refused, match=re.escape("refused to fetch private address 10.0.0.7")):
        await resolve_checked("10.0.0.7", 80, allow_private=False)
    with pytest.raises(Refused, match=re.escape("cloud metadata address 169.254.169.254")):
        await resolve_checked("169.254.169.254", 80, allow_private=True)
