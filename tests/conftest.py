"""Suite-wide ordering: with `pytest -n N --dist loadfile` files go to workers in collection order, so
the longest files are moved to the front; the suite then ends when the bulk of short files does, not
when a long file picked up last does."""

from __future__ import annotations

import pytest

# The longest files (minutes of real releases with injected faults, SIGKILLs, a killed engine).
LONGEST_FIRST = ("tests/integration/test_faults.py", "tests/integration/test_engines.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        path = item.nodeid.split("::", 1)[0]
        return LONGEST_FIRST.index(path) if path in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: the order within each file, and of the other files, is kept
