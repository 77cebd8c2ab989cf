"""Structured output: json_schema requests, validation into pydantic models, one repair, then BadOutput."""

from __future__ import annotations

import json
from typing import Literal

import pytest
from pydantic import BaseModel, Field

from ctistudio.llm import BadOutput, Gateway
from ctistudio.testing.lmstudio_double import LMStudioDouble

CHAT = "/v1/chat/completions"


class Ranking(BaseModel):
    score: int = Field(ge=1, le=10)
    reasons: list[str]
    verdict: Literal["huntable", "not huntable"]


async def test_answer_is_validated_into_the_model(lmstudio_double: LMStudioDouble, settings_for):
    lmstudio_double.reply({"score": 8, "reasons": ["command lines"], "verdict": "huntable"})
    async with Gateway(settings_for(lmstudio_double)) as gateway:
        result = await gateway.chat("rank this", task="rank", output_type=Ranking)
    assert result.parsed == Ranking(score=8, reasons=["command lines"], verdict="huntable")
    fmt = lmstudio_double.requests_to(CHAT)[0].body["response_format"]
    assert fmt["type"] == "json_schema"  # never json_object (LM Studio rejects it)
    assert fmt["json_schema"]["name"] == "Ranking"
    assert fmt["json_schema"]["schema"]["properties"]["score"]["maximum"] == 10


async def test_the_doubles_default_answer_satisfies_the_schema(lmstudio_double: LMStudioDouble, settings_for):
    async with Gateway(settings_for(lmstudio_double)) as gateway:
        result = await gateway.chat("rank this", output_type=Ranking)
    assert isinstance(result.parsed, Ranking)


async def test_think_and_fences_around_the_json_are_tolerated(lmstudio_double: LMStudioDouble, settings_for):
    lmstudio_double.reply(
        '<think>score {maybe 3}</think>\n```json\n{"score": 4, "reasons": [], "verdict": "huntable"}\n```'
    )
    async with Gateway(settings_for(lmstudio_double)) as gateway:
        result = await gateway.chat("rank this", output_type=Ranking)
    assert result.parsed.score == 4 and result.reasoning == "score {maybe 3}"


async def test_one_repair_on_invalid_json(lmstudio_double: LMStudioDouble, settings_for):
    lmstudio_double.reply(
        '{"score": 11, "reasons": [], "verdict": "huntable"}', {"score": 7, "reasons": [], "verdict": "huntable"}
    )
    async with Gateway(settings_for(lmstudio_double)) as gateway:
        result = await gateway.chat("rank this", task="rank", output_type=Ranking)
    assert result.parsed.score == 7 and result.attempts == 2
    first, repair = lmstudio_double.requests_to(CHAT)
    messages = repair.body["messages"]
    assert messages[-2] == {"role": "assistant", "content": '{"score": 11, "reasons": [], "verdict": "huntable"}'}
    assert "could not be used" in messages[-1]["content"] and "score" in messages[-1]["content"]
    assert repair.body["model"] == first.body["model"]


async def test_bad_output_after_a_failed_repair(lmstudio_double: LMStudioDouble, settings_for):
    lmstudio_double.reply("I think it is an 8.", "Still no JSON, sorry.")
    async with Gateway(settings_for(lmstudio_double)) as gateway:
        with pytest.raises(BadOutput) as info:
            await gateway.chat("rank this", output_type=Ranking)
    assert info.value.raw == "Still no JSON, sorry."
    assert "after one repair" in info.value.message and info.value.fix
    assert len(lmstudio_double.requests_to(CHAT)) == 2  # exactly one repair


async def test_plain_json_schema_is_validated_with_jsonschema(lmstudio_double: LMStudioDouble, settings_for):
    schema = {
        "type": "object",
        "properties": {"ioc": {"type": "string", "pattern": "^[a-f0-9]{8}$"}},
        "required": ["ioc"],
    }
    lmstudio_double.reply({"ioc": "not a hash"}, {"ioc": "deadbeef"})
    async with Gateway(settings_for(lmstudio_double)) as gateway:
        result = await gateway.chat("extract", schema=schema)
    assert result.parsed == {"ioc": "deadbeef"}
    repair_prompt = lmstudio_double.requests_to(CHAT)[1].body["messages"][-1]["content"]
    assert "ioc" in repair_prompt and "does not match" in repair_prompt
    assert json.loads(repair_prompt.rsplit("\n", 1)[-1]) == schema


class Items(BaseModel):
    items: list[dict[str, str]]


async def test_an_answer_cut_at_max_tokens_keeps_its_complete_items(lmstudio_double: LMStudioDouble, settings_for):
    # A small model repeating itself until the budget ends: the cut answer is not JSON, its complete part is.
    looping = json.dumps({"items": [{"value": f"cmd.exe /c whoami #{n}"} for n in range(40)]})
    lmstudio_double.reply(looping)
    async with Gateway(settings_for(lmstudio_double)) as gateway:
        result = await gateway.chat("extract", task="extract", output_type=Items, max_tokens=60)
    assert result.finish_reason == "length" and result.attempts == 1  # no repair round
    assert len(lmstudio_double.requests_to(CHAT)) == 1
    kept = [item["value"] for item in result.parsed.items]
    assert kept and kept == [f"cmd.exe /c whoami #{n}" for n in range(len(kept))]
    assert looping.startswith(result.text) and len(result.text) < len(looping)


async def test_a_cut_answer_missing_a_required_field_is_still_repaired(lmstudio_double: LMStudioDouble, settings_for):
    # Complete parts exist (the reasons list) but every one of them lacks "verdict".
    cut = '{"score": 6, "reasons": ["rundll32 with comsvcs.dll", "schtasks /create"], "verdict": "hunta'
    lmstudio_double.reply(cut + 'ble"}', {"score": 6, "reasons": [], "verdict": "huntable"})
    async with Gateway(settings_for(lmstudio_double)) as gateway:
        result = await gateway.chat("rank this", output_type=Ranking, max_tokens=len(cut) // 4)
    assert result.parsed == Ranking(score=6, reasons=[], verdict="huntable") and result.attempts == 2


def test_truncated_json_candidates_close_what_was_open():
    from ctistudio.llm.structured import truncated_json_candidates

    text = '<think>x</think>{"items": [{"v": "a]}"}, {"v": "b\\\\"}, {"v": "c'
    candidates = truncated_json_candidates(text)
    assert [json.loads(c) for c in candidates] == [{"items": [{"v": "a]}"}, {"v": "b\\"}]}, {"items": [{"v": "a]}"}]}]
    assert truncated_json_candidates('{"complete": [1, 2]}') == []
    assert truncated_json_candidates("no json here") == []
