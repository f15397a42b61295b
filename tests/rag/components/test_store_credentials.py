"""A Chroma server behind an authenticating reverse proxy: the token is sent, a wrong one is a clear error.

``chroma run`` (Chroma 1.x) checks no credentials itself, so the proxy in front of it does, as a real
HTTP server on loopback that forwards every request to a real ``chroma run`` only when the header matches.
"""

from __future__ import annotations

import http.server
import threading
import urllib.error
import urllib.request

import pytest
from pydantic import SecretStr

from rag.components.store import forget_client, get_client, get_collection
from rag.errors import StoreUnavailableError

TOKEN = "chroma-token-5be1d0c7"


@pytest.fixture(scope="module")
def guarded_chroma(chroma_server):
    """A proxy to ``chroma_server`` that answers 401 unless ``Authorization: Bearer TOKEN`` or
    ``X-Chroma-Token: TOKEN`` is sent; yields its URL."""

    class Guard(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _forward(self) -> None:
            if self.headers.get("Authorization") != f"Bearer {TOKEN}" and self.headers.get("X-Chroma-Token") != TOKEN:
                body = b'{"error": "Unauthorized"}'
                self.send_response(401)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            length = int(self.headers.get("Content-Length") or 0)
            request = urllib.request.Request(
                chroma_server + self.path,
                data=self.rfile.read(length) if length else None,
                method=self.command,
                headers={"Content-Type": self.headers.get("Content-Type", "application/json")},
            )
            try:
                with urllib.request.urlopen(request, timeout=60) as response:
                    status, body, kind = response.status, response.read(), response.headers.get("Content-Type")
            except urllib.error.HTTPError as error:
                status, body, kind = error.code, error.read(), error.headers.get("Content-Type")
            self.send_response(status)
            self.send_header("Content-Type", kind or "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _forward

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Guard)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.mark.parametrize("header", ["Authorization", "X-Chroma-Token"])
def test_the_token_is_sent_with_every_request(guarded_chroma, settings_factory, tmp_path, header):
    settings = settings_factory(
        tmp_path, chroma_url=guarded_chroma, chroma_token=SecretStr(TOKEN), chroma_token_header=header,
        collection=f"guarded_{header.lower().replace('-', '_')}",
    )  # fmt: skip
    collection = get_collection(settings)
    collection.upsert(ids=["a"], documents=["KubeCon Detroit 2022"], embeddings=[[0.1] * collection_dim(settings)])
    assert collection.count() == 1
    forget_client(settings)


@pytest.mark.parametrize("token", [None, "wrong-token-123"])
def test_a_missing_or_wrong_token_is_a_clear_error_without_the_token(guarded_chroma, settings_factory, tmp_path, token):
    settings = settings_factory(
        tmp_path, chroma_url=guarded_chroma, chroma_token=SecretStr(token) if token else None
    )
    with pytest.raises(StoreUnavailableError) as caught:
        get_client(settings)
    message = str(caught.value)
    assert f"The Chroma server at {guarded_chroma} refused the request" in message
    assert ("a wrong KQA_CHROMA_TOKEN" if token else "no KQA_CHROMA_TOKEN") in message
    assert token is None or token not in message


def collection_dim(settings) -> int:
    from rag.components.store import get_embedder_for

    return get_embedder_for(settings).dimension
