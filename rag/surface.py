"""The assistant surface the front ends program against, satisfied by both :class:`rag.assistant.Assistant`
(in process) and :class:`rag.remote.RemoteAssistant` (the answer service over HTTP).

Structural types only (no import of either class at run time), so a front end can type its assistant
without loading the retrieval stack, and a test can pass any object with these methods.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from rag.types import Answer, StreamEvent

if TYPE_CHECKING:
    from rag.retrieval import RetrievalResult


@runtime_checkable
class AssistantSurface(Protocol):
    """Ask, stream and describe the index: what the web chat, the Slack bot and the HTTP API use."""

    def ask(
        self,
        question: str,
        history: Sequence[dict] | None = None,
        event: str | None = None,
        year: int | None = None,
    ) -> Answer: ...

    def stream(
        self,
        question: str,
        history: Sequence[dict] | None = None,
        event: str | None = None,
        year: int | None = None,
    ) -> Iterator[StreamEvent]: ...

    def index_status(self) -> Any: ...  # an rag.assistant.IndexStatus


@runtime_checkable
class SearchingAssistant(AssistantSurface, Protocol):
    """An assistant that also retrieves without answering (the MCP ``search_recaps`` tool): the local one."""

    def retrieve(
        self,
        question: str,
        history: Sequence[dict] | None = None,
        event: str | None = None,
        year: int | None = None,
        *,
        mode: str = "hybrid",
    ) -> RetrievalResult: ...
