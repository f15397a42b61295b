"""The fixed tune/test split and the read labels: which items are measured, and the figures they give."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eval.__main__ import main
from eval.gold import load_gold
from eval.labels import LabelFormatError, labelling_sheet, load_labels, summarize
from eval.split import item_split, load_split, select_split

EVAL = Path(__file__).resolve().parents[2] / "eval"


def test_the_split_is_fixed_and_covers_every_post_once():
    spec = load_split()
    assert not set(spec["tune"]) & set(spec["test"])
    assert len(spec["tune"]) + len(spec["test"]) == 84
    gold = load_gold(EVAL / "gold.jsonl")
    tune, test = select_split(gold, EVAL / "gold.jsonl", "tune"), select_split(gold, EVAL / "gold.jsonl", "test")
    assert len(tune) + len(test) == len(gold) and tune and test
    for item in tune:  # a tuning item never rests on a test post
        assert all(s in spec["tune"] for s in item.sources)


def test_whole_files_have_their_split():
    blind = load_gold(EVAL / "gold_blind.jsonl")
    assert {item_split(i, EVAL / "gold_blind.jsonl") for i in blind} == {"test"}
    extra = load_gold(EVAL / "gold_tune.jsonl")
    assert {item_split(i, EVAL / "gold_tune.jsonl") for i in extra} == {"tune"}
    with pytest.raises(ValueError, match="split must be one of"):
        select_split(blind, EVAL / "gold_blind.jsonl", "train")


def write(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def gold_items():
    class Item:
        def __init__(self, id, type):
            self.id, self.type = id, type

    return [Item("a", "fact"), Item("b", "why"), Item("c", "unanswerable"), Item("d", "fact")]


def test_read_labels_give_the_figures(tmp_path):
    labels = write(
        tmp_path / "labels.jsonl",
        [
            {"id": "a", "answer": "A [1].", "label": "correct", "sentences": [{"text": "A", "label": "supported"}]},
            {"id": "b", "answer": "B [1]. C [2].", "label": "partial", "sentences": [
                {"text": "B", "label": "supported"}, {"text": "C", "label": "irrelevant", "defect": "heading-only"}]},
            {"id": "c", "answer": "I couldn't find …", "label": "abstained", "sentences": []},
        ],
    )
    summary = summarize(load_labels(labels), gold_items(), answers={"a": "A [1].", "b": "B changed", "c": "I couldn't find …"})
    figures = summary.to_dict()
    assert (figures["answerable"], figures["unanswerable"]) == (2, 1)
    assert figures["correct"] == 0.5 and figures["correct_or_partial"] == 1.0
    assert figures["unanswerable_abstained"] == 1.0 and figures["unanswerable_invented"] == 0
    assert figures["sentences"] == 3 and figures["sentences_irrelevant"] == round(1 / 3, 3)
    assert figures["defects"] == {"heading-only": 1}
    assert figures["unlabelled"] == ["d"] and figures["stale"] == ["b"]  # b's answer changed since it was read


def test_bad_labels_are_a_clear_error(tmp_path):
    bad = write(tmp_path / "bad.jsonl", [{"id": "a", "label": "great"}, {"id": "b", "label": "correct", "sentences": [{"label": "true"}]}])
    with pytest.raises(LabelFormatError) as error:
        load_labels(bad)
    assert len(error.value.problems) == 2 and "unknown label 'great'" in str(error.value)


def test_a_sheet_from_a_run_and_the_labels_command(tmp_path, capsys):
    report = {
        "questions": [
            {"id": "fact-x", "type": "fact", "question": "Q?", "gold": {"answer": "G", "sources": ["p"]},
             "kqa": {"answer": "Cilium won [1]. Istio too [2].", "abstained": False,
                     "citations": [{"n": 1, "source_id": "p", "quote": "Cilium won."}, {"n": 2, "source_id": "p", "quote": "Istio too."}]}},
        ]
    }
    (sheet,) = labelling_sheet(report)
    assert [(s["text"], s["cites"]) for s in sheet["sentences"]] == [("Cilium won.", [1]), ("Istio too.", [2])]
    assert sheet["citations"][1] == {"n": 2, "post": "p", "quote": "Istio too."}
    sheet["label"] = "correct"
    for sentence in sheet["sentences"]:
        sentence["label"] = "supported"
    labels = write(tmp_path / "labels.jsonl", [sheet])
    gold = write(tmp_path / "gold.jsonl", [{"id": "fact-x", "question": "Q?", "type": "fact", "answer": "cilium",
                                             "key_facts": [["cilium"]], "sources": ["p"], "evidence": ["Cilium won."]}])
    assert main(["labels", str(labels), "--gold", str(gold), "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["correct"] == 1.0 and figures["sentences_supported"] == 1.0


def test_the_labels_go_into_a_committed_runs_report(tmp_path, capsys):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(Path(__file__).resolve().parents[2] / "eval" / "results" / "test-extractive", run)
    report = json.loads((run / "report.json").read_text())
    question = next(q for q in report["questions"] if q["type"] == "fact")
    label = {"id": question["id"], "answer": question["kqa"]["answer"], "label": "correct", "sentences": []}
    labels = write(tmp_path / "labels.jsonl", [label, {**label, "id": "not-in-this-run"}])
    gold = Path(__file__).resolve().parents[2] / "eval" / "gold.jsonl"
    assert main(["labels", str(labels), "--gold", str(gold), "--split", "test", "--into", str(run)]) == 0
    assert "0 labels of changed answers" in capsys.readouterr().out
    rewritten = json.loads((run / "report.json").read_text())
    assert rewritten["human_labels"]["correct"] == 1.0 and rewritten["human_labels"]["answerable"] == 1
    assert "## Answers read against the posts" in (run / "report.md").read_text()
