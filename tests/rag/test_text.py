"""Sentence splitting with offsets, markdown flattening, the shared lexical tokenizer."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from rag.text import content_terms, numbers, plain, split_sentences


def test_sentences_keep_exact_offsets():
    text = "# Title\n\nFirst sentence here. Second one, e.g. with an abbreviation! Third?\n- a bullet line\n"
    sentences = split_sentences(text)
    assert [s.text for s in sentences] == [
        "# Title",
        "First sentence here.",
        "Second one, e.g. with an abbreviation!",
        "Third?",
        "- a bullet line",
    ]
    for s in sentences:
        assert text[s.start : s.end] == s.text


@given(st.text(alphabet=st.sampled_from(list("ab .!?\nXY1")), max_size=200))
def test_offsets_always_slice_the_text(text):
    for s in split_sentences(text):
        assert text[s.start : s.end] == s.text
        assert s.text == s.text.strip()


def test_plain_drops_markdown_but_keeps_words():
    md = "**Bold** [Istio docs](https://istio.io/latest/) and ![logo](x.png) `kubectl` ## not a heading"
    assert plain(md) == "Bold Istio docs and logo kubectl ## not a heading"
    assert plain("## Heading\n- bullet") == "Heading\nbullet"


def test_content_terms_stem_and_drop_function_words():
    assert content_terms("The service meshes were discussed at KubeCon") == ["servic", "mesh", "discuss"]
    assert content_terms("Mercedes-Benz") == ["mercedes-benz", "merced", "benz"]


def test_numbers_ignore_thousands_separators():
    assert numbers("over 12,000 attendees in 2024.") == {"12000", "2024"}


def test_abbreviations_only_match_whole_words():
    text = "Costs were split across teams. AI is next. Ask Dr. Smith, e.g. about it. No. 5 was last."
    assert [s.text for s in split_sentences(text)] == [
        "Costs were split across teams.",
        "AI is next.",
        "Ask Dr. Smith, e.g. about it.",
        "No. 5 was last.",
    ]


def test_hard_wrapped_paragraphs_join_but_list_items_do_not():
    text = (
        "In their first iteration, the team did a\nlot of dev work remotely. They used Docker\nin Docker.\n"
        "## Heading line\nNext paragraph\n- item one\n- item two\n"
    )
    sentences = split_sentences(text)
    assert [s.text for s in sentences] == [
        "In their first iteration, the team did a\nlot of dev work remotely.",
        "They used Docker\nin Docker.",
        "## Heading line",
        "Next paragraph",
        "- item one",
        "- item two",
    ]
    assert all(text[s.start : s.end] == s.text for s in sentences)


def test_numbered_list_items_stay_whole():
    text = "So why did it win?\n\n1. Well, it works.\n2. Vendor-neutral open source. Many vendors back it."
    assert [s.text for s in split_sentences(text)] == [
        "So why did it win?",
        "1. Well, it works.",
        "2. Vendor-neutral open source.",
        "Many vendors back it.",
    ]


def test_a_year_after_a_full_stop_stays_with_its_line():
    # galexrt, KubeCon EU 2018 (shared corpus): the closing keynote's list of upcoming events
    text = "The upcoming CloudNativeCon and KubeCon will be at:\n* Shanghai, China: November 14-15. 2018\n* Seattle, North America: December 11-13. 2018\n"
    assert [s.text for s in split_sentences(text)] == [
        "The upcoming CloudNativeCon and KubeCon will be at:",
        "* Shanghai, China: November 14-15. 2018",
        "* Seattle, North America: December 11-13. 2018",
    ]
    assert [s.text for s in split_sentences("It grew a lot. 2018 was the big year.")] == ["It grew a lot.", "2018 was the big year."]
    assert len(split_sentences("- Barcelona, Europe: May 21-23. 2019 [3]")) == 1  # a model line keeps its citation
