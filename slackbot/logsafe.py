"""Keeping tokens out of logs.

slack_sdk already redacts the ``Authorization`` header in its debug logs and the bot never logs its
settings' secrets; this filter is the second line of defence for anything else (an exception message
quoting a token, a misconfigured library logging a request). It is attached to the handlers, because
filters on a logger do not apply to records propagated from child loggers.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

TOKEN_RE = re.compile(r"\b(?:xox[abposre]|xapp)-[A-Za-z0-9-]{6,}")
REDACTED = "[redacted]"


class RedactSecrets(logging.Filter):
    """Replaces known secret values and anything shaped like a Slack token in every record."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        # Very short "secrets" would redact ordinary words; real tokens and secrets are long.
        self._secrets = sorted({s for s in secrets if s and len(s) >= 8}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return TOKEN_RE.sub(REDACTED, text)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string is the logging module's problem to report
            return True
        redacted = self.redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        return True


def install_redaction(secrets: Iterable[str], logger: logging.Logger | None = None) -> RedactSecrets:
    """Attach one :class:`RedactSecrets` to every handler of ``logger`` (default: the root logger)."""
    target = logger or logging.getLogger()
    redactor = RedactSecrets(secrets)
    for handler in target.handlers:
        for existing in [f for f in handler.filters if isinstance(f, RedactSecrets)]:
            handler.removeFilter(existing)
        handler.addFilter(redactor)
    return redactor
