"""The library's public result types. Plain dataclasses: importable without gradio or slack."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path, PurePath
from typing import Literal


@dataclass(frozen=True, slots=True)  # slots: readers hold every chunk in memory (155,000 at 100x)
class Chunk:
    """One stored passage of a post, as ingest wrote it (``start``/``end`` index the post's source text)."""

    chunk_id: str
    doc_id: str
    text: str
    title: str = ""
    event: str = ""
    year: int | None = None
    city: str = ""
    region: str = ""
    date: str = ""
    url: str = ""
    path: str = ""
    section: str = ""
    start: int = 0
    end: int = 0
    author: str = ""

    @property
    def url_or_path(self) -> str:
        return self.url or self.path


@dataclass(frozen=True)
class Source:
    """A retrieved post (everything retrieved, cited or not), with its best chunk and scores."""

    source_id: str
    title: str
    event: str
    url_or_path: str
    score: float  # fused relevance (higher is better)
    dense_similarity: float  # best cosine similarity of any of its chunks to the question
    snippet: str  # the best-matching chunk text
    year: int | None = None
    cited: bool = False
    citation_numbers: tuple[int, ...] = ()
    date: str = ""  # the post's date (front matter), so readers can see how fresh it is


@dataclass(frozen=True)
class Citation:
    """``[n]`` in the answer text maps to this post and the exact quote that supports the sentence."""

    n: int
    source_id: str
    title: str
    event: str
    url_or_path: str
    quote: str  # verbatim text of the post that supports the cited sentence(s)
    start: int  # char offsets of ``quote`` in the post's source text
    end: int
    score: float = 0.0  # support score of the best sentence/quote match


@dataclass
class Answer:
    """What every interface renders: text with ``[n]`` markers, the citations, and what was retrieved."""

    question: str
    text: str
    citations: list[Citation] = field(default_factory=list)
    sources: list[Source] = field(default_factory=list)
    abstained: bool = False
    standalone_question: str = ""  # the follow-up condensed with history (== question without history)
    backend: str = ""  # llamacpp / openai / extractive
    fallback_reason: str = ""  # why the extractive fallback answered instead of the configured LLM
    removed_sentences: list[str] = field(default_factory=list)  # unsupported sentences dropped
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage
    prompt_tokens: int = 0

    def to_dict(self) -> dict:
        """JSON-ready form (the HTTP API's ``/v1/ask`` body); :meth:`from_dict` reads it back."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Answer:
        """The inverse of :meth:`to_dict`, for clients of the answer service. Unknown keys are ignored
        so an older client can read a newer server's answers."""
        known = {f for f in cls.__dataclass_fields__}
        values = {k: v for k, v in data.items() if k in known}
        values["citations"] = [_load(Citation, c) for c in data.get("citations") or []]
        values["sources"] = [_load(Source, s) for s in data.get("sources") or []]
        values["removed_sentences"] = list(data.get("removed_sentences") or [])
        values["timings"] = dict(data.get("timings") or {})
        return cls(**values)

    def for_readers(self, root: Path | None = None) -> Answer:
        """A copy to show people other than the server's operator: a post without a URL is located by
        its path under ``root`` (the ingested folder), else its file name, never the server's absolute path."""

        def shown(location: str) -> str:
            if not location or location.startswith(("http://", "https://")):
                return location
            path = PurePath(location)
            if root is not None and path.is_relative_to(root):
                return str(path.relative_to(root))
            return path.name

        return replace(
            self,
            citations=[replace(c, url_or_path=shown(c.url_or_path)) for c in self.citations],
            sources=[replace(s, url_or_path=shown(s.url_or_path)) for s in self.sources],
        )


@dataclass(frozen=True)
class StreamEvent:
    """Items yielded by ``Assistant.stream``: ``token`` events while generating, then one ``answer``.

    ``status`` events carry progress text ("Searching the recaps…") that front ends may show.
    """

    kind: Literal["status", "token", "answer"]
    text: str = ""
    answer: Answer | None = None

    def to_dict(self) -> dict:
        """JSON-ready form (one server-sent event of the answer service's stream)."""
        return {"kind": self.kind, "text": self.text, "answer": self.answer.to_dict() if self.answer else None}

    @classmethod
    def from_dict(cls, data: dict) -> StreamEvent:
        answer = data.get("answer")
        return cls(kind=data["kind"], text=data.get("text", ""), answer=Answer.from_dict(answer) if answer else None)


def _load(cls, data: dict):
    """A frozen dataclass from its ``asdict`` form: unknown keys dropped, JSON lists back to tuples."""
    known = cls.__dataclass_fields__
    values = {k: v for k, v in data.items() if k in known}
    if "citation_numbers" in values:
        values["citation_numbers"] = tuple(values["citation_numbers"])
    return cls(**values)


@dataclass(frozen=True)
class IndexStatus:
    """What is indexed, and where answers come from (for status pages and ``/kqa status``)."""

    posts: int
    chunks: int
    events: list[str] = field(default_factory=list)
    years: list[int] = field(default_factory=list)
    backend: str = ""
    store: str = ""
    updated_at: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)
