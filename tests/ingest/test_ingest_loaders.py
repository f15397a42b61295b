"""Loading posts: front matter, derived metadata, HTML to text, and the bad-input set."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ingest.loaders import LoadError, decode_text, discover, load_document, read_bytes


def load(path: Path, text: str | bytes):
    data = text.encode("utf-8") if isinstance(text, str) else text
    path.write_bytes(data)
    return load_document(path, read_bytes(path, 1_000_000))


def test_front_matter_gives_the_metadata(tmp_path):
    doc = load(
        tmp_path / "alice-valencia.md",
        "---\n"
        'title: "Valencia highlights"\n'
        "date: 2022-05-20\n"
        'event: "KubeCon + CloudNativeCon Europe 2022 (Valencia)"\n'
        "author: [Alice, Bob]\n"
        "source_repo: alice/blog\n"
        "source_path: posts/valencia.md\n"
        "source_commit: abc123\n"
        "---\n\n# Something else\n\nBody text.\n",
    )
    assert doc.doc_id == "alice-valencia"
    assert doc.title == "Valencia highlights"
    assert doc.date == "2022-05-20"
    assert doc.event == "KubeCon + CloudNativeCon Europe 2022 (Valencia)"
    assert (doc.year, doc.city, doc.region) == (2022, "Valencia", "EU")
    assert doc.author == "Alice, Bob"
    assert doc.url == "https://github.com/alice/blog/blob/abc123/posts/valencia.md"
    assert doc.source_text[doc.body_start :].startswith("\n# Something else")


def test_explicit_url_wins_over_the_source_repo(tmp_path):
    doc = load(
        tmp_path / "p.md",
        "---\nurl: https://example.com/p\nsource_repo: a/b\nsource_path: p.md\n---\nText.\n",
    )
    assert doc.url == "https://example.com/p"


def test_without_front_matter_title_and_event_are_derived(tmp_path):
    doc = load(
        tmp_path / "notes-kubecon-detroit-2022.md",
        "Some intro line.\n\n# Three takeaways from KubeCon\n\nWe spent a week in the motor city.\n",
    )
    assert doc.title == "Three takeaways from KubeCon"
    assert (doc.year, doc.city, doc.region) == (2022, "Detroit", "NA")
    assert doc.event == "KubeCon + CloudNativeCon North America 2022 (Detroit)"
    assert doc.date == ""


def test_event_from_the_text_trusts_cities_and_kubecon_years_only(tmp_path):
    doc = load(
        tmp_path / "trip-notes.md",
        "# Trip notes\n\nLet us talk about KubeCon 2019. The venue in Barcelona was huge; back in 2017 it was small.\n",
    )
    assert (doc.year, doc.city, doc.region) == (2019, "Barcelona", "EU")
    plain = load(tmp_path / "random.md", "# Random\n\nLet us talk about things in 2019.\n")
    assert (plain.event, plain.city, plain.region) == ("", "", "")


def test_title_falls_back_to_the_file_stem_and_date_to_the_file_name(tmp_path):
    doc = load(tmp_path / "2023-04-18-kubecon-amsterdam.md", "Just text, no heading.\n")
    assert doc.title == "2023-04-18-kubecon-amsterdam"
    assert doc.date == "2023-04-18"
    assert (doc.year, doc.city) == (2023, "Amsterdam")


def test_plain_text_title_is_its_first_line_and_hash_lines_are_not_headings(tmp_path):
    doc = load(tmp_path / "notes.txt", "KubeCon Paris 2024 notes\n\n# not a heading in a .txt\nMore.\n")
    assert doc.kind == "text"
    assert doc.title == "KubeCon Paris 2024 notes"
    assert doc.headings == []
    assert (doc.year, doc.city) == (2024, "Paris")


def test_html_becomes_clean_markdown_with_headings_and_meta(tmp_path):
    html = """<!doctype html><html><head>
      <title>Site | KubeCon Chicago recap</title>
      <meta name="author" content="Dana">
      <meta property="article:published_time" content="2023-11-10T08:00:00Z">
      <link rel="canonical" href="https://blog.example/kubecon-chicago">
      <script>var tracking = "do not index me";</script><style>h1 {color: red}</style>
    </head><body>
      <nav>Home | About</nav>
      <article><h1>KubeCon Chicago 2023 recap</h1>
        <p>Platform <b>engineering</b> everywhere &amp; more.</p>
        <h2>Keynotes</h2><ul><li>OpenTelemetry</li><li>Cilium</li></ul>
      </article>
      <footer>(c) 2023</footer>
    </body></html>"""
    doc = load(tmp_path / "chicago.html", html)
    assert doc.kind == "html"
    text = doc.source_text
    assert (
        "tracking" not in text
        and "color: red" not in text
        and "Home | About" not in text
        and "(c) 2023" not in text
    )
    assert "# KubeCon Chicago 2023 recap" in text
    assert "Platform engineering everywhere & more." in text
    assert "## Keynotes" in text and "- OpenTelemetry" in text
    assert [h.text for h in doc.headings] == ["KubeCon Chicago 2023 recap", "Keynotes"]
    assert doc.title == "Site | KubeCon Chicago recap"
    assert (doc.author, doc.date, doc.url) == ("Dana", "2023-11-10", "https://blog.example/kubecon-chicago")
    assert (doc.year, doc.city, doc.region) == (2023, "Chicago", "NA")


def test_utf8_bom_is_dropped():
    assert decode_text("\ufeff# Title\n".encode()) == "# Title\n"


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "empty file"),
        (b"   \n\n\t\n", "empty file"),
        (b"---\ntitle: only front matter\n---\n\n  \n", "empty file: no text after the front matter"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", "binary file"),
        ("caf\u00e9 au lait".encode("latin-1"), "not valid UTF-8: byte 0xe9 at offset 3"),
        (b"---\ntitle: x\nno closing line\n", "broken front matter: the opening '---' line has no closing"),
        (b"---\ntitle: [unclosed\n---\nBody\n", "broken front matter: invalid YAML"),
        (b"---\n- a\n- b\n---\nBody\n", "broken front matter: expected 'key: value' lines, got a YAML list"),
    ],
    ids=[
        "empty",
        "whitespace",
        "front-matter-only",
        "binary",
        "latin-1",
        "unclosed",
        "bad-yaml",
        "yaml-list",
    ],
)
def test_bad_inputs_are_refused_with_a_clear_reason(tmp_path, content, reason):
    with pytest.raises(LoadError) as excinfo:
        load(tmp_path / "bad.md", content)
    assert reason in str(excinfo.value)


def test_huge_files_are_refused_before_reading(tmp_path):
    path = tmp_path / "huge.md"
    path.write_text("# Big\n\n" + "word " * 1000)
    with pytest.raises(LoadError, match=r"over the 1,000-byte limit \(raise KQA_MAX_FILE_BYTES"):
        read_bytes(path, 1000)


def test_unreadable_files_are_refused(tmp_path):
    dangling = tmp_path / "gone.md"
    dangling.symlink_to(tmp_path / "missing-target.md")
    with pytest.raises(LoadError, match="cannot read file: No such file or directory"):
        read_bytes(dangling, 1000)
    if os.geteuid() != 0:  # root reads anything
        locked = tmp_path / "locked.md"
        locked.write_text("# Locked\n")
        locked.chmod(0)
        with pytest.raises(LoadError, match="cannot read file: Permission denied"):
            read_bytes(locked, 1000)


def test_discover_walks_directories_for_supported_files_only(tmp_path):
    (tmp_path / "a.md").write_text("x")
    (tmp_path / "b.HTML").write_text("x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "c.txt").write_text("x")
    (tmp_path / "sub" / "d.markdown").write_text("x")
    (tmp_path / "image.png").write_bytes(b"\x89PNG")
    (tmp_path / ".hidden.md").write_text("x")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "e.md").write_text("x")
    single = tmp_path / "notes.pdf"
    single.write_bytes(b"%PDF")
    found, problems = discover([tmp_path, single])
    assert sorted(f.path.relative_to(tmp_path).as_posix() for f in found) == [
        "a.md",
        "b.HTML",
        "sub/c.txt",
        "sub/d.markdown",
    ]
    assert all(f.root == tmp_path for f in found)
    assert problems == [
        (single, "unsupported file type '.pdf'; supported: .htm, .html, .markdown, .md, .txt")
    ]
