"""What ingestion raises. Every refusal carries the reason a user reads on the source or the upload.

CtiStudioError
├── InvalidInput (ctistudio.errors)
│   └── Refused          we chose not to fetch or accept it (SSRF guard, robots.txt, size, type …)
└── FetchFailed          the remote side failed (connection, timeout, HTTP error, malformed feed)
"""

from __future__ import annotations

from ctistudio.errors import CtiStudioError, InvalidInput


class Refused(InvalidInput):
    """A URL, response or upload was refused on purpose; ``message`` is the reason."""


class FetchFailed(CtiStudioError):
    """Fetching failed for a reason outside our control; ``status_code`` is set for HTTP errors."""

    def __init__(self, message: str, *, fix: str | None = None, status_code: int | None = None) -> None:
        super().__init__(message, fix=fix)
        self.status_code = status_code
