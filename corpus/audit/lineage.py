"""Lineage: what made a run, so two runs can be compared and any shard traced back (manifest.json's `lineage`):
the project's version and git commit (when it runs from a checkout), the config's sha256, the sha256 of every
model card the config names (a classifier's `card.json`), and the sha256 of the input listing."""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import corpus

MODEL_CARD = "card.json"


def git_commit(path: Path | None = None) -> tuple[str | None, bool | None]:
    """(commit, whether tracked files differ from it) of the checkout holding `path` (the installed package),
    or (None, None) when it is not a git checkout or git is missing."""
    where = str(path or Path(corpus.__file__).resolve().parent)

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", "-C", where, *args], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if not commit:
        return None, None
    status = git("status", "--porcelain", "--untracked-files=no")
    return commit, (bool(status) if status is not None else None)


def _paths(data: Any, prefix: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(data, dict):
        for key, value in data.items():
            yield from _paths(value, f"{prefix}{key}.")
    elif isinstance(data, list):
        for i, value in enumerate(data):
            yield from _paths(value, f"{prefix}{i}.")
    elif isinstance(data, str) and data and "://" not in data:
        yield prefix.rstrip("."), data


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def model_cards(config: dict[str, Any]) -> dict[str, dict[str, str]]:
    """Config key -> {path, sha256} of each model card the config points at: a setting whose value is a model
    directory holding card.json (e.g. `classifier.model=DIR`), or a card.json itself."""
    cards = {}
    for key, value in _paths(config):
        if key.startswith(("storage.", "spark.")) or len(value) > 4096:
            continue
        path = Path(value)
        card = path / MODEL_CARD if path.is_dir() else path
        if card.name == MODEL_CARD and card.is_file():
            cards[key] = {"path": str(card.resolve()), "sha256": file_sha256(card)}
    return cards


def listing_sha256(inputs: list[str]) -> str:
    """The hash of the input listing (one path or URL a line, in the run's order)."""
    return hashlib.sha256("".join(f"{path}\n" for path in inputs).encode()).hexdigest()


def lineage(config: dict[str, Any], config_sha256: str, inputs: list[str]) -> dict[str, Any]:
    commit, dirty = git_commit()
    return {
        "corpus_version": corpus.__version__,
        "git_commit": commit,
        "git_dirty": dirty,
        "config_sha256": config_sha256,
        "model_cards": model_cards(config),
        "inputs": len(inputs),
        "input_listing_sha256": listing_sha256(inputs),
    }


__all__ = ["MODEL_CARD", "file_sha256", "git_commit", "lineage", "listing_sha256", "model_cards"]
