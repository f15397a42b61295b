"""Post bodies as a reader sees them: inline markup gone, line structure kept, offsets into the clean text."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.cleaning import clean_markdown, clean_text
from ingest.loaders import load_document


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("See [the keynote](https://youtu.be/x) of [SMI](https://smi-spec.io/).", "See the keynote of SMI."),
        ("A **bold** and *italic* and _under_ word, snake_case_name stays.", "A bold and italic and under word, snake_case_name stays."),
        ("A footnote marker[^6] goes.", "A footnote marker goes."),
        ("[^6]: The footnote's own text stays.", "The footnote's own text stays."),
        ("Salt &amp; pepper&nbsp;here", "Salt & pepper here"),
        ("I :heart: Spotify :wink:", "I ❤️ Spotify 😉"),
        ("An unknown :not_an_emoji_code: goes", "An unknown goes"),
        ("Time 10:30:00 stays", "Time 10:30:00 stays"),
        ("Line<br>break and <b>tags</b> <span class='x'>gone</span>", "Line break and tags gone"),
        ("\\#flexyourflux and \\*not emphasis\\*", "#flexyourflux and *not emphasis*"),
        ("![diagram](img.png) After the image.", "After the image."),
        ("[![badge](b.svg)](https://x) Linked badge.", "Linked badge."),
        ("Autolink <https://docs.qq.com/doc/DY3p>.", "Autolink https://docs.qq.com/doc/DY3p."),
        ("[ref]: https://example.com/a-reference-definition", ""),
        ("## The [SMI](https://smi-spec.io/) **announcement**", "## The SMI announcement"),
        ("- **IDPs** were everywhere", "- IDPs were everywhere"),
        ("  1. nested *item*", "  1. nested item"),
    ],
)
def test_inline_markup_is_removed_and_block_markers_stay(raw, clean):
    assert clean_markdown(raw) == clean


def test_code_fences_and_line_breaks_are_kept_exactly():
    raw = "Before:\n```yaml\nkey: [x](y) **keep**\n```\n- one\n- two\n\nAfter."
    assert clean_markdown(raw) == "Before:\n```yaml\nkey: [x](y) **keep**\n```\n- one\n- two\n\nAfter."
    assert clean_markdown(raw).count("\n") == raw.count("\n")


def test_plain_text_posts_only_lose_entities_tags_and_shortcodes():
    assert clean_text("Fish &amp; chips <b>now</b> :tada: [not](a link)") == "Fish & chips now 🎉 [not](a link)"


def test_the_loader_indexes_the_clean_text_and_keeps_the_front_matter(tmp_path: Path):
    path = tmp_path / "post.md"
    path.write_text(
        '---\ntitle: "A [linked](x) title"\n---\n\n# Heading with **bold**\n\nRead [the docs](https://d) :wink:\n',
        encoding="utf-8",
    )
    document = load_document(path, path.read_bytes())
    assert document.source_text.startswith('---\ntitle: "A [linked](x) title"\n---\n')  # metadata as written
    body = document.source_text[document.body_start :]
    assert body == "\n# Heading with bold\n\nRead the docs 😉\n"
    assert [h.text for h in document.headings] == ["Heading with bold"]
    heading = document.headings[0]
    assert document.source_text[heading.start : heading.end].startswith("# Heading with bold")


def test_a_shared_corpus_post_with_shortcodes_and_links_reads_clean(shared_corpus_dir):
    path = shared_corpus_dir / "alexos-kubecon-barcelona-2019-service-meshes.md"
    raw = path.read_text(encoding="utf-8")
    assert ":wink:" in raw and "](" in raw
    text = load_document(path, path.read_bytes()).source_text
    body = text[text.index("\n---", 3) :]
    assert ":wink:" not in body and "](" not in body and "**" not in body
    assert "😉" in body
