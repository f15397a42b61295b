"""Benchmark the read path on the shared corpus and print the figures the issue asks for.

    python bench/query.py [--corpus DIR] [--home DIR] [--backend llamacpp|openai|extractive]
                          [--questions eval/gold.jsonl] [--limit 20] [--repeat 5] [--json]

In one process, against its own embedded store (``<KQA_HOME>/bench`` unless ``--home``) holding the
corpus (ingested first; a no-op when it is already there):

* retrieval latency, warm (condense + event detection + hybrid retrieval, what ``Assistant.retrieve``
  does): p50 / p95 over ``--repeat`` passes of the questions;
* full answers with the configured backend (``KQA_LLM_BACKEND`` or ``--backend``): time to first
  token and to the final verified answer, p50 / p95 (for ``extractive`` the first token *is* the answer);
* prompt tokens per question (system + evidence + question, cl100k), and packed evidence tokens;
* abstentions and fallbacks seen, peak RSS of the process, CPU count and load average.

Targets on 2 cores: retrieval p50 <= 50 ms warm; with the 0.5B model first token p50 <= 3 s and full
answer p50 <= 10 s. The figures are printed, never asserted: a loaded machine is slower, not broken.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

DEFAULT_CORPUS = REPO_ROOT.parent / "shared" / "corpus" / "articles"
DEFAULT_QUESTIONS = REPO_ROOT / "eval" / "gold.jsonl"
TARGETS = {"retrieval_p50_ms": 50.0, "first_token_p50_s": 3.0, "answer_p50_s": 10.0}
FALLBACK_QUESTIONS = [
    "What did the Datadog recap say about platform engineering at KubeCon EU 2022?",
    "What were the three big takeaways from KubeCon Detroit 2022?",
    "How many people attended KubeCon London 2025 in person?",
    "What is Botkube?",
    "What did people say about OpenTelemetry at KubeCon Barcelona 2019?",
    "What was the biggest theme of KubeCon Paris 2024?",
    "What happened at last year's KubeCon Europe?",
    "What is the best pizza recipe?",
]


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def load_questions(path: Path | None, limit: int | None) -> list[str]:
    questions: list[str] = []
    if path and path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                record = json.loads(line)
                questions.append(record["question"] if isinstance(record, dict) else str(record))
    else:
        questions = list(FALLBACK_QUESTIONS)
    return questions[:limit] if limit else questions


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def run_benchmark(args) -> dict:
    from ingest.pipeline import run_ingest
    from rag.assistant import Assistant
    from rag.settings import get_settings

    base = get_settings()
    # Its own embedded store (default <KQA_HOME>/bench), never the product's index.
    update = {
        "chroma_url": None,
        "chroma_path": None,
        "home": Path(args.home) if args.home else base.home / "bench",
    }
    if args.backend:
        update["llm_backend"] = args.backend
    settings = base.model_copy(update=update)
    figures: dict = {
        "corpus": str(args.corpus),
        "backend": settings.llm_backend,
        "model": settings.llm_model if settings.llm_backend == "llamacpp" else settings.openai_model,
        "cpu_count": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "load_average_before": [round(v, 2) for v in os.getloadavg()],
        "context_tokens": settings.context_tokens,
        "torch_threads": args.torch_threads or "default",
    }

    started = time.perf_counter()
    summary = run_ingest(paths=[Path(args.corpus)], settings=settings)
    if summary.exit_code != 0:
        raise SystemExit(f"ingest failed: {summary.to_dict()}")
    figures["ingest_seconds"] = round(time.perf_counter() - started, 2)

    questions = load_questions(args.questions, args.limit)
    qa = Assistant(settings)
    status = qa.index_status()
    figures.update(posts=status.posts, chunks=status.chunks, questions=len(questions))

    started = time.perf_counter()
    qa.retrieve(questions[0])  # loads the embedder, builds the BM25 snapshot
    figures["cold_retrieval_seconds"] = round(time.perf_counter() - started, 3)
    retrieval_ms: list[float] = []
    for _ in range(args.repeat):
        for question in questions:
            t = time.perf_counter()
            qa.retrieve(question)
            retrieval_ms.append((time.perf_counter() - t) * 1000)
    figures["retrieval_ms"] = {"p50": round(percentile(retrieval_ms, 0.5), 1),
                               "p95": round(percentile(retrieval_ms, 0.95), 1),
                               "n": len(retrieval_ms)}  # fmt: skip

    started = time.perf_counter()
    qa.ask(questions[0])  # loads the LLM (or not), warms the sentence cache for one question
    figures["warm_up_answer_seconds"] = round(time.perf_counter() - started, 2)
    first_token: list[float] = []
    full: list[float] = []
    prompt_tokens: list[int] = []
    per_question: list[dict] = []
    abstained = fallbacks = 0
    answer_questions = questions[: args.answer_limit] if args.answer_limit else questions
    for question in answer_questions:
        t = time.perf_counter()
        first = None
        answer = None
        for event in qa.stream(question):
            if event.kind == "token" and first is None:
                first = time.perf_counter() - t
            elif event.kind == "answer":
                answer = event.answer
        total = time.perf_counter() - t
        assert answer is not None
        called_llm = first is not None
        if first is None:
            first = total  # extractive or abstained: the answer is the first thing shown
        abstained += answer.abstained
        fallbacks += bool(answer.fallback_reason)
        full.append(total)
        if not answer.abstained or called_llm:
            first_token.append(first)
        if answer.prompt_tokens:
            prompt_tokens.append(answer.prompt_tokens)
        per_question.append({
            "question": question, "seconds": round(total, 3), "first_token_seconds": round(first, 3),
            "prompt_tokens": answer.prompt_tokens, "abstained": answer.abstained,
            "fallback": answer.fallback_reason, "citations": len(answer.citations),
        })  # fmt: skip

    figures["first_token_s"] = {
        "p50": round(percentile(first_token, 0.5), 2),
        "p95": round(percentile(first_token, 0.95), 2),
        "n": len(first_token),
    }
    figures["answer_s"] = {"p50": round(percentile(full, 0.5), 2), "p95": round(percentile(full, 0.95), 2),
                           "n": len(full)}  # fmt: skip
    figures["prompt_tokens"] = {
        "mean": round(statistics.mean(prompt_tokens), 1) if prompt_tokens else 0,
        "p50": percentile(prompt_tokens, 0.5) if prompt_tokens else 0,
        "max": max(prompt_tokens, default=0),
    }
    figures["abstained"] = abstained
    figures["fallbacks"] = fallbacks
    figures["peak_rss_mb"] = round(peak_rss_mb(), 1)
    figures["load_average_after"] = [round(v, 2) for v in os.getloadavg()]
    figures["targets"] = TARGETS
    if args.per_question:
        figures["per_question"] = per_question
    return figures


def print_report(f: dict) -> None:
    def mark(value: float, target: float) -> str:
        return "ok" if value <= target else "OVER TARGET"

    print(f"corpus: {f['posts']} posts, {f['chunks']} chunks ({f['corpus']}); ingest {f['ingest_seconds']} s")
    print(
        f"backend: {f['backend']} ({f['model']}); CPUs: {f['cpu_count']}; torch threads: {f['torch_threads']}; "
        f"load before {f['load_average_before']}"
    )
    r = f["retrieval_ms"]
    print(
        f"retrieval (warm, {r['n']} runs): p50 {r['p50']} ms, p95 {r['p95']} ms   "
        f"[{mark(r['p50'], TARGETS['retrieval_p50_ms'])}; cold first call {f['cold_retrieval_seconds']} s]"
    )
    ft, a = f["first_token_s"], f["answer_s"]
    print(
        f"first token ({ft['n']} answers): p50 {ft['p50']} s, p95 {ft['p95']} s   "
        f"[{mark(ft['p50'], TARGETS['first_token_p50_s'])}]"
    )
    print(
        f"full answer ({a['n']} questions): p50 {a['p50']} s, p95 {a['p95']} s   "
        f"[{mark(a['p50'], TARGETS['answer_p50_s'])}; warm-up answer {f['warm_up_answer_seconds']} s]"
    )
    p = f["prompt_tokens"]
    print(
        f"prompt tokens per question: mean {p['mean']}, p50 {p['p50']}, max {p['max']} "
        f"(evidence budget {f['context_tokens']})"
    )
    print(f"abstained: {f['abstained']}, LLM fallbacks: {f['fallbacks']}")
    print(f"peak RSS: {f['peak_rss_mb']} MB; load after {f['load_average_after']}")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--home", help="home of the benchmark's own store (default: <KQA_HOME>/bench)")
    parser.add_argument("--backend", choices=["llamacpp", "openai", "extractive"])
    parser.add_argument(
        "--questions",
        type=Path,
        default=DEFAULT_QUESTIONS,
        help="JSONL with a 'question' per line (default: the eval gold set)",
    )
    parser.add_argument("--limit", type=int, default=None, help="use only the first N questions")
    parser.add_argument("--answer-limit", type=int, default=20, help="answer only the first N (0: all)")
    parser.add_argument("--repeat", type=int, default=5, help="retrieval passes over the questions")
    parser.add_argument("--per-question", action="store_true", help="include per-question rows in --json")
    parser.add_argument(
        "--torch-threads",
        type=int,
        help="torch intra-op threads for the embedder (on a busy 2-core box, 1 is ~30x faster per query)",
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    if not args.corpus.is_dir():
        parser.error(f"corpus directory not found: {args.corpus}")
    if args.torch_threads:
        import torch

        torch.set_num_threads(args.torch_threads)
    figures = run_benchmark(args)
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        print_report(figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
