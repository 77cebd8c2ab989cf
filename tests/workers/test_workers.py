"""Pipeline runs on real Celery workers over a real Redis: a worker SIGKILLed mid-step loses nothing and
duplicates nothing, on SQLite and on PostgreSQL; the result equals a single-process run of the same articles."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from ctistudio.config import Settings, load_settings
from ctistudio.llm import Gateway
from ctistudio.pipeline.service import PipelineService
from ctistudio.store import Store
from ctistudio.store.models import PipelineRun
from ctistudio.store.rules import run_rules
from ctistudio.store.runs import checkpoints, observable_counts
from ctistudio.testing.lmstudio_double import LMStudioDouble
from ctistudio.testing.worker_fleet import WorkerFleet, add_demo_variants, fleet_env
from ctistudio.web.app import create_app

pytestmark = pytest.mark.slow

RUNS = 10
BASE = "http://127.0.0.1"  # a Host the web app answers to
FINAL = ("succeeded", "failed", "cancelled", "gated")


def _use(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    for key, value in env.items():
        if key.startswith(("CTISTUDIO_", "LMSTUDIO_", "LLM_")):
            monkeypatch.setenv(key, value)
    return load_settings(env_file=None)


def _outcome(store: Store, run_ids: list[int]) -> dict[str, tuple[int, dict[str, int]]]:
    """Per article (added in the same order in both stores): (rules, observables by kind) of its run."""
    out = {}
    with store.session() as session:
        for run_id in run_ids:
            run = session.get(PipelineRun, run_id)
            assert run is not None
            out[str(run.article_id)] = (len(run_rules(session, run_id)), observable_counts(session, run_id))
    return out


@pytest.fixture(scope="module")
def single_process(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[int, dict[str, int]]]:
    """The same articles run in ONE process (no broker): what the workers must reproduce."""
    data = tmp_path_factory.mktemp("single")
    with LMStudioDouble() as lms, Store(url=f"sqlite:///{data / 'single.db'}") as store:
        settings = load_settings(
            {"LMSTUDIO_API_URL": lms.url, "LLM_PROVIDER": "lmstudio", "CTISTUDIO_DATA_DIR": str(data)}, env_file=None
        )
        ids = add_demo_variants(store, RUNS)

        async def run_all() -> list[int]:
            async with Gateway(settings) as gateway:
                service = PipelineService(settings, store, gateway, concurrency=2)
                runs = [await service.start_run(article, force=True) for article in ids]
                assert {await service.wait(r) for r in runs} == {"succeeded"}
                return runs

        return _outcome(store, asyncio.run(run_all()))


async def _wait_for_mid_step(store: Store, worker: str, timeout: float = 120) -> tuple[int, str]:
    """A run ``worker`` holds that has finished a step and is inside the next one: (run id, that step)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with store.session() as session:
            held = session.query(PipelineRun).filter(PipelineRun.worker == worker, PipelineRun.status == "running")
            for run in held:
                stored = checkpoints(session, run.id)
                running = [name for name, cp in stored.items() if cp.status == "running"]
                if running and any(cp.status == "succeeded" for cp in stored.values()):
                    return run.id, running[0]
        await asyncio.sleep(0.02)
    raise AssertionError(f"{worker} never got into the middle of a step")


async def _wait_all(store: Store, run_ids: list[int], timeout: float = 180) -> dict[int, str]:
    deadline = time.monotonic() + timeout
    while True:
        with store.session() as session:
            statuses = {r: session.get(PipelineRun, r).status for r in run_ids}  # type: ignore[union-attr]
        if all(s in FINAL for s in statuses.values()) or time.monotonic() > deadline:
            return statuses
        await asyncio.sleep(0.2)


async def _kill_one_worker_mid_step(database_url: str, data: Path, broker_url: str, monkeypatch, single_process):
    with LMStudioDouble(latency=0.1) as lms:
        env = fleet_env(broker_url, database_url, data, lms)
        settings = _use(env, monkeypatch)
        with Store(settings) as store:
            articles = add_demo_variants(store, RUNS)
            with WorkerFleet(env, count=2) as fleet:
                async with Gateway(settings) as gateway:
                    service = PipelineService(settings, store, gateway)
                    run_ids = [await service.start_run(article, force=True) for article in articles]
                    victim, step = await _wait_for_mid_step(store, fleet.name(0))
                    fleet.kill(0)
                    statuses = await _wait_all(store, run_ids)
                    summaries = {s.id: s for s in service.list_runs(limit=RUNS)}
                logs = fleet.log(1)

            # all ten finished, the victim by the worker that survived
            assert statuses == dict.fromkeys(run_ids, "succeeded"), logs[-3000:]
            assert summaries[victim].worker == fleet.name(1) and not summaries[victim].worker_active

            # every step stored once; only the step the kill interrupted was started a second time
            with store.session() as session:
                attempts = Counter()
                for run_id in run_ids:
                    stored = checkpoints(session, run_id)
                    assert sorted(stored) == sorted(["prepare", "rank", "extract", "sigma", "novelty"])
                    assert all(cp.status in ("succeeded", "skipped") for cp in stored.values())
                    for name, cp in stored.items():
                        attempts[(run_id, name)] = cp.attempts
            redone = {key: n for key, n in attempts.items() if n != 1}
            assert redone in ({}, {(victim, step): 2}), redone

            # nothing duplicated, nothing lost: the same rules and observables as one process made
            assert _outcome(store, run_ids) == single_process

            # the Runs page and the API say which worker ran each run
            page, api = await _runs_page_and_api(settings)
            assert f'data-worker="{fleet.name(1)}"' in page
            by_id = {r["id"]: r for r in api}
            assert by_id[victim]["worker"] == fleet.name(1) and by_id[victim]["worker_active"] is False
            assert {r["worker"] for r in api} <= {fleet.name(0), fleet.name(1)}


async def _runs_page_and_api(settings: Settings) -> tuple[str, list[dict]]:
    app = create_app(settings, env_file=None)
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        page = await client.get("/runs")
        api = await client.get("/api/runs", params={"limit": RUNS})
    assert page.status_code == api.status_code == 200
    return page.text, api.json()


async def test_a_worker_killed_mid_step_loses_and_duplicates_nothing(
    tmp_path: Path, broker_url: str, monkeypatch: pytest.MonkeyPatch, single_process
):
    data = tmp_path / "data"
    await _kill_one_worker_mid_step(f"sqlite:///{data / 'team.db'}", data, broker_url, monkeypatch, single_process)


@pytest.mark.postgres
async def test_a_worker_killed_mid_step_on_postgresql(
    tmp_path: Path, broker_url: str, postgres_server, monkeypatch: pytest.MonkeyPatch, single_process
):
    url = postgres_server.create_database("workers_kill")
    try:
        await _kill_one_worker_mid_step(url, tmp_path / "data", broker_url, monkeypatch, single_process)
    finally:
        postgres_server.drop_database("workers_kill")
