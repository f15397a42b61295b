"""The eval runner: ingest the corpus into the eval's own collection, ask every gold question through the
library path users get (``rag.Assistant``), score, and write the report.

    python -m eval run --gold eval/gold.jsonl --out eval/results/my-run [--baseline] [--retrieval-only]

Every system (ours, the LangChain baseline) is reduced to a :class:`SystemOutput` first, so both are
scored by exactly the same code.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from glob import escape as glob_escape
from pathlib import Path

from eval.gold import article_context
from eval.grounding import (
    DEFAULT_LABELS,
    DEFAULT_THRESHOLDS,
    GroundingScorer,
    evaluate_agreement,
    load_labels,
)
from eval.metrics import (
    RECALL_KS,
    citation_precision_recall,
    key_fact_hits,
    latency_summary,
    looks_like_abstention,
    mean,
    percentile,
    ratio,
    retrieval_scores,
)
from eval.report import compare_reports, format_comparison, load_report, write_report
from rag.settings import PROJECT_ROOT, Settings, get_settings

UNANSWERABLE = "unanswerable"
DEFAULT_CORPUS = PROJECT_ROOT.parent / "shared" / "corpus" / "articles"
RANK_DEPTH = 10  # posts needed for recall@10 / MRR@10

# The targets the full run is held to ("ahead of the baseline" is checked on each as well).
TARGETS: tuple[tuple[str, float], ...] = (
    ("recall@5", 0.90),
    ("citation_precision", 0.95),
    ("grounding", 0.95),
    ("key_fact_recall", 0.70),
    ("abstention_accuracy", 0.85),
)

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


# --- what a system returns, before scoring -----------------------------------------------------------


@dataclass(frozen=True)
class CitedEvidence:
    """Citation ``[n]``: the post it points at and the text offered as evidence."""

    n: int
    source_id: str
    quote: str


@dataclass
class SystemOutput:
    """One system's answer to one question, reduced to what the metrics need."""

    answer: str = ""
    ranked_sources: list[str] = field(default_factory=list)  # post ids, best first
    citations: list[CitedEvidence] = field(default_factory=list)
    abstained: bool = False
    timings: dict[str, float] = field(default_factory=dict)
    prompt_tokens: int = 0
    backend: str = ""
    fallback_reason: str = ""
    error: str = ""


@dataclass(frozen=True)
class GoldItem:
    """A gold question, whatever shape ``eval.gold.load_gold`` hands back."""

    id: str
    question: str
    type: str
    answer: str
    key_facts: list[list[str]]
    sources: list[str]
    evidence: list[str]

    @classmethod
    def coerce(cls, item) -> GoldItem:
        def get(name: str, default=None):
            return item.get(name, default) if isinstance(item, dict) else getattr(item, name, default)

        return cls(
            id=str(get("id")),
            question=str(get("question")),
            type=str(get("type")),
            answer=str(get("answer", "") or ""),
            key_facts=[[str(a) for a in alts] for alts in get("key_facts", []) or []],
            sources=[str(s) for s in get("sources", []) or []],
            evidence=[str(e) for e in get("evidence", []) or []],
        )

    @property
    def answerable(self) -> bool:
        return self.type != UNANSWERABLE


# --- scoring -----------------------------------------------------------------------------------------


def score_output(
    item: GoldItem,
    output: SystemOutput,
    scorer: GroundingScorer,
    *,
    retrieval_only: bool = False,
    post_text: Callable[[str], str | None] | None = None,
) -> dict:
    """Everything measured for one (question, system): metrics, judged sentences, failure reasons.

    ``post_text(source_id)`` gives a cited post's full text, so a sentence is judged against the post its
    citation points at (not only the one quote shown for that citation); without it, quotes only.
    """
    metrics: dict = {}
    failures: list[str] = []
    penalty = 0.0
    if item.sources:
        metrics.update(retrieval_scores(output.ranked_sources, item.sources))
        if metrics["recall@5"] < 1.0:
            failures.append("gold source not in top 5")
            penalty += 1.0 - metrics["recall@5"]
    record: dict = {
        "ranked_sources": output.ranked_sources[:RANK_DEPTH],
        "timings": output.timings,
        "error": output.error,
    }
    if output.error:
        failures.append(f"error: {output.error}")
        penalty += 3.0
    if retrieval_only:
        record.update(metrics=metrics, failures=failures, failure_score=round(penalty, 4))
        return record

    abstained = output.abstained or looks_like_abstention(output.answer)
    metrics["abstained"] = abstained
    posts = contexts = None
    if post_text is not None:
        posts = {c.n: [t] for c in output.citations if (t := post_text(c.source_id))}
        context_of = getattr(post_text, "context", None)
        if context_of is not None:
            contexts = {c.n: context_of(c.source_id) for c in output.citations}
    sentences = (
        []
        if abstained
        else scorer.judge_answer(output.answer, _quotes_by_number(output.citations), posts, contexts)
    )
    citations = [] if abstained else _judge_citations(output.citations, sentences, item, scorer)
    supported = sum(s.supported for s in sentences)
    metrics["n_sentences"] = len(sentences)
    metrics["n_supported_sentences"] = supported
    metrics["n_quote_supported_sentences"] = sum(s.quote_supported for s in sentences)
    metrics["grounding"] = supported / len(sentences) if sentences else None
    metrics["grounding_quotes"] = (
        metrics["n_quote_supported_sentences"] / len(sentences) if sentences else None
    )
    metrics.update(
        citation_precision_recall(
            [c["source_id"] for c in citations], [c["supports"] for c in citations], item.sources
        )
    )
    if item.answerable:
        hits = (
            key_fact_hits(output.answer, item.key_facts) if not abstained else [False] * len(item.key_facts)
        )
        metrics["key_fact_hits"] = hits
        metrics["key_fact_recall"] = sum(hits) / len(hits) if hits else None
        if abstained:
            metrics["citation_recall"] = 0.0
            failures.append("abstained on an answerable question")
            penalty += 2.0
        else:
            missing = [alts[0] for alts, hit in zip(item.key_facts, hits, strict=True) if not hit]
            if missing:
                failures.append("missing key facts: " + "; ".join(missing))
                penalty += 1.0 - (metrics["key_fact_recall"] or 0.0)
    elif not abstained:
        failures.append("answered an unanswerable question")
        penalty += 2.0
    if sentences and supported < len(sentences):
        failures.append(f"{len(sentences) - supported} unsupported sentence(s)")
        penalty += 1.0 - metrics["grounding"]
    if citations and metrics["n_correct_citations"] < len(citations):
        failures.append(f"{len(citations) - metrics['n_correct_citations']} wrong citation(s)")
        penalty += 1.0 - metrics["citation_precision"]
    record.update(
        answer=output.answer,
        abstained=abstained,
        backend=output.backend,
        fallback_reason=output.fallback_reason,
        prompt_tokens=output.prompt_tokens,
        citations=citations,
        sentences=[
            {
                "text": s.sentence,
                "cited": s.cited,
                "supported": s.supported,
                "quote_supported": s.quote_supported,
                "reason": s.reason,
            }
            for s in sentences
        ],
        metrics=metrics,
        failures=failures,
        failure_score=round(penalty, 4),
    )
    return record


def _quotes_by_number(citations: Iterable[CitedEvidence]) -> dict[int, list[str]]:
    quotes: dict[int, list[str]] = {}
    for citation in citations:
        quotes.setdefault(citation.n, []).append(citation.quote)
    return quotes


def _judge_citations(citations, sentences, item: GoldItem, scorer: GroundingScorer) -> list[dict]:
    """A citation is correct when its post is a gold source or its quote supports a sentence citing it."""
    judged = []
    for citation in citations:
        citing = [s.sentence for s in sentences if citation.n in s.cited]
        supports = any(scorer.supports(sentence, [citation.quote]) for sentence in citing)
        judged.append(
            {
                "n": citation.n,
                "source_id": citation.source_id,
                "quote": citation.quote,
                "gold_source": citation.source_id in item.sources,
                "supports": supports,
                "cited_in_text": bool(citing),
            }
        )
    return judged


def summarize(records: Sequence[dict], items: Sequence[GoldItem]) -> dict:
    """Aggregates overall and by question type. Citation precision and grounding pool their counts."""
    by_type: dict[str, list[int]] = {}
    for index, item in enumerate(items):
        by_type.setdefault(item.type, []).append(index)
    return {
        "overall": _aggregate([records[i] for i in range(len(items))], list(items)),
        "by_type": {
            qtype: _aggregate([records[i] for i in idx], [items[i] for i in idx])
            for qtype, idx in by_type.items()
        },
    }


def _aggregate(records: list[dict], items: list[GoldItem]) -> dict:
    metrics = [r["metrics"] for r in records]
    summary: dict = {"n": len(records)}
    for key in [f"recall@{k}" for k in RECALL_KS] + ["mrr@10"]:
        summary[key] = mean(m.get(key) for m in metrics)
    if not any("abstained" in m for m in metrics):
        return summary  # retrieval-only
    summary["citation_precision"] = ratio(
        sum(m.get("n_correct_citations", 0) for m in metrics), sum(m.get("n_citations", 0) for m in metrics)
    )
    summary["citation_recall"] = mean(
        m.get("citation_recall") for m, i in zip(metrics, items, strict=True) if i.answerable
    )
    n_sentences = sum(m.get("n_sentences", 0) for m in metrics)
    summary["grounding"] = ratio(sum(m.get("n_supported_sentences", 0) for m in metrics), n_sentences)
    summary["grounding_quotes"] = ratio(
        sum(m.get("n_quote_supported_sentences", 0) for m in metrics), n_sentences
    )
    summary["key_fact_recall"] = mean(m.get("key_fact_recall") for m in metrics)
    unanswerable = [m["abstained"] for m, i in zip(metrics, items, strict=True) if not i.answerable]
    answerable = [m["abstained"] for m, i in zip(metrics, items, strict=True) if i.answerable]
    summary["abstention_accuracy"] = mean(unanswerable) if unanswerable else None
    summary["false_abstention_rate"] = mean(answerable) if answerable else None
    judged = [m.get("judge_correct") for m in metrics if m.get("judge_correct") is not None]
    summary["judge_accuracy"] = mean(judged) if judged else None
    summary["errors"] = sum(bool(r.get("error")) for r in records)
    return summary


def system_summary(records: Sequence[dict], items: Sequence[GoldItem]) -> dict:
    tokens = [r["prompt_tokens"] for r in records if r.get("prompt_tokens")]
    return {
        "summary": summarize(records, items),
        "latency": latency_summary(r.get("timings", {}) for r in records),
        "prompt_tokens": {"mean": mean(tokens), "p50": percentile(tokens, 50), "p95": percentile(tokens, 95)},
    }


def check_targets(systems: dict) -> tuple[list[dict], dict]:
    """Met/missed per target, and where the baseline ran, whether we are ahead of it (or tied)."""
    ours = systems["kqa"]["summary"]["overall"]
    theirs = systems.get("baseline", {}).get("summary", {}).get("overall")
    targets = []
    for metric, target in TARGETS:
        value = ours.get(metric)
        if value is None:
            continue
        row = {"metric": metric, "target": target, "value": value, "met": value >= target}
        if theirs is not None and theirs.get(metric) is not None:
            row["baseline"] = theirs[metric]
            row["ratio"] = ratio(value, theirs[metric])
            row["ahead_of_baseline"] = value > theirs[metric]
            row["tied_with_baseline"] = value == theirs[metric]
        targets.append(row)
    ratios = {}
    if theirs is not None:
        for metric, value in ours.items():
            if metric != "n" and isinstance(value, float) and isinstance(theirs.get(metric), float):
                ratios[metric] = ratio(value, theirs[metric])
    return targets, ratios


class PostTexts:
    """Full texts of the corpus posts by id (file stem), read once: what a citation ultimately points at."""

    def __init__(self, corpus_dir: Path):
        self.corpus_dir = corpus_dir
        self._texts: dict[str, str | None] = {}
        self._contexts: dict[str, str] = {}

    def __call__(self, source_id: str) -> str | None:
        """The post's body as ingest read it (clean of markup: the text citation quotes are slices of)."""
        from ingest.loaders import LoadError, load_document

        if source_id not in self._texts:
            matches = sorted(self.corpus_dir.glob(f"{glob_escape(source_id)}.*"))
            try:
                data = matches[0].read_bytes() if matches else None
                document = load_document(matches[0], data) if data is not None else None
            except (OSError, LoadError):
                data = document = None
            self._texts[source_id] = document.source_text[document.body_start :] if document else None
            raw = data.decode("utf-8", "replace") if data is not None else ""
            self._contexts[source_id] = article_context(raw) if raw else ""
        return self._texts[source_id]

    def context(self, source_id: str) -> str:
        """The post's title, event and author: shown with every citation, so a claim may rest on them."""
        self(source_id)
        return self._contexts[source_id]


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
    corpus: Path = DEFAULT_CORPUS
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
    from eval.gold import load_gold
    from ingest.pipeline import run_ingest

    started_at = datetime.now(UTC)
    t0 = time.perf_counter()
    from eval.split import select_split

    gold = select_split(load_gold(config.gold), config.gold, config.split)
    items = select_items([GoldItem.coerce(i) for i in gold], config.ids, config.limit)
    if not items:
        raise ValueError(f"{config.gold} selects no gold items")
    if not config.corpus.is_dir():
        raise FileNotFoundError(f"corpus directory {config.corpus} does not exist")
    settings = eval_settings(config.settings or get_settings(), config.corpus, config.store_dir)
    scorer = GroundingScorer(embedding_model=settings.embedding_model)

    log(f"Ingesting {config.corpus} into collection {settings.collection} ({settings.describe_store()})")
    ingest_summary = run_ingest(paths=[config.corpus], settings=settings, prune=True)
    ingest_info = ingest_summary.to_dict() if hasattr(ingest_summary, "to_dict") else dict(ingest_summary)

    system = KQASystem(settings)
    call = system.retrieve if config.retrieval_only else system.answer
    outputs = {"kqa": _run_system("kqa", call, items, config.progress)}
    baseline_info = None
    if config.baseline:
        from eval.baseline import TutorialRAG

        baseline = TutorialRAG(settings, config.corpus)
        baseline_info = baseline.build_index(log=log)
        call = baseline.retrieve if config.retrieval_only else baseline.answer
        outputs["baseline"] = _run_system("baseline", call, items, config.progress)

    post_text = PostTexts(config.corpus)
    records = {
        name: [
            score_output(i, o, scorer, retrieval_only=config.retrieval_only, post_text=post_text)
            for i, o in zip(items, outs, strict=True)
        ]
        for name, outs in outputs.items()
    }
    if config.judge and not config.retrieval_only:
        from eval.judge import Judge

        judge = Judge(settings)
        for name, recs in records.items():
            for item, record in _progress(
                list(zip(items, recs, strict=True)),
                desc=f"judge {name}",
                enabled=config.progress,
                total=len(items),
            ):
                record["metrics"]["judge_correct"] = judge.correct(item, record)

    systems = {name: system_summary(recs, items) for name, recs in records.items()}
    human = None
    if config.human_labels is not None and not config.retrieval_only:
        from eval.labels import load_labels as load_human_labels
        from eval.labels import summarize

        answers = {i.id: o.answer for i, o in zip(items, outputs["kqa"], strict=True)}
        human = summarize(load_human_labels(config.human_labels), items, answers).to_dict()
        human["labels"] = _display_path(config.human_labels)
    targets, ratios = check_targets(systems) if not config.retrieval_only else ([], {})
    if config.retrieval_only and "baseline" in systems:
        ratios = {
            m: ratio(v, systems["baseline"]["summary"]["overall"][m])
            for m, v in systems["kqa"]["summary"]["overall"].items()
            if m != "n" and v is not None and systems["baseline"]["summary"]["overall"].get(m)
        }
    report = {
        "meta": {
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
            "settings": {
                k: settings.model_dump().get(k)
                for k in (
                    "top_k",
                    "fetch_k",
                    "chunk_tokens",
                    "chunk_overlap",
                    "min_relevance",
                    "context_tokens",
                )
            },
            "commit": _git_commit(),
            "out_dir": _display_path(config.out_dir),
            "ingest": ingest_info,
            "baseline_index": baseline_info,
            "judge": config.judge,
        },
        "grounding_scorer": scorer_report(scorer, config.labels) if not config.retrieval_only else None,
        "human_labels": human,
        "systems": systems,
        "targets": targets,
        "ratios": ratios,
        "comparison": None,
        "questions": [
            {
                "id": item.id,
                "type": item.type,
                "question": item.question,
                "gold": {"answer": item.answer, "sources": item.sources, "key_facts": item.key_facts},
                **{name: recs[index] for name, recs in records.items()},
            }
            for index, item in enumerate(items)
        ],
    }
    if config.compare:
        report["comparison"] = compare_reports(report, load_report(config.compare))
    report["meta"]["duration_s"] = round(time.perf_counter() - t0, 1)
    if config.write:
        write_report(report, config.out_dir)
    return report


def print_summary(report: dict, log: Callable[[str], None] = print) -> None:
    """The headline numbers, targets and deltas on the terminal."""
    from eval.report import METRIC_LABELS, SYSTEM_NAMES

    for name, data in report["systems"].items():
        overall = data["summary"]["overall"]
        parts = [f"{METRIC_LABELS[m]} {overall[m]:.3f}" for m in METRIC_LABELS if overall.get(m) is not None]
        log(f"{SYSTEM_NAMES.get(name, name)} (n={overall['n']}): " + ", ".join(parts))
    for target in report.get("targets", []):
        status = "met" if target["met"] else "MISSED"
        vs = ""
        if "ahead_of_baseline" in target:
            standing = (
                "ahead"
                if target["ahead_of_baseline"]
                else "tied"
                if target["tied_with_baseline"]
                else "BEHIND"
            )
            vs = f"; baseline {target['baseline']:.3f} ({standing})"
        log(f"  target {target['metric']} >= {target['target']:.2f}: {target['value']:.3f} {status}{vs}")
    if report.get("comparison"):
        log(format_comparison(report["comparison"]))
