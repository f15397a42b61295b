"""The installed version, read from package metadata so ``--version`` never drifts from pyproject.toml."""

from __future__ import annotations

import argparse
from importlib.metadata import PackageNotFoundError, version

DISTRIBUTION = "kubecon-qa"


def package_version() -> str:
    """``"0.1.0"``; a bare checkout that was never installed says so instead of guessing."""
    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:
        return "unknown (not installed)"


def add_version_argument(parser: argparse.ArgumentParser) -> None:
    """The one ``--version`` every CLI shows: ``kubecon-qa 0.1.0``."""
    parser.add_argument("--version", action="version", version=f"{DISTRIBUTION} {package_version()}")
