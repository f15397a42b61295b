"""From a 👎 in the web chat to a gold item: the real chat service over the seed store records the
rating, ``python -m eval feedback`` makes the candidate, a person completes it, ``validate`` accepts it."""

from __future__ import annotations

import json
import subprocess
import sys

from eval.feedback import candidates
from tests.support.webapp import REPO


def run_eval_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "eval", *args], cwd=REPO, capture_output=True, text=True, timeout=300
    )


def test_a_thumbs_down_becomes_a_gold_item_once_a_person_completes_it(seed_settings, seed_data_dir, tmp_path):
    from rag.assistant import Assistant
    from webchat.chat import ChatService

    settings = seed_settings.model_copy(update={"llm_backend": "extractive", "feedback_path": tmp_path / "fb.jsonl"})
    service = ChatService(Assistant(settings=settings), settings)
    *_, (_, turns, answer) = service.respond("What did Datadog say about Cilium at KubeCon EU 2022?", [], [])
    service.record_feedback(turns, 0, "down", "wrong citation: the post says more than this")
    service.record_feedback(turns, 0, "down", "incomplete")  # the same question rated twice: one candidate
    *_, (_, more, _) = service.respond("What were the three big takeaways from KubeCon Detroit 2022?", [], [])
    service.record_feedback(more, 0, "up", "")  # a 👍 is no candidate

    done = run_eval_cli("feedback", str(settings.feedback_file), "--out", str(tmp_path / "candidates.jsonl"))
    assert done.returncode == 0, done.stderr
    (candidate,) = [json.loads(line) for line in (tmp_path / "candidates.jsonl").read_text().splitlines()]
    assert candidate["question"] == answer["question"] and candidate["type"] == "fact"
    assert candidate["origin"]["ratings"] == 2
    assert candidate["origin"]["reasons"] == ["wrong citation: the post says more than this", "incomplete"]
    assert candidate["origin"]["answer_given"] == answer["text"]
    assert candidate["sources"] == list(dict.fromkeys(c["source_id"] for c in answer["citations"]))

    raw = run_eval_cli("validate", str(tmp_path / "candidates.jsonl"), "--corpus", str(seed_data_dir))
    assert raw.returncode != 0 and "'answer' must be a non-empty string" in raw.stdout + raw.stderr

    post = "seed-kubecon-valencia-2022-datadog-highlights"
    candidate |= {
        "answer": "Laurent Bernaille shared Datadog's experience adopting Cilium in the Maintainer track.",
        "key_facts": [["cilium"]],
        "sources": [post],
        "evidence": ["Laurent Bernaille shared our experience adopting Cilium in the Maintainer track"],
    }
    (tmp_path / "completed.jsonl").write_text(json.dumps(candidate) + "\n")
    checked = run_eval_cli("validate", str(tmp_path / "completed.jsonl"), "--corpus", str(seed_data_dir))
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_a_user_who_wanted_i_dont_know_gets_an_unanswerable_candidate():
    record = {
        "rating": "down", "question": "Who won the hackathon?", "comment": "It should have said it doesn't know",
        "answer": "Team Blue won [1].", "citations": [{"n": 1, "source_id": "post-a", "quote": "Team Blue met."}],
    }  # fmt: skip
    (candidate,) = candidates([record])
    assert candidate["type"] == "unanswerable" and candidate["sources"] == [] and candidate["evidence"] == []
    assert candidate["origin"]["cited"] == [{"n": 1, "post": "post-a", "quote": "Team Blue met."}]


def test_the_web_chats_reason_codes_become_the_candidates_reasons():
    """The web chat's rating menu records codes; "should have said I don't know" makes it unanswerable."""
    record = {
        "rating": "down", "question": "Who won the hackathon?", "reasons": ["should_abstain"], "comment": "",
        "answer": "Team Blue won [1].", "citations": [{"n": 1, "source_id": "post-a", "quote": "Team Blue met."}],
    }  # fmt: skip
    (candidate,) = candidates([record])
    assert candidate["type"] == "unanswerable"
    assert candidate["origin"]["reasons"] == ["should have said it doesn't know"]
    record = {**record, "question": "What did the keynote say?", "reasons": ["incomplete", "wrong_citation"],
              "comment": "the second half is missing"}  # fmt: skip
    (candidate,) = candidates([record])
    assert candidate["type"] == "fact" and candidate["sources"] == ["post-a"]
    assert candidate["origin"]["reasons"] == ["incomplete; wrong citation; the second half is missing"]
