"""Errors every layer of ctistudio shares.

Each error carries a message that says what happened *and* how to fix it; the CLI and the web app print
``str(error)`` (and ``error.fix``) without adding anything. LLM-specific errors live in
:mod:`ctistudio.llm.errors` and derive from :class:`CtiStudioError` too.

    CtiStudioError
    ├── ConfigurationError      a setting is missing or invalid (the user must change configuration)
    ├── NotFound, InvalidInput  a named thing does not exist; user input was refused
    ├── Conflict                the thing is busy elsewhere (HTTP 409)
    └── (ctistudio.llm.errors)  provider failures: unavailable, overflow, rate limits, bad output …
"""

from __future__ import annotations


class CtiStudioError(Exception):
    """Base class: ``message`` says what went wrong, ``fix`` what to do about it."""

    def __init__(self, message: str, *, fix: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix

    def __str__(self) -> str:
        if self.fix:
            return f"{self.message} Fix: {self.fix}"
        return self.message


class ConfigurationError(CtiStudioError):
    """A setting is missing or has a value that is not allowed."""


class NotFound(CtiStudioError):
    """A named thing (article, run, rule, model…) does not exist."""


class InvalidInput(CtiStudioError):
    """User input (a file, a URL, a form field) was refused; the message says why."""


class Conflict(CtiStudioError):
    """The thing is busy elsewhere (a run another process executes): try again later or there."""
