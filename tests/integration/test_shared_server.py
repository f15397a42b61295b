"""One Chroma server for every front end: the ingest job writes while the web app and the library answer.

Everything is real and separate, as in a deployment: ``chroma run`` on loopback, ``python -m ingest`` as
a subprocess, ``python app.py`` as a subprocess (asked over Gradio's HTTP API), and an in-process
``Assistant``, all pointed at the server by ``KQA_CHROMA_URL``. And the embedded store, which is
single-process by design, refuses a second process with a clear message instead of being corrupted.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time

import pytest
from integration_harness import (
    REPO,
    assert_same_records,
    clean_env,
    ingest_command,
    read_collection,
    run_ingest_cli,
    start_web_app,
    stop_web_app,
    summary_of,
)

from rag.errors import StoreLockedError

pytestmark = [pytest.mark.server, pytest.mark.slow]

LIBRARY_QUESTIONS = [
    "What were the big takeaways from KubeCon North America 2022 in Detroit?",
    "What did people say about OpenTelemetry at KubeCon Barcelona 2019?",
    "What is Botkube?",
    "What was said about software supply chain security at KubeCon Europe 2022?",
    "What is the best pizza recipe?",  # off-topic: a clean abstention is a correct answer
]
PRELOADED_POSTS = 12  # ingested before the front ends start, so they never see an empty index


class WebAsker(threading.Thread):
    """Keeps asking the web app questions through Gradio's API (one session per pass) until told to stop."""

    def __init__(self, url: str):
        super().__init__(daemon=True)
        sys.path.insert(0, str(REPO))
        from bench.load_web import CONVERSATIONS

        self.url = url
        self.questions = [c[0] for c in CONVERSATIONS]
        self.records: list[dict] = []
        self.stop = threading.Event()

    def run(self) -> None:
        from bench.load_web import run_session

        lock = threading.Lock()
        session = 0
        while not self.stop.is_set():
            # two-turn conversations: a question and a follow-up in one Gradio session
            start = session % len(self.questions)
            run_session(self.url, session, [self.questions[start], "Which projects were mentioned?"],
                        self.records, lock)  # fmt: skip
            session += 1


def test_ingest_web_app_and_library_share_one_chroma_server(
    chroma_server, corpus_settings, shared_corpus_dir, settings_factory, tmp_path
):
    from rag.assistant import Assistant
    from rag.components.store import get_collection

    collection = "integration_shared_server"
    env = clean_env(KQA_CHROMA_URL=chroma_server, KQA_COLLECTION=collection, KQA_HOME=str(tmp_path / "cli-home"))
    articles = sorted(shared_corpus_dir.glob("*.md"))

    preload = summary_of(run_ingest_cli(*articles[:PRELOADED_POSTS], env=env))
    assert (preload["exit_code"], preload["added"]) == (0, PRELOADED_POSTS), preload

    app = start_web_app(
        tmp_path / "web-home",
        tmp_path / "no-start-up-ingest",
        {"KQA_CHROMA_URL": chroma_server, "KQA_COLLECTION": collection},
    )
    web = WebAsker(app.url)
    library_records: list[dict] = []
    try:
        settings = settings_factory(tmp_path / "lib-home", chroma_url=chroma_server, collection=collection,
                                    llm_backend="extractive")  # fmt: skip
        qa = Assistant(settings)
        assert qa.index_status().posts == PRELOADED_POSTS

        log_path = tmp_path / "ingest.log"
        with log_path.open("w") as log:
            ingest = subprocess.Popen(ingest_command(shared_corpus_dir, "--json"), cwd=REPO, env=env,
                                      stdout=subprocess.PIPE, stderr=log, text=True)  # fmt: skip
        web.start()
        asked = 0
        while ingest.poll() is None:
            question = LIBRARY_QUESTIONS[asked % len(LIBRARY_QUESTIONS)]
            asked += 1
            started = time.perf_counter()
            try:
                answer = qa.ask(question)
                record = {"question": question, "error": "", "abstained": answer.abstained,
                          "posts_seen": qa.index_status().posts}  # fmt: skip
                if not answer.abstained:
                    assert answer.citations, answer.text
            except Exception as exc:  # noqa: BLE001 - every failure is collected and reported below
                record = {"question": question, "error": f"{type(exc).__name__}: {exc}"}
            record["seconds"] = round(time.perf_counter() - started, 2)
            record["during_ingest"] = ingest.poll() is None
            library_records.append(record)
        stdout, _ = ingest.communicate()
        web.stop.set()
        web.join(timeout=120)
    finally:
        web.stop.set()
        stop_web_app(app)

    assert ingest.returncode == 0, log_path.read_text()[-3000:]
    import json

    summary = json.loads(stdout)
    assert (summary["added"], summary["unchanged"], summary["failures"]) == (
        len(articles) - PRELOADED_POSTS, PRELOADED_POSTS, [],
    )  # fmt: skip

    # No answer failed, from either front end, and both really answered while the ingest was writing.
    library_errors = [r for r in library_records if r["error"]]
    web_errors = [r for r in web.records if r["error"]]
    assert not library_errors, library_errors[:3]
    assert not web_errors, web_errors[:3]
    assert sum(r["during_ingest"] for r in library_records) >= 3, library_records
    assert len(web.records) >= 2, web.records
    assert any(not r["abstained"] for r in library_records)
    # The library saw the index grow while it answered (its snapshot follows the collection).
    assert len({r["posts_seen"] for r in library_records}) >= 2, library_records

    # The final collection is exactly what one clean ingest of the corpus writes.
    server_contents = read_collection(get_collection(settings, create=False))
    assert_same_records(server_contents, read_collection(get_collection(corpus_settings, create=False)))
    assert qa.index_status().posts == len(articles)


HOLD_STORE = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from rag.settings import Settings
    from rag.components.store import get_collection

    settings = Settings(_env_file=None, home=Path(sys.argv[1]), chroma_path=None, chroma_url=None)
    get_collection(settings).count()
    print("holding", flush=True)
    sys.stdin.read()  # hold the store until the test closes our stdin
    """
)


def test_a_second_process_on_the_embedded_store_gets_a_clear_error(seed_data_dir, settings_factory, tmp_path):
    from ingest.pipeline import run_ingest
    from rag.assistant import Assistant

    home = tmp_path / "home"
    env = clean_env(KQA_HOME=str(home))
    first = summary_of(run_ingest_cli(seed_data_dir, env=env))
    assert first["exit_code"] == 0

    holder = subprocess.Popen([sys.executable, "-c", HOLD_STORE, str(home)], cwd=REPO, env=env,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "holding"

        # Another process: the ingest CLI says what is wrong and what to do, with no stack trace.
        second = run_ingest_cli(seed_data_dir, env=env, timeout=300)
        assert second.returncode == 1
        assert "Traceback" not in second.stderr
        assert f"in use by pid {holder.pid}" in second.stderr, second.stderr
        assert "chroma run" in second.stderr and "KQA_CHROMA_URL" in second.stderr

        # This process, through the library: the same clear, catchable error.
        settings = settings_factory(home, llm_backend="extractive")
        with pytest.raises(StoreLockedError, match=f"in use by pid {holder.pid}"):
            Assistant(settings).ask("What were the takeaways from KubeCon Detroit?")
    finally:
        holder.stdin.close()
        holder.wait(timeout=60)

    # Once the holder is gone the store opens, and it is intact: a re-run finds nothing to do.
    settings = settings_factory(home, llm_backend="extractive")
    again = run_ingest(paths=[seed_data_dir], settings=settings)
    assert (again.exit_code, again.unchanged, again.chunks_written) == (0, first["ingested"], 0)
    assert again.chunks_in_store == first["chunks_in_store"]
    assert not Assistant(settings).ask("What were the takeaways from KubeCon Detroit?").abstained
