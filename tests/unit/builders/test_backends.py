"""Backends are chosen from data: every `builder:` the schema accepts has a module with `open_backend`."""

from __future__ import annotations

import importlib
from typing import get_args

from pipeline.builders import BACKENDS
from pipeline.config.schema import Builder


def test_every_builder_name_the_schema_accepts_has_a_backend() -> None:
    assert set(BACKENDS) == set(get_args(Builder))


def test_every_backend_module_opens_a_backend() -> None:
    for name, module_name in BACKENDS.items():
        module = importlib.import_module(module_name)
        assert callable(getattr(module, "open_backend", None)), f"{name}: {module_name} has no open_backend()"
