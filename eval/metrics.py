"""Pure scoring functions: retrieval ranks, key facts, abstention, citations, latency percentiles.

Everything here works on plain values (lists of slugs, strings, dicts of seconds) so it can be unit
tested on hand-made inputs and applied identically to our assistant and to the LangChain baseline.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence

import numpy as np

from rag.citations import BRACKET_MARKER_RE as _MARKER_RE
from rag.citations import cited_numbers

RECALL_KS: tuple[int, ...] = (1, 3, 5, 10)
MRR_K = 10

_SPACE_RE = re.compile(r"\s+")
_TRANSLATE = str.maketrans(
    {"\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"', "\u2013": "-", "\u2014": "-"}
)

# Phrases that mean "the recaps do not answer this". Applied to both systems, so an LLM that declines
# in words (without setting a flag) is counted the same way for ours and for the baseline.
_ABSTAIN_RE = re.compile(
    r"(?:\bi (?:do not|don't) know\b|\bi (?:could not|couldn't|can ?not|can't|am unable to|was unable to) "
    r"(?:find|answer|determine|say)|\b(?:not|no) (?:mentioned|covered|discussed|addressed|stated|specified)\b|"
    r"\bno (?:information|mention|details?|answer)\b|\bdoes(?: not|n't) (?:say|mention|contain|provide|cover)|"
    r"\bdo(?: not|n't) (?:say|mention|contain|provide|cover)|\bnot enough information\b|"
    r"\bunable to answer\b|\bcannot be answered\b|\bnot in the (?:provided |given )?(?:context|recaps|posts|sources)\b)"
)


# --- text helpers ------------------------------------------------------------------------------------


def normalize_text(text: str) -> str:
    """Lowercase, NFKC, straight quotes/dashes, single spaces, citation markers removed."""
    text = unicodedata.normalize("NFKC", text).translate(_TRANSLATE)
    text = _MARKER_RE.sub(" ", text)
    return _SPACE_RE.sub(" ", text).strip().lower()


def citation_numbers(text: str) -> list[int]:
    """The citation numbers in ``[1]``, ``[2, 3]`` markers, in order of appearance, without repeats."""
    return cited_numbers(text, _MARKER_RE)


def strip_markers(text: str) -> str:
    return _SPACE_RE.sub(" ", _MARKER_RE.sub(" ", text)).strip()


def looks_like_abstention(text: str) -> bool:
    """Whether an answer declines to answer, judged from the words of its first sentence.

    Only the opening counts: an answer that states facts and then notes that one detail is "not
    mentioned" is still an answer.
    """
    first = re.split(r"(?<=[.!?])\s+", normalize_text(text), maxsplit=1)[0]
    return bool(_ABSTAIN_RE.search(first))


# --- retrieval ---------------------------------------------------------------------------------------


def distinct_in_order(items: Iterable[str]) -> list[str]:
    """First occurrences only: a chunk ranking becomes a post ranking."""
    seen: dict[str, None] = {}
    for item in items:
        if item and item not in seen:
            seen[item] = None
    return list(seen)


def recall_at_k(ranked: Sequence[str], gold: Iterable[str], k: int) -> float:
    """Share of gold posts among the first ``k`` distinct retrieved posts."""
    gold_set = set(gold)
    if not gold_set:
        raise ValueError("recall is undefined without gold sources")
    top = set(distinct_in_order(ranked)[:k])
    return len(gold_set & top) / len(gold_set)


def reciprocal_rank(ranked: Sequence[str], gold: Iterable[str], k: int = MRR_K) -> float:
    """1/rank of the first gold post within the first ``k`` distinct posts, else 0."""
    gold_set = set(gold)
    if not gold_set:
        raise ValueError("reciprocal rank is undefined without gold sources")
    for rank, post in enumerate(distinct_in_order(ranked)[:k], start=1):
        if post in gold_set:
            return 1.0 / rank
    return 0.0


def retrieval_scores(ranked: Sequence[str], gold: Iterable[str]) -> dict[str, float]:
    gold = list(gold)
    scores = {f"recall@{k}": recall_at_k(ranked, gold, k) for k in RECALL_KS}
    scores[f"mrr@{MRR_K}"] = reciprocal_rank(ranked, gold, MRR_K)
    return scores


# --- correctness -------------------------------------------------------------------------------------


def key_fact_hits(answer_text: str, key_facts: Sequence[Sequence[str]]) -> list[bool]:
    """For each fact, whether any of its lowercase alternatives occurs in the normalised answer."""
    haystack = normalize_text(answer_text)
    return [
        any(normalize_text(alt) in haystack for alt in alternatives if alt.strip())
        for alternatives in key_facts
    ]


def key_fact_recall(answer_text: str, key_facts: Sequence[Sequence[str]]) -> float | None:
    """Share of key facts the answer states; ``None`` when the item has no key facts."""
    if not key_facts:
        return None
    hits = key_fact_hits(answer_text, key_facts)
    return sum(hits) / len(hits)


# --- citations ---------------------------------------------------------------------------------------


def citation_precision_recall(
    cited_sources: Sequence[str],
    supported: Sequence[bool],
    gold_sources: Iterable[str],
) -> dict[str, float | int | None]:
    """Counts for citation precision and recall of one answer.

    ``cited_sources[i]`` is the post behind citation i and ``supported[i]`` whether its quote supports
    a sentence that cites it. A citation is correct if its post is a gold source or it is supported.
    Recall counts the distinct gold posts that are cited.
    """
    if len(cited_sources) != len(supported):
        raise ValueError("cited_sources and supported must have the same length")
    gold_set = set(gold_sources)
    correct = sum(1 for source, ok in zip(cited_sources, supported, strict=True) if source in gold_set or ok)
    cited_gold = len(gold_set & set(cited_sources))
    return {
        "n_citations": len(cited_sources),
        "n_correct_citations": correct,
        "citation_precision": correct / len(cited_sources) if cited_sources else None,
        "n_gold_sources": len(gold_set),
        "n_gold_cited": cited_gold,
        "citation_recall": cited_gold / len(gold_set) if gold_set else None,
    }


# --- aggregation -------------------------------------------------------------------------------------


def mean(values: Iterable[float | None]) -> float | None:
    """Mean of the values that are not ``None``; ``None`` when there are none."""
    present = [float(v) for v in values if v is not None]
    return sum(present) / len(present) if present else None


def ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


def percentile(values: Iterable[float], q: float) -> float | None:
    """numpy's linear-interpolated percentile, ``None`` for no values."""
    data = [float(v) for v in values]
    return float(np.percentile(data, q)) if data else None


def latency_summary(timings: Iterable[dict[str, float]]) -> dict[str, dict[str, float | None]]:
    """p50/p95/mean seconds per stage across questions (stages missing from a question are skipped)."""
    per_stage: dict[str, list[float]] = {}
    for timing in timings:
        for stage, seconds in (timing or {}).items():
            per_stage.setdefault(stage, []).append(float(seconds))
    return {
        stage: {"p50": percentile(v, 50), "p95": percentile(v, 95), "mean": mean(v), "n": len(v)}
        for stage, v in per_stage.items()
    }
