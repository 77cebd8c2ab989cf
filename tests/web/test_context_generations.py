"""The app's services follow the settings: one pipeline service per settings generation, old ones closed."""

from __future__ import annotations

import hashlib

import pytest

from ctistudio.config import SettingsSource
from ctistudio.store import Store
from ctistudio.store.articles import NewArticle, add_article
from ctistudio.testing.lmstudio_double import LMStudioDouble
from ctistudio.web.context import AppContext, ServiceMissing


def article(store: Store) -> int:
    text = "The actor ran rundll32.exe to load a DLL from %TEMP%. " * 20
    digest = hashlib.sha256(text.encode()).hexdigest()
    with store.session() as session:
        new = NewArticle(
            title="t", content=text, content_hash=digest, simhash=int(digest[:16], 16), origin="text", hunt_score=50
        )
        return add_article(session, new).id


@pytest.fixture
def saved():
    """Overrides "saved in the UI": bump ``version`` to make a new settings generation."""
    return {"version": 1, "values": {"embedded": False, "llm_provider": "lmstudio"}}


def context(saved, store: Store | None) -> AppContext:
    return AppContext(SettingsSource(lambda: (saved["version"], saved["values"]), poll_seconds=0), store=store)


async def test_a_settings_change_makes_a_new_service_and_closes_the_idle_one(saved, tmp_path):
    with Store(url=f"sqlite:///{tmp_path / 'app.db'}") as store:
        ctx = context(saved, store)
        first = ctx.pipeline()
        assert ctx.pipeline() is first and ctx.chat() is ctx.chat()
        chat = ctx.chat()
        saved["version"] = 2
        second = ctx.pipeline()
        assert second is not first and second.settings is not first.settings
        assert ctx.pipelines() == [second]  # the first had no runs going: closed, not kept
        assert ctx.chat() is not chat
        for version in range(3, 8):  # many saves do not pile services up
            saved["version"] = version
            ctx.pipeline()
        assert len(ctx.pipelines()) == 1
        await ctx.aclose()


async def test_a_service_with_a_run_going_is_kept_until_the_run_ends(saved, tmp_path):
    with LMStudioDouble(latency=1.0) as slow, Store(url=f"sqlite:///{tmp_path / 'app.db'}") as store:
        saved["values"].update(slow.env())
        ctx = context(saved, store)
        first = ctx.pipeline()
        run_id = await first.start_run(article(store), force=True)
        saved["version"] = 2
        second = ctx.pipeline()
        assert ctx.pipelines() == [first, second]  # its run is still going: cancelling it must find it
        await first.wait(run_id)
        assert ctx.pipelines() == [second] and ctx.pipeline() is second
        await ctx.aclose()


def test_without_a_store_the_services_say_why(saved):
    ctx = context(saved, None)
    with pytest.raises(ServiceMissing, match="no database is configured"):
        ctx.pipeline()
    with pytest.raises(ServiceMissing, match="no database is configured"):
        ctx.chat()
