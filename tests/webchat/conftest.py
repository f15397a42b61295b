"""Real web chat processes for the browser tests: ``python app.py`` on a free loopback port, own home."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
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


def free_port() -> int:
    with closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class WebApp:
    url: str
    home: Path
    log_path: Path
    process: subprocess.Popen

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]


def start_web_app(
    home: Path, data_dir: Path, extra_env: dict[str, str] | None = None, timeout: float = 300
) -> WebApp:
    """Start app.py as a subprocess and wait until it serves its page (start-up ingest included)."""
    home.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {
        **{name: value for name, value in os.environ.items() if not name.startswith("KQA_")},
        "KQA_HOME": str(home),
        "KQA_DATA_DIR": str(data_dir),
        "KQA_LLM_BACKEND": "extractive",
        "GRADIO_ANALYTICS_ENABLED": "False",
        "HF_HUB_OFFLINE": "1",
        **(extra_env or {}),
    }
    log_path = home / "app.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, str(REPO / "app.py"), "--host", "127.0.0.1", "--port", str(port)],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    app = WebApp(f"http://127.0.0.1:{port}/", home, log_path, process)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"app.py exited with {process.returncode}:\n{app.log_tail()}")
        try:
            with urllib.request.urlopen(app.url, timeout=5) as response:
                if response.status == 200:
                    return app
        except OSError:
            time.sleep(0.5)
    stop_web_app(app)
    raise RuntimeError(f"app.py did not serve {app.url} within {timeout}s:\n{app.log_tail()}")


def stop_web_app(app: WebApp) -> None:
    app.process.terminate()
    try:
        app.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        app.process.kill()
        app.process.wait()


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
