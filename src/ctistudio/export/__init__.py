"""CTI exchange: what ctistudio found, written in the formats other tools read.

    export = collect(store, run_id=3)                  # or article_id=…, approved=True
    document = render(export, "stix")                  # stix | misp | csv | navigator
    document.text, document.media_type, document.filename

- STIX 2.1 bundles (the ``stix2`` library; checked with ``stix2-validator``): :mod:`.stix`
- MISP events (PyMISP's ``MISPEvent``) and a plain CSV list of indicators: :mod:`.misp`
- ATT&CK Navigator layers and the Coverage page's matrix: :mod:`.navigator`

The CLI (``ctistudio export``), the web app (article and run pages, ``/api/exports``) and the MCP server
all go through :func:`render`.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel

from ctistudio.export.material import ExportSet, collect

ExportFormat = Literal["stix", "misp", "csv", "navigator"]
FORMATS: tuple[ExportFormat, ...] = ("stix", "misp", "csv", "navigator")
_MEDIA = {
    "stix": ("application/stix+json;version=2.1", "stix.json"),
    "misp": ("application/json", "misp-event.json"),
    "csv": ("text/csv; charset=utf-8", "iocs.csv"),
    "navigator": ("application/json", "attack-layer.json"),
}


class ExportDocument(BaseModel):
    format: str
    text: str
    media_type: str
    filename: str


def _stem(export: ExportSet) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", export.name.lower()).strip("-")[:60] or "export"
    return f"ctistudio-{slug}"


def render(export: ExportSet, fmt: ExportFormat) -> ExportDocument:
    """``export`` in format ``fmt`` (see the module docstring); an empty result raises InvalidInput."""
    if fmt == "stix":
        from ctistudio.export.stix import stix_json

        text = stix_json(export)
    elif fmt == "misp":
        from ctistudio.export.misp import misp_json

        text = misp_json(export)
    elif fmt == "csv":
        from ctistudio.export.misp import ioc_csv

        text = ioc_csv(export)
    else:
        from ctistudio.export.navigator import navigator_json

        text = navigator_json(export)
    media_type, suffix = _MEDIA[fmt]
    return ExportDocument(format=fmt, text=text, media_type=media_type, filename=f"{_stem(export)}-{suffix}")


__all__ = ["FORMATS", "ExportDocument", "ExportFormat", "ExportSet", "collect", "render"]
