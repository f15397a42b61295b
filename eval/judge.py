"""Optional LLM-judge mode (``--judge``): the configured chat model says whether an answer matches the gold.

A secondary signal only: a small local model is a noisy judge, so the deterministic metrics stay the
headline. Unanswerable items are judged without the LLM (correct means the system abstained).
"""

from __future__ import annotations

import re

from langchain_core.messages import HumanMessage

from rag.errors import KQAError
from rag.settings import Settings

JUDGE_PROMPT = """You grade answers to questions about KubeCon conference recaps.
Question: {question}
Reference answer: {reference}
Candidate answer: {candidate}
Does the candidate answer state the same essential facts as the reference answer, without contradicting it?
Reply with one word: YES or NO."""

_VERDICT_RE = re.compile(r"\b(yes|no)\b", re.IGNORECASE)


def parse_verdict(text: str) -> bool | None:
    """The first YES/NO in the judge's reply; ``None`` when it gave neither."""
    match = _VERDICT_RE.search(text or "")
    return None if match is None else match.group(1).lower() == "yes"


class Judge:
    """Asks a chat model (by default the configured one) whether each answer matches its gold answer."""

    def __init__(self, settings: Settings, chat=None):
        if chat is None:
            if settings.llm_backend == "extractive":
                raise KQAError(
                    "--judge needs an LLM backend (KQA_LLM_BACKEND=llamacpp or openai), not 'extractive'"
                )
            from rag.components.llm import get_chat_model

            chat = get_chat_model(settings)
        self.chat = chat

    def correct(self, item, record: dict) -> bool | None:
        if not item.answerable:
            return bool(record.get("abstained"))
        if record.get("abstained") or not record.get("answer"):
            return False
        prompt = JUDGE_PROMPT.format(
            question=item.question, reference=item.answer, candidate=record["answer"]
        )
        reply = self.chat.invoke([HumanMessage(content=prompt)])
        return parse_verdict(str(getattr(reply, "content", reply)))
