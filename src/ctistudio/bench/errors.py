"""Errors of the benchmark service (the CLI prints their message and fix)."""

from __future__ import annotations

from ctistudio.errors import CtiStudioError


class BenchError(CtiStudioError):
    """The benchmark could not run or measured nothing."""


class RawCallFailed(BenchError):
    """The bare HTTP client of ``--compare-raw`` got no usable answer."""
