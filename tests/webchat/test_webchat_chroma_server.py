"""The web chat against a real ``chroma run`` server (KQA_CHROMA_URL), driven through Gradio's HTTP API.

With a server, several processes share one index; the embedded store would lock the second one out.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import pytest

pytestmark = [pytest.mark.server, pytest.mark.timeout(600)]

REPO = Path(__file__).resolve().parents[2]


def test_two_web_chats_share_one_chroma_server(chroma_server, start_app, tmp_path):
    from gradio_client import Client

    data_dir = tmp_path / "data"
    shutil.copytree(REPO / "data", data_dir)
    env = {"KQA_CHROMA_URL": chroma_server, "KQA_COLLECTION": f"webchat_{uuid.uuid4().hex[:8]}"}
    first = start_app(tmp_path / "home-1", data_dir, env)  # ingests data/ into the server at start-up
    second = start_app(tmp_path / "home-2", data_dir, env)  # finds the index there, no lock conflict

    for app in (first, second):
        client = Client(app.url, verbose=False)
        assert f"Chroma server {chroma_server}" in app.log_tail(20_000)  # (the status view is not public API)
        _, chat, answer = client.predict(
            "What were the three big takeaways from KubeCon Detroit 2022?", [], "All events", "Any year",
            api_name="/chat",
        )  # fmt: skip
        assert answer["citations"], answer
        assert answer["citations"][0]["source_id"] == "seed-kubecon-detroit-2022-three-takeaways"
        assert "kqa-cited-post" in chat[-1]["content"][0]["text"]
    assert "ingesting" in first.log_tail(20_000) and "ingesting" not in second.log_tail(20_000)
