"""Several inference hosts, one killed under load: failed requests and how the survivors share the work.

Three LM Studio doubles serve ``LMSTUDIO_API_URL=url1,url2,url3``; 200 chat requests go through one gateway,
12 at a time (4 in flight per host); when the doubles have received 50 requests the first one is stopped,
its open connections cut. Printed: answers per host, failed requests, the survivors' spread
((most − fewest) / most), and the wall time beside a run where no host dies (the baseline, same process).

    .venv/bin/python benchmarks/hosts.py          # exit 1 unless 0 failed and the survivors within 20 %
    .venv/bin/python benchmarks/hosts.py --requests 1000 --latency 0.05
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from ctistudio.testing.host_balance import run_balance


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", type=int, default=3)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--kill-at", type=int, default=50)
    parser.add_argument("--latency", type=float, default=0.02, help="seconds per answer on each double")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)  # the router's warnings about the dead host are expected here

    options = {"hosts": args.hosts, "requests": args.requests, "latency": args.latency}
    baseline = asyncio.run(run_balance(kill_at=None, **options))
    outcome = asyncio.run(run_balance(kill_at=args.kill_at, **options))
    print(f"{args.hosts} hosts, {args.requests} requests, {args.latency * 1000:.0f} ms per answer")
    print(f"  all hosts up:       answers {baseline.answered}, failed {baseline.failed}, {baseline.seconds:.2f} s")
    print(
        f"  host 1 killed at {outcome.killed_after}: answers {outcome.answered}, failed {outcome.failed}, "
        f"{outcome.seconds:.2f} s"
    )
    print(f"  survivors' spread:  {outcome.survivor_spread:.1%} (goal ≤ 20 %)")
    print(f"  failed requests:    {outcome.failed} (goal 0)")
    for error in outcome.errors:
        print(f"    {error}")
    return 0 if outcome.failed == 0 and outcome.survivor_spread <= 0.20 else 1


if __name__ == "__main__":
    sys.exit(main())
