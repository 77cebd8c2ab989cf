"""Similarity engine speed: index build over the SigmaHQ snapshot, then one rule at a time against it.

Measures, in one run on this machine:

- build: reading + canonicalising every rule (``SimilarityIndex.build``), saving and loading the JSON index;
- query: ``SimilarityIndex.similar(yaml_text, top_k=5)`` for many corpus rules, one at a time, after the index
  is loaded — YAML parsing, canonical form and DNF included — p50 / p95 / max;
- baseline: the same queries answered by ``similar_by_scan`` (every rule of the corpus scored), and the
  p50 ratio scan / index. The two must agree on every answer; the script says so.

    .venv/bin/python benchmarks/similarity.py                      # ../shared/sigmahq, 1,000 queries
    .venv/bin/python benchmarks/similarity.py --rules DIR --queries 300

Goal: ≤ 5 ms p50 per rule after the index is loaded.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from ctistudio.sigma.corpus import rule_files
from ctistudio.sigma.similarity import SimilarityIndex

GOAL_P50_MS = 5.0


def default_rules_dir() -> Path:
    repo = Path(__file__).resolve().parent.parent
    for candidate in (os.environ.get("CTISTUDIO_SHARED_DIR"), repo.parent / "shared", Path("/work/shared")):
        if candidate and Path(candidate, "sigmahq").is_dir():
            return Path(candidate, "sigmahq")
    sys.exit("SigmaHQ snapshot not found: pass --rules DIR (a folder of Sigma rules)")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def time_queries(texts: list[str], query: Callable[[str], object]) -> tuple[list[float], list[object]]:
    latencies, answers = [], []
    for text in texts:
        started = time.perf_counter()
        answers.append(query(text))
        latencies.append((time.perf_counter() - started) * 1000)
    return latencies, answers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rules", type=Path, default=None, help="rules folder (default: shared/sigmahq)")
    parser.add_argument("--queries", type=int, default=1000, help="how many corpus rules to query (default 1000)")
    parser.add_argument("--top", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rules_dir = args.rules or default_rules_dir()

    print(f"machine: {platform.machine()} {os.cpu_count()} cpu(s), Python {platform.python_version()}")
    started = time.perf_counter()
    index = SimilarityIndex.build(rules_dir)
    build_s = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "similarity-index.json"
        started = time.perf_counter()
        index.save(path)
        save_s = time.perf_counter() - started
        size_mb = path.stat().st_size / 1e6
        started = time.perf_counter()
        index = SimilarityIndex.load(path)
        load_s = time.perf_counter() - started
    info = index.info
    print(f"corpus: {rules_dir} — {info.rules:,} rules, {info.atoms:,} atoms, {len(info.skipped)} skipped")
    print(f"build: {build_s:.2f} s   save: {save_s:.2f} s ({size_mb:.1f} MB JSON)   load: {load_s:.2f} s")

    files = rule_files(rules_dir)
    random.Random(args.seed).shuffle(files)
    texts = [p.read_text(encoding="utf-8") for p in files[: args.queries]]
    for text in texts[:20]:  # warm-up (first-use caches)
        index.similar(text, args.top)

    indexed, answers = time_queries(texts, lambda t: index.similar(t, args.top))
    scanned, baseline = time_queries(texts, lambda t: index.similar_by_scan(t, args.top))
    agree = sum(a == b for a, b in zip(answers, baseline, strict=True))
    p50, p95 = statistics.median(indexed), percentile(indexed, 0.95)
    scan_p50, scan_p95 = statistics.median(scanned), percentile(scanned, 0.95)
    print(f"queries: {len(texts)} corpus rules, top {args.top}, YAML text in → verdict out")
    print(f"  inverted index: p50 {p50:.2f} ms   p95 {p95:.2f} ms   max {max(indexed):.2f} ms")
    print(f"  full scan     : p50 {scan_p50:.2f} ms   p95 {scan_p95:.2f} ms   max {max(scanned):.2f} ms")
    print(f"  ratio scan/index: p50 {scan_p50 / p50:.1f}×   p95 {scan_p95 / p95:.1f}×")
    print(f"  same answers: {agree}/{len(texts)}")
    verdict = "met" if p50 <= GOAL_P50_MS else "NOT met"
    print(f"goal ≤ {GOAL_P50_MS:.0f} ms p50: {verdict}")
    if agree != len(texts):
        sys.exit("the inverted index and the scan disagree")


if __name__ == "__main__":
    main()
