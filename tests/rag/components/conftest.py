"""Fixtures for the LLM component tests: the real embedded model (assembled once), a real llama.cpp server."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import pytest

from rag.components.gguf import ensure_gguf, get_model_package
from tests.support.processes import free_port, running_server

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


@pytest.fixture
def unused_port() -> int:
    """A loopback port nothing listens on (the 'server is down' case)."""
    return free_port()


@pytest.fixture(scope="module")
def llama_server(embedded_gguf, tmp_path_factory):
    """A real ``python -m llama_cpp.server`` on loopback serving the 0.5B model; yields its /v1 base URL."""
    port = free_port()
    command = [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(embedded_gguf),
        "--model_alias", DEFAULT_MODEL,
        "--host", "127.0.0.1",
        "--port", str(port),
        "--n_ctx", "2048",
        "--n_threads", str(min(2, os.cpu_count() or 1)),
    ]  # fmt: skip
    base_url = f"http://127.0.0.1:{port}/v1"
    with running_server(
        command,
        health_url=f"{base_url}/models",
        log_path=tmp_path_factory.mktemp("llama-server") / "server.log",
        timeout=120,
        stop_timeout=5,
        name="llama_cpp.server",
    ):
        yield base_url


@pytest.fixture
def hung_server():
    """A TCP listener that completes handshakes but never answers: the 'server is wedged' failure mode
    (shared by the sync and async OpenAI-backend tests)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
