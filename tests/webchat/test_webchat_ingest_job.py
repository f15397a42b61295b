"""The page's re-ingest job over a real embedded store: it never deletes what a failed mount hides."""

from __future__ import annotations

import shutil

from rag.components.store import get_collection
from webchat.ingest_job import run_ingest_job


def test_a_re_ingest_of_an_emptied_data_folder_keeps_the_index(tmp_path, settings_factory, seed_data_dir):
    data = tmp_path / "data"
    shutil.copytree(seed_data_dir, data)
    settings = settings_factory(tmp_path / "home", data_dir=data)
    *_, (first_line, _, first) = run_ingest_job(settings, [data])
    assert first["added"] == 2
    for path in data.iterdir():  # the mount failed: the folder is there, empty
        path.unlink()
    *_, (line, fraction, summary) = run_ingest_job(settings, [data])
    assert summary["deleted"] == 0 and len(summary["kept"]) == 2 and fraction == 1.0
    assert "kept 2 posts whose files are gone (no supported files found in" in line
    assert get_collection(settings).count() == first["chunks_in_store"]
