"""What tracing costs per question: off, OpenTelemetry spans on, and LangChain child runs under a tracer.

    python bench/tracing.py [--corpus DIR] [--home DIR] [--repeat 5]

In one process, against its own embedded store (``<home>/bench-tracing``, the corpus ingested first; a
no-op when it is already there), with the extractive backend (so the model's time does not drown the
difference), each question is answered ``--repeat`` times in each mode, interleaved:

* ``off``: no endpoint, no tracer provider (the default: no observer is built);
* ``otel``: an SDK tracer provider with a simple processor into the in-memory exporter (every span
  exported synchronously: an upper bound of what a batching OTLP exporter costs the request);
* ``langchain``: ``as_runnable().invoke`` under ``langchain_core``'s run collector (the Runnable's own
  run plus a child run per stage).

Prints p50 / p95 per mode and the spans / runs recorded per question. Figures, not asserts.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

DEFAULT_CORPUS = REPO_ROOT.parent / "shared" / "corpus" / "articles"
QUESTIONS = [
    "What did the Datadog recap say about platform engineering at KubeCon EU 2022?",
    "What were the three big takeaways from KubeCon Detroit 2022?",
    "How many people attended KubeCon London 2025 in person?",
    "What is Botkube?",
    "What did people say about OpenTelemetry at KubeCon Barcelona 2019?",
    "What is the best pizza recipe?",
]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS if DEFAULT_CORPUS.is_dir() else REPO_ROOT / "data")
    parser.add_argument("--home", type=Path, default=REPO_ROOT / ".kqa" / "bench-tracing")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    from langchain_core.tracers.run_collector import RunCollectorCallbackHandler
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from ingest.pipeline import run_ingest
    from rag import tracing
    from rag.assistant import Assistant
    from rag.settings import Settings

    settings = Settings(_env_file=None, home=args.home, chroma_path=None, chroma_url=None, llm_backend="extractive")
    run_ingest(paths=[args.corpus], settings=settings)
    qa = Assistant(settings)
    runnable = qa.as_runnable()
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    for question in QUESTIONS:  # warm: models loaded, snapshot built, sentence cache filled
        qa.ask(question)

    def off(question):
        tracing.use_tracer_provider(None)
        qa.ask(question)

    def otel(question):
        tracing.use_tracer_provider(provider)
        qa.ask(question)
        tracing.use_tracer_provider(None)

    collector = RunCollectorCallbackHandler()

    def langchain(question):
        runnable.invoke(question, config={"callbacks": [collector]})

    modes = {"off": off, "otel": otel, "langchain": langchain}
    seconds: dict[str, list[float]] = {name: [] for name in modes}
    for _ in range(args.repeat):
        for question in QUESTIONS:
            for name, run in modes.items():
                started = time.perf_counter()
                run(question)
                seconds[name].append(time.perf_counter() - started)
    answers = args.repeat * len(QUESTIONS)
    runs = sum(1 + len(r.child_runs) for r in collector.traced_runs)
    print(f"{answers} answers per mode over {len(QUESTIONS)} questions, corpus {args.corpus}")
    for name, values in seconds.items():
        print(
            f"{name:>9}: p50 {1000 * statistics.median(values):7.1f} ms   p95 {1000 * percentile(values, 0.95):7.1f} ms"
        )
    print(f"otel spans per answer: {len(exporter.get_finished_spans()) / answers:.1f}; "
          f"langchain runs per answer: {runs / answers:.1f}")  # fmt: skip


if __name__ == "__main__":
    main()
