"""The MCP server: ``search_recaps`` (passages with citation data) and ``ask_recaps`` (a verified answer).

One :class:`~mcp.server.mcpserver.MCPServer` definition serves both transports: stdio
(``python app.py mcp``) and streamable HTTP at ``/mcp`` on the API server (behind its API keys).
Results are structured output (a JSON schema per tool), so an agent can check every quote.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path, PurePath

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel, Field

from apiserver.guard import public_message
from rag.errors import KQAError
from rag.settings import Settings
from rag.surface import SearchingAssistant

log = logging.getLogger("kqa.mcp")

MAX_PASSAGES = 20


class Passage(BaseModel):
    """One retrieved passage of a post, with what a citation needs."""

    source_id: str = Field(description="The post's id (stable across ingests).")
    title: str
    event: str
    year: int | None = None
    url: str = Field(description="The post's URL (or its file name when it has none).")
    section: str = Field(description="The heading path of the passage inside the post.")
    text: str = Field(description="The passage, verbatim.")
    start: int = Field(description="Character offset of the passage in the post's text.")
    end: int
    score: float = Field(description="Fused retrieval score (higher is better).")
    similarity: float = Field(description="Cosine similarity of the passage to the query.")


class SearchResult(BaseModel):
    query: str
    passages: list[Passage]


class CitationOut(BaseModel):
    """``[number]`` in the answer: the post and the exact quote that states the cited sentence."""

    number: int
    source_id: str
    title: str
    event: str
    url: str
    quote: str
    start: int = Field(description="Character offset of the quote in the post's text.")
    end: int


class AskResult(BaseModel):
    answer: str = Field(description="The verified answer; [n] markers point at citations.")
    citations: list[CitationOut]
    abstained: bool = Field(description="True when the recaps hold no answer (the text then says so).")


def reader_location(location: str, root: Path | None) -> str:
    """A post's URL, or its path under ``root`` / file name: never the server's absolute path."""
    if not location or location.startswith(("http://", "https://")):
        return location
    path = PurePath(location)
    return str(path.relative_to(root)) if root is not None and path.is_relative_to(root) else path.name


def citations_of(answer) -> list[CitationOut]:
    """An :class:`~rag.types.Answer`'s citations (already ``for_readers``) in the API's shape."""
    return [
        CitationOut(number=c.n, source_id=c.source_id, title=c.title, event=c.event, url=c.url_or_path,
                    quote=c.quote, start=c.start, end=c.end)
        for c in answer.citations
    ]  # fmt: skip


def build_mcp(get_assistant: Callable[[], SearchingAssistant], settings: Settings) -> MCPServer:
    """The MCP server over ``get_assistant()`` (called on each tool call: the process's one Assistant)."""
    root = settings.data_dir.resolve()
    secrets = [settings.openai_api_key.get_secret_value()]
    server = MCPServer(
        "kubecon-qa",
        instructions="Search KubeCon + CloudNativeCon recap posts and get answers whose every claim cites a "
        "verbatim quote. Use search_recaps for passages, ask_recaps for a verified answer.",
    )

    def fail(exc: KQAError):
        return ToolError(public_message(str(exc), secrets))

    @server.tool()
    def search_recaps(query: str, event: str | None = None, year: int | None = None, k: int = 5) -> SearchResult:
        """Passages of KubeCon recap posts that best match `query` (hybrid dense + keyword search), optionally
        only from one `event` ("KubeCon EU 2022", "Detroit") or `year`; at most `k` (1-20) passages."""
        if isinstance(k, bool) or not 1 <= k <= MAX_PASSAGES:
            raise ToolError(f"k must be between 1 and {MAX_PASSAGES}, not {k!r}.")
        try:
            result = get_assistant().retrieve(query, event=event, year=year)
        except KQAError as exc:
            raise fail(exc) from None
        passages = [
            Passage(
                source_id=s.chunk.doc_id, title=s.chunk.title or s.chunk.doc_id, event=s.chunk.event,
                year=s.chunk.year, url=reader_location(s.chunk.url_or_path, root), section=s.chunk.section,
                text=s.chunk.text, start=s.chunk.start, end=s.chunk.end, score=round(s.score, 6),
                similarity=round(s.dense_similarity, 4),
            )
            for s in result.chunks[:k]
        ]  # fmt: skip
        return SearchResult(query=query, passages=passages)

    @server.tool()
    def ask_recaps(question: str, event: str | None = None, year: int | None = None) -> AskResult:
        """A grounded answer to `question` from the KubeCon recaps: every sentence is checked against a post and
        cited with [n]; `abstained` is true when the recaps do not hold the answer."""
        try:
            answer = get_assistant().ask(question, event=event, year=year).for_readers(root)
        except KQAError as exc:
            raise fail(exc) from None
        return AskResult(answer=answer.text, citations=citations_of(answer), abstained=answer.abstained)

    return server
