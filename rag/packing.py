"""Evidence packing: the few sentences of the retrieved chunks that bear on the question, in a token budget.

Why sentences, not whole chunks: eight 200-token chunks are 1,600 prompt tokens, which a 0.5B model on
two CPU cores reads for seconds and then half-ignores. Scoring the sentences of the top chunks and
keeping the best ones, with the context a reader needs, gives a prompt of a few hundred tokens.

Each sentence is scored ``cosine(question, sentence) + LEXICAL_WEIGHT * share of the question's terms it
(or its section heading) contains + CHUNK_WEIGHT * its chunk's fused retrieval score relative to the
best``. Seeds are taken best first while they score at least ``RELATIVE_FLOOR`` x the best score (and at
least ``MIN_SEEDS`` of them down to ``LOW_FLOOR`` x, so one sentence that merely restates the question
cannot crowd out the one that answers it). Each seed brings its context: the next sentence (two after
a "?" or ":"), because answers follow the sentence that matches the question, and the previous one when
the seed starts with "It"/"This"/…. Everything must fit in ``settings.context_tokens`` (tiktoken
cl100k), with at most ``MAX_SENTENCES_PER_POST`` per post and ``MAX_POSTS`` posts. Posts are numbered
[1..n] in order of their best sentence; within a post, sentences keep their order, and adjacent ones
merge into one passage.

Sentences that address the reader's AI ("ignore previous instructions", "you are now…") are never
packed: the posts are data, and an instruction inside them has no business reaching the model.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from rag.components.tokens import count_tokens
from rag.prompts import looks_like_instruction, render_post
from rag.retrieval import PostText, ScoredChunk
from rag.settings import Settings
from rag.text import content_terms, flat, plain, split_sentences
from rag.types import Chunk

LEXICAL_WEIGHT = 0.3
CHUNK_WEIGHT = 0.1
RELATIVE_FLOOR = 0.6  # seeds scoring at least this share of the best one are packed…
MIN_SEEDS = 4  # …and at least this many seeds, down to LOW_FLOOR x the best score
LOW_FLOOR = 0.4
FOLLOWING = 1  # sentences packed after each seed (2 after a seed that ends with "?" or ":")
MAX_SENTENCES_PER_POST = 6
MAX_POSTS = 5
MIN_WORDS = 4  # shorter lines (headings, captions) are context, not evidence
MAX_SCORED_SENTENCES = 72  # bounds the sentence-embedding work per question (~0.2 s on 2 cores)
_LEAN_ON_PREVIOUS = ("it ", "its ", "this ", "that ", "these ", "those ", "they ", "he ", "she ", "his ",
                     "her ", "their ", "however", "also", "but ", "so ", "then ", "which ")  # fmt: skip


@dataclass(frozen=True)
class EvidenceSentence:
    """A verbatim sentence of a post: ``chunk.text[local_start:local_end]`` == source[start:end]."""

    chunk: Chunk
    text: str
    start: int  # offsets in the post's source text
    end: int
    score: float = 0.0  # relevance to the question (see module doc)
    similarity: float = 0.0  # cosine(question, sentence)
    embedding: np.ndarray | None = field(default=None, compare=False, repr=False)
    post: PostText | None = field(default=None, compare=False, repr=False)  # to quote across chunks

    @property
    def doc_id(self) -> str:
        return self.chunk.doc_id

    @property
    def key(self) -> tuple[str, int]:
        return (self.chunk.doc_id, self.start)


@dataclass
class PackedPost:
    """One numbered post in the prompt and the sentences of it the model was shown."""

    n: int
    chunk: Chunk  # any chunk of the post (title, event, url)
    sentences: list[EvidenceSentence]  # in post order

    @property
    def doc_id(self) -> str:
        return self.chunk.doc_id

    def passages(self) -> list[list[EvidenceSentence]]:
        """Runs of sentences that are adjacent in the post (only whitespace between them)."""
        runs: list[list[EvidenceSentence]] = []
        for sentence in self.sentences:
            if runs and _adjacent(runs[-1][-1], sentence):
                runs[-1].append(sentence)
            else:
                runs.append([sentence])
        return runs


@dataclass
class Evidence:
    posts: list[PackedPost]
    tokens: int  # tokens of the rendered evidence
    ranked: list[EvidenceSentence]  # every scored sentence, best first (packed or not)

    def post(self, n: int) -> PackedPost | None:
        return next((p for p in self.posts if p.n == n), None)

    @property
    def numbers(self) -> list[int]:
        return [p.n for p in self.posts]

    def render(self) -> str:
        return "\n\n".join(
            render_post(p.n, p.chunk.title, p.chunk.event, _passage_texts(p)) for p in self.posts
        )

    @property
    def is_empty(self) -> bool:
        return not self.posts


def _adjacent(a: EvidenceSentence, b: EvidenceSentence) -> bool:
    if a.chunk.doc_id != b.chunk.doc_id or b.start < a.end:
        return False
    if b.start == a.end:
        return True
    if a.post is not None and a.post.base <= a.end and b.start <= a.post.base + len(a.post.text):
        gap = a.post.slice(a.end, b.start)
        return not gap.strip() and gap.count("\n") <= 1
    for chunk in (a.chunk, b.chunk):  # overlapping chunks: either may hold the gap between the two
        if chunk.start <= a.end <= b.start <= chunk.end:
            gap = chunk.text[a.end - chunk.start : b.start - chunk.start]
            return not gap.strip() and gap.count("\n") <= 1
    return False


def _passage_texts(post: PackedPost) -> list[str]:
    return [" ".join(flat(s.text) for s in run) for run in post.passages()]


class SentenceEmbeddingCache:
    """Sentence embeddings by (post, offset): the same top chunks come back across questions."""

    def __init__(self, max_items: int = 50_000):
        self._items: OrderedDict[tuple[str, int, str], np.ndarray] = OrderedDict()
        self._max = max_items
        self._lock = threading.Lock()

    def embed(self, embedder, sentences: list[EvidenceSentence]) -> list[np.ndarray]:
        keys = [(s.doc_id, s.start, s.text) for s in sentences]
        with self._lock:
            missing = [i for i, k in enumerate(keys) if k not in self._items]
        if missing:
            vectors = embedder.embed([flat(sentences[i].text) or sentences[i].text for i in missing])
            with self._lock:
                for i, vector in zip(missing, vectors, strict=True):
                    self._items[keys[i]] = vector
                while len(self._items) > self._max:
                    self._items.popitem(last=False)
        with self._lock:
            out = []
            for k in keys:
                self._items.move_to_end(k)
                out.append(self._items[k])
            return out


def is_evidence(text: str, title: str = "") -> bool:
    """Image captions, table rows, titles and short lines are layout, not statements a citation can rest on.

    Section headings of four words or more stay: in listicles they *are* the facts ("1. Platform
    Engineering is Here to Stay"); a top-level heading only repeats the title.
    """
    stripped = text.strip()
    if stripped.startswith(("(Image:", "![", "|")) or not plain(stripped):
        return False
    if re.match(r"#\s", stripped) or (title and flat(stripped).lower() == title.strip().lower()):
        return False
    return len(plain(stripped).split()) >= MIN_WORDS


def chunk_sentences(chunk: Chunk, post: PostText | None = None) -> list[EvidenceSentence]:
    """The chunk's sentences with offsets into the post's source text; injected instructions dropped.

    With the ``post`` text, sentences cut by the chunk's boundaries are taken whole from the post.
    """
    if post is not None:
        spans = [s for s in post.sentences() if s.end > chunk.start and s.start < chunk.end]
    else:
        spans = [
            type(s)(s.text, chunk.start + s.start, chunk.start + s.end) for s in split_sentences(chunk.text)
        ]
    out = []
    for s in spans:
        if not is_evidence(s.text, chunk.title) or looks_like_instruction(s.text):
            continue
        out.append(EvidenceSentence(chunk, s.text, s.start, s.end, post=post))
    return out


def score_sentences(
    chunks: list[ScoredChunk],
    question: str,
    query_embedding: np.ndarray,
    embedder,
    cache: SentenceEmbeddingCache,
    snapshot=None,
) -> list[EvidenceSentence]:
    """Every distinct sentence of ``chunks`` with its relevance score, best first.

    ``snapshot`` (an :class:`~rag.retrieval.IndexSnapshot`) lets sentences cross chunk boundaries.
    """
    if not chunks:
        return []
    best_fused = max(c.score for c in chunks) or 1.0
    seen: dict[tuple[str, int], tuple[EvidenceSentence, float]] = {}
    for item in chunks:
        prior = item.score / best_fused
        post = snapshot.post_text(item.chunk.doc_id) if snapshot is not None else None
        for sentence in chunk_sentences(item.chunk, post):
            if sentence.key not in seen or seen[sentence.key][1] < prior:
                seen[sentence.key] = (sentence, prior)
    kept = list(seen.values())[:MAX_SCORED_SENTENCES]  # in chunk rank order: the best chunks first
    sentences = [s for s, _ in kept]
    priors = [p for _, p in kept]
    vectors = cache.embed(embedder, sentences)
    terms = set(content_terms(question))
    scored = []
    for sentence, prior, vector in zip(sentences, priors, vectors, strict=True):
        similarity = float(np.dot(vector, query_embedding))
        # the sentence's own words plus its heading's: "## Cost" tells what the sentence under it is about
        heading = sentence.chunk.section.rsplit(">", 1)[-1] if sentence.chunk.section else ""
        own_terms = set(content_terms(sentence.text)) | set(content_terms(heading))
        lexical = len(terms & own_terms) / len(terms) if terms else 0.0
        score = similarity + LEXICAL_WEIGHT * lexical + CHUNK_WEIGHT * prior
        scored.append(
            EvidenceSentence(
                sentence.chunk,
                sentence.text,
                sentence.start,
                sentence.end,
                score,
                similarity,
                vector,
                sentence.post,
            )
        )
    scored.sort(key=lambda s: s.score, reverse=True)
    return scored


def _next_to(a: EvidenceSentence, b: EvidenceSentence) -> bool:
    """``b`` follows ``a`` in the post with nothing but whitespace or list markers between them
    (a paragraph break is fine: "So why did it win?" is answered by the list under it)."""
    if a.doc_id != b.doc_id or b.start < a.end:
        return False
    if a.post is None:
        return _adjacent(a, b)
    gap = a.post.slice(a.end, b.start)
    return len(gap) < 200 and not re.sub(r"(?m)^\s*(?:[-*+•]|\d+[.)])\s*|\s+", "", gap)


def _context_group(
    seed: EvidenceSentence, siblings: list[EvidenceSentence], picked
) -> list[EvidenceSentence]:
    """The seed plus the sentences a reader needs with it: the one before when the seed leans on it
    ("It …"), and the next one or two (answers follow the sentence that matches the question)."""
    i = next(k for k, s in enumerate(siblings) if s.key == seed.key)
    group = [seed]
    if seed.text.lower().startswith(_LEAN_ON_PREVIOUS) and i > 0 and _next_to(siblings[i - 1], seed):
        group.insert(0, siblings[i - 1])
    following = 2 if seed.text.rstrip().endswith(("?", ":")) else FOLLOWING
    for s in siblings[i + 1 : i + 1 + following]:
        if not _next_to(group[-1], s):
            break
        group.append(s)
    return [s for s in group if s.key not in picked]


def _post_order(ranked: list[EvidenceSentence]) -> dict[str, list[EvidenceSentence]]:
    """Each post's sentences in order: the scored ones, plus (when the post text is known) the unscored
    sentences around them, which context may pull in from chunks retrieval did not return."""
    scored: dict[str, dict[int, EvidenceSentence]] = {}
    posts = {}
    for s in ranked:
        scored.setdefault(s.doc_id, {})[s.start] = s
        if s.post is not None:
            posts[s.doc_id] = (s.post, s.chunk)
    out: dict[str, list[EvidenceSentence]] = {}
    for doc_id, by_start in scored.items():
        if doc_id not in posts:
            out[doc_id] = sorted(by_start.values(), key=lambda s: s.start)
            continue
        post, chunk = posts[doc_id]
        whole = [
            by_start.get(s.start) or EvidenceSentence(chunk, s.text, s.start, s.end, post=post)
            for s in post.sentences()
            if s.start in by_start
            or (is_evidence(s.text, chunk.title) and not looks_like_instruction(s.text))
        ]
        out[doc_id] = whole
    return out


def pack_evidence(ranked: list[EvidenceSentence], settings: Settings, embed=None) -> Evidence:
    """Choose and number the evidence (see module doc).

    ``embed(sentences) -> vectors`` embeds context sentences that were not scored (verification needs
    a vector for every packed sentence); without it, only scored sentences are packed.
    """
    if not ranked:
        return Evidence([], 0, [])
    best = ranked[0].score
    floor, low_floor = best * RELATIVE_FLOOR, best * LOW_FLOOR
    by_post_order = _post_order(ranked) if embed is not None else {}
    if embed is None:
        for s in sorted(ranked, key=lambda s: (s.doc_id, s.start)):
            by_post_order.setdefault(s.doc_id, []).append(s)

    chosen: dict[str, dict[tuple[str, int], EvidenceSentence]] = {}
    order: list[str] = []
    tokens = seeds = 0
    for seed in ranked:
        if seed.score < low_floor or (seed.score < floor and seeds >= MIN_SEEDS):
            break
        picked = chosen.get(seed.doc_id, {})
        if seed.key in picked or len(picked) >= MAX_SENTENCES_PER_POST:
            continue
        if seed.doc_id not in chosen and len(order) >= MAX_POSTS:
            continue
        header = (
            0
            if seed.doc_id in chosen
            else count_tokens(render_post(0, seed.chunk.title, seed.chunk.event, []))
        )
        group = _context_group(seed, by_post_order[seed.doc_id], picked)
        group = (
            group[: MAX_SENTENCES_PER_POST - len(picked)]
            if seed in group[: MAX_SENTENCES_PER_POST - len(picked)]
            else [seed]
        )
        for candidate in (group, [seed]):
            cost = header + sum(count_tokens(flat(s.text)) + 1 for s in candidate)
            if tokens + cost <= settings.context_tokens:
                break
        else:
            continue
        tokens += cost
        seeds += 1
        if seed.doc_id not in chosen:
            chosen[seed.doc_id] = {}
            order.append(seed.doc_id)
        for s in candidate:
            chosen[seed.doc_id][s.key] = s

    missing = [s for picked in chosen.values() for s in picked.values() if s.embedding is None]
    if missing:
        vectors = embed(missing)
        filled = {
            s.key: EvidenceSentence(s.chunk, s.text, s.start, s.end, 0.0, 0.0, v, s.post)
            for s, v in zip(missing, vectors, strict=True)
        }
        for picked in chosen.values():
            for key in list(picked):
                picked[key] = filled.get(key, picked[key])
    posts = []
    for n, doc_id in enumerate(order, start=1):
        sentences = sorted(chosen[doc_id].values(), key=lambda s: s.start)
        posts.append(PackedPost(n, sentences[0].chunk, sentences))
    evidence = Evidence(posts, 0, ranked)
    evidence.tokens = count_tokens(evidence.render()) if posts else 0
    return evidence
