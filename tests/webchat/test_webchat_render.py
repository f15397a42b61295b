"""Rendering: what reaches the page is escaped text, and every answer carries its sources."""

from __future__ import annotations

import re

from markdown_it import MarkdownIt

from rag.types import Answer, Citation, Source
from webchat import render

HOSTILE = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2"> [click](javascript:alert(1)) ![i](http://x/y.png)'


def _to_html(markdown: str) -> str:
    """CommonMark with raw HTML enabled, the way a chat Markdown renderer treats our messages."""
    return MarkdownIt("commonmark", {"html": True}).render(markdown)


def _page(answer: Answer, updated_at: str | None = None) -> str:
    """Every message of a finished turn (thought, answer, sources) as the page renders it."""
    return "\n".join(_to_html(m["content"]) for m in render.answer_messages(answer, ["Searching"], 1.0, updated_at))


def _citation(
    n: int, source_id: str = "post-a", quote: str = "Platform engineering was everywhere."
) -> Citation:
    return Citation(
        n=n, source_id=source_id, title=f"Title of {source_id}", event="KubeCon + CloudNativeCon North America 2022 (Detroit)",
        url_or_path=f"https://example.com/{source_id}", quote=quote, start=0, end=len(quote),
    )  # fmt: skip


def _source(source_id: str, cited: bool, snippet: str = "snippet text", url: str = "", date: str = "") -> Source:
    return Source(
        source_id=source_id, title=f"Title of {source_id}", event="KubeCon + CloudNativeCon Europe 2022 (Valencia)",
        url_or_path=url or f"data/{source_id}.md", score=0.5, dense_similarity=0.61, snippet=snippet, year=2022,
        cited=cited, date=date,
    )  # fmt: skip


def test_escape_text_leaves_no_html_or_markdown_structure():
    rendered = _to_html(render.escape_text(HOSTILE + "\n# heading\n1. item\n- item\n> quote"))
    assert "<script" not in rendered and "<img" not in rendered
    assert "<a " not in rendered and "<h1" not in rendered and "<ol" not in rendered and "<ul" not in rendered
    assert "<blockquote" not in rendered
    assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in rendered  # shown as text, not lost


def test_answer_text_keeps_markers_and_lists_but_no_links_or_html():
    answer_text = "Platform engineering was big [1].\n\n- **IDPs** everywhere [2]\n" + HOSTILE
    rendered = _to_html(render.escape_answer(answer_text))
    assert "[1]" in rendered and "[2]" in rendered
    assert "<li><strong>IDPs</strong>" in rendered  # the model's Markdown still renders
    assert "<script" not in rendered and "<img" not in rendered and "<a " not in rendered


def test_answer_with_citations_lists_cited_posts_quotes_and_uncited_apart():
    answer = Answer(
        question="q",
        text="Platform engineering went mainstream [1]. IDPs were everywhere [2].",
        citations=[_citation(1), _citation(2, quote="IDPs were everywhere, from vendors to startups.")],
        sources=[_source("post-a", True), _source("post-b", False, snippet="another passage")],
        backend="extractive",
    )
    rendered = _page(answer)
    cited, _, uncited = rendered.partition("Also retrieved, not cited")
    # one entry for post-a holding both citations, each quote in its own expandable block
    assert cited.count('class="kqa-cited-post"') == 1
    assert "[1][2]" in cited
    assert cited.count("<details") == 2 and 'data-n="1"' in cited and 'data-n="2"' in cited
    assert "IDPs were everywhere, from vendors to startups." in cited
    assert '<a href="https://example.com/post-a"' in cited
    assert "Title of post-b" in uncited and "<code>data/post-b.md</code>" in uncited
    assert "Title of post-b" not in cited


def test_hostile_post_content_is_escaped_in_sources():
    answer = Answer(
        question="q",
        text="Quote: " + HOSTILE + " [1]",
        citations=[Citation(1, "evil", HOSTILE, HOSTILE, "javascript:alert(1)", HOSTILE, 0, 10)],
        sources=[_source("other", False, snippet=HOSTILE, url='https://ok.example/"><script>x</script>')],
    )
    rendered = _page(answer)
    assert "<script" not in rendered and "<img" not in rendered
    assert 'href="javascript' not in rendered
    assert "<code>javascript:alert(1)</code>" in rendered  # not a link, shown as text
    assert '"><script>' not in rendered


def test_abstention_shows_closest_posts_instead_of_citations():
    answer = Answer(
        question="Who won the 1998 world cup?",
        text="The recap posts don't say.",
        sources=[_source("near-1", False), _source("near-2", False)],
        abstained=True,
    )
    rendered = _page(answer)
    assert "Closest posts" in rendered and "Cited posts" not in rendered
    assert rendered.count('class="kqa-closest-post"') == 2


def test_fallback_reason_is_shown():
    answer = Answer(
        question="q", text="x [1]", citations=[_citation(1)], fallback_reason="LLM timed out after 60s"
    )
    assert "LLM timed out after 60s" in render.render_answer(answer)


def test_sources_block_has_no_blank_line_so_markdown_leaves_it_alone():
    answer = Answer(question="q", text="a [1]", citations=[_citation(1, quote="line one\n\nline two")])
    block = render.render_sources(answer)
    assert "\n" not in block
    assert "line one line two" in block


def test_error_message_is_escaped_and_has_no_traceback_marker():
    rendered = render.render_error("Chroma at <http://x> unreachable")
    assert "&lt;http://x&gt;" in rendered
    assert not re.search(r"Traceback", rendered)


def test_status_shows_counts_events_backend_and_freshness():
    from datetime import UTC, datetime

    from rag.assistant import IndexStatus

    status = IndexStatus(
        posts=84, chunks=1234, events=["KubeCon + CloudNativeCon Europe 2022 (Valencia)"], years=[2022],
        backend="llamacpp", store="embedded Chroma at /x", updated_at="2026-01-01T10:00:00+00:00",
    )  # fmt: skip
    text = render.render_status(status)
    assert "| Posts | 84 |" in text and "| Chunks | 1,234 |" in text and "| Events covered | 1 |" in text
    assert "llamacpp" in text and "Valencia" in text
    assert render.describe_age("2026-01-01T10:00:00+00:00", datetime(2026, 1, 1, 13, 0, tzinfo=UTC)).endswith(
        "(3 hours ago)"
    )
    assert "never" in render.render_status(IndexStatus(0, 0))


def test_a_url_in_the_answer_text_is_shown_but_never_linked():
    """As code, which no Markdown renderer (the chat's GFM autolinks included) turns into a link."""
    page = _to_html(render.escape_answer("Get it from http://malware.example/x?a=1 or www.evil.example today [1]."))
    assert "<a " not in page
    assert "<code>http://malware.example/x?a=1</code>" in page and "<code>www.evil.example</code>" in page


def test_a_turn_is_a_closed_thought_the_answer_with_dates_and_age_and_a_sources_message():
    from datetime import UTC, datetime

    answer = Answer(
        question="q", text="Platform engineering went mainstream [1].", citations=[_citation(1)],
        sources=[_source("post-a", True, date="2022-10-31"), _source("post-b", False, date="<b>2023</b>")],
        removed_sentences=["An unsupported claim."],
    )  # fmt: skip
    thought, text, sources = render.answer_messages(answer, ["Searching the recaps…"], 2.26, "2026-05-01T10:00:00+00:00")
    assert thought["metadata"] == {"title": "Answered from 1 post", "status": "done", "duration": 2.3}
    assert "removed 1 the posts do not state" in thought["content"]
    assert "metadata" not in text and "kqa-sources" not in text["content"]
    assert "Post from 2022-10-31 · index updated" in text["content"]
    assert sources["metadata"] == {"title": "Sources · 1 cited post"} and "kqa-sources" in sources["content"]
    assert '<span class="kqa-date">2022-10-31</span>' in sources["content"]
    assert "&lt;b&gt;2023&lt;/b&gt;" in sources["content"] and "<b>2023" not in sources["content"]
    now = datetime(2026, 5, 1, 13, 0, tzinfo=UTC)
    assert "index updated 3 hours ago" in render.render_freshness(answer, "2026-05-01T10:00:00+00:00", now)
    assert "index updated" not in render.render_freshness(answer, None)


def test_the_typed_question_comes_back_from_its_rendered_form():
    for question in ("What did it say about (Backstage) & *IDPs*?", "1. first <b>bold</b> [x](y)", "a\\b"):
        assert render.unescape_user(render.render_user(question)) == question
