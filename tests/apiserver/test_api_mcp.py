"""The MCP tools through the ``mcp`` client library: stdio (``python app.py mcp`` spawned as a real
subprocess) and streamable HTTP (``/mcp`` on a real ``python app.py api``, behind its keys)."""

from __future__ import annotations

import sys

import anyio
import httpx
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from tests.support.apiserver import API_KEY, REPO, base_env

pytestmark = [pytest.mark.server, pytest.mark.timeout(600)]

VALENCIA = "KubeCon + CloudNativeCon Europe 2022 (Valencia)"


async def exercise(client: Client) -> dict:
    """What each transport must give: both tools listed, structured passages and answers, clear errors."""
    tools = {t.name: t for t in (await client.list_tools()).tools}
    assert set(tools) == {"search_recaps", "ask_recaps"}
    assert tools["ask_recaps"].output_schema["properties"].keys() >= {"answer", "citations", "abstained"}

    found = await client.call_tool("search_recaps", {"query": "software supply chain security", "event": "Valencia",
                                                     "k": 3})  # fmt: skip
    assert not found.is_error, found.content
    passages = found.structured_content["passages"]
    assert 1 <= len(passages) <= 3
    assert {p["event"] for p in passages} == {VALENCIA}
    for p in passages:
        assert p["url"] == "seed-kubecon-valencia-2022-datadog-highlights.md" and p["text"] and p["end"] > p["start"]
        assert p["section"] and p["score"] > 0

    answered = await client.call_tool("ask_recaps", {"question": "What were the three big takeaways?",
                                                     "event": "KubeCon Detroit 2022"})  # fmt: skip
    assert not answered.is_error, answered.content
    result = answered.structured_content
    assert result["abstained"] is False and result["citations"]
    for c in result["citations"]:
        assert f"[{c['number']}]" in result["answer"]
        assert c["source_id"] == "seed-kubecon-detroit-2022-three-takeaways" and c["quote"]

    off_topic = await client.call_tool("ask_recaps", {"question": "What is the best pizza recipe in Naples?"})
    assert off_topic.structured_content["abstained"] is True

    bad = await client.call_tool("search_recaps", {"query": "WebAssembly", "k": 0})
    assert bad.is_error and "k must be between 1 and 20" in bad.content[0].text
    empty = await client.call_tool("ask_recaps", {"question": "  "})
    assert empty.is_error and "The question is empty" in empty.content[0].text
    return result


def test_stdio_server_spawned_by_the_mcp_client(fresh_home, seed_data_dir):
    home = fresh_home("mcp-stdio")
    params = StdioServerParameters(command=sys.executable, args=["app.py", "mcp"], cwd=str(REPO),
                                   env=base_env(home, seed_data_dir))  # fmt: skip

    async def main():
        async with Client(params, read_timeout_seconds=300) as client:
            result = await exercise(client)
            assert str(home) not in str(result)

    anyio.run(main)


def test_streamable_http_on_the_api_server_behind_its_keys(api):
    def connect(key: str) -> Client:
        http = create_mcp_http_client(headers={"Authorization": f"Bearer {key}"})
        return Client(streamable_http_client(f"{api.url}/mcp", http_client=http), read_timeout_seconds=300)

    async def main():
        async with connect(API_KEY) as client:
            await exercise(client)

    anyio.run(main)

    async def wrong_key():
        async with connect("not-a-key") as client:
            await client.list_tools()

    before = api.log().count('"POST /mcp HTTP/1.1" 401')
    with pytest.raises(BaseException):  # noqa: B017 - the SDK reports the 401 as an MCPError in a task group
        anyio.run(wrong_key)
    assert api.log().count('"POST /mcp HTTP/1.1" 401') > before  # refused by the server, not the client
    raw = httpx.post(f"{api.url}/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
    assert raw.status_code == 401 and "KQA_API_KEYS" in raw.json()["error"]["message"]

