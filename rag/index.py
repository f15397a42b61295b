"""The in-memory index: a snapshot of the Chroma collection (chunks, vectors, BM25, posts), kept current.

The BM25 index and a copy of the chunks and their vectors live in memory (1,397 chunks for the 84
shared posts, a few MB; ~155,000 chunks at 100x). They are built once per process and rebuilt when the
collection changes: its count or its ``kqa_updated_at`` metadata (written by every ingest that changes
anything). A rebuild that takes longer than a couple of seconds happens in the background while
questions are answered from the previous snapshot (see :meth:`IndexManager.snapshot`).

A snapshot also rebuilds a post's source text from its chunks (:class:`PostText`, with sentences and
heading paths) for the evidence step. :mod:`rag.retrieval` searches a snapshot.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import OrderedDict, defaultdict
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeoutError
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from rag.components.store import forget_client, get_collection
from rag.errors import EmptyIndexError, StoreUnavailableError
from rag.question import EventMention, EventQuery
from rag.schema import UPDATED_AT_KEY, chunk_from_record
from rag.settings import Settings
from rag.text import Sentence, content_terms, split_sentences, stems
from rag.types import Chunk

log = logging.getLogger(__name__)

SNAPSHOT_REFRESH_WAIT_S = 2.0  # how long a question waits for a rebuilt snapshot before using the last one
POST_TEXTS_KEPT = 512  # rebuilt post texts (and their sentences) a snapshot keeps: bounded memory
_PAGE = 500  # records per collection.get() page when loading the snapshot (keeps HTTP responses small)


@dataclass(frozen=True)
class PostInfo:
    """What the index knows about one post (from its chunks' metadata)."""

    doc_id: str
    title: str
    event: str
    year: int | None
    city: str
    region: str
    url_or_path: str
    n_chunks: int


_SHORT_QUESTION_WORDS = 4  # "The winning idea?", "Why?": too short to stand alone as a line


def _with_their_answers(text: str, sentences: list[Sentence]) -> list[Sentence]:
    """A short question is one line with the sentence that answers it on the same line ("The winning
    idea? A proposal for…"): alone it is too short to be evidence, and the answer loses what it answers."""
    out: list[Sentence] = []
    for s in sentences:
        previous = out[-1] if out else None
        if (
            previous is not None
            and len(previous.text.split()) < _SHORT_QUESTION_WORDS
            and previous.text.rstrip().endswith("?")
            and not text[previous.end : s.start].strip(" \t")
            and not previous.text.lstrip().startswith("#")
        ):
            out[-1] = Sentence(text[previous.start : s.end], previous.start, s.end)
            continue
        out.append(s)
    return out


class PostText:
    """A post's source text rebuilt from its chunks (they cover it, with overlaps, at known offsets).

    Sentences are split on the whole post, so one that straddles a chunk boundary stays whole.
    ``text[i - base]`` is character ``i`` of the post's source text; gaps between chunks (text that
    ingest did not index, such as front matter) read as newlines, so no sentence spans them. Lines inside
    fenced code blocks are not sentences. Headings keep their level, so every sentence knows the
    heading path it sits under (:meth:`heading_path`).
    """

    def __init__(self, chunks: list[Chunk]):
        ordered = sorted(chunks, key=lambda c: c.start)
        self.base = ordered[0].start if ordered else 0
        end = max((c.end for c in ordered), default=self.base)
        buffer = ["\n"] * (end - self.base)
        for chunk in ordered:
            if len(chunk.text) == chunk.end - chunk.start:
                buffer[chunk.start - self.base : chunk.end - self.base] = chunk.text
        self.text = "".join(buffer)
        self.title = ordered[0].title if ordered else ""
        self._sentences = None
        self._headings: list[PostHeading] | None = None

    def slice(self, start: int, end: int) -> str:
        return self.text[start - self.base : end - self.base]

    def sentences(self):
        """Sentences with offsets in the post's source text (heading lines included, code blocks not)."""
        if self._sentences is None:
            fenced = _fenced_ranges(self.text)
            kept = [s for s in split_sentences(self.text) if not any(a <= s.start < b for a, b in fenced)]
            self._sentences = [
                Sentence(s.text, s.start + self.base, s.end + self.base) for s in _with_their_answers(self.text, kept)
            ]
        return self._sentences

    def headings(self) -> list[PostHeading]:
        """The post's headings in order: level, text (without the ``#`` marks) and its offsets."""
        if self._headings is None:
            out = []
            for sentence in self.sentences():
                match = _HEADING_RE.match(sentence.text)
                if match:
                    start = sentence.start + match.start(2)
                    out.append(PostHeading(len(match.group(1)), match.group(2), start, sentence.end))
            self._headings = out
        return self._headings

    def heading_path(self, offset: int) -> tuple[PostHeading, ...]:
        """The headings a character sits under, outermost first (the title heading left out)."""
        stack: list[PostHeading] = []
        for heading in self.headings():
            if heading.start > offset:
                break
            while stack and stack[-1].level >= heading.level:
                stack.pop()
            stack.append(heading)
        return tuple(h for h in stack if not _same_words(h.text, self.title))


@dataclass(frozen=True)
class PostHeading:
    level: int
    text: str
    start: int  # offsets of the heading's text (after the "## ") in the post's source text
    end: int


_HEADING_RE = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_FENCE_RE = re.compile(r"(?m)^\s*(?:```|~~~)")


def _fenced_ranges(text: str) -> list[tuple[int, int]]:
    marks = [m.start() for m in _FENCE_RE.finditer(text)]
    if len(marks) % 2:
        marks.append(len(text))
    return list(zip(marks[0::2], marks[1::2], strict=True))


def _same_words(a: str, b: str) -> bool:
    return re.sub(r"\W+", " ", a).strip().lower() == re.sub(r"\W+", " ", b).strip().lower()


NAMING_MAX_POSTS_SHARE = 0.15  # a word in more posts' names than this is a topic, not a name
NAMING_MAX_OUTSIDE_SHARE = 0.1  # …and so is one the other posts use this often


class IndexSnapshot:
    """The chunks, their embeddings and the BM25 index at one version of the collection."""

    def __init__(self, signature: tuple, ids: list[str], chunks: list[Chunk], embeddings: np.ndarray):
        import bm25s

        self.signature = signature
        self.ids = ids
        self.chunks = chunks
        self.position = {chunk_id: i for i, chunk_id in enumerate(ids)}
        self.embeddings = embeddings
        self.posts: dict[str, PostInfo] = {}
        for chunk in chunks:
            if chunk.doc_id not in self.posts:
                self.posts[chunk.doc_id] = PostInfo(
                    chunk.doc_id, chunk.title, chunk.event, chunk.year, chunk.city, chunk.region,
                    chunk.url_or_path, 0,
                )  # fmt: skip
        counts = defaultdict(int)
        for chunk in chunks:
            counts[chunk.doc_id] += 1
        self.posts = {d: PostInfo(**{**p.__dict__, "n_chunks": counts[d]}) for d, p in self.posts.items()}
        # Posts grouped by their event fields: event matching then looks at each distinct event once
        # (a few dozen), not at every post (8,400 at 100x).
        self._posts_by_event: dict[tuple, list[str]] = defaultdict(list)
        for doc_id, post in self.posts.items():
            self._posts_by_event[(post.year, post.city, post.region, post.event)].append(doc_id)
        # Each chunk's post as a small integer, so an event restriction becomes a boolean mask in ~1 ms
        # (np.isin over the post-id strings made BM25 take ~2 s per question at 155,000 chunks).
        self._post_code = {doc_id: code for code, doc_id in enumerate(self.posts)}
        self.post_codes = np.fromiter(
            (self._post_code[c.doc_id] for c in chunks), dtype=np.int32, count=len(chunks)
        )
        self._identity_terms: dict[str, set[str]] | None = None  # built on first use
        self._naming: dict[str, frozenset[str]] = {}  # term -> the posts it names (empty: none)
        self._post_texts: OrderedDict[str, PostText] = OrderedDict()  # least recently used first
        self._post_texts_lock = threading.Lock()
        self.bm25 = None
        self._term_ids: dict[str, int] = {}
        self._doc_freq = np.zeros(0, dtype=np.int32)
        if chunks:
            # Term ids chunk by chunk, so the stemmed words of all chunks are never held as separate
            # strings at once (bm25s would build them, then a second list of ids, before indexing).
            vocab: dict[str, int] = {}
            corpus = [
                [
                    vocab.setdefault(t, len(vocab))
                    for t in content_terms(f"{c.title}\n{c.section}\n{c.text}") or ["_"]
                ]
                for c in chunks
            ]
            self.bm25 = bm25s.BM25()
            self.bm25.index((corpus, vocab), show_progress=False)
            self._term_ids = vocab
            self._doc_freq = np.zeros(len(vocab), dtype=np.int32)
            for ids in corpus:
                self._doc_freq[np.unique(np.asarray(ids, dtype=np.int64))] += 1

    def posts_named_by(self, text: str) -> set[str]:
        """The posts ``text`` names by who wrote them or what they are called ("Bedrock's notes", "the CINQ
        non-techie", "MetalBear's recap"): empty when it names none.

        A word names posts when it is written as a name (with a capital: "Bedrock", "CINQ", "EnvoyCon";
        "service mesh" names nothing, whatever post is called so), is in their id, author or title, in few
        posts' (at most ``NAMING_MAX_POSTS_SHARE`` of them), and the other posts' chunks rarely use it (at
        most ``NAMING_MAX_OUTSIDE_SHARE`` as many chunks as the named posts have). "Bedrock" names the nine
        Bedrock posts; "Kubeflow" names no post, although two posts are the Kubeflow team's, since a
        dozen others write about the project. Adjacent naming words are one name, and the word naming
        the fewest posts decides it ("Matteo Bisi": Bisi, not every Matteo); two names name the posts of
        both ("MetalBear and Botkube").
        """
        named: set[str] = set()
        name: list[frozenset[str]] = []
        terms = [t if any(c.isupper() for c in word) else "" for word in text.split() for t in stems(word) or [""]]
        for term in [*terms, ""]:  # "": a word that is no name, or the end, closes the name before it
            owners = self._naming.get(term) if term in self._identity else frozenset()
            if owners is None:  # asked once per word of a post's name (any other word names nothing)
                owners = self._naming[term] = self._owners_if_naming(term)
            if owners:
                name.append(owners)
            elif name:
                named |= min(name, key=len)
                name = []
        return named

    def _owners_if_naming(self, term: str) -> frozenset[str]:
        """The posts ``term`` names (see :meth:`posts_named_by`); a word no chunk uses names its posts."""
        owners = frozenset(self._identity.get(term, ()))
        if not owners or len(owners) > NAMING_MAX_POSTS_SHARE * len(self.posts):
            return frozenset()
        if term not in self._term_ids or self.bm25 is None:
            return owners
        mentions = np.asarray(self.bm25.get_scores([term])) > 0
        inside = self.chunk_mask(set(owners))
        outside = int(np.count_nonzero(mentions & ~inside))
        return owners if outside <= NAMING_MAX_OUTSIDE_SHARE * int(np.count_nonzero(inside)) else frozenset()

    @property
    def _identity(self) -> dict[str, set[str]]:
        """Each term of a post's id, author and title: the posts it is in."""
        if self._identity_terms is None:
            identity: dict[str, set[str]] = defaultdict(set)
            authors = {c.doc_id: c.author for c in self.chunks if c.author}
            for doc_id, post in self.posts.items():
                slug = re.sub(r"[-_]+", " ", doc_id)
                for term in content_terms(f"{slug} {authors.get(doc_id, '')} {post.title}"):
                    identity[term].add(doc_id)
            self._identity_terms = dict(identity)
        return self._identity_terms

    def post_text(self, doc_id: str) -> PostText:
        """The post's text rebuilt from its chunks (built on first use; the last ``POST_TEXTS_KEPT`` are kept)."""
        with self._post_texts_lock:
            post = self._post_texts.get(doc_id)
            if post is not None:
                self._post_texts.move_to_end(doc_id)
                return post
        post = PostText(self.chunks_of(doc_id))
        with self._post_texts_lock:
            self._post_texts[doc_id] = post
            while len(self._post_texts) > POST_TEXTS_KEPT:
                self._post_texts.popitem(last=False)
        return post

    def idf(self, term: str) -> float:
        """BM25's inverse document frequency of a stemmed term over the chunks (rare words weigh more)."""
        index = self._term_ids.get(term)
        df = int(self._doc_freq[index]) if index is not None else 0
        n = len(self.chunks)
        return float(np.log(1.0 + (n - df + 0.5) / (df + 0.5)))

    def chunks_of(self, doc_id: str) -> list[Chunk]:
        """The post's chunks in the snapshot, in stored order."""
        code = self._post_code.get(doc_id)
        return [self.chunks[i] for i in np.flatnonzero(self.post_codes == code)] if code is not None else []

    def chunk_mask(self, allowed: set[str]) -> np.ndarray:
        """True for every chunk whose post is in ``allowed``."""
        wanted = np.zeros(len(self.posts), dtype=bool)
        wanted[[self._post_code[d] for d in allowed if d in self._post_code]] = True
        return wanted[self.post_codes]

    @property
    def years(self) -> list[int]:
        return sorted({year for year, *_ in self._posts_by_event if year})

    @property
    def reference_year(self) -> int | None:
        """The latest event year in the index: what "last year" is relative to (see rag.question)."""
        years = self.years
        return years[-1] if years else None

    def posts_matching(self, events: EventQuery) -> set[str]:
        return {
            d for (year, city, region, event), posts in self._posts_by_event.items()
            if events.matches(year=year, city=city, region=region, event=event)
            for d in posts
        }  # fmt: skip

    def mention_is_covered(self, mention: EventMention) -> bool:
        return any(
            mention.matches(year=year, city=city, region=region, event=event)
            for year, city, region, event in self._posts_by_event
        )


@contextmanager
def store_errors(settings: Settings, failure: str = "Cannot read the index"):
    """Any error from the store inside the block: forget the cached client, raise StoreUnavailableError.

    A server that went away surfaces as assorted HTTP errors; they become one clear message (``failure``
    at the store's description), and the next call reconnects instead of reusing a dead client.
    """
    try:
        yield
    except StoreUnavailableError:
        forget_client(settings)
        raise
    except Exception as exc:
        forget_client(settings)
        raise StoreUnavailableError(f"{failure} at {settings.describe_store()}: {exc}") from exc


class IndexManager:
    """The configured collection's current :class:`IndexSnapshot` (one per process is enough)."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._lock = threading.Lock()
        self._snapshot: IndexSnapshot | None = None
        self._refresh: Future | None = None  # a rebuild in flight
        self._last_load_s = 0.0
        self._last_loaded_at = 0.0  # time.monotonic() when the last rebuild finished
        self._collection = None

    @property
    def collection(self):
        """The collection handle the last :meth:`snapshot` opened (``None`` before the first).

        Searches that go to Chroma use this one rather than the handle a snapshot was loaded with:
        after the server went away and came back, it is the one on the reconnected client.
        """
        return self._collection

    def _get_collection(self):
        with store_errors(self.settings):
            collection = get_collection(self.settings, create=False)
        if collection is None:
            raise EmptyIndexError(
                f"The index at {self.settings.describe_store()} has no collection {self.settings.collection!r} yet. "
                "Run the ingest job first: python -m ingest"
            )
        return collection

    def _signature(self, collection) -> tuple:
        with store_errors(self.settings):
            count = collection.count()
        return (count, str((collection.metadata or {}).get(UPDATED_AT_KEY, "")))

    def snapshot(self) -> IndexSnapshot:
        """The snapshot of the collection as it is now, or as it was a moment ago while a new one loads.

        A new snapshot is built when the collection's count or ``kqa_updated_at`` changed, in a
        background thread. The caller waits for it up to ``SNAPSHOT_REFRESH_WAIT_S`` (a small index is
        rebuilt well within that, so answers see new posts at once) and otherwise answers from the
        previous snapshot until the new one is ready: 155,000 chunks take about a minute to load, and
        while an ingest job writes, the count changes after every post. A slow rebuild is not restarted
        sooner than its own duration after the last one finished, so readers spend at most about half
        their time rebuilding during a long ingest.
        """
        with self._lock:
            collection = self._get_collection()
            self._collection = collection
            signature = self._signature(collection)
            current = self._snapshot
            if current is not None and current.signature == signature:
                return current
            refresh = self._refresh
            if refresh is None:
                cooling = (
                    self._last_load_s > SNAPSHOT_REFRESH_WAIT_S
                    and time.monotonic() - self._last_loaded_at < self._last_load_s
                )
                if current is not None and cooling:
                    return current
                refresh = self._refresh = Future()
                threading.Thread(
                    target=self._rebuild,
                    args=(collection, signature, refresh),
                    name="kqa-snapshot",
                    daemon=True,
                ).start()
        if current is None:
            return refresh.result()  # nothing to answer from yet: wait (and raise what the load raised)
        try:
            return refresh.result(timeout=SNAPSHOT_REFRESH_WAIT_S)
        except FutureTimeoutError:
            return current
        except Exception as exc:  # noqa: BLE001 - keep answering from the last good snapshot
            log.warning("index snapshot refresh failed, answering from the previous one: %s", exc)
            return current

    def _rebuild(self, collection, signature: tuple, refresh: Future) -> None:
        started = time.perf_counter()
        try:
            snapshot = self._load(collection, signature)
        except BaseException as exc:  # handed to whoever waits on the future
            with self._lock:
                self._refresh = None
            refresh.set_exception(exc)
            return
        seconds = time.perf_counter() - started
        with self._lock:
            self._snapshot = snapshot
            self._refresh = None
            self._last_load_s, self._last_loaded_at = seconds, time.monotonic()
        log.info(
            "index snapshot: %d chunks from %d posts in %.2fs",
            len(snapshot.chunks),
            len(snapshot.posts),
            seconds,
        )
        refresh.set_result(snapshot)

    def _load(self, collection, signature: tuple) -> IndexSnapshot:
        ids: list[str] = []
        chunks: list[Chunk] = []
        # One float32 matrix filled page by page and normalised in place: a list of row arrays plus
        # vstack plus a normalised copy peaked at 3x the vectors (~700 MB at 155,000 chunks).
        embeddings = np.zeros((0, 1), dtype=np.float32)
        offset = 0
        while True:
            page = collection.get(
                include=["documents", "metadatas", "embeddings"], limit=_PAGE, offset=offset
            )
            page_ids = page["ids"]
            if not page_ids:
                break
            vectors = np.asarray(page["embeddings"], dtype=np.float32)
            if offset + len(page_ids) > len(embeddings):  # first page, or the collection grew meanwhile
                rows = max(signature[0], offset + len(page_ids), 2 * len(embeddings))
                grown = np.empty((rows, vectors.shape[1]), dtype=np.float32)
                grown[:offset] = embeddings[:offset]
                embeddings = grown
            embeddings[offset : offset + len(page_ids)] = vectors
            for chunk_id, document, metadata in zip(
                page_ids, page["documents"], page["metadatas"], strict=True
            ):
                ids.append(chunk_id)
                chunks.append(chunk_from_record(chunk_id, document, metadata))
            offset += len(page_ids)
            if len(page_ids) < _PAGE:
                break
        embeddings = embeddings[:offset]
        if offset:
            norms = np.linalg.norm(embeddings, axis=1, keepdims=True)
            embeddings /= np.maximum(norms, 1e-12)
        return IndexSnapshot(signature, ids, chunks, embeddings)
