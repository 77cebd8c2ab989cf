"""Logging: human-readable lines to stderr and rotating files under ``logs/`` (CTISTUDIO_LOG_DIR)."""

from __future__ import annotations

import logging
import logging.handlers
import sys
from pathlib import Path

_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
_configured = False


class _CurrentStderr(logging.StreamHandler):  # type: ignore[type-arg]
    """A console handler that writes to whatever ``sys.stderr`` is *now*: a handler holding the stream of the
    moment it was made writes into a closed file once that stream is swapped out and closed (test runners,
    embedding applications)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property  # type: ignore[override]
    def stream(self):  # type: ignore[no-untyped-def]
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:  # type: ignore[no-untyped-def]
        pass


def configure_logging(log_dir: Path, level: str = "INFO", *, stderr_level: str = "WARNING") -> None:
    """Send log records to stderr (``stderr_level`` and above) and to ``log_dir/ctistudio.log`` (``level``).

    The file rotates at 5 MB, keeping 5 old files. Safe to call more than once.
    """
    global _configured
    root = logging.getLogger("ctistudio")
    if _configured:
        return
    root.setLevel(logging.DEBUG)
    console = _CurrentStderr()
    console.setLevel(stderr_level)
    console.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root.addHandler(console)
    try:
        log_dir.mkdir(parents=True, exist_ok=True)
        handler = logging.handlers.RotatingFileHandler(
            log_dir / "ctistudio.log", maxBytes=5 * 1024 * 1024, backupCount=5, encoding="utf-8"
        )
    except OSError as exc:  # a read-only checkout must not stop the CLI
        root.warning("cannot write logs under %s: %s", log_dir, exc)
    else:
        handler.setLevel(level)
        handler.setFormatter(logging.Formatter(_FORMAT))
        root.addHandler(handler)
    _configured = True
