"""Fixtures for the LLM component tests: the real embedded model (assembled once), a real llama.cpp server."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from rag.components.gguf import ensure_gguf, get_model_package

DEFAULT_MODEL = "qwen2.5-coder-0.5b"


@pytest.fixture(scope="session")
def embedded_home(tmp_path_factory) -> Path:
    """A KQA home whose models/ holds the assembled, verified default GGUF (assembled once per session)."""
    home = tmp_path_factory.mktemp("kqa-llm-home")
    ensure_gguf(get_model_package(DEFAULT_MODEL), home / "models")
    return home


@pytest.fixture(scope="session")
def embedded_gguf(embedded_home) -> Path:
    return embedded_home / "models" / get_model_package(DEFAULT_MODEL).filename


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def unused_port() -> int:
    """A loopback port nothing listens on (the 'server is down' case)."""
    return free_port()


@pytest.fixture(scope="module")
def llama_server(embedded_gguf, tmp_path_factory):
    """A real ``python -m llama_cpp.server`` on loopback serving the 0.5B model; yields its /v1 base URL."""
    port = free_port()
    log_path = tmp_path_factory.mktemp("llama-server") / "server.log"
    command = [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(embedded_gguf),
        "--model_alias", DEFAULT_MODEL,
        "--host", "127.0.0.1",
        "--port", str(port),
        "--n_ctx", "2048",
        "--n_threads", str(min(2, os.cpu_count() or 1)),
    ]  # fmt: skip
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                pytest.fail(
                    f"llama_cpp.server exited with {process.returncode}:\n{log_path.read_text()[-3000:]}"
                )
            try:
                if httpx.get(f"{base_url}/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"llama_cpp.server did not come up:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.3)
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
