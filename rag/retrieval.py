"""Hybrid retrieval over the recap chunks: dense (Chroma) + lexical (BM25), fused, event-aware, diverse.

* Dense: the question is embedded with the shared sentence-transformers model and Chroma returns the
  nearest chunks. Paraphrases ("service mesh" ~ "Istio sidecars") land here.
* Lexical: BM25 (``bm25s``) over the same chunks, with the title and section in front of the text.
  Names, acronyms and versions ("Cilium", "SBOM", "Mercedes-Benz") land here; MiniLM blurs them.
* Fusion: reciprocal rank fusion (``sum 1 / (rrf_k + rank)``), which needs no score calibration
  between the two; then at most ``max_chunks_per_post`` chunks per post, so one long post cannot fill
  the context and the answer can draw on several posts.
* Events: mentions found by :mod:`rag.question` restrict both retrievers to the posts of that event (the
  chunk metadata ingest stored: year, city, region, event). A named event no post covers is reported in
  ``RetrievalResult.uncovered`` instead of silently falling back to other events. A restricted dense
  search is exact, over the snapshot's vectors of the allowed chunks: a Chroma ``where`` filter on
  hundreds of post ids costs more than the search itself once the index is large (100x corpus).

The in-memory snapshot of the collection (chunks, vectors, BM25) and its refresh live in
:mod:`rag.index`; its names are re-exported here for older callers.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from rag.components.store import get_embedder_for
from rag.errors import EmptyIndexError
from rag.index import (  # re-exported (see __all__): these lived here before rag.index
    POST_TEXTS_KEPT,
    SNAPSHOT_REFRESH_WAIT_S,
    IndexManager,
    IndexSnapshot,
    PostHeading,
    PostInfo,
    PostText,
    store_errors,
)
from rag.question import EventMention, EventQuery, soften_relative_years
from rag.settings import Settings
from rag.text import content_terms
from rag.types import Chunk, Source

__all__ = [
    "DENSE_WEIGHT",
    "LEXICAL_WEIGHT",
    "POST_TEXTS_KEPT",
    "SNAPSHOT_REFRESH_WAIT_S",
    "HybridRetriever",
    "IndexManager",
    "IndexSnapshot",
    "PostHeading",
    "PostInfo",
    "PostText",
    "RetrievalResult",
    "ScoredChunk",
]

DENSE_WEIGHT = 1.0
LEXICAL_WEIGHT = 1.0


@dataclass(frozen=True)
class ScoredChunk:
    chunk: Chunk
    score: float  # fused RRF score (higher is better)
    dense_similarity: float  # cosine similarity of the chunk to the question
    dense_rank: int | None = None  # 1-based rank among dense results (None: not in the dense top fetch_k)
    lexical_rank: int | None = None


@dataclass
class RetrievalResult:
    question: str
    events: EventQuery  # the event restriction applied (covered mentions only)
    uncovered: tuple[EventMention, ...]  # named events that no post in the index covers
    chunks: list[ScoredChunk]  # the top_k chunks after fusion and per-post diversity
    candidates: list[ScoredChunk]  # every fused candidate, best first (for sources)
    query_embedding: np.ndarray
    best_similarity: float  # best dense cosine similarity of any allowed chunk
    timings: dict[str, float] = field(default_factory=dict)
    snapshot: IndexSnapshot | None = field(default=None, repr=False)  # the index version it read

    def sources(self, limit: int = 10) -> list[Source]:
        """Retrieved posts, best first, each with its best chunk (cited flags are set by the assistant)."""
        best: dict[str, ScoredChunk] = {}
        similarity: dict[str, float] = defaultdict(float)
        for item in self.candidates:
            doc = item.chunk.doc_id
            similarity[doc] = max(similarity[doc], item.dense_similarity)
            if doc not in best or item.score > best[doc].score:
                best[doc] = item
        ranked = sorted(best.values(), key=lambda s: s.score, reverse=True)[:limit]
        return [
            Source(
                source_id=s.chunk.doc_id,
                title=s.chunk.title or s.chunk.doc_id,
                event=s.chunk.event,
                url_or_path=s.chunk.url_or_path,
                score=round(s.score, 6),
                dense_similarity=round(similarity[s.chunk.doc_id], 4),
                snippet=s.chunk.text,
                year=s.chunk.year,
                date=s.chunk.date,
            )
            for s in ranked
        ]


class HybridRetriever:
    """Dense + BM25 retrieval over the configured Chroma collection (one per process is enough)."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.index = IndexManager(settings)

    def snapshot(self) -> IndexSnapshot:
        """The index snapshot to answer from now (see :meth:`IndexManager.snapshot`)."""
        return self.index.snapshot()

    # --- retrieval --------------------------------------------------------------------------------
    def embed_query(self, text: str) -> np.ndarray:
        return get_embedder_for(self.settings).embed_query(text)

    def resolve_events(
        self, events: EventQuery, snapshot: IndexSnapshot
    ) -> tuple[EventQuery, tuple[EventMention, ...]]:
        """Split mentions into covered (kept as the restriction) and uncovered (reported)."""
        events = soften_relative_years(events, snapshot.mention_is_covered)
        covered = tuple(m for m in events.mentions if snapshot.mention_is_covered(m))
        uncovered = tuple(m for m in events.mentions if m not in covered)
        return EventQuery(covered), uncovered

    def retrieve(
        self,
        question: str,
        events: EventQuery | None = None,
        *,
        mode: str = "hybrid",
        topic: str | None = None,
        query_embedding: np.ndarray | None = None,
        snapshot: IndexSnapshot | None = None,
    ) -> RetrievalResult:
        """The top chunks for ``question`` within ``events`` (``mode``: hybrid, dense or lexical).

        ``topic`` is the question without its event words: BM25 searches for it (inside the event's
        posts, "EU" and "2019" are noise), while the dense side embeds the whole question, whose
        similarity is also what the relevance threshold reads. ``snapshot``: one the caller has just
        taken from :meth:`snapshot` (saves checking the collection twice per question).
        """
        if mode not in ("hybrid", "dense", "lexical"):
            raise ValueError(f"mode must be 'hybrid', 'dense' or 'lexical', not {mode!r}")
        timings: dict[str, float] = {}
        started = time.perf_counter()
        snapshot = snapshot if snapshot is not None else self.snapshot()
        timings["snapshot"] = time.perf_counter() - started
        if not snapshot.chunks:
            raise EmptyIndexError(
                f"The index at {self.settings.describe_store()} is empty. Run the ingest job first: python -m ingest"
            )
        events = events or EventQuery()
        restriction, uncovered = self.resolve_events(events, snapshot)
        if query_embedding is None:
            t = time.perf_counter()
            query_embedding = self.embed_query(question)
            timings["embed"] = time.perf_counter() - t
        empty = RetrievalResult(
            question, restriction, uncovered, [], [], query_embedding, 0.0, timings, snapshot
        )
        if not events.is_empty and restriction.is_empty:
            return empty  # every named event is uncovered: don't answer from other events
        allowed = snapshot.posts_matching(restriction) if not restriction.is_empty else None
        if allowed is not None and not allowed:
            return empty

        restricted = allowed is not None and len(allowed) < len(snapshot.posts)
        mask = snapshot.chunk_mask(allowed) if restricted else None
        fetch_k = min(self.settings.fetch_k, len(snapshot.chunks))
        dense_ranked: list[int] = []
        lexical_ranked: list[int] = []
        t = time.perf_counter()
        if mode in ("hybrid", "dense"):
            dense_ranked = self._dense(self.index.collection, snapshot, query_embedding, fetch_k, mask)
        timings["dense"] = time.perf_counter() - t
        t = time.perf_counter()
        if mode in ("hybrid", "lexical"):
            lexical_ranked = self._lexical(snapshot, topic or question, fetch_k, mask)
        timings["lexical"] = time.perf_counter() - t

        fused: dict[int, float] = defaultdict(float)
        for ranking, weight in ((dense_ranked, DENSE_WEIGHT), (lexical_ranked, LEXICAL_WEIGHT)):
            for rank, index in enumerate(ranking, start=1):
                fused[index] += weight / (self.settings.rrf_k + rank)
        dense_rank = {index: rank for rank, index in enumerate(dense_ranked, start=1)}
        lexical_rank = {index: rank for rank, index in enumerate(lexical_ranked, start=1)}
        order = sorted(fused, key=lambda i: (-fused[i], dense_rank.get(i, 10**9)))
        similarities = snapshot.embeddings[order] @ query_embedding if order else np.zeros(0)
        candidates = [
            ScoredChunk(snapshot.chunks[i], fused[i], float(sim), dense_rank.get(i), lexical_rank.get(i))
            for i, sim in zip(order, similarities, strict=True)
        ]
        per_post: dict[str, int] = defaultdict(int)
        top: list[ScoredChunk] = []
        for item in candidates:
            if per_post[item.chunk.doc_id] >= self.settings.max_chunks_per_post:
                continue
            per_post[item.chunk.doc_id] += 1
            top.append(item)
            if len(top) >= self.settings.top_k:
                break
        best_similarity = max((c.dense_similarity for c in candidates), default=0.0)
        timings["retrieve"] = time.perf_counter() - started
        return RetrievalResult(
            question,
            restriction,
            uncovered,
            top,
            candidates,
            query_embedding,
            best_similarity,
            timings,
            snapshot,
        )

    def _dense(
        self, collection, snapshot: IndexSnapshot, query: np.ndarray, k: int, mask: np.ndarray | None
    ) -> list[int]:
        """Snapshot positions of the ``k`` chunks nearest ``query``: exact over ``mask``'s chunks in
        memory, else Chroma's search of ``collection`` (the collection ``snapshot`` is a copy of)."""
        if mask is not None:  # restricted to some posts: exact cosine over their vectors, in memory
            allowed = np.flatnonzero(mask)
            return _top_k(allowed, snapshot.embeddings[allowed] @ query, k)
        with store_errors(self.settings, "Dense search failed"):
            result = collection.query(query_embeddings=[query.tolist()], n_results=k, include=["distances"])
        return [snapshot.position[i] for i in result["ids"][0] if i in snapshot.position]

    def _lexical(self, snapshot: IndexSnapshot, question: str, k: int, mask: np.ndarray | None) -> list[int]:
        if snapshot.bm25 is None:
            return []
        terms = [t for t in content_terms(question) if t in snapshot.bm25.vocab_dict]
        if not terms:
            return []
        scores = snapshot.bm25.get_scores(terms)
        if mask is not None:
            scores = np.where(mask, scores, 0.0)
        candidates = np.flatnonzero(scores > 0)
        return _top_k(candidates, scores[candidates], k)


def _top_k(indexes: np.ndarray, scores: np.ndarray, k: int) -> list[int]:
    """``indexes`` by descending score, at most ``k``; ties keep index order (as a stable full sort)."""
    if len(indexes) > k > 0:
        threshold = np.partition(scores, len(scores) - k)[len(scores) - k]  # the k-th best score
        keep = scores >= threshold  # every tie at the threshold, so the stable sort below decides
        indexes, scores = indexes[keep], scores[keep]
    best = indexes[np.argsort(-scores, kind="stable")[:k]]
    return [int(i) for i in best]
