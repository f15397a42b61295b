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
