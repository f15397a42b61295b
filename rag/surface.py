"""What the front ends type their assistant as.

:class:`AssistantSurface` is :class:`rag.answerer.Answerer` (``ask`` / ``stream`` / ``index_status``),
which both :class:`rag.assistant.Assistant` (in process) and :class:`rag.remote.RemoteAssistant` (the
answer service over HTTP) extend: the surface is declared once, there. :class:`SearchingAssistant` adds
what only the local assistant has, retrieval without answering (the MCP ``search_recaps`` tool); it is
structural, so a front end can name it without loading the retrieval stack.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from rag.answerer import Answerer

if TYPE_CHECKING:
    from rag.retrieval import RetrievalResult

AssistantSurface = Answerer


@runtime_checkable
class SearchingAssistant(Protocol):
    """An :class:`~rag.answerer.Answerer` that also retrieves without answering: the local one."""

    def ask(self, question: str, history: Sequence[dict] | None = None, event: str | None = None,
            year: int | None = None): ...  # fmt: skip

    def stream(self, question: str, history: Sequence[dict] | None = None, event: str | None = None,
               year: int | None = None): ...  # fmt: skip

    def index_status(self): ...

    def retrieve(
        self,
        question: str,
        history: Sequence[dict] | None = None,
        event: str | None = None,
        year: int | None = None,
        *,
        mode: str = "hybrid",
    ) -> RetrievalResult: ...
