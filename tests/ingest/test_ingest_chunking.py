"""Chunking: heading structure, token budget, overlap, and offsets that point at the right source text."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.chunking import chunk_source, find_headings, split_to_budget
from rag.components.tokens import count_tokens, get_encoding

WORDS = [
    "cluster",
    "operator",
    "gateway",
    "mesh",
    "sidecar",
    "ebpf",
    "wasm",
    "keynote",
    "booth",
    "hallway",
    "platform",
    "team",
    "scheduler",
    "autoscaling",
    "observability",
    "tracing",
    "policy",
    "supply",
    "chain",
    "signing",
    "runtime",
    "kernel",
    "network",
    "storage",
]


def paragraph(seed: int, words: int) -> str:
    """Deterministic prose: ``words`` words in sentences of 12."""
    out = []
    for i in range(words):
        word = WORDS[(seed * 7 + i * 3) % len(WORDS)]
        out.append(word.capitalize() if i % 12 == 0 else word)
        if i % 12 == 11:
            out[-1] += "."
    return " ".join(out) + "."


def chunk_markdown(text: str, budget: int = 60, overlap: int = 12, title: str = "Post"):
    return chunk_source(text, 0, find_headings(text), title, budget, overlap)


def test_sections_follow_the_heading_path():
    text = (
        "# Post\n\nIntro " + paragraph(1, 30) + "\n\n## Day 1\n\n" + paragraph(2, 30) + "\n\n### Keynotes\n\n"
        + paragraph(3, 30) + "\n\n## Day 2\n\n" + paragraph(4, 30) + "\n"
    )  # fmt: skip
    spans = chunk_markdown(text)
    sections = [s.section for s in spans]
    assert sections == ["Post", "Post > Day 1", "Post > Day 1 > Keynotes", "Post > Day 2"]
    # Each chunk starts at its own heading and never runs into the next section.
    for span, heading in zip(spans[1:], ["## Day 1", "### Keynotes", "## Day 2"], strict=True):
        assert text[span.start : span.end].startswith(heading)
        assert "##" not in text[span.start + 3 : span.end]


def test_hash_lines_in_code_fences_are_not_headings_and_setext_headings_are():
    text = "Title line\n==========\n\n```bash\n# not a heading\nkubectl get pods\n```\n\nSub\n---\n\nBody text.\n"
    headings = find_headings(text)
    assert [(h.level, h.text) for h in headings] == [(1, "Title line"), (2, "Sub")]
    assert text[headings[1].start :].startswith("Sub\n---")


def test_heading_text_drops_inline_markup():
    (heading,) = find_headings("## **Bold** and `code` [link](http://x)\n")
    assert heading.text == "Bold and code link"


def test_small_sections_merge_and_heading_only_sections_join_the_next():
    text = "# Post\n\n## Empty parent\n\n### Child\n\nOne line.\n\n### Sibling\n\nAnother line.\n"
    spans = chunk_markdown(text, budget=200, overlap=20)
    assert len(spans) == 1
    assert (spans[0].start, spans[0].end) == (0, len(text.rstrip()))
    assert spans[0].section == "Post > Empty parent > Child"


def test_long_sections_respect_the_budget_and_overlap():
    text = "# Post\n\n## Talk\n\n" + "\n\n".join(paragraph(i, 45) for i in range(8)) + "\n"
    budget, overlap = 80, 16
    spans = chunk_markdown(text, budget, overlap)
    assert len(spans) >= 4
    for span in spans:
        assert count_tokens(text[span.start : span.end]) <= budget
        assert span.section == "Post > Talk"
    for left, right in zip(spans, spans[1:], strict=False):
        assert right.start < left.end, "consecutive chunks of one section must overlap"
        shared = count_tokens(text[right.start : left.end])
        assert overlap // 2 <= shared <= overlap + 2
        assert right.start == 0 or text[right.start - 1].isspace(), "chunks start at a word"
    # Nothing is lost: every non-space character of the post is in some chunk.
    covered = set()
    for span in spans:
        covered.update(range(span.start, span.end))
    assert all(i in covered for i, ch in enumerate(text) if not ch.isspace())


def test_cuts_prefer_paragraph_then_sentence_boundaries():
    paragraphs = [paragraph(i, 30) for i in range(6)]
    text = "\n\n".join(paragraphs)
    spans = split_to_budget(text, 0, len(text), 100, 10)
    for start, end in spans[:-1]:
        assert text[end - 1] == ".", f"chunk ends mid-sentence: {text[start:end][-30:]!r}"


def test_text_without_spaces_is_cut_on_character_boundaries():
    text = "".join(f"第{i}段讲的是云原生和平台工程。" for i in range(200))
    spans = split_to_budget(text, 0, len(text), 50, 10)
    assert len(spans) > 3
    encoding = get_encoding()
    for start, end in spans:
        piece = text[start:end]
        assert "\ufffd" not in piece
        assert encoding.decode(encoding.encode(piece)) == piece
        assert count_tokens(piece) <= 50
    assert spans[0][0] == 0 and spans[-1][1] == len(text)


def test_offsets_are_relative_to_the_whole_source_with_front_matter():
    front = "---\ntitle: T\n---\n"
    body = "# T\n\n" + paragraph(5, 200)
    text = front + body
    spans = chunk_source(text, len(front), find_headings(body, offset=len(front)), "T", 64, 8)
    assert spans[0].start == len(front)
    assert text[spans[0].start :].startswith("# T")
    assert all(s.start >= len(front) for s in spans)


def test_same_input_same_chunks():
    text = "# Post\n\n" + "\n\n".join(paragraph(i, 70) for i in range(5))
    assert chunk_markdown(text) == chunk_markdown(text)


@settings(max_examples=40, deadline=None, database=None)
@given(
    blocks=st.lists(
        st.tuples(
            st.sampled_from(["", "# ", "## ", "### "]),
            st.lists(st.sampled_from([*"abcdé云 .,\n-*", " ", " ", *WORDS]), min_size=1, max_size=120).map(
                "".join
            ),
        ),
        min_size=1,
        max_size=12,
    ),
    budget=st.integers(min_value=32, max_value=120),
    overlap_fraction=st.floats(min_value=0, max_value=0.5),
)
def test_any_markdown_chunks_within_budget_with_exact_offsets(blocks, budget, overlap_fraction):
    text = "\n\n".join(prefix + re.sub(r"\s+", " ", body) if prefix else body for prefix, body in blocks)
    overlap = int(budget * overlap_fraction)
    spans = chunk_markdown(text, budget, overlap)
    previous_start = -1
    for span in spans:
        piece = text[span.start : span.end]
        assert piece and piece == piece.strip()
        assert count_tokens(piece) <= budget
        assert span.start > previous_start
        previous_start = span.start
    covered = set()
    for span in spans:
        covered.update(range(span.start, span.end))
    assert all(i in covered for i, ch in enumerate(text) if not ch.isspace())
