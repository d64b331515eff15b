"""pydantic's plugin loader (`pydantic.plugin._loader`) for a process that has pydantic's plugins off.

pydantic asks its loader for plugins each time it builds a model's validator; with
PYDANTIC_DISABLE_PLUGINS turning them all off (the CLI sets it) the answer is "none", but the loader
module imports importlib.metadata to scan entry points whether or not it then does (with email and
zipfile: ~15 ms of CPU in each start that builds the config models, which `pipeline changed` does on a
cache miss). schema.py calls `install` before it builds the models: this module then stands in for the
loader, only when the variable turns every plugin off, and gives the same answer, none.

It answers `get_plugins` only, all that pydantic takes from its loader. A pydantic that took more would
raise ImportError where a model is first built, but only in a process with the variable all-off (the CLI):
a test session has pydantic's own loader in place (its collection builds the models before anything
imports pipeline.cli, which sets the variable), so the config tests would not notice. What guards it is
tests/unit/config/test_no_pydantic_plugins.py, which reads the installed pydantic's sources and fails
when any of its modules imports anything but `get_plugins` from the loader (and the start-up tests in
tests/unit/cli/test_startup.py, which run `pipeline changed` with the stand-in in place).
"""

from __future__ import annotations

import os
import sys

LOADER = "pydantic.plugin._loader"
ALL_OFF = ("__all__", "1", "true")  # pydantic's own words for "every plugin off"


def get_plugins() -> tuple[()]:
    return ()


def install() -> None:
    """Stand in for pydantic's loader when plugins are all off and it is not loaded yet."""
    if os.environ.get("PYDANTIC_DISABLE_PLUGINS") in ALL_OFF:
        sys.modules.setdefault(LOADER, sys.modules[__name__])
