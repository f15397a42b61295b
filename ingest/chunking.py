"""Structure-aware, token-budgeted chunking that keeps exact character offsets.

Posts are cut at headings first (found with markdown-it, so ``#`` lines inside code fences are not
headings), then each section is cut to ``chunk_tokens`` cl100k tokens with ``chunk_overlap`` tokens
shared between neighbours. Cuts prefer a paragraph break, then a line break, a sentence end, a space,
and only as a last resort a token boundary. Every chunk is a ``(start, end)`` slice of the post's source
text, so the stored document is always ``source_text[start:end]`` and citations can point into the post.

langchain's splitters either drop offsets (``TokenTextSplitter`` decodes token windows, which can cut
inside a UTF-8 character) or only overlap whole pieces (``RecursiveCharacterTextSplitter``), so the
window logic lives here, on top of tiktoken's own ``decode_with_offsets``.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass
from functools import lru_cache

from rag.components.tokens import count_tokens, get_encoding

# Chunker version: bump when the output of this module changes, so stored posts are re-chunked.
CHUNKER_VERSION = "2"

# Where a chunk may end, best first: paragraph break, line break, sentence end, any whitespace.
CUT_PATTERNS = (
    re.compile(r"\n[ \t]*\n\s*"),
    re.compile(r"\n\s*"),
    re.compile(r"[.!?;:][\"'”’)\]]*\s+|[。！？；]"),
    re.compile(r"\s+"),
)
WHITESPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class Heading:
    level: int
    text: str
    start: int  # offset of the heading line in the source text
    end: int  # offset just past the heading block


@dataclass(frozen=True)
class ChunkSpan:
    start: int
    end: int
    section: str  # "Title > Heading > Subheading"


@lru_cache(maxsize=1)
def _markdown_parser():
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark")


def _line_starts(text: str) -> list[int]:
    """Offsets where each line starts, splitting lines exactly as markdown-it does (\\r\\n, \\r, \\n)."""
    return [0] + [m.end() for m in re.finditer(r"\r\n|\r|\n", text)]


def find_headings(body: str, offset: int = 0) -> list[Heading]:
    """ATX and setext headings of a Markdown body, with offsets shifted by ``offset``."""
    tokens = _markdown_parser().parse(body)
    lines = _line_starts(body)
    headings: list[Heading] = []
    for index, token in enumerate(tokens):
        if token.type != "heading_open" or not token.map:
            continue
        inline = tokens[index + 1]
        text = (
            "".join(
                child.content for child in (inline.children or []) if child.type in ("text", "code_inline")
            ).strip()
            or inline.content.strip()
        )
        first_line, past_line = token.map
        start = lines[first_line]
        end = lines[past_line] if past_line < len(lines) else len(body)
        if text:
            headings.append(Heading(int(token.tag[1]), text, offset + start, offset + end))
    return headings


def _normalise(text: str) -> str:
    return re.sub(r"\W+", " ", text).strip().lower()


@dataclass
class _Section:
    start: int
    end: int
    path: str
    has_body: bool


def _sections(source: str, body_start: int, headings: list[Heading], title: str) -> list[_Section]:
    """Split [body_start, len) at each heading; each section carries its heading path."""
    sections: list[_Section] = []
    stack: list[Heading] = []
    bounds = [body_start] + [h.start for h in headings] + [len(source)]
    heading_at = {h.start: h for h in headings}
    for start, end in zip(bounds, bounds[1:], strict=False):
        heading = heading_at.get(start)
        if heading is not None:
            while stack and stack[-1].level >= heading.level:
                stack.pop()
            stack.append(heading)
        parts = [title] + [h.text for h in stack if _normalise(h.text) != _normalise(title)]
        body_from = heading.end if heading is not None else start
        has_body = bool(source[body_from:end].strip())
        if source[start:end].strip():
            sections.append(_Section(start, end, " > ".join(p for p in parts if p), has_body))
    return sections


def _strip(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _find_cut(text: str, lo: int, hi: int) -> int:
    """The best place in (lo, hi] to end a chunk (see CUT_PATTERNS); ``hi`` when nothing fits."""
    for pattern in CUT_PATTERNS:
        last = None
        for last in pattern.finditer(text, lo, hi):  # noqa: B007 - we want the last match
            pass
        if last is not None and last.end() > lo:
            return last.end()
    return hi


def split_to_budget(text: str, start: int, end: int, budget: int, overlap: int) -> list[tuple[int, int]]:
    """Cut ``text[start:end]`` into spans of at most ``budget`` tokens, neighbours sharing ~``overlap``."""
    start, end = _strip(text, start, end)
    if start >= end:
        return []
    encoding = get_encoding()
    tokens = encoding.encode(text[start:end], disallowed_special=())
    if len(tokens) <= budget:
        return [(start, end)]
    _, relative = encoding.decode_with_offsets(tokens)
    offsets = [start + o for o in relative]
    spans: list[tuple[int, int]] = []
    chunk_start = start
    while True:
        first = bisect_right(offsets, chunk_start) - 1  # token containing chunk_start
        if len(offsets) - first <= budget + 2 and count_tokens(text[chunk_start:end]) <= budget:
            spans.append((chunk_start, end))
            return spans
        cut = chunk_end = end
        for shrink in range(budget):  # re-tokenising a slice can differ by a token or two at its edges
            limit = first + budget - shrink
            if limit >= len(offsets):
                continue
            hard = offsets[limit]
            soft = offsets[min(first + max(1, (budget - shrink) // 2), len(offsets) - 1)]
            cut = _find_cut(text, max(soft, chunk_start), hard)
            _, chunk_end = _strip(text, chunk_start, cut)
            if chunk_end > chunk_start and count_tokens(text[chunk_start:chunk_end]) <= budget:
                break
        spans.append((chunk_start, chunk_end))
        # The next chunk starts ~overlap tokens before the cut, at a word start.
        past = bisect_right(offsets, cut - 1)  # tokens that start before the cut
        next_start = offsets[max(first + 1, past - overlap)] if overlap else cut
        if next_start < cut and not text[next_start].isspace() and not text[next_start - 1].isspace():
            gap = WHITESPACE.search(text, next_start, cut)
            next_start = gap.end() if gap else cut
        next_start, _ = _strip(text, next_start, end)
        if next_start <= chunk_start:  # never loop: always move forward
            next_start, _ = _strip(text, chunk_end, end)
        if next_start >= end:
            return spans
        chunk_start = next_start


def chunk_source(
    source: str, body_start: int, headings: list[Heading], title: str, budget: int, overlap: int
) -> list[ChunkSpan]:
    """Chunk a post: sections at headings, small neighbours merged, long sections cut to the budget.

    Headings with no text under them join the next section, and a section under a quarter of the budget
    (say a heading with one line under it) is merged with its neighbours while they fit, so retrieval
    does not see fragments without context.
    """
    small = budget // 4
    groups: list[list[_Section]] = []
    group_tokens = 0
    for section in _sections(source, body_start, headings, title):
        if groups:
            group = groups[-1]
            merged = count_tokens(source[group[0].start : section.end])
            headings_only = not any(s.has_body for s in group)
            if headings_only or (group_tokens < small and merged <= budget):
                group.append(section)
                group_tokens = merged
                continue
        groups.append([section])
        group_tokens = count_tokens(source[section.start : section.end])
    # A small group left before a long section joins the group before it instead, when that fits.
    for index in range(len(groups) - 1, 0, -1):
        group, previous = groups[index], groups[index - 1]
        small_group = count_tokens(source[group[0].start : group[-1].end]) < small
        if small_group and count_tokens(source[previous[0].start : group[-1].end]) <= budget:
            previous.extend(groups.pop(index))
    spans: list[ChunkSpan] = []
    for group in groups:
        label = next((s.path for s in group if s.has_body), group[-1].path)
        for chunk_start, chunk_end in split_to_budget(source, group[0].start, group[-1].end, budget, overlap):
            spans.append(ChunkSpan(chunk_start, chunk_end, label))
    return spans
