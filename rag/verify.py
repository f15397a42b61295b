"""Citation verification: every sentence of an answer must be supported by the post it cites.

Run on every generated answer (``Assistant.ask`` and the final answer of ``Assistant.stream``):

1. Citation markers ``[n]`` (also ``[1, 2]``, ``[1][2]``, ``【1】``) that point at no packed post are dropped.
2. Each sentence is compared with the packed sentences of every post (single sentences and adjacent
   pairs). A post *supports* a sentence when all of these hold:

   * embedding similarity (shared sentence-transformers model, cosine) >= ``settings.verify_min_similarity``
     (default 0.55), or ``RESTATEMENT_SIMILARITY_DISCOUNT`` (0.15) less when at least
     ``RESTATEMENT_OVERLAP`` (80 %) of the sentence's content words are in the evidence: a sentence that
     restates one clause of a long evidence sentence scores ~0.45 although every word is there;
   * lexical overlap >= ``settings.verify_min_overlap`` (default 0.5): the share of the sentence's content words
     (stemmed, stop words removed) found in the evidence or the post's title/event
   * every number and every name (capitalised word: project, company, person) in the sentence appears in
     that evidence or the post's title/event: a changed count or a swapped project is a wrong claim.
     Names and numbers the question itself gave ("Datadog's recap", "KubeCon EU 2018") are not claims
     of the answer: an answer may repeat them;
   * a sentence that negates ("not", "never", "without"...) needs evidence that negates too;
   * when every content word, name and number of the sentence is in one evidence window, similarity is
     not asked: a short answer ("Mitch Connors and Faseela K.") scores ~0.1 against the sentence it
     copies, and the window holding all of it is the stronger proof.

   Each check covers a hole in the others: embeddings accept a fluent sentence that swaps a name
   ("Istio presented a sidecarless mesh" scores 0.69 against the Cilium sentence, overlap 0.86);
   word overlap accepts the right words in a different claim; neither notices "9,000" for "7,000".
   What none of them catches is a negated claim that keeps every word ("recommended disabling mTLS");
   the prompt and the small answer length are the defence there.
3. A sentence keeps the cited posts that support it. If none of them do (or it cites nothing) and another
   packed post supports it, the citation is re-pointed to the best one. Otherwise the sentence is
   unsupported: removed (``unsupported_sentences="remove"``) or kept with an ``[unverified]`` mark.
4. Paraphrase is where small models slip (a dropped "not", a merged clause), so the evidence's own words
   replace the model's where they are loose: a supported sentence sharing less than
   ``settings.verify_quote_below_overlap`` (default 0.8) of its content words with its evidence, and an
   unsupported one that restates a window closely (similarity >= ``SNAP_SIMILARITY``, every number and
   name present, negation matching), are replaced by that window's text, cited (status ``quoted``).
5. If no supported claim remains, the answer abstains (the assistant then lists the closest posts).
6. Citations are renumbered 1..n in order of appearance; each carries the verbatim quote that
   supported it and that quote's character offsets in the post's source text.

Sentences without a content word, name or number ("Sure.", "Here is what I found:") are connective:
kept, never cited, and never enough on their own to count as an answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from rag.packing import Evidence, EvidenceSentence, PackedPost
from rag.prompts import is_abstention
from rag.settings import Settings
from rag.text import content_terms, flat, is_negated, names, numbers, split_sentences
from rag.types import Citation

UNVERIFIED_MARK = "[unverified]"
RESTATEMENT_OVERLAP = 0.8  # at least this share of the sentence's content words are in the evidence…
RESTATEMENT_SIMILARITY_DISCOUNT = 0.15  # …then similarity may be this much below verify_min_similarity
SNAP_SIMILARITY = 0.6  # an unsupported sentence this close to one window (facts intact) is replaced by it
_MARKER_RE = re.compile(r"\s*(?:\[\s*(\d+(?:\s*[,;]\s*\d+)*)\s*\]|【\s*(\d+)\s*】)")
_MARKERS_AFTER_STOP_RE = re.compile(r"([.!?])((?:\s*(?:\[\s*\d+(?:\s*[,;]\s*\d+)*\s*\]|【\s*\d+\s*】))+)")
_LIST_PREFIX_RE = re.compile(r"^(\s*(?:[-*+•]|\d+[.)])\s+)")

Status = Literal["supported", "repointed", "added", "quoted", "unsupported", "connective", "abstention"]
SUPPORTED: tuple[Status, ...] = ("supported", "repointed", "added", "quoted")


@dataclass
class SupportCheck:
    """How well one post's evidence supports one answer sentence."""

    n: int
    sentences: list[EvidenceSentence]
    similarity: float
    overlap: float
    numbers_ok: bool
    supported: bool
    names_ok: bool = True
    negation_ok: bool = True
    narrower: SupportCheck | None = None  # one sentence of a two-sentence window that is as good alone

    @property
    def facts_ok(self) -> bool:
        """Every number and name of the sentence is in the window, and a negation is matched."""
        return self.numbers_ok and self.names_ok and self.negation_ok

    @property
    def strength(self) -> float:
        return self.similarity + self.overlap


@dataclass
class CheckedSentence:
    text: str  # without citation markers
    line: int  # which line of the answer it was on (bullets stay bullets)
    prefix: str  # list marker of that line, if the sentence started it
    cited: list[int]  # what the model cited (valid numbers only)
    dropped: list[int]  # cited numbers that point at no packed post
    citations: list[int] = field(default_factory=list)  # after verification (packed numbering)
    status: Status = "unsupported"
    checks: dict[int, SupportCheck] = field(default_factory=dict)
    model_text: str = ""  # what the model wrote, when ``text`` was replaced by the evidence's own words


@dataclass
class Verification:
    text: str  # the verified answer, citations renumbered 1..n
    citations: list[Citation]
    sentences: list[CheckedSentence]
    removed: list[str]  # unsupported sentences removed (or marked)
    dropped_numbers: list[int]  # out-of-range citation numbers
    abstained: bool  # nothing supported remains (or the model said it doesn't know)
    model_abstained: bool = False
    cited_posts: dict[int, str] = field(default_factory=dict)  # new number -> doc_id


def parse_answer(text: str, valid: set[int]) -> list[CheckedSentence]:
    """Sentences of an answer with their citation numbers (markers after the full stop move before it)."""
    normalized = _MARKERS_AFTER_STOP_RE.sub(lambda m: f"{m.group(2)}{m.group(1)}", text)
    out: list[CheckedSentence] = []
    for line_number, line in enumerate(normalized.splitlines()):
        prefix_match = _LIST_PREFIX_RE.match(line)
        prefix = prefix_match.group(1) if prefix_match else ""
        body = line[len(prefix) :]
        for i, sentence in enumerate(split_sentences(body)):
            numbers_cited: list[int] = []
            for m in _MARKER_RE.finditer(sentence.text):
                for part in re.split(r"[,;]", m.group(1) or m.group(2)):
                    numbers_cited.append(int(part))
            clean = _MARKER_RE.sub("", sentence.text).strip()
            clean = re.sub(r"\s+([.!?,;:])", r"\1", clean)
            if not clean or not re.search(r"\w", clean):
                if out and numbers_cited:  # a lone "[2]" line: it belongs to the sentence before
                    out[-1].cited += [n for n in numbers_cited if n in valid and n not in out[-1].cited]
                    out[-1].dropped += [n for n in numbers_cited if n not in valid]
                continue
            unique = list(dict.fromkeys(numbers_cited))
            out.append(
                CheckedSentence(
                    text=clean,
                    line=line_number,
                    prefix=prefix if i == 0 else "",
                    cited=[n for n in unique if n in valid],
                    dropped=[n for n in unique if n not in valid],
                )
            )
    return out


def _windows(post: PackedPost) -> list[list[EvidenceSentence]]:
    windows: list[list[EvidenceSentence]] = []
    for run in post.passages():
        windows.extend([s] for s in run)
        windows.extend([a, b] for a, b in zip(run, run[1:], strict=False))
    return windows


def _window_vector(window: list[EvidenceSentence]) -> np.ndarray:
    vector = np.mean([s.embedding for s in window], axis=0)
    return vector / max(float(np.linalg.norm(vector)), 1e-12)


class Verifier:
    """Checks answer sentences against packed evidence with the shared embedder (see module doc)."""

    def __init__(self, settings: Settings, embedder):
        self.settings = settings
        self.embedder = embedder

    def check(self, sentence: str, vector: np.ndarray, post: PackedPost, question: str = "") -> SupportCheck:
        claims = set(content_terms(sentence))
        claimed_numbers = numbers(sentence) - numbers(question)
        claimed_names = names(sentence) - names(question)
        negates = is_negated(sentence)
        context = f"{post.chunk.title} {post.chunk.author} {post.chunk.event} {_event_aliases(post.chunk.event)}"
        context_terms = set(content_terms(context))
        context_numbers = numbers(context)
        best: SupportCheck | None = None
        singles: list[SupportCheck] = []
        for window in _windows(post):
            window_text = " ".join(s.text for s in window)
            similarity = float(np.dot(_window_vector(window), vector))
            terms = set(content_terms(window_text)) | context_terms
            overlap = len(claims & terms) / len(claims) if claims else 0.0
            numbers_ok = claimed_numbers <= (numbers(window_text) | context_numbers)
            names_ok = claimed_names <= terms
            negation_ok = not negates or is_negated(window_text)
            # A sentence whose words are (almost) all in the evidence is a restatement of part of it; a
            # long evidence sentence dilutes the embedding of the one clause restated, so less is asked,
            # and nothing when every word is there.
            if overlap >= 1.0:
                needed_similarity = -1.0
            elif overlap >= RESTATEMENT_OVERLAP:
                needed_similarity = self.settings.verify_min_similarity - RESTATEMENT_SIMILARITY_DISCOUNT
            else:
                needed_similarity = self.settings.verify_min_similarity
            supported = (
                similarity >= needed_similarity
                and overlap >= self.settings.verify_min_overlap
                and numbers_ok
                and names_ok
                and negation_ok
            )
            check = SupportCheck(
                post.n, window, similarity, overlap, numbers_ok, supported, names_ok, negation_ok
            )
            if len(window) == 1:
                singles.append(check)
            if best is None or (check.supported, check.strength) > (best.supported, best.strength):
                best = check
        if best is None:
            return SupportCheck(post.n, [], 0.0, 0.0, False, False)
        if len(best.sentences) > 1:
            alone = [
                c
                for c in singles
                if c.sentences[0] in best.sentences
                and (c.supported, c.facts_ok) >= (best.supported, best.facts_ok)
            ]
            best.narrower = max(alone, key=lambda c: c.strength, default=None)
        return best

    def verify(self, answer_text: str, evidence: Evidence, question: str = "") -> Verification:
        """Check, re-cite, quote or remove each sentence of ``answer_text`` (see the module doc).

        ``question``: the (standalone) question answered; names and numbers it gives may be repeated.
        """
        valid = set(evidence.numbers)
        sentences = parse_answer(answer_text, valid)
        dropped_numbers = sorted({n for s in sentences for n in s.dropped})
        claims = [s for s in sentences if not is_abstention(s.text) and _is_claim(s.text)]
        vectors = self.embedder.embed([s.text for s in claims]) if claims else []
        vector_of = {id(s): v for s, v in zip(claims, vectors, strict=True)}

        for sentence in sentences:
            if is_abstention(sentence.text):
                sentence.status = "abstention"
                continue
            if id(sentence) not in vector_of:
                sentence.status = "connective"
                continue
            vector = vector_of[id(sentence)]
            sentence.checks = {p.n: self.check(sentence.text, vector, p, question) for p in evidence.posts}
            kept = [n for n in sentence.cited if sentence.checks[n].supported]
            supporting = sorted(
                (c for c in sentence.checks.values() if c.supported), key=lambda c: c.strength, reverse=True
            )
            if kept:
                sentence.citations, sentence.status = kept, "supported"
            elif supporting:
                sentence.citations = [supporting[0].n]
                sentence.status = "repointed" if sentence.cited else "added"
            else:
                sentence.status = "unsupported"
            self._quote_if_loose(sentence)

        supported = [s for s in sentences if s.status in SUPPORTED]
        model_abstained = (
            bool(sentences) and not supported and any(s.status == "abstention" for s in sentences)
        )
        removed = [s.text for s in sentences if s.status == "unsupported"]
        if not supported:
            return Verification("", [], sentences, removed, dropped_numbers, True, model_abstained)
        text, citations, cited_posts = self._render(sentences, evidence)
        return Verification(text, citations, sentences, removed, dropped_numbers, False, False, cited_posts)

    def _quote_if_loose(self, sentence: CheckedSentence) -> None:
        """Replace a loose paraphrase, or a close restatement that failed a check, by the window's own text."""
        if sentence.status == "unsupported":
            candidates = [
                c for c in sentence.checks.values() if c.facts_ok and c.similarity >= SNAP_SIMILARITY
            ]
        else:
            best = max((sentence.checks[n] for n in sentence.citations), key=lambda c: c.strength)
            candidates = [best] if best.overlap < self.settings.verify_quote_below_overlap else []
        if not candidates:
            return
        best = max(candidates, key=lambda c: c.strength)
        best = best.narrower or best  # quote one sentence when one says it all
        quote = " ".join(flat(s.text) for s in best.sentences).strip()
        if not quote:
            return
        sentence.model_text, sentence.text = sentence.text, quote
        sentence.citations, sentence.status = [best.n], "quoted"
        sentence.checks[best.n] = best  # the citation's quote is then exactly the quoted text

    def _render(self, sentences: list[CheckedSentence], evidence: Evidence):
        renumber: dict[int, int] = {}
        for s in sentences:
            for n in s.citations:
                renumber.setdefault(n, len(renumber) + 1)
        lines: dict[int, list[str]] = {}
        prefixes: dict[int, str] = {}
        for s in sentences:
            if s.status == "abstention":
                continue
            if s.status == "unsupported" and self.settings.unsupported_sentences == "remove":
                continue
            text = s.text
            if s.status == "unsupported":
                text = f"{UNVERIFIED_MARK} {text}"
            if s.citations:
                markers = "".join(f"[{renumber[n]}]" for n in s.citations)
                stop = re.search(r"[.!?:]+$", text)
                text = f"{text[: stop.start()]} {markers}{stop.group(0)}" if stop else f"{text} {markers}"
            lines.setdefault(s.line, []).append(text)
            if s.prefix:
                prefixes[s.line] = s.prefix
        body = "\n".join(prefixes.get(i, "") + " ".join(parts) for i, parts in sorted(lines.items()))

        citations: list[Citation] = []
        cited_posts: dict[int, str] = {}
        for old, new in renumber.items():
            post = evidence.post(old)
            assert post is not None
            best = max((s.checks[old] for s in sentences if old in s.citations), key=lambda c: c.strength)
            quote, start, end = quote_of(best.sentences)
            citations.append(
                Citation(
                    n=new,
                    source_id=post.doc_id,
                    title=post.chunk.title or post.doc_id,
                    event=post.chunk.event,
                    url_or_path=post.chunk.url_or_path,
                    quote=quote,
                    start=start,
                    end=end,
                    score=round(best.similarity, 4),
                )
            )
            cited_posts[new] = post.doc_id
        return body.strip(), citations, cited_posts


_REGION_ALIASES = {
    "EU": "EU Europe European",
    "NA": "NA North America US USA",
    "China": "China Chinese",
    "India": "India Indian",
    "Japan": "Japan Japanese",
}


def _event_aliases(event: str) -> str:
    """Other names of a post's event ("KubeCon EU 2022" for "... Europe 2022 (Valencia)")."""
    from rag.events import parse_event

    info = parse_event(event)
    return " ".join(p for p in (_REGION_ALIASES.get(info.region, ""), info.city, str(info.year or "")) if p)


def has_claim(text: str) -> bool:
    """Does an answer say anything, or say it doesn't know? ("", "[1]" and "Sure." do neither.)"""
    return any(_is_claim(s.text) or is_abstention(s.text) for s in parse_answer(text, set()))


def _is_claim(sentence: str) -> bool:
    """Anything with a content word, a name or a number claims something; "Sure." and "In short:" don't."""
    return bool(content_terms(sentence) or names(sentence) or numbers(sentence))


def quote_of(window: list[EvidenceSentence]) -> tuple[str, int, int]:
    """The verbatim source text covering the window (one sentence, or two adjacent ones) and its offsets."""
    first, last = window[0], window[-1]
    if first.post is not None:
        return first.post.slice(first.start, last.end), first.start, last.end
    for chunk in (first.chunk, last.chunk):
        if chunk.start <= first.start and last.end <= chunk.end:
            return chunk.text[first.start - chunk.start : last.end - chunk.start], first.start, last.end
    return first.text, first.start, first.end


def strip_markers(text: str) -> str:
    """The text without its ``[n]`` citation markers (whose numbers are not claims)."""
    return _MARKER_RE.sub("", text)


def split_answer_sentences(text: str) -> list[str]:
    """The sentences of a (verified) answer, markers included: what front ends and eval iterate over."""
    return [s.text for s in split_sentences(text)]


_MULTI_WORD_NAME_RE = re.compile(
    r"(?<![.?!]\s)(?<!^)\b([A-Z][\w'’-]*(?:\s+(?:[A-Z][\w'’-]*|of|the|de|van|von)){0,3}\s+[A-Z][\w'’-]*)"
)


def names_not_in(topic: str, chunks) -> list[str]:
    """Multi-word names the question depends on ("Tim Hockin", "CNCF End User Award") that none of the
    retrieved chunks mentions, in its text, title, section, author or event.

    "What did Tim Hockin say in his keynote?" over posts that never name him has no grounded answer,
    however on-topic the posts are: a model asked anyway attributes what they do say to him. The
    assistant abstains on these before calling the model. Single capitalised words are not checked (a
    question's "GA" or "Besides" is not a premise); ``topic`` is the question without its event words,
    which retrieval filters on and posts rarely repeat.
    """
    wanted = [match.group(1).strip(" '’") for match in _MULTI_WORD_NAME_RE.finditer(topic)]
    if not wanted:  # most questions: no need to stem the retrieved chunks
        return []
    known: set[str] = set()
    for scored in chunks:
        chunk = getattr(scored, "chunk", scored)
        known.update(
            content_terms(
                f"{chunk.text} {chunk.title} {chunk.section} {chunk.author} {chunk.event} "
                f"{_event_aliases(chunk.event)}"
            )
        )
    return [re.sub(r"['’]s$", "", name) for name in wanted if not set(content_terms(name)) <= known]
