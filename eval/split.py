"""The fixed tune/test split: which gold items rules and thresholds may be fitted to, and which measure.

``eval/split.json`` assigns every post of the shared corpus to one half and whole gold files to one
split (``gold_tune.jsonl`` tune, ``gold_blind.jsonl`` test). An item of any other file is *tune* when
every post it cites is a tune post, *test* otherwise; an unanswerable item (no posts) goes by its id's
sha256 (even: tune). The figures an issue is judged by are the test split's.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Literal, Protocol

SPLIT_FILE = Path(__file__).resolve().parent / "split.json"
Split = Literal["tune", "test"]
SPLITS: tuple[str, ...] = ("tune", "test", "all")


class HasSources(Protocol):
    id: str
    sources: Sequence[str]


@lru_cache(maxsize=4)
def load_split(path: Path = SPLIT_FILE) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def item_split(item: HasSources, gold_file: Path | str, split_file: Path = SPLIT_FILE) -> Split:
    """The split of one gold item of ``gold_file`` (see the module doc)."""
    spec = load_split(split_file)
    by_file = spec.get("files", {}).get(Path(gold_file).name)
    if by_file:
        return by_file
    if item.sources:
        tune = set(spec["tune"])
        return "tune" if all(s in tune for s in item.sources) else "test"
    return "tune" if int(hashlib.sha256(item.id.encode()).hexdigest(), 16) % 2 == 0 else "test"


def select_split(items: Iterable[HasSources], gold_file: Path | str, split: str) -> list:
    """The items of ``split`` ("tune", "test" or "all")."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, not {split!r}")
    return [i for i in items if split == "all" or item_split(i, gold_file) == split]
