"""Post bodies as a reader sees them: inline Markdown and HTML markup removed, line structure kept.

Answers quote the posts, and a quote reads like the rendered post, not like its source: no link
targets, emphasis stars, footnote markers (``[^6]``), HTML tags or entities (``&amp;``), emoji
shortcodes (``:wink:`` becomes 😉) or backslash escapes. Cleaning happens once, at ingest, so the
stored chunks, the embeddings, BM25, the prompt and every quote see the same text, and citation offsets
index this text (the post's *ingested* text), not the raw file.

What stays, because the rest of the pipeline reads it: heading lines (``## Why it matters``), list
markers (``- ``, ``1. ``), block quotes, table rows, fenced code blocks (left exactly as written) and
every line break, so a list item is never glued to the next one.
"""

from __future__ import annotations

import html
import re

import emoji

# Bump when the output of this module changes: stored posts are then re-ingested (pipeline fingerprint).
CLEANER_VERSION = "1"

_FENCE_RE = re.compile(r"^\s*(```|~~~)")
_COMMENT_RE = re.compile(r"<!--.*?-->", re.S)
_LINKED_IMAGE_RE = re.compile(r"\[!\[[^\]]*\]\([^)]*\)\]\([^)]*\)")
_IMAGE_RE = re.compile(r"!\[[^\]]*\]\((?:[^()]|\([^)]*\))*\)|!\[[^\]]*\]\[[^\]]*\]")
_LINK_RE = re.compile(r"\[([^\]\n]+)\]\((?:[^()\n]|\([^)\n]*\))*\)")
_REF_LINK_RE = re.compile(r"\[([^\]\n]+)\]\[[^\]\n]*\]")
_AUTOLINK_RE = re.compile(r"<((?:https?|mailto):[^>\s]+)>")
_REF_DEFINITION_RE = re.compile(r"^\s{0,3}\[(?!\^)[^\]]+\]:\s+\S+.*$")
_FOOTNOTE_REF_RE = re.compile(r"\[\^[^\]\s]+\](?!:)")
_FOOTNOTE_DEFINITION_RE = re.compile(r"^(\s{0,3})\[\^[^\]\s]+\]:\s*")
_BREAK_TAG_RE = re.compile(r"<br\s*/?>", re.I)
_TAG_RE = re.compile(r"</?[A-Za-z][\w:-]*(?:\s+[^<>]*?)?\s*/?>")
_BOLD_RE = re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1")
_ITALIC_STAR_RE = re.compile(r"(?<![\w*])\*(?=[^\s*])([^*\n]+?)(?<=[^\s*])\*(?![\w*])")
_ITALIC_UNDERSCORE_RE = re.compile(r"(?<![\w_])_(?=[^\s_])([^_\n]+?)(?<=[^\s_])_(?![\w_])")
_STRIKE_RE = re.compile(r"~~(?=\S)(.+?)(?<=\S)~~")
_ESCAPE_RE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!|>~])")
_SHORTCODE_RE = re.compile(r"(?<![\w:]):[a-z0-9_+-]*[a-z][a-z0-9_+-]*:(?![\w:])")
_SPACES_RE = re.compile(r"[ \t]{2,}")
_PLACEHOLDER = 0xF0000  # a private-use plane: no post text uses it


def clean_markdown(body: str) -> str:
    """The body with inline markup removed line by line; code fences are left as they are."""
    body = _COMMENT_RE.sub(lambda m: "\n" * m.group(0).count("\n"), body)
    out: list[str] = []
    fenced = False
    for line in body.split("\n"):
        if _FENCE_RE.match(line):
            fenced = not fenced
            out.append(line)
            continue
        out.append(line if fenced else clean_line(line))
    return "\n".join(out)


def clean_line(line: str) -> str:
    """One line of Markdown prose without its inline markup (block markers such as ``## `` or ``- `` stay)."""
    if _REF_DEFINITION_RE.match(line):
        return ""
    indent = line[: len(line) - len(line.lstrip())]
    # escaped characters ("\*", "\#") are literal: hide them from the markup patterns until the end
    line = _ESCAPE_RE.sub(lambda m: chr(_PLACEHOLDER + ord(m.group(1))), line)
    line = _FOOTNOTE_DEFINITION_RE.sub(r"\1", line)
    line = _FOOTNOTE_REF_RE.sub("", line)
    line = _LINKED_IMAGE_RE.sub("", line)
    line = _IMAGE_RE.sub("", line)
    for _ in range(2):  # a link inside emphasis inside a link
        line = _LINK_RE.sub(r"\1", line)
        line = _REF_LINK_RE.sub(r"\1", line)
    line = _AUTOLINK_RE.sub(r"\1", line)
    line = _BREAK_TAG_RE.sub(" ", line)
    line = _TAG_RE.sub("", line)
    line = _STRIKE_RE.sub(r"\1", line)
    line = _BOLD_RE.sub(r"\2", line)
    line = _ITALIC_STAR_RE.sub(r"\1", line)
    line = _ITALIC_UNDERSCORE_RE.sub(r"\1", line)
    line = html.unescape(line).replace("\u00a0", " ")
    line = emoji.emojize(line, language="alias")
    line = _SHORTCODE_RE.sub("", line)  # shortcodes no emoji table knows
    line = re.sub(f"[{chr(_PLACEHOLDER)}-{chr(_PLACEHOLDER + 127)}]", lambda m: chr(ord(m.group(0)) - _PLACEHOLDER), line)
    return indent + _SPACES_RE.sub(" ", line.strip())


def clean_text(text: str) -> str:
    """Plain-text posts: only entities, tags and shortcodes (a .txt file has no Markdown to remove)."""
    out = []
    for line in text.split("\n"):
        line = _BREAK_TAG_RE.sub(" ", line)
        line = _TAG_RE.sub("", line)
        line = emoji.emojize(html.unescape(line), language="alias")
        out.append(_SHORTCODE_RE.sub("", line).rstrip())
    return "\n".join(out)
