"""Progress reporting hooks of ingestion runs (the CLI draws Rich progress bars from them)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ctistudio.ingest.intake import IngestOutcome
    from ctistudio.store.sources import CheckOutcome


class Progress:
    """No-op base: override what you want to show. Called from the event loop's thread."""

    def sources_started(self, total: int) -> None:
        """A run over ``total`` sources begins."""

    def source_finished(self, source_id: str, outcome: CheckOutcome) -> None:
        """One source has been checked (successfully or not)."""

    def entries_queued(self, count: int) -> None:
        """``count`` new feed entries will be fetched."""

    def entry_finished(self, outcome: IngestOutcome) -> None:
        """One entry was stored, found a duplicate, skipped, refused or failed."""
