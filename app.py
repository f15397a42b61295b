"""KubeCon Recap QA entry point.

    python app.py [--host 127.0.0.1] [--port 7860]   # web chat (ingests data/ first if the index is empty)
    python app.py slack [ARGS ...]                    # Slack bot (see `python app.py slack --help`)
    python app.py api [--host 127.0.0.1] [--port 8000] # HTTP answer service: OpenAI-compatible API, /v1/ask, MCP at /mcp
    python app.py mcp                                 # MCP server over stdio (tools search_recaps, ask_recaps)

Installed, the same commands are ``kqa-web``, ``kqa-slack`` and ``kqa-api`` (console scripts below).
Without ``--host``/``--port`` the web chat honours Gradio's ``GRADIO_SERVER_NAME``/``GRADIO_SERVER_PORT``.

Backends come from ``KQA_*`` settings (see README): e.g. ``KQA_CHROMA_URL`` for a Chroma server,
``KQA_LLM_BACKEND=openai`` + ``KQA_OPENAI_BASE_URL`` for an OpenAI-compatible LLM.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys


def parse_args(argv: list[str], prog: str = "app.py") -> argparse.Namespace:
    from rag.version import add_version_argument

    parser = argparse.ArgumentParser(
        prog=prog,
        description="KubeCon Recap QA web chat. Use `python app.py slack ...` for the Slack bot, "
        "`python app.py api ...` for the HTTP answer service (OpenAI-compatible, MCP at /mcp) and "
        "`python app.py mcp` for the MCP server over stdio.",
    )
    parser.add_argument("--host", help="interface to listen on (default: GRADIO_SERVER_NAME, else 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to listen on (default: GRADIO_SERVER_PORT, else 7860)")
    add_version_argument(parser)
    args = parser.parse_args(argv)
    # Gradio's own variables count as settings; an explicit option wins over them.
    args.host = args.host or os.environ.get("GRADIO_SERVER_NAME") or "127.0.0.1"
    if args.port is None:
        try:
            args.port = int(os.environ.get("GRADIO_SERVER_PORT") or 7860)
        except ValueError:
            parser.error(f"GRADIO_SERVER_PORT={os.environ['GRADIO_SERVER_PORT']!r} is not a port number")
    return args


def main(argv: list[str] | None = None, prog: str = "app.py") -> int:
    from rag.environment import configure_environment

    configure_environment()  # before any of the three front ends loads gradio, chromadb or the models
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "slack":
        from slackbot.cli import main as slack_main  # lazy: the web chat needs no Slack packages

        return slack_main(argv[1:])
    if argv and argv[0] in ("api", "mcp"):
        from apiserver.cli import api_main, mcp_main  # lazy: the web chat needs no FastAPI or MCP

        return (api_main if argv[0] == "api" else mcp_main)(argv[1:])
    args = parse_args(argv, prog)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from webchat.access import AccessError
    from webchat.server import serve

    try:
        serve(args.host, args.port)
    except AccessError as exc:
        print(f"app.py: error: {exc}", file=sys.stderr)
        return 2
    return 0


# Console scripts (pyproject.toml [project.scripts]): the installed names of the commands above.
def web_main() -> int:
    return main(sys.argv[1:], prog="kqa-web")


def api_main() -> int:
    return main(["api", *sys.argv[1:]])


if __name__ == "__main__":
    sys.exit(main())
