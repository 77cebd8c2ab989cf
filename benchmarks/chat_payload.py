"""Request bytes per chat turn: stateless (/v1/chat/completions, history resent) vs LM Studio's stateful chat.

An 8-turn conversation about the demo article, asked through ``ChatService`` against the LM Studio double
(a real HTTP server on 127.0.0.1 that implements both endpoints), three times:

- stateless, full history: ``CTISTUDIO_CHAT_THREADS=false``, ``CTISTUDIO_RAG_HISTORY_TURNS=8`` — every
  request carries the system prompt, every earlier question and answer, and the retrieved material;
- stateless, default history: the same with the default ``CTISTUDIO_RAG_HISTORY_TURNS=4``;
- stateful: ``/api/v1/chat`` with ``previous_response_id`` — a follow-up carries the question and only the
  material the server's thread does not hold yet.

Bytes are the request bodies' ``Content-Length`` as the double received them. The server-side thread
still grows (LM Studio re-reads it, from its prompt cache when it can): its ``input_tokens`` are printed
too, so the saving is on the wire and in the client, not in the model's context.

    .venv/bin/python benchmarks/chat_payload.py            # 8 turns; exit 1 if turn 8 is not ≥ 5× smaller
    .venv/bin/python benchmarks/chat_payload.py --turns 12
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from pathlib import Path

QUESTIONS = [
    "How did the PAPER LANTERN intrusions start?",
    "Which process tree did the OneNote attachment produce?",
    "How did the loader persist on the hosts?",
    "Which scheduled task did they create, and with which account?",
    "How did they dump credentials from LSASS?",
    "What did they change in WDigest, and why?",
    "How did they move laterally?",
    "Which network indicators should I block?",
    "Which detection opportunities does the report list?",
    "Which ATT&CK techniques does the report map?",
    "What did the actor exfiltrate with rclone?",
    "Which hunting queries does the report give?",
]
ANSWER = (
    "According to the report, the actor used the OneNote attachment to drop an HTA file that mshta.exe "
    "launched, followed by an encoded PowerShell download of the second stage [1]. The same chain was seen "
    "on every victim, so hunting for mshta.exe started by ONENOTE.EXE is the most specific signal [1]."
)


def _env(double_env: dict[str, str], data: Path, *, threads: bool, history: int) -> None:
    for key in [k for k in os.environ if k.startswith(("LMSTUDIO_", "CTISTUDIO_", "LLM_"))]:
        del os.environ[key]
    os.environ.update(double_env)
    os.environ.update(
        LLM_PROVIDER="lmstudio",
        CTISTUDIO_EMBEDDING_PROVIDER="lmstudio",
        CTISTUDIO_EMBEDDED="false",
        CTISTUDIO_DATA_DIR=str(data),
        CTISTUDIO_LOG_DIR=str(data / "logs"),
        CTISTUDIO_CHAT_THREADS="true" if threads else "false",
        CTISTUDIO_RAG_HISTORY_TURNS=str(history),
    )


async def _conversation(turns: int, data: Path, double, *, threads: bool, history: int) -> list[tuple[int, int]]:
    """``(request bytes, server input tokens or 0)`` per turn."""
    from ctistudio.config import load_settings
    from ctistudio.ingest import IngestService
    from ctistudio.llm import Gateway
    from ctistudio.rag import ChatService, backfill
    from ctistudio.store import Store

    _env(double.env(), data, threads=threads, history=history)
    settings = load_settings(env_file=None)
    path = "/api/v1/chat" if threads else "/v1/chat/completions"
    out = []
    with Store(url=f"sqlite:///{data / f'chat-{threads}-{history}.db'}") as store:
        IngestService(store, settings).ingest_demo()
        async with Gateway(settings) as gateway:
            chat = ChatService(store, gateway)
            await backfill(chat.retriever)
            session_id = None
            for number in range(turns):
                before = len(double.requests_to(path))
                reply = await chat.ask(QUESTIONS[number % len(QUESTIONS)], session_id=session_id, provider="lmstudio")
                session_id = reply.session_id
                sent = double.requests_to(path)[before:]
                if len(sent) != 1 or reply.answer.no_material:
                    raise SystemExit(f"turn {number + 1}: expected one request to {path}, got {len(sent)}")
                stats = reply.answer.server_stats or {}
                out.append((int(sent[0].headers["content-length"]), int(stats.get("input_tokens") or 0)))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--turns", type=int, default=8, help="Turns of the conversation (default 8).")
    parser.add_argument("--goal", type=float, default=5.0, help="Required ratio at the last turn (default 5).")
    args = parser.parse_args()
    from ctistudio.testing.lmstudio_double import LMStudioDouble

    with tempfile.TemporaryDirectory(prefix="ctistudio-chat-payload-") as folder, LMStudioDouble() as double:
        double.responder = lambda call: ANSWER
        data = Path(folder)
        full = asyncio.run(_conversation(args.turns, data, double, threads=False, history=args.turns))
        default = asyncio.run(_conversation(args.turns, data, double, threads=False, history=4))
        stateful = asyncio.run(_conversation(args.turns, data, double, threads=True, history=4))
    print(f"chat request bytes per turn, {args.turns} turns about the demo article (LM Studio double)")
    print(
        f"{'turn':>4} {'stateless, full history':>24} {'stateless, 4 turns':>19} {'stateful':>9} "
        f"{'full / stateful':>16} {'server thread tokens':>21}"
    )
    for turn, ((a, _), (b, _), (c, tokens)) in enumerate(zip(full, default, stateful, strict=True), start=1):
        print(f"{turn:>4} {a:>24,} {b:>19,} {c:>9,} {a / c:>15.1f}x {tokens:>21,}")
    total = [sum(x for x, _ in run) for run in (full, default, stateful)]
    print(f" sum {total[0]:>24,} {total[1]:>19,} {total[2]:>9,} {total[0] / total[2]:>15.1f}x")
    last = full[-1][0] / stateful[-1][0]
    verdict = "PASS" if last >= args.goal else "FAIL"
    print(
        f"turn {args.turns}: stateful request {last:.1f}x smaller than the stateless one "
        f"(goal ≥ {args.goal:g}x): {verdict}"
    )
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
