"""How `--dist loadfile` splits the suite (tests/conftest.py): a file is one unit of work, except that each
engine's half of a file of the engine matrix is a unit of its own."""

from __future__ import annotations

import pytest

from tests.conftest import work_unit


@pytest.mark.parametrize(
    ("nodeid", "unit"),
    [
        ("tests/unit/test_plan.py::test_x", "tests/unit/test_plan.py"),
        ("tests/unit/test_plan.py::TestY::test_x[a-b]", "tests/unit/test_plan.py"),
        ("tests/integration/test_run.py::test_x[docker20]", "tests/integration/test_run.py::docker20"),
        ("tests/integration/test_run.py::test_x[docker26]", "tests/integration/test_run.py::docker26"),
        (
            "tests/integration/test_failure_output.py::test_x[docker26-classic]",
            "tests/integration/test_failure_output.py::docker26",
        ),
        (
            "tests/integration/test_reuse_trust.py::test_x[docker20-reuse: any]",
            "tests/integration/test_reuse_trust.py::docker20",
        ),
        # A builder named `docker` is no engine of the matrix.
        ("tests/integration/test_x.py::test_x[docker]", "tests/integration/test_x.py"),
    ],
)
def test_each_engine_s_half_of_a_matrix_file_is_a_unit_of_work(nodeid: str, unit: str) -> None:
    assert work_unit(nodeid) == unit
