"""Errors with messages a user can act on (what is missing, how to fix it)."""


class KQAError(RuntimeError):
    """Base class for errors shown to users as a clear message, never a stack trace."""


class MissingModelError(KQAError):
    """A model package (embeddings, tokenizer, GGUF parts) is not installed or is corrupt."""


class StoreUnavailableError(KQAError):
    """The Chroma store cannot be opened or reached."""


class StoreLockedError(StoreUnavailableError):
    """Another process holds the embedded store for writing."""


class EmptyIndexError(KQAError):
    """The collection has no chunks yet: run the ingest job first."""


class LLMUnavailableError(KQAError):
    """The LLM backend is down, failed to load or timed out."""


class LLMTimeoutError(LLMUnavailableError):
    """An LLM request ran past ``llm_timeout_s`` (the caller falls back to the extractive answer)."""


class LLMEmptyAnswerError(LLMUnavailableError):
    """The model returned nothing to verify (no text, or only citation markers): answered like an outage."""


class LLMModelMissingError(MissingModelError, LLMUnavailableError):
    """The embedded GGUF's part packages are missing or corrupt: both a missing model and an unavailable LLM,
    so ``except MissingModelError`` and ``except LLMUnavailableError`` both catch it."""


class InvalidQuestionError(KQAError, ValueError):
    """A question, history, event or year the assistant cannot use (empty, too long, wrong type, unknown event)."""
