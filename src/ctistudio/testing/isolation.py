"""pytest plugin: tests marked ``native`` run in a fresh Python process, one process per test module.

Native inference engines (llama.cpp through llama-cpp-python or xllamacpp) can die with SIGSEGV or SIGILL
when a build does not suit the CPU. In the test process that ends the whole run without a summary; in a
child it is one failed test whose report carries the signal and the Python stack of every thread (from
:mod:`faulthandler`), and the suite goes on.

Why a new interpreter and not ``fork()``: by the time the engine tests run, the test process holds threads
of native libraries (ONNX Runtime's pool, HTTP doubles); a forked child inherits their locks in whatever
state they were and can hang forever (seen: a child stuck on a futex at its first new thread).

How it works: the first native test of a module starts ``python -m pytest <that module's native tests>``
with :mod:`ctistudio.testing.isolation_worker`, which writes each test's start and reports to a file. The
parent replays those reports as the tests come up in its own order. When the child dies, the test it had
started is failed with the child's exit signal and faulthandler output, and the module's remaining tests
run in a new child.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ctistudio.testing.isolation_worker import CHILD_ENV, CRASH_ENV

MARKER = "native"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}: loads a native inference engine; runs in a child process so a crash fails one test only",
    )
    if not os.environ.get(CHILD_ENV):
        config.pluginmanager.register(_Isolator(config), "ctistudio-isolator")


@dataclass
class _Batch:
    """What one child process reported: reports per test id, and the test it died in (if it died)."""

    reports: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    crashed_in: str | None = None
    crash_text: str = ""
    status: int = 0


class _Isolator:
    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.pending: dict[str, list[dict[str, Any]]] = {}  # test id → its reports, from the last child
        self.crashes: dict[str, str] = {}  # test id → why its child died

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_protocol(self, item: pytest.Item, nextitem: pytest.Item | None) -> bool | None:
        if item.get_closest_marker(MARKER) is None:
            return None
        if item.nodeid not in self.pending and item.nodeid not in self.crashes:
            self._run_module(item)
        hook = item.ihook
        hook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
        if item.nodeid in self.crashes:
            reports = [_crash_report(item, self.crashes.pop(item.nodeid))]
        else:
            data = self.pending.pop(item.nodeid)
            reports = [self.config.hook.pytest_report_from_serializable(config=self.config, data=d) for d in data]
        for report in reports:
            hook.pytest_runtest_logreport(report=report)
        hook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
        return True

    def _run_module(self, item: pytest.Item) -> None:
        """Run ``item`` and the module's native tests after it in one child (a new child after a crash)."""
        items = item.session.items
        start = items.index(item)
        todo = [i.nodeid for i in items[start:] if i.path == item.path and i.get_closest_marker(MARKER)]
        batch = _run_child(todo, self.config)
        self.pending.update(batch.reports)
        if batch.crashed_in is not None:
            self.crashes[batch.crashed_in] = batch.crash_text
            self.pending.pop(batch.crashed_in, None)
        # Tests the child never reached are left for the next child — unless it never reached the first one
        # (an import crash, a collection error): that one fails with what the child printed.
        first = todo[0]
        if first not in self.pending and first not in self.crashes:
            self.crashes[first] = f"exited with status {batch.status} before running the test\n\n{batch.crash_text}"


def _run_child(nodeids: list[str], config: pytest.Config) -> _Batch:
    with tempfile.TemporaryDirectory(prefix="ctistudio-isolation-") as folder:
        reports_file, crash_file = Path(folder, "reports.jsonl"), Path(folder, "crash.log")
        env = {**os.environ, CHILD_ENV: str(reports_file), CRASH_ENV: str(crash_file)}
        args = [sys.executable, "-m", "pytest", "-p", "ctistudio.testing.isolation_worker", "-p", "no:cacheprovider"]
        args += ["-q", "--no-header", "-o", "console_output_style=classic", *nodeids]
        process = subprocess.run(
            args, cwd=config.rootpath, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False
        )
        batch = _Batch(status=process.returncode)
        started: list[str] = []
        for line in reports_file.read_text().splitlines() if reports_file.exists() else []:
            event = json.loads(line)
            if "start" in event:
                started.append(event["start"])
            else:
                batch.reports.setdefault(event["nodeid"], []).append(event["report"])
        finished = [n for n in started if any(r.get("when") == "teardown" for r in batch.reports.get(n, []))]
        unfinished = [n for n in started if n not in finished]
        if unfinished or process.returncode < 0:
            batch.crashed_in = unfinished[0] if unfinished else None
            batch.crash_text = _how(process.returncode) + "\n\n" + _tail(crash_file, process.stderr)
        elif not started:
            batch.crash_text = _tail(crash_file, process.stdout + process.stderr)
        return batch


def _how(status: int) -> str:
    if status < 0:
        return f"crashed with signal {-status} ({signal.Signals(-status).name})"
    return f"exited with status {status} in the middle of the test"


def _tail(crash_file: Path, output: str) -> str:
    text = crash_file.read_text(errors="replace") if crash_file.exists() else ""
    return (text.strip() or output.strip())[-20000:]


def _crash_report(item: pytest.Item, why: str) -> pytest.TestReport:
    return pytest.TestReport(
        nodeid=item.nodeid,
        location=item.location,
        keywords={k: 1 for k in item.keywords},
        outcome="failed",
        longrepr=f"{item.nodeid}: the test process {why.strip()}",
        when="call",
        sections=[],
        duration=0.0,
        start=0.0,
        stop=0.0,
    )
