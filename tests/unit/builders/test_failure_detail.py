"""A failed step's error names the step once: the engine's copy of its command is left out."""

from __future__ import annotations

import pytest

from pipeline.builders import failure_detail

STEP = '[2/2] RUN make "all" [x]'


@pytest.mark.parametrize(
    "detail",
    [
        'executor failed running [/bin/sh -c make "all" [x]]: exit code: 2',  # BuildKit before 0.11
        'process "/bin/sh -c make \\"all\\" [x]" did not complete successfully: exit code: 2',  # BuildKit since
        "The command '/bin/sh -c make \"all\" [x]' returned a non-zero code: 2",  # the classic builder
    ],
)
def test_the_engines_copy_of_the_command_is_left_out(detail: str) -> None:
    assert failure_detail(detail, STEP) == "exit code: 2"


def test_without_a_known_step_the_engines_text_is_all_there_is() -> None:
    detail = "executor failed running [/bin/sh -c make]: exit code: 2"
    assert failure_detail(detail, None) == detail
    assert failure_detail("failed to compute cache key: not found", STEP) == "failed to compute cache key: not found"
