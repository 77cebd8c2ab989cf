"""Scripted answers for the benchmark's tasks, and settings pointed at an LM Studio double."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import pytest

from ctistudio.config import Settings, load_settings
from ctistudio.testing.http_double import ChatCall
from ctistudio.testing.sigma_answers import lsass_rule, sigma_answer

RANK_ANSWER = {
    "score": 8,
    "reasons": ["verbatim command lines", "process lineage"],
    "evidence": [2, 3],  # sentence numbers of the marked demo article
}
# two of the demo's command-line candidates (7: cmd.exe /c whoami /all, 8: whoami /all) selected, one
# invented command added
EXTRACT_ANSWER = {"keep": [7, 8], "new": ["net.exe use \\\\fileserver\\c$"]}
CHAT_ANSWER = "ONENOTE.EXE spawned mshta.exe, then powershell.exe; LSASS was dumped with comsvcs.dll MiniDump."


def answer_for(call: ChatCall) -> str:
    """What a good model answers to each benchmark task (by the schema it was asked for, or its prompt)."""
    name = ((call.response_format or {}).get("json_schema") or {}).get("name")
    if name == "rank":
        return json.dumps(RANK_ANSWER)
    if name == "cmdline_selection":
        return json.dumps(EXTRACT_ANSWER)
    if name == "sigma_rules":  # one rule chosen from the schema's enums (the demo's largest group)
        return sigma_answer(lsass_rule(call.last_user))
    return CHAT_ANSWER


def completion_tokens(text: str, chars_per_token: int = 4) -> int:
    """The double's tokenizer (documented in ctistudio.testing.lmstudio_double)."""
    return math.ceil(len(text) / chars_per_token)


@pytest.fixture
def bench_settings() -> Callable[..., Settings]:
    """``bench_settings(double, **fields)``: LM Studio is ``double``; nothing else is enabled."""

    def make(double: Any = None, **fields: Any) -> Settings:
        values: dict[str, Any] = {"embedded": False, "retry_backoff": 0.01}
        if double is not None:
            values["lmstudio_api_url"] = double.url
            values["lmstudio_embedding_url"] = double.url + "/embeddings"
        values.update(fields)
        return load_settings(values, env_file=None)

    return make
