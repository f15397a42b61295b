"""The HTTP answer service and the MCP server: thin shells over :mod:`rag` (like ``webchat`` and ``slackbot``).

``python app.py api`` serves an OpenAI-compatible ``/v1/chat/completions`` with machine-readable
citations, the library's own ``/v1/ask`` and ``/v1/ask/stream`` (what :class:`rag.remote.RemoteAssistant`
speaks), ``/v1/status``, ``/healthz`` and MCP over streamable HTTP at ``/mcp``; ``python app.py mcp``
serves the same MCP tools over stdio.
"""
