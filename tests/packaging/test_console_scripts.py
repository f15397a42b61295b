"""The wheel, installed non-editable into a fresh virtualenv: its console scripts run from outside the repo.

The fresh venv gets the project's wheel with ``--no-deps``, then a ``.pth`` line (sorted after the wheel's
own files) that puts this interpreter's site-packages on its path for the dependencies; the editable
install of the checkout is not loaded there (``.pth`` files of an appended directory are not processed),
so every import below comes from the wheel.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = ("kqa-web", "kqa-slack", "kqa-api", "kqa-ingest", "kqa-eval")
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def _project_version() -> str:
    import tomllib

    return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict:
    pytest.importorskip("setuptools", reason="building the wheel needs setuptools in this environment")
    root = tmp_path_factory.mktemp("wheel")
    # Build from the tracked files only, so a developer's .kqa/ or build/ never reaches the wheel.
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    source = root / "src"
    for name in filter(None, tracked.decode().split("\0")):
        if (REPO / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, source / name)
    wheels = root / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", str(source),
         "-w", str(wheels)],
        check=True, timeout=600,
    )  # fmt: skip
    (wheel,) = wheels.glob("kubecon_qa-*.whl")
    env_dir = root / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
        check=True,
        timeout=600,
    )
    own = Path(subprocess.check_output([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                                       text=True).strip())  # fmt: skip
    (own / "zzz-kqa-test-deps.pth").write_text(sysconfig.get_path("purelib") + "\n", encoding="utf-8")
    work = root / "elsewhere"  # not the repo: nothing may come from the checkout
    work.mkdir()
    env = {name: value for name, value in os.environ.items() if not name.startswith(("KQA_", "PYTHON"))}
    env.update(PATH=f"{env_dir / 'bin'}{os.pathsep}{env.get('PATH', '')}", HF_HUB_OFFLINE="1",
               GRADIO_ANALYTICS_ENABLED="False")  # fmt: skip
    return {"python": python, "bin": env_dir / "bin", "site": own, "cwd": work, "env": env}


def _run(installed: dict, *command: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        list(command),
        cwd=installed["cwd"],
        env=installed["env"],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_imports_come_from_the_wheel_not_the_checkout(installed):
    result = _run(installed, str(installed["python"]), "-c",
                  "import app, rag, webchat, slackbot, ingest, eval; print(rag.__file__, app.__file__)")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert str(installed["site"]) in result.stdout and str(REPO) not in result.stdout, result.stdout
    typed = {p.parent.name for p in installed["site"].glob("*/py.typed")}
    assert {"eval", "ingest", "rag", "slackbot", "webchat"} <= typed, typed


@pytest.mark.parametrize("script", SCRIPTS)
def test_every_console_script_reports_the_package_version(installed, script):
    result = _run(installed, str(installed["bin"] / script), "--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"kubecon-qa {_project_version()}"


def test_web_and_ingest_help_describe_their_options(installed):
    web = _run(installed, "kqa-web", "--help")
    assert web.returncode == 0, web.stderr
    assert web.stdout.startswith("usage: kqa-web") and "GRADIO_SERVER_PORT" in web.stdout
    ingest = _run(installed, "kqa-ingest", "--help")
    assert ingest.returncode == 0 and "--dry-run" in ingest.stdout
    slack = _run(installed, "kqa-slack", "--help")
    assert slack.returncode == 0 and "--mode" in slack.stdout
    bad = _run(installed, "kqa-web", "--port", "x")
    assert bad.returncode == 2 and "invalid int value" in bad.stderr and "Traceback" not in bad.stderr


def test_installed_ingest_keeps_its_state_in_the_working_directory_and_eval_finds_its_data(installed):
    """An installed package has no checkout: .kqa/ goes where it is run, never into site-packages."""
    posts = installed["cwd"] / "posts"
    shutil.copytree(REPO / "data", posts)
    result = _run(installed, "kqa-ingest", str(posts), "--json", timeout=600)
    assert result.returncode == 0, result.stderr
    assert (installed["cwd"] / ".kqa" / "chroma").is_dir()
    assert not (installed["site"] / ".kqa").exists()
    # the gold files ship in the wheel; validating one against the posts it quotes
    gold = installed["site"] / "eval" / "gold.jsonl"
    assert gold.is_file() and (installed["site"] / "eval" / "grounding_thresholds.json").is_file()
    corpus = REPO.parent / "shared" / "corpus" / "articles"
    if corpus.is_dir():
        checked = _run(installed, "kqa-eval", "validate", str(gold), "--corpus", str(corpus))
        assert checked.returncode == 0, checked.stdout + checked.stderr


def test_installed_kqa_web_serves_the_page(installed):
    """``kqa-web`` from the wheel: Gradio's own GRADIO_SERVER_PORT picks the port, the page answers."""
    import urllib.request

    from tests.support.processes import free_port, start_server, stop_process

    port = free_port()
    env = {**installed["env"], "GRADIO_SERVER_PORT": str(port), "KQA_LLM_BACKEND": "extractive"}
    process = start_server(["kqa-web"], health_url=f"http://127.0.0.1:{port}/healthz",
                           log_path=installed["cwd"] / "web.log", env=env, cwd=installed["cwd"], timeout=300)  # fmt: skip
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=30) as response:
            assert response.status == 200 and "KubeCon Recap QA" in response.read().decode()
    finally:
        stop_process(process)
