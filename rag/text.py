"""Text helpers shared by retrieval, packing, verification and the extractive backend.

One tokenizer (lower-case words, English stop words removed, Snowball stems) is used for BM25 and for
the lexical-overlap check of citation verification, so "meshes" in an answer matches "mesh" in a post
in both places. Sentences keep their character offsets, because every citation quote must be an exact
slice of the post's source text.

Sections: words and terms (the tokenizer), facts (numbers, negation, names: what verification compares),
sentences (with offsets), markdown to plain text. The word lists are in :mod:`rag.stopwords`.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from rag.stopwords import NAME_OPENERS, STOP_WORDS  # STOP_WORDS: also imported from here

# --- words and terms ---------------------------------------------------------------------------

_WORD_RE = re.compile(r"[0-9A-Za-z\u00C0-\u024F][0-9A-Za-z\u00C0-\u024F+#.'-]*|[\u3400-\u9fff]+")
_CJK_RE = re.compile(r"[\u3400-\u9fff]")


@lru_cache(maxsize=1)
def _stemmer():
    import Stemmer  # PyStemmer: the Snowball stemmers in C, also what bm25s recommends

    return Stemmer.Stemmer("english")


def fold(text: str) -> str:
    """Lower case without diacritics: "éphémères" meets "ephemeral" and "bêta" meets "beta" in BM25."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def words(text: str) -> list[str]:
    """Lower-case, accent-folded word tokens; keeps in-word dots/dashes ("k8s", "v1.24", "service-mesh")
    then splits them. A run of Chinese characters (no spaces between words) becomes its character
    bigrams, the usual way to index Chinese for BM25; Latin words inside it stand on their own."""
    out: list[str] = []
    for match in _WORD_RE.finditer(fold(text)):
        token = match.group(0)
        if _CJK_RE.match(token):
            out.extend(token[i : i + 2] for i in range(max(1, len(token) - 1)))
            continue
        token = re.sub(r"['’]s$", "", token).strip(".'-")
        if not token:
            continue
        out.append(token)
        if "-" in token or "/" in token:
            out.extend(p for p in re.split(r"[-/]", token) if p)
    return out


def stems(text: str) -> list[str]:
    """Every word's stem, stop words included (for matching "4,300 people" against "how many people")."""
    found = [w for w in words(text) if len(w) > 1]
    return _stemmer().stemWords(found) if found else []


def content_terms(text: str) -> list[str]:
    """Stemmed words that can carry a claim (stop words and single characters dropped)."""
    kept = [w for w in words(text) if w not in STOP_WORDS and len(w) > 1]
    return _stemmer().stemWords(kept) if kept else []


# --- facts: quantities, numbers, negation, names ----------------------------------------------

_NUMBER_RE = re.compile(r"\b\d[\d,.]*(?:[kK]|[mM]|bn)?\b")  # "4k" and "2M" are numbers too
_QUANTITY_RE = re.compile(
    r"\b(?:how (?:many|much|large|big|long)|what (?:percentage|share|number|fraction))\b", re.I
)


def asks_for_quantity(question: str) -> bool:
    """ "How many / how much / what percentage...": only an answer with a number answers it."""
    return bool(_QUANTITY_RE.search(question))


def answer_numbers(text: str, question: str) -> set[str]:
    """Numbers that could answer a "how many": not years, not numbers the question itself contains."""
    return {n for n in numbers(text) - numbers(question) if not re.fullmatch(r"(?:19|20)\d\d", n)}


_NEGATION_RE = re.compile(r"\b(?:not|no|never|none|nobody|nothing|neither|nor|without|cannot)\b|n't\b", re.I)


def is_negated(text: str) -> bool:
    """Does the text say something is *not* so? (A negated claim needs evidence that negates too.)"""
    return bool(_NEGATION_RE.search(text.replace("’", "'")))


def numbers(text: str) -> set[str]:
    """Numbers as written (commas dropped), e.g. {"2022", "10000"}: a cited number must appear in the evidence."""
    return {n.replace(",", "").rstrip(".") for n in _NUMBER_RE.findall(text)}


_NAME_RE = re.compile(r"\b[A-Za-z]*[A-Z][\w.+#-]*")


def names(text: str) -> set[str]:
    """Stems of the capitalised words (names, projects, acronyms) of a sentence: a claim about "Istio" needs
    evidence that says "Istio". The first word counts unless it is an ordinary sentence opener."""
    found: set[str] = set()
    for match in _NAME_RE.finditer(text):
        word = match.group(0).strip(".-")
        lowered = word.lower()
        if not word or lowered in STOP_WORDS or len(word) < 2:
            continue
        at_start = not text[: match.start()].strip(" \"'“‘*-•([")
        if at_start and lowered in NAME_OPENERS:
            continue
        found.update(content_terms(word))
    return found


# --- sentences ---------------------------------------------------------------------------------

# A full stop that ends no sentence: abbreviations, initials, and list numbers ("2. Vendor-neutral…").
_ABBREVIATION_RE = re.compile(
    r"(?:\b(?:e\.g|i\.e|etc|vs|mr|ms|mrs|dr|inc|no|approx|st|fig|cf)|\b[a-z]|^\s*\d{1,2})\.$"
)
_SENTENCE_END_RE = re.compile(
    r"(?<=[.!?])[\"'”’)\]]*\s+(?=[\"'“‘(\[]?[A-Z0-9\u4e00-\u9fff])|(?<=[。！？])[”’」』)]*\s*(?=\S)"
)


@dataclass(frozen=True)
class Sentence:
    """A sentence of a text with its half-open character span ``text[start:end]``."""

    text: str
    start: int
    end: int


_BLOCK_START_RE = re.compile(
    r"^\s*(?:#{1,6}\s|[-*+•]\s|\d+[.)]\s|>|\||```|\(Image:|!\[|[A-Z][\w/&-]*(?: [\w/&-]+){0,2}:\s)"
)  # the last: a "Label: value" line ("Speakers: …", "Sched Link: …") is a statement of its own
_LABEL_LINE_RE = re.compile(r"^\s*[A-Z][\w/&-]*(?: [\w/&-]+){0,2}:\s")


def _blocks(text: str):
    """(start, end) of paragraphs: hard-wrapped lines join, but headings, list items, quotes, tables
    and blank lines start a new block (their lines are separate statements)."""
    start = end = None
    previous_heading = False
    position = 0
    for content in text.split("\n"):
        line_start, line_end = position, position + len(content)
        position = line_end + 1
        if not content.strip():
            if start is not None:
                yield start, end
            start = end = None
            continue
        starts_block = bool(_BLOCK_START_RE.match(content)) or previous_heading
        if start is not None and starts_block:
            yield start, end
            start = None
        if start is None:
            start = line_start
        end = line_end
        previous_heading = content.lstrip().startswith("#") or bool(_LABEL_LINE_RE.match(content))
    if start is not None:
        yield start, end


_BARE_NUMBER_RE = re.compile(r"[\d][\d,.\-–/ ]{0,11}(?:\s*[\[【][\d,\s]+[\]】])*[.!?]?")  # a year, maybe cited


def split_sentences(text: str) -> list[Sentence]:
    """Sentences with offsets. Paragraphs split at .!? (hard-wrapped lines join); headings, list items
    and blank lines always end a sentence."""
    sentences: list[Sentence] = []
    for block_start, block_end in _blocks(text):
        block = text[block_start:block_end]
        if block.lstrip().startswith("#"):  # a heading is one line and one statement ("## 1. Platform …")
            _append(sentences, block, block_start, 0, len(block))
            continue
        cursor = 0
        for end_match in _SENTENCE_END_RE.finditer(block):
            before = block[cursor : end_match.start()].lower()
            if _ABBREVIATION_RE.search(before):
                continue
            if _BARE_NUMBER_RE.fullmatch(block[end_match.end() :].strip()):
                continue  # "Shanghai, China: November 14-15. 2018": the year belongs to the line, not a sentence of its own
            _append(sentences, block, block_start, cursor, end_match.start())
            cursor = end_match.end()
        _append(sentences, block, block_start, cursor, len(block))
    return sentences


def _append(out: list[Sentence], line: str, base: int, start: int, end: int) -> None:
    piece = line[start:end]
    stripped = piece.strip()
    if not stripped or not re.search(r"\w", stripped):
        return
    lead = len(piece) - len(piece.lstrip())
    s = base + start + lead
    out.append(Sentence(stripped, s, s + len(stripped)))


# --- markdown -> plain text for prompts and answers ------------------------------------------------

_IMAGE_RE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
_LINK_RE = re.compile(r"\[([^\]]+)\]\((?:[^()]|\([^)]*\))*\)")
_BARE_URL_RE = re.compile(r"https?://\S+")


def plain(text: str) -> str:
    """Markdown shown to a model or a reader without link targets, emphasis or list/heading markers.

    Only for display and prompts: quotes and offsets always refer to the raw source text.
    """
    out = _IMAGE_RE.sub(r"\1", text)
    out = _LINK_RE.sub(r"\1", out)
    out = _BARE_URL_RE.sub("", out)
    out = re.sub(r"(\*\*|__|`)", "", out)
    out = re.sub(r"(?m)^\s*(?:#{1,6}\s+|[-*+]\s+|\d+[.)]\s+|>\s*)", "", out)
    out = re.sub(r"(?<!\w)[*_](\S[^*_]*?)[*_](?!\w)", r"\1", out)
    return re.sub(r"[ \t]+", " ", out).strip()


def flat(text: str) -> str:
    """:func:`plain` on one line: for a sentence that was hard-wrapped in its post."""
    return " ".join(plain(text).split())
