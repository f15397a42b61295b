"""mrkdwn formatting: escaping, citation links, sources, and splitting within Slack's limits."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st
from slack_mock_api import slack_limit_error

from rag.types import Answer, Citation
from slackbot.formatting import (
    MAX_BLOCKS_PER_MESSAGE,
    SECTION_BUDGET,
    escape,
    link_citations,
    render_answer,
    safe_url,
    split_text,
    unescape,
    unlink,
)


def citation(n: int, url: str = "https://example.org/post", **kwargs) -> Citation:
    fields = dict(
        n=n, source_id=f"post-{n}", title=f"Post {n}", event="KubeCon EU 2022", url_or_path=url,
        quote=f"Quote {n}.", start=0, end=8,
    )  # fmt: skip
    return Citation(**(fields | kwargs))


@given(st.text())
def test_escape_leaves_no_control_characters_and_round_trips(text):
    escaped = escape(text)
    assert "<" not in escaped and ">" not in escaped
    assert not re.search(r"&(?!amp;|lt;|gt;)", escaped)
    assert not re.search(r"@(channel|here|everyone)\b", escaped, re.IGNORECASE)
    assert unescape(escaped) == text.replace("\u2060", "")


def test_escape_neutralises_mentions_and_broadcasts():
    assert escape("<!channel> & <@U123> @here @Everyone") == (
        "&lt;!channel&gt; &amp; &lt;@U123&gt; @\u2060here @\u2060Everyone"
    )
    assert escape("mail me@hereford.example") == "mail me@hereford.example"  # not a broadcast


def test_citations_become_links_only_when_they_have_a_url():
    citations = [citation(1), citation(2, url="data/seed-post.md"), citation(3, url="javascript:alert(1)")]
    text = link_citations(escape("A [1]. B [2]. C [3]. D [1, 2]. In [2022]. E [9]."), citations)
    assert text == (
        "A <https://example.org/post|[1]>. B [2]. C [3]. D <https://example.org/post|[1]>[2]. In [2022]. E [9]."
    )
    assert unlink(text) == "A [1]. B [2]. C [3]. D [1][2]. In [2022]. E [9]."


def test_safe_url_encodes_characters_that_would_end_a_link():
    assert safe_url("https://example.org/a b|c>d?x=1&y=2") == "https://example.org/a%20b%7Cc%3Ed?x=1&amp;y=2"
    assert safe_url("ftp://example.org") is None
    assert safe_url("") is None


WORDS = st.sampled_from(
    ["platform", "engineering", "WebAssembly", "eBPF", "&amp;", "&lt;tag&gt;", "<https://example.org/x|[1]>",
     "<https://example.org/a-much-longer-path/with/segments?and=query|[12]>", "sentence.", "\n", "\n\n", "–"]
)  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(st.lists(WORDS, min_size=1, max_size=1500), st.integers(min_value=80, max_value=SECTION_BUDGET))
def test_split_text_respects_the_limit_and_never_breaks_links_or_entities(words, limit):
    text = " ".join(words).strip()
    pieces = split_text(text, limit)
    assert all(0 < len(p) <= limit for p in pieces)
    assert " ".join(" ".join(pieces).split()) == " ".join(text.split())
    for piece in pieces:
        assert piece.count("<") == piece.count(">")
        assert not re.search(r"&[a-z]*$", piece) and not re.match(r"^[a-z]*;", piece)


def test_split_text_prefers_paragraph_then_sentence_boundaries():
    paragraph = "First sentence here. " * 60
    pieces = split_text(paragraph.strip() + "\n\n" + paragraph.strip(), limit=1500)
    assert all(p.endswith(".") for p in pieces)


def test_render_answer_puts_sources_and_feedback_last_and_stays_within_limits():
    citations = [citation(n, title=f"Title <{n}> & co", quote="q" * 2000) for n in range(1, 61)]
    answer = Answer(
        question="q", text=" ".join(f"Claim {n} [{n}]." for n in range(1, 61)) * 20, citations=citations,
        fallback_reason="LLM timed out; extractive answer.",
    )  # fmt: skip
    messages = render_answer(answer, "answer-id")
    assert len(messages) >= 2
    for message in messages:
        assert len(message.blocks) <= MAX_BLOCKS_PER_MESSAGE
        assert slack_limit_error({"text": message.text, "blocks": message.blocks}) is None
    blocks = [b for m in messages for b in m.blocks]
    contexts = [b["elements"][0]["text"] for b in blocks if b["type"] == "context"]
    assert len(contexts) == 61  # one per citation, then the fallback note
    assert contexts[0].startswith(
        "*[1]* <https://example.org/post|Title &lt;1&gt; &amp; co> · KubeCon EU 2022"
    )
    assert contexts[0].endswith("…”") and len(contexts[0]) < 400  # quotes are shortened
    assert "LLM timed out" in contexts[-1]
    assert blocks[-1]["type"] == "actions" and blocks[-1]["elements"][0]["value"] == "answer-id"


def test_render_answer_without_citations_or_feedback():
    messages = render_answer(Answer(question="q", text="The recaps don't say.", abstained=True))
    assert len(messages) == 1
    assert messages[0].text == "The recaps don't say."
    assert [b["type"] for b in messages[0].blocks] == ["section"]


def test_answer_text_is_sent_verbatim_so_slack_links_only_the_citations():
    answer = Answer(question="q", text="Get it from http://malware.example/x today [1].", citations=[citation(1)])
    blocks = [b for m in render_answer(answer, "answer-id") for b in m.blocks]
    texts = [b["text"] for b in blocks if b["type"] == "section"]
    texts += [e for b in blocks if b["type"] == "context" for e in b["elements"]]
    assert texts and all(t.get("verbatim") is True for t in texts)
