"""Suite-wide ordering: with `pytest -n N --dist loadfile --no-loadscope-reorder` files go to workers in
collection order, so the longest files are moved to the front; the suite then ends when the bulk of short
files does, not when a long file picked up last does. (Without --no-loadscope-reorder xdist orders them by
their number of tests instead.)

The engine matrix (tests/integration/conftest.py) runs a file once per engine: each engine's half of a
file is its own unit of work for loadfile, so the halves run on two workers side by side."""

from __future__ import annotations

import re
from typing import Any

import pytest

# A test id's engine of the matrix: `test_x[docker26]`, `test_x[docker20-classic]`.
ENGINE_IN_ID = re.compile(r"\[(?:.*-)?(docker\d+)(?:-.*)?\]$")


def work_unit(nodeid: str) -> str:
    """What `--dist loadfile` keeps on one worker: the file, or the file on one engine of the matrix."""
    path = nodeid.split("::", 1)[0]
    engine = ENGINE_IN_ID.search(nodeid)
    return f"{path}::{engine.group(1)}" if engine else path


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class EngineHalves(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return work_unit(nodeid)

    return EngineHalves(config, log)


# The longest files (minutes of real releases with injected faults, SIGKILLs, a killed engine).
LONGEST_FIRST = ("tests/integration/test_faults.py", "tests/integration/test_engines.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        path = item.nodeid.split("::", 1)[0]
        return LONGEST_FIRST.index(path) if path in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: the order within each file, and of the other files, is kept
