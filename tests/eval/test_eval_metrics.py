"""The pure metric functions on hand-made inputs, where the right number is known."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eval.metrics import (
    citation_numbers,
    citation_precision_recall,
    distinct_in_order,
    key_fact_hits,
    key_fact_recall,
    latency_summary,
    looks_like_abstention,
    mean,
    normalize_text,
    percentile,
    recall_at_k,
    reciprocal_rank,
    retrieval_scores,
    strip_markers,
)


def test_recall_counts_distinct_posts_not_chunks():
    ranked = ["a", "a", "a", "b", "c"]  # three chunks of post a, then b, c
    assert recall_at_k(ranked, ["b"], 1) == 0.0
    assert recall_at_k(ranked, ["b"], 2) == 1.0  # b is the second *post*
    assert recall_at_k(ranked, ["b", "c", "z"], 3) == pytest.approx(2 / 3)


def test_recall_and_mrr_need_gold_sources():
    with pytest.raises(ValueError):
        recall_at_k(["a"], [], 1)
    with pytest.raises(ValueError):
        reciprocal_rank(["a"], [])


def test_reciprocal_rank_uses_first_gold_hit_within_k():
    assert reciprocal_rank(["x", "y", "gold"], ["gold"]) == pytest.approx(1 / 3)
    assert reciprocal_rank(["x", "gold2", "gold"], ["gold", "gold2"]) == pytest.approx(1 / 2)
    ranked = [f"p{i}" for i in range(10)] + ["gold"]
    assert reciprocal_rank(ranked, ["gold"], k=10) == 0.0


def test_retrieval_scores_has_every_k():
    scores = retrieval_scores(["a", "b", "c", "d", "e", "f"], ["c", "f"])
    assert scores == {
        "recall@1": 0.0,
        "recall@3": 0.5,
        "recall@5": 0.5,
        "recall@10": 1.0,
        "mrr@10": pytest.approx(1 / 3),
    }


def test_distinct_in_order_drops_repeats_and_blanks():
    assert distinct_in_order(["b", "a", "b", "", "c", "a"]) == ["b", "a", "c"]


def test_key_facts_match_any_alternative_case_and_markers_ignored():
    answer = "The keynote announced **Kubernetes 1.24** [1] and the removal of Dockershim[2]."
    facts = [["1.24", "one twenty-four"], ["dockershim"], ["gateway api"]]
    assert key_fact_hits(answer, facts) == [True, True, False]
    assert key_fact_recall(answer, facts) == pytest.approx(2 / 3)
    assert key_fact_recall(answer, []) is None


def test_key_facts_normalise_quotes_dashes_and_spaces():
    answer = "It’s  a   “platform–engineering”\nthing"
    assert key_fact_hits(answer, [['it\'s a "platform-engineering" thing']]) == [True]


def test_citation_markers_parsed_in_order_without_repeats():
    text = "A [2]. B [1, 3]. C [2][4]. Not a marker: [x] or [1a]."
    assert citation_numbers(text) == [2, 1, 3, 4]
    assert strip_markers("Claim [1][2].") == "Claim ."
    assert normalize_text("Claim [1] HERE") == "claim here"


def test_citation_precision_counts_gold_or_supported():
    counts = citation_precision_recall(["gold1", "other", "other2"], [False, True, False], ["gold1", "gold2"])
    assert counts["n_citations"] == 3
    assert counts["n_correct_citations"] == 2  # gold1 (a gold post) + other (its quote supports)
    assert counts["citation_precision"] == pytest.approx(2 / 3)
    assert counts["citation_recall"] == pytest.approx(1 / 2)


def test_citation_precision_undefined_without_citations():
    counts = citation_precision_recall([], [], ["g"])
    assert counts["citation_precision"] is None
    assert counts["citation_recall"] == 0.0
    with pytest.raises(ValueError):
        citation_precision_recall(["a"], [], ["g"])


@pytest.mark.parametrize(
    "text",
    [
        "I don't know based on the provided context.",
        "I couldn't find anything about that in the recaps.",
        "The recaps do not mention the price of tickets.",
        "There is no information about this in the posts.",
        "This is not covered by the KubeCon recaps I have.",
    ],
)
def test_abstention_phrases(text):
    assert looks_like_abstention(text)


@pytest.mark.parametrize(
    "text",
    [
        "Platform engineering was the main theme of the keynotes [1].",
        "The author knows Kubernetes well and found the talks useful [2].",
        "The talk covered eBPF in depth; no slides were shared afterwards, but a recording exists [1].",
    ],
)
def test_answers_are_not_abstentions(text):
    assert not looks_like_abstention(text)


def test_percentile_matches_numpy_linear_method():
    assert percentile([1, 2, 3, 4], 50) == pytest.approx(2.5)
    assert percentile([10], 95) == 10
    assert percentile([], 50) is None
    assert percentile([0, 10], 95) == pytest.approx(9.5)


def test_mean_skips_none():
    assert mean([1, None, 3]) == 2
    assert mean([None]) is None


def test_latency_summary_per_stage():
    summary = latency_summary([{"retrieve": 0.1, "generate": 1.0}, {"retrieve": 0.3}, {}])
    assert summary["retrieve"]["n"] == 2
    assert summary["retrieve"]["p50"] == pytest.approx(0.2)
    assert summary["generate"]["p95"] == pytest.approx(1.0)


@given(
    ranked=st.lists(st.sampled_from("abcdefghijkl"), max_size=30),
    gold=st.sets(st.sampled_from("abcdefghijkl"), min_size=1, max_size=4),
)
def test_recall_is_monotonic_in_k_and_bounded(ranked, gold):
    values = [recall_at_k(ranked, gold, k) for k in (1, 3, 5, 10)]
    assert all(0.0 <= v <= 1.0 for v in values)
    assert values == sorted(values)
    rr = reciprocal_rank(ranked, gold)
    assert (rr > 0) == (values[-1] > 0)


def test_only_the_opening_sentence_decides_abstention():
    assert not looks_like_abstention("KEDA scales on events [1]. The price was not mentioned.")
    assert looks_like_abstention("The recaps don't say. The closest posts are: A, B.")
