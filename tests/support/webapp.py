"""``python app.py`` (the web chat) as a real subprocess on a free loopback port, with its own home."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.support.processes import free_port, log_tail, start_server, stop_process

REPO = Path(__file__).resolve().parents[2]


@dataclass
class WebApp:
    url: str
    home: Path
    log_path: Path
    process: subprocess.Popen

    def log_tail(self, chars: int = 4000) -> str:
        return log_tail(self.log_path, chars)


def start_web_app(
    home: Path, data_dir: Path, extra_env: dict[str, str] | None = None, timeout: float = 300
) -> WebApp:
    """Start app.py and wait until it serves its page (start-up ingest included); extractive backend."""
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
    url = f"http://127.0.0.1:{port}/"
    log_path = home / "app.log"
    process = start_server(
        [sys.executable, str(REPO / "app.py"), "--host", "127.0.0.1", "--port", str(port)],
        health_url=url,
        log_path=log_path,
        env=env,
        cwd=REPO,
        timeout=timeout,
        name="app.py",
    )
    return WebApp(url, home, log_path, process)


def stop_web_app(app: WebApp) -> None:
    stop_process(app.process, timeout=20)
