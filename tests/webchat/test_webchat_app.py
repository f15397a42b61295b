"""``app.py``: the web chat's options, and ``app.py slack ...`` handing over to the Slack bot's CLI."""

from __future__ import annotations

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
