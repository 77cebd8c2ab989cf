"""The queued runner (CTISTUDIO_BROKER_URL set) on its own: what it refuses before anything is enqueued."""

from __future__ import annotations

import pytest

from ctistudio.config import load_settings
from ctistudio.llm import Gateway
from ctistudio.pipeline.queued_runner import QueuedRunner
from ctistudio.pipeline.runner import RunHeldElsewhere
from ctistudio.pipeline.service import PipelineService
from ctistudio.store import Store
from ctistudio.store.run_leases import acquire_lease
from ctistudio.store.runs import checkpoints, finish_step, set_run_status
from ctistudio.testing.worker_fleet import add_demo_variants


async def test_resuming_a_run_a_live_worker_holds_is_refused_and_resets_nothing(monkeypatch):
    monkeypatch.setenv("CTISTUDIO_BROKER_URL", "redis://127.0.0.1:9/0")  # never reached: refused before
    settings = load_settings(env_file=None)
    with Store(settings) as store:
        async with Gateway(settings) as gateway:
            service = PipelineService(settings, store, gateway)
            assert isinstance(service.runner, QueuedRunner)
            run_id = service.create_run(add_demo_variants(store, 1)[0], force=True)
            with store.session() as session:
                set_run_status(session, run_id, "running", current_step="extract")
                finish_step(session, run_id, "prepare", output={"text": "…"})
                assert acquire_lease(session, run_id, "w1@box", 60)
            with pytest.raises(RunHeldElsewhere) as refused:
                await service.resume_run(run_id, from_step="prepare")
            assert "w1@box" in refused.value.message and "CTISTUDIO_RUN_LEASE_SECONDS" in refused.value.fix
            with pytest.raises(RunHeldElsewhere):
                await service.runner.submit(run_id)
            with store.session() as session:
                assert set(checkpoints(session, run_id)) == {"prepare"}  # not reset
