"""The answering surface every front end uses, shared by the local and the remote assistant.

:class:`~rag.assistant.Assistant` answers in this process; :class:`~rag.remote.RemoteAssistant` asks the
answer service over HTTP. Both are an :class:`Answerer`: ``stream`` (status and token events, then one
final ``answer`` event), ``ask`` (that final answer) and ``index_status``. The web chat, the Slack bot and
the API server are written against this surface, so either one can stand behind them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence

from rag.types import Answer, IndexStatus, StreamEvent


def final_answer(events: Iterable[StreamEvent]) -> Answer:
    """The ``Answer`` of the last ``answer`` event (a stream always ends with one)."""
    answer = None
    for item in events:
        if item.kind == "answer":
            answer = item.answer
    assert answer is not None
    return answer


class Answerer(ABC):
    """``ask`` / ``stream`` / ``index_status``: what a front end needs from whoever answers."""

    def ask(
        self,
        question: str,
        history: Sequence[dict] | None = None,
        event: str | None = None,
        year: int | None = None,
    ) -> Answer:
        """Answer ``question`` (with optional chat ``history`` and ``event``/``year`` restrictions)."""
        return final_answer(self.stream(question, history, event, year))

    @abstractmethod
    def stream(
        self,
        question: str,
        history: Sequence[dict] | None = None,
        event: str | None = None,
        year: int | None = None,
    ) -> Iterator[StreamEvent]:
        """``status`` events, ``token`` events as the model writes, then the final verified ``answer``."""

    @abstractmethod
    def index_status(self) -> IndexStatus:
        """Posts, chunks, events and years in the index, the backend and the store."""
