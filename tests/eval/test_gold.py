"""The gold question set: the committed file is valid against the shared corpus, and every check of
``validate_gold`` fires (with its line number) on small broken files."""

from __future__ import annotations

import io
import json
from collections import Counter
from pathlib import Path

import pytest

from eval.gold import (
    DEFAULT_GOLD,
    GOLD_KEYS,
    GoldFormatError,
    GoldItem,
    article_body,
    load_gold,
    run_validate,
    type_counts,
    validate_gold,
)

LABELS = Path(__file__).resolve().parents[2] / "eval" / "grounding_labels.jsonl"

POST_A = """---
title: "Post A"
event: "KubeCon + CloudNativeCon Europe 2022 (Valencia)"
secret: "only in the front matter"
---

# Post A

KubeCon EU was in Valencia this year. About 7000 people
attended in person, and the keynotes were packed.
"""

POST_B = """---
title: "Post B"
---

Detroit had over 6,000 attendees according to one estimate.
"""


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    directory = tmp_path / "articles"
    directory.mkdir()
    (directory / "post-a.md").write_text(POST_A, encoding="utf-8")
    (directory / "post-b.md").write_text(POST_B, encoding="utf-8")
    return directory


def good_record(**changes) -> dict:
    record = {
        "id": "q1",
        "question": "Where was KubeCon EU 2022?",
        "type": "fact",
        "answer": "In Valencia, with about 7000 people in person.",
        "key_facts": [["valencia"], ["7000", "7,000"]],
        "sources": ["post-a"],
        "evidence": ["KubeCon EU was in Valencia this year."],
    }
    record.update(changes)
    return record


def write_gold(tmp_path: Path, *rows, name: str = "gold.jsonl") -> Path:
    path = tmp_path / name
    lines = [row if isinstance(row, str) else json.dumps(row, ensure_ascii=False) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def problems_for(tmp_path: Path, corpus: Path, *rows) -> list[str]:
    return validate_gold(write_gold(tmp_path, *rows), corpus)


def assert_one_problem(problems: list[str], fragment: str, line: int = 1) -> None:
    matching = [p for p in problems if fragment in p]
    assert matching, f"no problem mentions {fragment!r}: {problems}"
    assert all(f"gold.jsonl:{line}" in p for p in matching), matching


# --- the committed gold set -------------------------------------------------------------------------------


def test_committed_gold_set_validates_against_the_shared_corpus(shared_corpus_dir):
    assert validate_gold(DEFAULT_GOLD, shared_corpus_dir) == []


def test_committed_gold_set_has_the_required_mix():
    items = load_gold(DEFAULT_GOLD)
    counts = type_counts(items)
    assert len(items) >= 70
    assert counts["fact"] >= 40
    assert counts["why"] >= 10
    assert counts["multi"] >= 8
    assert counts["unanswerable"] >= 10
    assert all(len(item.sources) >= 2 for item in items if item.type == "multi")
    sources = {slug for item in items for slug in item.sources}
    assert len(sources) >= 40, "questions should spread over many posts"
    assert {
        "seed-kubecon-detroit-2022-three-takeaways",
        "seed-kubecon-valencia-2022-datadog-highlights",
    } <= sources
    years = {year for item in items for year in range(2017, 2027) if str(year) in item.question}
    assert years == set(range(2017, 2027)), (
        f"questions should name events from every year, got {sorted(years)}"
    )


def test_committed_gold_questions_do_not_copy_their_evidence():
    for item in load_gold(DEFAULT_GOLD):
        for quote in item.evidence:
            assert quote.lower() not in item.question.lower(), (
                f"{item.id} copies its evidence into the question"
            )


# --- loading ------------------------------------------------------------------------------------------------


def test_load_gold_returns_typed_items_in_file_order(tmp_path):
    unanswerable = good_record(
        id="q2", type="unanswerable", answer="The recaps do not say.", key_facts=[], sources=[], evidence=[]
    )
    path = write_gold(tmp_path, good_record(), "", unanswerable)
    items = load_gold(path)
    assert [item.id for item in items] == ["q1", "q2"]
    first = items[0]
    assert isinstance(first, GoldItem)
    assert first.key_facts == (("valencia",), ("7000", "7,000"))
    assert first.sources == ("post-a",) and first.answerable and first.line == 1
    assert not items[1].answerable and items[1].line == 3
    assert first.to_dict() == good_record()
    assert list(first.to_dict()) == list(GOLD_KEYS)


def test_load_gold_needs_no_corpus_but_rejects_bad_shapes_with_every_problem(tmp_path):
    path = write_gold(tmp_path, good_record(type="opinion"), "{broken", good_record(id="q1"))
    with pytest.raises(GoldFormatError) as info:
        load_gold(path)
    problems = info.value.problems
    assert any("gold.jsonl:1" in p and "'type' is 'opinion'" in p for p in problems)
    assert any("gold.jsonl:2" in p and "not valid JSON" in p for p in problems)
    assert any("gold.jsonl:3" in p and "duplicate id" in p for p in problems)
    assert "3 problem(s)" in str(info.value)


def test_article_body_drops_the_front_matter():
    body = article_body(POST_A)
    assert "only in the front matter" not in body
    assert body.lstrip().startswith("# Post A")
    assert article_body("no front matter here") == "no front matter here"


# --- every validation check ---------------------------------------------------------------------------------


def test_a_good_file_has_no_problems(tmp_path, corpus):
    multi = good_record(
        id="q2",
        type="multi",
        question="How many attended Valencia and Detroit?",
        answer="About 7000 in Valencia and over 6,000 in Detroit.",
        key_facts=[["7000"], ["6,000", "6000"]],
        sources=["post-a", "post-b"],
        evidence=["About 7000 people attended in person", "Detroit had over 6,000 attendees"],
    )
    assert problems_for(tmp_path, corpus, good_record(), multi) == []


def test_quotes_may_differ_from_the_post_only_in_whitespace(tmp_path, corpus):
    spanning = good_record(evidence=["About   7000 people\tattended in person,  and the keynotes"])
    assert problems_for(tmp_path, corpus, spanning) == []
    changed = good_record(evidence=["About 7,000 people attended in person"])
    assert_one_problem(
        problems_for(tmp_path, corpus, changed), "evidence[0] does not occur verbatim in post-a.md"
    )


def test_invalid_json_is_reported_with_its_line(tmp_path, corpus):
    problems = problems_for(tmp_path, corpus, good_record(), '{"id": "q2", "question": ')
    assert_one_problem(problems, "not valid JSON", line=2)


def test_a_line_that_is_not_an_object(tmp_path, corpus):
    assert_one_problem(problems_for(tmp_path, corpus, "[1, 2]"), "expected a JSON object, got list")


def test_missing_and_unexpected_keys(tmp_path, corpus):
    record = good_record(label="extra")
    del record["evidence"]
    problems = problems_for(tmp_path, corpus, record)
    assert_one_problem(problems, "missing key(s): evidence")
    assert_one_problem(problems, "unexpected key(s): label")


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"id": 7}, "'id' must be a non-empty string"),
        ({"question": ""}, "'question' must be a non-empty string"),
        ({"answer": None}, "'answer' must be a non-empty string"),
        ({"type": "opinion"}, "'type' is 'opinion'; must be one of fact, list, why, multi, unanswerable"),
        ({"key_facts": "valencia"}, "'key_facts' must be a list of lists of strings"),
        ({"key_facts": [["valencia"], "7000"]}, "key_facts[1] must be a non-empty list of strings"),
        ({"key_facts": [["valencia"], []]}, "key_facts[1] must be a non-empty list of strings"),
        ({"key_facts": [["Valencia"]]}, "alternative 'Valencia' is not lowercase"),
        ({"key_facts": [[" valencia"]]}, "has surrounding whitespace"),
        ({"key_facts": [["valencia", ""]]}, "key_facts[0] has an empty alternative"),
        ({"sources": "post-a"}, "'sources' must be a list of article slugs"),
        ({"sources": ["post-a.md"]}, "is not an article slug"),
        ({"evidence": [3]}, "'evidence' must be a list of quotes"),
        ({"evidence": ["  "]}, "evidence[0] is empty"),
        (
            {"evidence": ["KubeCon EU was in Valencia this year.", "About 7000"]},
            "1 source(s) but 2 evidence quote(s)",
        ),
        ({"sources": [], "evidence": []}, "a 'fact' item needs at least one source"),
        ({"key_facts": []}, "a 'fact' item needs at least one key fact"),
        ({"type": "multi"}, "a 'multi' item needs two or more sources"),
        (
            {"key_facts": [["valencia"], ["barcelona"]]},
            "the gold answer does not contain key_facts[1] (barcelona)",
        ),
    ],
)
def test_shape_problems(tmp_path, corpus, changes, fragment):
    assert_one_problem(problems_for(tmp_path, corpus, good_record(**changes)), fragment)


def test_a_source_listed_twice(tmp_path, corpus):
    record = good_record(type="multi", sources=["post-a", "post-a"], evidence=["Valencia", "Valencia"])
    assert_one_problem(problems_for(tmp_path, corpus, record), "source(s) listed twice: post-a")


@pytest.mark.parametrize("key", ["sources", "evidence", "key_facts"])
def test_unanswerable_items_carry_no_sources_evidence_or_key_facts(tmp_path, corpus, key):
    record = good_record(
        type="unanswerable", answer="The recaps do not say.", key_facts=[], sources=[], evidence=[]
    )
    record[key] = {"sources": ["post-a"], "evidence": ["Valencia"], "key_facts": [["say"]]}[key]
    assert_one_problem(
        problems_for(tmp_path, corpus, record), f"an unanswerable item must have empty '{key}'"
    )


def test_unknown_slug(tmp_path, corpus):
    problems = problems_for(tmp_path, corpus, good_record(sources=["no-such-post"]))
    assert_one_problem(problems, "source 'no-such-post' has no article")


def test_quote_only_in_the_front_matter_does_not_count(tmp_path, corpus):
    problems = problems_for(tmp_path, corpus, good_record(evidence=["only in the front matter"]))
    assert_one_problem(problems, "evidence[0] does not occur verbatim in post-a.md")


def test_quote_from_the_wrong_post(tmp_path, corpus):
    record = good_record(
        type="multi",
        sources=["post-a", "post-b"],
        evidence=["Detroit had over 6,000 attendees", "KubeCon EU was in Valencia"],
    )
    problems = problems_for(tmp_path, corpus, record)
    assert_one_problem(problems, "evidence[0] does not occur verbatim in post-a.md")
    assert_one_problem(problems, "evidence[1] does not occur verbatim in post-b.md")


def test_duplicate_ids_point_at_the_first_use(tmp_path, corpus):
    problems = problems_for(tmp_path, corpus, good_record(), good_record(id="q2"), good_record())
    assert_one_problem(problems, "duplicate id, first used on line 1", line=3)


def test_problems_carry_the_line_and_id(tmp_path, corpus):
    problems = problems_for(tmp_path, corpus, good_record(), good_record(id="q2", sources=["nope"]))
    assert problems == [
        f"{tmp_path / 'gold.jsonl'}:2 (id 'q2'): source 'nope' has no article {corpus / 'nope.md'}"
    ]


def test_empty_and_missing_files(tmp_path, corpus):
    empty = write_gold(tmp_path, "", name="empty.jsonl")
    assert validate_gold(empty, corpus) == [f"{empty}: holds no gold items"]
    missing = tmp_path / "missing.jsonl"
    assert validate_gold(missing, corpus) == [f"{missing}: no such gold file"]


def test_missing_corpus_directory(tmp_path):
    problems = validate_gold(write_gold(tmp_path, good_record()), tmp_path / "nowhere")
    assert problems == [
        f"{tmp_path / 'nowhere'}: corpus directory not found (pass the folder of <slug>.md articles)"
    ]


def test_another_gold_file_in_the_same_format_validates(tmp_path, corpus):
    """The checks are about the format, not our file: a different, smaller gold file passes too."""
    why = good_record(
        id="w1",
        type="why",
        question="Why were the keynotes full?",
        answer="About 7000 people came.",
        key_facts=[["7000"]],
        evidence=["About 7000 people"],
    )
    path = write_gold(tmp_path, why, name="subset.jsonl")
    assert validate_gold(path, corpus) == []
    assert type_counts(load_gold(path)) == {"fact": 0, "list": 0, "why": 1, "multi": 0, "unanswerable": 0}


# --- the validate command -----------------------------------------------------------------------------------


def test_run_validate_summarises_a_valid_file(tmp_path, corpus):
    out = io.StringIO()
    assert run_validate(write_gold(tmp_path, good_record()), corpus, out=out) == 0
    assert "OK, 1 items (fact 1, list 0, why 0, multi 0, unanswerable 0); 1 distinct source posts" in out.getvalue()


def test_run_validate_lists_problems_and_fails(tmp_path, corpus):
    out = io.StringIO()
    assert run_validate(write_gold(tmp_path, good_record(type="opinion"), "nope"), corpus, out=out) == 1
    text = out.getvalue()
    assert "gold.jsonl:1" in text and "gold.jsonl:2" in text and "INVALID, 2 problem(s)" in text


# --- the grounding calibration labels -----------------------------------------------------------------------


def _labels() -> list[dict]:
    return [json.loads(line) for line in LABELS.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_grounding_labels_are_well_formed_and_balanced():
    labels = _labels()
    assert len(labels) >= 60
    for label in labels:
        assert {"sentence", "evidence", "supported", "note"} <= set(label) <= {
            "sentence", "evidence", "supported", "note", "context"
        }  # fmt: skip
        assert isinstance(label.get("context", ""), str)
        assert isinstance(label["sentence"], str) and label["sentence"].strip()
        assert isinstance(label["supported"], bool)
        assert isinstance(label["note"], str) and label["note"].strip()
        evidence = [label["evidence"]] if isinstance(label["evidence"], str) else label["evidence"]
        assert evidence and all(isinstance(q, str) and q.strip() for q in evidence)
    counts = Counter(label["supported"] for label in labels)
    assert min(counts[True], counts[False]) >= 25, counts


def test_grounding_label_passages_are_real_corpus_text(shared_corpus_dir):
    bodies = [article_body(p.read_text(encoding="utf-8")) for p in shared_corpus_dir.glob("*.md")]
    for label in _labels():
        evidence = [label["evidence"]] if isinstance(label["evidence"], str) else label["evidence"]
        for quote in evidence:
            assert any(quote in body for body in bodies), f"not in the corpus: {quote[:60]!r}"
