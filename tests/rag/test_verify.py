"""Verification: a sentence stands in the model's words only when one passage states all of it; otherwise
the passage's own words, or nothing."""

from __future__ import annotations

from dataclasses import replace

import pytest

from rag.evidence import Evidence, EvidenceSentence, Passage
from rag.types import Chunk
from rag.verify import UNVERIFIED_MARK, Verifier, is_english, parse_answer, without_framing
from tests.rag.conftest import source_text

VALENCIA, DETROIT, PARIS = "valencia-2022-service-mesh", "detroit-2022-platform", "paris-2024-ai"


@pytest.fixture(scope="module")
def evidence(evidence_for):
    return evidence_for([VALENCIA, DETROIT, PARIS])  # [1] Valencia, [2] Detroit, [3] Paris


@pytest.fixture
def verify(settings_with, embedder, evidence):
    def run(text: str, question: str = "", answers=None, **settings):
        return Verifier(settings_with(**settings), embedder).verify(text, evidence, question, answers)

    return run


def test_a_sentence_whose_every_word_is_in_one_window_keeps_its_wording(verify, fixture_posts_dir):
    result = verify("Cilium presented a sidecarless service mesh built on eBPF [1].")
    assert result.text == "Cilium presented a sidecarless service mesh built on eBPF [1]."
    assert result.sentences[0].status == "supported"
    (citation,) = result.citations
    assert (citation.n, citation.source_id) == (1, VALENCIA)
    assert citation.quote.startswith("Cilium presented a sidecarless service mesh built on eBPF")
    text = source_text(fixture_posts_dir / f"{VALENCIA}.md")
    assert text[citation.start : citation.end] == citation.quote


def test_the_quote_is_the_line_the_sentence_rests_on_not_the_whole_post(verify):
    result = verify("Backstage appeared in at least a dozen talks [2]. The organizers counted about 7,000 people [2].")
    first, second = result.citations
    assert first.source_id == second.source_id == DETROIT
    assert "dozen talks" in first.quote and "7,000" not in first.quote
    assert "7,000" in second.quote and "dozen" not in second.quote
    assert result.text == "Backstage appeared in at least a dozen talks [1]. The organizers counted about 7,000 people [2]."


def test_a_sentence_that_repeats_an_earlier_one_from_the_same_line_is_dropped(verify):
    result = verify(
        "Backstage, the developer portal Spotify donated to the CNCF, appeared in at least a dozen talks [2]. "
        "The developer portal Backstage, donated by Spotify to the CNCF, appeared in a dozen talks [2]. "
        "Speakers called the curated default workflow a golden path [2]."
    )
    assert [s.status for s in result.sentences] == ["supported", "connective", "supported"]
    assert result.text.count("dozen") == 1 and "golden path" in result.text


def test_a_wrong_citation_is_re_pointed(verify):
    result = verify("Backstage appeared in at least a dozen talks [1].")
    assert [c.source_id for c in result.citations] == [DETROIT]
    assert result.sentences[0].status == "repointed"


def test_a_missing_citation_is_added(verify):
    result = verify("Nvidia explained how Dynamic Resource Allocation lets several pods share one GPU.")
    assert result.text.endswith("[1].") and [c.source_id for c in result.citations] == [PARIS]
    assert result.sentences[0].status == "added"


def test_out_of_range_citations_are_dropped(verify):
    result = verify("The organizers counted about 7,000 people in person in Detroit [7][2].")
    assert result.dropped_numbers == [7]
    assert [c.source_id for c in result.citations] == [DETROIT]


def test_unsupported_sentences_are_removed_or_marked(verify):
    text = "Platform engineering was the dominant theme [2]. Linkerd was acquired by Microsoft for two billion dollars [1]."
    result = verify(text)
    assert result.text == "Platform engineering was the dominant theme [1]."
    assert result.removed == ["Linkerd was acquired by Microsoft for two billion dollars."]
    marked = verify(text, unsupported_sentences="mark")
    assert f"{UNVERIFIED_MARK} Linkerd was acquired" in marked.text


@pytest.mark.parametrize(
    "claim",
    [
        "The organizers counted about 9,000 people in person in Detroit [2].",  # changed number
        "Istio presented a sidecarless service mesh built on eBPF [1].",  # swapped project
        "Kubernetes 1.24 removed dockershim [1].",  # nothing to do with the evidence
        "Linkerd maintainers showed that mutual TLS is not switched on by default [1].",  # negation the post lacks
    ],
)
def test_a_changed_fact_is_never_stated_nor_quoted_into_an_answer(verify, claim):
    result = verify(claim)
    assert result.abstained and result.citations == [] and result.text == ""


def test_true_words_recombined_into_another_relation_give_way_to_the_posts_words(verify):
    # every name is in the window, but "donated by Buoyant" is a relation the post does not state
    result = verify("William Morgan donated Backstage to Buoyant [1].")
    assert result.sentences[0].status != "supported"
    recombined = verify("Spotify presented Backstage at a dozen talks as its golden path [2].")
    (sentence,) = recombined.sentences
    assert sentence.status == "quoted"  # the post's own line replaces the recombination
    assert sentence.model_text.startswith("Spotify presented")
    assert "presented" not in recombined.text
    assert recombined.citations[0].quote in source_text_of(recombined.citations[0])


def source_text_of(citation) -> str:
    from tests.rag.conftest import FIXTURE_POSTS

    return source_text(FIXTURE_POSTS / f"{citation.source_id}.md")


def test_a_fragment_or_a_restatement_gives_way_to_the_whole_sentence(verify):
    fragment = verify("William Morgan [1].", "Who argued that sidecars are not going away?")
    assert fragment.sentences[0].status == "quoted"
    assert "sidecars are not going away" in fragment.text
    restated = verify("Cilium presented something in Valencia [1].", "What did Cilium present in Valencia?")
    assert "sidecarless service mesh built on eBPF" in restated.text


def test_a_stated_sentence_without_what_was_asked_gives_way_to_the_window_that_has_it(verify):
    def has_number(text: str) -> bool:
        return "7,000" in text

    result = verify("The organizers counted people in person in Detroit [2].", "How many people came?", has_number)
    assert "7,000" in result.text and result.sentences[0].status == "quoted"


def test_a_looping_sentence_is_replaced_by_the_posts_words(verify):
    result = verify("The organizers counted about 7,000 people, about 7,000 people in person [2].")
    assert result.sentences[0].status == "quoted"
    assert result.text == "The organizers counted about 7,000 people in person in Detroit [1]."


def test_framing_is_stripped_before_checking(verify):
    assert without_framing("Based on the recaps, Cilium won.") == "Cilium won."
    assert without_framing('The passage states that "Kepler measures energy".') == "Kepler measures energy."
    assert without_framing("(Sidecars or no sidecars) Cilium presented a mesh.") == "Cilium presented a mesh."
    result = verify("According to the recaps, Cilium presented a sidecarless service mesh built on eBPF [1].")
    assert result.text == "Cilium presented a sidecarless service mesh built on eBPF [1]."


def test_a_sentence_citing_two_passages_may_rest_on_both(verify):
    result = verify("Kepler measures the energy use of each pod, and Backstage appeared in a dozen talks [3][2].")
    assert result.sentences[0].status == "supported"
    assert [c.source_id for c in result.citations] == [PARIS, DETROIT]
    assert result.text.endswith("[1][2].")


def one_sentence_evidence(embedder, text: str, **chunk_fields) -> Evidence:
    """Evidence of one made-up sentence (its own chunk, so quotes slice it exactly)."""
    chunk = Chunk(chunk_id="made-up::0000::x", doc_id="made-up", text=text, start=0, end=len(text), **chunk_fields)
    sentence = EvidenceSentence(chunk, text, 0, len(text), embedding=embedder.embed([text])[0])
    return Evidence([Passage(1, [sentence])], 0, [sentence])


def test_first_person_quotes_are_attributed(settings_with, embedder):
    own = one_sentence_evidence(embedder, "I counted about 7,000 people in person in Detroit.", author="Ana Example", title="My trip")
    result = Verifier(settings_with(), embedder).verify("I counted about 7,000 people in person in Detroit [1].", own)
    assert result.text == "Ana Example writes: “I counted about 7,000 people in person in Detroit [1].”"
    blog = one_sentence_evidence(embedder, "We hosted our first Istio Day in Amsterdam.", title="Istio at KubeCon Europe 2023")
    result = Verifier(settings_with(), embedder).verify("We hosted our first Istio Day in Amsterdam [1].", blog)
    assert result.text == "The post “Istio at KubeCon Europe 2023” says: “We hosted our first Istio Day in Amsterdam [1].”"


def test_an_attributed_quote_is_not_attributed_again(settings_with, embedder):
    """An answer verified a second time (the posts an answer missed are added, then it is checked again)
    keeps one attribution, not "The post “X” says: “The post “X” says: “We …”"."""
    blog = one_sentence_evidence(embedder, "We were arranged in a group of 6 with a mentor.", title="My virtual experience")
    verifier = Verifier(settings_with(), embedder)
    once = verifier.verify("We were arranged in a group of 6 with a mentor [1].", blog).text
    assert once == "The post “My virtual experience” says: “We were arranged in a group of 6 with a mentor [1].”"
    assert verifier.verify(once, blog).text == once


def test_a_pronoun_the_post_never_used_is_a_changed_fact(settings_with, embedder):
    """The model guessed a gender the post never gave ("our experience" → "her experience")."""
    post = one_sentence_evidence(
        embedder, "Laurent Bernaille shared our experience adopting Cilium in the Maintainer track.", author="Datadog"
    )
    result = Verifier(settings_with(), embedder).verify(
        "Laurent Bernaille shared her experience adopting Cilium in the Maintainer track [1].", post
    )
    assert "her experience" not in result.text and result.sentences[0].status == "quoted"
    assert "our experience adopting Cilium" in result.text
    said = one_sentence_evidence(embedder, "Priyanka Sharma said she was proud of the community.", author="Ana Example")
    result = Verifier(settings_with(), embedder).verify("Priyanka Sharma said she was proud of the community [1].", said)
    assert result.sentences[0].status == "supported"


def test_an_outline_is_cited_entry_by_entry(seed_settings, settings_with, embedder):
    from rag.assistant import Assistant
    from rag.evidence import outline_entries, post_sentences

    snapshot = Assistant(seed_settings.model_copy(update={"llm_backend": "extractive"})).retriever.snapshot()
    doc_id = "seed-kubecon-detroit-2022-three-takeaways"
    post, chunk = snapshot.post_text(doc_id), next(c for c in snapshot.chunks if c.doc_id == doc_id)
    entries, of = outline_entries(post, post_sentences(post, chunk), "What were the three big takeaways?")
    entries = [replace(e, embedding=v) for e, v in zip(entries, embedder.embed([e.display for e in entries]), strict=True)]
    outline = Evidence([Passage(1, entries, outline=True, outline_of=of)], 0, [])
    result = Verifier(settings_with(), embedder).verify("The takeaways were WebAssembly is Getting Real and Security Shifted Left [1].", outline)
    assert [c.quote for c in result.citations] == ["2. WebAssembly is Getting Real", "3. Security Shifted Left (Finally)"]
    assert result.text.endswith("[1][2].")
    for citation in result.citations:
        assert post.slice(citation.start, citation.end) == citation.quote


def test_a_foreign_passage_keeps_an_english_sentence_with_the_same_facts(settings_with, embedder):
    french = "Environ 7000 personnes étaient présentes sur place à Detroit, selon les organisateurs."
    foreign = one_sentence_evidence(embedder, french, title="Bedrock à Detroit")
    verifier = Verifier(settings_with(), embedder)
    result = verifier.verify("About 7000 people were there in person in Detroit [1].", foreign)
    assert result.sentences[0].status == "translated" and result.citations[0].quote == french
    assert verifier.verify("About 9000 people were there [1].", foreign).abstained  # facts still count
    assert not is_english(french) and is_english("However, KubeCon also left me thinking that I am no longer its target audience.")


def test_a_model_that_says_it_does_not_know_abstains(verify):
    result = verify("I don't know based on the recaps.")
    assert result.abstained and result.model_abstained


def test_connective_sentences_stay_uncited_but_are_not_an_answer(verify):
    result = verify("Sure! Kepler measures the energy use of each pod [3].")
    assert result.text == "Sure! Kepler measures the energy use of each pod [1]."
    assert result.sentences[0].status == "connective"
    assert verify("Sure.").abstained
    intro = verify("The main points were:\n- Kepler measures the energy use of each pod [3]", "What were the main points?")
    assert intro.text.startswith("The main points were:\n- Kepler measures")


def test_markers_after_the_full_stop_and_list_formats_are_understood():
    sentences = parse_answer("First claim here. [1]\n- Second claim [2, 3]\n【2】 Third claim.", {1, 2, 3})
    assert [(s.text, s.cited) for s in sentences] == [
        ("First claim here.", [1]),
        ("Second claim", [2, 3]),
        ("Third claim.", [2]),
    ]
    assert sentences[1].prefix == "- "


def test_bullets_survive_verification(verify):
    result = verify("- Kepler measures the energy use of each pod [3]\n- Cilium presented a sidecarless service mesh built on eBPF [1]")
    assert result.text == "- Kepler measures the energy use of each pod [1]\n- Cilium presented a sidecarless service mesh built on eBPF [2]"


def test_thresholds_come_from_settings(verify):
    paraphrase = "Cilium demoed a sidecarless service mesh built on eBPF [1]."  # "demoed" is not the post's word
    assert verify(paraphrase).sentences[0].status == "quoted"
    lax = verify(paraphrase, verify_min_overlap=0.8, verify_min_similarity=0.3)
    assert lax.sentences[0].status == "supported" and lax.text == paraphrase


@pytest.mark.parametrize(
    "injected",
    [
        "Cilium presented a sidecarless service mesh built on eBPF <script>alert(1)</script> [1].",
        "Cilium presented a sidecarless service mesh built on eBPF, see [the demo](javascript:alert(1)) [1].",
        "Cilium presented a sidecarless service mesh built on eBPF; download it at http://malware.example/x [1].",
        "Cilium presented a sidecarless service mesh built on eBPF at www.evil.example [1].",
    ],
)
def test_links_tags_and_scripts_the_posts_do_not_hold_never_reach_the_answer(verify, injected):
    result = verify(injected)
    for bad in ("<script", "javascript:", "malware.example", "evil.example"):
        assert bad not in result.text
    assert all(s.status != "supported" for s in result.sentences)  # never kept in the model's words


def two_sentence_evidence(embedder, first: str, second: str, **chunk_fields) -> Evidence:
    """Evidence of one passage of two adjacent lines (one chunk, so quotes slice it exactly)."""
    text = f"{first} {second}"
    chunk = Chunk(chunk_id="two::0000::x", doc_id="two", text=text, start=0, end=len(text), **chunk_fields)
    a = EvidenceSentence(chunk, first, 0, len(first), embedding=embedder.embed([first])[0])
    b = EvidenceSentence(chunk, second, len(first) + 1, len(text), embedding=embedder.embed([second])[0])
    return Evidence([Passage(1, [a, b])], 0, [a, b])


# Two adjacent lines of the shared corpus (mbestavros, KubeCon NA 2021): a question the post asks, then its reply.
ASKED = ("The tools exist; how do we use them effectively?",
         "The aforementioned SBOM panel had a good discussion on this.")  # fmt: skip


def test_a_question_copied_from_a_post_gives_way_to_the_line_that_answers_it(settings_with, embedder):
    evidence = two_sentence_evidence(embedder, *ASKED, title="KubeCon NA 2021")
    verifier = Verifier(settings_with(), embedder)
    result = verifier.verify("How do we use the tools effectively [1]?", evidence, "How do we use supply-chain tools effectively?")
    assert result.sentences[0].status == "quoted"
    assert result.text == f"{ASKED[1][:-1]} [1]."
    assert result.citations[0].quote == ASKED[1]
    titled = two_sentence_evidence(embedder, "Lin Sun walked through Is Zero-Downtime Migration Possible?",
                                   "Moving From Ingress and Sidecars to Gateway API was the rest of the title.")  # fmt: skip
    kept = verifier.verify("Lin Sun walked through Is Zero-Downtime Migration Possible [1]?", titled, "What did Lin Sun present?")
    assert kept.sentences[0].status == "supported"  # a talk title is not a question the post asks


# A line of the shared corpus (idcrosby, KubeCon EU 2024): the reasons sit in its first half.
SUSTAINABILITY = ("So, whether it’s due to moral reasons, business goals, or regulation requirements, it’s clear that "
                  "sustainability is going to become a major factor in cloud architecture moving forward.")  # fmt: skip


def test_a_why_answer_that_kept_no_reason_gives_way_to_the_line_with_the_reasons(settings_with, embedder):
    from rag.abstention import gives_reason

    evidence = one_sentence_evidence(embedder, SUSTAINABILITY, title="KubeCon EU 2024 recap")
    question = "Why will sustainability become a major factor in cloud architecture?"
    model = "Because it’s clear that sustainability is going to become a major factor in cloud architecture moving forward [1]."
    result = Verifier(settings_with(), embedder).verify(model, evidence, question, gives_reason)
    assert result.sentences[0].status == "quoted"
    assert "moral reasons, business goals, or regulation requirements" in result.text
    kept = Verifier(settings_with(), embedder).verify(
        "Sustainability is going to become a major factor due to moral reasons, business goals and regulation requirements [1].", evidence, question, gives_reason
    )
    assert kept.sentences[0].status == "supported"


# Two adjacent lines of the shared corpus (ewohltman, EnvoyCon 2019): the finding, then its cause.
CONTOUR = ("VMware found Contour was using very high levels of memory from what was expected and learned some "
           "interesting characteristics during their debugging.",
           "Changes to Secrets (e.g. Certificates) caused updates to LDS.")  # fmt: skip


def test_the_posts_words_standing_in_for_a_why_answer_bring_the_cause(settings_with, embedder):
    from rag.abstention import gives_reason

    evidence = two_sentence_evidence(embedder, *CONTOUR, title="EnvoyCon 2019 notes")
    model = "Steve Sloka mentioned that Contour was using very high levels of memory from what was expected [1]."
    result = Verifier(settings_with(), embedder).verify(
        model, evidence, "Why did Contour's Envoy use so much memory, according to Steve Sloka?", gives_reason
    )
    assert result.sentences[0].status == "quoted"
    assert "caused updates to LDS" in result.text


def test_sentences_without_what_was_asked_are_padding_beside_one_that_has_it(verify):
    from rag.abstention import counts

    question = "How many people came to KubeCon Detroit 2022?"
    result = verify(
        "The organizers counted about 7,000 people [2]. Backstage appeared in at least a dozen talks [2].",
        question,
        lambda text: counts(text, question),
    )
    assert result.text == "The organizers counted about 7,000 people [1]."
    alone = verify("Backstage appeared in at least a dozen talks [2].", question, lambda text: counts(text, question))
    assert alone.text == "Backstage appeared in at least a dozen talks [1]."  # for abstention to judge


# Two lines of the shared corpus (istio-at-kubecon-na-2023, lines 75 and 79): the kiosk in Chicago, then the
# one in Europe the post looks back on.
KIOSKS = ("Istio had a kiosk in the project pavilion, with the majority of questions asked being around the schedule for ambient mesh being production ready.",
          "We are glad that the major question which we had at the Istio kiosk in Europe — the schedule for CNCF graduation — has been answered.")  # fmt: skip


def test_a_line_about_another_event_states_nothing_about_the_one_asked(settings_with, embedder):
    evidence = two_sentence_evidence(embedder, *KIOSKS, title="Istio at KubeCon North America 2023")
    verifier = Verifier(settings_with(), embedder)
    question = "Which question came up most at the Istio kiosk at KubeCon NA 2023 in Chicago?"
    result = verifier.verify("At KubeCon NA 2023 in Chicago, the most common question was the schedule for CNCF graduation [1].", evidence, question)
    assert result.abstained and not result.citations  # the Europe kiosk's question is no answer for Chicago
    result = verifier.verify("The majority of questions were about when ambient mesh would be production ready [1].", evidence, question)
    assert not result.abstained and "ambient mesh" in result.citations[0].quote
    # said of the other event, the same words stand
    result = verifier.verify("In Europe, the major question at the Istio kiosk was the schedule for CNCF graduation [1].", evidence, question)
    assert not result.abstained and "CNCF graduation" in result.citations[0].quote


def test_a_sentence_that_gives_the_question_back_gives_way_to_the_line_that_answers_it(settings_with, embedder):
    # galexrt-kubecon-austin-2017 (shared corpus); the reply adds one word and no name to the question
    evidence = two_sentence_evidence(
        embedder,
        "Kubernetes was the first project donated to the CNCF.",
        "This is especially awesome to look at how cloud native Kubernetes is.",
        title="KubeCon Austin 2017",
    )
    verifier = Verifier(settings_with(), embedder)
    question = "Which project was the first donated to the CNCF?"
    result = verifier.verify("The first project donated to the CNCF was awesome [1].", evidence, question)
    assert result.text.startswith("Kubernetes was the first project") and result.sentences[0].status == "quoted"
    result = verifier.verify("Kubernetes was the first project donated to the CNCF [1].", evidence, question)
    assert result.sentences[0].status == "supported"  # a name of its own: an answer in the model's words


def test_a_quoted_title_does_not_make_a_sentence_english():
    # A French answer about an English-titled talk was left untranslated: the title's English words
    # outweighed the sentence's French ones.
    french = ("La conférence “How we moved all of our builds to the cloud in a year” (vidéo) "
              "était une bonne introduction aux principes de la CI sur Kubernetes [1].")  # fmt: skip
    assert not is_english(french)
    english = "The post “Bedrock à la Kubecon 2022, 3ème partie : Dev XP, outillage, CI/CD” says the team moved to GitHub Actions."
    assert is_english(english)
    assert is_english('bedrock writes (in translation): “The team moved to GitHub Actions.”')


def test_names_found_only_in_the_heading_are_not_quoted_away(settings_with, embedder):
    # The model named a talk's speakers, who stand in the section heading; the line under the heading
    # ("There was a bunch of other great talks too…") replaced the sentence and the names were gone.
    text = "There were a lot of other great talks too, but a couple of them really fell flat for me."
    chunk = Chunk(chunk_id="made-up::0000::x", doc_id="made-up", text=text, start=0, end=len(text), title="KubeCon: is it still for me?")
    heading = "3. Trusting Container Scanners, Jane Quartermaine, Piotr Wendelstein"
    sentence = EvidenceSentence(chunk, text, 0, len(text), heading=heading, embedding=embedder.embed([text])[0])
    evidence = Evidence([Passage(1, [sentence])], 0, [sentence])
    result = Verifier(settings_with(), embedder).verify(
        "The talk worth a re-watch was the one by Jane Quartermaine and Piotr Wendelstein about other great talks [1].", evidence
    )
    assert "fell flat" not in result.text
    assert result.sentences[0].status != "quoted"
    # a word the question gave is no name the heading alone holds ("the Kubeflow Booth" for "the booth")
    result = Verifier(settings_with(), embedder).verify(
        "The Trusting Container Scanners talk was brilliant, yet a couple of other great talks really fell flat [1].",
        evidence,
        "Which talks about trusting container scanners fell flat?",
    )
    assert result.sentences[0].status == "quoted" and "fell flat for me" in result.text
