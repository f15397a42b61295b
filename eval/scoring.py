"""Scoring: one system's output for one gold question, the aggregates, the targets, and the report dict.

Everything here works on :mod:`eval.contracts` values, so every system is scored by the same code.
:func:`build_report` is the one place the report dict is put together (``python -m eval run`` and the
tests both call it); :mod:`eval.report` renders it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from glob import escape as glob_escape
from pathlib import Path

from eval.contracts import RANK_DEPTH, CitedEvidence, GoldItem, SystemOutput
from eval.gold import article_context
from eval.grounding import GroundingScorer
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

# The targets the full run is held to ("ahead of the baseline" is checked on each as well).
TARGETS: tuple[tuple[str, float], ...] = (
    ("recall@5", 0.90),
    ("citation_precision", 0.95),
    ("grounding", 0.95),
    ("key_fact_recall", 0.70),
    ("abstention_accuracy", 0.85),
)


# --- one (question, system) ------------------------------------------------------------------------


@dataclass
class _Failures:
    """The failure reasons of one record, and the score that ranks the worst failures."""

    reasons: list[str] = field(default_factory=list)
    penalty: float = 0.0

    def add(self, reason: str, weight: float) -> None:
        self.reasons.append(reason)
        self.penalty += weight

    def fields(self) -> dict:
        return {"failures": self.reasons, "failure_score": round(self.penalty, 4)}


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
    failures = _Failures()
    if item.sources:
        metrics.update(retrieval_scores(output.ranked_sources, item.sources))
        if metrics["recall@5"] < 1.0:
            failures.add("gold source not in top 5", 1.0 - metrics["recall@5"])
    record: dict = {
        "ranked_sources": output.ranked_sources[:RANK_DEPTH],
        "timings": output.timings,
        "error": output.error,
    }
    if output.error:
        failures.add(f"error: {output.error}", 3.0)
    if retrieval_only:
        record.update(metrics=metrics, **failures.fields())
        return record

    abstained = output.abstained or looks_like_abstention(output.answer)
    metrics["abstained"] = abstained
    sentences = [] if abstained else _judge_sentences(output, scorer, post_text)
    citations = [] if abstained else _judge_citations(output.citations, sentences, item, scorer)
    metrics.update(_grounding_counts(sentences))
    metrics.update(
        citation_precision_recall(
            [c["source_id"] for c in citations], [c["supports"] for c in citations], item.sources
        )
    )
    _score_key_facts(item, output.answer, abstained, metrics, failures)
    _score_support(sentences, citations, metrics, failures)
    record.update(
        answer=output.answer,
        abstained=abstained,
        backend=output.backend,
        fallback_reason=output.fallback_reason,
        prompt_tokens=output.prompt_tokens,
        citations=citations,
        sentences=[_sentence_record(s) for s in sentences],
        metrics=metrics,
        **failures.fields(),
    )
    return record


def _judge_sentences(output: SystemOutput, scorer: GroundingScorer, post_text) -> list:
    """The answer's sentences judged against the cited posts (or the quotes alone, without ``post_text``)."""
    posts = contexts = None
    if post_text is not None:
        posts = {c.n: [t] for c in output.citations if (t := post_text(c.source_id))}
        context_of = getattr(post_text, "context", None)
        if context_of is not None:
            contexts = {c.n: context_of(c.source_id) for c in output.citations}
    return scorer.judge_answer(output.answer, _quotes_by_number(output.citations), posts, contexts)


def _grounding_counts(sentences: Sequence) -> dict:
    supported = sum(s.supported for s in sentences)
    quote_supported = sum(s.quote_supported for s in sentences)
    return {
        "n_sentences": len(sentences),
        "n_supported_sentences": supported,
        "n_quote_supported_sentences": quote_supported,
        "grounding": supported / len(sentences) if sentences else None,
        "grounding_quotes": quote_supported / len(sentences) if sentences else None,
    }


def _score_key_facts(
    item: GoldItem, answer: str, abstained: bool, metrics: dict, failures: _Failures
) -> None:
    """Key-fact recall of an answerable item, and the failures of answering (or not) as it should."""
    if not item.answerable:
        if not abstained:
            failures.add("answered an unanswerable question", 2.0)
        return
    hits = key_fact_hits(answer, item.key_facts) if not abstained else [False] * len(item.key_facts)
    metrics["key_fact_hits"] = hits
    metrics["key_fact_recall"] = sum(hits) / len(hits) if hits else None
    if abstained:
        metrics["citation_recall"] = 0.0
        failures.add("abstained on an answerable question", 2.0)
        return
    missing = [alts[0] for alts, hit in zip(item.key_facts, hits, strict=True) if not hit]
    if missing:
        failures.add("missing key facts: " + "; ".join(missing), 1.0 - (metrics["key_fact_recall"] or 0.0))


def _score_support(sentences: Sequence, citations: list[dict], metrics: dict, failures: _Failures) -> None:
    """The failures of unsupported sentences and wrong citations."""
    supported = metrics["n_supported_sentences"]
    if sentences and supported < len(sentences):
        failures.add(f"{len(sentences) - supported} unsupported sentence(s)", 1.0 - metrics["grounding"])
    if citations and metrics["n_correct_citations"] < len(citations):
        failures.add(
            f"{len(citations) - metrics['n_correct_citations']} wrong citation(s)",
            1.0 - metrics["citation_precision"],
        )


def _sentence_record(sentence) -> dict:
    return {
        "text": sentence.sentence,
        "cited": sentence.cited,
        "supported": sentence.supported,
        "quote_supported": sentence.quote_supported,
        "reason": sentence.reason,
    }


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


class PostTexts:
    """Full texts of the corpus posts by id (file stem), read once: what a citation ultimately points at."""

    def __init__(self, corpus_dir: Path):
        self.corpus_dir = corpus_dir
        self._texts: dict[str, str | None] = {}
        self._contexts: dict[str, str] = {}

    def __call__(self, source_id: str) -> str | None:
        """The post's body as ingest read it (clean of markup: the text citation quotes are slices of)."""
        from ingest.loaders import LoadError, load_document  # the ingest package, only when a run scores

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


# --- aggregates --------------------------------------------------------------------------------------


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


def _retrieval_ratios(systems: dict) -> dict:
    """Ours / baseline per retrieval metric of a retrieval-only run (it has no targets)."""
    if "baseline" not in systems:
        return {}
    theirs = systems["baseline"]["summary"]["overall"]
    return {
        m: ratio(v, theirs[m])
        for m, v in systems["kqa"]["summary"]["overall"].items()
        if m != "n" and v is not None and theirs.get(m)
    }


# --- the report dict ---------------------------------------------------------------------------------


def question_records(items: Sequence[GoldItem], records: Mapping[str, Sequence[dict]]) -> list[dict]:
    """Per question: the gold, and each system's scored record under the system's name."""
    return [
        {
            "id": item.id,
            "type": item.type,
            "question": item.question,
            "gold": {
                "answer": item.answer,
                "sources": list(item.sources),
                "key_facts": [list(alts) for alts in item.key_facts],
            },
            **{name: recs[index] for name, recs in records.items()},
        }
        for index, item in enumerate(items)
    ]


def build_report(
    items: Sequence[GoldItem],
    records: Mapping[str, Sequence[dict]],
    *,
    meta: dict,
    grounding_scorer: dict | None = None,
    human_labels: dict | None = None,
    retrieval_only: bool = False,
) -> dict:
    """The report dict of scored records (``{system: [record per item]}``): summaries, targets, ratios,
    questions. ``comparison`` is left ``None`` for the caller to fill (see ``eval.report.compare_reports``)."""
    systems = {name: system_summary(recs, items) for name, recs in records.items()}
    if retrieval_only:
        targets, ratios = [], _retrieval_ratios(systems)
    else:
        targets, ratios = check_targets(systems)
    return {
        "meta": meta,
        "grounding_scorer": grounding_scorer,
        "human_labels": human_labels,
        "systems": systems,
        "targets": targets,
        "ratios": ratios,
        "comparison": None,
        "questions": question_records(items, records),
    }
