"""Files -> clean source text + post metadata.

Each supported file becomes one :class:`Document` whose ``source_text`` is what chunk offsets index:
the front matter as written, then the body as a reader sees it (:mod:`ingest.cleaning`: no link
targets, emphasis markers, footnote markers, HTML tags or entities, emoji shortcodes); for HTML, the
Markdown rendering of the page, cleaned the same way. Quotes are slices of this text.

Anything that cannot be read as a post raises :class:`LoadError` with a reason a person can act on;
the pipeline reports it and moves on to the next file.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ingest.chunking import Heading, find_headings
from ingest.cleaning import clean_markdown, clean_text
from rag.events import EventInfo, format_event, parse_event

MARKDOWN_SUFFIXES = {".md", ".markdown"}
HTML_SUFFIXES = {".html", ".htm"}
TEXT_SUFFIXES = {".txt"}
SUPPORTED_SUFFIXES = MARKDOWN_SUFFIXES | HTML_SUFFIXES | TEXT_SUFFIXES

# "---\n<yaml>\n---\n" (or "..." closing, as YAML allows) at the very start of the file.
FRONT_MATTER_OPEN = re.compile(r"\A---[ \t]*\r?\n")
FRONT_MATTER_CLOSE = re.compile(r"^(?:---|\.\.\.)[ \t]*(?:\r?\n|\Z)", re.MULTILINE)
EVENT_YEAR_IN_TEXT = re.compile(r"(?:kubecon|cloudnativecon)[^\n]{0,60}?\b(20[12]\d)\b", re.IGNORECASE)
DATE_IN_NAME = re.compile(r"(20[12]\d)-([01]\d)-([0-3]\d)")


class LoadError(Exception):
    """A file that cannot be ingested; ``str(error)`` is the reason shown to the user."""


@dataclass
class Document:
    """One post, ready to chunk. ``body_start`` is where the text after the front matter begins."""

    doc_id: str
    path: Path
    kind: str  # markdown | html | text
    source_text: str
    body_start: int
    headings: list[Heading]
    title: str
    event: str = ""
    year: int = 0
    city: str = ""
    region: str = ""
    date: str = ""
    author: str = ""
    url: str = ""
    extra: dict = field(default_factory=dict)


@dataclass(frozen=True)
class FoundFile:
    path: Path
    root: Path | None  # the directory argument it was found under (None for a file argument)


def discover(
    paths: Iterable[Path], follow_symlinks: bool = False
) -> tuple[list[FoundFile], list[tuple[Path, str]]]:
    """Walk directory arguments for supported files (hidden entries skipped); keep file arguments.

    Returns the files in a stable order and ``(path, reason)`` for what could not be walked or is not
    a post to read: an unsupported type, something other than a regular file (a FIFO would block the
    read forever, a device never ends), or a symlink leaving the directory walked (unless
    ``follow_symlinks``: a link to ``/etc/hostname`` must not become a post). Missing paths are the
    caller's usage error and must be checked before.
    """
    found: list[FoundFile] = []
    problems: list[tuple[Path, str]] = []
    for root in paths:
        if root.is_dir():
            walk_errors: list[OSError] = []
            for directory, dirnames, filenames in os.walk(root, onerror=walk_errors.append):
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
                for name in sorted(filenames):
                    if name.startswith("."):
                        continue
                    path = Path(directory) / name
                    if path.suffix.lower() not in SUPPORTED_SUFFIXES:
                        continue
                    reason = not_a_post_file(path) or (
                        "" if follow_symlinks else leaves_directory(path, root)
                    )
                    if reason:
                        problems.append((path, reason))
                    else:
                        found.append(FoundFile(path, root))
            for error in walk_errors:
                problems.append(
                    (Path(error.filename or root), f"{UNREADABLE_DIRECTORY}: {error.strerror or error}")
                )
        elif path_suffix_supported(root):
            reason = not_a_post_file(root)
            if reason:
                problems.append((root, reason))
            else:
                found.append(FoundFile(root, None))
        else:
            problems.append(
                (
                    root,
                    f"unsupported file type {root.suffix or '(none)'!r}; supported: {', '.join(sorted(SUPPORTED_SUFFIXES))}",
                )
            )
    return found, problems


UNREADABLE_DIRECTORY = "cannot read directory"
_FILE_KINDS = {
    stat.S_IFIFO: "a FIFO (named pipe)",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
    stat.S_IFDIR: "a directory",
}


def not_a_post_file(path: Path) -> str:
    """Why ``path`` (followed if a symlink) is not a regular file to read, or "" when it is.

    A missing target is left to the read, which says so."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return ""
    if stat.S_ISREG(mode):
        return ""
    kind = _FILE_KINDS.get(stat.S_IFMT(mode), "not a regular file")
    return f"not a regular file: {kind}" + (" (a symlink to it)" if path.is_symlink() else "")


def leaves_directory(path: Path, root: Path) -> str:
    """Why a symlink under ``root`` is not followed (its target lies outside ``root``), or ""."""
    if not path.is_symlink():  # (os.walk does not descend into symlinked directories)
        return ""
    try:
        target = path.resolve()
    except OSError:
        return ""
    if target.is_relative_to(root.resolve()):
        return ""
    return f"symlink to {target}, outside {root} (pass --follow-symlinks to ingest it)"


def path_suffix_supported(path: Path) -> bool:
    return path.suffix.lower() in SUPPORTED_SUFFIXES


def read_bytes(path: Path, max_bytes: int) -> bytes:
    """The file's bytes, refusing empty, oversized and unreadable files with a clear reason.

    The limit is enforced on what is read, not on ``st_size`` alone: a file that grows while read, or a
    special file that reports size 0, stops at ``max_bytes``."""
    reason = not_a_post_file(path)
    if reason:
        raise LoadError(reason)
    too_big = f"over the {max_bytes:,}-byte limit (raise KQA_MAX_FILE_BYTES to ingest it)"
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise LoadError(f"cannot read file: {exc.strerror or exc}") from None
    if size > max_bytes:
        raise LoadError(f"file is {size:,} bytes, {too_big}")
    try:
        with path.open("rb") as handle:
            data = handle.read(max_bytes + 1)
    except OSError as exc:
        raise LoadError(f"cannot read file: {exc.strerror or exc}") from None
    if len(data) > max_bytes:
        raise LoadError(f"file is longer than it says, {too_big}")
    if not data.strip():
        raise LoadError("empty file")
    return data


def decode_text(data: bytes) -> str:
    """UTF-8 text (a BOM is dropped); binary and mis-encoded files are refused."""
    if b"\x00" in data:  # anywhere: NULs after the first 8 KB are binary too
        raise LoadError("binary file (contains NUL bytes), not text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise LoadError(
            f"not valid UTF-8: byte 0x{data[exc.start]:02x} at offset {exc.start} (re-save the file as UTF-8)"
        ) from None


def split_front_matter(text: str) -> tuple[dict, int]:
    """Parse leading YAML front matter; returns (fields, offset where the body starts)."""
    opening = FRONT_MATTER_OPEN.match(text)
    if not opening:
        return {}, 0
    closing = FRONT_MATTER_CLOSE.search(text, opening.end())
    if not closing:
        raise LoadError("broken front matter: the opening '---' line has no closing '---' line")
    raw = text[opening.end() : closing.start()]
    try:
        fields = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 2}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise LoadError(f"broken front matter: invalid YAML{where}: {problem}") from None
    if fields is None:
        fields = {}
    if not isinstance(fields, dict):
        raise LoadError(
            f"broken front matter: expected 'key: value' lines, got a YAML {type(fields).__name__}"
        )
    return fields, closing.end()


def _scalar_text(value: object) -> str:
    """A YAML scalar as text; "" for None and for containers (see :func:`_text_field`)."""
    if value is None or isinstance(value, list | tuple | dict | set):
        return ""
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return str(value).strip()


def _text_field(fields: dict, *names: str) -> str:
    """The first non-empty field among ``names``; a flat list ("authors: [A, B]") is joined with commas.

    Nested values are not text: printing them could also expand YAML aliases without bound (a few hundred
    bytes of ``&a [*b, *b, ...]`` front matter print as gigabytes), so they are ignored.
    """
    for name in names:
        value = fields.get(name)
        if isinstance(value, list | tuple):
            text = ", ".join(t for t in map(_scalar_text, value) if t)
        else:
            text = _scalar_text(value)
        if text:
            return text
    return ""


def _iso_date(value: str) -> str:
    """Normalise a date string to YYYY-MM-DD where it starts with one; keep it as given otherwise."""
    match = re.match(r"\s*(\d{4})-(\d{1,2})-(\d{1,2})", value)
    if match:
        year, month, day = (int(g) for g in match.groups())
        try:
            return dt.date(year, month, day).isoformat()
        except ValueError:
            return value.strip()
    return value.strip()


def _public_url(fields: dict) -> str:
    """The post's URL: an explicit url/link field, else its GitHub source (``source_repo`` + ``source_path``)."""
    for name in ("url", "link", "canonical_url", "permalink", "source_url", "source"):
        value = _text_field(fields, name)
        if value.startswith(("http://", "https://")):
            return value
    repo, path = _text_field(fields, "source_repo"), _text_field(fields, "source_path")
    if re.fullmatch(r"[\w.-]+/[\w.-]+", repo) and path:
        ref = _text_field(fields, "source_commit") or "HEAD"
        return f"https://github.com/{repo}/blob/{ref}/{path.lstrip('/')}"
    return ""


def _merge_event_info(infos: Iterable[EventInfo]) -> EventInfo:
    """First year and first city over sources in order of trust; the region follows the city."""
    year, city, region, virtual = None, "", "", False
    for info in infos:
        year = year or info.year
        if not city and info.city:
            city, region = info.city, info.region
        region = region or info.region
        virtual = virtual or info.virtual
    return EventInfo(year=year, city=city, region=region, virtual=virtual)


def derive_event(explicit: str, title: str, stem: str, body: str, date: str) -> tuple[str, EventInfo]:
    """Event name and (year, city, region): front matter first, else title, file name, then the text.

    Only cities and "KubeCon ... 2022" years are trusted from the body text; region words such as
    "us" or "eu" are too common in prose.
    """
    if explicit:
        info = parse_event(explicit)
        if info.year is None:
            info = _merge_event_info([info, parse_event(title)])
        return explicit, info
    head = body[:3000]
    from_text = parse_event(head)
    year_match = EVENT_YEAR_IN_TEXT.search(head)
    body_info = EventInfo(
        year=int(year_match.group(1)) if year_match else None,
        city=from_text.city,
        region=from_text.region if from_text.city else "",
        virtual=False,
    )
    date_info = EventInfo(year=int(date[:4]) if re.match(r"20[12]\d", date) else None)
    info = _merge_event_info(
        [parse_event(title), parse_event(stem.replace("-", " ").replace("_", " ")), body_info, date_info]
    )
    if not (info.city or info.region):
        return "", info  # a bare year names no event
    return format_event(info), info


def _title_from_headings(headings: list[Heading]) -> str:
    top = [h for h in headings if h.level == 1] or headings
    return top[0].text if top else ""


def _load_html(text: str) -> tuple[str, dict]:
    """Render an HTML page's main content as Markdown (headings kept, so chunking sees structure)."""
    from bs4 import BeautifulSoup
    from markdownify import MarkdownConverter

    soup = BeautifulSoup(text, "lxml")
    fields: dict = {}

    def meta(*names: str) -> str:
        for name in names:
            tag = soup.find("meta", attrs={"name": name}) or soup.find("meta", attrs={"property": name})
            if tag and tag.get("content"):
                return str(tag["content"]).strip()
        return ""

    if soup.title and soup.title.string:
        fields["title"] = soup.title.string.strip()
    fields["title"] = meta("og:title") or fields.get("title", "")
    fields["author"] = meta("author", "article:author")
    fields["date"] = meta("article:published_time", "date", "pubdate", "dc.date")
    fields["event"] = meta("event", "kubecon:event")
    canonical = soup.find("link", rel="canonical")
    fields["url"] = meta("og:url") or (str(canonical["href"]) if canonical and canonical.get("href") else "")
    for tag in soup(["script", "style", "noscript", "template", "nav", "header", "footer", "aside", "form"]):
        tag.decompose()
    content = soup.find("article") or soup.find("main") or soup.body or soup
    markdown = MarkdownConverter(heading_style="ATX", bullets="-", strip=["img"]).convert_soup(content)
    markdown = re.sub(r"[ \t]+\n", "\n", markdown)
    markdown = re.sub(r"\n{3,}", "\n\n", markdown).strip() + "\n"
    return markdown, {k: v for k, v in fields.items() if v}


def load_document(path: Path, data: bytes) -> Document:
    """Parse one file's bytes into a :class:`Document` (raises :class:`LoadError`)."""
    text = decode_text(data)
    suffix = path.suffix.lower()
    if suffix in HTML_SUFFIXES:
        kind = "html"
        try:
            source_text, fields = _load_html(text)
        except RecursionError:  # BeautifulSoup and markdownify walk the tree recursively
            raise LoadError(
                "HTML nested too deeply to convert (thousands of unclosed tags); fix or simplify the page"
            ) from None
        source_text, body_start = clean_markdown(source_text), 0
    else:
        kind = "markdown" if suffix in MARKDOWN_SUFFIXES else "text"
        fields, body_start = split_front_matter(text)
        clean = clean_markdown if kind == "markdown" else clean_text
        source_text = text[:body_start] + clean(text[body_start:])
    body = source_text[body_start:]
    if not body.strip():
        raise LoadError("empty file: no text after the front matter" if body_start else "empty file: no text")

    headings = find_headings(body, offset=body_start) if kind != "text" else []
    first_line = body.strip().splitlines()[0].strip()
    title = (
        _text_field(fields, "title")
        or _title_from_headings(headings)
        or (first_line[:120] if kind == "text" else "")
        or path.stem
    )
    date = _iso_date(_text_field(fields, "date", "published", "pubDate"))
    if not date and (match := DATE_IN_NAME.search(path.name)):
        date = _iso_date(match.group(0))
    event, info = derive_event(_text_field(fields, "event", "conference"), title, path.stem, body, date)
    return Document(
        doc_id=path.stem,
        path=path,
        kind=kind,
        source_text=source_text,
        body_start=body_start,
        headings=headings,
        title=title,
        event=event,
        year=info.year or 0,
        city=info.city,
        region=info.region,
        date=date,
        author=_text_field(fields, "author", "authors"),
        url=_public_url(fields),
        extra={k: v for k, v in fields.items() if k in ("language", "license")},
    )
