"""Load check for every front end at once, sharing one Chroma server, as deployed.

    KQA_LLM_BACKEND=extractive python bench/load_all.py            # quick: no LLM in the loop
    python bench/load_all.py --sessions 20 --slack-events 50 --retries 3 --json out/bench/load_all.json
    python bench/load_all.py --chroma-url http://127.0.0.1:8000   # an index that is already there

What runs, each a real process on loopback:

* ``chroma run`` (started here unless ``--chroma-url``), filled from ``--data`` by the ingest job;
* the web chat, ``python app.py`` (``bench/load_web.py`` starts it and drives it): ``--sessions``
  concurrent Gradio sessions of ``--questions`` turns each;
* the Slack bot in HTTP mode, ``python app.py slack``, against the mock Slack Web API of the Slack tests
  (``tests/slackbot/slack_mock_api.py``), sent one warm-up question (the bot loads its models on the first
  question; that latency is reported on its own), then a burst of ``--slack-events`` signed ``app_mention``
  events at once, each delivered again ``--retries`` times (``X-Slack-Retry-Num``, as Slack does when an
  ack is slow) plus, for every fifth event, the same message under another event id.

Both loads run at the same time. Reported: errors (target 0: a failed request or ack, an error message
in the chat or the thread, an event never answered), duplicates (target 0: a Slack event answered more
than once), latency p50/p95 (web: full answer and first token; Slack: ack, and event -> final answer).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "tests" / "slackbot"))  # the Slack test harness: mock API, signed client
sys.path.insert(0, str(REPO_ROOT / "tests" / "integration"))  # a Chroma server process

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

from bench.load_web import CONVERSATIONS, peak_rss_mb, percentile, run_load, started_app  # noqa: E402
from bench.query import FALLBACK_QUESTIONS  # noqa: E402
from bench.scale import machine_specs  # noqa: E402
from tests.support.processes import free_port, running_server  # noqa: E402

DEFAULT_DATA = REPO_ROOT.parent / "shared" / "corpus" / "articles"
ACK_DEADLINE_S = 3.0  # Slack retries an event that is not acknowledged within 3 seconds


@contextmanager
def chroma_server(url: str | None, work: Path):
    if url:
        yield url
        return
    from integration_harness import ChromaServer

    server = ChromaServer(work / "chroma-db").start()
    try:
        yield server.url
    finally:
        server.stop()


@contextmanager
def slack_bot(chroma_url: str, api_url: str, home: Path):
    """``python app.py slack`` in HTTP mode on a free port, pointed at the mock Web API; yields its events URL."""
    from slack_harness import SIGNING_SECRET
    from slack_mock_api import BOT_TOKEN

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLACK_")} | {
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "KQA_SLACK_API_URL": api_url,
        "KQA_CHROMA_URL": chroma_url,
        "KQA_HOME": str(home),
    }
    home.mkdir(parents=True, exist_ok=True)
    with running_server(
        [sys.executable, "app.py", "slack", "--host", "127.0.0.1", "--port", str(port)],
        health_url=f"http://127.0.0.1:{port}/healthz",
        log_path=home / "slack-bot.log",
        env=env,
        cwd=REPO_ROOT,
        timeout=300,
        stop_timeout=30,
        name="the Slack bot",
    ):
        yield f"http://127.0.0.1:{port}/slack/events"


def warm_up(client, api, question: str, timeout: float) -> float:
    """One event before the burst: the bot loads its models on its first question, which is not what a
    burst against a running bot measures. Returns that first answer's latency."""
    from slack_harness import CHANNEL, mention

    from slackbot.formatting import PROGRESS_PREFIX

    root = f"{int(time.time()) - 1}.999999"
    started = time.monotonic()
    client.event(mention(question, root), event_id=f"EvWarmUp{root}")
    while time.monotonic() - started < timeout:
        replies = [m for m in api.thread(CHANNEL, root) if m.get("bot_id")]
        if replies and not any(m["text"].startswith(PROGRESS_PREFIX) for m in replies):
            break
        time.sleep(0.2)
    return round(time.monotonic() - started, 2)


def slack_burst(events_url: str, api, events: int, retries: int, answer_timeout: float) -> dict:
    """Fire ``events`` mentions at once, each re-delivered ``retries`` times; then count what came back."""
    from slack_harness import CHANNEL, SignedClient, mention

    client = SignedClient(events_url)
    questions = [c[0] for c in CONVERSATIONS] + FALLBACK_QUESTIONS
    cold_first_answer_s = warm_up(client, api, questions[0], answer_timeout)
    base_ts = int(time.time())
    planned = []  # (delay s, event, event_id, retry_num, index)
    for i in range(events):
        event = mention(questions[i % len(questions)], f"{base_ts}.{i:06d}")
        planned.append((0.0, event, f"EvLoad{base_ts}{i:04d}", None, i))
        for n in range(1, retries + 1):  # Slack's schedule compressed: soon after, and while answering
            planned.append((0.4 * n + 0.05 * (i % 7), event, f"EvLoad{base_ts}{i:04d}", n, i))
        if i % 5 == 0:  # the same message delivered again under another event id
            planned.append((0.3, event, f"EvCopy{base_ts}{i:04d}", None, i))
    sent_at: dict[int, float] = {}
    acks: list[dict] = []
    lock = threading.Lock()
    started = time.monotonic()

    def deliver(item) -> None:
        delay, event, event_id, retry_num, index = item
        time.sleep(max(0.0, started + delay - time.monotonic()))
        t = time.monotonic()
        if retry_num is None and event_id.startswith("EvLoad"):
            with lock:
                sent_at[index] = t
        try:
            status, _ = client.event(event, event_id=event_id, retry_num=retry_num)
        except Exception as exc:  # noqa: BLE001 - a failed delivery is a measured error
            status = f"{type(exc).__name__}: {exc}"
        with lock:
            acks.append({"index": index, "retry": retry_num, "status": status, "seconds": time.monotonic() - t})

    with ThreadPoolExecutor(max_workers=64) as pool:
        list(pool.map(deliver, planned))

    # Wait until every event's thread holds a final (non-placeholder) message, or give up.
    from slackbot.formatting import NOTICE_PREFIX, PROGRESS_PREFIX

    deadline = time.monotonic() + answer_timeout
    roots = {i: f"{base_ts}.{i:06d}" for i in range(events)}

    def finished(i: int) -> bool:
        replies = [m for m in api.thread(CHANNEL, roots[i]) if m.get("bot_id")]
        return bool(replies) and not any(m["text"].startswith(PROGRESS_PREFIX) for m in replies)

    while time.monotonic() < deadline and not all(finished(i) for i in roots):
        time.sleep(0.5)
    time.sleep(2.0)  # anything a duplicate delivery would still post arrives now

    calls = api.calls()
    errors: list[str] = []
    duplicates = 0
    latencies: list[float] = []
    for i, root in roots.items():
        placeholders = [c for c in calls if c.method == "chat.postMessage" and c.params.get("thread_ts") == root]
        reactions = [c for c in calls if c.method == "reactions.add" and c.params.get("timestamp") == root]
        if len(placeholders) > 1 or len(reactions) > 1:
            duplicates += 1
        replies = [m for m in api.thread(CHANNEL, root) if m.get("bot_id")]
        if not replies or any(m["text"].startswith(PROGRESS_PREFIX) for m in replies):
            errors.append(f"event {i}: no answer within {answer_timeout:.0f}s")
            continue
        if any(m["text"].startswith(NOTICE_PREFIX) for m in replies):
            errors.append(f"event {i}: error notice: {replies[0]['text'][:200]}")
            continue
        placeholder_ts = {c.params.get("ts") for c in placeholders} | {m["ts"] for m in replies}
        finals = [c.at for c in calls if c.method == "chat.update" and c.params.get("blocks")
                  and c.params.get("ts") in placeholder_ts]  # fmt: skip
        if finals and i in sent_at:
            latencies.append(max(finals) - sent_at[i])
    bad_acks = [a for a in acks if a["status"] != 200]
    errors += [f"event {a['index']} (retry {a['retry']}): ack {a['status']}" for a in bad_acks]
    ack_seconds = [a["seconds"] for a in acks]
    return {
        "cold_first_answer_s": cold_first_answer_s,
        "events": events,
        "deliveries": len(acks),
        "retries_per_event": retries,
        "errors": len(errors),
        "error_examples": errors[:5],
        "duplicates": duplicates,
        "late_acks_over_3s": sum(1 for s in ack_seconds if s > ACK_DEADLINE_S),
        "ack_p50_ms": round(percentile(ack_seconds, 50) * 1000, 1),
        "ack_p95_ms": round(percentile(ack_seconds, 95) * 1000, 1),
        "ack_max_ms": round(max(ack_seconds) * 1000, 1) if ack_seconds else None,
        "answered": len(latencies),
        "answer_p50_s": round(percentile(latencies, 50), 2),
        "answer_p95_s": round(percentile(latencies, 95), 2),
        "answer_max_s": round(max(latencies), 2) if latencies else None,
        "wall_s": round(time.monotonic() - started, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="posts to ingest into the server")
    parser.add_argument("--chroma-url", help="an already running Chroma server (its index is used as is)")
    parser.add_argument("--sessions", type=int, default=20, help="concurrent web chat sessions")
    parser.add_argument("--questions", type=int, default=3, help="turns per web session (max 5)")
    parser.add_argument("--slack-events", type=int, default=50)
    parser.add_argument("--retries", type=int, default=3, help="Slack re-deliveries per event (0-3)")
    parser.add_argument("--answer-timeout", type=float, default=900.0, help="seconds to wait for Slack answers")
    parser.add_argument("--startup-timeout", type=float, default=600.0)
    parser.add_argument("--skip-web", action="store_true")
    parser.add_argument("--skip-slack", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the report here")
    args = parser.parse_args(argv)
    if not 1 <= args.questions <= 5:
        parser.error("--questions must be between 1 and 5")

    from slack_mock_api import MockSlackAPI

    work = Path(tempfile.mkdtemp(prefix="kqa-load-all-"))
    report: dict = {"machine": machine_specs(), "llm_backend": os.environ.get("KQA_LLM_BACKEND", "(default)")}
    try:
        with ExitStack() as stack:
            chroma_url = stack.enter_context(chroma_server(args.chroma_url, work))
            os.environ["KQA_CHROMA_URL"] = chroma_url  # every process below shares this one index
            report["chroma_url"] = chroma_url
            if not args.chroma_url:
                from ingest.pipeline import run_ingest
                from rag.settings import Settings

                summary = run_ingest(paths=[args.data], settings=Settings(home=work / "ingest-home"))
                report["ingest"] = {"posts": summary.posts_in_store, "chunks": summary.chunks_in_store,
                                    "seconds": summary.seconds.get("total")}  # fmt: skip
                print(f"ingested {summary.one_line()}", file=sys.stderr, flush=True)
            web_url, web_pid = (None, None) if args.skip_web else stack.enter_context(
                started_app(args.data, args.startup_timeout, work / "web-home"))  # fmt: skip
            api = stack.enter_context(_mock_api(MockSlackAPI))
            events_url = None if args.skip_slack else stack.enter_context(
                slack_bot(chroma_url, api.api_url, work / "slack-home"))  # fmt: skip

            results: dict = {}

            def run_web() -> None:
                results["web"] = run_load(web_url, args.sessions, args.questions)
                results["web"]["app_peak_rss_mb"] = peak_rss_mb(web_pid)

            def run_slack() -> None:
                results["slack"] = slack_burst(events_url, api, args.slack_events, args.retries, args.answer_timeout)

            threads = []
            if web_url:
                threads.append(threading.Thread(target=run_web))
            if events_url:
                threads.append(threading.Thread(target=run_slack))
            started = time.perf_counter()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            report.update(results)
            report["wall_s"] = round(time.perf_counter() - started, 1)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report["machine"]["load_average_after"] = [round(v, 2) for v in os.getloadavg()]
    report["errors"] = sum(part.get("errors", 0) for part in (report.get("web", {}), report.get("slack", {})))
    report["duplicates"] = report.get("slack", {}).get("duplicates", 0)
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n")
    return 0 if report["errors"] == 0 and report["duplicates"] == 0 else 1


@contextmanager
def _mock_api(factory):
    api = factory().start()
    try:
        yield api
    finally:
        api.stop()


if __name__ == "__main__":
    sys.exit(main())
