"""Gold questions: the typed record, loading, and the checks behind ``python -m eval validate FILE``.

A gold file holds one JSON object a line with exactly these keys::

    {"id", "question", "type": "fact"|"list"|"why"|"multi"|"unanswerable", "answer",
     "key_facts": [[alternatives...], ...], "sources": [slugs], "evidence": [verbatim quotes]}

and optionally ``"origin"``: where the item came from (``python -m eval feedback`` records the user's
rating, reason and the answer they were given), kept for people and ignored by every metric.

The schema is strict because every metric leans on it: recall needs gold sources, key-fact recall needs
lowercase alternatives, and a quote that is not in its post would make the gold itself ungrounded.
``load_gold`` checks the shape only (no corpus needed, so a run can fail fast); ``validate_gold`` also
checks the corpus: slugs exist and every quote occurs in its post (whitespace differences allowed).
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TextIO, cast, get_args

from eval.jsonl import jsonl_lines
from eval.metrics import key_fact_hits
from rag.settings import get_settings

QuestionType = Literal["fact", "list", "why", "multi", "unanswerable"]
QUESTION_TYPES: tuple[str, ...] = get_args(QuestionType)
GOLD_KEYS: tuple[str, ...] = ("id", "question", "type", "answer", "key_facts", "sources", "evidence")
OPTIONAL_KEYS: tuple[str, ...] = ("origin",)
UNANSWERABLE = "unanswerable"

EVAL_DIR = Path(__file__).resolve().parent
DEFAULT_GOLD = EVAL_DIR / "gold.jsonl"

_SPACE_RE = re.compile(r"\s+")
_SLUG_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class GoldFormatError(ValueError):
    """A gold file that cannot be used; ``problems`` lists every problem found, each with its line."""

    def __init__(self, path: Path, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        shown = "\n  ".join(problems[:20])
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        super().__init__(f"{path}: {len(problems)} problem(s) in the gold file:\n  {shown}{more}")


@dataclass(frozen=True)
class GoldItem:
    """One gold question. ``key_facts`` is a tuple of facts, each a tuple of acceptable alternatives.

    The one gold record of the eval: loaded from a gold file (``load_gold``), scored against
    (``eval.scoring``) and built from any mapping or object with these fields (``coerce``).
    """

    id: str
    question: str
    type: QuestionType
    answer: str
    key_facts: tuple[tuple[str, ...], ...]
    sources: tuple[str, ...]
    evidence: tuple[str, ...]
    line: int = 0  # where it came from, for messages; not part of the JSON record

    @classmethod
    def coerce(cls, item: Any) -> GoldItem:
        """A ``GoldItem`` from a gold record (a dict) or any object with the gold fields."""
        if isinstance(item, cls):
            return item

        def get(name: str, default=None):
            return item.get(name, default) if isinstance(item, dict) else getattr(item, name, default)

        return cls(
            id=str(get("id")),
            question=str(get("question")),
            type=cast(QuestionType, str(get("type"))),
            answer=str(get("answer", "") or ""),
            key_facts=tuple(tuple(str(a) for a in alts) for alts in get("key_facts", []) or []),
            sources=tuple(str(s) for s in get("sources", []) or []),
            evidence=tuple(str(e) for e in get("evidence", []) or []),
            line=int(get("line", 0) or 0),
        )

    @property
    def answerable(self) -> bool:
        return self.type != UNANSWERABLE

    def to_dict(self) -> dict[str, Any]:
        """The JSON record (lists, not tuples), key order as in the gold file."""
        return {
            "id": self.id,
            "question": self.question,
            "type": self.type,
            "answer": self.answer,
            "key_facts": [list(alternatives) for alternatives in self.key_facts],
            "sources": list(self.sources),
            "evidence": list(self.evidence),
        }


# --- shape checks (no corpus needed) -------------------------------------------------------------------


def _is_str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def record_problems(record: Any) -> list[str]:
    """Everything wrong with one parsed record's shape, as messages without a location prefix."""
    if not isinstance(record, dict):
        return [f"expected a JSON object, got {type(record).__name__}"]
    problems = _key_problems(record)
    key_facts = _key_facts_of(record, problems)
    sources, evidence = _sources_of(record, problems)
    problems += _type_problems(record.get("type"), key_facts, sources, evidence)
    problems += _answer_problems(record.get("answer"), key_facts)
    return problems


def _key_problems(record: dict) -> list[str]:
    """Missing and unexpected keys, and the plain fields: ``origin``, the strings, ``type``."""
    problems: list[str] = []
    missing = [k for k in GOLD_KEYS if k not in record]
    extra = sorted(k for k in record if k not in GOLD_KEYS + OPTIONAL_KEYS)
    if missing:
        problems.append(f"missing key(s): {', '.join(missing)}")
    if extra:
        problems.append(
            f"unexpected key(s): {', '.join(extra)} (allowed: {', '.join(GOLD_KEYS + OPTIONAL_KEYS)})"
        )
    if "origin" in record and not isinstance(record["origin"], dict):
        problems.append("'origin' must be an object (where the item came from)")

    for key in ("id", "question", "answer"):
        if key in record and (not isinstance(record[key], str) or not record[key].strip()):
            problems.append(f"{key!r} must be a non-empty string")
    qtype = record.get("type")
    if "type" in record and qtype not in QUESTION_TYPES:
        problems.append(f"'type' is {qtype!r}; must be one of {', '.join(QUESTION_TYPES)}")
    return problems


def _key_facts_of(record: dict, problems: list[str]) -> Any:
    """``key_facts`` as recorded (``None`` when it is not a list), adding its problems to ``problems``."""
    key_facts = record.get("key_facts")
    if "key_facts" not in record:
        return key_facts
    if not isinstance(key_facts, list):
        problems.append("'key_facts' must be a list of lists of strings")
        return None
    for i, fact in enumerate(key_facts):
        if not _is_str_list(fact) or not fact:
            problems.append(f"key_facts[{i}] must be a non-empty list of strings")
            continue
        for alt in fact:
            if not alt.strip():
                problems.append(f"key_facts[{i}] has an empty alternative")
            elif alt != alt.lower():
                problems.append(f"key_facts[{i}] alternative {alt!r} is not lowercase")
            elif alt != alt.strip():
                problems.append(f"key_facts[{i}] alternative {alt!r} has surrounding whitespace")
    return key_facts


def _sources_of(record: dict, problems: list[str]) -> tuple[Any, Any]:
    """``sources`` and ``evidence`` as recorded (each ``None`` when not a list of strings), adding their
    problems to ``problems``."""
    sources = record.get("sources")
    evidence = record.get("evidence")
    if "sources" in record and not _is_str_list(sources):
        problems.append("'sources' must be a list of article slugs (strings)")
        sources = None
    if "evidence" in record and not _is_str_list(evidence):
        problems.append("'evidence' must be a list of quotes (strings)")
        evidence = None
    if sources is not None:
        for slug in sources:
            if not _SLUG_RE.match(slug) or slug.endswith(".md"):
                problems.append(
                    f"source {slug!r} is not an article slug (a file stem such as 'seed-kubecon-...')"
                )
        duplicated = sorted(s for s, n in Counter(sources).items() if n > 1)
        if duplicated:
            problems.append(f"source(s) listed twice: {', '.join(duplicated)}")
    if evidence is not None:
        for i, quote in enumerate(evidence):
            if not quote.strip():
                problems.append(f"evidence[{i}] is empty")
    if sources is not None and evidence is not None and len(sources) != len(evidence):
        problems.append(
            f"{len(sources)} source(s) but {len(evidence)} evidence quote(s): give one quote per source, same order"
        )
    return sources, evidence


def _type_problems(qtype: Any, key_facts: Any, sources: Any, evidence: Any) -> list[str]:
    """What the question type demands: nothing to find for an unanswerable item, something otherwise."""
    problems: list[str] = []
    if qtype == UNANSWERABLE:
        for key, value in (("sources", sources), ("evidence", evidence), ("key_facts", key_facts)):
            if value:
                problems.append(f"an unanswerable item must have empty {key!r}")
    elif qtype in QUESTION_TYPES:
        if sources is not None and not sources:
            problems.append(f"a {qtype!r} item needs at least one source (recall is undefined without one)")
        if key_facts is not None and not key_facts:
            problems.append(f"a {qtype!r} item needs at least one key fact (key-fact recall is undefined)")
        if qtype == "multi" and sources is not None and 0 < len(sources) < 2:
            problems.append("a 'multi' item needs two or more sources")
    return problems


def _answer_problems(answer: Any, key_facts: Any) -> list[str]:
    """Key facts the gold answer itself does not contain."""
    problems: list[str] = []
    if isinstance(answer, str) and isinstance(key_facts, list) and all(_is_str_list(f) for f in key_facts):
        for i, (fact, hit) in enumerate(zip(key_facts, key_fact_hits(answer, key_facts), strict=True)):
            if fact and not hit:
                problems.append(f"the gold answer does not contain key_facts[{i}] ({' / '.join(fact)})")
    return problems


def _item_from_record(record: dict[str, Any], line: int) -> GoldItem:
    return GoldItem(
        id=record["id"],
        question=record["question"],
        type=cast(QuestionType, record["type"]),
        answer=record["answer"],
        key_facts=tuple(tuple(fact) for fact in record["key_facts"]),
        sources=tuple(record["sources"]),
        evidence=tuple(record["evidence"]),
        line=line,
    )


def _parse(path: Path) -> tuple[list[GoldItem], list[str]]:
    """Items that passed the shape checks, and every problem found (prefixed ``file:line``)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return [], [f"{path}: no such gold file"]
    except (OSError, UnicodeDecodeError) as exc:
        return [], [f"{path}: cannot read the gold file ({exc})"]

    items: list[GoldItem] = []
    problems: list[str] = []
    first_line_of: dict[str, int] = {}
    for line_no, record, error in jsonl_lines(text):
        where = f"{path}:{line_no}"
        if error is not None:
            problems.append(f"{where}: not valid JSON ({error.msg} at column {error.colno})")
            continue
        if isinstance(record, dict) and isinstance(record.get("id"), str):
            where += f" (id {record['id']!r})"
        found = record_problems(record)
        problems.extend(f"{where}: {p}" for p in found)
        if isinstance(record, dict) and isinstance(record.get("id"), str):
            item_id = record["id"]
            if item_id in first_line_of:
                problems.append(f"{where}: duplicate id, first used on line {first_line_of[item_id]}")
            else:
                first_line_of[item_id] = line_no
        if not found:
            items.append(_item_from_record(record, line_no))
    if not first_line_of and not problems:
        problems.append(f"{path}: holds no gold items")
    return items, problems


def load_gold(path: Path | str = DEFAULT_GOLD) -> list[GoldItem]:
    """The gold items of a file, in file order; raises ``GoldFormatError`` listing every shape problem."""
    items, problems = _parse(Path(path))
    if problems:
        raise GoldFormatError(Path(path), problems)
    return items


# --- corpus checks --------------------------------------------------------------------------------------


def _collapse(text: str) -> str:
    return _SPACE_RE.sub(" ", text).strip()


def article_context(text: str) -> str:
    """What a citation shows beside its quote: the post's title, event and author (from front matter)."""
    import yaml

    body = article_body(text)
    if body is text:
        return ""
    try:
        meta = yaml.safe_load(text[3 : len(text) - len(body)].rstrip().removesuffix("---"))
    except yaml.YAMLError:
        return ""
    if not isinstance(meta, dict):
        return ""
    return ". ".join(str(meta[k]).strip() for k in ("title", "event", "author") if meta.get(k))


def article_body(text: str) -> str:
    """The post without its YAML front matter (quotes must come from the body, not the metadata)."""
    if text.startswith("---"):
        lines = text.splitlines(keepends=True)
        for i in range(1, len(lines)):
            if lines[i].rstrip("\r\n") == "---":
                return "".join(lines[i + 1 :])
    return text


class _Corpus:
    """Reads each article once; quote lookups compare whitespace-collapsed text."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._bodies: dict[str, str | None] = {}

    def body(self, slug: str) -> str | None:
        if slug not in self._bodies:
            path = self.directory / f"{slug}.md"
            try:
                self._bodies[slug] = _collapse(article_body(path.read_text(encoding="utf-8")))
            except (OSError, UnicodeDecodeError):
                self._bodies[slug] = None
        return self._bodies[slug]


def corpus_problems(items: Iterable[GoldItem], corpus_dir: Path) -> list[str]:
    """Unknown slugs and quotes that do not occur in their post, each with its ``line (id)``."""
    corpus = _Corpus(Path(corpus_dir))
    problems: list[str] = []
    for item in items:
        where = f"line {item.line} (id {item.id!r})"
        for i, (slug, quote) in enumerate(zip(item.sources, item.evidence, strict=True)):
            body = corpus.body(slug)
            if body is None:
                problems.append(
                    f"{where}: source {slug!r} has no article {Path(corpus_dir) / (slug + '.md')}"
                )
            elif _collapse(quote) not in body:
                short = quote if len(quote) <= 80 else quote[:77] + "..."
                problems.append(f"{where}: evidence[{i}] does not occur verbatim in {slug}.md: {short!r}")
    return problems


def default_corpus() -> Path:
    """The corpus a run or a validation uses unless told otherwise: the settings' ``data_dir`` (the
    repository's ``data/``, or ``KQA_DATA_DIR``). The gold sets cite the shared corpus, which is never
    copied into the repository: pass it explicitly (``--corpus ../shared/corpus/articles``)."""
    return get_settings().data_dir


def validate_gold(path: Path | str = DEFAULT_GOLD, corpus_dir: Path | str | None = None) -> list[str]:
    """Every problem with a gold file: JSON, schema, duplicate ids, unknown slugs, quotes not in their post.

    An empty list means the file is usable. Corpus checks run on the items whose shape is valid.
    ``corpus_dir`` defaults to :func:`default_corpus`.
    """
    path, corpus_dir = Path(path), Path(corpus_dir or default_corpus())
    items, problems = _parse(path)
    if not corpus_dir.is_dir():
        problems.append(f"{corpus_dir}: corpus directory not found (pass the folder of <slug>.md articles)")
        return problems
    problems.extend(f"{path}:{p.removeprefix('line ')}" for p in corpus_problems(items, corpus_dir))
    return problems


# --- summary / command line -----------------------------------------------------------------------------


def type_counts(items: Iterable[GoldItem]) -> dict[str, int]:
    """Items per question type, in the canonical type order (types with no items included as 0)."""
    counts = Counter(item.type for item in items)
    return {qtype: counts.get(qtype, 0) for qtype in QUESTION_TYPES}


def iter_sources(items: Iterable[GoldItem]) -> Iterator[str]:
    for item in items:
        yield from item.sources


def run_validate(path: Path | str, corpus_dir: Path | str | None = None, out: TextIO | None = None) -> int:
    """What ``python -m eval validate FILE`` prints; returns the exit status (0 valid, 1 problems)."""
    out = out or sys.stdout
    problems = validate_gold(path, corpus_dir)
    if problems:
        for problem in problems:
            print(problem, file=out)
        print(f"{path}: INVALID, {len(problems)} problem(s)", file=out)
        return 1
    items = load_gold(path)
    counts = ", ".join(f"{qtype} {n}" for qtype, n in type_counts(items).items())
    posts = len(set(iter_sources(items)))
    print(f"{path}: OK, {len(items)} items ({counts}); {posts} distinct source posts", file=out)
    return 0
