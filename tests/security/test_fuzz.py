"""Fuzzing the three readers of hostile text: the Sigma validator, the front-matter reader, the feed reader.

1,000 generated cases each (Hypothesis, derandomized so CI sees the same cases every run). A reader may
answer only with its documented outcome — the validator never raises (every problem is an issue), the
front-matter reader returns a document or raises ``Refused``, the feed reader returns entries or raises
``FetchFailed`` — and no case may take over 2 s (Hypothesis' deadline).
"""

from __future__ import annotations

from datetime import datetime

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.security.conftest import alias_bomb

from ctistudio.ingest.documents import Document, markdown_document
from ctistudio.ingest.errors import FetchFailed, Refused
from ctistudio.ingest.feeds import ParsedFeed, parse_feed
from ctistudio.sigma import validate_rule

FUZZ = settings(
    max_examples=1000,
    deadline=2000,  # milliseconds: no case over 2 s
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

YAML_CHARS = ":-[]{}&*!|>'\"%@`#,?\n\t .\\0123456789abcxyz"
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.sampled_from(["2024-13-45", "2024-01-01", "~", "null", "yes", "0x1F", "1e999", "&a", "*a", "!!binary x"]),
)
trees = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=30,
)
FIELDS = ["Image", "CommandLine", "ParentImage", "TargetObject", "EventID", "User", "Hashes", "Details", "x y"]
MODIFIERS = ["", "|contains", "|endswith", "|startswith", "|re", "|base64offset|contains", "|all", "|cidr", "|nope"]
selections = st.dictionaries(
    st.builds(lambda f, m: f + m, st.sampled_from(FIELDS), st.sampled_from(MODIFIERS)),
    st.one_of(scalars, st.lists(scalars, max_size=4)),
    max_size=4,
)
sigma_rules = st.fixed_dictionaries(
    {
        "title": st.one_of(st.text(max_size=80), scalars),
        "logsource": st.one_of(
            st.fixed_dictionaries(
                {
                    "product": st.sampled_from(["windows", "linux", "macos", "", "nope"]),
                    "category": st.sampled_from(["process_creation", "registry_set", "dns", "", "x"]),
                }
            ),
            trees,
        ),
        "detection": st.one_of(
            st.builds(
                lambda sel, cond: {"selection": sel, "condition": cond},
                selections,
                st.sampled_from(["selection", "selection and not filter", "1 of selection*", "all of them", "(", ""]),
            ),
            trees,
        ),
    },
    optional={
        "id": st.one_of(st.uuids().map(str), st.text(max_size=40)),
        "level": st.sampled_from(["low", "medium", "high", "critical", "urgent", ""]),
        "tags": st.lists(st.sampled_from(["attack.t1059.001", "attack.execution", "attack.t9999", "cve.2024-1"])),
        "date": st.sampled_from(["2024-01-01", "2024/01/01", "2024-13-45", "yesterday"]),
        "status": st.sampled_from(["test", "stable", "experimental", "weird"]),
    },
)


def _dump(value: object) -> str:
    return yaml.safe_dump(value, allow_unicode=True, sort_keys=False)


yaml_texts = st.one_of(
    sigma_rules.map(_dump),
    trees.map(_dump),
    st.text(alphabet=YAML_CHARS, max_size=300),
    st.text(max_size=300),
    st.builds(
        lambda levels, width: "\n".join(alias_bomb(levels, width)) + "\nx: *a0\n", st.integers(1, 9), st.integers(1, 9)
    ),
    st.integers(1, 200).map(lambda depth: "x: " + "[" * depth + "]" * depth),
)


@FUZZ
@given(yaml_texts)
def test_sigma_validator_never_raises(text):
    result = validate_rule(text)
    assert isinstance(result.valid, bool)
    assert result.valid == (not any(issue.severity == "error" for issue in result.issues))
    if not result.valid:
        assert result.issues, "an invalid rule comes with its reasons"


front_matters = st.one_of(
    st.fixed_dictionaries(
        {},
        optional={
            "title": trees,
            "author": trees,
            "url": st.one_of(st.sampled_from(["javascript:alert(1)", "http://x.example/a", "data:,x", ""]), trees),
            "published": st.one_of(st.sampled_from(["2024-02-30", "2024-01-01T10:00:00Z", "soon"]), trees),
            "date": trees,
        },
    ).map(_dump),
    st.text(alphabet=YAML_CHARS, max_size=200),
    st.builds(lambda levels: "\n".join(alias_bomb(levels, 9)) + f"\ntitle: *a{levels - 1}", st.integers(1, 9)),
)
bodies = st.text(max_size=400)


@FUZZ
@given(front_matters, bodies)
def test_front_matter_reader_returns_a_document_or_refuses(header, body):
    text = f"---\n{header}\n---\n{body}"
    try:
        document = markdown_document(text)
    except Refused as refused:
        assert refused.message and refused.fix
        return
    assert isinstance(document, Document) and isinstance(document.text, str)
    assert document.title is None or isinstance(document.title, str)
    assert document.url is None or isinstance(document.url, str)
    assert document.published_at is None or isinstance(document.published_at, datetime)


XML_TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=60)


def _rss(title: str, items: list[tuple[str, str, str, str]]) -> str:
    body = "".join(
        f"<item><title>{t}</title><link>{link}</link><pubDate>{date}</pubDate><description>{d}</description></item>"
        for t, link, date, d in items
    )
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>{title}</title>{body}</channel></rss>'


def _atom(title: str, items: list[tuple[str, str, str, str]]) -> str:
    body = "".join(
        f'<entry><title>{t}</title><link href="{link}"/><updated>{date}</updated>'
        f'<content type="html">{d}</content></entry>'
        for t, link, date, d in items
    )
    return f'<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>{title}</title>{body}</feed>'


items = st.lists(
    st.tuples(
        XML_TEXT,
        st.one_of(st.sampled_from(["https://x.example/a", "javascript:alert(1)", "", "//x", "http://[::1"]), XML_TEXT),
        st.one_of(st.sampled_from(["Mon, 01 Jan 2024 10:00:00 GMT", "2024-99-99", "9999999999999"]), XML_TEXT),
        XML_TEXT,
    ),
    max_size=6,
)
feeds = st.one_of(
    st.builds(_rss, XML_TEXT, items),
    st.builds(_atom, XML_TEXT, items),
    st.builds(
        lambda n: (
            '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "lol">'
            + "".join(f'<!ENTITY a{i} "{"&a;" * 9 if i == 1 else f"&a{i - 1};" * 9}">' for i in range(1, n + 1))
            + f']><rss version="2.0"><channel><title>&a{n};</title></channel></rss>'
        ),
        st.integers(1, 9),
    ),
    st.text(max_size=300),
).map(lambda text: text.encode("utf-8", errors="replace"))
binary_feeds = st.binary(max_size=300)


@FUZZ
@given(
    st.one_of(feeds, binary_feeds), st.sampled_from(["application/rss+xml", "application/atom+xml", "text/html", ""])
)
def test_feed_reader_returns_entries_or_refuses(body, content_type):
    try:
        parsed = parse_feed(body, "https://feeds.example/rss", content_type)
    except FetchFailed as failed:
        assert "not a readable RSS/Atom feed" in failed.message or "declares XML entities" in failed.message
        assert failed.fix
        return
    assert isinstance(parsed, ParsedFeed)
    for entry in parsed.entries:
        assert isinstance(entry.link, str) and entry.link and isinstance(entry.title, str)
        assert entry.published_at is None or isinstance(entry.published_at, datetime)


# -- what the fuzzing found, kept as plain regression tests --------------------------------------------
def test_an_item_with_an_empty_pubdate_reads_without_a_warning():
    body = _rss("Lab", [("Report", "https://x.example/a", "", "text")]).encode()
    (entry,) = parse_feed(body, "https://feeds.example/rss", "application/rss+xml").entries
    assert entry.published_at is None and entry.link == "https://x.example/a"


def test_a_feed_declaring_entities_is_refused_before_parsing():
    bomb = b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "lol">]><rss version="2.0"><channel/></rss>'
    with pytest.raises(FetchFailed, match="declares XML entities"):
        parse_feed(bomb, "https://feeds.example/rss", "application/rss+xml")
