"""The README's "LangChain" snippets, run exactly as written against the fixture store (extractive backend)."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def langchain_snippets() -> list[str]:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("\n## LangChain\n") :]
    section = section[: section.index("\n## ", 1)]
    return re.findall(r"```python\n(.*?)```", section, re.S)


def test_the_readme_langchain_snippets_run_as_written(fixture_settings, assistant, monkeypatch, capsys):
    from rag.settings import get_settings

    monkeypatch.setenv("KQA_HOME", str(fixture_settings.home))
    monkeypatch.setenv("KQA_LLM_BACKEND", "extractive")
    for name in ("KQA_CHROMA_URL", "KQA_CHROMA_PATH", "OTEL_EXPORTER_OTLP_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    try:
        snippets = langchain_snippets()
        assert len(snippets) == 3
        namespace: dict = {}
        for snippet in snippets:
            exec(compile(snippet, str(README), "exec"), namespace)  # noqa: S102 - the README's own code
    finally:
        get_settings.cache_clear()
    out = capsys.readouterr().out
    assert namespace["qa"].settings.home == fixture_settings.home
    retrieved = out[: out.index("Human: Answer from these recaps")].splitlines()
    assert retrieved and all(line.startswith("detroit-2022-platform ") for line in retrieved)  # within the event
    assert out.count("## Backstage everywhere") == 2  # the LCEL prompt holds the passage; so does the tool's text
    assert "['chicago-2023-wasm']" in out  # the follow-up's verified answer cites the Chicago post
    assert out.splitlines()[-1].startswith("['chicago-2023-wasm'")  # langchain_chroma over the same collection
