"""Answers read against the posts by a person: the labels, their checks, and the figures they give.

A labels file holds one JSON object a line, one per question answered::

    {"id": "blind-0-why-...", "answer": "<the answer text that was read>",
     "label": "correct" | "partial" | "non-answer" | "wrong" | "false-abstention"      (answerable items)
              | "abstained" | "invented" | "non-answer",                             (unanswerable items)
     "sentences": [{"text": "...", "label": "supported" | "unsupported" | "irrelevant",
                    "defect": "" | "heading-only" | "truncated" | "list-debris" | "markup" | "not-english"}],
     "reader": "who read it", "note": "why, in a few words"}

* **correct**: states what was asked, as the posts say it; **partial**: part of it (one of two posts, two
  of three items); **non-answer**: on topic but not the answer; **wrong**: states something false or not
  what was asked; **false-abstention**: says it doesn't know although a retrieved post holds the answer.
* For questions the posts cannot answer: **abstained** (says so), **invented** (answers with a claim the
  posts do not make), **non-answer** (quotes something unrelated instead of saying it doesn't know).
* Each answer sentence: **supported** (a cited passage states it, and it bears on the question),
  **unsupported** (no passage states it), **irrelevant** (true, but not about what was asked: padding).

These labels, not an automatic scorer, are the figures the answer-quality work is judged by
(``python -m eval labels FILE --gold GOLD``; a run given ``--human-labels FILE`` puts them in its report).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from eval.jsonl import jsonl_lines

ANSWERABLE_LABELS = ("correct", "partial", "non-answer", "wrong", "false-abstention")
UNANSWERABLE_LABELS = ("abstained", "invented", "non-answer")
SENTENCE_LABELS = ("supported", "unsupported", "irrelevant")
DEFECTS = ("", "heading-only", "truncated", "list-debris", "markup", "not-english")


@dataclass(frozen=True)
class SentenceLabel:
    text: str
    label: str
    defect: str = ""


@dataclass(frozen=True)
class AnswerLabel:
    id: str
    answer: str
    label: str
    sentences: tuple[SentenceLabel, ...] = ()
    reader: str = ""
    note: str = ""
    line: int = 0


@dataclass
class LabelSummary:
    """The read figures over one set of gold items (see :func:`summarize`)."""

    answerable: int = 0
    unanswerable: int = 0
    answer_counts: dict[str, int] = field(default_factory=dict)
    unanswerable_counts: dict[str, int] = field(default_factory=dict)
    sentence_counts: dict[str, int] = field(default_factory=dict)
    defects: dict[str, int] = field(default_factory=dict)
    unlabelled: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)  # labels of another answer than the run's

    def rate(self, label: str) -> float | None:
        return self.answer_counts.get(label, 0) / self.answerable if self.answerable else None

    @property
    def sentences(self) -> int:
        return sum(self.sentence_counts.values())

    def sentence_rate(self, label: str) -> float | None:
        return self.sentence_counts.get(label, 0) / self.sentences if self.sentences else None

    def to_dict(self) -> dict:
        share = lambda n, d: round(n / d, 3) if d else None  # noqa: E731
        answered = self.answerable
        return {
            "answerable": answered,
            "unanswerable": self.unanswerable,
            "correct": share(self.answer_counts.get("correct", 0), answered),
            "correct_or_partial": share(
                self.answer_counts.get("correct", 0) + self.answer_counts.get("partial", 0), answered
            ),
            "false_abstention": share(self.answer_counts.get("false-abstention", 0), answered),
            "wrong": share(self.answer_counts.get("wrong", 0), answered),
            "unanswerable_abstained": share(self.unanswerable_counts.get("abstained", 0), self.unanswerable),
            "unanswerable_invented": self.unanswerable_counts.get("invented", 0),
            "sentences": self.sentences,
            "sentences_supported": share(self.sentence_counts.get("supported", 0), self.sentences),
            "sentences_unsupported": share(self.sentence_counts.get("unsupported", 0), self.sentences),
            "sentences_irrelevant": share(self.sentence_counts.get("irrelevant", 0), self.sentences),
            "defects": dict(self.defects),
            "answer_counts": dict(self.answer_counts),
            "unanswerable_counts": dict(self.unanswerable_counts),
            "unlabelled": list(self.unlabelled),
            "stale": list(self.stale),
        }


class LabelFormatError(ValueError):
    def __init__(self, path: Path, problems: list[str]):
        self.problems = problems
        shown = "\n  ".join(problems[:20])
        super().__init__(f"{path}: {len(problems)} problem(s) in the labels:\n  {shown}")


def load_labels(path: Path | str) -> list[AnswerLabel]:
    """Every label of a file; raises :class:`LabelFormatError` listing each bad line."""
    path = Path(path)
    labels: list[AnswerLabel] = []
    problems: list[str] = []
    for line_no, record, error in jsonl_lines(path.read_text(encoding="utf-8")):
        if error is not None:
            problems.append(f"line {line_no}: not valid JSON ({error.msg})")
            continue
        label = record.get("label") if isinstance(record, dict) else None
        if not isinstance(record, dict) or not isinstance(record.get("id"), str):
            problems.append(f"line {line_no}: expected an object with an 'id'")
            continue
        if label not in ANSWERABLE_LABELS + UNANSWERABLE_LABELS:
            problems.append(f"line {line_no} ({record['id']}): unknown label {label!r}")
            continue
        sentences = []
        for i, sentence in enumerate(record.get("sentences") or []):
            if not isinstance(sentence, dict) or sentence.get("label") not in SENTENCE_LABELS:
                problems.append(f"line {line_no} ({record['id']}): sentence {i} needs a label in {SENTENCE_LABELS}")
                continue
            defect = sentence.get("defect") or ""
            if defect not in DEFECTS:
                problems.append(f"line {line_no} ({record['id']}): sentence {i} has unknown defect {defect!r}")
                continue
            sentences.append(SentenceLabel(str(sentence.get("text", "")), sentence["label"], defect))
        labels.append(
            AnswerLabel(
                id=record["id"],
                answer=str(record.get("answer", "")),
                label=label,
                sentences=tuple(sentences),
                reader=str(record.get("reader", "")),
                note=str(record.get("note", "")),
                line=line_no,
            )
        )
    if problems:
        raise LabelFormatError(path, problems)
    return labels


def summarize(
    labels: Iterable[AnswerLabel], items: Sequence, answers: dict[str, str] | None = None
) -> LabelSummary:
    """The read figures over ``items`` (gold items with ``id`` and ``type``).

    ``answers``: the run's answer text by id; a label of a different text is reported as stale (the
    answer changed since it was read) and still counted, so a reader can see what to re-read.
    """
    by_id = {label.id: label for label in labels}
    summary = LabelSummary()
    answer_counts: Counter = Counter()
    unanswerable_counts: Counter = Counter()
    sentence_counts: Counter = Counter()
    defects: Counter = Counter()
    for item in items:
        label = by_id.get(item.id)
        if label is None:
            summary.unlabelled.append(item.id)
            continue
        if answers is not None and " ".join(answers.get(item.id, "").split()) != " ".join(label.answer.split()):
            summary.stale.append(item.id)
        if item.type == "unanswerable":
            summary.unanswerable += 1
            unanswerable_counts[label.label] += 1
        else:
            summary.answerable += 1
            answer_counts[label.label] += 1
        for sentence in label.sentences:
            sentence_counts[sentence.label] += 1
            if sentence.defect:
                defects[sentence.defect] += 1
    summary.answer_counts = dict(answer_counts)
    summary.unanswerable_counts = dict(unanswerable_counts)
    summary.sentence_counts = dict(sentence_counts)
    summary.defects = dict(defects)
    return summary


def render_summary(summary: LabelSummary, title: str = "Answers read against the posts") -> list[str]:
    """Markdown lines for a report."""
    return render_figures(summary.to_dict(), title)


def render_figures(figures: dict, title: str = "Answers read against the posts") -> list[str]:
    """Markdown lines for the figures of :meth:`LabelSummary.to_dict`."""

    def pct(value) -> str:
        return "–" if value is None else f"{100 * value:.0f}%"

    lines = [
        f"## {title}",
        "",
        "| figure | value |",
        "|---|---|",
        f"| answerable questions read | {figures['answerable']} |",
        f"| correct | {pct(figures['correct'])} |",
        f"| correct or partial | {pct(figures['correct_or_partial'])} |",
        f"| wrong | {pct(figures['wrong'])} |",
        f"| false abstention | {pct(figures['false_abstention'])} |",
        f"| unanswerable questions read | {figures['unanswerable']} |",
        f"| unanswerable abstained | {pct(figures['unanswerable_abstained'])} |",
        f"| unanswerable answered with an invented claim | {figures['unanswerable_invented']} |",
        f"| answer sentences read | {figures['sentences']} |",
        f"| sentences supported and on topic | {pct(figures['sentences_supported'])} |",
        f"| sentences unsupported | {pct(figures['sentences_unsupported'])} |",
        f"| sentences true but irrelevant | {pct(figures['sentences_irrelevant'])} |",
        f"| heading-only / truncated / other defects | {', '.join(f'{k} {v}' for k, v in figures['defects'].items()) or 'none'} |",
        "",
        f"Counts: {figures['answer_counts']}; unanswerable {figures['unanswerable_counts']}.",
        "",
        "These labels, read against the posts, are the figures answer quality is judged by: the automatic "
        "grounding score below counts shared words and numbers and passes true words recombined into a "
        "false claim, so it is a regression signal, not the measure.",
    ]
    if figures["unlabelled"]:
        lines.append(f"Not read: {len(figures['unlabelled'])} ({', '.join(figures['unlabelled'][:10])}).")
    if figures["stale"]:
        lines.append(f"Read on an earlier answer (re-read): {', '.join(figures['stale'][:10])}.")
    return lines + [""]


def labelling_sheet(report: dict, system: str = "kqa") -> list[dict]:
    """One record per question of a run's report, ready for a reader to fill in ``label`` and each
    sentence's ``label`` (and ``defect``): the question, the gold answer and posts, the answer, its
    sentences with what each cites, and every citation's quote."""
    from rag.verify import parse_answer

    sheet = []
    for question in report.get("questions", []):
        output = question.get(system) or {}
        answer = output.get("answer", "")
        citations = output.get("citations", [])
        numbers = {c["n"] for c in citations}
        sentences = [] if output.get("abstained") else [
            {"text": s.text, "cites": s.cited, "label": "", "defect": ""} for s in parse_answer(answer, numbers)
        ]
        sheet.append(
            {
                "id": question["id"],
                "type": question["type"],
                "question": question["question"],
                "gold_answer": question.get("gold", {}).get("answer", ""),
                "gold_sources": question.get("gold", {}).get("sources", []),
                "answer": answer,
                "abstained": bool(output.get("abstained")),
                "citations": [{"n": c["n"], "post": c["source_id"], "quote": c["quote"]} for c in citations],
                "label": "",
                "sentences": sentences,
                "reader": "",
                "note": "",
            }
        )
    return sheet
