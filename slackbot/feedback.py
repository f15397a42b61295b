"""👍/👎 feedback: the answers the buttons refer to, logged exactly like the web chat's feedback.

Records come from :func:`rag.feedback.build_record` (question, history, answer, citations, sources,
settings) plus ``interface: "slack"`` and a ``slack`` section, so one reader handles
``settings.feedback_file`` whatever the interface.
"""

from __future__ import annotations

import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from rag.feedback import Rating, append_feedback, build_record
from rag.settings import Settings
from rag.types import Answer

__all__ = ["AnswerMemory", "AnsweredQuestion", "append_feedback", "slack_feedback_record"]


@dataclass
class AnsweredQuestion:
    """What a feedback button points at."""

    answer: Answer
    history: list[dict] = field(default_factory=list)
    channel: str = ""
    thread_ts: str | None = None


class AnswerMemory:
    """Recent answers by id (bounded, thread-safe): a button's value carries only the id."""

    def __init__(self, max_answers: int = 5000) -> None:
        self._answers: OrderedDict[str, AnsweredQuestion] = OrderedDict()
        self._max_answers = max_answers
        self._lock = threading.Lock()

    def remember(self, item: AnsweredQuestion) -> str:
        answer_id = uuid.uuid4().hex
        with self._lock:
            self._answers[answer_id] = item
            while len(self._answers) > self._max_answers:
                self._answers.popitem(last=False)
        return answer_id

    def get(self, answer_id: str) -> AnsweredQuestion | None:
        with self._lock:
            return self._answers.get(answer_id)


def slack_feedback_record(
    *,
    rating: Rating,
    item: AnsweredQuestion | None,
    settings: Settings,
    slack: dict[str, Any],
    message_text: str = "",
) -> dict[str, Any]:
    """One feedback line. ``item`` is None when the answer is no longer remembered (the bot restarted):
    the line then keeps the message text Slack sent back, so the vote is not lost."""
    if item is not None:
        record = build_record(
            rating=rating, comment="", answer=item.answer, history=item.history, filters={}, settings=settings
        )
    else:
        record = build_record(
            rating=rating,
            comment="",
            answer={"text": message_text},
            history=[],
            filters={},
            settings=settings,
        )
        record["note"] = "answer no longer in memory (bot restarted?); 'answer' is the Slack message text"
    record["interface"] = "slack"
    record["slack"] = slack
    return record
