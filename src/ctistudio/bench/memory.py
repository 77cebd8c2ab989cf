"""Resident memory of this process: what an in-process engine (embedded, llama-cpp-python, MLX) costs.

On Linux the kernel keeps a resettable high-water mark (``VmHWM`` in ``/proc/self/status``; writing ``5``
to ``/proc/self/clear_refs`` resets it), so the peak of each model can be measured on its own. Elsewhere
``getrusage`` gives the process's lifetime peak only; the report then says ``peak_scope: "process"``.
"""

from __future__ import annotations

import re
import resource
import sys
from pathlib import Path

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def _status_kib(field: str) -> int | None:
    try:
        match = re.search(rf"^{field}:\s+(\d+)\s+kB", _STATUS.read_text(), re.M)
    except OSError:
        return None
    return int(match.group(1)) * 1024 if match else None


def current_rss() -> int | None:
    """Resident set size of this process now, in bytes (``None`` where the OS does not say)."""
    return _status_kib("VmRSS")


def peak_rss() -> int:
    """The highest resident set size since the last :func:`reset_peak` (Linux) or since start (elsewhere)."""
    peak = _status_kib("VmHWM")
    if peak is not None:
        return peak
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss if sys.platform == "darwin" else maxrss * 1024  # bytes on macOS, KiB on Linux/BSD


def reset_peak() -> bool:
    """Start a new high-water mark; ``False`` where the OS cannot (the peak then covers the whole process)."""
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return True
