"""``app.py``: the web chat's options, and ``app.py slack ...`` handing over to the Slack bot's CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO / "app.py"), *args], cwd=REPO, capture_output=True, text=True, timeout=120
    )


def test_help_lists_host_and_port():
    result = _run("--help")
    assert result.returncode == 0
    assert "--host" in result.stdout and "--port" in result.stdout and "slack" in result.stdout


def test_bad_port_is_a_usage_error_not_a_traceback():
    result = _run("--port", "not-a-number")
    assert result.returncode == 2
    assert "invalid int value" in result.stderr and "Traceback" not in result.stderr


def test_slack_subcommand_delegates_to_the_slack_cli():
    result = _run("slack", "--help")
    assert result.returncode == 0, result.stderr
    # the Slack CLI's own options, not the web chat's
    assert "--mode" in result.stdout and "--host" in result.stdout
    assert "web chat" not in result.stdout.lower()


def test_gradio_server_variables_are_the_defaults_and_options_win(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO))
    from app import parse_args

    monkeypatch.setenv("GRADIO_SERVER_NAME", "0.0.0.0")
    monkeypatch.setenv("GRADIO_SERVER_PORT", "7999")
    args = parse_args([])
    assert (args.host, args.port) == ("0.0.0.0", 7999)
    args = parse_args(["--host", "127.0.0.1", "--port", "8001"])
    assert (args.host, args.port) == ("127.0.0.1", 8001)
    monkeypatch.delenv("GRADIO_SERVER_NAME")
    monkeypatch.delenv("GRADIO_SERVER_PORT")
    assert (parse_args([]).host, parse_args([]).port) == ("127.0.0.1", 7860)


def test_a_bad_gradio_server_port_is_a_usage_error():
    result = subprocess.run(
        [sys.executable, str(REPO / "app.py")], cwd=REPO, capture_output=True, text=True, timeout=120,
        env={**os.environ, "GRADIO_SERVER_PORT": "http"},
    )  # fmt: skip
    assert result.returncode == 2
    assert "GRADIO_SERVER_PORT='http' is not a port number" in result.stderr and "Traceback" not in result.stderr


def test_version_comes_from_the_package_metadata():
    from importlib.metadata import version

    result = _run("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"kubecon-qa {version('kubecon-qa')}"
