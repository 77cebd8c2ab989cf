"""pytest plugin: tests marked ``native`` run in a forked child process.

Native inference engines (llama.cpp through llama-cpp-python or xllamacpp) can die with SIGSEGV or SIGILL
when a build does not suit the CPU. In the test process that ends the whole run without a summary; in a
child it is one failed test whose report carries the signal and the Python stack of every thread (from
:mod:`faulthandler`), and the suite goes on.

How the child is kept apart from the parent: it is forked right before the test's setup, runs the whole
protocol (setup, call, teardown) and sends its reports back through a pipe. Fixtures the parent had already
set up (a PostgreSQL server, a session double) are *used* by the child but never finalized there: their
finalizers are dropped in the child, so only what the child created is torn down in the child. A child
that dies leaves its tempfile of faulthandler output, which becomes the failure's text.
"""

from __future__ import annotations

import faulthandler
import json
import os
import signal
import sys
import tempfile
import warnings
from typing import Any

import pytest
from _pytest.runner import runtestprotocol

MARKER = "native"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}: loads a native inference engine; runs in a forked child so a crash fails one test only",
    )


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> bool | None:
    if item.get_closest_marker(MARKER) is None or not hasattr(os, "fork"):
        return None
    hook = item.ihook
    hook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
    for report in _run_in_child(item):
        hook.pytest_runtest_logreport(report=report)
    item.session._setupstate.teardown_exact(nextitem)
    hook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
    return True


def _run_in_child(item: pytest.Item) -> list[pytest.TestReport]:
    config = item.config
    read_end, write_end = os.pipe()
    with tempfile.TemporaryFile(mode="w+") as crash_log:
        with warnings.catch_warnings():
            # Python 3.12+ warns about fork() in a process with threads; the child only runs this one test.
            warnings.simplefilter("ignore", DeprecationWarning)
            pid = os.fork()
        if pid == 0:  # the child: never returns
            os.close(read_end)
            _child(item, write_end, crash_log)
        os.close(write_end)
        with os.fdopen(read_end, "rb") as pipe:
            payload = pipe.read()
        _, status = os.waitpid(pid, 0)
        if payload:
            reports = [config.hook.pytest_report_from_serializable(config=config, data=d) for d in json.loads(payload)]
            return [r for r in reports if isinstance(r, pytest.TestReport)]
        crash_log.seek(0)
        return [_crash_report(item, status, crash_log.read())]


def _child(item: pytest.Item, write_end: int, crash_log: Any) -> None:
    code = 0
    try:
        faulthandler.enable(file=crash_log, all_threads=True)
        state = item.session._setupstate
        for node, (_, error) in list(state.stack.items()):  # the parent's fixtures: use, don't finalize
            state.stack[node] = ([], error)
        reports = runtestprotocol(item, log=False, nextitem=None)
        data = [item.config.hook.pytest_report_to_serializable(config=item.config, report=r) for r in reports]
        with os.fdopen(write_end, "wb") as pipe:
            pipe.write(json.dumps(data).encode())
    except BaseException as exc:  # anything here is reported by the parent as a crash with this text
        print(f"the forked test process failed outside the test: {exc!r}", file=crash_log, flush=True)
        code = 3
    finally:
        sys.stdout.flush()
        os._exit(code)


def _crash_report(item: pytest.Item, status: int, log: str) -> pytest.TestReport:
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        how = f"crashed with signal {number} ({signal.Signals(number).name})"
    else:
        how = f"exited with status {os.WEXITSTATUS(status)} without reporting"
    text = f"{item.nodeid}: the test process {how}."
    if log.strip():
        text += "\n\n" + log.strip()
    return pytest.TestReport(
        nodeid=item.nodeid,
        location=item.location,
        keywords={k: 1 for k in item.keywords},
        outcome="failed",
        longrepr=text,
        when="call",
        sections=[],
        duration=0.0,
        start=0.0,
        stop=0.0,
    )
