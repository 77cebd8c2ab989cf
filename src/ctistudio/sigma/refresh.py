"""Rebuild the SigmaHQ similarity index from ``CTISTUDIO_SIGMA_RULES_DIR`` (what the scheduler does daily).

A rules folder that is a git clone is fast-forwarded first (``git pull --ff-only``), so a team that cloned
SigmaHQ once keeps its novelty verdicts current without anyone running ``ctistudio sigma index``. The rule
embeddings are rebuilt too when an embedding provider answers; when none does, the atom index is saved
alone (novelty by atoms still works) and the reason is reported.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from pydantic import BaseModel

from ctistudio.config import Settings
from ctistudio.errors import ConfigurationError, CtiStudioError
from ctistudio.llm import Gateway
from ctistudio.sigma.corpus import clone_or_update, git_commit
from ctistudio.sigma.similarity import SimilarityIndex, default_index_path
from ctistudio.sigma.similarity.embeddings import embed_index

log = logging.getLogger(__name__)


class IndexRefresh(BaseModel):
    path: str
    rules: int
    commit: str | None = None
    embedded: bool = False
    note: str | None = None  # why the clone was not pulled or the embeddings not rebuilt


def _pull(folder: Path) -> tuple[str | None, str | None]:
    """Fast-forward ``folder`` when it is a git clone: (the checked-out commit, why it was not updated)."""
    if not (folder / ".git").is_dir():
        return git_commit(folder), None
    try:
        return clone_or_update(str(folder), folder), None  # an existing clone is pulled, never re-cloned
    except CtiStudioError as error:  # offline: index what is there
        return git_commit(folder), f"git pull failed, indexed the checked-out rules: {error.message}"


async def refresh_sigma_index(settings: Settings, gateway: Gateway | None = None) -> IndexRefresh:
    """Pull (a clone), rebuild and save the index; embed the rules through ``gateway`` when it can."""
    folder = settings.sigma_rules_dir
    if folder is None:
        raise ConfigurationError(
            "no SigmaHQ rules folder to refresh the index from",
            fix="Set CTISTUDIO_SIGMA_RULES_DIR (a clone of https://github.com/SigmaHQ/sigma is pulled first), "
            "or CTISTUDIO_SIGMA_REFRESH_HOURS=0 to stop the scheduled refresh.",
        )
    folder = folder.expanduser()
    # git and the build take seconds: off the event loop (the web app's, with `serve --schedule`)
    commit, note = await asyncio.to_thread(_pull, folder)
    built = await asyncio.to_thread(SimilarityIndex.build, folder)
    path = default_index_path(settings)
    refresh = IndexRefresh(path=str(path), rules=built.info.rules, commit=commit, note=note)
    if gateway is not None:
        try:
            built.attach_embeddings(await embed_index(gateway, built))
            refresh.embedded = True
        except CtiStudioError as error:
            refresh.note = "; ".join(filter(None, [refresh.note, f"rule embeddings not rebuilt: {error.message}"]))
            log.warning("SigmaHQ index refresh: %s", refresh.note)
    await asyncio.to_thread(built.save, path)
    log.info("SigmaHQ index refreshed: %d rules from %s → %s", refresh.rules, folder, path)
    return refresh
