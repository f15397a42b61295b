"""``python -m eval run`` end to end on a two-post corpus: real ingest, real Chroma, both systems, compare."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from eval.__main__ import main
from rag.settings import get_settings

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus" / "articles"
SEEDS = ["seed-kubecon-detroit-2022-three-takeaways", "seed-kubecon-valencia-2022-datadog-highlights"]
GOLD = [
    {
        "id": "cilium",
        "question": "Which Datadog engineer talked about adopting Cilium in the Maintainer track in Valencia?",
        "type": "fact",
        "answer": "Laurent Bernaille shared Datadog's experience adopting Cilium.",
        "key_facts": [["laurent bernaille"], ["cilium"]],
        "sources": ["seed-kubecon-valencia-2022-datadog-highlights"],
        "evidence": ["Laurent Bernaille shared our experience adopting Cilium in the Maintainer track"],
    },
    {
        "id": "trends",
        "question": "What trends stood out at KubeCon Detroit 2022?",
        "type": "fact",
        "answer": "Platform engineering, WebAssembly and security shifting left.",
        "key_facts": [["platform engineering"], ["webassembly", "wasm"]],
        "sources": ["seed-kubecon-detroit-2022-three-takeaways"],
        "evidence": [
            "The convergence of platform engineering, improved security tooling, and emerging technologies"
        ],
    },
    {
        "id": "price",
        "question": "How much did a ticket for KubeCon Paris 2024 cost?",
        "type": "unanswerable",
        "answer": "The recaps do not say.",
        "key_facts": [],
        "sources": [],
        "evidence": [],
    },
]

pytestmark = pytest.mark.skipif(not CORPUS.is_dir(), reason="the shared corpus is not present")


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for slug in SEEDS:
        shutil.copy(CORPUS / f"{slug}.md", corpus / f"{slug}.md")
    gold = tmp_path / "gold.jsonl"
    gold.write_text("".join(json.dumps(item) + "\n" for item in GOLD), encoding="utf-8")
    monkeypatch.setenv("KQA_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("KQA_LLM_BACKEND", "extractive")
    get_settings.cache_clear()
    yield tmp_path, corpus, gold
    get_settings.cache_clear()


def test_run_baseline_then_compare(workspace, capsys):
    tmp_path, corpus, gold = workspace
    first = tmp_path / "run1"
    args = ["run", "--gold", str(gold), "--corpus", str(corpus), "--baseline", "--no-progress"]
    assert main([*args, "--out", str(first)]) == 0
    out = capsys.readouterr().out
    assert "KubeCon Recap QA (n=3)" in out and "LangChain tutorial RAG (baseline) (n=3)" in out
    assert "target recall@5 >= 0.90" in out

    report = json.loads((first / "report.json").read_text())
    ours = report["systems"]["kqa"]["summary"]["overall"]
    assert ours["recall@5"] == 1.0  # two posts: the right one is always in the top 5
    assert ours["errors"] == 0 and report["systems"]["baseline"]["summary"]["overall"]["errors"] == 0
    assert report["meta"]["ingest"]["added"] == 2 and report["meta"]["baseline_index"]["posts"] == 2
    cilium = next(q for q in report["questions"] if q["id"] == "cilium")
    assert "cilium" in cilium["kqa"]["answer"].lower()
    assert cilium["kqa"]["citations"] and cilium["baseline"]["citations"]  # the baseline cites [n] chunks too
    assert {"report.md", "metrics_by_type.png", "latency.png", "side_by_side.png"} <= {
        p.name for p in first.iterdir()
    }
    assert "## Targets" in (first / "report.md").read_text()

    second = tmp_path / "run2"
    assert main([*args, "--out", str(second), "--compare", str(first), "--retrieval-only"]) == 0
    out = capsys.readouterr().out
    assert "Changes since" in out and "recall@5" in out
    again = json.loads((second / "report.json").read_text())
    assert again["meta"]["ingest"]["unchanged"] == 2 and again["meta"]["ingest"]["added"] == 0  # incremental
    assert again["meta"]["baseline_index"]["reused"]
    assert again["comparison"]["systems"]["kqa"]["all"]["recall@5"]["delta"] == 0.0
    assert (second / "deltas.png").exists()
