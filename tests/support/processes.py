"""Real server processes on loopback for tests and benchmarks: pick a port, start, wait until up, stop.

One implementation for every server the suite and ``bench/`` start (``chroma run``, ``llama_cpp.server``,
``app.py``, the Slack bot): a process that exits early or never answers fails with the tail of its log.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path


class ServerStartError(RuntimeError):
    """The server exited before answering, or did not answer in time (the message holds its log tail)."""


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def log_tail(path: Path, chars: int = 3000) -> str:
    return path.read_text(errors="replace")[-chars:] if path.exists() else ""


def answers(url: str, timeout: float = 2.0) -> bool:
    """Does ``url`` answer a GET with 200?"""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status == 200
    except OSError:
        return False


def wait_until_up(
    url: str, process: subprocess.Popen, log_path: Path, *, timeout: float, name: str, poll: float = 0.3
) -> None:
    """Return once ``url`` answers 200; raise :class:`ServerStartError` if ``process`` exits or time runs out."""
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise ServerStartError(f"{name} exited with {process.returncode}:\n{log_tail(log_path)}")
        if answers(url):
            return
        if time.monotonic() > deadline:
            raise ServerStartError(f"{name} did not answer {url} within {timeout:.0f} s:\n{log_tail(log_path)}")
        time.sleep(poll)


def chroma_command(data_dir: Path, port: int) -> list[str]:
    """``chroma run`` serving ``data_dir`` on a loopback ``port`` (the venv's own ``chroma`` when there is one)."""
    executable = Path(sys.executable).parent / "chroma"
    return [str(executable) if executable.exists() else "chroma", "run", "--path", str(data_dir),
            "--host", "127.0.0.1", "--port", str(port)]  # fmt: skip


def start_server(
    command: Sequence[str],
    *,
    health_url: str,
    log_path: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 60,
    name: str | None = None,
) -> subprocess.Popen:
    """Start ``command`` (output appended to ``log_path``) and wait until ``health_url`` answers."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            list(command), cwd=cwd, env=dict(env) if env is not None else None, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        wait_until_up(health_url, process, log_path, timeout=timeout, name=name or Path(command[0]).name)
    except BaseException:
        stop_process(process)
        raise
    return process


def stop_process(process: subprocess.Popen, timeout: float = 15) -> None:
    """SIGTERM, then SIGKILL if it has not exited within ``timeout`` seconds."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def running_server(
    command: Sequence[str], *, stop_timeout: float = 15, **start_options
) -> Iterator[subprocess.Popen]:
    """:func:`start_server` for the duration of a ``with`` block."""
    process = start_server(command, **start_options)
    try:
        yield process
    finally:
        stop_process(process, stop_timeout)
