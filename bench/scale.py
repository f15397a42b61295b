"""Scale benchmark: the corpus replicated 1x, 10x, 100x; ingest time and retrieval latency against size.

    python bench/scale.py                                  # sizes 1 10 100 (100x takes long on 2 cores)
    python bench/scale.py --sizes 1 10 --repeat 3          # what fits in a coffee break
    python bench/scale.py --sizes 100 --home /tmp/kqa-scale   # keep the stores; a re-run re-uses them
    python bench/scale.py --chroma-url http://127.0.0.1:8000  # against a Chroma server instead
    python bench/scale.py --home /tmp/kqa-scale --ingest-from out/bench/scale.json --out out/bench2
                                                   # re-measure retrieval on kept stores, keep cold ingest figures

Replica ``r`` (r >= 1) of a post ``slug.md`` is ``slug-r{r}.md`` (so post ids stay unique) with
" (copy r)" appended to every prose line of its body, so no chunk is byte-identical to another and the
dense index really holds ``size`` times as many distinct vectors. Replica 0 is the corpus itself.

For each size, in a fresh store (one collection per size): the real ingest job over the replicated
corpus (wall time, chunks per second), then the read path as ``Assistant.retrieve`` runs it (condense +
event detection + dense Chroma query + BM25 + fusion) over the gold questions: the cold first call
(which loads the in-memory snapshot and builds BM25) and warm p50/p95 over ``--repeat`` passes, split
into question embedding, dense query, BM25 and what comes before the retriever's clock (the snapshot
check and the query parsing; ``snapshot_ms`` is the check when the retriever makes it itself). RSS: the
process's peak so far (``peak_rss_mb``, every size run before included) and its resident set after this
size's retrieval (``rss_mb``). Prints a table and JSON, writes ``scale.json`` and ``scale.png``.

Targets on 2 cores: retrieval p50 <= 50 ms at 1x and <= 150 ms at 100x. Figures are printed, never
asserted: a loaded machine is slower, not broken.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from bench.query import DEFAULT_QUESTIONS, load_questions, percentile  # noqa: E402

DEFAULT_CORPUS = REPO_ROOT.parent / "shared" / "corpus" / "articles"
DEFAULT_OUT = REPO_ROOT / "out" / "bench"
TARGET_P50_MS = {1: 50.0, 100: 150.0}
PROSE_SKIP = ("#", "```", "~~~", "|", "<", "---", "===", ">")


def machine_specs() -> dict:
    """CPU count and model, RAM, load: what a reader needs to compare figures between machines."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        model = platform.processor()
    ram_gb = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram_gb = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "nproc": cpus,
        "cpu_model": model,
        "ram_gb": ram_gb,
        "python": platform.python_version(),
        "load_average": [round(v, 2) for v in os.getloadavg()],
    }


def peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def rss_mb() -> float | None:
    """The resident set now (``VmRSS``); None off Linux."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def perturb(text: str, replica: int) -> str:
    """The post with " (copy N)" after every prose line of the body (front matter and headings kept)."""
    from ingest.loaders import LoadError, split_front_matter

    try:
        _, body_start = split_front_matter(text)
    except LoadError:
        body_start = 0
    lines = text[body_start:].split("\n")
    marked = [
        f"{line} (copy {replica})" if line.strip() and not line.lstrip().startswith(PROSE_SKIP) else line
        for line in lines
    ]
    return text[:body_start] + "\n".join(marked)


def replicate(corpus: Path, size: int, target: Path) -> int:
    """Write ``size`` copies of every post of ``corpus`` into ``target`` (kept if already complete)."""
    posts = sorted(p for p in corpus.iterdir() if p.suffix.lower() in (".md", ".markdown", ".txt", ".html"))
    marker = target / ".complete"
    if marker.exists() and marker.read_text() == f"{len(posts)}x{size}":
        return len(posts) * size
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    for post in posts:
        text = post.read_text(encoding="utf-8")
        shutil.copy(post, target / post.name)
        for replica in range(1, size):
            (target / f"{post.stem}-r{replica}{post.suffix}").write_text(perturb(text, replica), encoding="utf-8")
    marker.write_text(f"{len(posts)}x{size}")
    return len(posts) * size


def bench_size(size: int, args, work: Path, questions: list[str]) -> dict:
    from ingest.pipeline import run_ingest
    from rag.assistant import Assistant
    from rag.settings import Settings

    corpus_dir = work / f"corpus-{size}x"
    started = time.perf_counter()
    posts = replicate(args.corpus, size, corpus_dir)
    replicate_s = time.perf_counter() - started

    settings = Settings(
        _env_file=None,
        home=work / f"home-{size}x",
        chroma_path=None,
        chroma_url=args.chroma_url,
        collection=f"kqa_scale_{size}x",
        llm_backend="extractive",
    )
    started = time.perf_counter()
    summary = run_ingest(paths=[corpus_dir], settings=settings)
    ingest_s = time.perf_counter() - started
    if summary.failures:
        raise SystemExit(f"ingest failed at {size}x: {summary.failures[:3]}")

    qa = Assistant(settings)
    started = time.perf_counter()
    qa.retrieve(questions[0])
    cold_s = time.perf_counter() - started
    total_ms: list[float] = []
    parts: dict[str, list[float]] = {name: [] for name in ("snapshot", "embed", "dense", "lexical", "query")}
    for _ in range(args.repeat):
        for question in questions:
            t = time.perf_counter()
            result = qa.retrieve(question)
            total_ms.append((time.perf_counter() - t) * 1000)
            for name in ("snapshot", "embed", "dense", "lexical"):
                parts[name].append(result.timings.get(name, 0.0) * 1000)
            # condense + event detection, before the retriever starts its clock
            parts["query"].append(total_ms[-1] - result.timings.get("retrieve", 0.0) * 1000)
    status = qa.index_status()
    figures = {
        "size": size,
        "posts": status.posts,
        "chunks": status.chunks,
        "files": posts,
        "replicate_s": round(replicate_s, 1),
        "ingest_s": round(ingest_s, 1),
        "ingest_posts_written": summary.added + summary.updated,
        "ingest_chunks_per_s": round(summary.chunks_written / ingest_s, 1) if summary.chunks_written else None,
        "ingest_stage_s": summary.seconds,
        "cold_retrieval_s": round(cold_s, 2),
        "retrieval_ms": {
            "p50": round(percentile(total_ms, 0.5), 1),
            "p95": round(percentile(total_ms, 0.95), 1),
            "n": len(total_ms),
        },
        **{f"{name}_ms_p50": round(percentile(values, 0.5), 1) for name, values in parts.items()},
        "peak_rss_mb": peak_rss_mb(),
        "rss_mb": rss_mb(),
        "load_average": [round(v, 2) for v in os.getloadavg()],
    }
    target = TARGET_P50_MS.get(size)
    if target is not None:
        figures["target_p50_ms"] = target
        figures["meets_target"] = figures["retrieval_ms"]["p50"] <= target
    del qa
    gc.collect()
    return figures


def plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    chunks = [r["chunks"] for r in results]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    left.plot(chunks, [r["retrieval_ms"]["p50"] for r in results], "o-", label="retrieval p50")
    left.plot(chunks, [r["retrieval_ms"]["p95"] for r in results], "s--", label="retrieval p95")
    left.plot(chunks, [r["embed_ms_p50"] for r in results], ".:", label="question embedding p50")
    left.plot(chunks, [r["dense_ms_p50"] for r in results], ".:", label="dense part p50")
    left.plot(chunks, [r["lexical_ms_p50"] for r in results], ".:", label="BM25 part p50")
    for size, target in TARGET_P50_MS.items():
        match = [r for r in results if r["size"] == size]
        if match:
            left.scatter([match[0]["chunks"]], [target], marker="_", s=400, color="red")
    left.set(xscale="log", xlabel="chunks in the index", ylabel="ms", title="Retrieval latency (red: p50 target)")
    left.legend(fontsize=8)
    cold = [r for r in results if r["ingest_posts_written"]]  # a re-used store's no-op run is not an ingest time
    if cold:
        right.plot([r["chunks"] for r in cold], [r["ingest_s"] for r in cold], "o-")
        right.set(xscale="log", yscale="log")
    else:
        right.text(0.5, 0.5, "no store written by this run\n(see --ingest-from)", ha="center", va="center",
                   transform=right.transAxes)  # fmt: skip
    right.set(xlabel="chunks in the index", ylabel="seconds", title="Cold ingest time")
    for r in cold:
        right.annotate(f"{r['size']}x", (r["chunks"], r["ingest_s"]), textcoords="offset points", xytext=(4, 4))
    fig.suptitle(f"KubeCon Recap QA scale benchmark ({results[0].get('nproc', '?')} CPUs)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def adopt_cold_ingest(report: dict, earlier: dict, source: str) -> None:
    """Give sizes whose store this run re-used (a no-op ingest) the cold ingest figures of ``earlier``."""
    cold = {r["size"]: r for r in earlier.get("results", []) if r.get("ingest_posts_written")}
    for r in report["results"]:
        before = cold.get(r["size"])
        if r["ingest_posts_written"] or before is None or before["chunks"] != r["chunks"]:
            continue
        r["noop_ingest_s"] = r["ingest_s"]
        for key in ("ingest_s", "ingest_posts_written", "ingest_chunks_per_s", "ingest_stage_s"):
            r[key] = before[key]
        r["ingest_from"] = source


def print_report(report: dict) -> None:
    specs = report["machine"]
    print(f"machine: {specs['nproc']} CPUs ({specs['cpu_model']}), {specs['ram_gb']} GB RAM, "
          f"load {specs['load_average']}")  # fmt: skip
    print(f"{'size':>5} {'posts':>7} {'chunks':>8} {'ingest s':>9} {'chunks/s':>9} {'cold s':>7} "
          f"{'p50 ms':>7} {'p95 ms':>7} {'embed':>6} {'dense':>6} {'bm25':>6} {'peak RSS':>8} {'RSS MB':>7}  target")  # fmt: skip
    for r in report["results"]:
        target = ""
        if "target_p50_ms" in r:
            target = f"p50 <= {r['target_p50_ms']:.0f} ms: {'met' if r['meets_target'] else 'MISSED'}"
        print(f"{r['size']:>4}x {r['posts']:>7} {r['chunks']:>8} {r['ingest_s']:>9} "
              f"{r['ingest_chunks_per_s'] or '-':>9} {r['cold_retrieval_s']:>7} {r['retrieval_ms']['p50']:>7} "
              f"{r['retrieval_ms']['p95']:>7} {r['embed_ms_p50']:>6} {r['dense_ms_p50']:>6} {r['lexical_ms_p50']:>6} "
              f"{r['peak_rss_mb']:>8} {r.get('rss_mb') or '-':>7}  {target}")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 10, 100], help="replication factors")
    parser.add_argument("--questions", type=Path, default=DEFAULT_QUESTIONS, help="JSONL with a 'question' field")
    parser.add_argument("--limit", type=int, default=40, help="questions used (default 40)")
    parser.add_argument("--repeat", type=int, default=3, help="warm passes over the questions")
    parser.add_argument("--home", type=Path, help="work directory, kept (replicas and stores are re-used)")
    parser.add_argument("--chroma-url", help="use this Chroma server (one collection per size) instead of embedded")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where scale.json and scale.png go")
    parser.add_argument(
        "--ingest-from",
        type=Path,
        help="an earlier scale.json: sizes whose store this run re-used take their cold ingest figures "
        "from it (re-measure retrieval on kept stores without re-ingesting)",
    )
    args = parser.parse_args(argv)
    if any(s < 1 for s in args.sizes):
        parser.error("--sizes must be positive")

    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    questions = load_questions(args.questions, args.limit)
    work = args.home or Path(tempfile.mkdtemp(prefix="kqa-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    report = {"machine": machine_specs(), "corpus": str(args.corpus), "questions": len(questions),
              "repeat": args.repeat, "store": "chroma server" if args.chroma_url else "embedded", "results": []}  # fmt: skip
    try:
        for size in sorted(set(args.sizes)):
            print(f"-- {size}x: replicating, ingesting, measuring …", file=sys.stderr, flush=True)
            figures = bench_size(size, args, work, questions)
            figures["nproc"] = report["machine"]["nproc"]
            report["results"].append(figures)
            print(json.dumps(figures), file=sys.stderr, flush=True)
    finally:
        if args.home is None:
            shutil.rmtree(work, ignore_errors=True)
    if args.ingest_from:
        adopt_cold_ingest(report, json.loads(args.ingest_from.read_text()), str(args.ingest_from))
    report["machine"]["load_average_after"] = [round(v, 2) for v in os.getloadavg()]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "scale.json").write_text(json.dumps(report, indent=2) + "\n")
    plot(report["results"], args.out / "scale.png")
    print_report(report)
    print(json.dumps(report, indent=2))
    print(f"wrote {args.out / 'scale.json'} and {args.out / 'scale.png'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
