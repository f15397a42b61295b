"""Fixtures shared by every test area: settings in a temporary home, ingested stores, a Chroma server.

Nothing here touches the checkout's own ``.kqa/``: each fixture builds ``Settings(home=tmp)`` with
the environment's store location overridden, so a developer's ``KQA_CHROMA_URL`` cannot leak in.
The ingested fixtures are session-scoped because embedding the corpus is the slow part.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.processes import chroma_command, free_port, running_server

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_CORPUS = REPO_ROOT.parent / "shared" / "corpus" / "articles"
SEED_DATA = REPO_ROOT / "data"


def make_settings(home: Path, **overrides):
    """Settings rooted in ``home`` (embedded store under it unless ``chroma_url`` is given); no .env file."""
    from rag.settings import Settings

    values = {"home": home, "chroma_path": None, "chroma_url": None, **overrides}
    return Settings(_env_file=None, **values)


@pytest.fixture(scope="session")
def settings_factory():
    """``settings_factory(home, **overrides)`` -> Settings rooted in ``home`` (see :func:`make_settings`)."""
    return make_settings


@pytest.fixture(scope="session")
def seed_data_dir() -> Path:
    """The repo's default corpus, ``data/`` (the two seed posts)."""
    return SEED_DATA


@pytest.fixture(scope="session")
def shared_corpus_dir() -> Path:
    """The 84-article shared corpus (read-only; never copied into the repo)."""
    if not SHARED_CORPUS.is_dir() or not any(SHARED_CORPUS.glob("*.md")):
        pytest.skip(f"shared corpus not found at {SHARED_CORPUS}")
    return SHARED_CORPUS


@pytest.fixture(scope="session")
def seed_settings(tmp_path_factory):
    """Settings whose embedded store holds the two seed posts of ``data/`` (ingested once per session)."""
    from ingest.pipeline import run_ingest

    settings = make_settings(tmp_path_factory.mktemp("seed-home"))
    summary = run_ingest(paths=[SEED_DATA], settings=settings)
    assert summary.exit_code == 0, summary.to_dict()
    return settings


@pytest.fixture(scope="session")
def corpus_settings(tmp_path_factory, shared_corpus_dir):
    """Settings whose embedded store holds the whole shared corpus (ingested once per session)."""
    from ingest.pipeline import run_ingest

    settings = make_settings(tmp_path_factory.mktemp("corpus-home"))
    summary = run_ingest(paths=[shared_corpus_dir], settings=settings)
    assert summary.exit_code == 0, summary.to_dict()
    return settings


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory):
    """A real ``chroma run`` on a free loopback port with its data in a temporary directory; yields its URL."""
    data_dir = tmp_path_factory.mktemp("chroma-server")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with running_server(
        chroma_command(data_dir / "db", port),
        health_url=f"{url}/api/v2/heartbeat",
        log_path=data_dir / "server.log",
        env={**os.environ, "ANONYMIZED_TELEMETRY": "False"},
        name="chroma run",
    ):
        yield url
