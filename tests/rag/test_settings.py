"""The README's settings table is generated from the one settings object, so the two never drift."""

from __future__ import annotations

from pathlib import Path

from rag.settings import Settings, settings_table

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_settings_table_is_the_generated_one():
    text = README.read_text(encoding="utf-8")
    start = text.index("<!-- settings-table")
    body = text[text.index("\n", start) + 1 : text.index("<!-- /settings-table -->")].strip()
    assert body == settings_table(), "README settings table is stale: paste rag.settings.settings_table()"


def test_every_setting_is_documented():
    assert all(field.description for field in Settings.model_fields.values())


def test_every_setting_is_in_exactly_one_concern():
    from rag.settings import GROUPS

    names = [name for group in GROUPS for name in group.model_fields]
    assert sorted(names) == sorted(Settings.model_fields)
    assert all(issubclass(Settings, group) for group in GROUPS)
