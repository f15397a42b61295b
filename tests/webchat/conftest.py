"""Real web chat processes for the browser tests: ``python app.py`` on a free loopback port, own home."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.support.processes import free_port
from tests.support.webapp import REPO, WebApp, start_web_app, stop_web_app

CHROMIUM = Path("/usr/bin/chromium")

# An article that tries to run script in the page three ways (title, body <script>, body <img onerror>).
HOSTILE_ARTICLE = """---
title: "WebAssembly sandboxes at KubeCon Paris <img src=x onerror=\\"window.__kqa_pwned=1\\">"
date: "2024-03-22"
event: "KubeCon + CloudNativeCon Europe 2024 (Paris)"
url: "https://example.org/kubecon-paris-2024-wasm"
---

# WebAssembly sandboxes at KubeCon Paris

WebAssembly sandboxing was the talk of the hallway track at KubeCon Paris 2024 <script>window.__kqa_pwned=2</script> and every WebAssembly talk was full.

The SpinKube project showed WebAssembly workloads running next to containers on Kubernetes <img src="x" onerror="window.__kqa_pwned=3"> in the keynote demo.

Speakers said WebAssembly modules start in under a millisecond, which makes WebAssembly sandboxes much faster to start than containers.
"""


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium driven by Playwright (``playwright install`` cannot download browsers offline)."""
    if not CHROMIUM.exists():
        pytest.skip("/usr/bin/chromium is absent (apt-get install chromium); the browser tests need it")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def seeded_app(tmp_path_factory):
    """The web chat over data/'s seed posts plus a hostile article, ingested by app.py at start-up."""
    root = tmp_path_factory.mktemp("webchat")
    data_dir = root / "data"
    data_dir.mkdir()
    for post in sorted((REPO / "data").glob("*.md")):
        shutil.copy(post, data_dir / post.name)
    (data_dir / "hostile-wasm-paris-2024.md").write_text(HOSTILE_ARTICLE, encoding="utf-8")
    app = start_web_app(root / "home", data_dir)
    yield app
    stop_web_app(app)


@pytest.fixture
def start_app():
    """``start_app(home, data_dir, extra_env)`` -> a running WebApp, stopped after the test."""
    started: list[WebApp] = []

    def start(home: Path, data_dir: Path, extra_env: dict[str, str] | None = None) -> WebApp:
        app = start_web_app(home, data_dir, extra_env)
        started.append(app)
        return app

    yield start
    for app in started:
        stop_web_app(app)


@pytest.fixture
def unused_port() -> int:
    return free_port()
