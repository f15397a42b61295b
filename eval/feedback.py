"""Users' 👎 turned into candidate gold items: ``python -m eval feedback FEEDBACK.jsonl --out FILE``.

Both front ends append one JSON line per rating (``rag/feedback.py``'s record, written by ``webchat/chat.py`` and ``slackbot/feedback.py``). A
"not helpful" rating with its question, the answer the user was given, the posts it cited and the user's
reason becomes one candidate in the gold format (``eval/gold.py``), with what only a person can supply
left empty: the right ``answer``, its ``key_facts`` and, for each source, the quote that states it. The
cited posts and their quotes are filled in as a starting point; ``type`` is ``unanswerable`` when the
user said the assistant should have said it doesn't know, else ``fact``. ``origin`` keeps the feedback.

A candidate does not pass ``python -m eval validate`` until it is completed; then it joins a gold file
and guards against the failure the user reported. Questions rated down more than once become one
candidate (``origin.ratings`` counts them).
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

from eval.jsonl import jsonl_lines

_SHOULD_ABSTAIN_RE = re.compile(
    r"\b(?:should have said|should say|say) (?:that )?(?:it|you) (?:do(?:es)?n'?t|do not) know\b"
    r"|\bnot in the posts\b|\bno post says\b|\binvented\b|\bmade (?:it|that) up\b",
    re.I,
)

REASON_WORDS = {
    "wrong_citation": "wrong citation",
    "incomplete": "incomplete",
    "should_abstain": "should have said it doesn't know",
}


def read_feedback(path: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """The records of a feedback file, and a problem line for each line that is not a JSON object."""
    records, problems = [], []
    for number, record, error in jsonl_lines(Path(path).read_text(encoding="utf-8")):
        if error is not None:
            problems.append(f"{path}:{number}: not JSON ({error.msg}); skipped")
            continue
        if not isinstance(record, dict):
            problems.append(f"{path}:{number}: not a JSON object; skipped")
            continue
        records.append(record)
    return records, problems


def candidate_id(question: str) -> str:
    words = re.findall(r"[a-z0-9]+", question.lower())[:6]
    digest = hashlib.sha1(question.encode()).hexdigest()[:6]
    return "feedback-" + "-".join(words + [digest])


def candidates(records: list[dict[str, Any]], ratings: tuple[str, ...] = ("down",)) -> list[dict[str, Any]]:
    """One candidate gold item per distinct question rated in ``ratings`` (first rating's answer kept)."""
    out: dict[str, dict[str, Any]] = {}
    for record in records:
        if record.get("rating") not in ratings:
            continue
        question = (record.get("standalone_question") or record.get("question") or "").strip()
        if not question:
            continue
        codes = [str(code) for code in record.get("reasons") or []]  # the web chat's rating reasons
        reason = "; ".join([*(REASON_WORDS.get(c, c) for c in codes), (record.get("comment") or "").strip()]).strip("; ")
        if question in out:
            origin = out[question]["origin"]
            origin["ratings"] += 1
            if reason and reason not in origin["reasons"]:
                origin["reasons"].append(reason)
            continue
        cited = [c for c in record.get("citations") or [] if isinstance(c, dict) and c.get("source_id")]
        posts: dict[str, str] = {}
        for citation in cited:  # one quote per post (the gold format's sources/evidence pairs)
            posts.setdefault(citation["source_id"], citation.get("quote") or "")
        should_abstain = "should_abstain" in codes or bool(_SHOULD_ABSTAIN_RE.search(reason))
        out[question] = {
            "id": candidate_id(question),
            "question": question,
            "type": "unanswerable" if should_abstain else "fact",
            "answer": "",  # TODO: the right answer, as the posts give it
            "key_facts": [],  # TODO: [[alternatives], ...] the answer must contain, lowercase
            "sources": [] if should_abstain else list(posts),  # TODO: check: the posts that hold the answer
            "evidence": [] if should_abstain else list(posts.values()),  # TODO: the line of each that states it
            "origin": {
                "from": "feedback",
                "interface": record.get("interface", "web"),
                "time": record.get("time", ""),
                "rating": record.get("rating"),
                "ratings": 1,
                "reasons": [reason] if reason else [],
                "asked": record.get("question", ""),
                "answer_given": record.get("answer", ""),
                "abstained": bool(record.get("abstained")),
                "cited": [
                    {"n": c.get("n"), "post": c["source_id"], "quote": c.get("quote", "")} for c in cited
                ],
                "backend": record.get("backend", ""),
            },
        }
    return list(out.values())


def write_candidates(rows: list[dict[str, Any]], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
