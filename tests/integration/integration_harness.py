"""Harness for the cross-component tests: real processes (Chroma server, ingest CLI, web app) on loopback.

The session fixtures of ``tests/conftest.py`` (``corpus_settings``, ``chroma_server``, ...) are reused as
they are. What is here exists because those cannot do it: a Chroma server that can be stopped and started
again on the same port, a run of the real ingest CLI, and a snapshot of a collection to compare with.
Starting and stopping processes, and the web app launcher, come from ``tests/support``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import numpy as np

from tests.support.processes import chroma_command, free_port, log_tail, start_server, stop_process
from tests.support.webapp import REPO, start_web_app, stop_web_app

__all__ = ["free_port", "start_web_app", "stop_web_app"]  # the integration tests import them from here


def clean_env(**extra: str) -> dict[str, str]:
    """The environment for a child process: no KQA_* leaking in from the developer's shell."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("KQA_")}
    env.update(ANONYMIZED_TELEMETRY="False", GRADIO_ANALYTICS_ENABLED="False", HF_HUB_OFFLINE="1")
    env.update(extra)
    return env


# --- the ingest CLI -------------------------------------------------------------------------------------


def ingest_command(*args: str | Path) -> list[str]:
    return [sys.executable, "-m", "ingest", *map(str, args)]


def run_ingest_cli(*args: str | Path, env: dict[str, str], timeout: float = 900) -> subprocess.CompletedProcess:
    """``python -m ingest ARGS --json`` to completion; returns the process (stdout holds the JSON summary)."""
    return subprocess.run(
        ingest_command(*args, "--json"), cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout
    )


def summary_of(process: subprocess.CompletedProcess) -> dict:
    assert process.returncode in (0, 1), f"ingest exited {process.returncode}:\n{process.stderr[-3000:]}"
    return json.loads(process.stdout)


# --- a Chroma server that can go away and come back -------------------------------------------------------


@dataclass
class ChromaServer:
    """``chroma run`` over ``data_dir`` on a fixed loopback ``port``: stop() and start() keep both."""

    data_dir: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.data_dir.parent / f"{self.data_dir.name}-server.log"

    def start(self, timeout: float = 60) -> ChromaServer:
        self.process = start_server(
            chroma_command(self.data_dir, self.port),
            health_url=f"{self.url}/api/v2/heartbeat",
            log_path=self.log_path,
            env=clean_env(),
            timeout=timeout,
            name="chroma run",
        )
        return self

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)
            self.process = None

    def log_tail(self, chars: int = 3000) -> str:
        return log_tail(self.log_path, chars)


# --- what a collection holds -----------------------------------------------------------------------------


@dataclass
class CollectionContents:
    """Every record of a collection by id: document, metadata and embedding."""

    documents: dict[str, str]
    metadatas: dict[str, dict]
    embeddings: dict[str, np.ndarray]

    @property
    def ids(self) -> set[str]:
        return set(self.documents)

    def only_posts(self, doc_ids: set[str]) -> CollectionContents:
        keep = {i for i, m in self.metadatas.items() if m["doc_id"] in doc_ids}
        return CollectionContents(
            {i: self.documents[i] for i in keep},
            {i: self.metadatas[i] for i in keep},
            {i: self.embeddings[i] for i in keep},
        )


def read_collection(collection, page: int = 1000) -> CollectionContents:
    documents, metadatas, embeddings = {}, {}, {}
    offset = 0
    while True:
        batch = collection.get(include=["documents", "metadatas", "embeddings"], limit=page, offset=offset)
        for record_id, document, metadata, vector in zip(
            batch["ids"], batch["documents"], batch["metadatas"], batch["embeddings"], strict=True
        ):
            assert record_id not in documents, f"duplicate record id {record_id}"
            documents[record_id] = document
            metadatas[record_id] = metadata
            embeddings[record_id] = np.asarray(vector, dtype=np.float32)
        if len(batch["ids"]) < page:
            return CollectionContents(documents, metadatas, embeddings)
        offset += len(batch["ids"])


def assert_same_records(actual: CollectionContents, expected: CollectionContents) -> None:
    """Exactly the records of a clean ingest: same ids, text and metadata; embeddings equal up to float noise."""
    missing, extra = expected.ids - actual.ids, actual.ids - expected.ids
    assert not missing and not extra, f"missing {sorted(missing)[:5]} ({len(missing)}), extra {sorted(extra)[:5]} ({len(extra)})"
    for record_id in expected.ids:
        assert actual.documents[record_id] == expected.documents[record_id], record_id
        assert actual.metadatas[record_id] == expected.metadatas[record_id], record_id
    ids = sorted(expected.ids)
    got = np.vstack([actual.embeddings[i] for i in ids])
    want = np.vstack([expected.embeddings[i] for i in ids])
    # The same model over the same text; only batch composition (padding) differs between runs. In
    # bfloat16 (KQA_EMBEDDING_DTYPE=auto on CPUs with native bf16) that moves a vector by a fraction of
    # a percent; float32 by far less.
    cosines = np.sum(got * want, axis=1) / (np.linalg.norm(got, axis=1) * np.linalg.norm(want, axis=1))
    assert float(cosines.min()) >= 0.995, (float(cosines.min()), float(np.abs(got - want).max()))


# --- an OpenAI-compatible chat server whose health the test controls ---------------------------------------

POST_BODY = re.compile(r'<post n="1"[^>]*>\n(.*?)\n</post>', re.S)
FIRST_SENTENCE = re.compile(r"\s*(.+?[.!?])(?:\s|$)", re.S)


class ChatCompletionsServer:
    """A real HTTP server on loopback speaking the OpenAI API (``/v1/models``, ``/v1/chat/completions``).

    ``mode`` decides how chat requests are answered, so one test can walk a server through its failures:

    * ``"answer"``: quotes the first sentence of post [1] of the prompt and cites it, streamed word by word
      (a grounded answer that citation verification keeps);
    * ``"slow"``: the same, after sleeping ``delay_s`` (a server that is overloaded or wedged);
    * ``"error"``: HTTP 503, as a server that is up but cannot serve (model loading, out of memory).

    ``stop()`` takes it off the network (refused connections); ``start()`` brings it back on the same port.
    Every chat request is recorded in ``requests``.
    """

    def __init__(self, model: str = "qwen2.5-coder-0.5b", port: int | None = None):
        self.model = model
        self.port = port or free_port()
        self.mode = "answer"
        self.delay_s = 30.0
        self.requests: list[dict] = []
        self._server = None
        self._thread = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> ChatCompletionsServer:
        from http.server import ThreadingHTTPServer

        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format, *args):  # noqa: A002 - quiet test output
                pass

            def do_GET(self):
                if self.path.rstrip("/") == "/v1/models":
                    owner._json(self, 200, {"object": "list", "data": [
                        {"id": owner.model, "object": "model", "created": 0, "owned_by": "kqa-test"}]})  # fmt: skip
                else:
                    owner._json(self, 404, {"error": {"message": "not found"}})

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                if self.path.rstrip("/") != "/v1/chat/completions":
                    owner._json(self, 404, {"error": {"message": "not found"}})
                    return
                owner.requests.append(body)
                owner._chat(self, body)

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)
            self._server = None

    # ---- answering
    @staticmethod
    def _json(handler, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def answer_for(self, messages: list[dict]) -> str:
        prompt = "\n".join(str(m.get("content", "")) for m in messages)
        post = POST_BODY.search(prompt)
        passage = post.group(1).split(" … ")[0] if post else ""
        sentence = FIRST_SENTENCE.match(passage)
        return f"{sentence.group(1).rstrip('.!?')} [1]." if sentence else "I don't know based on the recaps."

    def _chat(self, handler, body: dict) -> None:
        mode = self.mode
        if mode == "error":
            self._json(handler, 503, {"error": {"message": "model is loading", "type": "server_error"}})
            return
        if mode == "slow":
            time.sleep(self.delay_s)
        text = self.answer_for(body.get("messages") or [])
        created = int(time.time())
        if not body.get("stream"):
            self._json(handler, 200, {
                "id": "chatcmpl-kqa", "object": "chat.completion", "created": created, "model": self.model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
            })  # fmt: skip
            return
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream")
        handler.send_header("Connection", "close")
        handler.end_headers()

        def event(delta: dict, finish: str | None = None) -> None:
            chunk = {"id": "chatcmpl-kqa", "object": "chat.completion.chunk", "created": created,
                     "model": self.model, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}  # fmt: skip
            handler.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            handler.wfile.flush()

        try:
            event({"role": "assistant", "content": ""})
            for word in re.findall(r"\S+\s*", text):
                event({"content": word})
            event({}, "stop")
            handler.wfile.write(b"data: [DONE]\n\n")
            handler.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (its deadline passed)
            pass
        handler.close_connection = True
