"""``python app.py api [--host --port]`` (HTTP answer service + MCP at /mcp) and ``python app.py mcp`` (stdio).

Exit status 2 means a configuration problem (the message on stderr), e.g. a non-loopback ``--host``
without ``KQA_API_KEYS``.
"""

from __future__ import annotations

import argparse
import logging
import sys

from apiserver.guard import ApiAccess, ApiAccessError
from apiserver.mcp_tools import build_mcp
from apiserver.server import create_app
from rag.errors import KQAError
from rag.redaction import protect_logs
from rag.settings import get_settings
from rag.version import add_version_argument

log = logging.getLogger("kqa.api")


def api_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="app.py api",
        description="Serve the answer service: OpenAI-compatible /v1/chat/completions with citations, /v1/ask, "
        "/v1/ask/stream, /v1/status, /healthz, docs at /docs and MCP (streamable HTTP) at /mcp.",
        epilog="API keys: KQA_API_KEYS (comma-separated), required on a non-loopback --host.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
    parser.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    add_version_argument(parser)
    return parser


def warm_up(settings) -> None:
    """Load the embedding model and the LLM now, once for the process, not on the first caller's question."""
    from rag.components.llm import get_chat_model
    from rag.components.store import get_embedder_for

    try:
        get_embedder_for(settings).embed(["KubeCon"])
        if settings.llm_backend != "extractive":
            get_chat_model(settings)
    except KQAError as exc:
        log.error("the answer backend is not ready (%s); answers will say so", exc)


def api_main(argv: list[str] | None = None) -> int:
    args = api_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    import uvicorn

    settings = get_settings()
    try:
        access = ApiAccess(settings, args.host)  # before anything loads: a refused start is instant
        protect_logs(access.secrets())
        app = create_app(settings, args.host)
    except ApiAccessError as exc:
        print(f"app.py api: error: {exc}", file=sys.stderr)
        return 2
    warm_up(settings)
    log.info("answer service on http://%s:%d (%s keys, backend %s, %s)", args.host, args.port,
             len(access.keys) or "no", settings.llm_backend, settings.describe_store())  # fmt: skip
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, timeout_graceful_shutdown=5)
    return 0


def mcp_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="app.py mcp",
        description="Serve the MCP tools search_recaps and ask_recaps over stdio (for an MCP client to spawn). "
        "The same tools are served over streamable HTTP at /mcp by `python app.py api`.",
    )
    parser.add_argument("--log-level", default="WARNING", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    add_version_argument(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from rag.assistant import Assistant

    settings = get_settings()
    protect_logs([settings.openai_api_key.get_secret_value()])
    assistant = Assistant(settings)  # light: the index and models load on the first tool call
    build_mcp(lambda: assistant, settings).run("stdio")
    return 0
