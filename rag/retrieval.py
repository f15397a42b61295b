"""Hybrid retrieval over the recap chunks: dense (Chroma) + lexical (BM25), fused, event-aware, diverse.

* Dense: the question is embedded with the shared sentence-transformers model and Chroma returns the
  nearest chunks. Paraphrases ("service mesh" ~ "Istio sidecars") land here.
* Lexical: BM25 (``bm25s``) over the same chunks, with the title and section in front of the text.
  Names, acronyms and versions ("Cilium", "SBOM", "Mercedes-Benz") land here; MiniLM blurs them.
* Fusion: weighted reciprocal rank fusion (:func:`weighted_reciprocal_rank`, ``sum weight / (rrf_k +
  rank)``), which needs no score calibration between the two; then at most ``max_chunks_per_post``
  chunks per post (:func:`cap_per_post`), so one long post cannot fill the context and the answer can
  draw on several posts.
* Named posts: a question that names posts by their author, blog or title ("Bedrock's notes", "the
  CINQ non-techie's recap") is answered from those posts only, which may then fill the ``top_k`` slots
  between them (:meth:`IndexSnapshot.posts_named_by`).
* Events: mentions found by :mod:`rag.question` restrict both retrievers to the posts of that event (the
  chunk metadata ingest stored: year, city, region, event). A named event no post covers is reported in
  ``RetrievalResult.uncovered`` instead of silently falling back to other events. A restricted dense
  search is exact, over the snapshot's vectors of the allowed chunks: a Chroma ``where`` filter on
  hundreds of post ids costs more than the search itself once the index is large (100x corpus).

The in-memory snapshot of the collection (chunks, vectors, BM25) and its refresh live in
:mod:`rag.index`; its names are re-exported here for older callers.
"""

from __future__ import annotations

import itertools
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from functools import partial

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
    "DENSE_FUSION_WEIGHT",
    "LEXICAL_FUSION_WEIGHT",
    "MODES",
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
    "cap_per_post",
    "weighted_reciprocal_rank",
]

MODES = ("hybrid", "dense", "lexical")
DENSE_FUSION_WEIGHT = 1.0  # weight of the dense ranking in reciprocal rank fusion
LEXICAL_FUSION_WEIGHT = 1.0  # weight of the BM25 ranking (not rag.evidence.LEXICAL_WEIGHT, a sentence score)


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
    # the question in the language of retrieved posts written in another one (rag.crosslingual)
    post_language_queries: tuple = ()

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
        posts: set[str] | None = None,
    ) -> RetrievalResult:
        """The top chunks for ``question`` within ``events`` (``mode``: hybrid, dense or lexical).

        ``topic`` is the question without its event words: BM25 searches for it (inside the event's
        posts, "EU" and "2019" are noise), while the dense side embeds the whole question, whose
        similarity is also what the relevance threshold reads. ``snapshot``: one the caller has just
        taken from :meth:`snapshot` (saves checking the collection twice per question). ``posts``: search
        only these posts (no post naming then).
        """
        if mode not in MODES:
            raise ValueError(f"mode must be 'hybrid', 'dense' or 'lexical', not {mode!r}")
        timings: dict[str, float] = {}
        started = time.perf_counter()
        snapshot = snapshot if snapshot is not None else self.snapshot()
        timings["snapshot"] = time.perf_counter() - started
        self._require_chunks(snapshot)
        events = events or EventQuery()
        restriction, uncovered = self.resolve_events(events, snapshot)
        if query_embedding is None:
            query_embedding = _timed(timings, "embed", self.embed_query, question)
        empty = RetrievalResult(
            question, restriction, uncovered, [], [], query_embedding, 0.0, timings, snapshot
        )
        allowed = _allowed_posts(events, restriction, snapshot)
        if allowed is not None and not allowed:
            return empty  # every named event is uncovered, or no post matches: don't answer from others
        if posts is not None:
            allowed = set(posts) if allowed is None else allowed & set(posts)
        named = _named_posts(topic or question, allowed, snapshot) if posts is None else set()
        per_post = self.settings.max_chunks_per_post
        if named:  # the posts a question names may fill the slots between them
            allowed, per_post = named, max(per_post, -(-self.settings.top_k // len(named)))
        mask = (
            snapshot.chunk_mask(allowed)
            if allowed is not None and len(allowed) < len(snapshot.posts)
            else None
        )
        fetch_k = min(self.settings.fetch_k, len(snapshot.chunks))
        ranked = partial(self._ranked, mode, snapshot, query_embedding, topic or question, fetch_k, timings)
        candidates = ranked(mask)
        top = cap_per_post(candidates, per_post, self.settings.top_k)
        groups = [g & allowed if allowed is not None else g for g in _posts_per_event(restriction, snapshot)]
        groups = [g for g in groups if g]  # the named posts of each event
        if len(groups) >= 2:  # "from Valencia 2022 to Amsterdam 2023": each event gets its share of the slots
            per_event = [ranked(snapshot.chunk_mask(posts)) for posts in groups]
            top = share_slots(per_event, top, per_post, self.settings.top_k)
        best_similarity = max((c.dense_similarity for c in candidates), default=0.0)
        timings["retrieve"] = time.perf_counter() - started
        return replace(empty, chunks=top, candidates=candidates, best_similarity=best_similarity)

    def _ranked(self, mode, snapshot, query_embedding, text, fetch_k, timings, mask) -> list[ScoredChunk]:
        """Dense and BM25 rankings within ``mask``, fused, best first."""
        dense = _timed(timings, "dense", self._dense_ranking, mode, snapshot, query_embedding, fetch_k, mask)
        lexical = _timed(timings, "lexical", self._lexical_ranking, mode, snapshot, text, fetch_k, mask)
        fused = weighted_reciprocal_rank(
            [dense, lexical], [DENSE_FUSION_WEIGHT, LEXICAL_FUSION_WEIGHT], self.settings.rrf_k
        )
        return _scored(snapshot, fused, dense, lexical, query_embedding)

    def _require_chunks(self, snapshot: IndexSnapshot) -> None:
        if not snapshot.chunks:
            raise EmptyIndexError(
                f"The index at {self.settings.describe_store()} is empty. Run the ingest job first: python -m ingest"
            )

    def _dense_ranking(
        self, mode: str, snapshot: IndexSnapshot, query: np.ndarray, k: int, mask
    ) -> list[int]:
        """The dense ranking, or none in lexical mode."""
        if mode not in ("hybrid", "dense"):
            return []
        return self._dense(self.index.collection, snapshot, query, k, mask)

    def _lexical_ranking(self, mode: str, snapshot: IndexSnapshot, text: str, k: int, mask) -> list[int]:
        """The BM25 ranking, or none in dense mode."""
        if mode not in ("hybrid", "lexical"):
            return []
        return self._lexical(snapshot, text, k, mask)

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


def _timed(timings: dict[str, float], name: str, step, *args):
    """``step(*args)``, its wall time added to ``timings[name]`` (a two-event question ranks three times)."""
    t = time.perf_counter()
    try:
        return step(*args)
    finally:
        timings[name] = timings.get(name, 0.0) + time.perf_counter() - t


def _named_posts(text: str, allowed: set[str] | None, snapshot: IndexSnapshot) -> set[str]:
    """The allowed posts the question names ("according to Bedrock's notes", "the CINQ non-techie's
    recap"): the answer is to come from them, not from whatever other post matches best. Empty when it
    names none, or only posts outside ``allowed`` (a 2024 post named in a question about 2019)."""
    named = snapshot.posts_named_by(text)
    return named & allowed if allowed is not None else named


def _allowed_posts(events: EventQuery, restriction: EventQuery, snapshot: IndexSnapshot) -> set[str] | None:
    """The posts retrieval may use: ``None`` for all, an empty set when the named events cover none."""
    if not events.is_empty and restriction.is_empty:
        return set()  # every named event is uncovered
    return snapshot.posts_matching(restriction) if not restriction.is_empty else None


def _posts_per_event(restriction: EventQuery, snapshot: IndexSnapshot) -> list[set[str]]:
    """The posts of each named event, when the question names several that different posts cover."""
    groups: list[set[str]] = []
    for mention in restriction.mentions:
        posts = snapshot.posts_matching(EventQuery((mention,)))
        if posts and posts not in groups:
            groups.append(posts)
    return groups if len(groups) >= 2 and not set.intersection(*groups) else []


def share_slots(
    per_event: Sequence[Sequence[ScoredChunk]], fallback: Sequence[ScoredChunk], max_per_post: int, limit: int
) -> list[ScoredChunk]:
    """``limit`` chunks taken in turn from each event's own ranking, then from ``fallback`` (the joint one).

    A question comparing two events ranked over both at once lets one event's posts fill every slot:
    "How did the number of parallel tracks change from Valencia 2022 to Amsterdam 2023?" retrieved six
    Valencia chunks and none of the Amsterdam post that counts its 20 tracks.
    """
    queues = [cap_per_post(ranking, max_per_post, limit) for ranking in per_event]
    in_turn = [c for group in itertools.zip_longest(*queues) for c in group if c is not None]
    first: dict[str, ScoredChunk] = {}
    for item in [*in_turn, *fallback]:
        first.setdefault(item.chunk.chunk_id, item)
    return cap_per_post(list(first.values()), max_per_post, limit)


def weighted_reciprocal_rank(
    rankings: Sequence[Sequence[int]], weights: Sequence[float], c: int
) -> list[tuple[int, float]]:
    """Weighted reciprocal rank fusion of ranked lists, as LangChain's ``EnsembleRetriever.weighted_reciprocal_rank``.

    An item's score is ``sum(weight / (c + rank))`` over the lists it appears in (ranks from 1), so
    scores from different retrievers need no calibration. Returned best first; ties keep the order
    of first appearance (the first list's order, then items only in later lists), as LangChain's does.
    """
    scores: dict[int, float] = defaultdict(float)
    for ranking, weight in zip(rankings, weights, strict=True):
        for rank, item in enumerate(ranking, start=1):
            scores[item] += weight / (c + rank)
    return sorted(scores.items(), key=lambda pair: -pair[1])  # a stable sort: ties keep first appearance


def _scored(
    snapshot: IndexSnapshot,
    fused: list[tuple[int, float]],
    dense: list[int],
    lexical: list[int],
    query: np.ndarray,
) -> list[ScoredChunk]:
    """The fused chunks, best first, with their dense similarity and their rank in each list."""
    dense_rank = {index: rank for rank, index in enumerate(dense, start=1)}
    lexical_rank = {index: rank for rank, index in enumerate(lexical, start=1)}
    order = [index for index, _ in fused]
    similarities = snapshot.embeddings[order] @ query if order else np.zeros(0)
    return [
        ScoredChunk(snapshot.chunks[i], score, float(sim), dense_rank.get(i), lexical_rank.get(i))
        for (i, score), sim in zip(fused, similarities, strict=True)
    ]


def cap_per_post(candidates: Iterable[ScoredChunk], max_per_post: int, limit: int) -> list[ScoredChunk]:
    """The first ``limit`` candidates, skipping any beyond ``max_per_post`` from one post (diversity)."""
    per_post: dict[str, int] = defaultdict(int)
    top: list[ScoredChunk] = []
    for item in candidates:
        if per_post[item.chunk.doc_id] >= max_per_post:
            continue
        per_post[item.chunk.doc_id] += 1
        top.append(item)
        if len(top) >= limit:
            break
    return top


def _top_k(indexes: np.ndarray, scores: np.ndarray, k: int) -> list[int]:
    """``indexes`` by descending score, at most ``k``; ties keep index order (as a stable full sort)."""
    if len(indexes) > k > 0:
        threshold = np.partition(scores, len(scores) - k)[len(scores) - k]  # the k-th best score
        keep = scores >= threshold  # every tie at the threshold, so the stable sort below decides
        indexes, scores = indexes[keep], scores[keep]
    best = indexes[np.argsort(-scores, kind="stable")[:k]]
    return [int(i) for i in best]
