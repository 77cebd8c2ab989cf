"""Source definitions, health bookkeeping and check history."""

from __future__ import annotations

from datetime import timedelta

import pytest

from ctistudio.errors import InvalidInput, NotFound
from ctistudio.store.sources import (
    CheckOutcome,
    SourceDefinition,
    add_source,
    due_sources,
    get_source,
    list_source_checks,
    list_sources,
    record_source_check,
    set_source_active,
    sync_sources,
)
from ctistudio.store.types import utcnow


def _definition(source_id: str = "dfir", **overrides) -> SourceDefinition:
    values = {
        "id": source_id,
        "name": f"Source {source_id}",
        "url": f"https://{source_id}.example/",
        "rss_url": f"https://{source_id}.example/feed/",
        "check_frequency": 1800,
        "config": {"min_content_length": 500, "allowed_domains": [f"{source_id}.example"]},
    }
    values.update(overrides)
    return SourceDefinition(**values)


def test_sync_adds_then_updates_but_keeps_a_disabled_source_disabled(store):
    with store.session() as session:
        assert sync_sources(session, [_definition("a"), _definition("b")]) == (2, 0)
        set_source_active(session, "a", False)
    with store.session() as session:
        assert sync_sources(session, [_definition("a", name="Renamed"), _definition("b")]) == (0, 1)
        source = get_source(session, "a")
        assert (source.name, source.active, source.origin) == ("Renamed", False, "yaml")
        assert source.config["allowed_domains"] == ["a.example"]
        assert [s.id for s in list_sources(session, active=True)] == ["b"]


def test_add_refuses_an_existing_id(store):
    with store.session() as session:
        add_source(session, _definition("a"))
        with pytest.raises(InvalidInput, match="exists already"):
            add_source(session, _definition("a"))
        with pytest.raises(NotFound):
            get_source(session, "zzz")


def test_health_follows_checks(store):
    with store.session() as session:
        add_source(session, _definition("a"))
        started = utcnow()
        record_source_check(session, "a", CheckOutcome("failed", started, error="connection refused"))
        record_source_check(session, "a", CheckOutcome("refused", started, error="loopback address refused"))
        source = get_source(session, "a")
        assert (source.consecutive_failures, source.last_error) == (2, "loopback address refused")
        assert source.last_success_at is None
        record_source_check(
            session,
            "a",
            CheckOutcome("ok", started, http_status=200, response_ms=12.5, articles_new=3, etag='"v1"'),
        )
        source = get_source(session, "a")
        assert (source.consecutive_failures, source.last_error, source.etag) == (0, None, '"v1"')
        assert source.last_response_ms == 12.5
        # a 304 keeps the validators it was sent with
        record_source_check(session, "a", CheckOutcome("not_modified", started, http_status=304))
        assert get_source(session, "a").etag == '"v1"'
        checks = list_source_checks(session, "a")
        assert [c.status for c in checks] == ["not_modified", "ok", "refused", "failed"]
        assert checks[1].articles_new == 3


def test_due_sources_follow_check_frequency(store):
    with store.session() as session:
        add_source(session, _definition("a", check_frequency=3600))
        add_source(session, _definition("b", check_frequency=60))
        add_source(session, _definition("c", active=False))
        assert [s.id for s in due_sources(session)] == ["a", "b"]
        for source_id in ("a", "b"):
            record_source_check(session, source_id, CheckOutcome("ok", utcnow()))
        assert due_sources(session) == []
        later = utcnow() + timedelta(seconds=120)
        assert [s.id for s in due_sources(session, now=later)] == ["b"]
        assert [s.id for s in due_sources(session, force=True)] == ["a", "b"]
