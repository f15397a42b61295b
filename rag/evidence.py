"""Evidence: the passages of the retrieved posts that bear on the question, numbered [1]..[n].

A *passage* is a few adjacent sentences of one section of one post, shown to the model (and to the
verifier) with the post's title, event and the heading path of its section. Headings carry a post's
structure: "2. WebAssembly is Getting Real" says what the sentences under it are about, and a listicle's
headings *are* its list. Each citation number is one passage, so the quote a citation shows is the
passage line the cited sentence rests on, never another line of the same post.

Why a few passages, not whole chunks: eight 200-token chunks are 1,600 prompt tokens, which a 0.5B model
on two CPU cores reads for seconds and then half-ignores.

1. **Score** every sentence of the retrieved chunks (:func:`score_sentences`): ``cosine(question,
   sentence) + LEXICAL_WEIGHT * share of the question's terms in the sentence or its headings +
   CHUNK_WEIGHT * its chunk's fused retrieval score relative to the best``, plus ``KIND_WEIGHT`` when it
   holds the kind of thing asked for (a count of what a "how many" counts, a name for "who", a date for
   "when"). Headings are context, not answers: they are never scored as sentences.
2. **Seed passages** best first while a seed scores at least ``SEED_RELATIVE_FLOOR`` x the best (at least
   ``MIN_SEEDS`` down to ``SEED_LOW_FLOOR`` x). A seed brings what a reader needs with it: the sentence before
   when it leans on it ("It …", "This …"), the sentence after (answers follow the sentence that matches
   the question), and the list under a sentence that ends in ":". A passage never crosses a heading.
   Seeds next to or inside a passage extend it. At most ``MAX_PASSAGES`` passages, ``MAX_PER_POST`` per
   post, inside ``settings.context_tokens``. A question about two events (or "both", "compare") gets the
   best passage of each of its top posts first.
3. **Outline** (list questions: "What were the three takeaways…?", "Which topics did … cover?"): the
   structure of the best post as one more passage, first: the sub-headings or list items under the
   heading that matches the question, or else the post's top-level headings when the question is about
   what the post is (its title shares a word with the question, or its sections are numbered).

Sentences that address the reader's AI ("ignore previous instructions", "you are now…") are never
evidence: the posts are data, and an instruction inside them has no business reaching the model.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from rag.components.tokens import count_tokens
from rag.prompts import looks_like_instruction, neutralize
from rag.retrieval import PostHeading, PostText, ScoredChunk
from rag.settings import Settings
from rag.text import content_terms, flat, plain, split_sentences
from rag.types import Chunk

LEXICAL_WEIGHT = 0.3
CHUNK_WEIGHT = 0.1
KIND_WEIGHT = 0.15
SEED_RELATIVE_FLOOR = 0.6  # seeds scoring at least this share of the best one become passages…
MIN_SEEDS = 3  # …and at least this many, down to SEED_LOW_FLOOR x the best score
SEED_LOW_FLOOR = 0.4
MAX_PASSAGES = 5
MAX_PER_POST = 3
MAX_PASSAGE_SENTENCES = 4  # a seed and its context; a list under a ":" may add up to MAX_LIST_ITEMS
MAX_LIST_ITEMS = 8
MAX_OUTLINE_ENTRIES = 10
MAX_LABEL_WORDS = 16  # a section line longer than this (a tweet turned heading) is cut
MIN_EVIDENCE_WORDS = 4  # shorter lines (captions, fragments) are context, not evidence
MAX_SCORED_SENTENCES = 72  # bounds the sentence-embedding work per question (~0.2 s on 2 cores)
_LEAN_ON_PREVIOUS = ("it ", "its ", "this ", "that ", "these ", "those ", "they ", "he ", "she ", "his ",
                     "her ", "their ", "however", "also", "but ", "so ", "then ", "which ")  # fmt: skip
# Section names that describe no content of their own: not items of a post's outline.
_GENERIC_HEADINGS = re.compile(
    r"^(?:\d+[.)]\s*)?(?:intro(?:duction)?|conclusions?|summary|final thoughts?|closing thoughts?|wrap[- ]?up|"
    r"tl;?dr|about( me| us| the author)?|references?|resources?|links|further reading|acknowledg(?:e)?ments?|"
    r"thanks|thank you|table of contents|contents|overview|agenda|updates?|disclaimer)\W*$",
    re.I,
)
_LIST_ITEM_RE = re.compile(r"^\s*(?:[-*+•]|\d+[.)])\s+")
_HEADING_MARK_RE = re.compile(r"^\s*#{1,6}\s+")
_BLOCKQUOTE_RE = re.compile(r"^\s*(?:>\s*)+")  # "> As an aside, …": the marker is not the quote's words
_QUOTED_LINE_RE = re.compile(r"\n[ \t]*(?:>[ \t]*)+")
_CJK_CHAR_RE = re.compile(r"[\u3040-\u30ff\u3400-\u9fff]")

SentenceKind = str  # "text" | "item" (a list item) | "heading"


@dataclass(frozen=True)
class EvidenceSentence:
    """A verbatim sentence of a post: ``source[start:end] == text`` (``chunk`` is one chunk holding it)."""

    chunk: Chunk
    text: str
    start: int  # offsets in the post's source text
    end: int
    score: float = 0.0  # relevance to the question (see module doc)
    similarity: float = 0.0  # cosine(question, sentence)
    embedding: np.ndarray | None = field(default=None, compare=False, repr=False)
    post: PostText | None = field(default=None, compare=False, repr=False)  # to read across chunks
    heading: str = ""  # the heading path it sits under, "2. WebAssembly is Getting Real > Use Cases"
    kind: SentenceKind = "text"
    level: int = 0  # a heading's level (2 for "## …")

    @property
    def doc_id(self) -> str:
        return self.chunk.doc_id

    @property
    def key(self) -> tuple[str, int]:
        return (self.chunk.doc_id, self.start)

    @property
    def display(self) -> str:
        """The sentence as a reader sees it: one line (hard-wrapped lines joined, a block quote's ">"
        marks dropped)."""
        return " ".join(_QUOTED_LINE_RE.sub("\n", self.text).split())


@dataclass
class Passage:
    """One numbered passage: adjacent sentences of one section (or, for an outline, a post's headings)."""

    n: int
    sentences: list[EvidenceSentence]  # in post order
    outline: bool = False
    outline_of: str = ""  # the heading (or post title) whose structure an outline lists

    @property
    def first(self) -> EvidenceSentence:
        return self.sentences[0]

    @property
    def chunk(self) -> Chunk:
        return self.first.chunk

    @property
    def doc_id(self) -> str:
        return self.first.doc_id

    @property
    def heading(self) -> str:
        return self.outline_of if self.outline else self.first.heading

    @property
    def start(self) -> int:
        return min(s.start for s in self.sentences)

    @property
    def end(self) -> int:
        return max(s.end for s in self.sentences)

    def lines(self) -> list[str]:
        """What the model reads: prose joined into one line, each list item (or outline entry) on its own."""
        out: list[str] = []
        for sentence in self.sentences:
            if self.outline or sentence.kind == "item":
                out.append(f"- {sentence.display}")
            elif out and not out[-1].startswith("- "):
                out[-1] += " " + sentence.display
            else:
                out.append(sentence.display)
        return out

    @property
    def label(self) -> str:
        """The section it is from, as the model reads it ("Sections" for an outline)."""
        if self.outline:
            return "Sections" if self.outline_of == self.chunk.title else f"Sections of {self.outline_of}"
        label = self.heading.rsplit(" > ", 1)[-1]
        shown = label.split()
        return label if len(shown) <= MAX_LABEL_WORDS else " ".join(shown[:MAX_LABEL_WORDS]) + " …"

    def render(self) -> str:
        """The passage's text ending in ``[n]``, the way an answer sentence cites it (see
        :meth:`Evidence.render`); a list keeps one item a line."""
        lines = [neutralize(line) for line in self.lines()]
        if self.outline or len(lines) > 1 and lines[-1].startswith("- "):
            return "\n".join(lines) + f" [{self.n}]"
        return " ".join(lines) + f" [{self.n}]"


@dataclass
class Evidence:
    passages: list[Passage]
    tokens: int  # tokens of the rendered evidence
    ranked: list[EvidenceSentence]  # every scored sentence, best first (in a passage or not)
    # the question's topic in the language of posts written in another one, by post (rag.crosslingual)
    translations: dict[str, str] = field(default_factory=dict)

    def passage(self, n: int) -> Passage | None:
        return next((p for p in self.passages if p.n == n), None)

    @property
    def numbers(self) -> list[int]:
        return [p.n for p in self.passages]

    @property
    def doc_ids(self) -> list[str]:
        """The posts the passages come from, in passage order."""
        return list(dict.fromkeys(p.doc_id for p in self.passages))

    def render(self) -> str:
        """The passages grouped by post, numbered [1]..[n] in order of relevance: the post's title,
        event and author once, inside ``<post>`` tags that a post's text cannot close (see rag.prompts)."""
        order = list(dict.fromkeys(p.doc_id for p in self.passages))
        blocks = []
        for doc_id in order:
            lines = [post_header(next(p.chunk for p in self.passages if p.doc_id == doc_id))]
            label = ""
            for passage in (p for p in self.passages if p.doc_id == doc_id):
                if passage.label and passage.label != label:
                    lines.append(f"## {neutralize(passage.label)}")
                label = passage.label
                lines.append(passage.render())
            blocks.append("\n".join([*lines, "</post>"]))
        return "\n\n".join(blocks)

    @property
    def is_empty(self) -> bool:
        return not self.passages


def short_event(event: str) -> str:
    """ "KubeCon + CloudNativeCon North America 2022 (Detroit)" -> "KubeCon North America 2022 (Detroit)"."""
    return re.sub(r"\s*\+\s*CloudNativeCon", "", event).strip()


def post_header(chunk: Chunk) -> str:
    title = chunk.title if len(chunk.title) <= 90 else chunk.title[:87] + "..."
    attributes = [f'title="{_attribute(title)}"']
    if chunk.event:
        attributes.append(f'event="{_attribute(short_event(chunk.event))}"')
    if chunk.author:
        attributes.append(f'author="{_attribute(chunk.author)}"')
    return f"<post {' '.join(attributes)}>"


def _attribute(value: str) -> str:
    return neutralize(value).replace('"', "'").replace("\n", " ").strip()


class SentenceEmbeddingCache:
    """Sentence embeddings by (post, offset, text): the same top chunks come back across questions."""

    def __init__(self, max_items: int = 50_000):
        self._items: OrderedDict[tuple[str, int, str], np.ndarray] = OrderedDict()
        self._max = max_items
        self._lock = threading.Lock()

    def embed(self, embedder, sentences: Sequence[EvidenceSentence]) -> list[np.ndarray]:
        keys = [(s.doc_id, s.start, s.text) for s in sentences]
        with self._lock:
            missing = [i for i, k in enumerate(keys) if k not in self._items]
        if missing:
            vectors = embedder.embed([sentences[i].display or sentences[i].text for i in missing])
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


# --- sentences of a post ----------------------------------------------------------------------------


def sentence_kind(text: str) -> SentenceKind:
    if _HEADING_MARK_RE.match(text):
        return "heading"
    return "item" if _LIST_ITEM_RE.match(text) else "text"


def is_evidence(text: str, title: str = "") -> bool:
    """Prose or a list item of at least ``MIN_EVIDENCE_WORDS`` words that is not an instruction to an AI.

    Headings (context, see the module doc), image captions, table rows, the title repeated and short
    fragments are not statements a citation can rest on.
    """
    stripped = text.strip()
    if sentence_kind(stripped) == "heading" or stripped.startswith(("(Image:", "![", "|")):
        return False
    shown = plain(stripped)
    if not shown or (title and flat(stripped).lower() == title.strip().lower()):
        return False
    return word_count(shown) >= MIN_EVIDENCE_WORDS and not looks_like_instruction(stripped)


def word_count(text: str) -> int:
    """Words as a reader counts them: Chinese and Japanese put no spaces between words, so a run of
    their characters counts a word per two characters (the usual length of a Chinese word)."""
    count = 0
    for token in text.split():
        cjk = len(_CJK_CHAR_RE.findall(token))
        rest = _CJK_CHAR_RE.sub("", token).strip("，。、：；！？（）")  # Latin words inside the run
        count += max(1, cjk // 2 + bool(rest)) if cjk else 1
    return count


def _heading_label(path: Sequence[PostHeading]) -> str:
    return " > ".join(h.text for h in path)


def _sentence(chunk: Chunk, raw, post: PostText | None, heading: str) -> EvidenceSentence:
    """One sentence of a post; a list item or a heading without its marker (its quote starts at the words)."""
    kind = sentence_kind(raw.text)
    text, start, level = raw.text, raw.start, 0
    marker = (
        (_HEADING_MARK_RE if kind == "heading" else _LIST_ITEM_RE).match(text) if kind != "text" else None
    )
    if marker:
        if kind == "heading":
            level = marker.group(0).count("#")
        text, start = text[marker.end() :].rstrip(" #"), start + marker.end()
    elif kind == "text" and (quoted := _BLOCKQUOTE_RE.match(text)) and quoted.end() < len(text):
        text, start = text[quoted.end() :], start + quoted.end()
    return EvidenceSentence(
        chunk, text, start, start + len(text), post=post, heading=heading, kind=kind, level=level
    )


def chunk_sentences(chunk: Chunk, post: PostText | None = None) -> list[EvidenceSentence]:
    """The evidence sentences of a chunk with offsets into the post's source text.

    With the ``post`` text, sentences cut by the chunk's boundaries are taken whole from the post, and
    each knows its exact heading path; without it, the chunk's section label stands in.
    """
    if post is not None:
        spans = [s for s in post.sentences() if s.end > chunk.start and s.start < chunk.end]
    else:
        spans = [
            type(s)(s.text, chunk.start + s.start, chunk.start + s.end) for s in split_sentences(chunk.text)
        ]
    fallback_heading = chunk.section.split(" > ", 1)[1] if " > " in chunk.section else ""
    return [
        _sentence(chunk, s, post, _heading_label(post.heading_path(s.start)) if post else fallback_heading)
        for s in spans
        if is_evidence(s.text, chunk.title)
    ]


def post_sentences(post: PostText, chunk: Chunk) -> list[EvidenceSentence]:
    """Every sentence of a post in order, headings included (as ``kind="heading"``), for context."""
    return [
        _sentence(chunk, s, post, _heading_label(post.heading_path(s.start)))
        for s in post.sentences()
        if sentence_kind(s.text) == "heading" or is_evidence(s.text, chunk.title)
    ]


# --- scoring ------------------------------------------------------------------------------------------


def score_sentences(
    chunks: list[ScoredChunk],
    question: str,
    query_embedding: np.ndarray,
    embedder,
    cache: SentenceEmbeddingCache,
    snapshot=None,
    holds: Callable[[str], bool] | None = None,
    also: Sequence = (),
) -> list[EvidenceSentence]:
    """Every distinct evidence sentence of ``chunks`` with its relevance score, best first.

    ``snapshot`` (an :class:`~rag.retrieval.IndexSnapshot`) lets sentences cross chunk boundaries and
    gives each its heading path. ``holds(text)``: does a sentence hold the kind of thing asked for (a
    number of the things a "how many" counts, a name for "who")? Those score ``KIND_WEIGHT`` more.
    ``also``: the question in the language of some posts (:class:`rag.crosslingual.PostLanguageQuery`);
    a sentence of those posts scores by the better of the two wordings.
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
    vectors = cache.embed(embedder, sentences)
    terms = set(content_terms(question))
    similarities = [float(np.dot(vector, query_embedding)) for vector in vectors]
    theirs = _their_language_similarities(kept, vectors, similarities, also)
    scored = []
    for (sentence, prior), vector, similarity, other in zip(kept, vectors, similarities, theirs, strict=True):
        # the sentence's own words plus its headings': "## Cost" tells what the sentence under it is about
        own_terms = set(content_terms(sentence.text)) | set(content_terms(sentence.heading))
        lexical = len(terms & own_terms) / len(terms) if terms else 0.0
        if other is not None:
            similarity = max(similarity, other[0])
            lexical = max(lexical, len(other[1] & own_terms) / len(other[1]) if other[1] else 0.0)
        score = similarity + LEXICAL_WEIGHT * lexical + CHUNK_WEIGHT * prior
        if holds is not None and holds(sentence.display):
            score += KIND_WEIGHT
        scored.append(replace(sentence, score=score, similarity=similarity, embedding=vector))
    scored.sort(key=lambda s: s.score, reverse=True)
    return scored


def _their_language_similarities(kept, vectors, similarities: list[float], also: Sequence) -> list:
    """For each sentence of a post in another language: (its similarity to the question in that
    language, that wording's terms), else None.

    MiniLM puts French texts close to each other whatever they say ("Rejoignez nos équipes…" scores
    0.52 with a French question about CI/CD), so those similarities are brought to the English ones'
    scale: shifted by the difference of the two medians (French sentences to the French question,
    English sentences to the English one). With no English sentence to compare with, they stay as they are.
    """
    out: list = [None] * len(kept)
    for query in also:
        if query.embedding is None:
            continue
        for i, ((sentence, _), vector) in enumerate(zip(kept, vectors, strict=True)):
            if sentence.doc_id in query.posts:
                found = float(np.dot(vector, query.embedding))
                if out[i] is None or found > out[i][0]:
                    out[i] = (found, query.terms)
    foreign = [o[0] for o in out if o is not None]
    english = [similarity for similarity, o in zip(similarities, out, strict=True) if o is None]
    if not foreign or not english:
        return out
    shift = float(np.median(foreign)) - float(np.median(english))
    return [(o[0] - max(shift, 0.0), o[1]) if o is not None else None for o in out]


# --- passages -----------------------------------------------------------------------------------------


def _next_to(a: EvidenceSentence, b: EvidenceSentence) -> bool:
    """``b`` follows ``a`` in the same section with nothing but whitespace or list markers between them
    (a paragraph break is fine: "So why did it win?" is answered by the list under it)."""
    if a.doc_id != b.doc_id or b.start < a.end or a.heading != b.heading:
        return False
    if a.post is None:
        gap_source = a.chunk if a.chunk.start <= a.end and b.start <= a.chunk.end else b.chunk
        if not (gap_source.start <= a.end and b.start <= gap_source.end):
            return False
        gap = gap_source.text[a.end - gap_source.start : b.start - gap_source.start]
    else:
        gap = a.post.slice(a.end, b.start)
    return len(gap) < 200 and not re.sub(r"(?m)^\s*(?:[-*+•]|\d+[.)])\s*|\s+", "", gap)


def _context(seed: EvidenceSentence, siblings: list[EvidenceSentence]) -> list[EvidenceSentence]:
    """The seed plus what a reader needs with it (see the module doc), never across a heading."""
    i = next(k for k, s in enumerate(siblings) if s.key == seed.key)
    group = [seed]
    previous = siblings[i - 1] if i > 0 else None
    leans = seed.display.lower().startswith(_LEAN_ON_PREVIOUS) or (
        seed.kind == "item" and previous is not None and previous.kind == "text"
    )
    if leans and previous is not None and previous.kind != "heading" and _next_to(previous, seed):
        group.insert(0, previous)
    sets_up = seed.text.rstrip().endswith((":", "?"))
    limit = MAX_LIST_ITEMS + 1 if sets_up else 1
    for s in siblings[i + 1 : i + 1 + limit]:
        if s.kind == "heading" or not _next_to(group[-1], s):
            break
        if sets_up and group[-1] is not seed and s.kind != "item":
            break
        group.append(s)
        if len(group) >= MAX_PASSAGE_SENTENCES and not sets_up:
            break
    return group


def _siblings(ranked: list[EvidenceSentence]) -> dict[str, list[EvidenceSentence]]:
    """Each post's sentences in order: the scored ones, plus (when the post text is known) the others
    around them, which context may pull in from chunks retrieval did not return."""
    scored: dict[str, dict[int, EvidenceSentence]] = {}
    posts: dict[str, tuple[PostText, Chunk]] = {}
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
        out[doc_id] = [by_start.get(s.start, s) for s in post_sentences(post, chunk)]
    return out


def _seed_order(ranked: list[EvidenceSentence], spread: bool) -> list[EvidenceSentence]:
    """Seeds best first; for a question about several posts, the best seed of each top post leads."""
    seeds = [s for s in ranked if s.kind != "heading"]
    if not spread:
        return seeds
    leaders: dict[str, EvidenceSentence] = {}
    for s in seeds:
        leaders.setdefault(s.doc_id, s)
        if len(leaders) == 3:
            break
    lead = list(leaders.values())
    return lead + [s for s in seeds if s not in lead]


def build_evidence(
    ranked: list[EvidenceSentence],
    settings: Settings,
    embed: Callable[[list[EvidenceSentence]], list[np.ndarray]] | None = None,
    *,
    spread: bool = False,
    outline_for: str | None = None,
    outline_embedding: np.ndarray | None = None,
) -> Evidence:
    """Choose and number the passages (see the module doc).

    ``embed(sentences) -> vectors`` embeds context sentences that were not scored (verification needs a
    vector for every sentence shown); without it, only scored sentences are used. ``spread``: the
    question is about several posts or events. ``outline_for``: a list question; its embedding ranks
    the headings of the best post.
    """
    if not ranked:
        return Evidence([], 0, [])
    siblings = _siblings(ranked) if embed is not None else {}
    if embed is None:
        for s in sorted(ranked, key=lambda s: (s.doc_id, s.start)):
            siblings.setdefault(s.doc_id, []).append(s)
    best = ranked[0].score
    floor, low_floor = best * SEED_RELATIVE_FLOOR, best * SEED_LOW_FLOOR
    groups: list[list[EvidenceSentence]] = []
    outline: Passage | None = None
    if outline_for is not None:
        outline = _outline(ranked, siblings, outline_for, outline_embedding)
    tokens = count_tokens(post_header(outline.chunk)) + _cost(outline) if outline else 0
    posts = {outline.doc_id} if outline else set()
    seeds = 0
    for seed in _seed_order(ranked, spread):
        below = seed.score < low_floor or (seed.score < floor and seeds >= MIN_SEEDS)
        if below and (not spread or seeds >= 2):
            break
        if any(seed.key in {s.key for s in g} for g in groups):
            continue
        group = _context(seed, siblings[seed.doc_id])
        merged = next((g for g in groups if _touches(g, group)), None)
        if merged is None and (
            len(groups) >= MAX_PASSAGES or sum(g[0].doc_id == seed.doc_id for g in groups) >= MAX_PER_POST
        ):
            continue
        candidate = _union(merged, group) if merged is not None else group
        cost = _cost(Passage(0, candidate)) - (_cost(Passage(0, merged)) if merged is not None else 0)
        if seed.doc_id not in posts:
            cost += count_tokens(post_header(seed.chunk)) + 3
        if tokens + cost > settings.context_tokens:
            continue
        tokens += cost
        posts.add(seed.doc_id)
        seeds += 1
        if merged is not None:
            groups[groups.index(merged)] = candidate
        else:
            groups.append(candidate)

    passages = [Passage(0, g) for g in groups]
    if outline is not None:
        passages.insert(0, outline)
    if embed is not None:
        passages = _with_embeddings(passages, embed)
    for n, passage in enumerate(passages, start=1):
        passage.n = n
    evidence = Evidence(passages, 0, ranked)
    evidence.tokens = count_tokens(evidence.render()) if passages else 0
    return evidence


def _cost(passage: Passage) -> int:
    """Tokens a passage adds to the prompt: its text and its section line."""
    return count_tokens(passage.render()) + (count_tokens(passage.label) + 2 if passage.label else 0)


def _touches(a: list[EvidenceSentence], b: list[EvidenceSentence]) -> bool:
    """Same post and section, overlapping or adjacent: one passage, not two."""
    if a[0].doc_id != b[0].doc_id or a[0].heading != b[0].heading:
        return False
    keys = {s.key for s in a}
    if any(s.key in keys for s in b):
        return True
    return _next_to(a[-1], b[0]) or _next_to(b[-1], a[0])


def _union(a: list[EvidenceSentence], b: list[EvidenceSentence]) -> list[EvidenceSentence]:
    by_key = {s.key: s for s in a}
    for s in b:
        by_key.setdefault(s.key, s)
    return sorted(by_key.values(), key=lambda s: s.start)


def _with_embeddings(passages: list[Passage], embed) -> list[Passage]:
    missing = [s for p in passages for s in p.sentences if s.embedding is None]
    if not missing:
        return passages
    vectors = {s.key: v for s, v in zip(missing, embed(missing), strict=True)}
    return [
        replace(
            p,
            sentences=[
                s if s.embedding is not None else replace(s, embedding=vectors[s.key]) for s in p.sentences
            ],
        )
        for p in passages
    ]


# --- outlines -----------------------------------------------------------------------------------------


def _outline(
    ranked: list[EvidenceSentence],
    siblings: dict[str, list[EvidenceSentence]],
    question: str,
    question_embedding: np.ndarray | None,
) -> Passage | None:
    """The structure of the best post that has one: the entries under the heading the question names
    (its sub-headings, else its list items), or the post's top-level headings."""
    for doc_id in list(dict.fromkeys(s.doc_id for s in ranked))[:2]:
        sentences = siblings.get(doc_id, [])
        post = sentences[0].post if sentences else None
        if post is None:
            continue
        entries, of = outline_entries(post, sentences, question)
        if len(entries) >= 2:
            return Passage(0, entries[:MAX_OUTLINE_ENTRIES], outline=True, outline_of=of)
    return None


def outline_entries(
    post: PostText, sentences: list[EvidenceSentence], question: str
) -> tuple[list[EvidenceSentence], str]:
    """(entries, what they are the structure of) for one post; see :func:`_outline`."""
    headings = [
        s for s in sentences if s.kind == "heading" and s.display and not _same(s.display, post.title)
    ]
    terms = set(content_terms(question))
    # The heading the question names: the one sharing most of its words with the question ("Top Five
    # Trends at Kubecon EU" for "What trends did the Botkube recap list?") that has entries under it.
    ranked = sorted(
        (h for h in headings if set(content_terms(h.display)) & terms),
        key=lambda h: len(set(content_terms(h.display)) & terms) / len(set(content_terms(h.display))),
        reverse=True,
    )
    for named in ranked:
        level = _level(named)
        children: list[EvidenceSentence] = []
        for s in _after(sentences, named):
            if s.kind == "heading" and _level(s) <= level:
                break
            children.append(s)
        sub = [s for s in children if s.kind == "heading"]
        if sub:
            top = min(_level(s) for s in sub)
            entries = [s for s in sub if _level(s) == top]
        else:
            entries = [s for s in children if s.kind == "item"]
        entries = _numbered_first([s for s in entries if not _GENERIC_HEADINGS.match(s.display)])
        if len(entries) >= 2:
            return entries, named.display
    # The post's own structure answers only when the question is about what the post is: its title
    # shares a word with the question ("the three big takeaways" of "Three Big Takeaways"), or the
    # post numbers its sections ("1. …", "2. …"). A diary's "Day 1 / Day 2" is no list of tips.
    title_terms = set(content_terms(post.title))
    levels = sorted({_level(h) for h in headings})
    for level in levels:
        entries = [h for h in headings if _level(h) == level and not _GENERIC_HEADINGS.match(h.display)]
        numbered = _numbered_first(entries)
        if len(numbered) >= 2 and (numbered is not entries or terms & title_terms):
            return numbered, post.title
    return [], ""


def _numbered_first(entries: list[EvidenceSentence]) -> list[EvidenceSentence]:
    """Where some entries are numbered ("1. Platform Engineering…", "2. …"), those are the list."""
    numbered = [e for e in entries if re.match(r"\s*\d+[.)]\s", e.display)]
    return numbered if len(numbered) >= 2 else entries


def _after(sentences: list[EvidenceSentence], anchor: EvidenceSentence) -> list[EvidenceSentence]:
    index = next(i for i, s in enumerate(sentences) if s.key == anchor.key)
    return sentences[index + 1 :]


def _level(sentence: EvidenceSentence) -> int:
    return sentence.level or 7


def _same(a: str, b: str) -> bool:
    return re.sub(r"\W+", " ", a).strip().lower() == re.sub(r"\W+", " ", b).strip().lower()
