"""Citation verification against packed evidence: kept, re-pointed, added, dropped, removed, abstained."""

from __future__ import annotations

import pytest

from rag.verify import UNVERIFIED_MARK, Verifier, names_not_in, parse_answer
from tests.rag.conftest import source_text

VALENCIA, DETROIT, PARIS = "valencia-2022-service-mesh", "detroit-2022-platform", "paris-2024-ai"


@pytest.fixture(scope="module")
def evidence(evidence_for):
    return evidence_for([VALENCIA, DETROIT, PARIS])  # [1] Valencia, [2] Detroit, [3] Paris


@pytest.fixture
def verify(settings_with, embedder, evidence):
    def run(text: str, **settings):
        return Verifier(settings_with(**settings), embedder).verify(text, evidence)

    return run


def test_a_supported_citation_is_kept_with_its_verbatim_quote(verify, fixture_posts_dir):
    result = verify("Cilium presented a sidecarless service mesh built on eBPF [1].")
    assert result.text == "Cilium presented a sidecarless service mesh built on eBPF [1]."
    (citation,) = result.citations
    assert (citation.n, citation.source_id) == (1, VALENCIA)
    assert "Cilium presented a sidecarless service mesh built on eBPF" in citation.quote
    text = source_text(fixture_posts_dir / f"{VALENCIA}.md")
    assert text[citation.start : citation.end] == citation.quote


def test_a_wrong_citation_is_re_pointed_to_the_post_that_supports_it(verify):
    result = verify("Backstage, which Spotify donated to the CNCF, appeared in a dozen talks [1].")
    assert [c.source_id for c in result.citations] == [DETROIT]
    assert result.text.endswith("[1].")
    assert result.sentences[0].status == "repointed"


def test_a_missing_citation_is_added(verify):
    result = verify("Nvidia explained how Dynamic Resource Allocation lets pods share one GPU.")
    assert result.text == "Nvidia explained how Dynamic Resource Allocation lets pods share one GPU [1]."
    assert [c.source_id for c in result.citations] == [PARIS]
    assert result.sentences[0].status == "added"


def test_out_of_range_citations_are_dropped(verify):
    result = verify("The organizers counted about 7,000 people in Detroit [7][2].")
    assert result.dropped_numbers == [7]
    assert result.text == "The organizers counted about 7,000 people in Detroit [1]."
    assert [c.source_id for c in result.citations] == [DETROIT]


def test_citations_are_renumbered_in_order_of_appearance(verify):
    result = verify(
        "Kepler measures the energy use of each pod [3]. Linkerd turns on mutual TLS by default for meshed pods [1]."
    )
    assert result.text == (
        "Kepler measures the energy use of each pod [1]. Linkerd turns on mutual TLS by default for meshed pods [2]."
    )
    assert [(c.n, c.source_id) for c in result.citations] == [(1, PARIS), (2, VALENCIA)]


def test_unsupported_sentences_are_removed(verify):
    result = verify(
        "Platform engineering was the dominant theme in Detroit [2]. "
        "Linkerd was acquired by Microsoft for two billion dollars [1]."
    )
    assert result.text == "Platform engineering was the dominant theme in Detroit [1]."
    assert result.removed == ["Linkerd was acquired by Microsoft for two billion dollars."]


def test_unsupported_sentences_can_be_marked_instead(verify):
    result = verify(
        "Platform engineering was the dominant theme in Detroit [2]. Linkerd was acquired by Microsoft [1].",
        unsupported_sentences="mark",
    )
    assert result.text == (
        f"Platform engineering was the dominant theme in Detroit [1]. {UNVERIFIED_MARK} Linkerd was acquired by Microsoft."
    )


@pytest.mark.parametrize(
    "claim",
    [
        "The organizers counted about 9,000 people in person in Detroit [2].",  # changed number
        "Istio presented a sidecarless service mesh built on eBPF [1].",  # swapped project
        "Backstage, the developer portal that Netflix donated to the CNCF, appeared in many talks [2].",
        "The service mesh track was cancelled because nobody came [1].",  # same topic, different claim
        "Kubernetes 1.24 removed dockershim [1].",  # nothing to do with the evidence
    ],
)
def test_wrong_claims_are_not_supported(verify, claim):
    result = verify(claim)
    assert result.abstained
    assert result.citations == [] and result.text == ""


@pytest.mark.parametrize(
    "paraphrase",
    [
        "Cilium showed a service mesh without sidecars that uses eBPF [1].",
        "Linkerd enables mutual TLS by default for all meshed pods [1].",
        "Spotify donated Backstage, a developer portal, to the CNCF [2].",
        "About 7,000 people attended in person [2].",
    ],
)
def test_faithful_paraphrases_pass_the_thresholds(verify, paraphrase):
    result = verify(paraphrase, verify_quote_below_overlap=0.0)
    assert not result.abstained
    check = result.sentences[0].checks[result.sentences[0].citations[0]]
    assert check.similarity >= 0.55 and check.overlap >= 0.5


def test_thresholds_come_from_settings(verify):
    paraphrase = "Cilium showed a service mesh without sidecars that uses eBPF [1]."
    strict = verify(paraphrase, verify_min_overlap=0.9, verify_quote_below_overlap=0.0)
    assert strict.sentences[0].status == "quoted"  # not kept in the model's words: the post's replace them
    assert strict.sentences[0].model_text == paraphrase.removesuffix(" [1].") + "."
    wrong = "The service mesh track was cancelled early [1]."  # similarity 0.49, overlap 0.6
    assert verify(wrong).abstained
    lax = verify(wrong, verify_min_similarity=0.3, verify_quote_below_overlap=0.0)
    assert not lax.abstained and lax.sentences[0].status == "supported"


def test_a_model_that_says_it_does_not_know_abstains(verify):
    result = verify("I don't know based on the recaps.")
    assert result.abstained and result.model_abstained


def test_connective_sentences_stay_uncited_but_are_not_an_answer(verify):
    result = verify("Here is what I found: Kepler measures the energy use of each pod [3].")
    assert result.citations and not result.abstained
    result = verify("Sure! Kepler measures the energy use of each pod [3].")
    assert result.text == "Sure! Kepler measures the energy use of each pod [1]."
    assert result.sentences[0].status == "connective"
    assert verify("Sure.").abstained
    assert verify("KubeCon was cancelled.").abstained  # one content word is still a claim


def test_markers_after_the_full_stop_and_list_formats_are_understood():
    sentences = parse_answer("First claim here. [1]\n- Second claim [2, 3]\n【2】 Third claim.", {1, 2, 3})
    assert [(s.text, s.cited) for s in sentences] == [
        ("First claim here.", [1]),
        ("Second claim", [2, 3]),
        ("Third claim.", [2]),
    ]
    assert sentences[1].prefix == "- "


def test_bullets_survive_verification(verify):
    result = verify(
        "- Kepler measures the energy use of each pod [3]\n- Cilium built a sidecarless mesh on eBPF [1]"
    )
    assert (
        result.text
        == "- Kepler measures the energy use of each pod [1]\n- Cilium built a sidecarless mesh on eBPF [2]"
    )


def test_a_restated_clause_of_a_long_sentence_needs_less_similarity(verify):
    # every content word is in the evidence sentence, whose other clause dilutes the embedding
    result = verify("It was the main hallway topic for two days [1].")
    check = result.sentences[0].checks[1]
    assert check.overlap >= 0.8
    assert check.similarity < 0.55 and check.supported
    assert not result.abstained


def test_a_loose_paraphrase_is_replaced_by_the_posts_own_words(verify):
    result = verify("Cilium showed a service mesh that runs on eBPF instead of sidecar proxies [1].")
    (sentence,) = result.sentences
    assert sentence.status == "quoted"
    assert sentence.model_text.startswith("Cilium showed")
    assert result.text.startswith(
        "Cilium presented a sidecarless service mesh built on eBPF, and it was the main hallway topic for two days"
    )
    assert result.text.endswith(" [1].")
    assert " ".join(result.citations[0].quote.split()) == result.text.removesuffix(" [1].") + "."
    # a close restatement keeps the model's words
    close = verify("Linkerd maintainers showed that mutual TLS is on by default for every meshed pod [1].")
    assert close.sentences[0].status == "supported"


def test_a_close_restatement_that_fails_a_check_is_quoted_but_never_a_changed_fact(verify):
    # "in Detroit" was the question's, not the post sentence's; the words are there, the wording is not
    snapped = verify("In Detroit the organizers counted roughly 7,000 people on site [2].")
    assert not snapped.abstained and "7,000" in snapped.text
    assert snapped.sentences[0].status in ("quoted", "supported")
    # a changed number is never quoted into a "supported" answer
    changed = verify("The organizers counted about 9,000 people in person in Detroit [2].")
    assert changed.abstained


def test_a_negated_claim_needs_negating_evidence(verify):
    result = verify("Linkerd maintainers showed that mutual TLS is not switched on by default [1].")
    assert result.sentences[0].status != "supported"
    assert "not switched on" not in result.text
    kept = verify("William Morgan argued that sidecars are not going away [1].")
    assert kept.sentences[0].status == "supported"


def test_names_the_question_gave_may_be_repeated(settings_with, embedder, evidence):
    verifier = Verifier(settings_with(verify_quote_below_overlap=0.0), embedder)
    sentence = "According to the Fixture Weekly recap, Spotify donated Backstage to the CNCF [2]."
    assert verifier.verify(sentence, evidence).sentences[0].status != "supported"
    question = "What did the Fixture Weekly recap say Spotify donated?"
    assert verifier.verify(sentence, evidence, question).sentences[0].status == "supported"


def test_a_short_answer_whose_every_word_is_in_one_window_needs_no_similarity(verify):
    result = verify("William Morgan from Buoyant [1].")
    check = result.sentences[0].checks[1]
    assert check.overlap == 1.0 and check.similarity < 0.4
    assert result.sentences[0].status == "supported"


def test_names_not_in_the_retrieved_posts_are_reported(evidence):
    chunks = [s.chunk for p in evidence.posts for s in p.sentences]
    assert names_not_in("What did Tim Hockin say in his keynote?", chunks) == ["Tim Hockin"]
    assert names_not_in("What did William Morgan argue about sidecars?", chunks) == []
    assert names_not_in("What did Fixture Author write about Backstage?", chunks) == []  # the author
    assert names_not_in("Which company won the CNCF End User Award?", chunks) == ["CNCF End User Award"]
    assert names_not_in("What is eBPF?", chunks) == []  # single words are not premises
