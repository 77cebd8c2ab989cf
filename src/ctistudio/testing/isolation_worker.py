"""The child side of :mod:`ctistudio.testing.isolation`: write each test's start and reports to a file.

Every line is flushed at once, so when the process dies the parent still knows which test was running;
faulthandler writes the stacks of a fatal signal to the crash log the parent names.
"""

from __future__ import annotations

import faulthandler
import json
import os
from typing import IO, Any

import pytest

# Set by the parent (and only in a child): the file for the reports, and the one for faulthandler's stacks.
# Defined here, not in ctistudio.testing.isolation: this module is loaded first (``-p``) in the child, and a
# plugin module imported before its registration could not have its asserts rewritten.
CHILD_ENV = "CTISTUDIO_ISOLATION_REPORTS"
CRASH_ENV = "CTISTUDIO_ISOLATION_CRASH_LOG"


class _Recorder:
    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.out: IO[str] = open(os.environ[CHILD_ENV], "a", encoding="utf-8")  # noqa: SIM115 - whole run
        self.crash: IO[str] = open(os.environ[CRASH_ENV], "w", encoding="utf-8")  # noqa: SIM115
        faulthandler.enable(file=self.crash, all_threads=True)

    def _write(self, event: dict[str, Any]) -> None:
        self.out.write(json.dumps(event) + "\n")
        self.out.flush()

    def pytest_runtest_logstart(self, nodeid: str) -> None:
        self._write({"start": nodeid})

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        data = self.config.hook.pytest_report_to_serializable(config=self.config, report=report)
        self._write({"nodeid": report.nodeid, "report": data})

    def pytest_unconfigure(self) -> None:
        faulthandler.disable()
        self.out.close()
        self.crash.close()


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(_Recorder(config), "ctistudio-isolation-recorder")
