"""Canonical URLs, content hash and simhash: one definition each."""

from __future__ import annotations

import pytest

from ctistudio.errors import InvalidInput
from ctistudio.ingest.canonical_url import canonical_url
from ctistudio.ingest.fingerprints import content_hash, simhash
from ctistudio.store.articles import hamming_distance

ARTICLE = " ".join(f"sentence {n} about the loader, its persistence and the command lines it ran" for n in range(60))


@pytest.mark.parametrize(
    ("url", "canonical"),
    [
        ("https://Example.org:443/a//b/?utm_source=x&b=2&a=1#top", "https://example.org/a/b/?a=1&b=2"),
        ("HTTP://example.org:80", "http://example.org/"),
        ("https://example.org/post?fbclid=1&gclid=2&mc_cid=3&id=7", "https://example.org/post?id=7"),
        ("https://example.org/p?UTM_Medium=rss&_hsenc=x", "https://example.org/p"),
        ("https://example.org:8443/p", "https://example.org:8443/p"),
        ("https://bücher.example/%7Euser/", "https://xn--bcher-kva.example/~user/"),
    ],
)
def test_canonical_url(url, canonical):
    assert canonical_url(url) == canonical


def test_canonical_url_refuses_non_http():
    with pytest.raises(InvalidInput):
        canonical_url("ftp://example.org/x")


def test_content_hash_ignores_case_whitespace_and_punctuation():
    assert content_hash("Hello,  World!\n") == content_hash("hello world")
    assert content_hash("hello world") != content_hash("hello there world")


def test_simhash_near_duplicates_are_close_and_different_texts_far():
    edited = ARTICLE.replace("sentence 30 about", "sentence 30 regarding")
    other = " ".join(f"unrelated paragraph {n} on cloud identity abuse and token theft" for n in range(60))
    assert hamming_distance(simhash(ARTICLE), simhash(ARTICLE)) == 0
    assert hamming_distance(simhash(ARTICLE), simhash(edited)) <= 3
    assert hamming_distance(simhash(ARTICLE), simhash(other)) > 10
    assert 0 <= simhash(ARTICLE) < 2**64
