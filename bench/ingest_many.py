"""Benchmark the ingest of many small posts (the store-call cost per post, not the embedding cost).

    python bench/ingest_many.py [--posts 2000] [--json]

Writes ``--posts`` short Markdown posts (one chunk each, varied text) into a temporary directory and
ingests them into a fresh embedded store, in one process with the model loaded first: prints the
cold ingest's seconds (total and per stage), posts per second, the number of Chroma upsert calls, and
a no-op re-run. Target (2 cores): 2,000 small files in <= 30 s.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

TARGET_SECONDS = 30.0
TOPICS = ["eBPF", "Cilium", "platform engineering", "GitOps", "WebAssembly", "SBOMs", "Istio", "OpenTelemetry"]
CITIES = ["Valencia", "Detroit", "Amsterdam", "Chicago", "Paris", "Salt Lake City", "London", "Atlanta"]


def write_posts(directory: Path, count: int) -> None:
    for i in range(count):
        topic, city = TOPICS[i % len(TOPICS)], CITIES[(i // len(TOPICS)) % len(CITIES)]
        (directory / f"note-{i:05d}.md").write_text(
            f"---\ntitle: Note {i}\nevent: KubeCon {city}\n---\n\n# Note {i}\n\n"
            f"Talk {i} in {city} covered {topic}: what worked in production for team {i % 97}.\n",
            encoding="utf-8",
        )


def run_benchmark(count: int, work: Path) -> dict:
    from chromadb.api.models.Collection import Collection

    from ingest.pipeline import run_ingest
    from rag.components.store import get_embedder_for
    from rag.settings import Settings

    posts = work / "posts"
    posts.mkdir()
    write_posts(posts, count)
    settings = Settings(_env_file=None, home=work / "home", chroma_path=None, chroma_url=None)
    get_embedder_for(settings).embed(["warm-up"])  # the model load is not the store's cost

    calls = {"upsert": 0}
    real_upsert = Collection.upsert

    def counting_upsert(self, *args, **kwargs):
        calls["upsert"] += 1
        return real_upsert(self, *args, **kwargs)

    Collection.upsert = counting_upsert
    try:
        started = time.perf_counter()
        cold = run_ingest(paths=[posts], settings=settings)
        cold_seconds = time.perf_counter() - started
    finally:
        Collection.upsert = real_upsert
    started = time.perf_counter()
    noop = run_ingest(paths=[posts], settings=settings)
    return {
        "posts": count,
        "cpu_count": os.cpu_count(),
        "load_average": " ".join(f"{v:.1f}" for v in os.getloadavg()),
        "cold_seconds": round(cold_seconds, 2),
        "posts_per_second": round(count / cold_seconds, 1),
        "stages": cold.seconds,
        "chunks_written": cold.chunks_written,
        "upsert_calls": calls["upsert"],
        "noop_seconds": round(time.perf_counter() - started, 2),
        "noop_unchanged": noop.unchanged,
        "target_seconds": TARGET_SECONDS,
        "met": cold_seconds <= TARGET_SECONDS and cold.added == count,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--posts", type=int, default=2000, help="how many small posts to write (default 2000)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with tempfile.TemporaryDirectory(prefix="kqa-bench-many-") as tmp:
        figures = run_benchmark(args.posts, Path(tmp))
    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    print(f"{figures['posts']} small posts, {figures['cpu_count']} cores, load {figures['load_average']}")
    print(
        f"cold ingest: {figures['cold_seconds']} s ({figures['posts_per_second']} posts/s, "
        f"{figures['chunks_written']} chunks, {figures['upsert_calls']} upsert calls); target <= {TARGET_SECONDS:.0f} s: "
        + ("met" if figures["met"] else "MISSED")
    )
    print("stages: " + ", ".join(f"{k} {v:.1f} s" for k, v in figures["stages"].items()))
    print(f"no-op re-run: {figures['noop_seconds']} s ({figures['noop_unchanged']} unchanged)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
