"""``python app.py api`` as a real subprocess on a free loopback port, over a home ingested by ``python -m
ingest`` in its own process (the embedded store is locked by the one process that opens it, so the test
process never opens it)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support.processes import free_port, log_tail, start_server, stop_process

REPO = Path(__file__).resolve().parents[2]
API_KEY = "kqa-test-key-3f9a1c7e5b"
OTHER_KEY = "kqa-demo-key-5e1d7c"  # the README's example key (its snippets run as written)


def base_env(home: Path, data_dir: Path, **extra: str) -> dict[str, str]:
    """The environment without the developer's KQA_* settings, rooted in ``home``; extractive by default."""
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("KQA_")},
        "KQA_HOME": str(home),
        "KQA_DATA_DIR": str(data_dir),
        "KQA_LLM_BACKEND": "extractive",
        "HF_HUB_OFFLINE": "1",
        "ANONYMIZED_TELEMETRY": "False",
        "GRADIO_ANALYTICS_ENABLED": "False",
        # One shared service answers a whole test module within a minute: only the test of the limit
        # itself sets a low one, so no other test depends on how fast the machine runs them.
        "KQA_API_RATE_LIMIT": "100000/minute",
        **extra,
    }


def ingest_home(home: Path, data_dir: Path) -> Path:
    """``python -m ingest DATA`` into ``home`` (a subprocess, so this process holds no store lock)."""
    home.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [sys.executable, "-m", "ingest", str(data_dir)], cwd=REPO, env=base_env(home, data_dir),
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return home


def copy_home(home: Path, to: Path) -> Path:
    """A copy of an ingested home for a second process (each embedded store serves one process)."""
    shutil.copytree(home, to)
    return to


@dataclass
class ApiServer:
    url: str
    home: Path
    log_path: Path
    process: subprocess.Popen
    keys: tuple[str, ...]

    def log(self, chars: int = 20000) -> str:
        return log_tail(self.log_path, chars)

    @property
    def key(self) -> str:
        return self.keys[0]


def start_api(home: Path, data_dir: Path, keys: tuple[str, ...] = (), timeout: float = 300, **env: str) -> ApiServer:
    """Start ``python app.py api`` on 127.0.0.1 and wait until ``/healthz`` answers (after its warm-up)."""
    port = free_port()
    extra = {"KQA_API_KEYS": ",".join(keys)} if keys else {}
    log_path = home / f"api-{port}.log"
    process = start_server(
        [sys.executable, "app.py", "api", "--host", "127.0.0.1", "--port", str(port)],
        health_url=f"http://127.0.0.1:{port}/healthz", log_path=log_path, cwd=REPO,
        env=base_env(home, data_dir, **extra, **env), timeout=timeout, name="app.py api",
    )  # fmt: skip
    return ApiServer(f"http://127.0.0.1:{port}", home, log_path, process, keys)


def stop_api(server: ApiServer) -> None:
    stop_process(server.process, timeout=20)


@contextmanager
def answer_service(root: Path, data_dir: Path, keys: tuple[str, ...] = (API_KEY,), **env: str) -> Iterator[ApiServer]:
    """An answer service over ``data_dir`` (ingested into ``root/home`` first) for the front ends' tests."""
    server = start_api(ingest_home(root / "home", data_dir), data_dir, keys=keys, **env)
    try:
        yield server
    finally:
        stop_api(server)
