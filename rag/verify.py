"""Verification: every sentence of an answer must be stated by one passage, or it is not said.

Run on every answer (model-written or extractive):

1. Citation markers ``[n]`` (also ``[1, 2]``, ``[1][2]``, ``【1】``) that point at no passage are dropped.
2. Each sentence is compared with every *window* of the evidence: one sentence of a passage, two adjacent
   ones, or a whole outline (a post's headings). A window **states** the sentence when

   * every number and every name (capitalised word: project, company, person) of the sentence is in
     the window or its context (the passage's post title, author, event and heading path): a changed
     count or a swapped project is a different claim;
   * a sentence that negates ("not", "never", "without"…) has a window that negates too;
   * a window that speaks only of another KubeCon event than the question's ("the major question we had
     at the Istio kiosk in Europe", for the kiosk in Chicago) states nothing about the one asked
     (:func:`rag.events.elsewhere`), unless the sentence speaks of that other event too;
   * the words the sentence adds to the question are the window's words: at least
     ``settings.verify_min_overlap`` (0.75) of its content words that the question did not give are in
     the window or its context. This is what catches true words recombined into a false claim: "X
     *won* the award" over a window where X *presented* it has "won" from nowhere. Question words are
     free to repeat, but they count as stated only when the window also covers the question (see
     :mod:`rag.abstention`, which asks that of the answer as a whole);
   * and, unless every word is in the window, embedding similarity (the shared MiniLM) reaches
     ``settings.verify_min_similarity`` (0.45).

3. A sentence the window states keeps the model's words, cited to that window's passage (re-pointed when
   the model cited another). A sentence no window states, but whose names and numbers one window holds
   and which is close to it (similarity ``>= settings.verify_quote_similarity``, 0.55, or
   ``settings.verify_quote_overlap``, half, of its words there), is *replaced by that window's own
   words*: the model drew on the right line and garbled it (a dropped "not", a merged
   clause, a swapped relation), and the post's words say what it meant to (not when its names stand only
   in the section heading: the line under it would drop them). Anything else is removed
   (``unsupported_sentences="remove"``) or kept with an ``[unverified]`` mark.
4. A quote in the first person ("I was awarded…") is attributed: "Adit Modi writes: “I was awarded…”".
   A passage in another language (the French and Chinese recaps) cannot be word-matched against an
   English sentence: there the model's English sentence stands when its names and numbers are the
   passage's and it cites it; the citation shows the original words.
5. Citations are renumbered 1..n in order of appearance. Each is one passage, and its quote is the exact
   span of that passage the cited sentences rest on (an outline's entries are cited one by one), with
   its character offsets in the post's source text.

Sentences without a content word, name or number ("Sure.", "Here is what I found:") are connective:
kept, never cited, never an answer on their own. Whether the verified sentences *answer the question*
is not this module's call: :mod:`rag.abstention` decides that.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Literal

import numpy as np

from rag.citations import MARKERS_AFTER_STOP_RE, MODEL_MARKER_RE, marker_numbers, strip_markers
from rag.citations import cited_numbers as cited_numbers  # re-exported: rag.assistant imports it from here
from rag.events import elsewhere, event_aliases, without_other_events
from rag.evidence import Evidence, EvidenceSentence, Passage
from rag.prompts import is_abstention
from rag.settings import VerificationSettings
from rag.text import STOP_WORDS, content_terms, is_negated, names, numbers, split_sentences
from rag.types import Citation

UNVERIFIED_MARK = "[unverified]"
REPEAT_SHARE = 0.8  # a sentence on the lines an earlier one rests on, with this share of its words said already
_LIST_PREFIX_RE = re.compile(r"^(\s*(?:[-*+•]|\d+[.)])\s+)")
_FIRST_PERSON_RE = re.compile(
    r"\b(?:I|I'm|I've|I'd|I'll|me|my|mine|myself)\b|\b(?:we|our|us|ourselves)\b", re.I
)
_STRICT_FIRST_PERSON_RE = re.compile(r"\b(?:I|I'm|I've|I'd|I'll|me|my|mine|myself)\b")
_ATTRIBUTION_RE = re.compile(r"^[^\n]{1,200}? (?:writes|says)(?: \(in translation\))?: [“\"]")
_GENDER_OF = {
    **dict.fromkeys(["he", "him", "his", "himself"], "he"),
    **dict.fromkeys(["she", "her", "hers", "herself"], "she"),
}
_GENDERED_RE = re.compile(r"\b(?:" + "|".join(_GENDER_OF) + r")\b", re.I)

Status = Literal[
    "supported", "repointed", "added", "quoted", "translated", "unsupported", "connective", "abstention"
]
SUPPORTED: tuple[Status, ...] = ("supported", "repointed", "added", "quoted", "translated")


@dataclass
class Window:
    """One or two adjacent sentences of a passage (or all entries of an outline)."""

    passage: Passage
    sentences: list[EvidenceSentence]
    text: str
    terms: set[str]
    numbers: set[str]
    negated: bool
    vector: np.ndarray
    context_terms: set[str]
    context_numbers: set[str]
    also: list[Window] = field(default_factory=list)  # a window of another passage it is joined with
    heading_terms: set[str] = field(default_factory=set)  # the heading's words that name nothing of the post

    @property
    def n(self) -> int:
        return self.passage.n

    @property
    def english(self) -> bool:
        return is_english(self.text)

    @cached_property  # asked once per answer sentence; the passage does not change
    def passage_genders(self) -> set[str]:
        return genders(" ".join(s.text for s in self.passage.sentences))


@dataclass
class SupportCheck:
    """How well one window states one answer sentence."""

    window: Window
    similarity: float
    overlap: float  # share of the sentence's content words in the window or its context
    novel_overlap: float  # the same, over the words the question did not give
    numbers_ok: bool
    names_ok: bool
    negation_ok: bool
    persons_ok: bool = True  # no "he"/"she" the passage never used (the window's own words have none)
    event_ok: bool = True  # the window is not about another event than the one the sentence is about
    names_in_text: bool = True  # the sentence's names are in the window's words, not only in its heading

    @property
    def n(self) -> int:
        return self.window.n

    @property
    def facts_ok(self) -> bool:
        return self.numbers_ok and self.names_ok and self.negation_ok and self.event_ok

    @property
    def as_said(self) -> bool:
        """The sentence's own words may stand: its facts are the window's and it guessed no one's gender."""
        return self.facts_ok and self.persons_ok

    @property
    def strength(self) -> float:
        return self.similarity + self.overlap + self.novel_overlap

    def states(self, settings: VerificationSettings) -> bool:
        if not self.as_said or self.overlap < settings.verify_min_overlap:
            return False
        return self.overlap >= 1.0 or self.similarity >= settings.verify_min_similarity

    def close(self, settings: VerificationSettings) -> bool:
        """Near enough for the window's own words to stand in for the sentence. Not when the names the
        sentence gives stand only in the window's heading: its words would drop them ("the talk by Ian
        Coldwater, Duffie Cooley…" is the heading "3. Malicious Compliance…, Ian Coldwater, Duffie Cooley…",
        not "There was a bunch of other great talks too" under it)."""
        return self.facts_ok and self.names_in_text and (
            self.similarity >= settings.verify_quote_similarity or self.overlap >= settings.verify_quote_overlap
        )


@dataclass
class CheckedSentence:
    text: str  # without citation markers (after verification: what the answer says)
    line: int  # which line of the answer it was on (bullets stay bullets)
    prefix: str  # list marker of that line, if the sentence started it
    cited: list[int]  # what the model cited (valid numbers only)
    dropped: list[int]  # cited numbers that point at no passage
    status: Status = "unsupported"
    support: SupportCheck | None = None  # the window the sentence rests on (after verification)
    model_text: str = ""  # what the model wrote, when ``text`` is the passage's own words

    @property
    def citations(self) -> list[int]:
        return [self.support.n] if self.support is not None and self.status in SUPPORTED else []


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

    @property
    def supported(self) -> list[CheckedSentence]:
        return [s for s in self.sentences if s.status in SUPPORTED]

    @property
    def windows(self) -> list[Window]:
        """The windows the answer rests on, in answer order."""
        return [s.support.window for s in self.supported if s.support is not None]


def parse_answer(text: str, valid: set[int]) -> list[CheckedSentence]:
    """Sentences of an answer with their citation numbers (markers after the full stop move before it)."""
    normalized = MARKERS_AFTER_STOP_RE.sub(lambda m: f"{m.group(2)}{m.group(1)}", text)
    out: list[CheckedSentence] = []
    for line_number, line in enumerate(normalized.splitlines()):
        prefix_match = _LIST_PREFIX_RE.match(line)
        prefix = prefix_match.group(1) if prefix_match else ""
        body = line[len(prefix) :]
        for i, sentence in enumerate(split_sentences(body)):
            numbers_cited: list[int] = []
            for m in MODEL_MARKER_RE.finditer(sentence.text):
                numbers_cited += marker_numbers(m)
            clean = without_framing(strip_markers(sentence.text).strip())
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


_ENGLISH_HINTS = frozenset(
    ["the", "a", "an", "and", "of", "to", "in", "is", "was", "were", "are", "for", "on", "with", "that", "this", "it", "at", "by", "from", "as", "be", "have", "has", "i", "we", "you", "they", "he", "she", "not", "but", "or"]
)
_FOREIGN_HINTS = frozenset(
    ["le", "la", "les", "des", "du", "une", "et", "est", "sont", "pour", "avec", "dans", "sur", "nous", "vous", "ils", "el", "los", "las", "del", "por", "con", "una", "het", "een", "van", "voor", "niet", "ook", "der", "die", "das", "und", "ist", "nicht", "mit", "auf"]
)


_QUOTED_RE = re.compile(r"“[^”]*”|\"[^\"]*\"|«[^»]*»|\([^)]*\)")


def is_english(text: str) -> bool:
    """Roughly: does this read as English? No CJK, and in a longer text at least a sixth of the words are
    English function words (English prose runs at about two in five; French at under one in ten).

    What is quoted or in brackets is another text's language, not this one's: a French sentence about the
    talk “Why Kubernetes can't get around FinOps” is French, and an English one quoting a French title is
    English (when enough words are left to tell)."""
    if re.search(r"[\u3040-\u30ff\u3400-\u9fff]", text):
        return False
    tokens = re.findall(r"[a-zà-ÿ']+", _QUOTED_RE.sub(" ", text).lower())
    if len(tokens) < 6:
        tokens = re.findall(r"[a-zà-ÿ']+", text.lower())
    if len(tokens) < 6:  # too short to count: foreign only when it has a foreign function word and no English one
        return not (set(tokens) & _FOREIGN_HINTS) or bool(set(tokens) & _ENGLISH_HINTS)
    return sum(t in STOP_WORDS for t in tokens) / len(tokens) >= 1 / 6


def windows_of(evidence: Evidence) -> list[Window]:
    """Every window of the evidence: single sentences, adjacent pairs, and each outline whole."""
    out: list[Window] = []
    for passage in evidence.passages:
        chunk = passage.chunk
        slug = re.sub(r"[-_]+", " ", chunk.doc_id)
        post = f"{chunk.title} {chunk.author} {chunk.event} {event_aliases(chunk.event)} {slug}"
        context_terms, context_numbers = set(content_terms(f"{post} {passage.heading}")), numbers(f"{chunk.title} {chunk.event}")
        heading_terms = set(content_terms(passage.heading)) - set(content_terms(post))
        groups: list[list[EvidenceSentence]]
        if passage.outline:
            groups = [passage.sentences] + [[s] for s in passage.sentences]
        else:
            groups = [[s] for s in passage.sentences]
            groups += [[a, b] for a, b in zip(passage.sentences, passage.sentences[1:], strict=False)]
        for group in groups:
            text = " ".join(s.display for s in group)
            vectors = [s.embedding for s in group if s.embedding is not None]
            vector = np.mean(vectors, axis=0) if vectors else np.zeros(1)
            vector = vector / max(float(np.linalg.norm(vector)), 1e-12)
            out.append(
                Window(
                    passage, group, text, set(content_terms(text)), numbers(text), is_negated(text), vector,
                    context_terms, context_numbers, heading_terms=heading_terms,
                )
            )  # fmt: skip
    return out


class Verifier:
    """Checks answer sentences against the evidence with the shared embedder (see module doc)."""

    def __init__(self, settings: VerificationSettings, embedder):
        self.settings = settings
        self.embedder = embedder

    def check(self, sentence: str, vector: np.ndarray, window: Window, question: str = "") -> SupportCheck:
        claims = set(content_terms(sentence)) - _FRAMING
        given = set(content_terms(question))
        known = window.terms | window.context_terms
        novel = claims - given
        overlap = len(claims & known) / len(claims) if claims else 0.0
        novel_overlap = len(novel & known) / len(novel) if novel else 1.0
        similarity = float(np.dot(window.vector, vector)) if vector.shape == window.vector.shape else 0.0
        said = names(sentence)
        return SupportCheck(
            window,
            similarity,
            overlap,
            novel_overlap,
            numbers_ok=(numbers(sentence) - numbers(question)) <= (window.numbers | window.context_numbers),
            names_ok=(said - names(question)) <= known,
            names_in_text=not ((said - given) & (window.heading_terms - window.terms)),
            persons_ok=genders(sentence) - genders(question) <= window.passage_genders,
            negation_ok=not is_negated(sentence) or window.negated,
            event_ok=self._same_event(sentence, novel, window, question),
        )

    def _same_event(self, sentence: str, novel: set[str], window: Window, question: str) -> bool:
        """Half the words the sentence adds stand in the window outside what it says of another event."""
        if not elsewhere(window.text, question) or elsewhere(sentence, question):
            return True
        kept = set(content_terms(without_other_events(window.text, question))) | window.context_terms
        return not novel or len(novel & kept) / len(novel) >= self.settings.verify_quote_overlap

    def verify(
        self,
        answer_text: str,
        evidence: Evidence,
        question: str = "",
        answers: Callable[[str], bool] | None = None,
    ) -> Verification:
        """Check, re-cite, quote or remove each sentence of ``answer_text`` (see the module doc).

        ``question``: the (standalone) question answered; names and numbers it gives may be repeated.
        ``answers(text)``: does a text hold the kind of thing asked for (a number for "how many")? A
        stated sentence that does not, over a window that does, gives way to the window's words.
        """
        valid = set(evidence.numbers)
        sentences = parse_answer(answer_text, valid)
        dropped_numbers = sorted({n for s in sentences for n in s.dropped})
        claims = [s for s in sentences if not is_abstention(s.text) and is_claim(s.text)]
        vectors = self.embedder.embed([s.text for s in claims]) if claims else []
        vector_of = {id(s): v for s, v in zip(claims, vectors, strict=True)}
        windows = windows_of(evidence)

        for sentence in sentences:
            if is_abstention(sentence.text):
                sentence.status = "abstention"
                continue
            if id(sentence) not in vector_of:
                sentence.status = "connective"
                continue
            self._judge(sentence, vector_of[id(sentence)], windows, question, answers)
        _answers_for_questions(sentences, windows)
        _drop_repeats(sentences)
        _drop_padding(sentences, answers)

        supported = [s for s in sentences if s.status in SUPPORTED]
        model_abstained = (
            bool(sentences) and not supported and any(s.status == "abstention" for s in sentences)
        )
        removed = [s.text for s in sentences if s.status == "unsupported"]
        if not supported:
            return Verification("", [], sentences, removed, dropped_numbers, True, model_abstained)
        text, citations, cited_posts = self._render(sentences)
        return Verification(text, citations, sentences, removed, dropped_numbers, False, False, cited_posts)

    def _judge(
        self,
        sentence: CheckedSentence,
        vector: np.ndarray,
        windows: list[Window],
        question: str,
        answers: Callable[[str], bool] | None = None,
    ) -> None:
        checks = [self.check(sentence.text, vector, w, question) for w in windows]
        if not checks:
            sentence.status = "unsupported"
            return

        def rank(c: SupportCheck):
            return (c.n in sentence.cited, c.strength)

        # A sentence that repeats itself ("a reduction of ~80% in AWS of about ~80%") or speaks in a
        # blogger's first person is not the model's claim to keep: the window's own words replace it.
        # So is a fragment ("Mitch Connors"), and a sentence that only restates the question.
        if dangles(sentence.text):  # "I thought it was notable that" (a list followed): no claim of its own
            sentence.status, sentence.text = "connective", ""
            return
        said = set(content_terms(sentence.text)) - _FRAMING
        restates = restates_question(sentence.text, said, question)
        if restates and sentence.text.rstrip().endswith(":"):  # "The three trends were:" introduces a list
            sentence.status = "connective"
            return
        own_words_only = (
            bool(foreign_markup(sentence.text, windows))  # an obeyed injection's link, tag or script
            or _repeats(sentence.text)
            or bool(_STRICT_FIRST_PERSON_RE.search(sentence.text))
            or len(sentence.text.split()) < self.settings.verify_fragment_words
            or restates
        )
        stating = [] if own_words_only else [c for c in checks if c.states(self.settings)]
        if stating:
            # stated, but without what was asked ("Intuit launched Argo Rollouts" for "how long after…")
            holding = _holding(stating, sentence.text, answers)
            if holding:
                _quote_window(sentence, holding, rank)
                return
        if not stating and len(sentence.cited) >= 2 and not own_words_only:
            union = self._union_check(sentence, vector, windows, question)
            if union is not None:
                sentence.support, sentence.status = union, "supported"
                return
        if stating:
            best = max(stating, key=rank)
            sentence.support = _narrowest(best, stating)
            if best.n in sentence.cited:
                sentence.status = "supported"
            else:
                sentence.status = "repointed" if sentence.cited else "added"
            return
        foreign = [
            c for c in checks
            if not c.window.english and c.n in sentence.cited and c.facts_ok and is_english(sentence.text)
        ]  # fmt: skip
        if foreign:
            sentence.support, sentence.status = max(foreign, key=rank), "translated"
            return
        close = [c for c in checks if c.close(self.settings) and c.window.english]
        if close:
            _quote_window(sentence, _holding(close, sentence.text, answers) or close, rank)
            return
        sentence.status = "unsupported"

    def in_english(self, verification: Verification, translate: Callable[[str], str]) -> Verification:
        """The answer with the passage words it quotes from a non-English post put into English.

        ``translate(text) -> English``; a translation that changes a number or drops a name is not used
        (the original words stay). The citation keeps the post's original words.
        """
        changed = False
        for s in verification.supported:
            window = s.support.window if s.support is not None else None
            if window is None or window.english or is_english(s.text):
                continue
            try:
                english = strip_markers(" ".join(translate(window.text).split())).strip()
            except Exception:  # noqa: BLE001 - a failed translation leaves the post's own words
                continue
            if not english or not is_english(english) or numbers(english) != numbers(window.text):
                continue
            s.model_text, s.text, s.status = s.text, f"(translated) {english}", "translated"
            changed = True
        if not changed:
            return verification
        text, citations, cited_posts = self._render(verification.sentences)
        return replace(verification, text=text, citations=citations, cited_posts=cited_posts)

    def _union_check(
        self, sentence: CheckedSentence, vector: np.ndarray, windows: list[Window], question: str
    ) -> SupportCheck | None:
        """A sentence citing two passages ("from 10,000 in Amsterdam to 12,000 in Paris") may rest on the
        best window of each together; it is then cited to both."""
        best: dict[int, Window] = {}
        for n in sentence.cited[:2]:
            own = [w for w in windows if w.n == n]
            if own:
                best[n] = max(own, key=lambda w: self.check(sentence.text, vector, w, question).strength)
        if len(best) < 2:
            return None
        first, second = best.values()
        merged = replace(
            first,
            text=f"{first.text} {second.text}",
            terms=first.terms | second.terms,
            numbers=first.numbers | second.numbers,
            negated=first.negated or second.negated,
            context_terms=first.context_terms | second.context_terms,
            context_numbers=first.context_numbers | second.context_numbers,
            heading_terms=first.heading_terms | second.heading_terms,
            also=[second],
        )
        check = self.check(sentence.text, vector, merged, question)
        return check if check.as_said and check.overlap >= self.settings.verify_min_overlap else None

    def _render(self, sentences: list[CheckedSentence]):
        """The answer text with citations renumbered in order of appearance: one citation per span of a
        passage that sentences rest on (two sentences on the same line share it)."""
        renumber: dict[tuple[int, int, int], int] = {}  # (passage n, span start, span end) -> new number
        lines: dict[int, list[str]] = {}
        prefixes: dict[int, str] = {}
        citations: list[Citation] = []
        cited_posts: dict[int, str] = {}
        for s in sentences:
            if s.status == "abstention" or (
                s.status == "unsupported" and self.settings.unsupported_sentences == "remove"
            ):
                continue
            if not s.text:
                continue
            text = s.text[:1].upper() + s.text[1:]
            text = text if s.status != "unsupported" else f"{UNVERIFIED_MARK} {text}"
            if s.support is not None and s.status in SUPPORTED:
                text = attributed(text, s.support.window)
                markers = []
                for key, passage, sentences_cited in _citation_keys(s):
                    if key not in renumber:
                        renumber[key] = len(renumber) + 1
                        citation = _citation(renumber[key], passage, sentences_cited)
                        citations.append(citation)
                        cited_posts[citation.n] = citation.source_id
                    markers.append(f"[{renumber[key]}]")
                stop = re.search(r"[.!?:]+[\"”’)]*$", text)
                joined = "".join(markers)
                text = f"{text[: stop.start()]} {joined}{stop.group(0)}" if stop else f"{text} {joined}"
            lines.setdefault(s.line, []).append(text)
            if s.prefix:
                prefixes[s.line] = s.prefix
        body = "\n".join(prefixes.get(i, "") + " ".join(parts) for i, parts in sorted(lines.items()))
        return body.strip(), citations, cited_posts


# Words a sentence may add without a window stating them: they frame a claim, they do not make one.
_FRAMING = frozenset(
    content_terms(
        "according accordingly passage passages excerpt excerpts author authors writes wrote written notes noted "
        "states stated explains explained describes described shares shared reports reported highlights "
        "highlighted discusses discussed"
    )
)
_FRAMING_PREFIX_RE = re.compile(
    r"^(?:(?:based on|according to|from|per|in) (?:the )?(?:recaps?|passages?|posts?|excerpts?|information|"
    r"blog(?: post)?s?|article|context)(?: (?:provided|given|above))?,?\s+|(?:the )?(?:passage|post|recap|excerpt|"
    r"author)s? (?:\[\d+\] )?(?:states?|says?|mentions?|notes?|explains?|writes?|reports?) that\s+)",
    re.I,
)


_LEADING_LABEL_RE = re.compile(r"^\((?:[^()]|\([^()]*\)){3,160}\)\s+(?=\S)")  # "(Section name) Text"


def without_framing(text: str) -> str:
    """A model sentence without its "Based on the recaps," / "The passage states that" opening."""
    stripped = _FRAMING_PREFIX_RE.sub("", _LEADING_LABEL_RE.sub("", text)).strip()
    if stripped != text.strip():
        stripped = re.sub(r'^["“](.*)["”]([.!?]?)$', r"\1\2", stripped)
        stripped = stripped[:1].upper() + stripped[1:]
    return stripped or text


_DANGLING = frozenset(["that", "the", "a", "an", "of", "to", "and", "or", "with", "for", "by", "from", "in", "on", "at", "as", "which", "who", "because", "than", "is", "are", "was", "were"])


def restates_question(text: str, said: set[str], question: str) -> bool:
    """Does a sentence only give the question back: its words the question's, but for at most one, and
    no name or number of its own? ("The speakers donated to the CNCF live on stage on the final keynote
    day" for "What was donated to the CNCF live on stage on the final keynote day?"; "They are also
    using an internal tool (Deckhand)" adds a name, so it answers.)"""
    added = said - set(content_terms(question))
    if not added:
        return True
    new_facts = (names(text) - names(question)) or (numbers(text) - numbers(question))
    return len(added) == 1 and len(said) >= 4 and not new_facts


def dangles(text: str) -> bool:
    """Does a sentence stop mid-thought ("…it was notable that")? Such a line introduced what follows."""
    stripped = text.rstrip()
    if not stripped or stripped[-1] in ".!?:)\"”'’":
        return False
    last = re.findall(r"[A-Za-z']+", stripped)
    return bool(last) and last[-1].lower() in _DANGLING


def _repeats(text: str) -> bool:
    """Does a sentence repeat a run of three words (a small model looping)?"""
    tokens = [t.strip(".,") for t in re.findall(r"[\w~%$.,]+", text.lower()) if t.strip(".,")]
    grams = [tuple(tokens[i : i + 3]) for i in range(len(tokens) - 2)]
    return len(grams) != len(set(grams))


def _narrowest(best: SupportCheck, candidates: list[SupportCheck]) -> SupportCheck:
    """One sentence of a two-sentence window when it is as good alone (the quote then shows just it)."""
    if len(best.window.sentences) <= 1 or best.window.passage.outline:
        return best
    alone = [
        c
        for c in candidates
        if len(c.window.sentences) == 1
        and c.window.sentences[0] in best.window.sentences
        and c.window.passage is best.window.passage
        and (c.facts_ok, c.novel_overlap) >= (best.facts_ok, best.novel_overlap)
    ]
    return max(alone, key=lambda c: c.strength, default=best)


def _citation_keys(
    sentence: CheckedSentence,
) -> list[tuple[tuple[int, int, int], Passage, list[EvidenceSentence]]]:
    """What a sentence cites: the window it rests on (both, when it rests on two passages); an outline
    entry by entry (those the sentence names, else all)."""
    window = sentence.support.window  # type: ignore[union-attr]
    if window.passage.outline:
        said = set(content_terms(sentence.text))
        named = [e for e in window.sentences if set(content_terms(e.display)) & said] or window.sentences
        parts = [(window.passage, [e]) for e in named]
    else:
        parts = [(w.passage, w.sentences) for w in (window, *window.also)]
    return [((p.n, min(x.start for x in used), max(x.end for x in used)), p, used) for p, used in parts]


def _citation(n: int, passage: Passage, used: list[EvidenceSentence]) -> Citation:
    """The exact span of the post that a sentence rests on, with its offsets."""
    first = min(used, key=lambda s: s.start)
    last = max(used, key=lambda s: s.end)
    quote, start, end = quote_of(first, last)
    chunk = passage.chunk
    return Citation(
        n=n,
        source_id=chunk.doc_id,
        title=chunk.title or chunk.doc_id,
        event=chunk.event,
        url_or_path=chunk.url_or_path,
        quote=quote,
        start=start,
        end=end,
        score=round(max((s.score for s in used), default=0.0), 4),
    )


def quote_of(first: EvidenceSentence, last: EvidenceSentence) -> tuple[str, int, int]:
    """The verbatim source text from ``first`` to ``last`` (same post) and its offsets."""
    if first.post is not None:
        return first.post.slice(first.start, last.end), first.start, last.end
    for chunk in (first.chunk, last.chunk):
        if chunk.start <= first.start and last.end <= chunk.end:
            return chunk.text[first.start - chunk.start : last.end - chunk.start], first.start, last.end
    return first.text, first.start, first.end


def quoted(window: Window) -> str:
    """A window's own words as an answer sentence (an outline's entries joined)."""
    if window.passage.outline:
        return "; ".join(s.display.rstrip(" .;:") for s in window.sentences) + "."
    text = window.text.strip().rstrip(":;,")
    text = text[:1].upper() + text[1:]
    return text + "." if text and text[-1] not in ".!?" else text


_MARKUP_RE = re.compile(
    r"(?:https?|ftp|javascript|data|vbscript|file):[^\s)\]>\"'`]+|\bwww\.[^\s)\]>\"'`]+"
    r"|</?[a-zA-Z][^>]*>|!?\[[^\]]*\]\([^)]*\)|&#?\w+;",
    re.I,
)


def foreign_markup(text: str, windows: list[Window]) -> list[str]:
    """The URLs, HTML tags, Markdown links and entities in ``text`` that no window holds verbatim.

    A sentence carrying one is not the model's to keep (a post told it to add a link, a script): the
    window's own words stand in for it, or it goes."""
    found = [m.group(0).rstrip(".,;:!?") for m in _MARKUP_RE.finditer(text)]
    if not found:
        return []
    evidence = " ".join(w.text for w in windows)
    return [item for item in found if item not in evidence]


def genders(text: str) -> set[str]:
    """The persons "he" and "she" a text speaks of: a pronoun the post never used is the model's guess
    ("Laurent shared her experience" from "Laurent shared our experience"), a changed fact like a name."""
    return {_GENDER_OF[m.group(0).lower()] for m in _GENDERED_RE.finditer(text)}


def attributed(text: str, window: Window) -> str:
    """A post's first person in an answer is the blogger's, not the assistant's: "Adit Modi writes: “I …”".

    "We" and "our" count only for posts without an author (a project blog: "we hosted Istio Day"); a
    sentence the model already put in the third person is left alone.
    """
    translated = text.startswith("(translated) ")
    text = text.removeprefix("(translated) ")
    personal = _STRICT_FIRST_PERSON_RE.search(text) or (
        _FIRST_PERSON_RE.search(text) and not window.passage.chunk.author
    )
    if not (personal or translated) or text.startswith(("“", '"')) or _ATTRIBUTION_RE.match(text):
        return text  # a quote, or attributed already (an answer verified a second time)
    chunk = window.passage.chunk
    who = chunk.author.split(",")[0].strip() if chunk.author else f"The post “{chunk.title}”"
    verb = "writes" if chunk.author else "says"
    return f"{who} {verb} (in translation): “{text}”" if translated else f"{who} {verb}: “{text}”"


def _holding(candidates: list[SupportCheck], text: str, answers: Callable[[str], bool] | None) -> list[SupportCheck]:
    """The candidate windows holding what was asked, when the sentence itself does not (else none): the
    words that stand in for it should hold the number, name or reason the question wants."""
    if answers is None or answers(text):
        return []
    return [c for c in candidates if answers(c.window.text)]


def _quote_window(sentence: CheckedSentence, candidates: list[SupportCheck], rank: Callable) -> None:
    """The sentence gives way to the post's own words: the narrowest of the best-ranked windows, quoted."""
    sentence.support = _narrowest(max(candidates, key=rank), candidates)
    sentence.model_text, sentence.text = sentence.text, quoted(sentence.support.window)
    sentence.status = "quoted"


def _answers_for_questions(sentences: list[CheckedSentence], windows: list[Window]) -> None:
    """A question a post asks is not an answer; the line after it is.

    A small model answering "Why is Kubeflow not multicluster-agnostic?" may copy the audience's question
    from the passage ("Can you clarify why…?"). The sentence then becomes the passage's next line (and the
    one after, when both are there), or, with nothing after it, is dropped as connective.
    """
    for s in sentences:
        if s.support is None or s.status not in SUPPORTED or not _asks(s.text):
            continue
        window = s.support.window
        if window.passage.outline:
            continue
        after = _lines_after(window)
        reply = _window_of(windows, window.passage, after) or _window_of(windows, window.passage, after[:1])
        if reply is None:
            s.status, s.text, s.support = "connective", "", None
            continue
        s.support = replace(s.support, window=reply)
        s.model_text = s.model_text or s.text
        s.text, s.status = quoted(reply), "quoted"


_ASKS_RE = re.compile(
    r"^(?:so,? )?(?:what|why|how|when|where|who|whom|which|can|could|is|are|was|were|do|does|did|will|would|should|shall)\b"
    r"|[;:,]\s*(?:what|why|how|when|where|who|which)\b",
    re.I,
)


def _asks(text: str) -> bool:
    """Does a sentence read as a question ("Can you clarify why…?", "The tools exist; how do we…?"), not
    a statement ending in a talk's title ("Lin Sun walked through Is Zero-Downtime Migration Possible?")?"""
    return text.rstrip(" \"”’)").endswith("?") and bool(_ASKS_RE.search(text))


def _window_of(windows: list[Window], passage: Passage, keys: list[tuple[str, int]]) -> Window | None:
    """The window of ``passage`` made of exactly the lines ``keys`` (none for no keys)."""
    if not keys:
        return None
    return next((w for w in windows if w.passage is passage and [x.key for x in w.sentences] == keys), None)


def _lines_after(window: Window) -> list[tuple[str, int]]:
    """The keys of the (up to two) passage lines after a window, stopping at a heading."""
    keys = [x.key for x in window.passage.sentences]
    i = keys.index(window.sentences[-1].key)
    out = []
    for line in window.passage.sentences[i + 1 : i + 3]:
        if line.kind == "heading":
            break
        out.append(line.key)
    return out


def _drop_padding(sentences: list[CheckedSentence], answers: Callable[[str], bool] | None) -> None:
    """When some sentences hold what was asked (a number for "how many", a name for "who"), the others
    are padding: "Attendance at over 30 sessions" after "an estimated 12k attendees" adds no asked-for
    fact. They are dropped (as connective); an answer none of whose sentences holds it is left as it is,
    for abstention to judge."""
    if answers is None:
        return
    supported = [s for s in sentences if s.status in SUPPORTED and s.text]
    holding = {id(s) for s in supported if answers(s.text)}
    if not holding:
        return
    for s in supported:
        if id(s) not in holding:
            s.status, s.text, s.support = "connective", "", None


def _drop_repeats(sentences: list[CheckedSentence]) -> None:
    """A sentence that says nothing new is dropped (as connective): a quote of words the answer already
    rests on, or a sentence resting on the same passage lines as an earlier one whose words it nearly all
    repeats (a small model's "2. The continued influx of newer technologies…" after "1. Newer
    technologies…")."""
    kept: list[tuple[set[tuple[int, int]], set[str]]] = []  # (passage lines, words) of each kept sentence
    for s in sentences:
        if s.support is None or s.status not in SUPPORTED:
            continue
        keys = {(w.n, x.start) for w in (s.support.window, *s.support.window.also) for x in w.sentences}
        terms = set(content_terms(s.text))
        same_lines = [said for earlier, said in kept if keys & earlier]
        if same_lines and (
            s.status == "quoted" or any(terms and len(terms & said) >= REPEAT_SHARE * len(terms) for said in same_lines)
        ):
            s.status, s.text = "connective", ""
            continue
        kept.append((keys, terms))


def has_claim(text: str) -> bool:
    """Does an answer say anything, or say it doesn't know? ("", "[1]" and "Sure." do neither.)"""
    return any(is_claim(s.text) or is_abstention(s.text) for s in parse_answer(text, set()))


def is_claim(sentence: str) -> bool:
    """Anything with a content word, a name or a number claims something; "Sure." and "In short:" don't."""
    return bool(content_terms(sentence) or names(sentence) or numbers(sentence))
