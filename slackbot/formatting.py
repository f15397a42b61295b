"""Turning an :class:`rag.types.Answer` into Slack messages that Slack accepts and cannot misread.

Three concerns, in order:

* **Escaping**: post text and answers are untrusted. ``&``, ``<``, ``>`` become entities so nothing from a
  post can form a link, a user mention or ``<!channel>``; bare ``@channel``/``@here``/``@everyone`` get a word
  joiner after the ``@`` so they never notify anyone.
* **Citations**: ``[n]`` markers become ``<url|[n]>`` links to the cited post, and a context block per
  citation shows title, event and the supporting quote.
* **Limits**: a section's text is at most 3,000 characters and a message at most 50 blocks; long answers
  are split on paragraph/sentence/word boundaries (never inside a link or an entity) across messages.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import PurePath
from urllib.parse import quote

from rag.citations import ESCAPED_MARKER_RE, sub_markers
from rag.events import parse_event
from rag.text import split_sentences
from rag.types import Answer, Citation

SECTION_TEXT_LIMIT = 3000  # Slack: section/context text objects
MAX_BLOCKS_PER_MESSAGE = 50  # Slack: blocks per message
# Our own budgets, below Slack's hard limits: the margin absorbs the difference between Slack's
# UTF-16 counting and Python's code points (emoji), and 4,000 is Slack's guidance for a message's text.
SECTION_BUDGET = 2900
MESSAGE_TEXT_BUDGET = 4000
QUOTE_CHARS = 280

FEEDBACK_UP = "kqa_feedback_up"
FEEDBACK_DOWN = "kqa_feedback_down"
FEEDBACK_BLOCK_ID = "kqa_feedback"
FEEDBACK_NATIVE = "kqa_feedback"  # the feedback_buttons element (button values "up:<id>", "down:<id>")
MARKDOWN_TEXT_LIMIT = 12_000  # Slack: markdown_text of chat.startStream / appendStream / stopStream
PROGRESS_PREFIX = ":hourglass_flowing_sand:"
NOTICE_PREFIX = ":warning:"
GREETING_PREFIX = ":wave:"  # an assistant thread's greeting: no answer, skipped when reading history
MAX_SUGGESTED_PROMPTS = 4  # Slack: assistant.threads.setSuggestedPrompts takes 1-4 prompts

_BROADCAST_RE = re.compile(r"@(channel|here|everyone)\b", re.IGNORECASE)
_WORD_JOINER = "\u2060"
_SLACK_LINK_RE = re.compile(r"<([^<>|]+)\|([^<>]*)>")


@dataclass
class SlackMessage:
    """One ``chat.postMessage``/``chat.update`` payload: fallback ``text`` plus Block Kit ``blocks``."""

    text: str
    blocks: list[dict] = field(default_factory=list)


def escape(text: str) -> str:
    """Escape untrusted text for mrkdwn: Slack's three control characters and broadcast mentions."""
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _BROADCAST_RE.sub(lambda m: "@" + _WORD_JOINER + m.group(1), escaped)


def unescape(text: str) -> str:
    """Undo :func:`escape` (and Slack's own escaping) to recover what a person typed."""
    return html.unescape(text).replace(_WORD_JOINER, "")


def safe_url(url: str) -> str | None:
    """A URL fit for ``<url|label>``: http(s) only, with the characters that would end the link encoded."""
    url = (url or "").strip()
    if not re.match(r"^https?://[^\s/]", url, re.IGNORECASE):
        return None
    return quote(url, safe=":/?#[]@!$&'()*+,;=%~-._").replace("&", "&amp;")


def _truncate(text: str, limit: int) -> str:
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text.rfind(" ", 0, limit - 1)
    return text[: cut if cut > limit // 2 else limit - 1].rstrip() + "…"


def link_citations(escaped_text: str, citations: list[Citation]) -> str:
    """Replace ``[n]`` / ``[n, m]`` markers with ``<url|[n]>`` links; markers without a URL stay as text."""
    urls = {c.n: safe_url(c.url_or_path) for c in citations}

    def one(n: int) -> str:
        url = urls.get(n)
        return f"<{url}|[{n}]>" if url else f"[{n}]"

    def replace(numbers: list[int]) -> str | None:
        if not any(n in urls for n in numbers):
            return None  # a bracketed number that is not a citation, e.g. "[2022]"
        return "".join(one(n) for n in numbers)

    return sub_markers(escaped_text, replace)


def unlink(mrkdwn: str) -> str:
    """``<url|label>`` -> ``label``: the plain fallback text of a linked section."""
    return _SLACK_LINK_RE.sub(lambda m: m.group(2), mrkdwn)


def _safe_cut(text: str, cut: int) -> int:
    """Move ``cut`` left so that it falls outside any ``<...>`` link and any ``&...;`` entity."""
    opening = text.rfind("<", 0, cut)
    if opening > text.rfind(">", 0, cut):
        cut = opening
    amp = text.rfind("&", max(0, cut - 8), cut)
    if amp != -1 and ";" not in text[amp:cut]:
        cut = amp
    return cut


def split_text(text: str, limit: int = SECTION_BUDGET) -> list[str]:
    """Split mrkdwn into pieces of at most ``limit`` characters at the most natural boundary available."""
    pieces: list[str] = []
    rest = text.strip()
    while len(rest) > limit:
        cut = -1
        for separator in ("\n\n", "\n", ". ", "? ", "! ", "; ", ", ", " "):
            position = rest.rfind(separator, 0, limit)
            if position > limit // 3:
                cut = _safe_cut(rest, position + len(separator.rstrip()))
                if cut > limit // 3:
                    break
                cut = -1
        if cut <= 0:
            cut = _safe_cut(rest, limit)
        if cut <= 0:  # one link longer than the limit: cut it anyway rather than loop forever
            cut = limit
        pieces.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest:
        pieces.append(rest)
    return pieces


def _section(text: str) -> dict:
    # verbatim: Slack links nothing by itself (a URL in an answer stays text; links are the citations')
    return {"type": "section", "text": {"type": "mrkdwn", "text": text, "verbatim": True}}


def _context(text: str) -> dict:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text, "verbatim": True}]}


def source_block(citation: Citation) -> dict:
    """Context block for one citation: number, linked title, event and the verbatim supporting quote."""
    title = escape(_truncate(citation.title or citation.source_id, 200))
    url = safe_url(citation.url_or_path)
    if url:
        head = f"*[{citation.n}]* <{url}|{title}>"
    else:
        # A local file path means nothing to Slack users (and shows the server's layout): name the file only.
        where = escape(_truncate(PurePath(citation.url_or_path).name, 200)) if citation.url_or_path else ""
        head = f"*[{citation.n}]* {title}" + (f" ({where})" if where else "")
    if citation.event:
        head += f" · {escape(_truncate(citation.event, 200))}"
    quote_text = escape(_truncate(citation.quote, QUOTE_CHARS)) if citation.quote else ""
    text = f"{head}\n“{quote_text}”" if quote_text else head
    return _context(text[:SECTION_TEXT_LIMIT])


def feedback_block(answer_id: str) -> dict:
    """👍/👎 buttons; ``value`` carries the answer id the feedback log looks up."""

    def button(action_id: str, label: str) -> dict:
        return {
            "type": "button",
            "action_id": action_id,
            "text": {"type": "plain_text", "text": label, "emoji": True},
            "value": answer_id,
        }

    return {
        "type": "actions",
        "block_id": FEEDBACK_BLOCK_ID,
        "elements": [button(FEEDBACK_UP, "👍 Helpful"), button(FEEDBACK_DOWN, "👎 Not helpful")],
    }


def feedback_buttons_block(answer_id: str) -> dict:
    """Slack's own 👍/👎 for AI answers: a ``feedback_buttons`` element in a ``context_actions`` block."""

    def button(rating: str, label: str, spoken: str) -> dict:
        text = {"type": "plain_text", "text": label, "emoji": True}
        return {"text": text, "accessibility_label": spoken, "value": f"{rating}:{answer_id}"}

    return {
        "type": "context_actions",
        "block_id": FEEDBACK_BLOCK_ID,
        "elements": [
            {
                "type": "feedback_buttons",
                "action_id": FEEDBACK_NATIVE,
                "positive_button": button("up", "👍", "Mark this answer as helpful"),
                "negative_button": button("down", "👎", "Mark this answer as not helpful"),
            }
        ],
    }


def render_answer(
    answer: Answer, answer_id: str | None = None, *, native_feedback: bool = False
) -> list[SlackMessage]:
    """The answer as one or more Slack messages (each within Slack's limits), sources and buttons last.
    ``native_feedback``: Slack's ``feedback_buttons`` (assistant threads) instead of two plain buttons."""
    body = link_citations(escape(answer.text.strip()), answer.citations) or "_(empty answer)_"
    messages: list[SlackMessage] = []
    current: list[str] = []
    for piece in split_text(body):
        if current and sum(len(p) for p in current) + len(piece) > MESSAGE_TEXT_BUDGET:
            messages.append(_body_message(current))
            current = []
        current.append(piece)
    messages.append(_body_message(current))

    trailer = answer_trailer(answer, answer_id, native_feedback=native_feedback)
    last = messages[-1]
    while trailer:
        room = MAX_BLOCKS_PER_MESSAGE - len(last.blocks)
        if room <= 0:
            last = SlackMessage(text="Sources (continued)")
            messages.append(last)
            continue
        last.blocks.extend(trailer[:room])
        trailer = trailer[room:]
    return messages


def answer_trailer(answer: Answer, answer_id: str | None, *, native_feedback: bool = False) -> list[dict]:
    """What follows the answer's text: a source block per citation, the fallback note, the feedback."""
    trailer: list[dict] = [source_block(c) for c in sorted(answer.citations, key=lambda c: c.n)]
    if answer.fallback_reason:
        trailer.append(_context(f":information_source: {escape(_truncate(answer.fallback_reason, 500))}"))
    if answer_id:
        trailer.append(feedback_buttons_block(answer_id) if native_feedback else feedback_block(answer_id))
    return trailer


def _body_message(pieces: list[str]) -> SlackMessage:
    return SlackMessage(text=unlink("\n".join(pieces)), blocks=[_section(p) for p in pieces])


def progress_text(status: str) -> str:
    """Placeholder text while an answer is generated (recognised and skipped when reading history)."""
    return f"{PROGRESS_PREFIX} _{escape(_truncate(status, 200))}_"


def notice_message(text: str) -> SlackMessage:
    """A short notice (error, usage) as a single section; never part of a thread's history."""
    body = f"{NOTICE_PREFIX} {escape(_truncate(text, SECTION_BUDGET - 20))}"
    return SlackMessage(text=body, blocks=[_section(body)])


def plain_message(text: str) -> SlackMessage:
    """A short informational message that carries no answer (usage hints)."""
    body = escape(_truncate(text, SECTION_BUDGET))
    return SlackMessage(text=body, blocks=[_section(body)])


# --- markdown, for streamed answers (chat.startStream / appendStream take markdown, not mrkdwn) -------

_MARKDOWN_SPECIAL_RE = re.compile(r"([\\`*_~\[\]<>&|#])")
_URL_RE = re.compile(r"(?:\b(?:https?|ftp)://|\bwww\.)[^\s<>`\\]+[^\s<>`\\.,;:!?)\]\"']", re.I)
_MD_CITATION_RE = re.compile(r"\[\\\[(\d+)\\\]\]\(<[^<>\s]+>\)")
_MD_TOKEN_RE = re.compile(r"\\([\\`*_~\[\]<>&|#])|`([^`]*)`|(.)", re.DOTALL)  # escape | code | other


def _escape_markdown(text: str) -> str:
    """Untrusted text as inert markdown: every character that could format, link or mention is
    backslash-escaped, broadcast words get a word joiner, and URLs become code (never linked)."""
    out: list[str] = []
    position = 0
    for match in _URL_RE.finditer(text):
        out.append(_MARKDOWN_SPECIAL_RE.sub(r"\\\1", text[position : match.start()]))
        out.append("`" + match.group(0) + "`")
        position = match.end()
    out.append(_MARKDOWN_SPECIAL_RE.sub(r"\\\1", text[position:]))
    return _BROADCAST_RE.sub(lambda m: "@" + _WORD_JOINER + m.group(1), "".join(out))


def markdown_text(text: str, citations: list[Citation]) -> str:
    """Answer text as Slack markdown: escaped, its ``[n]`` markers linked to the cited posts."""
    urls = {c.n: safe_url(c.url_or_path) for c in citations}
    escaped = _escape_markdown(text)

    def replace(numbers: list[int]) -> str | None:
        if not any(urls.get(n) for n in numbers):
            return None
        # "&amp;" is mrkdwn's escape; a markdown link target takes the URL as it is (angle-bracketed).
        return "".join(
            f"[\\[{n}\\]](<{urls[n].replace('&amp;', '&')}>)" if urls.get(n) else f"\\[{n}\\]"
            for n in numbers
        )

    return sub_markers(escaped, replace, ESCAPED_MARKER_RE)


def markdown_pieces(answer: Answer) -> list[str]:
    """The answer's markdown, one piece per sentence (leading whitespace kept), whose concatenation is
    exactly :func:`markdown_text` of the whole answer: what a stream appends, in order."""
    text = answer.text.strip() or "(empty answer)"
    whole = markdown_text(text, answer.citations)
    starts = sorted({s.start for s in split_sentences(text)} - {0})
    bounds = [0, *starts, len(text)]
    pieces = [markdown_text(text[a:b], answer.citations) for a, b in pairwise(bounds) if b > a]
    return pieces if "".join(pieces) == whole else [whole]


def is_streamed_markdown(text: str) -> bool:
    """Whether a bot message's text is :func:`markdown_text` (a streamed answer) rather than mrkdwn."""
    return bool(_MD_CITATION_RE.search(text) or re.search(r"\\[\\`*_~\[\]<>&|#]", text))


def markdown_to_plain(markdown: str) -> str:
    """What a reader sees of :func:`markdown_text`: links are their labels, escapes and code marks gone."""
    text = _MD_CITATION_RE.sub(lambda m: f"[{m.group(1)}]", markdown)
    text = "".join(next(g for g in m.groups() if g is not None) for m in _MD_TOKEN_RE.finditer(text))
    return text.replace(_WORD_JOINER, "")


def greeting_message() -> SlackMessage:
    """The first message of an assistant thread (recognised and skipped when reading history)."""
    body = (
        f"{GREETING_PREFIX} Hi! Ask me about the KubeCon + CloudNativeCon recap posts. Every answer cites "
        "the posts it comes from, and I say so when the recaps don't hold an answer."
    )
    return SlackMessage(text=body, blocks=[_section(body)])


def suggested_prompts(events: list[str]) -> list[dict]:
    """Up to four ``{title, message}`` prompts about the latest events the index covers (``events`` as
    :meth:`rag.assistant.Assistant.index_status` gives them, oldest first): only what can be answered."""
    prompts: list[dict] = []
    seen: set[str] = set()
    for event in reversed(events):
        info = parse_event(event)
        name = " ".join(p for p in (info.city or info.region, str(info.year or "")) if p)
        if not name or name in seen:
            continue
        seen.add(name)
        message = f"What did the recaps say about KubeCon {name}?"  # general: answerable from any post
        prompts.append({"title": f"KubeCon {name}", "message": message})
        if len(prompts) == MAX_SUGGESTED_PROMPTS:
            break
    return prompts
