"""Load check for the web chat: N concurrent chat sessions x M questions through Gradio's real HTTP API.

    python bench/load_web.py                          # start app.py on a free port (tmp home, data/ ingested)
    python bench/load_web.py --data ../shared/corpus/articles --sessions 10 --questions 5
    python bench/load_web.py --home /tmp/kqa-bench         # keep the index between runs
    python bench/load_web.py --url http://127.0.0.1:7860   # measure a running server instead

Each session is its own ``gradio_client.Client`` (its own Gradio session, so its own conversation state);
question 2..M are follow-ups in the same conversation. Reports errors (target 0: a failed request, an
error message in the chat, or no answer) and latency p50/p95 for the full answer and the first token.
The backend is whatever the ``KQA_*`` environment chooses (``KQA_LLM_BACKEND=extractive`` for a quick run).
When it starts the app itself it also reports the app process's peak RSS (``app_peak_rss_mb``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.support.processes import free_port, running_server  # noqa: E402

# Conversations: a first question, then follow-ups that lean on it.
CONVERSATIONS = [
    ["What were the big takeaways from KubeCon North America 2022 in Detroit?", "Why does platform engineering matter?",
     "What did they say about internal developer platforms?", "What about security?", "Anything on FinOps?"],
    ["What was said about software supply chain security at KubeCon Europe 2022?", "Which tools were mentioned?",
     "What about SBOMs?", "And platform engineering at that event?", "How did people describe the ecosystem?"],
    ["What did people say about service meshes?", "Which projects were discussed?", "What about Istio ambient mode?",
     "Was eBPF mentioned?", "What about observability?"],
    ["How big was KubeCon in Detroit?", "What was the energy like?", "What were the keynotes about?",
     "Did anyone mention WebAssembly?", "What about sustainability?"],
    ["What was new in autoscaling and bin packing?", "Who talked about cost?", "What about Karpenter?",
     "Any unconventional use cases?", "What is the road ahead?"],
]  # fmt: skip


@contextmanager
def started_app(data: Path, startup_timeout: float, home: Path | None = None):
    """app.py as a real subprocess; its index is built from ``data`` at start-up when ``home`` has none.

    Without ``home`` a fresh temporary one is used and removed afterwards.
    """
    keep_home = home is not None
    home = home or Path(tempfile.mkdtemp(prefix="kqa-load-web-"))
    home.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = dict(
        os.environ, KQA_HOME=str(home), KQA_DATA_DIR=str(data.resolve()), GRADIO_ANALYTICS_ENABLED="False"
    )
    url = f"http://127.0.0.1:{port}/"
    started = time.monotonic()
    try:
        with running_server(
            [sys.executable, str(REPO / "app.py"), "--port", str(port)],
            health_url=url,
            log_path=home / "app.log",
            env=env,
            cwd=REPO,
            timeout=startup_timeout,
            stop_timeout=20,
            name="app.py",
        ) as process:
            print(f"app up at {url} after {time.monotonic() - started:.1f}s (home {home})", file=sys.stderr)
            yield url, process.pid
    finally:
        if not keep_home:
            shutil.rmtree(home, ignore_errors=True)


def peak_rss_mb(pid: int) -> float | None:
    """The process's peak resident set (``VmHWM``), read while it still runs; None off Linux."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)  # KiB
    except OSError:
        return None
    return None


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def last_assistant_text(chat: list) -> str:
    for message in reversed(chat or []):
        if message.get("role") == "assistant":
            content = message.get("content")
            if isinstance(content, list):
                return " ".join(
                    str(part.get("text", part)) if isinstance(part, dict) else str(part) for part in content
                )
            return str(content)
    return ""


def answer_started(chat: list) -> bool:
    """The last turn shows more than its status "thought": tokens (or the final answer) have arrived."""
    users = [i for i, m in enumerate(chat or []) if m.get("role") == "user"]
    turn = (chat or [])[users[-1] + 1 :] if users else []
    return any(not (m.get("metadata") or {}).get("title") for m in turn)


def run_session(url: str, session: int, questions: list[str], results: list, lock: threading.Lock) -> None:
    from gradio_client import Client

    client = Client(url, verbose=False)
    chat: list = []
    for turn, question in enumerate(questions):
        record = {"session": session, "turn": turn, "question": question, "error": ""}
        started = time.perf_counter()
        try:
            job = client.submit(question, chat, "All events", "Any year", api_name="/chat")
            first_token = None
            for output in job:  # intermediate outputs as the answer streams
                if first_token is None and answer_started(output[1]):
                    first_token = time.perf_counter() - started
            _, chat, answer = job.result()
            record["seconds"] = time.perf_counter() - started
            record["first_token_seconds"] = first_token if first_token is not None else record["seconds"]
            text = last_assistant_text(chat)
            if "kqa-error" in text:
                record["error"] = "error message in chat: " + text[:300]
            elif not answer:
                record["error"] = "no answer returned"
            else:
                record["abstained"] = bool(answer.get("abstained"))
                record["citations"] = len(answer.get("citations", []))
                record["backend"] = answer.get("backend", "")
        except Exception as exc:  # noqa: BLE001 - a failed request is a measured error, not a crash
            record["seconds"] = time.perf_counter() - started
            record["error"] = f"{type(exc).__name__}: {exc}"
        with lock:
            results.append(record)


def run_load(url: str, sessions: int, questions: int) -> dict:
    results: list[dict] = []
    lock = threading.Lock()
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=sessions) as pool:
        futures = [
            pool.submit(run_session, url, s, CONVERSATIONS[s % len(CONVERSATIONS)][:questions], results, lock)
            for s in range(sessions)
        ]
        for future in futures:
            future.result()
    wall = time.perf_counter() - started
    ok = [r for r in results if not r["error"]]
    latencies = [r["seconds"] for r in ok]
    first_tokens = [r["first_token_seconds"] for r in ok]
    return {
        "url": url,
        "sessions": sessions,
        "questions_per_session": questions,
        "requests": len(results),
        "errors": len(results) - len(ok),
        "error_examples": [r["error"] for r in results if r["error"]][:5],
        "abstained": sum(1 for r in ok if r.get("abstained")),
        "mean_citations": round(statistics.fmean([r.get("citations", 0) for r in ok]), 2) if ok else 0,
        "backends": sorted({r.get("backend", "") for r in ok}),
        "latency_p50_s": round(percentile(latencies, 50), 3),
        "latency_p95_s": round(percentile(latencies, 95), 3),
        "latency_max_s": round(max(latencies), 3) if latencies else None,
        "first_token_p50_s": round(percentile(first_tokens, 50), 3),
        "first_token_p95_s": round(percentile(first_tokens, 95), 3),
        "wall_s": round(wall, 2),
        "throughput_answers_per_s": round(len(ok) / wall, 3) if wall else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", help="measure this running web chat instead of starting one")
    parser.add_argument(
        "--data", type=Path, default=REPO / "data", help="posts to ingest into the started app"
    )
    parser.add_argument("--sessions", type=int, default=10)
    parser.add_argument("--questions", type=int, default=5, help="questions per session (max 5)")
    parser.add_argument("--home", type=Path, help="KQA_HOME for the started app, kept (reuses its index)")
    parser.add_argument("--startup-timeout", type=float, default=600.0)
    parser.add_argument("--json", type=Path, help="also write the report here")
    args = parser.parse_args(argv)
    if not 1 <= args.questions <= 5:
        parser.error("--questions must be between 1 and 5")

    if args.url:
        report = run_load(args.url, args.sessions, args.questions)
    else:
        with started_app(args.data, args.startup_timeout, args.home) as (url, pid):
            report = run_load(url, args.sessions, args.questions)
            report["app_peak_rss_mb"] = peak_rss_mb(pid)  # the web front end: models + index snapshot
    report["llm_backend_env"] = os.environ.get("KQA_LLM_BACKEND", "(default)")
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0 if report["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
