"""Markdown for streamed answers: inert (nothing from a post formats, links or mentions), citations
linked, one piece per sentence whose concatenation is the whole, read back as the answer's text."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from rag.types import Answer, Citation
from slackbot.formatting import (
    is_streamed_markdown,
    markdown_pieces,
    markdown_text,
    markdown_to_plain,
    suggested_prompts,
)


def citation(n: int, url: str = "https://example.org/post?a=1&b=2") -> Citation:
    return Citation(
        n=n,
        source_id=f"post-{n}",
        title=f"Post {n}",
        event="KubeCon EU 2022",
        url_or_path=url,
        quote=f"Quote {n}.",
        start=0,
        end=8,
    )


UNESCAPED = re.compile(r"(?<!\\)[*_~\[\]<>&|#`]")


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"])))
def test_any_text_becomes_inert_markdown_that_reads_back_as_itself(text):
    markdown = markdown_text(text, [])
    outside_code = re.sub(r"(?<!\\)`[^`]*`", "", markdown.replace("\\\\", ""))
    assert not UNESCAPED.search(outside_code)
    assert not re.search(r"@(channel|here|everyone)\b", markdown, re.IGNORECASE)
    assert markdown_to_plain(markdown) == text.replace("\u2060", "")


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                "Platform engineering won [1].",
                "Was it *hype*?",
                "No [2]!",
                "See https://x.example/a_b.",
                "\n- a list item [1]",
                " <!channel> & @here",
                "\n\n",
                " [2022] ",
                "Dr. Smith spoke [1, 2].",
            ]
        ),
        max_size=8,
    )
)
def test_sentence_pieces_concatenate_to_the_whole_answer(parts):
    answer = Answer(
        question="q", text="".join(parts), citations=[citation(1), citation(2, url="data/post.md")]
    )
    pieces = markdown_pieces(answer)
    assert "".join(pieces) == markdown_text(answer.text.strip() or "(empty answer)", answer.citations)
    assert all(pieces)


def test_citations_link_to_their_posts_and_urls_in_the_text_are_code():
    answer = Answer(
        question="q",
        text="Get it from http://malware.example/x today [1]. Also [2] and [2022].",
        citations=[citation(1), citation(2, url="/srv/posts/local.md")],
    )
    markdown = markdown_text(answer.text, answer.citations)
    assert markdown == (
        "Get it from `http://malware.example/x` today [\\[1\\]](<https://example.org/post?a=1&b=2>). "
        "Also \\[2\\] and \\[2022\\]."
    )
    assert markdown_pieces(answer) == [
        "Get it from `http://malware.example/x` today [\\[1\\]](<https://example.org/post?a=1&b=2>). ",
        "Also \\[2\\] and \\[2022\\].",
    ]
    assert is_streamed_markdown(markdown) and not is_streamed_markdown("Plain mrkdwn &amp; text [1].")
    assert markdown_to_plain(markdown) == answer.text


def test_suggested_prompts_name_the_latest_events_once_each():
    events = [
        "KubeCon EU 2019",
        "KubeCon + CloudNativeCon Europe 2022 (Valencia)",
        "KubeCon Valencia 2022",
        "KubeCon + CloudNativeCon North America 2022 (Detroit)",
        "KubeCon Paris 2024",
        "KubeCon China 2024",
    ]
    prompts = suggested_prompts(events)
    assert [p["title"] for p in prompts] == [
        "KubeCon China 2024",
        "KubeCon Paris 2024",
        "KubeCon Detroit 2022",
        "KubeCon Valencia 2022",
    ]
    assert prompts[1]["message"] == "What did the recaps say about KubeCon Paris 2024?"
    assert suggested_prompts([]) == [] and suggested_prompts(["Some meetup"]) == []
