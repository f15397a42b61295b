"""The README's "HTTP API and MCP" snippets, run as written against a live ``python app.py api`` (only the
port and the checkout's path differ: the server runs on a free port, the checkout is wherever it is)."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys

import anyio
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from rag.remote import RemoteAssistant, answer_service
from rag.settings import Settings
from rag.types import Answer
from tests.support.apiserver import OTHER_KEY, REPO, base_env

pytestmark = [pytest.mark.server, pytest.mark.timeout(600)]

README_URL = "http://127.0.0.1:8000"


def section_blocks() -> list[tuple[str, str]]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    start = text.index("## HTTP API and MCP")
    section = text[start : text.index("\n## ", start + 1)]
    return re.findall(r"```(\w+)\n(.*?)```", section, flags=re.S)


@pytest.fixture(scope="module")
def blocks():
    found = section_blocks()
    assert [lang for lang, _ in found] == ["bash", "python", "bash", "json", "bash"]
    return [code for _, code in found]


def live(code: str, api) -> str:
    return code.replace(README_URL, api.url)


def test_the_readme_key_and_command_are_the_ones_tested(blocks):
    start = blocks[0]
    assert f"export KQA_API_KEYS={OTHER_KEY}" in start  # the fixture's server accepts exactly this key
    assert "python app.py api --port 8000" in start  # what tests.support.apiserver starts (on a free port)


def test_openai_client_snippet(blocks, api):
    done = subprocess.run([sys.executable, "-c", live(blocks[1], api)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "[1]" in lines[0]
    assert any(line.startswith("[1] KubeCon + CloudNativeCon 2022: Three Big Takeaways (") for line in lines)
    assert re.search(r"verified: .*\[1\].* [1-9]\d* citations$", done.stdout, flags=re.S)


def test_curl_snippet(blocks, api):
    done = subprocess.run(["bash", "-c", live(blocks[2], api)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    answer = Answer.from_dict(json.loads(done.stdout))
    assert answer.citations and {c.event for c in answer.citations} == {
        "KubeCon + CloudNativeCon Europe 2022 (Valencia)"
    }


def test_mcp_config_stdio_and_http(blocks, api, fresh_home, seed_data_dir):
    servers = json.loads(blocks[3])["mcpServers"]
    stdio = servers["kubecon-qa"]
    command = stdio["command"].replace("/path/to/kubecon-qa/.venv/bin/python", sys.executable)
    args = [a.replace("/path/to/kubecon-qa", str(REPO)) for a in stdio["args"]]
    http = servers["kubecon-qa-http"]
    assert http["type"] == "http"

    async def main():
        params = StdioServerParameters(command=command, args=args,
                                       env=base_env(fresh_home("readme-mcp"), seed_data_dir))  # fmt: skip
        async with Client(params, read_timeout_seconds=300) as client:
            found = await client.call_tool("search_recaps", {"query": "WebAssembly", "k": 1})
            assert found.structured_content["passages"][0]["source_id"].startswith("seed-")
        headers = create_mcp_http_client(headers=http["headers"])
        async with Client(streamable_http_client(live(http["url"], api), http_client=headers)) as client:
            answered = await client.call_tool("ask_recaps", {"question": "What did Datadog highlight?"})
            assert answered.structured_content["citations"]

    anyio.run(main)


def test_answer_url_snippet_configures_a_remote_answerer(blocks, api, monkeypatch):
    exports = [line for line in blocks[4].splitlines() if line.startswith("export ")]
    assert len(exports) == 1
    for assignment in shlex.split(exports[0])[1:]:
        name, _, value = assignment.partition("=")
        monkeypatch.setenv(name, live(value, api))
    assert "python app.py " in blocks[4] and "python app.py slack" in blocks[4]
    remote = answer_service(Settings(_env_file=None))
    assert isinstance(remote, RemoteAssistant)
    assert remote.ask("What were the three big takeaways from KubeCon Detroit 2022?").citations
