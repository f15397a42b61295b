"""The eval runner: ingest the corpus into the eval's own collection, ask every gold question through the
library path users get (``rag.Assistant``), score, and write the report.

    python -m eval run --gold eval/gold.jsonl --corpus ../shared/corpus/articles --out eval/results/my-run

The corpus defaults to the product's own (``rag.settings``' ``data_dir``: the repository's ``data/``, or
``KQA_DATA_DIR``); the gold sets cite the shared corpus, so pass ``--corpus`` for real figures.

Every system (ours, the LangChain baseline) is reduced to a :class:`eval.contracts.SystemOutput` first,
so both are scored by exactly the same code (:mod:`eval.scoring`).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from eval.baseline import TutorialRAG
from eval.contracts import RANK_DEPTH, UNANSWERABLE, CitedEvidence, GoldItem, System, SystemOutput
from eval.gold import default_corpus, load_gold
from eval.grounding import (
    DEFAULT_LABELS,
    DEFAULT_THRESHOLDS,
    GroundingScorer,
    evaluate_agreement,
    load_labels,
)
from eval.judge import Judge
from eval.labels import load_labels as load_human_labels
from eval.labels import summarize as summarize_human_labels
from eval.report import compare_reports, load_report, print_summary, write_report
from eval.scoring import (
    TARGETS,
    PostTexts,
    build_report,
    check_targets,
    score_output,
    summarize,
    system_summary,
)
from eval.split import select_split
from rag.settings import PROJECT_ROOT, Settings, get_settings

# Names that lived here before the contract, scoring and printing got their own modules.
__all__ = [
    "RANK_DEPTH",
    "TARGETS",
    "UNANSWERABLE",
    "CitedEvidence",
    "GoldItem",
    "KQASystem",
    "PostTexts",
    "RunConfig",
    "System",
    "SystemOutput",
    "check_targets",
    "default_corpus",
    "eval_settings",
    "print_summary",
    "run_eval",
    "score_output",
    "select_items",
    "summarize",
    "system_summary",
]

GROUNDING_DESCRIPTION = (
    "Deterministic, no LLM, independent of the pipeline's own verifier. A citation marker covers the text "
    "back to the previous marker. A sentence is *supported* when the evidence it cites states every number "
    "and name in it, does not lack a negation it makes, and covers its content words (all of them, or most "
    "of them plus MiniLM similarity to a one- or two-sentence window). *grounding* judges against the cited "
    "post (the quote shown, else the three passages of the post that best match the sentence, since one "
    "citation can serve several sentences but shows one quote); *grounding (quotes only)* against the "
    "quotes shown alone. The cited post's title, event and author, shown with each citation, count as evidence "
    "too (\"... at KubeCon Austin 2017 [1]\" citing the Austin 2017 recap), but never as a similarity window. "
    "Uncited claims count as unsupported."
)


# --- our system --------------------------------------------------------------------------------------


def eval_settings(base: Settings, corpus_dir: Path, store_dir: Path | None = None) -> Settings:
    """The eval's own collection (named after the corpus), so it never touches the product's index."""
    digest = hashlib.sha1(str(corpus_dir.resolve()).encode()).hexdigest()[:10]
    update: dict = {"collection": f"kqa_eval_{digest}"}
    if not base.chroma_url:
        update["chroma_path"] = store_dir or base.home / "eval" / "chroma"
    return base.model_copy(update=update)


class KQASystem:
    """Our product, driven exactly as a library user would: ``Assistant.ask``."""

    name = "kqa"

    def __init__(self, settings: Settings):
        from rag.assistant import Assistant

        self.settings = settings
        self.assistant = Assistant(settings=settings)

    def answer(self, question: str) -> SystemOutput:
        started = time.perf_counter()
        answer = self.assistant.ask(question)
        wall = time.perf_counter() - started
        timings = dict(answer.timings)
        timings.setdefault("total", wall)
        ranked = [s.source_id for s in answer.sources]
        if len(set(ranked)) < RANK_DEPTH:
            ranked = ranked + [s for s in self.rank_posts(question) if s not in ranked]
        return SystemOutput(
            answer=answer.text,
            ranked_sources=ranked,
            citations=[CitedEvidence(c.n, c.source_id, c.quote) for c in answer.citations],
            abstained=answer.abstained,
            timings=timings,
            prompt_tokens=answer.prompt_tokens,
            backend=answer.backend,
            fallback_reason=answer.fallback_reason,
        )

    def retrieve(self, question: str) -> SystemOutput:
        started = time.perf_counter()
        ranked = self.rank_posts(question)
        return SystemOutput(ranked_sources=ranked, timings={"retrieve": time.perf_counter() - started})

    def rank_posts(self, question: str) -> list[str]:
        """Post ids in the retriever's order, deep enough for recall@10."""
        return self.assistant.rank_sources(question, k=RANK_DEPTH)


# --- the run -----------------------------------------------------------------------------------------


@dataclass
class RunConfig:
    gold: Path
    out_dir: Path
    corpus: Path | None = None  # None: the settings' data_dir (the repository's data/)
    retrieval_only: bool = False
    baseline: bool = False
    compare: Path | None = None
    limit: int | None = None
    ids: Sequence[str] | None = None  # a fixed subset (CI)
    judge: bool = False
    settings: Settings | None = None
    store_dir: Path | None = None
    labels: Path | None = DEFAULT_LABELS
    progress: bool = True
    write: bool = True
    split: str = "all"  # tune | test | all (see eval/split.py)
    human_labels: Path | None = None  # answers read against the posts (see eval/labels.py)


def select_items(items: Sequence[GoldItem], ids: Sequence[str] | None, limit: int | None) -> list[GoldItem]:
    if ids is not None:
        by_id = {item.id: item for item in items}
        unknown = [i for i in ids if i not in by_id]
        if unknown:
            raise ValueError(f"gold ids not found: {', '.join(unknown)}")
        items = [by_id[i] for i in ids]
    return list(items)[:limit] if limit is not None else list(items)


def _progress(iterable, *, desc: str, enabled: bool, total: int):
    if not enabled:
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, desc=desc, total=total, unit="q", file=sys.stderr)


def _run_system(
    system_name: str,
    call: Callable[[str], SystemOutput],
    items: Sequence[GoldItem],
    progress: bool,
) -> list[SystemOutput]:
    outputs = []
    for item in _progress(items, desc=system_name, enabled=progress, total=len(items)):
        try:
            outputs.append(call(item.question))
        except Exception as exc:  # one bad question must not lose the whole run; it is scored as an error
            outputs.append(SystemOutput(error=f"{type(exc).__name__}: {exc}"))
    return outputs


def _backend_label(settings: Settings) -> str:
    if settings.llm_backend == "llamacpp":
        return f"llamacpp ({settings.llm_model})"
    if settings.llm_backend == "openai":
        from rag.redaction import safe_url

        return f"openai ({settings.openai_model} at {safe_url(settings.openai_base_url)})"
    return settings.llm_backend


def _display_path(path: Path | str) -> str:
    """Paths relative to the checkout where possible, so a committed report reads the same anywhere."""
    try:
        return os.path.relpath(Path(path).resolve(), PROJECT_ROOT)
    except ValueError:
        return str(path)


def _git_commit() -> str:
    try:
        result = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return result.stdout.strip() if result.returncode == 0 else ""


def scorer_report(scorer: GroundingScorer, labels_path: Path | None) -> dict:
    """How the grounding scorer decides, and how often it agrees with the hand labels."""
    report = {"description": GROUNDING_DESCRIPTION, "thresholds": asdict(scorer.thresholds)}
    if labels_path and labels_path.exists():
        report["labels"] = _display_path(labels_path)
        report["agreement"] = evaluate_agreement(load_labels(labels_path), scorer)
    if DEFAULT_THRESHOLDS.exists():  # written by `python -m eval calibrate --write`, with held-out agreement
        stored = json.loads(DEFAULT_THRESHOLDS.read_text(encoding="utf-8"))
        report["cross_validated"] = stored.get("cross_validated")
    return report


def run_eval(config: RunConfig, log: Callable[[str], None] = print) -> dict:
    """Run the whole evaluation; returns the report dict (also written to ``config.out_dir``)."""
    started_at = datetime.now(UTC)
    t0 = time.perf_counter()
    base = config.settings or get_settings()
    config = replace(config, corpus=config.corpus or base.data_dir)
    items = _load_items(config)
    if not config.corpus.is_dir():
        raise FileNotFoundError(f"corpus directory {config.corpus} does not exist")
    settings = eval_settings(base, config.corpus, config.store_dir)
    scorer = GroundingScorer(embedding_model=settings.embedding_model)
    ingest_info = _ingest(config.corpus, settings, log)
    outputs, baseline_info = _answer_all(config, settings, items, log)
    records = _score_all(config, settings, items, outputs, scorer)
    report = build_report(
        items,
        records,
        meta=_run_meta(config, settings, items, started_at, ingest_info, baseline_info),
        grounding_scorer=scorer_report(scorer, config.labels) if not config.retrieval_only else None,
        human_labels=_human_labels(config, items, outputs["kqa"]),
        retrieval_only=config.retrieval_only,
    )
    if config.compare:
        report["comparison"] = compare_reports(report, load_report(config.compare))
    report["meta"]["duration_s"] = round(time.perf_counter() - t0, 1)
    if config.write:
        write_report(report, config.out_dir)
    return report


def _load_items(config: RunConfig) -> list[GoldItem]:
    """The gold items of the run: the split, then the ids or the first ``limit``."""
    gold = select_split(load_gold(config.gold), config.gold, config.split)
    items = select_items([GoldItem.coerce(i) for i in gold], config.ids, config.limit)
    if not items:
        raise ValueError(f"{config.gold} selects no gold items")
    return items


def _ingest(corpus: Path, settings: Settings, log: Callable[[str], None]) -> dict:
    """The corpus into the eval's collection (pruning posts no longer there); ingest's summary."""
    from ingest.pipeline import run_ingest  # the ingest package (torch, Chroma): only when a run ingests

    log(f"Ingesting {corpus} into collection {settings.collection} ({settings.describe_store()})")
    ingest_summary = run_ingest(paths=[corpus], settings=settings, prune=True)
    return ingest_summary.to_dict() if hasattr(ingest_summary, "to_dict") else dict(ingest_summary)


def _answer_all(
    config: RunConfig, settings: Settings, items: Sequence[GoldItem], log: Callable[[str], None]
) -> tuple[dict[str, list[SystemOutput]], dict | None]:
    """Every system's output per item (ours, then the baseline if asked), and the baseline's index info."""
    outputs = {"kqa": _run_one(KQASystem(settings), config, items)}
    baseline_info = None
    if config.baseline:
        baseline = TutorialRAG(settings, config.corpus)
        baseline_info = baseline.build_index(log=log)
        outputs["baseline"] = _run_one(baseline, config, items)
    return outputs, baseline_info


def _run_one(system: System, config: RunConfig, items: Sequence[GoldItem]) -> list[SystemOutput]:
    call = system.retrieve if config.retrieval_only else system.answer
    return _run_system(system.name, call, items, config.progress)


def _score_all(
    config: RunConfig,
    settings: Settings,
    items: Sequence[GoldItem],
    outputs: dict[str, list[SystemOutput]],
    scorer: GroundingScorer,
) -> dict[str, list[dict]]:
    """Each system's scored records, with the LLM judge's verdicts when ``--judge`` is on."""
    post_text = PostTexts(config.corpus)
    records = {
        name: [
            score_output(i, o, scorer, retrieval_only=config.retrieval_only, post_text=post_text)
            for i, o in zip(items, outs, strict=True)
        ]
        for name, outs in outputs.items()
    }
    if config.judge and not config.retrieval_only:
        judge = Judge(settings)
        for name, recs in records.items():
            for item, record in _progress(
                list(zip(items, recs, strict=True)),
                desc=f"judge {name}",
                enabled=config.progress,
                total=len(items),
            ):
                record["metrics"]["judge_correct"] = judge.correct(item, record)
    return records


def _human_labels(config: RunConfig, items: Sequence[GoldItem], ours: Sequence[SystemOutput]) -> dict | None:
    """The figures of the answers read against the posts (``--human-labels``), None without them."""
    if config.human_labels is None or config.retrieval_only:
        return None
    answers = {i.id: o.answer for i, o in zip(items, ours, strict=True)}
    human = summarize_human_labels(load_human_labels(config.human_labels), items, answers).to_dict()
    human["labels"] = _display_path(config.human_labels)
    return human


REPORTED_SETTINGS = ("top_k", "fetch_k", "chunk_tokens", "chunk_overlap", "min_relevance", "context_tokens")


def _run_meta(
    config: RunConfig,
    settings: Settings,
    items: Sequence[GoldItem],
    started_at: datetime,
    ingest_info: dict,
    baseline_info: dict | None,
) -> dict:
    """What was run, on what, with which settings and code (``duration_s`` is filled in at the end)."""
    return {
        "started_at": started_at.isoformat(timespec="seconds"),
        "duration_s": None,
        "mode": "retrieval-only" if config.retrieval_only else "full",
        "gold": _display_path(config.gold),
        "split": config.split,
        "n_items": len(items),
        "types": dict(Counter(i.type for i in items)),
        "corpus": _display_path(config.corpus),
        "collection": settings.collection,
        "store": settings.describe_store(),
        "backend": "none (retrieval only)" if config.retrieval_only else _backend_label(settings),
        "embedding_model": settings.embedding_model,
        "settings": {k: settings.model_dump().get(k) for k in REPORTED_SETTINGS},
        "commit": _git_commit(),
        "out_dir": _display_path(config.out_dir),
        "ingest": ingest_info,
        "baseline_index": baseline_info,
        "judge": config.judge,
    }
