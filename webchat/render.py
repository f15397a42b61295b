"""Turn library results into chat Markdown, escaping everything that came from a post or a user.

Why escape ourselves when Gradio sanitises too: the sanitiser removes scripts but still lets a post
(or a question) inject links, images, headings or fake citation blocks into the page. Escaping at the
source keeps post text as *text*; Gradio's sanitiser stays on as a second layer.

A finished turn is three chat messages (:func:`answer_messages`): a closed "thought" with the steps
taken, the answer text as Markdown (HTML escaped, links/images disarmed, ``[n]`` markers shown literally)
with its posts' dates and the index's age, and a sources message: one HTML block (no blank lines, so
Markdown leaves it alone) listing the cited posts, each with its date, link and one expandable
``<details>`` per citation holding the quote; then the retrieved-but-uncited posts. An abstention lists
the closest posts instead.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from rag.types import Answer, Citation, Source

# Markdown punctuation that can start a link, image, emphasis, code span, table or heading.
_MARKDOWN_ACTIVE = re.compile(r"([\\`*_\[\]()!|~#])")
# Block markers only matter at the start of a line: quotes, lists, headings, rules, numbered lists.
_LINE_START_ACTIVE = re.compile(r"^(\s*)([+\-=])", re.MULTILINE)
_LINE_START_NUMBER = re.compile(r"^(\s*\d+)\.", re.MULTILINE)
_SAFE_URL = re.compile(r"^https?://[^\s<>\"']+$", re.IGNORECASE)

SOURCES_CLASS = "kqa-sources"
NOTICE_CLASS = "kqa-notice"
ERROR_CLASS = "kqa-error"


def escape_text(text: str) -> str:
    """Escape user/post text for Markdown: no HTML, links, images, emphasis or block structure."""
    escaped = html.escape(text, quote=False)
    escaped = _MARKDOWN_ACTIVE.sub(r"\\\1", escaped)
    escaped = _LINE_START_ACTIVE.sub(lambda m: m.group(1) + "\\" + m.group(2), escaped)
    return _LINE_START_NUMBER.sub(lambda m: m.group(1) + "\\.", escaped)


def escape_answer(text: str) -> str:
    """Escape generated answer text but keep it readable Markdown: lists, bold and paragraphs survive.

    The LLM writes from post text, so anything HTML is escaped and links/images are disarmed (``[``,
    ``]``, ``!`` escaped; the ``[n]`` markers therefore render literally as ``[n]``).
    """
    escaped = re.sub(r"([\\\[\]!`|~])", r"\\\1", html.escape(text, quote=False))
    # A URL in the answer is shown, never linked (links come from the citations alone): code is not linkified.
    return _BARE_URL.sub(lambda m: f"`{m.group(0)}`", escaped)


_BARE_URL = re.compile(r"(?:\b(?:https?|ftp)://|\bwww\.)[^\s<>`\\]+[^\s<>`\\.,;:!?)]", re.I)


def _html(text: str) -> str:
    """Escape for an HTML attribute or element body, flattened to one line (no Markdown blank lines)."""
    return html.escape(" ".join(str(text).split()), quote=True)


def link_html(url_or_path: str) -> str:
    """A clickable link for http(s) URLs; anything else (a file path, a javascript: URL) shown as code."""
    target = (url_or_path or "").strip()
    if not target:
        return '<span class="kqa-nolink">no link</span>'
    if _SAFE_URL.match(target):
        return f'<a href="{_html(target)}" target="_blank" rel="noopener noreferrer">{_html(target)}</a>'
    return f"<code>{_html(target)}</code>"


def _shorten(text: str, limit: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def _event_label(event: str, year: int | None = None) -> str:
    return event or (str(year) if year else "event unknown")


def _grouped_citations(citations: Iterable[Citation]) -> list[list[Citation]]:
    """Citations grouped by post, posts in order of their first citation number."""
    groups: dict[str, list[Citation]] = {}
    for citation in sorted(citations, key=lambda c: c.n):
        groups.setdefault(citation.source_id, []).append(citation)
    return list(groups.values())


def _date_html(date: str) -> str:
    return f' · <span class="kqa-date">{_html(date)}</span>' if date else ""


def _citation_block(citations: list[Citation], date: str = "") -> str:
    first = citations[0]
    numbers = "".join(f"[{c.n}]" for c in citations)
    parts = [
        '<li class="kqa-cited-post">',
        f'<span class="kqa-cite-numbers">{numbers}</span> ',
        f'<strong class="kqa-title">{_html(first.title or first.source_id)}</strong>',
        f' — <span class="kqa-event">{_html(_event_label(first.event))}</span>{_date_html(date)}<br>',
        f'<span class="kqa-link">{link_html(first.url_or_path)}</span>',
    ]
    for citation in citations:
        parts.append(
            f'<details class="kqa-citation" data-n="{citation.n}">'
            f"<summary>Evidence for [{citation.n}]: “{_html(_shorten(citation.quote, 70))}”</summary>"
            f'<blockquote class="kqa-quote">{_html(citation.quote)}</blockquote>'
            "</details>"
        )
    parts.append("</li>")
    return "".join(parts)


def _source_item(source: Source, css_class: str) -> str:
    return (
        f'<li class="{css_class}"><strong class="kqa-title">{_html(source.title or source.source_id)}</strong>'
        f' — <span class="kqa-event">{_html(_event_label(source.event, source.year))}</span>'
        f"{_date_html(getattr(source, 'date', ''))}<br>"
        f'<span class="kqa-link">{link_html(source.url_or_path)}</span>'
        f'<details class="kqa-snippet"><summary>Best matching passage (relevance {source.dense_similarity:.2f})'
        f"</summary><blockquote>{_html(source.snippet)}</blockquote></details></li>"
    )


def render_sources(answer: Answer) -> str:
    """The HTML block under an answer: cited posts with quotes, then the other retrieved posts."""
    parts = [f'<div class="{SOURCES_CLASS}">']
    if answer.abstained or not answer.citations:
        closest = answer.sources[:5]
        if closest:
            parts.append(
                '<p class="kqa-heading"><strong>Closest posts</strong> (none of them answers this)</p>'
            )
            parts.append('<ul class="kqa-closest">')
            parts.extend(_source_item(s, "kqa-closest-post") for s in closest)
            parts.append("</ul>")
        else:
            parts.append('<p class="kqa-heading">No posts matched this question.</p>')
    else:
        parts.append('<p class="kqa-heading"><strong>Cited posts</strong></p><ul class="kqa-cited">')
        dates = {s.source_id: getattr(s, "date", "") for s in answer.sources}
        parts.extend(
            _citation_block(group, dates.get(group[0].source_id, ""))
            for group in _grouped_citations(answer.citations)
        )
        parts.append("</ul>")
        cited_ids = {c.source_id for c in answer.citations}
        uncited = [s for s in answer.sources if s.source_id not in cited_ids and not s.cited]
        if uncited:
            parts.append('<p class="kqa-heading"><strong>Also retrieved, not cited</strong></p>')
            parts.append('<ul class="kqa-uncited">')
            parts.extend(_source_item(s, "kqa-uncited-post") for s in uncited)
            parts.append("</ul>")
    parts.append("</div>")
    return "".join(parts)


def render_notice(text: str) -> str:
    return f'<p class="{NOTICE_CLASS}">⚠️ {_html(text)}</p>'


def render_answer(answer: Answer) -> str:
    """The answer message's text (its sources go in their own message: :func:`answer_messages`)."""
    pieces = []
    if answer.fallback_reason:
        pieces.append(
            render_notice(
                f"The language model was not available ({answer.fallback_reason}); "
                "this answer was extracted directly from the posts."
            )
        )
    pieces.append(escape_answer(answer.text.strip()) or "_(empty answer)_")
    return "\n\n".join(pieces)


def render_partial(text: str) -> str:
    """The answer message while the model writes: the tokens so far."""
    return escape_answer(text) or "…"


def thought(title: str, steps: list[str], status: str, duration: float | None = None) -> dict[str, Any]:
    """Gradio's "thought" message: a titled accordion with a spinner while ``status`` is ``"pending"``,
    closed once ``"done"``; its body lists the steps taken so far."""
    metadata: dict[str, Any] = {"title": title, "status": status}
    if duration is not None:
        metadata["duration"] = round(duration, 1)
    body = "\n".join(f"- {escape_text(step)}" for step in dict.fromkeys(steps))
    return {"role": "assistant", "content": body, "metadata": metadata}


def _summary(answer: Answer) -> str:
    if answer.abstained or not answer.citations:
        return "No answer in the recaps"
    posts = len({c.source_id for c in answer.citations})
    return f"Answered from {posts} post{'s' if posts > 1 else ''}"


def _checked(answer: Answer) -> list[str]:
    steps = [f"Read {len(answer.sources)} retrieved post{'s' if len(answer.sources) != 1 else ''}."]
    if answer.fallback_reason:
        steps.append(f"The language model was not available ({answer.fallback_reason}); quoted the posts.")
    if answer.citations:
        removed = len(answer.removed_sentences or [])
        steps.append(
            "Checked every sentence against its post"
            + (f"; removed {removed} the posts do not state." if removed else ".")
        )
    return steps


def _posts_dates(answer: Answer) -> list[str]:
    """The dates of the posts an answer cites (or, for an abstention, of the closest posts)."""
    by_id = {s.source_id: s for s in answer.sources}
    ids = [c.source_id for c in answer.citations] or [s.source_id for s in answer.sources[:5]]
    return sorted({by_id[i].date for i in ids if i in by_id and getattr(by_id[i], "date", "")})


def render_freshness(answer: Answer, index_updated_at: str | None, now: datetime | None = None) -> str:
    """``Posts from 2022-10-28 · index updated 2 hours ago``: how old what the answer rests on is."""
    dates = _posts_dates(answer)
    parts = []
    if dates:
        label = "Post from" if len(dates) == 1 else "Posts from"
        parts.append(f"{label} {', '.join(dates)}")
    elif answer.citations or answer.sources:
        parts.append("post dates unknown")
    if index_updated_at:  # unknown for an index written before ingest recorded it
        parts.append(f"index updated {describe_age(index_updated_at, now, short=True)}")
    return f'<p class="kqa-freshness">{_html(" · ".join(parts))}</p>' if parts else ""


def answer_messages(
    answer: Answer, steps: list[str], seconds: float, index_updated_at: str | None
) -> list[dict[str, Any]]:
    """A finished turn's assistant messages: the closed thought, the answer, the sources."""
    cited = len({c.source_id for c in answer.citations})
    if answer.abstained or not answer.citations:
        title = "Closest posts" if answer.sources else "No posts matched"
    else:
        title = f"Sources · {cited} cited post{'s' if cited > 1 else ''}"
    return [
        thought(_summary(answer), [*steps, *_checked(answer)], "done", seconds),
        {"role": "assistant", "content": render_answer(answer) + "\n\n" + render_freshness(answer, index_updated_at)},
        {"role": "assistant", "content": render_sources(answer), "metadata": {"title": title}},
    ]


def unescape_user(text: str) -> str:
    """The question as typed, from its rendered form (for a stopped turn and an edited question)."""
    return html.unescape(re.sub(r"\\(.)", r"\1", text))


def render_error(message: str) -> str:
    """An error a user can act on, as a chat message (never a stack trace)."""
    return f'<div class="{ERROR_CLASS}"><strong>⚠️ Could not answer.</strong> {_html(message)}</div>'


def render_user(question: str) -> str:
    return escape_text(question)


def describe_age(updated_at: str | None, now: datetime | None = None, short: bool = False) -> str:
    """``"2026-05-01T10:00:00+00:00 (3 hours ago)"`` (``short``: ``"3 hours ago"``): index freshness."""
    if not updated_at:
        return "never (run the ingest)"
    try:
        stamp = datetime.fromisoformat(str(updated_at))
    except ValueError:
        return str(updated_at)
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    seconds = max(0, int(((now or datetime.now(UTC)) - stamp).total_seconds()))
    age = "just now"
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = seconds // size
            age = f"{count} {unit}{'s' if count > 1 else ''} ago"
            break
    return age if short else f"{updated_at} ({age})"


def render_status(status: Any, details: bool = True) -> str:
    """Markdown for the status view, from ``Assistant.index_status()`` (an ``IndexStatus``).

    ``details``: the store's location (a server path or URL) is shown to admins only."""
    events = list(getattr(status, "events", []) or [])
    years = list(getattr(status, "years", []) or [])
    updated = describe_age(getattr(status, "updated_at", None))
    rows = [
        ("Posts", f"{getattr(status, 'posts', 0):,}"),
        ("Chunks", f"{getattr(status, 'chunks', 0):,}"),
        ("Events covered", str(len(events))),
        ("Years", ", ".join(str(y) for y in years) or "—"),
        ("Answer backend", escape_text(str(getattr(status, "backend", "") or "—"))),
        ("Store", escape_text(str(getattr(status, "store", "") or "—")) if details else "(admins only)"),
        ("Index updated", escape_text(str(updated))),
    ]
    table = "| | |\n|---|---|\n" + "\n".join(f"| {name} | {value} |" for name, value in rows)
    if events:
        table += "\n\n**Events:**\n\n" + "\n".join(f"- {escape_text(e)}" for e in events)
    return table


def render_status_line(status: Any) -> str:
    """One line for the chat tab header."""
    return (
        f"{getattr(status, 'posts', 0):,} posts · {getattr(status, 'chunks', 0):,} chunks · "
        f"{len(getattr(status, 'events', []) or [])} events · backend "
        f"`{escape_text(str(getattr(status, 'backend', '')))}` · index updated "
        f"{escape_text(describe_age(getattr(status, 'updated_at', None)))}"
    )
