"""The shape of the code stays as the README's "Architecture" section draws it.

- Facts about a provider live in its spec (``llm/providers/specs.py``): outside ``llm/providers/`` no code
  compares a provider's name with a string, and no table is keyed by provider names.
- Imports point downwards only (the layer table below is README's, with every package placed), and no
  production module imports the test doubles in ``ctistudio.testing``.
- No function in ``src/`` is longer than 80 lines, except migrations (one ordered step each).
"""

from __future__ import annotations

import ast
import typing
from pathlib import Path

import pytest

from ctistudio import config
from ctistudio.llm.providers import SPECS, embedding_provider_names, provider_names

SRC = Path(__file__).resolve().parent.parent / "src" / "ctistudio"
PROVIDERS_DIR = SRC / "llm" / "providers"
NAMES = frozenset(provider_names())

# README "Architecture": the layer of each top-level module of ctistudio (higher may import lower, never up).
LAYERS: dict[str, int] = {
    **dict.fromkeys(["cli", "web", "workers", "mcp_server"], 3),  # shells
    **dict.fromkeys(["ingest", "pipeline", "sigma", "rag", "bench", "export", "publish"], 2),  # services
    **dict.fromkeys(["llm", "store", "embeddings", "modelhub", "broker"], 1),  # infrastructure
    **dict.fromkeys(["config", "errors", "resources", "safe_yaml", "logging_setup", "__init__"], 0),  # settings
    "testing": 4,  # the test doubles: may use anything; nothing in production imports them
}
LONGEST_FUNCTION = 80
# Functions over the limit that belong to code other engineers are changing now; each is to be split there.
KNOWN_LONG_FUNCTIONS: set[str] = set()


def _modules() -> list[tuple[Path, ast.Module]]:
    return [(path, ast.parse(path.read_text(encoding="utf-8"))) for path in sorted(SRC.rglob("*.py"))]


def _where(path: Path, node: ast.AST) -> str:
    return f"{path.relative_to(SRC.parent)}:{getattr(node, 'lineno', '?')}"


def _names_in(node: ast.AST) -> set[str]:
    """Provider names written as a string literal in ``node``, or as items of a literal tuple/list/set."""
    items = node.elts if isinstance(node, ast.Tuple | ast.List | ast.Set) else [node]
    return {i.value for i in items if isinstance(i, ast.Constant) and isinstance(i.value, str)} & NAMES


def provider_name_uses(path: Path, tree: ast.Module) -> list[str]:
    """Comparisons with a provider name and tables keyed by provider names in one module."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            names = set().union(*(_names_in(operand) for operand in [node.left, *node.comparators]))
            if names:
                found.append(f"{_where(path, node)} compares with {sorted(names)}")
        elif isinstance(node, ast.MatchValue) and _names_in(node.value):
            found.append(f"{_where(path, node)} matches {sorted(_names_in(node.value))}")
        elif isinstance(node, ast.Dict):
            keys = set().union(*(_names_in(key) for key in node.keys if key is not None))
            if len(keys) >= 2:
                found.append(f"{_where(path, node)} is a table keyed by {sorted(keys)}")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "dict":
            keys = {k.arg for k in node.keywords if k.arg} & NAMES
            if len(keys) >= 2:
                found.append(f"{_where(path, node)} is a table keyed by {sorted(keys)}")
    return found


def test_no_provider_names_are_compared_or_tabled_outside_the_providers_package():
    found = [
        use for path, tree in _modules() if PROVIDERS_DIR not in path.parents for use in provider_name_uses(path, tree)
    ]
    assert found == [], "ask the provider's spec (ctistudio.llm.providers.specs) instead:\n" + "\n".join(found)


def test_the_check_finds_what_it_forbids():
    code = 'if provider == "lmstudio": pass\nx = {"mlx": 1, "ollama": 2}\ny = name in ("openai", "b")\n'
    found = provider_name_uses(SRC / "example.py", ast.parse(code))
    assert len(found) == 3 and "lmstudio" in found[0] and "table" in found[1] and "openai" in found[2]


def test_the_names_settings_accept_are_the_specs():
    # config.py (the settings layer) validates LLM_PROVIDER and CTISTUDIO_EMBEDDING_PROVIDER at start-up
    # but may not import llm: its lists must equal the specs.
    assert set(typing.get_args(config.ProviderName)) == {"auto", *provider_names()}
    assert set(typing.get_args(config.EmbeddingProviderName)) == {"auto", *embedding_provider_names()}
    assert len({spec.name for spec in SPECS}) == len(SPECS)


def _imported(tree: ast.Module) -> list[tuple[ast.AST, str]]:
    out = []
    for node in ast.walk(tree):  # function-level imports count too
        if isinstance(node, ast.Import):
            out += [(node, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node, node.module))
    return out


def _top(path: Path) -> str:
    return path.relative_to(SRC).parts[0].removesuffix(".py")


def test_every_package_has_a_layer():
    assert {_top(path) for path in SRC.rglob("*.py")} - set(LAYERS) == set()


def test_imports_point_downwards_only():
    upward = []
    for path, tree in _modules():
        here = _top(path)
        for node, module in _imported(tree):
            parts = module.split(".")
            if parts[0] != "ctistudio" or len(parts) < 2 or parts[1] == here:
                continue
            if LAYERS[parts[1]] > LAYERS[here] or (parts[1] == "testing" and here != "testing"):
                upward.append(f"{_where(path, node)}: {here} imports {module}")
    assert upward == []


def test_no_function_is_longer_than_80_lines():
    long = {}
    for path, tree in _modules():
        if "migrations" in path.relative_to(SRC).parts:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > LONGEST_FUNCTION:
                    long[f"{path.relative_to(SRC).as_posix()}:{node.name}"] = length
    assert set(long) - KNOWN_LONG_FUNCTIONS == set(), long
    assert KNOWN_LONG_FUNCTIONS - set(long) == set(), "split: drop it from KNOWN_LONG_FUNCTIONS"


def test_the_router_stays_the_fallback_chain():
    # endpoint calls (slots, retries, cooldown) live in llm/endpoints.py, context budgeting in llm/context.py
    assert len((SRC / "llm" / "router.py").read_text(encoding="utf-8").splitlines()) <= 250


@pytest.mark.parametrize("spec", SPECS, ids=lambda spec: spec.name)
def test_every_spec_names_real_settings(spec):
    fields = config.Settings.model_fields
    named = [spec.switch, spec.url_setting, spec.key_setting, spec.model_setting, *spec.key_urls]
    assert [name for name in named if name is not None and name not in fields] == []
