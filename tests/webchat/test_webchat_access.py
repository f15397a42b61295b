"""Who may use the web chat: real ``python app.py`` processes on loopback, reached over HTTP, by
gradio_client and by Chromium.

Sign-in by a users file and by a trusted proxy header; admins alone re-ingest; per-client rate
limits; capped bodies; no upload route; and a server that will not start open on a network address.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.support.processes import free_port, start_server, stop_process
from tests.support.webapp import REPO
from webchat.access import Access, AccessError, hash_password, load_users, verify_password

PASSWORDS = {"alice": "alice-secret-1", "bob": "bob-secret-12"}
ANONYMOUS_ROUTES = [("GET", "/config"), ("GET", "/gradio_api/info"), ("POST", "/gradio_api/call/chat")]


def app_env(home: Path, data_dir: Path, **extra: str) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("KQA_")},
        "KQA_HOME": str(home), "KQA_DATA_DIR": str(data_dir), "KQA_LLM_BACKEND": "extractive",
        "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1", **extra,
    }  # fmt: skip


def start(root: Path, **extra: str):
    """app.py on a free loopback port over a copy of data/, up once /healthz answers."""
    data_dir = root / "data"
    if not data_dir.exists():
        shutil.copytree(REPO / "data", data_dir)
    port = free_port()
    process = start_server(
        [sys.executable, str(REPO / "app.py"), "--host", "127.0.0.1", "--port", str(port)],
        health_url=f"http://127.0.0.1:{port}/healthz", log_path=root / "app.log",
        env=app_env(root / "home", data_dir, **extra), cwd=REPO, timeout=300, name="app.py",
    )  # fmt: skip
    return f"http://127.0.0.1:{port}", process


@pytest.fixture(scope="module")
def users_app(tmp_path_factory):
    root = tmp_path_factory.mktemp("users-app")
    users = root / "users"
    users.write_text(
        f"# team\nalice:{hash_password(PASSWORDS['alice'])}:admin\nbob:{hash_password(PASSWORDS['bob'])}\n"
    )
    url, process = start(root, KQA_WEB_USERS_FILE=str(users), KQA_WEB_RATE_LIMIT="3/minute")
    yield url
    stop_process(process, timeout=20)


@pytest.fixture(scope="module")
def proxy_app(tmp_path_factory):
    root = tmp_path_factory.mktemp("proxy-app")
    url, process = start(root, KQA_WEB_PROXY_USER_HEADER="X-Forwarded-User", KQA_WEB_ADMINS="alice")
    yield url
    stop_process(process, timeout=20)


def last_reply(result) -> str:
    """The answer message of the last turn (the message after its thought; errors have no sources)."""
    turn = result[1][max(i for i, m in enumerate(result[1]) if m["role"] == "user") + 1 :]
    content = turn[1]["content"]
    return " ".join(part.get("text", "") for part in content) if isinstance(content, list) else str(content)


# --- refusing to start open --------------------------------------------------------------------------------


def test_an_open_server_on_a_network_address_refuses_to_start(tmp_path):
    done = subprocess.run(
        [sys.executable, str(REPO / "app.py"), "--host", "0.0.0.0", "--port", str(free_port())],
        cwd=REPO, env=app_env(tmp_path / "home", tmp_path / "data"), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2
    assert "Refusing to serve the web chat on 0.0.0.0 without sign-in" in done.stderr
    for setting in ("KQA_WEB_USERS_FILE", "KQA_WEB_PROXY_USER_HEADER", "KQA_WEB_OPEN_ACCESS=true"):
        assert setting in done.stderr
    assert not (tmp_path / "home" / "chroma").exists(), "it refused before touching the store"


def test_access_settings_are_checked(tmp_path, settings_factory):
    settings = settings_factory(tmp_path)
    assert Access(settings, "127.0.0.1").mode == "open" and Access(settings, "::1").is_admin(None)
    with pytest.raises(AccessError, match="Refusing"):
        Access(settings, "192.168.1.20")
    open_on_purpose = Access(settings.model_copy(update={"web_open_access": True}), "0.0.0.0")
    assert open_on_purpose.mode == "open" and not open_on_purpose.is_admin(None)
    bad = tmp_path / "users"
    bad.write_text("carol:plaintext-password\n")
    with pytest.raises(AccessError, match=r"users:1: expected 'name:pbkdf2_sha256\$"):
        load_users(bad)
    with pytest.raises(AccessError, match="KQA_WEB_RATE_LIMIT='often'"):
        Access(settings.model_copy(update={"web_rate_limit": "often"}), "127.0.0.1")
    line = hash_password("s3cret-pass")
    assert verify_password("s3cret-pass", line) and not verify_password("s3cret-pasS", line)


def test_the_hash_command_prints_a_users_file_line(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "webchat.access", "hash", "carol", "--admin"],
        cwd=REPO, input="carol-secret-9\n", capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    (tmp_path / "users").write_text(done.stdout)
    carol = load_users(tmp_path / "users")["carol"]
    assert carol.admin and verify_password("carol-secret-9", carol.password_hash)


# --- a users file --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path"), ANONYMOUS_ROUTES)
def test_anonymous_requests_are_refused(users_app, method, path):
    response = httpx.request(method, users_app + path, json={"data": ["What is SpinKube?", [], None, None]})
    assert response.status_code in (401, 403), response.text


def test_a_signed_in_user_asks_and_is_rate_limited(users_app):
    from gradio_client import Client

    client = Client(users_app, auth=("bob", PASSWORDS["bob"]), verbose=False)
    assert set(client.view_api(print_info=False, return_format="dict")["named_endpoints"]) == {
        "/chat", "/feedback",
    }  # fmt: skip  (the public API is asking and rating; no re-ingest, no status)
    question = "What were the three big takeaways from KubeCon Detroit 2022?"
    replies = [last_reply(client.predict(question, [], "All events", "Any year", api_name="/chat")) for _ in range(4)]
    assert all("WebAssembly" in reply for reply in replies[:3])
    assert "Too many requests (3/minute per client)" in replies[3]
    with pytest.raises(Exception):  # noqa: B017 - a wrong password never gets a session
        Client(users_app, auth=("bob", "guess"), verbose=False)


def test_uploads_are_closed_and_bodies_capped(users_app):
    assert httpx.post(users_app + "/gradio_api/upload", files={"files": ("x.md", b"# hi")}).status_code == 404
    huge = httpx.post(
        users_app + "/gradio_api/call/chat", content=b"x" * 2_000_000, headers={"content-type": "application/json"}
    )
    assert huge.status_code == 413


# --- a trusted proxy header, in the browser -------------------------------------------------------------


def test_without_the_proxy_header_every_route_is_refused(proxy_app):
    assert httpx.get(proxy_app + "/").status_code == 401
    assert httpx.get(proxy_app + "/config").status_code == 401
    assert httpx.get(proxy_app + "/config", headers={"X-Forwarded-User": "bob"}).status_code == 200


@pytest.mark.parametrize(("user", "admin"), [("bob", False), ("alice", True)])
def test_only_admins_re_ingest_or_see_the_store(browser, proxy_app, user, admin):
    context = browser.new_context(extra_http_headers={"X-Forwarded-User": user})
    page = context.new_page()
    page.goto(proxy_app)
    page.get_by_role("tab", name="Status").click()
    status = page.locator("#kqa-status")
    status.get_by_text("Posts").wait_for(timeout=60_000)
    assert ("(admins only)" in status.inner_text()) is not admin
    page.click("#kqa-reingest")
    expected = "Done in" if admin else "Only an admin can re-run the ingest"
    page.wait_for_function(
        f"() => document.querySelector('#kqa-ingest-log textarea').value.includes({expected!r})", timeout=180_000
    )
    context.close()


def test_open_on_loopback_is_not_rate_limited_but_signed_in_users_are(tmp_path, settings_factory):
    from rag.errors import KQAError

    settings = settings_factory(tmp_path, web_rate_limit="1/minute")
    local = Access(settings, "127.0.0.1")
    for _ in range(5):
        local.allow("ask", None)  # a laptop, a load test: the machine's own user
    users = tmp_path / "users"
    users.write_text(f"bob:{hash_password(PASSWORDS['bob'])}\n")
    signed = Access(settings.model_copy(update={"web_users_file": users}), "127.0.0.1")

    class Request:
        username = "bob"
        client = None

    signed.allow("ask", Request())
    with pytest.raises(KQAError, match="Too many requests"):
        signed.allow("ask", Request())


def test_the_public_api_asks_and_rates_the_sessions_last_answer(seeded_app):
    """``/chat`` then ``/feedback`` from one gradio_client session: the record rates that answer."""
    import json

    from gradio_client import Client

    client = Client(seeded_app.url, verbose=False)
    question = "What were the three big takeaways from KubeCon Detroit 2022?"
    result = client.predict(question, [], "All events", "Any year", api_name="/chat")
    assert "WebAssembly" in last_reply(result)
    note, _ = client.predict("down", "incomplete, wrong_citation", "misses the keynote", api_name="/feedback")
    assert "saved" in note, note
    record = json.loads((seeded_app.home / "feedback.jsonl").read_text(encoding="utf-8").splitlines()[-1])
    assert record["question"] == question and record["rating"] == "down"
    assert record["reasons"] == ["incomplete", "wrong_citation"] and record["comment"] == "misses the keynote"
    note, _ = client.predict("down", "rude", "", api_name="/feedback")
    assert "Unknown rating reason" in note
    note, _ = client.predict("meh", "", "", api_name="/feedback")
    assert "rating must be" in note
