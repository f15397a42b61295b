"""Scoring whole answers (scoring.score_output / summarize / check_targets) and rendering the report."""

from __future__ import annotations

import json

import pytest

from eval.contracts import CitedEvidence, GoldItem, SystemOutput
from eval.report import (
    compare_reports,
    format_comparison,
    load_report,
    render_markdown,
    worst_failures,
    write_report,
)
from eval.runner import eval_settings, select_items
from eval.scoring import build_report, score_output
from rag.settings import Settings

FACT = GoldItem(
    id="q-fact",
    question="What did the keynotes focus on at KubeCon Valencia 2022?",
    type="fact",
    answer="Platform engineering and supply chain security.",
    key_facts=[["platform engineering"], ["supply chain"]],
    sources=["valencia-post"],
    evidence=["The keynotes focused on platform engineering"],
)
NONE = GoldItem(
    id="q-none",
    question="How much did a KubeCon Valencia ticket cost?",
    type="unanswerable",
    answer="The recaps do not say.",
    key_facts=[],
    sources=[],
    evidence=[],
)


def good_answer(evidence: str) -> SystemOutput:
    return SystemOutput(
        answer="The keynotes focused on platform engineering [1]. They covered the software supply chain with Sigstore [1].",
        ranked_sources=["valencia-post", "other"],
        citations=[CitedEvidence(1, "valencia-post", evidence)],
        timings={"retrieve": 0.05, "generate": 1.5, "total": 1.6},
        prompt_tokens=700,
    )


def test_a_good_answer_scores_full_marks(scorer, evidence):
    record = score_output(FACT, good_answer(evidence), scorer)
    m = record["metrics"]
    assert m["recall@1"] == 1.0 and m["mrr@10"] == 1.0
    assert m["grounding"] == 1.0 and m["n_sentences"] == 2
    assert m["citation_precision"] == 1.0 and m["citation_recall"] == 1.0
    assert m["key_fact_recall"] == 1.0 and m["abstained"] is False
    assert record["failures"] == [] and record["failure_score"] == 0
    assert [(s["supported"], s["quote_supported"]) for s in record["sentences"]] == [
        (True, True),
        (True, True),
    ]


def test_a_wrong_citation_counts_against_precision_but_not_when_its_quote_supports(scorer, evidence):
    output = SystemOutput(
        answer="The keynotes focused on platform engineering [1]. Parties were held near the beach [2].",
        ranked_sources=["other", "valencia-post"],
        citations=[
            CitedEvidence(1, "elsewhere", evidence),  # not a gold post, but its quote supports the sentence
            CitedEvidence(2, "party-post", "The conference had a keynote about observability."),
        ],
    )
    record = score_output(FACT, output, scorer)
    m = record["metrics"]
    assert m["n_citations"] == 2 and m["n_correct_citations"] == 1
    assert m["citation_recall"] == 0.0  # the gold post was never cited
    assert m["grounding"] == 0.5
    assert m["recall@1"] == 0.0 and m["recall@3"] == 1.0 and m["mrr@10"] == 0.5
    assert m["key_fact_recall"] == 0.5
    assert any("wrong citation" in f for f in record["failures"])


def test_abstaining_on_an_answerable_item_is_a_false_abstention(scorer):
    output = SystemOutput(answer="I couldn't find that in the recaps.", ranked_sources=["x"], abstained=True)
    record = score_output(FACT, output, scorer)
    assert record["metrics"]["key_fact_recall"] == 0.0
    assert record["metrics"]["citation_recall"] == 0.0
    assert record["metrics"]["grounding"] is None  # no claims made
    assert "abstained on an answerable question" in record["failures"]


def test_unanswerable_items_score_abstention_from_flag_or_words(scorer, evidence):
    flagged = score_output(NONE, SystemOutput(answer="Closest posts: A, B.", abstained=True), scorer)
    worded = score_output(NONE, SystemOutput(answer="I don't know based on the context."), scorer)
    answered = score_output(
        NONE,
        SystemOutput(answer="Tickets cost $1,000 [1].", citations=[CitedEvidence(1, "p", evidence)]),
        scorer,
    )
    assert flagged["metrics"]["abstained"] and worded["metrics"]["abstained"]
    assert not answered["metrics"]["abstained"]
    assert "answered an unanswerable question" in answered["failures"]
    assert "recall@5" not in answered["metrics"]  # no gold sources, no retrieval metrics


def test_retrieval_only_records_hold_only_retrieval(scorer):
    record = score_output(
        FACT, SystemOutput(ranked_sources=["a", "valencia-post"]), scorer, retrieval_only=True
    )
    assert set(record["metrics"]) == {"recall@1", "recall@3", "recall@5", "recall@10", "mrr@10"}


def _report(scorer, outputs_kqa, outputs_base=None) -> dict:
    items = [FACT, NONE]
    records = {"kqa": [score_output(i, o, scorer) for i, o in zip(items, outputs_kqa, strict=True)]}
    if outputs_base:
        records["baseline"] = [score_output(i, o, scorer) for i, o in zip(items, outputs_base, strict=True)]
    meta = {
        "mode": "full",
        "gold": "gold.jsonl",
        "n_items": 2,
        "types": {"fact": 1, "unanswerable": 1},
        "corpus": "corpus",
        "collection": "kqa_eval_x",
        "out_dir": "run",
    }  # fmt: skip
    return build_report(items, records, meta=meta, grounding_scorer={"description": "test", "thresholds": {}})


def test_summary_targets_and_baseline_ratios(scorer, evidence):
    ours = [good_answer(evidence), SystemOutput(answer="I don't know.", abstained=True)]
    theirs = [
        SystemOutput(answer="The keynotes were about platform engineering [1].", ranked_sources=["other", "x", "valencia-post"],
                     citations=[CitedEvidence(1, "other", "Unrelated text about parties.")]),
        SystemOutput(answer="Tickets were cheap [1].", citations=[CitedEvidence(1, "other", "Unrelated text.")]),
    ]  # fmt: skip
    report = _report(scorer, ours, theirs)
    overall = report["systems"]["kqa"]["summary"]["overall"]
    assert overall["abstention_accuracy"] == 1.0 and overall["false_abstention_rate"] == 0.0
    assert report["systems"]["kqa"]["summary"]["by_type"]["fact"]["recall@5"] == 1.0
    assert report["systems"]["kqa"]["latency"]["total"]["p50"] == pytest.approx(1.6)
    base = report["systems"]["baseline"]["summary"]["overall"]
    assert base["abstention_accuracy"] == 0.0 and base["recall@1"] == 0.0
    by_metric = {t["metric"]: t for t in report["targets"]}
    assert by_metric["recall@5"]["met"] and by_metric["recall@5"]["tied_with_baseline"]
    assert not by_metric["recall@5"]["ahead_of_baseline"]
    assert by_metric["abstention_accuracy"]["ahead_of_baseline"]
    assert by_metric["abstention_accuracy"]["baseline"] == 0.0
    assert report["ratios"]["recall@5"] == pytest.approx(1.0)


def test_write_report_files_and_markdown(tmp_path, scorer, evidence):
    report = _report(
        scorer,
        [
            good_answer(evidence),
            SystemOutput(answer="Tickets were $99 [1].", citations=[CitedEvidence(1, "p", evidence)]),
        ],
    )
    written = write_report(report, tmp_path)
    names = {p.name for p in written}
    assert {"report.json", "report.md", "metrics_by_type.png", "latency.png"} <= names
    for png in tmp_path.glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = (tmp_path / "report.md").read_text()
    assert "## Targets" in md and "❌ missed" in md  # abstention accuracy 0.0 misses its target
    assert "## Worst failures" in md and "answered an unanswerable question" in md
    assert "How much did a KubeCon Valencia ticket cost?" in md
    assert (
        json.loads((tmp_path / "report.json").read_text())["systems"]["kqa"]["summary"]["overall"]["n"] == 2
    )
    assert worst_failures(report["questions"], "kqa")[0]["id"] == "q-none"


def test_compare_reports_deltas_and_chart(tmp_path, scorer, evidence):
    before = _report(scorer, [good_answer(evidence), SystemOutput(answer="Tickets were $99 [1].")])
    write_report(before, tmp_path / "before")
    after = _report(scorer, [good_answer(evidence), SystemOutput(answer="I don't know.", abstained=True)])
    after["comparison"] = compare_reports(after, load_report(tmp_path / "before"))
    row = after["comparison"]["systems"]["kqa"]["all"]["abstention_accuracy"]
    assert row == {"previous": 0.0, "current": 1.0, "delta": 1.0}
    assert "abstention_accuracy" in format_comparison(
        after["comparison"]
    ) and "(better)" in format_comparison(after["comparison"])
    written = write_report(after, tmp_path / "after")
    assert "deltas.png" in {p.name for p in written}
    assert "## Changes since the previous run" in render_markdown(after)
    with pytest.raises(FileNotFoundError):
        load_report(tmp_path / "missing")


def test_select_items_and_eval_settings(tmp_path):
    assert [i.id for i in select_items([FACT, NONE], ["q-none"], None)] == ["q-none"]
    assert len(select_items([FACT, NONE], None, 1)) == 1
    with pytest.raises(ValueError, match="nope"):
        select_items([FACT], ["nope"], None)
    base = Settings(home=tmp_path)
    s = eval_settings(base, tmp_path / "corpus")
    assert s.collection.startswith("kqa_eval_") and s.collection != base.collection
    assert s.chroma_dir == tmp_path / "eval" / "chroma"
    served = eval_settings(Settings(home=tmp_path, chroma_url="http://127.0.0.1:8000"), tmp_path)
    assert served.chroma_path is None and served.chroma_url
