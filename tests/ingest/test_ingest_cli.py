"""``python -m ingest``: output, JSON summary, exit statuses 0 / 1 / 2 and help text."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from ingest.cli import main

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

GOOD = "---\ntitle: Good post\nevent: KubeCon + CloudNativeCon Europe 2023 (Amsterdam)\n---\n\n# Good\n\nGitOps everywhere.\n"


def run_cli(*args: str, env: dict[str, str], timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ingest", *args],
        cwd=REPO_ROOT,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("KQA_")}, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def posts(tmp_path):
    directory = tmp_path / "posts"
    directory.mkdir()
    (directory / "good-amsterdam.md").write_text(GOOD)
    (directory / "second-post.md").write_text("# Second\n\nKubeCon Chicago 2023 recap.\n")
    return directory


def test_help_explains_the_job():
    result = run_cli("--help", env={})
    assert result.returncode == 0
    for phrase in (
        "Ingest KubeCon recap posts",
        "--prune",
        "--reset",
        "--dry-run",
        "--json",
        "exit status",
        "KQA_CHROMA_URL",
    ):
        assert phrase in result.stdout


@pytest.mark.parametrize(
    "args", [["--no-such-option"], ["/definitely/not/here"]], ids=["bad-option", "missing-path"]
)
def test_usage_errors_exit_2(args, tmp_path):
    result = run_cli(*args, env={"KQA_HOME": str(tmp_path)})
    assert result.returncode == 2
    assert "usage: python -m ingest" in result.stderr
    assert not (tmp_path / "chroma").exists(), "usage errors must not open the store"


def test_default_path_json_summary_and_exit_1_on_failures(tmp_path, posts):
    (posts / "broken.md").write_bytes(b"\xff\xfe not utf-8")
    env = {"KQA_HOME": str(tmp_path / "home"), "KQA_DATA_DIR": str(posts)}
    result = run_cli("--json", env=env)
    assert result.returncode == 1, result.stderr
    summary = json.loads(result.stdout)
    assert (summary["added"], summary["exit_code"]) == (2, 1)
    assert summary["failures"] == [
        {
            "path": str(posts / "broken.md"),
            "reason": "not valid UTF-8: byte 0xff at offset 0 (re-save the file as UTF-8)",
        }
    ]
    assert summary["store"] == f"embedded Chroma at {tmp_path / 'home' / 'chroma'}"
    assert {"scan", "read", "store", "chunk", "embed", "write", "total"} <= set(summary["seconds"])


def test_in_process_runs_print_one_line_and_exit_0(tmp_path, posts, capsys):
    store = tmp_path / "store"
    assert main([str(posts), "--chroma-path", str(store), "--collection", "cli_test"]) == 0
    first = capsys.readouterr().out.strip()
    assert first.startswith("2 added, 0 updated, 0 unchanged, 0 deleted; wrote ")
    assert main([str(posts), "--chroma-path", str(store), "--collection", "cli_test"]) == 0
    assert capsys.readouterr().out.startswith("0 added, 0 updated, 2 unchanged, 0 deleted; wrote 0 chunks")

    (posts / "second-post.md").unlink()
    assert main([str(posts), "--chroma-path", str(store), "--collection", "cli_test", "--dry-run"]) == 0
    assert capsys.readouterr().out.startswith("[dry run] 0 added, 0 updated, 1 unchanged, 1 deleted")
    assert (
        main([str(posts), "--chroma-path", str(store), "--collection", "cli_test", "--no-prune", "--json"])
        == 0
    )
    assert json.loads(capsys.readouterr().out)["deleted"] == 0


def test_a_directory_without_posts_exits_1(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main([str(empty), "--chroma-path", str(tmp_path / "store")]) == 1
    assert "no supported files found" in capsys.readouterr().err
