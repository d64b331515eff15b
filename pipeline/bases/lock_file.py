"""Where the lock of a pipelines file lives (`pipelines.lock`, beside it): all that `pipeline changed`
needs of bases.lock, whose parser and dataclasses it never uses (commit hooks run it: ~3-5 ms of start)."""

from __future__ import annotations

from pathlib import Path

LOCK_NAME = "pipelines.lock"


def lock_path(config_file: Path) -> Path:
    """Where the lock of a pipelines file lives: beside it."""
    return config_file.parent / LOCK_NAME
