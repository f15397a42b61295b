"""The deterministic grounding scorer on hand-made sentences and evidence."""

from __future__ import annotations

import json

import pytest

from eval.grounding import (
    GroundingScorer,
    GroundingThresholds,
    SupportFeatures,
    agreement,
    best_passages,
    calibrate,
    citation_units,
    content_stems,
    entities_in,
    evaluate_agreement,
    is_claim,
    is_negated,
    load_labels,
    number_values,
    numbers_in,
    split_sentences,
    strip_notes,
    unwrap,
)


def test_split_sentences_keeps_trailing_markers_and_abbreviations():
    text = "Platform teams were everywhere [1]. Tools, e.g. Backstage, were demoed. [2][3] Last one\n- a bullet [4]"
    assert split_sentences(text) == [
        "Platform teams were everywhere [1].",
        "Tools, e.g. Backstage, were demoed. [2][3]",
        "Last one",
        "a bullet [4]",
    ]


def test_tokenisation_helpers():
    assert numbers_in("About 7,000 people and Kubernetes 1.24 [3].") == {"7000", "1.24"}
    assert content_stems("The services were running [1].") == ["servic", "run"]
    assert entities_in("The CNCF said Valencia hosted KubeCon with eBPF talks.") == {
        "cncf",
        "valencia",
        "ebpf",
    }
    assert entities_in("Security was a theme.") == set()  # a capitalised first word is not a name
    assert not is_claim("Sources: [1] [2]")
    assert is_claim("7,000 [1]")


def test_verbatim_sentence_is_supported(scorer, evidence):
    sentence = "The keynotes focused on platform engineering [1]."
    f = scorer.features(sentence, [evidence])
    assert f.content_coverage == 1.0 and f.number_coverage == 1.0
    assert scorer.supports(sentence, [evidence])


def test_wrong_number_is_unsupported_even_with_full_word_overlap(scorer, evidence):
    sentence = "More than 9,000 people attended in person at KubeCon Valencia 2022 [1]."
    f = scorer.features(sentence, [evidence])
    assert f.number_coverage < 1.0
    assert not scorer.supports(sentence, [evidence])
    assert scorer.supports(sentence.replace("9,000", "7,000"), [evidence])


def test_wrong_place_name_is_unsupported(scorer, evidence):
    sentence = "The CNCF announced in Detroit that more than 7,000 people attended in person [1]."
    assert scorer.features(sentence, [evidence]).entity_coverage < 0.75
    assert not scorer.supports(sentence, [evidence])


def test_unrelated_claim_is_unsupported(scorer, evidence):
    assert not scorer.supports("WebAssembly runtimes replaced containers for most attendees [1].", [evidence])


def test_no_evidence_means_unsupported(scorer):
    f = scorer.features("Platform engineering was the focus [1].", [])
    assert f == SupportFeatures(0.0, 1.0, 1.0, 0.0, 3)
    assert not scorer.supports("Platform engineering was the focus [1].", ["   "])


def test_paraphrase_needs_similarity_when_overlap_is_partial():
    rule = GroundingThresholds(lexical_high=0.9, lexical_low=0.5, similarity=0.6, entity_min=1.0)
    partial = SupportFeatures(
        content_coverage=0.6, number_coverage=1.0, entity_coverage=1.0, similarity=0.7, n_content=5
    )
    assert rule.supports(partial)
    assert not rule.supports(SupportFeatures(0.6, 1.0, 1.0, 0.5, 5))
    assert not rule.supports(SupportFeatures(0.4, 1.0, 1.0, 0.99, 5))
    assert rule.supports(SupportFeatures(0.95, 1.0, 1.0, 0.0, 5))


def test_judge_answer_uses_only_the_quotes_each_sentence_cites(scorer, evidence):
    quotes = {1: [evidence], 2: ["Parties were held every night near the beach."]}
    answer = (
        "The keynotes focused on platform engineering [1]. "
        "Supply chain security with Sigstore was discussed [2]. "
        "Attendance passed 7,000 people.\nSources: [1] [2]"
    )
    judged = scorer.judge_answer(answer, quotes)
    assert [j.supported for j in judged] == [True, False, False]
    assert judged[1].cited == [2]
    assert judged[2].reason == "no citation"
    assert [j.reason for j in scorer.judge_answer("Sigstore was discussed [9].", quotes)] == [
        "cites unknown source"
    ]


def test_minilm_scores_are_identical_across_scorers(evidence):
    """Same input, same number: the headline metric must not move between runs."""
    sentence = "Supply chain security with Sigstore was a keynote topic [1]."
    first = GroundingScorer(thresholds=GroundingThresholds()).features(sentence, [evidence])
    second = GroundingScorer(thresholds=GroundingThresholds()).features(sentence, [evidence])
    assert first == second
    assert 0.3 < first.similarity <= 1.0


def _write_labels(tmp_path, rows) -> object:
    path = tmp_path / "labels.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


def test_load_labels_accepts_string_or_list_evidence(tmp_path):
    path = _write_labels(
        tmp_path,
        [
            {"sentence": "A [1].", "evidence": "A.", "supported": True},
            {"sentence": "B.", "evidence": ["x", "y"], "label": "unsupported", "note": "made up"},
        ],
    )
    labels = load_labels(path)
    assert [label.supported for label in labels] == [True, False]
    assert labels[1].evidence == ["x", "y"] and labels[1].note == "made up"


def test_load_labels_reports_line_of_bad_row(tmp_path):
    path = _write_labels(tmp_path, [{"sentence": "A", "evidence": "A", "supported": True}, {"sentence": "B"}])
    with pytest.raises(ValueError, match=r"labels.jsonl:2"):
        load_labels(path)


def test_agreement_counts():
    stats = agreement([True, True, False, False], [True, False, True, False])
    assert stats["accuracy"] == 0.5
    assert stats["precision_supported"] == 0.5
    assert stats["recall_supported"] == 0.5
    assert agreement([False], [False])["precision_supported"] is None


def test_calibration_separates_hand_labels(tmp_path, evidence, embed):
    supported = [
        "The keynotes focused on platform engineering [1].",
        "More than 7,000 people attended in person [1].",
        "The CNCF announced the attendance at KubeCon Valencia 2022 [1].",
        "Sigstore was part of securing the software supply chain [1].",
    ]
    unsupported = [
        "More than 9,000 people attended in person [1].",
        "The keynotes in Detroit focused on platform engineering [1].",
        "WebAssembly replaced containers for most attendees [1].",
        "Attendees praised the food trucks and the weather [1].",
    ]
    rows = [{"sentence": s, "evidence": evidence, "supported": True} for s in supported]
    rows += [{"sentence": s, "evidence": evidence, "supported": False} for s in unsupported]
    labels = load_labels(_write_labels(tmp_path, rows))
    scorer = GroundingScorer(thresholds=GroundingThresholds(), embed=embed)
    result = calibrate(labels, scorer, folds=4)
    assert result["agreement"]["accuracy"] == 1.0
    assert result["cross_validated"]["n"] == len(labels)
    fitted = GroundingScorer(thresholds=GroundingThresholds(**result["thresholds"]), embed=embed)
    stats = evaluate_agreement(labels, fitted)
    assert stats["accuracy"] == 1.0 and stats["disagreements"] == []


@pytest.mark.parametrize(
    ("text", "values"),
    [
        ("over twelve thousand attendees", {"12000"}),
        ("around 11-12K attendees next year", {"11000", "12000"}),
        ("VMware paid $550 million", {"550000000"}),
        ("$550M deal", {"550000000"}),
        ("a five-year-old startup with twenty-six staff", {"5", "26"}),
        ("one of the talks", set()),  # a lone "one" is not a count
        ("about half of its clusters", {"0.5"}),
        ("Kubernetes v1.27 and 1.27.3", {"1.27", "1.27.3"}),
        ("k3s needs 300MB", {"300"}),
    ],
)
def test_number_values_in_digits_and_words(text, values):
    assert number_values(text) == values


def test_number_written_in_words_matches_digits(scorer):
    evidence = "With over twelve thousand attendees, over 160 sponsors, this was the biggest KubeCon ever."
    assert (
        scorer.features("It had more than 12,000 attendees and 160 sponsors [1].", [evidence]).number_coverage
        == 1.0
    )
    assert (
        scorer.features("It had more than 12,000 attendees and 300 sponsors [1].", [evidence]).number_coverage
        == 0.5
    )


def test_negated_claim_needs_negating_evidence(scorer):
    evidence = "The session was recorded and is on YouTube."
    assert is_negated("It wasn't recorded.") and not is_negated("It was recorded.")
    assert not scorer.features("The session was not recorded [1].", [evidence]).negation_found
    assert not scorer.supports("The session was not recorded [1].", [evidence])
    assert scorer.supports("The session was recorded and is on YouTube [1].", [evidence])


def test_system_notes_are_not_claims(scorer, evidence):
    answer = (
        "The keynotes focused on platform engineering [1].\n\n"
        "(The llamacpp language model was unavailable, so this answer quotes the recaps directly.)\n"
        "(No recap in the index covers KubeCon EU 2031.)"
    )
    assert strip_notes(answer).strip() == "The keynotes focused on platform engineering [1]."
    assert [j.supported for j in scorer.judge_answer(answer, {1: [evidence]})] == [True]
    assert strip_notes("(see [2])") == "(see [2])"  # a cited parenthesis is a claim


def test_stem_prefix_and_region_aliases(scorer):
    evidence = "KubeCon + CloudNativeCon North America 2022 in Detroit drew over 7,000 attendees."
    f = scorer.features("More than 7,000 people attended KubeCon NA 2022 in Detroit [1].", [evidence])
    assert f.entity_coverage == 1.0  # NA = North America
    assert f.content_coverage == pytest.approx(3 / 4)  # attended ~ attendees; "people" is not in the evidence


def test_stored_thresholds_load(tmp_path):
    path = tmp_path / "thresholds.json"
    path.write_text(json.dumps({"thresholds": {"lexical_high": 0.9, "similarity": 0.7, "unknown": 1}}))
    loaded = GroundingThresholds.load(path)
    assert (
        loaded.lexical_high == 0.9
        and loaded.similarity == 0.7
        and loaded.lexical_low == GroundingThresholds().lexical_low
    )
    assert GroundingThresholds.load(tmp_path / "missing.json") == GroundingThresholds()


def test_a_marker_covers_the_text_back_to_the_previous_marker():
    text = "Istio Day opened with Mitch Connors and Faseela K. The hall was packed [1]. It grew [2].\nTail. Sources: [1]"
    assert citation_units(text) == [
        "Istio Day opened with Mitch Connors and Faseela K. The hall was packed [1].",
        "It grew [2].",
        "Tail.",  # a bare "Sources: [1]" line lends its markers to nothing
        "Sources: [1]",
    ]
    assert split_sentences("Loki is not ready yet .. [1]. Next [2].") == [
        "Loki is not ready yet .. [1].",
        "Next [2].",
    ]


def test_hard_wrapped_posts_are_unwrapped_but_lists_stay_apart():
    post = "They used Docker in Docker with\nJenkins for CI.\n\n## Tools\n- Kaniko builds images\n- Skaffold"
    assert unwrap(post).splitlines() == [
        "They used Docker in Docker with Jenkins for CI.",
        "",
        "## Tools",
        "- Kaniko builds images",
        "- Skaffold",
    ]
    assert split_sentences(post, wrapped=True)[0] == "They used Docker in Docker with Jenkins for CI."


def test_sentence_sharing_a_citation_is_judged_against_its_post(scorer):
    post = (
        "Verizon works in a secure environment.\nDocker was not allowed on developer machines, so dev work was"
        " remote.\n\nThey used Docker in Docker with Jenkins for CI, but it was slow."
    )
    answer = "Docker was not allowed on developer machines [1]. They used Docker in Docker with Jenkins for CI [1]."
    quotes = {1: ["Docker was not allowed on developer machines, so dev work was remote."]}
    judged = scorer.judge_answer(answer, quotes, {1: [post]})
    assert [(j.quote_supported, j.supported) for j in judged] == [(True, True), (False, True)]
    assert best_passages("Docker in Docker with Jenkins", post, k=1) == [
        "They used Docker in Docker with Jenkins for CI, but it was slow."
    ]
    quote_only = scorer.judge_answer(answer, quotes)
    assert [j.supported for j in quote_only] == [True, False]
    invented = scorer.judge_answer("They used Podman with GitLab for CI [1].", quotes, {1: [post]})
    assert not invented[0].supported


def test_the_cited_posts_title_and_event_count_as_evidence_beside_the_quote(scorer):
    quote = "> 103 attendees here this week received diversity scholarships!"
    context = "KubeCon 2017 Austin. KubeCon + CloudNativeCon North America 2017 (Austin)"
    sentence = "103 attendees received diversity scholarships at KubeCon Austin 2017 [1]."
    assert not scorer.supports(sentence, [quote])
    assert scorer.supports(sentence, [quote], context)
    assert not scorer.supports(sentence.replace("Austin 2017", "Seattle 2018"), [quote], context)
    assert not scorer.supports("950 attendees received diversity scholarships [1].", [quote], context)
    # the context vouches for where and when, not for what happened there
    assert not scorer.supports("The CNCF announced Kubernetes 1.9 at KubeCon Austin 2017 [1].", [quote], context)
    judged = scorer.judge_answer(sentence, {1: [quote]}, {1: [quote]}, {1: context})
    assert judged[0].supported and judged[0].quote_supported


def test_labels_may_carry_the_citation_context(tmp_path):
    path = tmp_path / "labels.jsonl"
    row = {"sentence": "A [1].", "evidence": "A.", "supported": True, "note": "n", "context": "Title. Event"}
    path.write_text(json.dumps(row) + "\n")
    assert load_labels(path)[0].context == "Title. Event"
