"""GitPython, imported so that a machine without the git binary fails only when git is used."""

from __future__ import annotations

import os

# GitPython checks for the git binary at import time and raises ImportError without it; "quiet"
# defers that to the first git call, which then fails with GitCommandNotFound.
os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")

import git  # noqa: E402

__all__ = ["git"]
