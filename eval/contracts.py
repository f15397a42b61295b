"""Eval's plug-in contract: what a system under evaluation returns, before scoring.

Every system (ours, the LangChain baseline) is reduced to a :class:`SystemOutput` per question, so both
are scored by exactly the same code (:mod:`eval.scoring`). A system is anything with a ``name`` and
``answer``/``retrieve`` methods taking the question (:class:`System`). The gold question it is scored
against is :class:`eval.gold.GoldItem`, re-exported here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from eval.gold import UNANSWERABLE, GoldItem

RANK_DEPTH = 10  # posts needed for recall@10 / MRR@10

__all__ = ["RANK_DEPTH", "UNANSWERABLE", "CitedEvidence", "GoldItem", "System", "SystemOutput"]


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


class System(Protocol):
    """A system under evaluation: answers a question in full, or only ranks posts for it."""

    name: str

    def answer(self, question: str) -> SystemOutput: ...

    def retrieve(self, question: str) -> SystemOutput: ...
