"""Feedback lines: complete enough to become gold items, safe to write from many sessions at once."""

from __future__ import annotations

import json
import threading
from dataclasses import asdict

import pytest

from rag.feedback import append_feedback, build_record
from rag.settings import Settings
from rag.types import Answer, Citation, Source


def _answer() -> Answer:
    quote = "Platform engineering was the most significant trend."
    return Answer(
        question="What was the main trend?",
        text="Platform engineering [1].",
        citations=[
            Citation(1, "seed-detroit", "Three Big Takeaways", "NA 2022", "data/seed.md", quote, 10, 62)
        ],
        sources=[
            Source(
                "seed-detroit", "Three Big Takeaways", "NA 2022", "data/seed.md", 0.9, 0.7, quote, 2022, True
            )
        ],
        standalone_question="What was the main trend at KubeCon?",
        backend="extractive",
    )


def test_record_holds_question_answer_citations_filters_and_settings(tmp_path):
    settings = Settings(home=tmp_path, openai_api_key="sk-secret-value")
    history = [{"role": "user", "content": "earlier"}, {"role": "assistant", "content": "earlier answer"}]
    record = build_record(
        rating="down",
        comment="  missing the Valencia post ",
        answer=asdict(_answer()),
        history=history,
        filters={"event": None, "year": 2022},
        settings=settings,
    )
    assert record["rating"] == "down" and record["comment"] == "missing the Valencia post"
    assert record["question"] == "What was the main trend?"
    assert record["standalone_question"] == "What was the main trend at KubeCon?"
    assert record["answer"] == "Platform engineering [1]."
    assert record["citations"][0]["quote"].startswith("Platform engineering")
    assert record["citations"][0]["source_id"] == "seed-detroit"
    assert record["history"] == history and record["filters"] == {"event": None, "year": 2022}
    assert record["settings"]["llm_backend"] == settings.llm_backend
    assert "sk-secret-value" not in json.dumps(record)  # never leak the API key


def test_rating_must_be_up_or_down(tmp_path):
    with pytest.raises(ValueError):
        build_record(
            rating="meh",
            comment="",
            answer=_answer(),
            history=[],
            filters={},
            settings=Settings(home=tmp_path),
        )


def test_concurrent_appends_keep_every_line_whole(tmp_path):
    path = tmp_path / "sub" / "feedback.jsonl"
    settings = Settings(home=tmp_path)
    record = build_record(
        rating="up", comment="x" * 5000, answer=_answer(), history=[], filters={}, settings=settings
    )

    def write_many():
        for _ in range(25):
            append_feedback(path, record)

    threads = [threading.Thread(target=write_many) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 200
    assert all(json.loads(line)["comment"] == "x" * 5000 for line in lines)
