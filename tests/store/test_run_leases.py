"""Run leases on SQLite and PostgreSQL: one holder at a time, take-over after expiry, the fence stops the
worker that lost the run (or whose run was cancelled)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from datetime import timedelta

import pytest

from ctistudio.store.articles import NewArticle, add_article
from ctistudio.store.run_leases import LeaseLost, acquire_lease, fence, lease_holder, release_lease
from ctistudio.store.runs import create_run, get_run, set_run_status
from ctistudio.store.types import utcnow


@pytest.fixture
def run_id(store) -> int:
    with store.session() as session:
        article = add_article(session, NewArticle(title="t", content="c", content_hash="h", simhash=1, origin="text"))
        return create_run(session, article.id).id


def test_one_worker_holds_a_run_until_its_lease_expires(store, run_id):
    with store.session() as session:
        assert acquire_lease(session, run_id, "a@host", 60)
        assert acquire_lease(session, run_id, "a@host", 60)  # its own lease: renewed
        assert not acquire_lease(session, run_id, "b@host", 60)
        assert lease_holder(get_run(session, run_id)) == "a@host"
    later = utcnow() + timedelta(seconds=61)
    with store.session() as session:
        assert lease_holder(get_run(session, run_id), now=later) is None
        assert acquire_lease(session, run_id, "b@host", 60, now=later)  # a stopped renewing: b takes over
    with store.session() as session, pytest.raises(LeaseLost):
        fence(session, run_id, "a@host", 60)  # a comes back: none of its writes may land
    with store.session() as session:
        fence(session, run_id, "b@host", 60)
        assert get_run(session, run_id).worker == "b@host"


def test_a_released_run_is_free_and_remembers_its_worker(store, run_id):
    with store.session() as session:
        assert acquire_lease(session, run_id, "a@host", 60)
        release_lease(session, run_id, "a@host")
        run = get_run(session, run_id)
        assert (run.worker, lease_holder(run)) == ("a@host", None)
        assert acquire_lease(session, run_id, "b@host", 60)


def test_a_cancelled_run_stops_its_worker_at_the_next_write(store, run_id):
    with store.session() as session:
        assert acquire_lease(session, run_id, "a@host", 60)
        set_run_status(session, run_id, "cancelled", error="cancelled")
    with store.session() as session, pytest.raises(LeaseLost):
        fence(session, run_id, "a@host", 60)


def test_a_killed_process_of_this_host_holds_nothing(store, run_id):
    """`kill -9` of a CLI run: `runs resume` may take the run at once instead of waiting for the lease."""
    host = socket.gethostname()
    with subprocess.Popen([sys.executable, "-c", "pass"]) as child:
        child.wait()  # a pid that existed and is gone
    dead, alive = f"process {child.pid}@{host}", f"process {os.getpid()}@{host}"
    with store.session() as session:
        assert acquire_lease(session, run_id, dead, 600)
        assert lease_holder(get_run(session, run_id)) is None
        assert acquire_lease(session, run_id, alive, 600)  # taken over although the lease had 10 minutes left
        assert lease_holder(get_run(session, run_id)) == alive
        assert not acquire_lease(session, run_id, f"process 1@{host}", 600)  # a live holder keeps it
    elsewhere = f"worker-{child.pid}@another-host"  # a process of another machine: presumed alive
    with store.session() as session:
        release_lease(session, run_id, alive)
        assert acquire_lease(session, run_id, elsewhere, 600)
        assert lease_holder(get_run(session, run_id)) == elsewhere
        assert not acquire_lease(session, run_id, alive, 600)
