"""``python -m eval``: argument errors are clear and exit 2; validate reports problems and exits 1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eval.__main__ import main

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus" / "articles"


def _gold(tmp_path: Path, **overrides) -> Path:
    record = {
        "id": "q1",
        "question": "Which company shared its experience adopting Cilium?",
        "type": "fact",
        "answer": "Datadog shared its experience adopting Cilium.",
        "key_facts": [["cilium"]],
        "sources": ["seed-kubecon-valencia-2022-datadog-highlights"],
        "evidence": ["Laurent Bernaille shared our experience adopting Cilium in the Maintainer track"],
    }
    record.update(overrides)
    path = tmp_path / "gold.jsonl"
    path.write_text(json.dumps(record) + "\n", encoding="utf-8")
    return path


@pytest.mark.skipif(not CORPUS.is_dir(), reason="shared corpus not present")
def test_validate_ok_and_bad_slug(tmp_path, capsys):
    assert main(["validate", str(_gold(tmp_path)), "--corpus", str(CORPUS)]) == 0
    assert "OK" in capsys.readouterr().out
    bad = _gold(tmp_path, sources=["no-such-post"])
    assert main(["validate", str(bad), "--corpus", str(CORPUS)]) == 1
    assert "no-such-post" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--limit", "0"], "--limit must be at least 1"),
        (["--compare", "nowhere"], "no report.json"),
        (["--corpus", "missing-dir"], "corpus directory"),
    ],
)
def test_run_usage_errors_exit_2(tmp_path, capsys, extra, message):
    code = main(["run", "--gold", str(_gold(tmp_path)), "--out", str(tmp_path / "out"), *extra])
    assert code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_run_missing_gold_exits_2(tmp_path, capsys):
    assert main(["run", "--gold", str(tmp_path / "nope.jsonl")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_calibrate_prints_thresholds_without_writing(tmp_path, capsys, monkeypatch):
    import eval.grounding as grounding

    labels = tmp_path / "labels.jsonl"
    rows = [
        {
            "sentence": "Datadog adopted Cilium.",
            "evidence": "Datadog adopted Cilium in 2022.",
            "supported": True,
        },
        {
            "sentence": "Google adopted Linkerd.",
            "evidence": "Datadog adopted Cilium in 2022.",
            "supported": False,
        },
    ]
    labels.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    target = tmp_path / "thresholds.json"
    monkeypatch.setattr(grounding, "DEFAULT_THRESHOLDS", target)
    assert main(["calibrate", "--labels", str(labels)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["agreement"]["accuracy"] == 1.0
    assert not target.exists()
    assert main(["calibrate", "--labels", str(labels), "--write"]) == 0
    assert json.loads(target.read_text())["thresholds"] == printed["thresholds"]
