"""Resident memory of the front ends on one host, both ways: each loading everything vs one answer service.

    python bench/memory_services.py                          # the shared corpus, embedded LLM
    KQA_LLM_BACKEND=extractive python bench/memory_services.py --data data --json out/bench/memory.json

Every process is real, on loopback, sharing one ``chroma run`` server (filled from ``--data`` first by
``python -m ingest`` in a process of its own, so no front end's figure includes an ingest; the embedded
store serves one process only, so two front ends need the server):

* **each loads everything** (today): ``python app.py`` (web chat) + ``python app.py slack`` (Slack bot,
  against the mock Slack Web API of the Slack tests), each with its own embedding model, LLM and index
  snapshot;
* **one answer service**: ``python app.py api`` + the same two front ends with ``KQA_ANSWER_URL``.

Each front end answers ``--questions`` questions first (the Slack bot loads its answerer on the first one),
then the resident set (``VmRSS``, summed over each process tree) and its peak (``VmHWM``) are read from
``/proc``. The Chroma server is reported apart: both set-ups have it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests" / "slackbot"))  # the Slack test harness: mock API, signed client

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

from bench.scale import machine_specs  # noqa: E402
from tests.support.processes import chroma_command, free_port, running_server  # noqa: E402

DEFAULT_DATA = REPO.parent / "shared" / "corpus" / "articles"
KEY = "bench-memory-key-7c1e9a"
QUESTIONS = [
    "What were the three big takeaways from KubeCon Detroit 2022?",
    "What did people say about platform engineering?",
    "What was said about software supply chain security at KubeCon Europe 2022?",
]


def tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (from ``/proc/*/stat``)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        todo.extend(children.get(current, []))
    return out


def memory_mb(pid: int) -> dict[str, float]:
    """``VmRSS`` now and ``VmHWM`` (peak), in MB, summed over the process tree of ``pid``."""
    rss = hwm = 0
    for p in tree(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    rss += int(line.split()[1])
                elif line.startswith("VmHWM:"):
                    hwm += int(line.split()[1])
        except OSError:
            continue
    return {"rss_mb": round(rss / 1024, 1), "peak_mb": round(hwm / 1024, 1)}


def base_env(home: Path, data: Path, **extra: str) -> dict[str, str]:
    home.mkdir(parents=True, exist_ok=True)
    return {**os.environ, "KQA_HOME": str(home), "KQA_DATA_DIR": str(data.resolve()), "HF_HUB_OFFLINE": "1",
            **extra}  # fmt: skip


@contextmanager
def web_chat(home: Path, data: Path, timeout: float, **env: str):
    port = free_port()
    with running_server(
        [sys.executable, "app.py", "--port", str(port)], health_url=f"http://127.0.0.1:{port}/",
        log_path=home / "web.log", env=base_env(home, data, **env), cwd=REPO, timeout=timeout, name="web chat",
    ) as process:  # fmt: skip
        yield process, f"http://127.0.0.1:{port}/"


@contextmanager
def slack_bot(home: Path, data: Path, api_url: str, timeout: float, **env: str):
    from slack_harness import SIGNING_SECRET
    from slack_mock_api import BOT_TOKEN

    port = free_port()
    env = {k: v for k, v in base_env(home, data, **env).items() if not k.startswith("SLACK_")} | {
        "SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET, "KQA_SLACK_API_URL": api_url,
    }  # fmt: skip
    with running_server(
        [sys.executable, "app.py", "slack", "--host", "127.0.0.1", "--port", str(port)],
        health_url=f"http://127.0.0.1:{port}/healthz", log_path=home / "slack.log", env=env, cwd=REPO,
        timeout=timeout, stop_timeout=30, name="Slack bot",
    ) as process:  # fmt: skip
        yield process, f"http://127.0.0.1:{port}/slack/events"


@contextmanager
def api_service(home: Path, data: Path, timeout: float, **env: str):
    port = free_port()
    with running_server(
        [sys.executable, "app.py", "api", "--port", str(port)], health_url=f"http://127.0.0.1:{port}/healthz",
        log_path=home / "api.log", env=base_env(home, data, KQA_API_KEYS=KEY, **env), cwd=REPO, timeout=timeout,
        name="answer service",
    ) as process:  # fmt: skip
        yield process, f"http://127.0.0.1:{port}"


def ask_web(url: str, questions: list[str]) -> int:
    from gradio_client import Client

    client = Client(url, verbose=False)
    answered = 0
    for q in questions:
        _, _, answer = client.predict(q, [], "All events", "Any year", api_name="/chat")
        answered += bool(answer and answer.get("text"))
    return answered


def ask_slack(events_url: str, mock, questions: list[str], timeout: float) -> int:
    from slack_harness import CHANNEL, SignedClient, mention

    from slackbot.formatting import PROGRESS_PREFIX

    client = SignedClient(events_url)
    answered = 0
    for i, q in enumerate(questions):
        root = f"{int(time.time())}.{i:06d}"
        client.event(mention(q, root))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            replies = [m for m in mock.thread(CHANNEL, root) if m.get("bot_id")]
            if replies and not any(m["text"].startswith(PROGRESS_PREFIX) for m in replies):
                answered += not any(":warning:" in m["text"] for m in replies)
                break
            time.sleep(0.3)
    return answered


def run_setup(name: str, work: Path, data: Path, chroma_url: str, mock, args) -> dict:
    """Start one set-up, ask each front end, read every process tree's memory, stop it."""
    questions = QUESTIONS[: args.questions]
    store = {"KQA_CHROMA_URL": chroma_url}
    processes: dict[str, int] = {}
    answered: dict[str, int] = {}
    with ExitStack() as stack:
        remote: dict[str, str] = {}
        if name == "answer service":
            api, api_url = stack.enter_context(api_service(work / "api", data, args.timeout, **store))
            processes["api"] = api.pid
            remote = {"KQA_ANSWER_URL": api_url, "KQA_ANSWER_API_KEY": KEY}
        front_env = remote or store
        web, web_url = stack.enter_context(web_chat(work / "web", data, args.timeout, **front_env))
        bot, events_url = stack.enter_context(slack_bot(work / "slack", data, mock.api_url, args.timeout, **front_env))
        processes |= {"web chat": web.pid, "Slack bot": bot.pid}
        answered["web chat"] = ask_web(web_url, questions)
        answered["Slack bot"] = ask_slack(events_url, mock, questions, args.timeout)
        per_process = {label: memory_mb(pid) for label, pid in processes.items()}
    total = {k: round(sum(m[k] for m in per_process.values()), 1) for k in ("rss_mb", "peak_mb")}
    return {"processes": per_process, "total": total, "answered": answered, "questions": len(questions)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA if DEFAULT_DATA.is_dir() else REPO / "data")
    parser.add_argument("--questions", type=int, default=2, choices=range(1, len(QUESTIONS) + 1))
    parser.add_argument("--timeout", type=float, default=600, help="start-up and per-answer limit (s)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)

    from slack_mock_api import MockSlackAPI

    work = Path(tempfile.mkdtemp(prefix="kqa-bench-memory-"))
    port = free_port()
    results: dict = {"machine": machine_specs(), "data": str(args.data), "posts": len(list(args.data.glob("*.md"))),
                     "llm_backend": os.environ.get("KQA_LLM_BACKEND", "llamacpp")}  # fmt: skip
    mock = MockSlackAPI().start()
    try:
        with running_server(
            chroma_command(work / "chroma-db", port), health_url=f"http://127.0.0.1:{port}/api/v2/heartbeat",
            log_path=work / "chroma.log", env={**os.environ, "ANONYMIZED_TELEMETRY": "False"}, name="chroma run",
        ) as chroma:  # fmt: skip
            url = f"http://127.0.0.1:{port}"
            ingest = subprocess.run(
                [sys.executable, "-m", "ingest", "--chroma-url", url, str(args.data)], cwd=REPO,
                env=base_env(work / "ingest", args.data), capture_output=True, text=True,
            )  # fmt: skip
            if ingest.returncode != 0:
                raise SystemExit(f"ingest failed:\n{ingest.stderr[-3000:]}")
            for name in ("each loads everything", "answer service"):
                print(f"running: {name}", file=sys.stderr)
                results[name] = run_setup(name, work / name.replace(" ", "-"), args.data, url, mock, args)
            results["chroma server"] = memory_mb(chroma.pid)
    finally:
        mock.stop()
        shutil.rmtree(work, ignore_errors=True)  # homes, store and logs: nothing to keep but the figures
    results["machine"]["load_average_after"] = [round(v, 2) for v in os.getloadavg()]
    before, after = results["each loads everything"]["total"], results["answer service"]["total"]
    results["saved_rss_mb"] = round(before["rss_mb"] - after["rss_mb"], 1)
    text = json.dumps(results, indent=2)
    print(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n")
    print(f"\nfront ends' RSS: {before['rss_mb']:.0f} MB each loading everything -> {after['rss_mb']:.0f} MB with "
          f"the answer service ({results['saved_rss_mb']:+.0f} MB saved); Chroma server "
          f"{results['chroma server']['rss_mb']:.0f} MB in both", file=sys.stderr)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
