"""Keeping the LLM server's credentials out of what users and logs see.

An API key, a ``user:password@`` in ``KQA_OPENAI_BASE_URL`` or a token in its query string must never
reach a fallback reason, an answer, feedback or a log line; nor may a server's error body, which can
echo the request (key included). Messages name the server with :func:`safe_url`; :func:`protect_logs`
scrubs every log record the process creates (third-party libraries such as httpx log request URLs),
because a filter on one handler misses the handlers added later (a test's, a web server's).
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable
from urllib.parse import urlsplit, urlunsplit

REDACTED = "***"
_USERINFO_RE = re.compile(r"(?<=://)[^/@\s]+@")
_MIN_SECRET = 6  # shorter "secrets" would redact ordinary words
_secrets: list[str] = []  # longest first, so a secret inside another is not half-replaced
_patterns: list[re.Pattern] = []  # shapes of secrets (a Slack token's xoxb-…)
_lock = threading.Lock()
_installed = False


def safe_url(url: str) -> str:
    """``url`` as a message may show it: no ``user:password@``, query or fragment."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        host = f"[{host}]" if ":" in host else host
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(the configured URL)"
    return urlunsplit((parts.scheme, host + port, parts.path, "", ""))


def url_secrets(url: str) -> list[str]:
    """The parts of ``url`` that are credentials: its userinfo and its query string."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return [url]
    userinfo = parts.netloc.rpartition("@")[0]
    return [s for s in (userinfo, parts.password or "", parts.query) if s]


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` without ``secrets``, what :func:`protect_logs` was told, or any URL's userinfo."""
    extra = {s for s in secrets if len(s) >= _MIN_SECRET}
    ordered = sorted(extra | set(_secrets), key=len, reverse=True) if extra else _secrets  # logs: no extra
    for secret in ordered:
        text = text.replace(secret, REDACTED)
    for pattern in _patterns:
        text = pattern.sub(REDACTED, text)
    return _USERINFO_RE.sub(REDACTED + "@", text)


def protect_logs(secrets: Iterable[str], *patterns: re.Pattern) -> None:
    """Scrub ``secrets``, text matching ``patterns`` and URL userinfo from every log record created from
    now on, by any logger (and from exception text logged with it)."""
    global _installed
    with _lock:
        _secrets[:] = sorted({*_secrets, *(s for s in secrets if s and len(s) >= _MIN_SECRET)}, key=len, reverse=True)
        _patterns.extend(p for p in patterns if p not in _patterns)
        if _installed:
            return
        make_record = logging.getLogRecordFactory()

        def scrubbed_record(*args, **kwargs) -> logging.LogRecord:
            record = make_record(*args, **kwargs)
            try:
                message = record.getMessage()
            except Exception:  # noqa: BLE001 - a broken format string is logging's to report
                return record
            clean = redact(message)
            if clean != message:
                record.msg, record.args = clean, None
            if record.exc_info and record.exc_info[1] is not None:
                text = logging.Formatter().formatException(record.exc_info)
                if redact(text) != text:
                    record.exc_text = redact(text)  # handlers print exc_text, not the live exception
            return record

        logging.setLogRecordFactory(scrubbed_record)
        _installed = True
